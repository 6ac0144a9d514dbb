//! ractor 0.16 (default features): actors spawned with `Actor::spawn` on a 2-worker tokio
//! multi-thread runtime, one message enum per actor, tells with `cast`, asks with `call`.
//!
//! Cores: like tokio, ractor actors are tasks that the 2 workers run wherever tokio decides;
//! there is no placement. ractor mailboxes are unbounded, so fan-in runs without a bound on
//! ractor (its producers never wait); the table marks it. Outside asks block on `call` with a
//! current-thread tokio runtime on the asking thread; the actor-to-actor asker awaits `call`
//! inside its handler (ractor's way: the asker handles nothing else meanwhile).

use crate::common::{new_hist, record, work_item};
use crate::peer_tokio::{runtime, shutdown};
use crate::workload::{AskSession, Peer, Session, signal, timed, wait, wait_n};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::time::{Duration, Instant};

/// The ractor peer.
pub struct Ractor;

type Res = Result<(), ActorProcessingErr>;

/// Spawns `a` with `args` on `rt` and returns its reference.
fn spawn<A: Actor>(rt: &tokio::runtime::Runtime, a: A, args: A::Arguments) -> ActorRef<A::Msg> {
    rt.block_on(Actor::spawn(None, a, args))
        .expect("ractor spawn")
        .0
}

// ----- ping-pong --------------------------------------------------------------------------------

enum PingMsg {
    Link(ActorRef<PongMsg>, RpcReplyPort<()>),
    Start(u64),
    Pong,
}
struct PongMsg(ActorRef<PingMsg>);

struct Ponger;
impl Actor for Ponger {
    type Msg = PongMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<PongMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(&self, _: ActorRef<PongMsg>, PongMsg(to): PongMsg, _: &mut ()) -> Res {
        to.cast(PingMsg::Pong).expect("pinger alive");
        Ok(())
    }
}

struct Pinger;
struct PingState {
    ponger: Option<ActorRef<PongMsg>>,
    left: u64,
    n: u64,
    done: Sender<u64>,
}
impl Actor for Pinger {
    type Msg = PingMsg;
    type State = PingState;
    type Arguments = Sender<u64>;
    async fn pre_start(
        &self,
        _: ActorRef<PingMsg>,
        done: Sender<u64>,
    ) -> Result<PingState, ActorProcessingErr> {
        Ok(PingState {
            ponger: None,
            left: 0,
            n: 0,
            done,
        })
    }
    async fn handle(&self, me: ActorRef<PingMsg>, msg: PingMsg, s: &mut PingState) -> Res {
        match msg {
            PingMsg::Link(p, ack) => {
                s.ponger = Some(p);
                let _ = ack.send(());
                return Ok(());
            }
            PingMsg::Start(n) => {
                s.n = n;
                s.left = n;
            }
            PingMsg::Pong => {
                s.left -= 1;
                if s.left == 0 {
                    signal(&s.done, s.n);
                    return Ok(());
                }
            }
        }
        s.ponger
            .as_ref()
            .expect("linked")
            .cast(PongMsg(me))
            .expect("ponger alive");
        Ok(())
    }
}

// ----- counting / fan-in sink -------------------------------------------------------------------

enum CountMsg {
    Incr,
    Fence,
}

/// Counts `Incr`s; a fence signals the count and resets it.
struct Counter;
impl Actor for Counter {
    type Msg = CountMsg;
    type State = (u64, Sender<u64>);
    type Arguments = Sender<u64>;
    async fn pre_start(
        &self,
        _: ActorRef<CountMsg>,
        done: Sender<u64>,
    ) -> Result<(u64, Sender<u64>), ActorProcessingErr> {
        Ok((0, done))
    }
    async fn handle(
        &self,
        _: ActorRef<CountMsg>,
        msg: CountMsg,
        s: &mut (u64, Sender<u64>),
    ) -> Res {
        match msg {
            CountMsg::Incr => s.0 += 1,
            CountMsg::Fence => signal(&s.1, std::mem::take(&mut s.0)),
        }
        Ok(())
    }
}

/// Sends `k` increments then a fence to its counter.
struct Producer;
impl Actor for Producer {
    type Msg = u64;
    type State = ActorRef<CountMsg>;
    type Arguments = ActorRef<CountMsg>;
    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        c: ActorRef<CountMsg>,
    ) -> Result<ActorRef<CountMsg>, ActorProcessingErr> {
        Ok(c)
    }
    async fn handle(&self, _: ActorRef<u64>, k: u64, c: &mut ActorRef<CountMsg>) -> Res {
        for _ in 0..k {
            c.cast(CountMsg::Incr).expect("counter alive");
        }
        c.cast(CountMsg::Fence).expect("counter alive");
        Ok(())
    }
}

// ----- ring, fork-join, creation ----------------------------------------------------------------

enum RingMsg {
    SetNext(ActorRef<RingMsg>, RpcReplyPort<()>),
    Token(u64),
}
struct RingNode;
impl Actor for RingNode {
    type Msg = RingMsg;
    type State = (Option<ActorRef<RingMsg>>, Sender<u64>);
    type Arguments = Sender<u64>;
    async fn pre_start(
        &self,
        _: ActorRef<RingMsg>,
        done: Sender<u64>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((None, done))
    }
    async fn handle(&self, _: ActorRef<RingMsg>, msg: RingMsg, s: &mut Self::State) -> Res {
        match msg {
            RingMsg::SetNext(n, ack) => {
                s.0 = Some(n);
                let _ = ack.send(());
            }
            RingMsg::Token(0) => signal(&s.1, 0),
            RingMsg::Token(h) => {
                s.0.as_ref()
                    .expect("ring linked")
                    .cast(RingMsg::Token(h - 1))
                    .expect("ring alive")
            }
        }
        Ok(())
    }
}

struct FjWorker;
impl Actor for FjWorker {
    type Msg = ();
    type State = (u64, u64, Sender<u64>);
    type Arguments = (u64, Sender<u64>);
    async fn pre_start(
        &self,
        _: ActorRef<()>,
        (left, done): (u64, Sender<u64>),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((left, 1, done))
    }
    async fn handle(&self, _: ActorRef<()>, (): (), s: &mut Self::State) -> Res {
        work_item(&mut s.1);
        s.0 -= 1;
        if s.0 == 0 {
            signal(&s.2, 1);
        }
        Ok(())
    }
}

/// Stops itself on its first message and signals from `post_stop`.
struct Child;
impl Actor for Child {
    type Msg = ();
    type State = Sender<u64>;
    type Arguments = Sender<u64>;
    async fn pre_start(
        &self,
        _: ActorRef<()>,
        done: Sender<u64>,
    ) -> Result<Sender<u64>, ActorProcessingErr> {
        Ok(done)
    }
    async fn handle(&self, me: ActorRef<()>, (): (), _: &mut Sender<u64>) -> Res {
        me.stop(None);
        Ok(())
    }
    async fn post_stop(&self, _: ActorRef<()>, done: &mut Sender<u64>) -> Res {
        signal(done, 1);
        Ok(())
    }
}

// ----- asks -------------------------------------------------------------------------------------

struct Req(u64, RpcReplyPort<u64>);

struct Responder;
impl Actor for Responder {
    type Msg = Req;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Req>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(&self, _: ActorRef<Req>, Req(x, r): Req, _: &mut ()) -> Res {
        let _ = r.send(x);
        Ok(())
    }
}

fn answer(r: CallResult<u64>) -> u64 {
    match r {
        CallResult::Success(v) => v,
        CallResult::Timeout => panic!("ractor call timed out"),
        CallResult::SenderError => panic!("ractor call: reply port dropped"),
    }
}

/// Makes the asks inside its handler, one `call` awaited after the other.
struct Asker;
impl Actor for Asker {
    type Msg = (u64, u64);
    type State = (ActorRef<Req>, Sender<Histogram<u64>>);
    type Arguments = (ActorRef<Req>, Sender<Histogram<u64>>);
    async fn pre_start(
        &self,
        _: ActorRef<(u64, u64)>,
        a: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(a)
    }
    async fn handle(
        &self,
        _: ActorRef<(u64, u64)>,
        (warm, n): (u64, u64),
        s: &mut Self::State,
    ) -> Res {
        let mut h = new_hist();
        for i in 0..warm + n {
            let t0 = Instant::now();
            let v = answer(
                s.0.call(|r| Req(i, r), None)
                    .await
                    .expect("responder alive"),
            );
            let d = t0.elapsed();
            assert_eq!(v, i);
            if i >= warm {
                record(&mut h, d);
            }
        }
        let _ = s.1.send(h);
        Ok(())
    }
}

// ----- sessions ---------------------------------------------------------------------------------

struct CountingSession {
    producer: ActorRef<u64>,
    done_rx: Receiver<u64>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Session for CountingSession {
    fn run(&mut self, k: u64) {
        self.producer.cast(k).expect("producer alive");
        let seen = wait(&self.done_rx, "ractor counting");
        assert_eq!(seen, k, "ractor counting: counter saw a wrong count");
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
    responder: ActorRef<Req>,
    blocker: tokio::runtime::Runtime,
    rt: Option<tokio::runtime::Runtime>,
}

impl AskSession for OutsideAsk {
    fn run(&mut self, k: u64, mut hist: Option<&mut Histogram<u64>>) {
        for i in 0..k {
            let t0 = Instant::now();
            let r = self
                .blocker
                .block_on(self.responder.call(|r| Req(i, r), None))
                .expect("responder alive");
            let v = answer(r);
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

impl Peer for Ractor {
    fn name(&self) -> &'static str {
        "ractor"
    }

    fn ping_pong(&self, n: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let ponger = spawn(&rt, Ponger, ());
        let pinger = spawn(&rt, Pinger, done);
        rt.block_on(pinger.call(|r| PingMsg::Link(ponger, r), None))
            .expect("link ping-pong");
        let d = timed(&done_rx, n, "ractor ping-pong", || {
            pinger.cast(PingMsg::Start(n)).expect("pinger alive");
        });
        shutdown(rt);
        d
    }

    fn counting(&self) -> Box<dyn Session> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let counter = spawn(&rt, Counter, done);
        let producer = spawn(&rt, Producer, counter);
        Box::new(CountingSession {
            producer,
            done_rx,
            rt: Some(rt),
        })
    }

    fn fan_in(&self, per_producer: u64, _bound: usize) -> Duration {
        // No bounded mailbox in ractor: the producers never wait.
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let sink = spawn(&rt, Counter, done);
        let t0 = Instant::now();
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let sink = sink.clone();
                std::thread::Builder::new()
                    .name(format!("fan-in-{p}"))
                    .spawn(move || {
                        for _ in 0..per_producer {
                            sink.cast(CountMsg::Incr).expect("sink alive");
                        }
                    })
                    .expect("spawn producer")
            })
            .collect();
        for p in producers {
            p.join().expect("producer");
        }
        sink.cast(CountMsg::Fence).expect("sink alive");
        let seen = wait(&done_rx, "ractor fan-in");
        let d = t0.elapsed();
        assert_eq!(seen, 2 * per_producer, "ractor fan-in count");
        shutdown(rt);
        d
    }

    fn thread_ring(&self, actors: usize, hops: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let nodes: Vec<_> = (0..actors)
            .map(|_| spawn(&rt, RingNode, done.clone()))
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let next = nodes[(i + 1) % actors].clone();
            rt.block_on(node.call(|r| RingMsg::SetNext(next, r), None))
                .expect("link ring");
        }
        let d = timed(&done_rx, 0, "ractor thread-ring", || {
            nodes[0].cast(RingMsg::Token(hops)).expect("ring alive");
        });
        shutdown(rt);
        d
    }

    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let workers: Vec<_> = (0..actors)
            .map(|_| spawn(&rt, FjWorker, (per_actor, done.clone())))
            .collect();
        let t0 = Instant::now();
        for _ in 0..per_actor {
            for w in &workers {
                w.cast(()).expect("worker alive");
            }
        }
        let n = wait_n(&done_rx, actors, "ractor fork-join");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        d
    }

    fn creation(&self, actors: usize) -> Option<Duration> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let t0 = Instant::now();
        rt.block_on(async {
            for _ in 0..actors {
                let (child, _join) = Actor::spawn(None, Child, done.clone())
                    .await
                    .expect("ractor spawn");
                child.cast(()).expect("child alive");
            }
        });
        let n = wait_n(&done_rx, actors, "ractor creation");
        let d = t0.elapsed();
        assert_eq!(n, actors as u64);
        shutdown(rt);
        Some(d)
    }

    fn ask_outside(&self) -> Box<dyn AskSession> {
        let rt = runtime();
        let responder = spawn(&rt, Responder, ());
        let blocker = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("current-thread runtime");
        Box::new(OutsideAsk {
            responder,
            blocker,
            rt: Some(rt),
        })
    }

    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64> {
        let rt = runtime();
        let (done, done_rx) = unbounded();
        let responder = spawn(&rt, Responder, ());
        let asker = spawn(&rt, Asker, (responder, done));
        asker.cast((warm, n)).expect("asker alive");
        let h = wait(&done_rx, "ractor actor ask");
        shutdown(rt);
        h
    }
}
