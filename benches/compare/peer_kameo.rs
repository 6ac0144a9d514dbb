//! kameo 0.22 (default features): actors spawned with `Spawn::spawn_with_mailbox` on a
//! 2-worker tokio multi-thread runtime, one `Message<T>` impl per message type.
//!
//! Cores: kameo actors are tokio tasks; the 2 workers run them wherever tokio decides (no
//! placement). Mailboxes: unbounded for the Savina shapes (kameo's `spawn` default would be
//! `bounded(64)`), `bounded(bound)` for fan-in, whose outside producers use `blocking_send`
//! (waits while full). Outside asks use `ask(..).blocking_send()`; the actor-to-actor asker
//! awaits `ask` inside its handler.

use crate::common::{new_hist, record, work_item};
use crate::peer_tokio::{runtime, shutdown};
use crate::workload::{AskSession, Peer, Session, signal, timed, wait, wait_n};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn, WeakActorRef};
use kameo::error::{ActorStopReason, Infallible};
use kameo::mailbox;
use kameo::message::{Context, Message};
use std::time::{Duration, Instant};

/// The kameo peer.
pub struct Kameo;

/// Spawns `a` with an unbounded mailbox (inside `rt`'s context).
fn spawn<A: Actor<Args = A>>(rt: &tokio::runtime::Runtime, a: A) -> ActorRef<A> {
    let _enter = rt.enter();
    A::spawn_with_mailbox(a, mailbox::unbounded())
}

/// `Actor` for a type that is its own argument, with no hooks but `on_start`.
macro_rules! plain_actor {
    ($t:ty) => {
        impl Actor for $t {
            type Args = Self;
            type Error = Infallible;
            async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
                Ok(state)
            }
        }
    };
}

// ----- messages ---------------------------------------------------------------------------------

struct Ping;
struct Pong;
struct Start(u64);
struct Link<T: Actor>(ActorRef<T>);
struct Incr;
struct Fence;
struct Go;
struct Token(u64);
struct Req(u64);
struct RunAsks(u64, u64);

// ----- actors -----------------------------------------------------------------------------------

struct Ponger {
    pinger: Option<ActorRef<Pinger>>,
}
plain_actor!(Ponger);
impl Message<Link<Pinger>> for Ponger {
    type Reply = ();
    async fn handle(&mut self, Link(p): Link<Pinger>, _: &mut Context<Self, ()>) {
        self.pinger = Some(p);
    }
}
impl Message<Ping> for Ponger {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _: &mut Context<Self, ()>) {
        let p = self.pinger.as_ref().expect("linked");
        p.tell(Pong).await.expect("pinger alive");
    }
}

struct Pinger {
    ponger: ActorRef<Ponger>,
    left: u64,
    n: u64,
    done: Sender<u64>,
}
plain_actor!(Pinger);
impl Message<Start> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Start(n): Start, _: &mut Context<Self, ()>) {
        self.n = n;
        self.left = n;
        self.ponger.tell(Ping).await.expect("ponger alive");
    }
}
impl Message<Pong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _: Pong, _: &mut Context<Self, ()>) {
        self.left -= 1;
        if self.left == 0 {
            signal(&self.done, self.n);
        } else {
            self.ponger.tell(Ping).await.expect("ponger alive");
        }
    }
}

/// Counts `Incr`s; a fence signals the count and resets it. Also the fan-in sink.
struct Counter {
    seen: u64,
    done: Sender<u64>,
}
plain_actor!(Counter);
impl Message<Incr> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Incr, _: &mut Context<Self, ()>) {
        self.seen += 1;
    }
}
impl Message<Fence> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Fence, _: &mut Context<Self, ()>) {
        signal(&self.done, std::mem::take(&mut self.seen));
    }
}

struct Producer {
    counter: ActorRef<Counter>,
}
plain_actor!(Producer);
impl Message<Start> for Producer {
    type Reply = ();
    async fn handle(&mut self, Start(k): Start, _: &mut Context<Self, ()>) {
        for _ in 0..k {
            self.counter.tell(Incr).await.expect("counter alive");
        }
        self.counter.tell(Fence).await.expect("counter alive");
    }
}

struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: Sender<u64>,
}
plain_actor!(RingNode);
impl Message<Link<RingNode>> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Link(n): Link<RingNode>, _: &mut Context<Self, ()>) {
        self.next = Some(n);
    }
}
impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token(h): Token, _: &mut Context<Self, ()>) {
        if h == 0 {
            signal(&self.done, 0);
        } else {
            let next = self.next.as_ref().expect("ring linked");
            next.tell(Token(h - 1)).await.expect("ring alive");
        }
    }
}

struct FjWorker {
    left: u64,
    acc: u64,
    done: Sender<u64>,
}
plain_actor!(FjWorker);
impl Message<Go> for FjWorker {
    type Reply = ();
    async fn handle(&mut self, _: Go, _: &mut Context<Self, ()>) {
        work_item(&mut self.acc);
        self.left -= 1;
        if self.left == 0 {
            signal(&self.done, 1);
        }
    }
}

/// Stops itself on its first message and signals from `on_stop`.
struct Child {
    done: Sender<u64>,
}
impl Actor for Child {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(state)
    }
    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        _: ActorStopReason,
    ) -> Result<(), Infallible> {
        signal(&self.done, 1);
        Ok(())
    }
}
impl Message<Go> for Child {
    type Reply = ();
    async fn handle(&mut self, _: Go, ctx: &mut Context<Self, ()>) {
        ctx.stop();
    }
}

struct Responder;
plain_actor!(Responder);
impl Message<Req> for Responder {
    type Reply = u64;
    async fn handle(&mut self, Req(x): Req, _: &mut Context<Self, u64>) -> u64 {
        x
    }
}

struct Asker {
    peer: ActorRef<Responder>,
    done: Sender<Histogram<u64>>,
}
plain_actor!(Asker);
impl Message<RunAsks> for Asker {
    type Reply = ();
    async fn handle(&mut self, RunAsks(warm, n): RunAsks, _: &mut Context<Self, ()>) {
        let mut h = new_hist();
        for i in 0..warm + n {
            let t0 = Instant::now();
            let v = self.peer.ask(Req(i)).await.expect("kameo ask answered");
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        let _ = self.done.send(h);
    }
}

// ----- sessions ---------------------------------------------------------------------------------

struct CountingSession {
    producer: ActorRef<Producer>,
    done_rx: Receiver<u64>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.producer
            .tell(Start(k))
            .try_send()
            .expect("producer alive");
        let seen = wait(&self.done_rx, "kameo counting");
        assert_eq!(seen, k, "kameo counting: counter saw a wrong count");
    }
}

impl Drop for CountingSession {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            shutdown(rt);
        }
    }
}

struct OutsideAsk {
    responder: ActorRef<Responder>,
    rt: Option<tokio::runtime::Runtime>,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        for i in 0..k {
            let t0 = Instant::now();
            let v = self
                .responder
                .ask(Req(i))
                .blocking_send()
                .expect("kameo outside ask");
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

impl Peer for Kameo {
    fn name(&self) -> &'static str {
        "kameo"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let ponger = spawn(&rt, Ponger { pinger: None });
        let pinger = spawn(
            &rt,
            Pinger {
                ponger: ponger.clone(),
                left: 0,
                n: 0,
                done,
            },
        );
        ponger
            .ask(Link(pinger.clone()))
            .blocking_send()
            .expect("link ping-pong");
        let d = timed(&done_rx, n, "kameo ping-pong", || {
            pinger.tell(Start(n)).try_send().expect("pinger alive");
        });
        shutdown(rt);
        d
    }

    fn counting(&self) -> Box<dyn Session> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let counter = spawn(&rt, Counter { seen: 0, done });
        let producer = spawn(&rt, Producer { counter });
        Box::new(CountingSession {
            producer,
            done_rx,
            rt: Some(rt),
        })
    }

    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let sink = {
            let _enter = rt.enter();
            Counter::spawn_with_mailbox(Counter { seen: 0, done }, mailbox::bounded(bound))
        };
        let t0 = Instant::now();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let sink = sink.clone();
                std::thread::Builder::new()
                    .name(format!("fan-in-{p}"))
                    .spawn(move || {
                        for _ in 0..per_producer {
                            sink.tell(Incr).blocking_send().expect("sink alive");
                        }
                    })
                    .expect("spawn producer")
            })
            .collect();
        for p in producers {
            p.join().expect("producer");
        }
        sink.tell(Fence).blocking_send().expect("sink alive");
        let seen = wait(&done_rx, "kameo fan-in");
        let d = t0.elapsed();
        assert_eq!(seen, 2 * per_producer, "kameo fan-in count");
        shutdown(rt);
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let nodes: Vec<_> = (0..actors)
            .map(|_| {
                spawn(
                    &rt,
                    RingNode {
                        next: None,
                        done: done.clone(),
                    },
                )
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let next = nodes[(i + 1) % actors].clone();
            node.ask(Link(next)).blocking_send().expect("link ring");
        }
        let d = timed(&done_rx, 0, "kameo thread-ring", || {
            nodes[0].tell(Token(hops)).try_send().expect("ring alive");
        });
        shutdown(rt);
        d
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let workers: Vec<_> = (0..actors)
            .map(|_| {
                spawn(
                    &rt,
                    FjWorker {
                        left: per_actor,
                        acc: 1,
                        done: done.clone(),
                    },
                )
            })
            .collect();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for w in &workers {
                w.tell(Go).try_send().expect("worker alive");
            }
        }
        let n = wait_n(&done_rx, actors, "kameo fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        d
    }

    fn creation(&self, actors: usize) -> Option<Duration> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let t0 = Instant::now();
        for _ in 0..actors {
            let child = spawn(&rt, Child { done: done.clone() });
            child.tell(Go).try_send().expect("child alive");
        }
        let n = wait_n(&done_rx, actors, "kameo creation");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        Some(d)
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        let rt = runtime();
        let responder = spawn(&rt, Responder);
        Box::new(OutsideAsk {
            responder,
            rt: Some(rt),
        })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let responder = spawn(&rt, Responder);
        let asker = spawn(
            &rt,
            Asker {
                peer: responder,
                done,
            },
        );
        asker
            .tell(RunAsks(warm, n))
            .try_send()
            .expect("asker alive");
        let h = wait(&done_rx, "kameo actor ask");
        shutdown(rt);
        h
    }
}
