//! Statistics move as expected: per-actor `stats()` (processed, pending, processing time, mean
//! mailbox wait) and per-shard counters (handled, sent_local, sent_remote, injected).

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{block_shard, for_each_shard_count, wait_until};
use coreactor::{Actor, ActorStats, Addr, Context, Reply, Runtime, ShardStats, TimerId};
use std::time::{Duration, Instant};

const ASK: Duration = Duration::from_secs(30);
const SPIN: Duration = Duration::from_micros(100);

/// Spins for the given time in its handler; counts what it handled.
#[derive(Default)]
struct Worker {
    count: u64,
}

enum WorkMsg {
    Spin(Duration),
    Data,
    Count(Reply<u64>),
    Fanout {
        local: Addr<Worker>,
        remote: Option<Addr<Worker>>,
        k: u64,
    },
}

impl Actor for Worker {
    type Msg = WorkMsg;
    fn handle(&mut self, msg: WorkMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            WorkMsg::Spin(d) => {
                let t0 = Instant::now();
                while t0.elapsed() < d {
                    std::hint::spin_loop();
                }
                self.count += 1;
            }
            WorkMsg::Data => self.count += 1,
            WorkMsg::Count(r) => r.send(self.count),
            WorkMsg::Fanout { local, remote, k } => {
                for _ in 0..k {
                    local.tell(WorkMsg::Data).expect("room in the local sink");
                    if let Some(remote) = &remote {
                        remote.tell(WorkMsg::Data).expect("room in the remote sink");
                    }
                }
            }
        }
    }
}

fn stats(a: &Addr<Worker>) -> ActorStats {
    a.stats().expect("the actor is alive")
}

fn wait_processed(a: &Addr<Worker>, n: u64) -> ActorStats {
    wait_until(&format!("{a:?} to have processed {n}"), || {
        stats(a).processed >= n
    });
    let s = stats(a);
    assert_eq!(s.processed, n, "{s:?}");
    s
}

// An actor's stats count queued messages as pending, then as processed, with a processing max
// of at least the 100 µs its handler spins, and a mean mailbox wait of at least the time the
// messages sat behind a held shard.
#[test]
fn actor_stats_move() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let s = n - 1;
        let w = rt.spawn_on(s, Worker::default()).unwrap();
        assert_eq!(w.ask(WorkMsg::Count, ASK), Ok(0));
        wait_processed(&w, 1);
        let (gate, guard, _blocker) = block_shard(&rt, s);
        for _ in 0..10 {
            w.tell(WorkMsg::Spin(SPIN)).unwrap();
        }
        let sent = Instant::now();
        let held = stats(&w);
        assert_eq!((held.processed, held.pending), (1, 10), "{held:?}");
        assert_eq!(w.mailbox_len(), 10);
        let released = Instant::now();
        gate.open();
        drop(guard);
        let done = wait_processed(&w, 11);
        assert_eq!(done.pending, 0);
        assert!(done.processing_max >= SPIN, "{done:?}");
        assert!(done.processing_total >= SPIN * 10, "{done:?}");
        assert!(done.processing_max <= done.processing_total, "{done:?}");
        // Ten of the eleven messages waited at least from `sent` to `released`.
        let floor = (released - sent) * 10 / 11;
        assert!(
            done.mean_mailbox_wait >= floor,
            "mean wait {:?} below {floor:?}",
            done.mean_mailbox_wait
        );
        rt.shutdown().expect("clean shutdown");
    });
}

fn delta(after: &[ShardStats], before: &[ShardStats], f: impl Fn(&ShardStats) -> u64) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| f(a) - f(b)).collect()
}

// Per-shard counters: an actor on shard 0 sending k messages to a sink on its own shard and k to
// one on the last shard moves sent_local and sent_remote by k, handled by what each shard ran,
// and injected by the one message from outside.
#[test]
fn shard_counters_move() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let last = n - 1;
        let relay = rt.spawn_on(0, Worker::default()).unwrap();
        let local = rt.spawn_on(0, Worker::default()).unwrap();
        let remote = (n > 1).then(|| rt.spawn_on(last, Worker::default()).unwrap());
        for a in [&relay, &local].into_iter().chain(&remote) {
            assert_eq!(a.ask(WorkMsg::Count, ASK), Ok(0));
            wait_processed(a, 1);
        }
        let k = 50;
        let before = rt.shard_stats();
        relay
            .tell(WorkMsg::Fanout {
                local: local.clone(),
                remote: remote.clone(),
                k,
            })
            .unwrap();
        wait_processed(&local, 1 + k);
        if let Some(remote) = &remote {
            wait_processed(remote, 1 + k);
        }
        let mut handled = vec![0; n];
        handled[0] = 1 + k;
        if n > 1 {
            handled[last] = k;
        }
        wait_until("the shard handled counters", || {
            delta(&rt.shard_stats(), &before, |s| s.handled) >= handled
        });
        let after = rt.shard_stats();
        assert_eq!(delta(&after, &before, |s| s.handled), handled);
        let mut sent_local = vec![0; n];
        sent_local[0] = k;
        assert_eq!(delta(&after, &before, |s| s.sent_local), sent_local);
        let mut sent_remote = vec![0; n];
        if n > 1 {
            sent_remote[0] = k;
        }
        assert_eq!(delta(&after, &before, |s| s.sent_remote), sent_remote);
        let mut injected = vec![0; n];
        injected[0] = 1;
        assert_eq!(delta(&after, &before, |s| s.injected), injected);
        assert_eq!(
            after.iter().map(|s| s.shard).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
        rt.shutdown().expect("clean shutdown");
    });
}

/// Starts a 1 ms interval when spawned; after three ticks cancels it and reports to its parent
/// how long the ticks took on the shard clock.
struct Ticker {
    parent: Addr<Parent>,
    started: Duration,
    ticks: u32,
    timer: Option<TimerId>,
}

struct Tick;

impl Actor for Ticker {
    type Msg = Tick;
    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        self.started = ctx.now();
        self.timer = Some(ctx.interval(Duration::from_millis(1), || Tick));
    }

    fn handle(&mut self, _: Tick, ctx: &mut Context<'_, Self>) {
        self.ticks += 1;
        if self.ticks == 3 {
            ctx.cancel_timer(self.timer.take().expect("armed"));
            let window = ctx.now() - self.started;
            let _ = self.parent.tell(ParentMsg::Done(ctx.addr(), window));
        }
    }
}

/// Spawns a [`Ticker`] once the runtime has run for 200 ms (on a timer).
#[derive(Default)]
struct Parent {
    reply: Option<Reply<(Addr<Ticker>, Duration)>>,
}

enum ParentMsg {
    Start(Reply<(Addr<Ticker>, Duration)>),
    Begin,
    Done(Addr<Ticker>, Duration),
}

impl Actor for Parent {
    type Msg = ParentMsg;
    fn handle(&mut self, msg: ParentMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ParentMsg::Start(r) => {
                self.reply = Some(r);
                ctx.send_after(Duration::from_millis(200), ParentMsg::Begin);
            }
            ParentMsg::Begin => {
                let ticker = Ticker {
                    parent: ctx.addr(),
                    started: Duration::ZERO,
                    ticks: 0,
                    timer: None,
                };
                ctx.spawn(ticker).expect("spawn ticker");
            }
            ParentMsg::Done(addr, window) => {
                self.reply.take().expect("started").send((addr, window));
            }
        }
    }
}

// Interval ticks wait in the mailbox no longer than the ticks took: an actor whose only messages
// are three ticks of a 1 ms interval cannot report a mean mailbox wait beyond that window.
#[test]

fn interval_ticks_mailbox_wait_is_bounded() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder().shards(n).build().unwrap();
        let parent = rt.spawn_on(n - 1, Parent::default()).unwrap();
        let (ticker, window) = parent.ask(ParentMsg::Start, ASK).unwrap();
        wait_until("the ticker's stats to count three ticks", || {
            ticker.stats().is_some_and(|s| s.processed >= 3)
        });
        let s = ticker.stats().expect("alive");
        assert_eq!(s.processed, 3);
        assert!(
            s.mean_mailbox_wait <= window,
            "mean wait {:?} beyond the {window:?} the three ticks took",
            s.mean_mailbox_wait
        );
        rt.shutdown().expect("clean shutdown");
    });
}
