//! What every peer implements: the workloads of the comparison, their sizes, and the bounded
//! waits every implementation uses.
//!
//! A peer is one way of writing actors (coreactor, plain threads, tokio tasks, actix, ractor,
//! kameo). Each implements [`Peer`]: one method per workload, each doing the same work shape on
//! every peer and returning only the measured part (setup and teardown are outside the timer).
//! Every wait is bounded: completion channels use [`wait`] / [`wait_n`] (a generous timeout that
//! panics with the peer and workload in the message), and `main` arms a [`watchdog`] around
//! each step, which ends the process if a blocking call of a library (an actix `join`, a
//! blocking ask without a timeout) never returns.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// How long one completion wait may take before the bench fails (far above any real run).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Every size of one run. [`Sizes::full`] for a real run, [`Sizes::ci`] for the smoke run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Repetitions of every (workload, peer) pair; the report gives median, min and max.
    pub reps: usize,
    /// Ping-pong round trips per run.
    pub ping_pong: u64,
    /// Messages the producer floods the counter with.
    pub counting: u64,
    /// Messages per producer in fan-in (two producers).
    pub fan_in: u64,
    /// Mailbox bound of the fan-in sink.
    pub fan_in_bound: usize,
    /// Actors in the thread ring.
    pub ring_actors: usize,
    /// Token passes around the ring.
    pub ring_hops: u64,
    /// Actors of fork-join throughput.
    pub fj_actors: usize,
    /// Messages per actor of fork-join throughput.
    pub fj_msgs: u64,
    /// Actors created by fork-join creation.
    pub create: usize,
    /// Recorded asks per latency run.
    pub asks: u64,
    /// Warm-up asks before the recorded ones.
    pub ask_warm: u64,
    /// Messages (or asks) per allocation window.
    pub alloc_k: u64,
    /// Allocation windows measured (after 3 warm-up windows).
    pub alloc_windows: usize,
    /// Round trips of the floor probe run before every throughput step (`floor.rs`).
    pub floor_round_trips: u64,
}

impl Sizes {
    /// The sizes of the issue (Savina #2, #3, #4, #5 parameters where Savina has them).
    pub fn full() -> Self {
        Sizes {
            reps: 3,
            ping_pong: 200_000,
            counting: 1_000_000,
            fan_in: 500_000,
            fan_in_bound: 1024,
            ring_actors: 100,
            ring_hops: 1_000_000,
            fj_actors: 60,
            fj_msgs: 10_000,
            create: 40_000,
            asks: 50_000,
            // More than two laps of a coreactor ring of the default 16 384 slots each way: a
            // ring's pages are faulted in on its first lap (allocated lazily, so idle rings
            // cost no memory), a one-time cost of up to ~30 µs per page that put ~1 % of the
            // recorded asks at 3 µs with a warm-up of 5 000 (`docs/benchmarks.md`, session 10).
            // The same warm-up for every peer.
            ask_warm: 40_000,
            alloc_k: 1_000,
            alloc_windows: 7,
            floor_round_trips: 50_000,
        }
    }

    /// A smoke run for CI: every workload runs once on every peer, small.
    pub fn ci() -> Self {
        Sizes {
            reps: 1,
            ping_pong: 2_000,
            counting: 20_000,
            fan_in: 10_000,
            fan_in_bound: 1024,
            ring_actors: 100,
            ring_hops: 20_000,
            fj_actors: 60,
            fj_msgs: 200,
            create: 2_000,
            asks: 1_000,
            ask_warm: 100,
            alloc_k: 200,
            alloc_windows: 3,
            floor_round_trips: 2_000,
        }
    }
}

/// The throughput workloads, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throughput {
    PingPong,
    Counting,
    /// Counting with both actors on one worker (coreactor: one shard; tokio: a current-thread
    /// runtime). The row to read next to tokio's `counting`, whose two tasks mostly share a
    /// worker anyway (see `docs/compare.md`).
    CountingSameWorker,
    FanIn,
    ThreadRing,
    ForkJoin,
    Creation,
}

impl Throughput {
    /// All of them, in report order.
    pub const ALL: [Throughput; 7] = [
        Throughput::PingPong,
        Throughput::Counting,
        Throughput::CountingSameWorker,
        Throughput::FanIn,
        Throughput::ThreadRing,
        Throughput::ForkJoin,
        Throughput::Creation,
    ];

    /// Short name (CSV key and chart label).
    pub fn name(self) -> &'static str {
        match self {
            Throughput::PingPong => "ping-pong",
            Throughput::Counting => "counting",
            Throughput::CountingSameWorker => "counting-same-worker",
            Throughput::FanIn => "fan-in",
            Throughput::ThreadRing => "thread-ring",
            Throughput::ForkJoin => "fork-join-throughput",
            Throughput::Creation => "fork-join-creation",
        }
    }

    /// What one unit of work is (the rate is units per second).
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::PingPong => "round trips/s",
            Throughput::Counting
            | Throughput::CountingSameWorker
            | Throughput::FanIn
            | Throughput::ForkJoin => "msgs/s",
            Throughput::ThreadRing => "token passes/s",
            Throughput::Creation => "actors/s",
        }
    }

    /// Units of work of one run with `s`.
    pub fn units(self, s: &Sizes) -> u64 {
        match self {
            Throughput::PingPong => s.ping_pong,
            Throughput::Counting | Throughput::CountingSameWorker => s.counting,
            Throughput::FanIn => 2 * s.fan_in,
            Throughput::ThreadRing => s.ring_hops,
            Throughput::ForkJoin => s.fj_actors as u64 * s.fj_msgs,
            Throughput::Creation => s.create as u64,
        }
    }
}

/// The latency workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Blocking asks from a thread outside the runtime (pinned to CPU 1).
    Outside,
    /// Asks from an actor to an actor on the other worker (shard, arbiter, thread).
    ActorToActor,
}

impl Latency {
    /// Both, in report order.
    pub const ALL: [Latency; 2] = [Latency::Outside, Latency::ActorToActor];

    /// Short name (CSV key and chart label).
    pub fn name(self) -> &'static str {
        match self {
            Latency::Outside => "ask-outside",
            Latency::ActorToActor => "ask-actor-to-actor",
        }
    }
}

/// A prepared pair of actors that can run the same workload many times: the allocation
/// windows and the counting workload use it, so setup is neither timed nor counted.
pub trait Session: Send {
    /// Counting shape: the producer actor sends `k` messages to the counter actor (on the
    /// other worker), then a fence; returns when the counter answered the fence, after
    /// checking it saw exactly `k` messages. `k = 0` is the empty window (the fence alone).
    fn run(&mut self, k: u64);
}

/// A prepared responder for blocking asks from the calling thread.
pub trait AskSession: Send {
    /// Makes `k` closed-loop asks from the calling thread, recording each round trip in
    /// `hist` when given, and checks every answer.
    fn run(&mut self, k: u64, hist: Option<&mut Histogram<u64>>);
}

/// One implementation of every workload. Comments in each implementation say how its actors
/// map to the machine's cores.
pub trait Peer {
    /// Name in the report.
    fn name(&self) -> &'static str;
    /// Two actors on different workers, `n` round trips of tells; the time of the `n` trips.
    fn ping_pong(&self, n: u64) -> Duration;
    /// The counting session (Savina #3 shape, unbounded mailbox): producer on worker 0,
    /// counter on worker 1.
    fn counting(&self) -> Box<dyn Session>;
    /// The counting session with producer and counter on the same worker; `None` if the peer
    /// cannot place them so (the default).
    fn counting_same_worker(&self) -> Option<Box<dyn Session>> {
        None
    }
    /// Two outside producer threads send `per_producer` messages each into one actor whose
    /// mailbox holds at most `bound` (producers wait while it is full); the time until the
    /// actor confirmed all of them.
    fn fan_in(&self, per_producer: u64, bound: usize) -> Duration;
    /// Savina #2: `actors` actors in a ring, one token passed `hops` times.
    fn thread_ring(&self, actors: usize, hops: u64) -> Duration;
    /// Savina #4: one outside sender sends `per_actor` messages to each of `actors` actors,
    /// round robin; each runs one small work item per message. Time until all are done.
    fn fork_join(&self, actors: usize, per_actor: u64) -> Duration;
    /// Savina #5: `actors` actors, each spawned, sent one message, and stopped on it; time
    /// until every one has stopped. `None` if the peer cannot do it sensibly.
    fn creation(&self, actors: usize) -> Option<Duration>;
    /// A responder for blocking asks from an outside thread.
    fn ask_outside(&self) -> Box<dyn AskSession>;
    /// `warm + n` closed-loop asks from an actor on worker 0 to one on worker 1; the last
    /// `n` round trips, timed by the asker.
    fn ask_actor(&self, n: u64, warm: u64) -> Histogram<u64>;
}

/// Waits for one completion message, or panics naming `what` after [`WAIT_TIMEOUT`].
pub fn wait<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(WAIT_TIMEOUT) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => {
            panic!("compare: {what}: no completion within {WAIT_TIMEOUT:?}")
        }
        Err(RecvTimeoutError::Disconnected) => {
            panic!("compare: {what}: every sender dropped before completion (an actor died?)")
        }
    }
}

/// Waits for `n` completion messages (the whole batch within [`WAIT_TIMEOUT`]) and returns
/// the sum of their values.
pub fn wait_n(rx: &Receiver<u64>, n: usize, what: &str) -> u64 {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let mut sum = 0;
    for i in 0..n {
        match rx.recv_deadline(deadline) {
            Ok(v) => sum += v,
            Err(_) => panic!("compare: {what}: {i} of {n} completions within {WAIT_TIMEOUT:?}"),
        }
    }
    sum
}

/// Sends a completion signal; a closed channel means the bench already failed elsewhere.
pub fn signal(tx: &Sender<u64>, v: u64) {
    let _ = tx.send(v);
}

/// Times `kick` (which starts the work) up to the completion `rx` answers, which must be
/// `expect`.
pub fn timed(rx: &Receiver<u64>, expect: u64, what: &str, kick: impl FnOnce()) -> Duration {
    let t0 = Instant::now();
    kick();
    let got = wait(rx, what);
    let d = t0.elapsed();
    assert_eq!(got, expect, "compare: {what}: wrong completion count");
    d
}

/// A process-wide watchdog: `main` arms it before each step; if a step outlives its limit,
/// the process prints which step hung and exits with status 2 (a hung library call cannot be
/// cancelled from outside, so ending the process is the only bounded answer).
pub mod watchdog {
    use crossbeam_channel::{RecvTimeoutError, Sender, unbounded};
    use std::sync::OnceLock;
    use std::time::Duration;

    static ARM: OnceLock<Sender<Option<(String, Duration)>>> = OnceLock::new();

    fn sender() -> &'static Sender<Option<(String, Duration)>> {
        ARM.get_or_init(|| {
            let (tx, rx) = unbounded::<Option<(String, Duration)>>();
            std::thread::Builder::new()
                .name("compare-watchdog".into())
                .spawn(move || {
                    let mut current: Option<(String, Duration)> = None;
                    loop {
                        let limit = current.as_ref().map_or(Duration::from_secs(3600), |c| c.1);
                        match rx.recv_timeout(limit) {
                            Ok(next) => current = next,
                            Err(RecvTimeoutError::Timeout) => {
                                if let Some((step, limit)) = &current {
                                    eprintln!(
                                        "compare: step `{step}` did not finish within {limit:?}: aborting"
                                    );
                                    std::process::exit(2);
                                }
                            }
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .expect("spawn the watchdog thread");
            tx
        })
    }

    /// Arms the watchdog for `step`, which must finish within `limit`.
    pub fn arm(step: String, limit: Duration) {
        let _ = sender().send(Some((step, limit)));
    }

    /// Disarms it (the step finished).
    pub fn disarm() {
        let _ = sender().send(None);
    }
}
