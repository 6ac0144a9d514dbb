//! Ask timeouts and unanswered asks: the asker gets `Timeout(d)` with its own `d`; a late reply
//! is counted in `late_replies` and never reaches a later asker; a dropped `Reply` gives
//! `Dropped`; a blocking ask inside a handler gives `WouldBlock`. For the blocking `ask`,
//! `Context::ask` and `ask_async`.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{block_on, for_each_shard_count, join, wait_until};
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime};
use std::collections::HashMap;
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// Holds the replies it is asked to hold, and answers them in arrival order on `Release`.
#[derive(Default)]
struct Holder {
    held: Vec<Reply<u64>>,
}

enum HolderMsg {
    Hold(Reply<u64>),
    Release(u64),
    Held(Reply<usize>),
    Echo(u64, Reply<u64>),
    DropIt(Reply<u64>),
}

impl Actor for Holder {
    type Msg = HolderMsg;
    fn handle(&mut self, msg: HolderMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            HolderMsg::Hold(r) => self.held.push(r),
            HolderMsg::Release(base) => {
                for (i, r) in self.held.drain(..).enumerate() {
                    r.send(base + i as u64);
                }
            }
            HolderMsg::Held(r) => r.send(self.held.len()),
            HolderMsg::Echo(x, r) => r.send(x),
            HolderMsg::DropIt(r) => drop(r),
        }
    }
}

fn wait_held(h: &Addr<Holder>, n: usize) {
    wait_until(&format!("the holder to hold {n} replies"), || {
        h.ask(HolderMsg::Held, ASK).expect("held") == n
    });
}

fn wait_late(rt: &Runtime, n: u64) {
    wait_until(&format!("late_replies to reach {n}"), || {
        rt.late_replies() >= n
    });
    assert_eq!(rt.late_replies(), n, "exactly the late replies");
}

#[derive(Clone, Copy)]
enum Kind {
    Hold,
    Echo(u64),
    DropIt,
}

type Outcome = Result<u64, AskError>;

/// Asks a holder with `Context::ask` on request, and hands each outcome back to its requester.
#[derive(Default)]
struct Requester {
    next_tag: u64,
    waiting: HashMap<u64, Reply<Outcome>>,
}

enum ReqMsg {
    Ask {
        to: Addr<Holder>,
        kind: Kind,
        timeout: Duration,
        done: Reply<Outcome>,
    },
    Got(u64, Outcome),
    BlockingAsk(Addr<Holder>, Reply<Outcome>),
}

impl Actor for Requester {
    type Msg = ReqMsg;
    fn handle(&mut self, msg: ReqMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ReqMsg::Ask {
                to,
                kind,
                timeout,
                done,
            } => {
                let tag = self.next_tag;
                self.next_tag += 1;
                self.waiting.insert(tag, done);
                ctx.ask(
                    &to,
                    move |r| match kind {
                        Kind::Hold => HolderMsg::Hold(r),
                        Kind::Echo(x) => HolderMsg::Echo(x, r),
                        Kind::DropIt => HolderMsg::DropIt(r),
                    },
                    timeout,
                    move |outcome| ReqMsg::Got(tag, outcome),
                );
            }
            ReqMsg::Got(tag, outcome) => {
                let done = self.waiting.remove(&tag).expect("a requester per tag");
                done.send(outcome);
            }
            ReqMsg::BlockingAsk(to, done) => done.send(to.ask(|r| HolderMsg::Echo(1, r), ASK)),
        }
    }
}

fn request(req: &Addr<Requester>, to: &Addr<Holder>, kind: Kind, timeout: Duration) -> Outcome {
    req.ask(
        |done| ReqMsg::Ask {
            to: to.clone(),
            kind,
            timeout,
            done,
        },
        ASK,
    )
    .expect("the requester answers")
}

// Blocking ask: Timeout(d) with the caller's d; the late reply is counted and the next asker
// gets its own answer, not the late one.
#[test]
fn blocking_ask_times_out_and_late_reply_is_not_misdelivered() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let h = rt.spawn_on(n - 1, Holder::default()).unwrap();
        let d = Duration::from_millis(40);
        assert_eq!(h.ask(HolderMsg::Hold, d), Err(AskError::Timeout(d)));
        assert_eq!(rt.late_replies(), 0);
        let h2 = h.clone();
        let second = std::thread::spawn(move || h2.ask(HolderMsg::Hold, ASK));
        wait_held(&h, 2);
        h.tell(HolderMsg::Release(100)).unwrap();
        assert_eq!(join("second asker", second), Ok(101));
        wait_late(&rt, 1);
        assert_eq!(h.ask(|r| HolderMsg::Echo(7, r), ASK), Ok(7));
        rt.shutdown().expect("clean shutdown");
    });
}

// Context::ask: the timeout arrives as the continuation's Err(Timeout(d)); the late reply is
// counted, and a later ask from the same actor (same ask-table slot) gets its own answer.
#[test]
fn context_ask_times_out_and_late_reply_is_not_misdelivered() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let h = rt.spawn_on(n - 1, Holder::default()).unwrap();
        let req = rt.spawn_on(0, Requester::default()).unwrap();
        let d = Duration::from_millis(40);
        assert_eq!(request(&req, &h, Kind::Hold, d), Err(AskError::Timeout(d)));
        let (req2, h2) = (req.clone(), h.clone());
        let second = std::thread::spawn(move || request(&req2, &h2, Kind::Hold, ASK));
        wait_held(&h, 2);
        h.tell(HolderMsg::Release(100)).unwrap();
        assert_eq!(join("second request", second), Ok(101));
        wait_late(&rt, 1);
        assert_eq!(request(&req, &h, Kind::Echo(9), ASK), Ok(9));
        rt.shutdown().expect("clean shutdown");
    });
}

// ask_async: the shard-enforced timeout resolves the future with Timeout(d); the late reply is
// counted and the next future gets its own answer.
#[test]
fn ask_async_times_out_and_late_reply_is_not_misdelivered() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let h = rt.spawn_on(n - 1, Holder::default()).unwrap();
        let d = Duration::from_millis(40);
        assert_eq!(
            block_on(h.ask_async(HolderMsg::Hold, d)),
            Err(AskError::Timeout(d))
        );
        let second = h.ask_async(HolderMsg::Hold, ASK);
        wait_held(&h, 2);
        h.tell(HolderMsg::Release(100)).unwrap();
        assert_eq!(block_on(second), Ok(101));
        wait_late(&rt, 1);
        rt.shutdown().expect("clean shutdown");
    });
}

// A Reply dropped unanswered gives Dropped to every kind of asker, and is not a late reply.
#[test]
fn dropped_reply_gives_dropped() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let h = rt.spawn_on(n - 1, Holder::default()).unwrap();
        let req = rt.spawn_on(0, Requester::default()).unwrap();
        assert_eq!(h.ask(HolderMsg::DropIt, ASK), Err(AskError::Dropped));
        assert_eq!(request(&req, &h, Kind::DropIt, ASK), Err(AskError::Dropped));
        assert_eq!(
            block_on(h.ask_async(HolderMsg::DropIt, ASK)),
            Err(AskError::Dropped)
        );
        assert_eq!(rt.late_replies(), 0);
        rt.shutdown().expect("clean shutdown");
    });
}

// A blocking ask made inside a handler returns WouldBlock at once (target on the same shard or
// another), and the target never receives the request.
#[test]
fn blocking_ask_in_handler_would_block() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let req = rt.spawn_on(0, Requester::default()).unwrap();
        for s in 0..n {
            let h = rt.spawn_on(s, Holder::default()).unwrap();
            let got = req
                .ask(|done| ReqMsg::BlockingAsk(h.clone(), done), ASK)
                .expect("requester answers");
            assert_eq!(got, Err(AskError::WouldBlock), "target on shard {s}");
            assert_eq!(h.ask(|r| HolderMsg::Echo(3, r), ASK), Ok(3));
            wait_until("the holder's stats to count our Echo", || {
                h.stats().expect("alive").processed >= 1
            });
            assert_eq!(h.stats().expect("alive").processed, 1, "only our Echo");
        }
        rt.shutdown().expect("clean shutdown");
    });
}
