//! Asks are matched to their askers: concurrent outside threads, actors asking across shards
//! with `Context::ask`, and `ask_async` futures (a hand-written `block_on` and tokio) each get
//! their own answer, never another asker's.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{XorShift64, block_on, for_each_shard_count, join};
use coreactor::{Actor, Addr, AskError, Context, Reply};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// The answer an [`Echo`] gives to `x`: distinct per payload, and tagged with the echo's id.
fn answer(echo: u64, x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(echo << 48)
}

struct Echo {
    id: u64,
}

enum EchoMsg {
    Ask(u64, Reply<u64>),
}

impl Actor for Echo {
    type Msg = EchoMsg;
    fn handle(&mut self, EchoMsg::Ask(x, r): EchoMsg, _ctx: &mut Context<'_, Self>) {
        r.send(answer(self.id, x));
    }
}

fn echoes(rt: &coreactor::Runtime) -> Vec<Addr<Echo>> {
    (0..rt.shard_count())
        .map(|s| rt.spawn_on(s, Echo { id: s as u64 }).unwrap())
        .collect()
}

// Eight threads ask the echoes concurrently with distinct payloads; each gets its own answer.
#[test]
fn outside_threads_get_their_own_answers() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let echoes = echoes(&rt);
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let echoes = echoes.clone();
                std::thread::spawn(move || {
                    let mut rng = XorShift64::new(0xA5C0_0000 + t);
                    for i in 0..300u64 {
                        let e = rng.below(echoes.len());
                        let x = (t << 32) | i;
                        let got = echoes[e].ask(|r| EchoMsg::Ask(x, r), ASK).expect("ask");
                        assert_eq!(got, answer(e as u64, x), "thread {t} ask {i}");
                    }
                })
            })
            .collect();
        for t in threads {
            join("asking thread", t);
        }
        rt.shutdown().expect("clean shutdown");
    });
}

/// Asks every echo `per_echo` times at once with `Context::ask`, checks each continuation's
/// answer against its own payload, and reports how many matched.
struct Asker {
    id: u64,
    expected: u64,
    matched: u64,
    errors: Vec<String>,
    done: Option<Reply<(u64, Vec<String>)>>,
}

enum AskerMsg {
    Start {
        echoes: Vec<Addr<Echo>>,
        per_echo: u64,
        done: Reply<(u64, Vec<String>)>,
    },
    Answer {
        echo: u64,
        x: u64,
        result: Result<u64, AskError>,
    },
}

impl Actor for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AskerMsg::Start {
                echoes,
                per_echo,
                done,
            } => {
                self.done = Some(done);
                self.expected = per_echo * echoes.len() as u64;
                for i in 0..per_echo {
                    for (e, echo) in echoes.iter().enumerate() {
                        let echo_id = e as u64;
                        let x = (self.id << 32) | (i << 8) | echo_id;
                        ctx.ask(
                            echo,
                            |r| EchoMsg::Ask(x, r),
                            ASK,
                            move |result| AskerMsg::Answer {
                                echo: echo_id,
                                x,
                                result,
                            },
                        );
                    }
                }
            }
            AskerMsg::Answer { echo, x, result } => {
                match result {
                    Ok(v) if v == answer(echo, x) => self.matched += 1,
                    other => self.errors.push(format!("payload {x:#x}: got {other:?}")),
                }
                if self.matched + self.errors.len() as u64 == self.expected
                    && let Some(done) = self.done.take()
                {
                    done.send((self.matched, std::mem::take(&mut self.errors)));
                }
            }
        }
    }
}

// Actors on every shard ask echoes on every shard at once; each continuation gets its own answer.
#[test]
fn context_ask_continuations_get_their_own_answers() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let echoes = echoes(&rt);
        let per_echo = 200u64;
        let askers: Vec<_> = (0..n)
            .map(|s| {
                rt.spawn_on(
                    s,
                    Asker {
                        id: s as u64,
                        expected: 0,
                        matched: 0,
                        errors: Vec::new(),
                        done: None,
                    },
                )
                .unwrap()
            })
            .collect();
        let runs: Vec<_> = askers
            .into_iter()
            .map(|a| {
                let echoes = echoes.clone();
                std::thread::spawn(move || {
                    a.ask(
                        |done| AskerMsg::Start {
                            echoes,
                            per_echo,
                            done,
                        },
                        ASK,
                    )
                })
            })
            .collect();
        for (s, run) in runs.into_iter().enumerate() {
            let (matched, errors) = join("asker actor", run).expect("asker reports");
            assert_eq!(errors, Vec::<String>::new(), "asker on shard {s}");
            assert_eq!(matched, per_echo * n as u64, "asker on shard {s}");
        }
        rt.shutdown().expect("clean shutdown");
    });
}

// Many `ask_async` futures in flight at once, driven by a std-only block_on, each resolve to
// their own answer.
#[test]
fn ask_async_with_hand_written_block_on() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let echoes = echoes(&rt);
        let mut rng = XorShift64::new(0xB10C_0001);
        let futures: Vec<_> = (0..400u64)
            .map(|i| {
                let e = rng.below(n);
                let fut = echoes[e].ask_async(move |r| EchoMsg::Ask(i, r), ASK);
                (e as u64, i, fut)
            })
            .collect();
        // Resolve in reverse order: answers must not depend on completion order.
        for (e, x, fut) in futures.into_iter().rev() {
            assert_eq!(block_on(fut), Ok(answer(e, x)), "payload {x}");
        }
        rt.shutdown().expect("clean shutdown");
    });
}

// `ask_async` futures spawned as tasks on a current-thread tokio runtime each get their answer.
#[test]
fn ask_async_on_tokio_current_thread() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let echoes = echoes(&rt);
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        tokio_rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            let mut rng = XorShift64::new(0x70C1_0001);
            for i in 0..400u64 {
                let e = rng.below(n);
                let echo = echoes[e].clone();
                tasks.spawn(async move {
                    let got = echo.ask_async(move |r| EchoMsg::Ask(i, r), ASK).await;
                    (e as u64, i, got)
                });
            }
            let all = tokio::time::timeout(common::DEADLINE, async {
                let mut seen = 0;
                while let Some(joined) = tasks.join_next().await {
                    let (e, x, got) = joined.expect("task");
                    assert_eq!(got, Ok(answer(e, x)), "payload {x}");
                    seen += 1;
                }
                seen
            })
            .await
            .expect("every ask_async completes within the deadline");
            assert_eq!(all, 400);
        });
        rt.shutdown().expect("clean shutdown");
    });
}
