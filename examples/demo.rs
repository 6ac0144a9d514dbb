//! The main demo: actors on every shard, cross-shard tells and asks, a timer, a panicking actor
//! that fails alone, and the statistics the runtime keeps.
//!
//! Run: `cargo run --release --example demo`

use coreactor::{Actor, AskError, Context, Reply, Runtime};
use std::time::{Duration, Instant};

/// Keeps a running sum; answers `Get` with it.
struct Accumulator {
    sum: u64,
}

enum AccMsg {
    Add(u64),
    Get(Reply<u64>),
    Boom,
}

impl Actor for Accumulator {
    type Msg = AccMsg;
    fn handle(&mut self, msg: AccMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            AccMsg::Add(n) => self.sum += n,
            AccMsg::Get(reply) => reply.send(self.sum),
            AccMsg::Boom => panic!("this actor fails alone"),
        }
    }
}

/// Pings a peer on another shard with `Context::ask`, counting round trips.
struct Pinger {
    peer: coreactor::Addr<Ponger>,
    left: u64,
    done: Option<Reply<Duration>>,
    started: Option<Instant>,
}

enum PingMsg {
    Start(u64, Reply<Duration>),
    Pong(Result<u64, AskError>),
}

impl Actor for Pinger {
    type Msg = PingMsg;
    fn handle(&mut self, msg: PingMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            PingMsg::Start(n, done) => {
                self.left = n;
                self.done = Some(done);
                self.started = Some(Instant::now());
            }
            PingMsg::Pong(r) => {
                r.expect("pong");
                self.left -= 1;
            }
        }
        if self.left == 0 {
            if let (Some(done), Some(t0)) = (self.done.take(), self.started) {
                done.send(t0.elapsed());
            }
            return;
        }
        ctx.ask(
            &self.peer,
            |r| PongMsg::Ping(self.left, r),
            Duration::from_secs(5),
            PingMsg::Pong,
        );
    }
}

struct Ponger;
enum PongMsg {
    Ping(u64, Reply<u64>),
}
impl Actor for Ponger {
    type Msg = PongMsg;
    fn handle(&mut self, PongMsg::Ping(n, r): PongMsg, _ctx: &mut Context<'_, Self>) {
        r.send(n);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().shards(2).build()?;
    for info in rt.shard_info() {
        println!(
            "shard {} on thread {:?} ({}), cpu {:?}",
            info.shard, info.thread_id, info.thread_name, info.cpu
        );
    }

    // One accumulator per shard, fed from this (outside) thread.
    let accs: Vec<_> = (0..rt.shard_count())
        .map(|s| rt.spawn_on(s, Accumulator { sum: 0 }))
        .collect::<Result<_, _>>()?;
    let n = 1_000_000u64;
    let t0 = Instant::now();
    for i in 0..n {
        accs[(i % accs.len() as u64) as usize].tell(AccMsg::Add(i))?;
    }
    let mut total = 0;
    for a in &accs {
        total += a.ask(AccMsg::Get, Duration::from_secs(10))?;
    }
    let dt = t0.elapsed();
    assert_eq!(total, n * (n - 1) / 2);
    println!(
        "{n} tells from an outside thread in {dt:?} ({:.1} M msgs/s), sum checked",
        n as f64 / dt.as_secs_f64() / 1e6
    );

    // Cross-shard asks between actors: each round trip is two ring hops.
    let ponger = rt.spawn_on(1, Ponger)?;
    let pinger = rt.spawn_on(
        0,
        Pinger {
            peer: ponger,
            left: 0,
            done: None,
            started: None,
        },
    )?;
    let rounds = 200_000;
    let took = pinger.ask(|r| PingMsg::Start(rounds, r), Duration::from_secs(30))?;
    println!(
        "{rounds} actor-to-actor asks across shards in {took:?} ({:.2} µs per round trip)",
        took.as_secs_f64() * 1e6 / rounds as f64
    );

    // A panicking handler fails its actor only.
    accs[0].tell(AccMsg::Boom)?;
    let after = accs[0].ask(AccMsg::Get, Duration::from_secs(1));
    println!("ask to the failed actor: {after:?}");
    println!(
        "the other actor still answers: {:?}",
        accs[1].ask(AccMsg::Get, Duration::from_secs(1))?
    );

    for s in rt.shard_stats() {
        println!(
            "shard {}: handled {}, sent local {}, sent remote {}, ring overflow {}, parks {}, wake-ups sent {}",
            s.shard,
            s.handled,
            s.sent_local,
            s.sent_remote,
            s.ring_overflow,
            s.parks,
            s.wakeups_sent
        );
    }
    if let Some(st) = accs[1].stats() {
        println!(
            "accumulator on shard 1: processed {}, processing total {:?}, max {:?}, mean mailbox wait {:?}",
            st.processed, st.processing_total, st.processing_max, st.mean_mailbox_wait
        );
    }
    println!(
        "dead letters: {}, late replies: {}",
        rt.dead_letters(),
        rt.late_replies()
    );
    rt.shutdown()?;
    Ok(())
}
