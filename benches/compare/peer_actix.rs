//! actix 0.13: actors on two `Arbiter`s (each an OS thread with a single-threaded tokio
//! runtime), the actix way of using two cores.
//!
//! Cores: arbiter 0 and arbiter 1 play the part of coreactor's shards 0 and 1 (not pinned:
//! actix has no pinning). Pairs (ping-pong, counting, actor-to-actor ask) sit one on each
//! arbiter; the ring is split in contiguous halves; fork-join and creation alternate arbiters;
//! fan-in's sink and the outside-ask responder are on arbiter 0. Tells use `do_send` (which
//! ignores the mailbox capacity: actix's unbounded path); fan-in sets the sink's mailbox
//! capacity to the bound and its outside producers retry `try_send` while it is full. Outside
//! asks block on `Addr::send` with a current-thread tokio runtime; the actor-to-actor asker
//! awaits `Addr::send` inside a `ResponseFuture` returned by its handler.

use crate::common::{new_hist, record, work_item};
use crate::workload::{AskSession, Peer, Session, signal, timed, wait, wait_n};
use actix::prelude::*;
use actix_rt::{Arbiter, System, SystemRunner};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// The actix peer. Holds the `System` that arbiters register with (created on, and used
/// from, the bench's main thread).
pub struct Actix {
    _system: SystemRunner,
}

impl Actix {
    /// Creates the actix `System` on the calling thread.
    pub fn new() -> Self {
        Actix {
            _system: System::new(),
        }
    }
}

/// Two arbiters, stopped and joined on drop.
struct Arbiters(Vec<Arbiter>);

impl Arbiters {
    fn new() -> Self {
        Arbiters((0..2).map(|_| Arbiter::new()).collect())
    }
    fn get(&self, i: usize) -> ArbiterHandle {
        self.0[i % 2].handle()
    }
}

impl Drop for Arbiters {
    fn drop(&mut self) {
        for a in &self.0 {
            a.stop();
        }
        for a in self.0.drain(..) {
            let _ = a.join();
        }
    }
}

/// A current-thread tokio runtime for blocking on actix futures from an outside thread.
fn blocker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime")
}

// ----- messages ---------------------------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "()")]
struct Ping;

#[derive(Message)]
#[rtype(result = "()")]
struct Pong;

#[derive(Message)]
#[rtype(result = "()")]
struct Start(u64);

#[derive(Message)]
#[rtype(result = "()")]
struct Incr;

#[derive(Message)]
#[rtype(result = "()")]
struct Fence;

#[derive(Message)]
#[rtype(result = "()")]
struct Go;

#[derive(Message)]
#[rtype(result = "()")]
struct Token(u64);

#[derive(Message)]
#[rtype(result = "()")]
struct SetNext(Addr<RingNode>);

#[derive(Message)]
#[rtype(result = "u64")]
struct Req(u64);

#[derive(Message)]
#[rtype(result = "()")]
struct RunAsks(u64, u64);

// ----- actors -----------------------------------------------------------------------------------

struct Ponger {
    pinger: Addr<Pinger>,
}
impl Actor for Ponger {
    type Context = Context<Self>;
}
impl Handler<Ping> for Ponger {
    type Result = ();
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {
        self.pinger.do_send(Pong);
    }
}

struct Pinger {
    ponger: Option<Addr<Ponger>>,
    left: u64,
    done: Sender<u64>,
    n: u64,
}
impl Actor for Pinger {
    type Context = Context<Self>;
}
impl Handler<SetPonger> for Pinger {
    type Result = ();
    fn handle(&mut self, SetPonger(p): SetPonger, _: &mut Context<Self>) {
        self.ponger = Some(p);
    }
}
impl Handler<Start> for Pinger {
    type Result = ();
    fn handle(&mut self, Start(n): Start, _: &mut Context<Self>) {
        self.n = n;
        self.left = n;
        self.ponger.as_ref().expect("linked").do_send(Ping);
    }
}
impl Handler<Pong> for Pinger {
    type Result = ();
    fn handle(&mut self, _: Pong, _: &mut Context<Self>) {
        self.left -= 1;
        if self.left == 0 {
            signal(&self.done, self.n);
        } else {
            self.ponger.as_ref().expect("linked").do_send(Ping);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct SetPonger(Addr<Ponger>);

/// Counts `Incr`s; a `Fence` signals the count and resets it. Also the fan-in sink.
struct Counter {
    seen: u64,
    done: Sender<u64>,
}
impl Actor for Counter {
    type Context = Context<Self>;
}
impl Handler<Incr> for Counter {
    type Result = ();
    fn handle(&mut self, _: Incr, _: &mut Context<Self>) {
        self.seen += 1;
    }
}
impl Handler<Fence> for Counter {
    type Result = ();
    fn handle(&mut self, _: Fence, _: &mut Context<Self>) {
        signal(&self.done, std::mem::take(&mut self.seen));
    }
}

struct Producer {
    counter: Addr<Counter>,
}
impl Actor for Producer {
    type Context = Context<Self>;
}
impl Handler<Start> for Producer {
    type Result = ();
    fn handle(&mut self, Start(k): Start, _: &mut Context<Self>) {
        for _ in 0..k {
            self.counter.do_send(Incr);
        }
        self.counter.do_send(Fence);
    }
}

struct RingNode {
    next: Option<Addr<RingNode>>,
    done: Sender<u64>,
}
impl Actor for RingNode {
    type Context = Context<Self>;
}
impl Handler<SetNext> for RingNode {
    type Result = ();
    fn handle(&mut self, SetNext(n): SetNext, _: &mut Context<Self>) {
        self.next = Some(n);
    }
}
impl Handler<Token> for RingNode {
    type Result = ();
    fn handle(&mut self, Token(h): Token, _: &mut Context<Self>) {
        if h == 0 {
            signal(&self.done, 0);
        } else {
            self.next
                .as_ref()
                .expect("ring linked")
                .do_send(Token(h - 1));
        }
    }
}

struct FjWorker {
    left: u64,
    acc: u64,
    done: Sender<u64>,
}
impl Actor for FjWorker {
    type Context = Context<Self>;
}
impl Handler<Go> for FjWorker {
    type Result = ();
    fn handle(&mut self, _: Go, _: &mut Context<Self>) {
        work_item(&mut self.acc);
        self.left -= 1;
        if self.left == 0 {
            signal(&self.done, 1);
        }
    }
}

struct Child {
    done: Sender<u64>,
}
impl Actor for Child {
    type Context = Context<Self>;
    fn stopped(&mut self, _: &mut Context<Self>) {
        signal(&self.done, 1);
    }
}
impl Handler<Go> for Child {
    type Result = ();
    fn handle(&mut self, _: Go, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Responder;
impl Actor for Responder {
    type Context = Context<Self>;
}
impl Handler<Req> for Responder {
    type Result = u64;
    fn handle(&mut self, Req(x): Req, _: &mut Context<Self>) -> u64 {
        x
    }
}

struct Asker {
    peer: Addr<Responder>,
    done: Sender<Histogram<u64>>,
}
impl Actor for Asker {
    type Context = Context<Self>;
}
impl Handler<RunAsks> for Asker {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, RunAsks(warm, n): RunAsks, _: &mut Context<Self>) -> Self::Result {
        let peer = self.peer.clone();
        let done = self.done.clone();
        Box::pin(async move {
            let mut h = new_hist();
            for i in 0..warm + n {
                let t0 = Instant::now();
                let v = peer.send(Req(i)).await.expect("actix ask answered");
                let d = t0.elapsed();
                assert_eq!(v, i);
                if i >= warm {
                    record(&mut h, d);
                }
            }
            let _ = done.send(h);
        })
    }
}

// ----- sessions ---------------------------------------------------------------------------------

struct CountingSession {
    producer: Addr<Producer>,
    done_rx: Receiver<u64>,
    _arbiters: Arbiters,
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.producer.do_send(Start(k));
        let seen = wait(&self.done_rx, "actix counting");
        assert_eq!(seen, k, "actix counting: counter saw a wrong count");
    }
}

struct OutsideAsk {
    responder: Addr<Responder>,
    blocker: tokio::runtime::Runtime,
    _arbiters: Arbiters,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        for i in 0..k {
            let t0 = Instant::now();
            let v = self
                .blocker
                .block_on(self.responder.send(Req(i)))
                .expect("actix outside ask");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if let Some(h) = hist.as_deref_mut() {
                record(h, d);
            }
        }
    }
}

impl Peer for Actix {
    fn name(&self) -> &'static str {
        "actix"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let pinger = Pinger::start_in_arbiter(&arbs.get(0), move |_| Pinger {
            ponger: None,
            left: 0,
            done,
            n: 0,
        });
        let p = pinger.clone();
        let ponger = Ponger::start_in_arbiter(&arbs.get(1), move |_| Ponger { pinger: p });
        // `send` waits until the pinger handled it, so the start below finds it linked.
        blocker()
            .block_on(pinger.send(SetPonger(ponger)))
            .expect("link ping-pong");
        timed(&done_rx, n, "actix ping-pong", || pinger.do_send(Start(n)))
    }

    fn counting(&self) -> Box<dyn Session> {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let counter = Counter::start_in_arbiter(&arbs.get(1), move |_| Counter { seen: 0, done });
        let producer = Producer::start_in_arbiter(&arbs.get(0), move |_| Producer { counter });
        Box::new(CountingSession {
            producer,
            done_rx,
            _arbiters: arbs,
        })
    }

    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let sink = Counter::start_in_arbiter(&arbs.get(0), move |ctx| {
            ctx.set_mailbox_capacity(bound);
            Counter { seen: 0, done }
        });
        let t0 = Instant::now();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let sink = sink.clone();
                std::thread::Builder::new()
                    .name(format!("fan-in-{p}"))
                    .spawn(move || {
                        for _ in 0..per_producer {
                            let mut msg = Incr;
                            let mut spins = 0u32;
                            loop {
                                match sink.try_send(msg) {
                                    Ok(()) => break,
                                    Err(SendError::Full(m)) => {
                                        msg = m;
                                        spins += 1;
                                        if spins > 64 {
                                            std::thread::yield_now();
                                        }
                                    }
                                    Err(SendError::Closed(_)) => panic!("actix fan-in: sink gone"),
                                }
                            }
                        }
                    })
                    .expect("spawn producer")
            })
            .collect();
        for p in producers {
            p.join().expect("producer");
        }
        sink.do_send(Fence);
        let seen = wait(&done_rx, "actix fan-in");
        let d = t0.elapsed();
        assert_eq!(seen, 2 * per_producer, "actix fan-in count");
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let nodes: Vec<_> = (0..actors)
            .map(|i| {
                let done = done.clone();
                RingNode::start_in_arbiter(&arbs.get(i * 2 / actors), move |_| RingNode {
                    next: None,
                    done,
                })
            })
            .collect();
        let b = blocker();
        for (i, node) in nodes.iter().enumerate() {
            b.block_on(node.send(SetNext(nodes[(i + 1) % actors].clone())))
                .expect("link ring");
        }
        timed(&done_rx, 0, "actix thread-ring", || {
            nodes[0].do_send(Token(hops))
        })
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let workers: Vec<_> = (0..actors)
            .map(|i| {
                let done = done.clone();
                FjWorker::start_in_arbiter(&arbs.get(i), move |_| FjWorker {
                    left: per_actor,
                    acc: 1,
                    done,
                })
            })
            .collect();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for w in &workers {
                w.do_send(Go);
            }
        }
        let n = wait_n(&done_rx, actors, "actix fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        d
    }

    fn creation(&self, actors: usize) -> Option<Duration> {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let handles = [arbs.get(0), arbs.get(1)];
        let t0 = Instant::now();
        for i in 0..actors {
            let done = done.clone();
            let child = Child::start_in_arbiter(&handles[i % 2], move |_| Child { done });
            child.do_send(Go);
        }
        let n = wait_n(&done_rx, actors, "actix creation");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        Some(d)
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        let arbs = Arbiters::new();
        let responder = Responder::start_in_arbiter(&arbs.get(0), |_| Responder);
        Box::new(OutsideAsk {
            responder,
            blocker: blocker(),
            _arbiters: arbs,
        })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let arbs = Arbiters::new();
        let (done, done_rx) = unbounded();
        let responder = Responder::start_in_arbiter(&arbs.get(1), |_| Responder);
        let asker = Asker::start_in_arbiter(&arbs.get(0), move |_| Asker {
            peer: responder,
            done,
        });
        asker.do_send(RunAsks(warm, n));
        wait(&done_rx, "actix actor ask")
    }
}
