//! coreactor: every workload on a 2-shard runtime (default `Placement::Spread`: shard 0 on
//! CPU 0, shard 1 on CPU 1), actors placed explicitly with `spawn_on`.
//!
//! Placement per workload: ping-pong, counting and actor-to-actor ask put the two actors on
//! shards 0 and 1 (every message crosses shards); counting-same-worker puts both on shard 0; fan-in's sink is on shard 0; the thread ring
//! is split in contiguous halves (actors `0..n/2` on shard 0, so two hops per lap cross
//! shards, as a user would place a pipeline); fork-join spreads its actors `i % 2`; creation
//! alternates shards. Unbounded workloads (counting, fork-join) raise `mailbox_capacity` above
//! the run's message count, since coreactor mailboxes are always bounded; fan-in sets it to
//! the workload's bound. Outside threads use `tell` (which waits while a mailbox is full) or
//! `Addr::ask`; actors use `try_tell` and `Context::ask`.

use crate::common::actors::{PingMsg, Pinger, PongMsg, Ponger, RespMsg, Responder, must_tell};
use crate::common::{new_hist, record, work_item};
use crate::workload::{AskSession, Peer, Session, WAIT_TIMEOUT, signal, timed, wait, wait_n};
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// The coreactor peer.
pub struct Coreactor;

fn runtime(mailbox_capacity: Option<usize>) -> Runtime {
    let mut b = Runtime::builder().shards(2);
    if let Some(c) = mailbox_capacity {
        b = b.mailbox_capacity(c.clamp(1, 1 << 24));
    }
    // `COREACTOR_*` variables tune the runtime for a run (`docs/config.md`), e.g.
    // `COREACTOR_SHARD_INJECT_PACING_US=0` to compare without lane pacing.
    b.from_env()
        .expect("COREACTOR_* variables")
        .build()
        .expect("coreactor runtime")
}

fn shutdown(rt: Runtime) {
    rt.shutdown().expect("coreactor shutdown");
}

// ----- counting -------------------------------------------------------------------------------

/// The counting pair's message: one byte, like every peer's (`Incr` or `Fence`).
enum CounterMsg {
    Incr,
    Fence,
}

/// Counts `Incr`s; a fence signals the count on `done` and resets it (the peers' completion).
struct Counter {
    seen: u64,
    done: Sender<u64>,
}

impl Actor for Counter {
    type Msg = CounterMsg;
    fn handle(&mut self, msg: CounterMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            CounterMsg::Incr => self.seen += 1,
            CounterMsg::Fence => signal(&self.done, std::mem::take(&mut self.seen)),
        }
    }
}

/// Sends `k` increments, then the fence.
struct Producer {
    counter: Addr<Counter>,
}

impl Actor for Producer {
    type Msg = u64;
    fn handle(&mut self, k: u64, _ctx: &mut Context<'_, Self>) {
        for _ in 0..k {
            must_tell(&self.counter, CounterMsg::Incr);
        }
        must_tell(&self.counter, CounterMsg::Fence);
    }
}

struct CountingSession {
    rt: Option<Runtime>,
    producer: Addr<Producer>,
    done_rx: Receiver<u64>,
}

/// Producer on shard 0, counter on `counter_shard`.
fn counting_session(counter_shard: usize) -> Box<dyn Session> {
    // Big enough for the full run's flood: coreactor mailboxes are always bounded.
    let rt = runtime(Some(crate::workload::Sizes::full().counting as usize + 64));
    let (done, done_rx) = unbounded();
    let counter = rt
        .spawn_on(counter_shard, Counter { seen: 0, done })
        .expect("spawn");
    let producer = rt.spawn_on(0, Producer { counter }).expect("spawn");
    Box::new(CountingSession {
        rt: Some(rt),
        producer,
        done_rx,
    })
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.producer.tell(k).expect("coreactor counting run");
        let seen = wait(&self.done_rx, "coreactor counting");
        assert_eq!(seen, k, "coreactor counting: counter saw a wrong count");
    }
}

impl Drop for CountingSession {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            shutdown(rt);
        }
    }
}

// ----- fan-in, ring, fork-join, creation ------------------------------------------------------

/// Counts zero-sized messages (fan-in sink) and signals `done` with the count once it reaches
/// `total`: the message and the completion of the threads, tokio and actix sinks.
struct Sink {
    seen: u64,
    total: u64,
    done: Sender<u64>,
}

impl Actor for Sink {
    type Msg = ();
    fn handle(&mut self, (): (), _ctx: &mut Context<'_, Self>) {
        self.seen += 1;
        if self.seen == self.total {
            signal(&self.done, self.seen);
        }
    }
}

enum RingMsg {
    SetNext(Addr<RingNode>, Reply<()>),
    Token(u64),
}

/// A ring member: forwards the token with one pass less; the last pass signals `done`.
struct RingNode {
    next: Option<Addr<RingNode>>,
    done: Sender<u64>,
}

impl Actor for RingNode {
    type Msg = RingMsg;
    fn handle(&mut self, msg: RingMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            RingMsg::SetNext(next, ack) => {
                self.next = Some(next);
                ack.send(());
            }
            RingMsg::Token(0) => signal(&self.done, 0),
            RingMsg::Token(h) => must_tell(
                self.next.as_ref().expect("ring linked"),
                RingMsg::Token(h - 1),
            ),
        }
    }
}

/// A fork-join worker: one work item per message, `done` after the last.
struct FjWorker {
    left: u64,
    acc: u64,
    done: Sender<u64>,
}

impl Actor for FjWorker {
    type Msg = ();
    fn handle(&mut self, (): (), _ctx: &mut Context<'_, Self>) {
        work_item(&mut self.acc);
        self.left -= 1;
        if self.left == 0 {
            signal(&self.done, 1);
        }
    }
}

/// A fork-join creation child: stops on its first message and signals from `stopped`.
struct Child {
    done: Sender<u64>,
}

impl Actor for Child {
    type Msg = ();
    fn handle(&mut self, (): (), ctx: &mut Context<'_, Self>) {
        ctx.stop();
    }
    fn stopped(&mut self, _reason: &coreactor::StopReason, _ctx: &mut Context<'_, Self>) {
        signal(&self.done, 1);
    }
}

// ----- actor-to-actor ask -----------------------------------------------------------------------

/// Makes `warm + n` closed-loop `Context::ask`s, recording the last `n` round trips (from just
/// before `ask` to the start of the handler of the answer).
struct Asker {
    peer: Addr<Responder>,
    hist: Histogram<u64>,
    warm_left: u64,
    left: u64,
    t0: Instant,
    done: Option<Reply<Histogram<u64>>>,
}

enum AskerMsg {
    Run(u64, u64, Reply<Histogram<u64>>),
    Answer(Result<u64, AskError>),
}

impl Asker {
    fn fire(&mut self, ctx: &mut Context<'_, Self>) {
        self.t0 = Instant::now();
        ctx.ask(
            &self.peer,
            |r| RespMsg::Req(7, r),
            WAIT_TIMEOUT,
            AskerMsg::Answer,
        );
    }
}

impl Actor for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AskerMsg::Run(warm, n, reply) => {
                self.warm_left = warm;
                self.left = n;
                self.done = Some(reply);
                self.fire(ctx);
            }
            AskerMsg::Answer(r) => {
                let d = self.t0.elapsed();
                assert_eq!(r.expect("coreactor Context::ask answered"), 7);
                if self.warm_left > 0 {
                    self.warm_left -= 1;
                } else {
                    record(&mut self.hist, d);
                    self.left -= 1;
                }
                if self.left > 0 {
                    self.fire(ctx);
                } else if let Some(done) = self.done.take() {
                    done.send(std::mem::replace(&mut self.hist, new_hist()));
                }
            }
        }
    }
}

struct OutsideAsk {
    rt: Option<Runtime>,
    responder: Addr<Responder>,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        for i in 0..k {
            let t0 = Instant::now();
            let v = self
                .responder
                .ask(|r| RespMsg::Req(i, r), WAIT_TIMEOUT)
                .expect("coreactor outside ask");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if let Some(h) = hist.as_deref_mut() {
                record(h, d);
            }
        }
    }
}

impl Drop for OutsideAsk {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            shutdown(rt);
        }
    }
}

impl Peer for Coreactor {
    fn name(&self) -> &'static str {
        "coreactor"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let rt = runtime(None);
        let ponger = rt.spawn_on(1, Ponger { pinger: None }).expect("spawn");
        let pinger = rt
            .spawn_on(
                0,
                Pinger {
                    ponger: ponger.clone(),
                    left: 0,
                    done: None,
                },
            )
            .expect("spawn");
        ponger
            .tell(PongMsg::Attach(pinger.clone()))
            .expect("attach");
        // The attach travels by the outside injection queue and the first ping by the ring from
        // shard 0: wait until the ponger handled the attach, so the ping cannot overtake it.
        let deadline = Instant::now() + WAIT_TIMEOUT;
        while ponger.stats().is_none_or(|s| s.processed == 0) {
            assert!(
                Instant::now() < deadline,
                "coreactor ping-pong: attach not handled"
            );
            std::thread::yield_now();
        }
        let t0 = Instant::now();
        pinger
            .ask(|r| PingMsg::Start(n, r), WAIT_TIMEOUT)
            .expect("coreactor ping-pong");
        let d = t0.elapsed();
        shutdown(rt);
        d
    }

    fn counting(&self) -> Box<dyn Session> {
        counting_session(1)
    }

    fn counting_same_worker(&self) -> Option<Box<dyn Session>> {
        Some(counting_session(0))
    }

    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration {
        let rt = runtime(Some(bound));
        let (done, done_rx) = unbounded();
        let total = 2 * per_producer;
        let sink = rt
            .spawn_on(
                0,
                Sink {
                    seen: 0,
                    total,
                    done,
                },
            )
            .expect("spawn");
        let t0 = Instant::now();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let sink = sink.clone();
                std::thread::Builder::new()
                    .name(format!("fan-in-{p}"))
                    .spawn(move || {
                        for _ in 0..per_producer {
                            sink.tell(()).expect("coreactor fan-in tell");
                        }
                    })
                    .expect("spawn producer")
            })
            .collect();
        for p in producers {
            p.join().expect("producer thread");
        }
        let seen = wait_n(&done_rx, 1, "coreactor fan-in");
        let d = t0.elapsed();
        assert_eq!(seen, total, "coreactor fan-in count");
        shutdown(rt);
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let rt = runtime(None);
        let (done, done_rx) = unbounded();
        let nodes: Vec<_> = (0..actors)
            .map(|i| {
                let shard = i * 2 / actors;
                rt.spawn_on(
                    shard,
                    RingNode {
                        next: None,
                        done: done.clone(),
                    },
                )
                .expect("spawn")
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let next = nodes[(i + 1) % actors].clone();
            node.ask(|r| RingMsg::SetNext(next, r), WAIT_TIMEOUT)
                .expect("link ring");
        }
        let d = timed(&done_rx, 0, "coreactor thread-ring", || {
            nodes[0].tell(RingMsg::Token(hops)).expect("inject token");
        });
        shutdown(rt);
        d
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let rt = runtime(Some(per_actor as usize + 64));
        let (done, done_rx) = unbounded();
        let workers: Vec<_> = (0..actors)
            .map(|i| {
                rt.spawn_on(
                    i % 2,
                    FjWorker {
                        left: per_actor,
                        acc: 1,
                        done: done.clone(),
                    },
                )
                .expect("spawn")
            })
            .collect();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for w in &workers {
                w.tell(()).expect("fork-join tell");
            }
        }
        let n = wait_n(&done_rx, actors, "coreactor fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        d
    }

    fn creation(&self, actors: usize) -> Option<Duration> {
        let rt = runtime(None);
        let (done, done_rx) = unbounded();
        let t0 = Instant::now();
        for i in 0..actors {
            let child = rt
                .spawn_on(i % 2, Child { done: done.clone() })
                .expect("spawn child");
            child.tell(()).expect("first message");
        }
        let n = wait_n(&done_rx, actors, "coreactor creation");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        Some(d)
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        // Responder on shard 0 (CPU 0); the asking thread is pinned to CPU 1 by main, where
        // shard 1 sits idle (parked).
        let rt = runtime(None);
        let responder = rt.spawn_on(0, Responder).expect("spawn");
        Box::new(OutsideAsk {
            rt: Some(rt),
            responder,
        })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let rt = runtime(None);
        let responder = rt.spawn_on(1, Responder).expect("spawn");
        let asker = rt
            .spawn_on(
                0,
                Asker {
                    peer: responder,
                    hist: new_hist(),
                    warm_left: 0,
                    left: 0,
                    t0: Instant::now(),
                    done: None,
                },
            )
            .expect("spawn");
        let h = asker
            .ask(|r| AskerMsg::Run(warm, n, r), WAIT_TIMEOUT)
            .expect("coreactor actor ask run");
        shutdown(rt);
        h
    }
}
