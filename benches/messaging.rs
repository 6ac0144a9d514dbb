//! Messaging throughput of the core runtime, each group with its baselines measured in the same
//! run (STYLE.md §17).
//!
//! Groups (criterion, `Throughput::Elements` = messages or round trips per iteration):
//!
//! * `same_shard_tell`: a flooder actor sends `TELL_N` messages to a sink actor on the same shard
//!   (1-shard runtime); the iteration ends when the sink has handled all of them (a fence message
//!   sent after the data is answered by the sink), so delivery is inside the measured section.
//!   Flow control is credit-based (window `WINDOW`, the sink returns credit every `ACK_EVERY`
//!   messages), so the bounded mailbox never answers `Full`. Baselines, one thread: a
//!   `VecDeque` push/pop loop (a ceiling) and `crossbeam_channel::bounded` send/recv.
//! * `cross_shard_tell`: the same flood from shard 0 to shard 1 (2-shard runtime). Baselines:
//!   `crossbeam_channel::bounded(1024)` between two threads pinned to CPUs 0 and 1, and tokio
//!   `mpsc::channel(1024)` between two tasks of a 2-worker multi-thread runtime.
//! * `cross_shard_ping_pong`: round trips between an actor on shard 0 and one on shard 1, one
//!   message in flight. Baselines: two pinned threads over two `bounded(1)` channels; two tokio
//!   tasks over two `mpsc::channel(1)` on a 2-worker runtime; and the hardware floor, two
//!   threads pinned to CPUs 0 and 1 bouncing one cache line (no queue at all), which bounds
//!   what any runtime whose messages cross cores can reach.
//! * `outside_tell`: a non-runtime thread `tell`s a sink actor (injection queue, 1-shard
//!   runtime) then fences with an `ask`. Baseline: a `bounded(4096)` crossbeam channel (the
//!   mailbox bound) to a thread pinned where the shard is (CPU 0); the sending thread is pinned
//!   to CPU 1.
//!
//! The reference machine has 2 cores: a 2-shard runtime (or two baseline threads) fills it, and
//! the bench's own main thread, which only waits for the end of each iteration, shares a core.

mod common;

use common::actors::{PingMsg, Pinger, PongMsg, Ponger, must_tell};

use coreactor::{Actor, Addr, Context, Reply, Runtime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::collections::VecDeque;
use std::hint::black_box;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Messages per iteration of the flood benches.
const TELL_N: u64 = 100_000;
/// Round trips per iteration of the ping-pong benches.
const PING_N: u64 = 10_000;
/// Messages a flooder may have sent but not seen credited back (below the default mailbox
/// capacity of 4096, so `try_tell` never answers `Full`).
const WINDOW: u64 = 2048;
/// The sink returns credit every `ACK_EVERY` messages.
const ACK_EVERY: u64 = 256;
/// Chunk of the one-thread baselines: push this many, then pop them.
const LOCAL_CHUNK: u64 = 64;
/// The fence value of the crossbeam baselines.
const FENCE: u64 = u64::MAX;
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

// ----- actors ---------------------------------------------------------------------------------

/// Counts data messages; answers a fence with the count (and resets it); returns credit to its
/// flooder, if it has one.
struct Sink {
    seen: u64,
    unacked: u64,
    flooder: Option<Addr<Flooder>>,
}

enum SinkMsg {
    Data(u64),
    Fence(Reply<u64>),
    Attach(Addr<Flooder>),
}

impl Sink {
    fn new() -> Self {
        Sink {
            seen: 0,
            unacked: 0,
            flooder: None,
        }
    }
}

impl Actor for Sink {
    type Msg = SinkMsg;
    fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SinkMsg::Data(x) => {
                black_box(x);
                self.seen += 1;
                self.unacked += 1;
                if self.unacked == ACK_EVERY {
                    self.unacked = 0;
                    if let Some(f) = &self.flooder {
                        must_tell(f, FloodMsg::Credit(ACK_EVERY));
                    }
                }
            }
            SinkMsg::Fence(reply) => {
                reply.send(self.seen);
                self.seen = 0;
                self.unacked = 0;
            }
            SinkMsg::Attach(f) => self.flooder = Some(f),
        }
    }
}

/// Sends `TELL_N` data messages to its sink within the credit window, then a fence carrying the
/// outside asker's reply.
struct Flooder {
    sink: Addr<Sink>,
    left: u64,
    credit: u64,
    fence: Option<Reply<u64>>,
}

enum FloodMsg {
    Start(u64, Reply<u64>),
    Credit(u64),
}

impl Flooder {
    fn pump(&mut self) {
        while self.left > 0 && self.credit > 0 {
            must_tell(&self.sink, SinkMsg::Data(self.left));
            self.left -= 1;
            self.credit -= 1;
        }
        if self.left == 0
            && let Some(reply) = self.fence.take()
        {
            must_tell(&self.sink, SinkMsg::Fence(reply));
        }
    }
}

impl Actor for Flooder {
    type Msg = FloodMsg;
    fn handle(&mut self, msg: FloodMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            FloodMsg::Start(n, reply) => {
                self.left = n;
                self.credit = WINDOW;
                self.fence = Some(reply);
            }
            FloodMsg::Credit(c) => self.credit += c,
        }
        self.pump();
    }
}

/// Starts a flooder on `from` and a sink on `to`, wired together.
fn flood_pair(rt: &Runtime, from: usize, to: usize) -> Addr<Flooder> {
    let sink = rt.spawn_on(to, Sink::new()).expect("spawn sink");
    let flooder = rt
        .spawn_on(
            from,
            Flooder {
                sink: sink.clone(),
                left: 0,
                credit: 0,
                fence: None,
            },
        )
        .expect("spawn flooder");
    sink.tell(SinkMsg::Attach(flooder.clone())).expect("attach");
    flooder
}

/// One measured flood: start, wait until the sink saw everything.
fn flood(flooder: &Addr<Flooder>, n: u64) {
    let seen = flooder
        .ask(|r| FloodMsg::Start(n, r), ASK_TIMEOUT)
        .expect("flood ask");
    assert_eq!(seen, n, "the sink saw every message");
}

// ----- crossbeam baselines on persistent pinned threads ---------------------------------------

/// Counts values until a `FENCE`, then reports the count on `done`.
fn count_until_fence(rx: Receiver<u64>, done: Sender<u64>) {
    let mut count = 0u64;
    while let Ok(x) = rx.recv() {
        if x == FENCE {
            if done.send(count).is_err() {
                return;
            }
            count = 0;
        } else {
            black_box(x);
            count += 1;
        }
    }
}

/// A producer thread (CPU 0) streaming to a consumer thread (CPU 1) over `bounded(cap)`.
struct CbStream {
    start: Option<Sender<u64>>,
    done: Receiver<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl CbStream {
    fn new(cap: usize) -> Self {
        let (start_tx, start_rx) = bounded::<u64>(1);
        let (data_tx, data_rx) = bounded::<u64>(cap);
        let (done_tx, done_rx) = bounded::<u64>(1);
        let producer = common::spawn_pinned("cb-producer", 0, move || {
            while let Ok(n) = start_rx.recv() {
                for i in 0..n {
                    data_tx.send(i).expect("consumer alive");
                }
                data_tx.send(FENCE).expect("consumer alive");
            }
        });
        let consumer = common::spawn_pinned("cb-consumer", 1, move || {
            count_until_fence(data_rx, done_tx)
        });
        CbStream {
            start: Some(start_tx),
            done: done_rx,
            threads: vec![producer, consumer],
        }
    }

    fn run(&self, n: u64) {
        run_to_done(self.start.as_ref(), &self.done, n);
    }
}

impl Drop for CbStream {
    fn drop(&mut self) {
        self.start = None;
        for t in self.threads.drain(..) {
            t.join().expect("baseline thread");
        }
    }
}

/// Starts one run of `n` messages of a baseline whose threads wait on `start` and answer the
/// count on `done`, and waits for that answer.
fn run_to_done(start: Option<&Sender<u64>>, done: &Receiver<u64>, n: u64) {
    start.expect("running").send(n).expect("start");
    assert_eq!(done.recv().expect("done"), n);
}

/// Thread A (CPU 0) and thread B (CPU 1) ping-ponging over two `bounded(1)` channels.
struct CbPingPong {
    start: Option<Sender<u64>>,
    done: Receiver<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl CbPingPong {
    fn new() -> Self {
        let (start_tx, start_rx) = bounded::<u64>(1);
        let (done_tx, done_rx) = bounded::<u64>(1);
        let (ping_tx, ping_rx) = bounded::<u64>(1);
        let (pong_tx, pong_rx) = bounded::<u64>(1);
        let a = common::spawn_pinned("cb-ping", 0, move || {
            while let Ok(n) = start_rx.recv() {
                for i in 0..n {
                    ping_tx.send(i).expect("pong thread alive");
                    black_box(pong_rx.recv().expect("pong thread alive"));
                }
                if done_tx.send(n).is_err() {
                    return;
                }
            }
        });
        let b = common::spawn_pinned("cb-pong", 1, move || {
            while let Ok(x) = ping_rx.recv() {
                if pong_tx.send(x).is_err() {
                    return;
                }
            }
        });
        CbPingPong {
            start: Some(start_tx),
            done: done_rx,
            threads: vec![a, b],
        }
    }

    fn run(&self, n: u64) {
        run_to_done(self.start.as_ref(), &self.done, n);
    }
}

impl Drop for CbPingPong {
    fn drop(&mut self) {
        self.start = None;
        for t in self.threads.drain(..) {
            t.join().expect("baseline thread");
        }
    }
}

/// The hardware-floor baseline. It runs outside the runtime, on plain std atomics (the loom shim
/// is for the runtime's own code).
mod line_bounce {
    #![allow(clippy::disallowed_types, clippy::disallowed_methods)]

    use crate::common;
    use crossbeam_channel::{Receiver, Sender, bounded};
    use crossbeam_utils::CachePadded;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread::JoinHandle;

    /// The hardware floor of a cross-core round trip: thread A (CPU 0) and thread B (CPU 1) pass
    /// one counter back and forth in a single cache line, each spinning on it (A writes an odd value,
    /// B answers with the next even one). No queue, no runtime: two transfers of one line per round
    /// trip. Any design whose messages really cross cores pays at least this.
    pub(crate) struct LineBounce {
        start: Option<Sender<u64>>,
        done: Receiver<u64>,
        line: Arc<CachePadded<AtomicU64>>,
        threads: Vec<JoinHandle<()>>,
    }

    /// Written into the line to make B return.
    const LINE_STOP: u64 = u64::MAX;

    impl LineBounce {
        pub(crate) fn new() -> Self {
            let (start_tx, start_rx) = bounded::<u64>(1);
            let (done_tx, done_rx) = bounded::<u64>(1);
            let line = Arc::new(CachePadded::new(AtomicU64::new(0)));
            let a_line = line.clone();
            let a = common::spawn_pinned("line-a", 0, move || {
                let mut v = 0u64;
                while let Ok(n) = start_rx.recv() {
                    for _ in 0..n {
                        a_line.store(v + 1, Ordering::Release);
                        while a_line.load(Ordering::Acquire) != v + 2 {
                            std::hint::spin_loop();
                        }
                        v += 2;
                    }
                    if done_tx.send(n).is_err() {
                        return;
                    }
                }
            });
            let b_line = line.clone();
            let b = common::spawn_pinned("line-b", 1, move || {
                loop {
                    let v = b_line.load(Ordering::Acquire);
                    if v == LINE_STOP {
                        return;
                    }
                    if v % 2 == 1 {
                        b_line.store(v + 1, Ordering::Release);
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            LineBounce {
                start: Some(start_tx),
                done: done_rx,
                line,
                threads: vec![a, b],
            }
        }

        pub(crate) fn run(&self, n: u64) {
            crate::run_to_done(self.start.as_ref(), &self.done, n);
        }
    }

    impl Drop for LineBounce {
        fn drop(&mut self) {
            // A is idle (between runs, blocked on `start`): closing `start` ends it, and B sees the
            // stop value once A no longer writes.
            self.start = None;
            let mut threads = self.threads.drain(..);
            if let Some(a) = threads.next() {
                a.join().expect("line thread a");
            }
            self.line.store(LINE_STOP, Ordering::Release);
            for t in threads {
                t.join().expect("line thread b");
            }
        }
    }
}

use line_bounce::LineBounce;

/// A consumer thread pinned to CPU 0 fed by whoever holds `tx` (the bench's main thread).
struct CbSink {
    tx: Option<Sender<u64>>,
    done: Receiver<u64>,
    thread: Option<JoinHandle<()>>,
}

impl CbSink {
    fn new(cap: usize) -> Self {
        let (tx, rx) = bounded::<u64>(cap);
        let (done_tx, done_rx) = bounded::<u64>(1);
        let thread = common::spawn_pinned("cb-sink", 0, move || count_until_fence(rx, done_tx));
        CbSink {
            tx: Some(tx),
            done: done_rx,
            thread: Some(thread),
        }
    }

    fn run(&self, n: u64) {
        let tx = self.tx.as_ref().expect("running");
        for i in 0..n {
            tx.send(i).expect("sink alive");
        }
        tx.send(FENCE).expect("sink alive");
        assert_eq!(self.done.recv().expect("done"), n);
    }
}

impl Drop for CbSink {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            t.join().expect("baseline thread");
        }
    }
}

// ----- tokio baselines ------------------------------------------------------------------------

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

fn tokio_stream(rt: &tokio::runtime::Runtime, n: u64) {
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
        let consumer = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(x) = rx.recv().await {
                black_box(x);
                count += 1;
            }
            count
        });
        let producer = tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.expect("consumer alive");
            }
        });
        producer.await.expect("producer");
        assert_eq!(consumer.await.expect("consumer"), n);
    });
}

fn tokio_ping_pong(rt: &tokio::runtime::Runtime, n: u64) {
    rt.block_on(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let b = tokio::spawn(async move {
            while let Some(x) = ping_rx.recv().await {
                if pong_tx.send(x).await.is_err() {
                    return;
                }
            }
        });
        let a = tokio::spawn(async move {
            for i in 0..n {
                ping_tx.send(i).await.expect("pong task alive");
                black_box(pong_rx.recv().await.expect("pong task alive"));
            }
        });
        a.await.expect("ping task");
        b.await.expect("pong task");
    });
}

// ----- groups ---------------------------------------------------------------------------------

/// Times `iters` calls of `f`.
fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed()
}

/// Kept short so that the whole file runs in about a minute.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn same_shard_tell(c: &mut Criterion) {
    let mut g = c.benchmark_group("same_shard_tell");
    g.throughput(Throughput::Elements(TELL_N));

    let rt = Runtime::builder().shards(1).build().expect("runtime");
    let flooder = flood_pair(&rt, 0, 0);
    g.bench_function("coreactor", |b| {
        b.iter_custom(|iters| timed(iters, || flood(&flooder, TELL_N)))
    });
    drop(flooder);
    rt.shutdown().expect("shutdown");

    g.bench_function("vecdeque_one_thread", |b| {
        let mut q: VecDeque<u64> = VecDeque::with_capacity(LOCAL_CHUNK as usize);
        b.iter(|| {
            let mut seen = 0u64;
            for base in (0..TELL_N).step_by(LOCAL_CHUNK as usize) {
                for i in 0..LOCAL_CHUNK {
                    q.push_back(black_box(base + i));
                }
                while let Some(x) = q.pop_front() {
                    black_box(x);
                    seen += 1;
                }
            }
            seen
        })
    });

    g.bench_function("crossbeam_bounded_one_thread", |b| {
        let (tx, rx) = bounded::<u64>(1024);
        b.iter(|| {
            let mut seen = 0u64;
            for base in (0..TELL_N).step_by(LOCAL_CHUNK as usize) {
                for i in 0..LOCAL_CHUNK {
                    tx.send(black_box(base + i)).expect("receiver alive");
                }
                while let Ok(x) = rx.try_recv() {
                    black_box(x);
                    seen += 1;
                }
            }
            seen
        })
    });
    g.finish();
}

fn cross_shard_tell(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_shard_tell");
    g.throughput(Throughput::Elements(TELL_N));

    let rt = Runtime::builder().shards(2).build().expect("runtime");
    let flooder = flood_pair(&rt, 0, 1);
    g.bench_function("coreactor", |b| {
        b.iter_custom(|iters| timed(iters, || flood(&flooder, TELL_N)))
    });
    drop(flooder);
    rt.shutdown().expect("shutdown");

    let cb = CbStream::new(1024);
    g.bench_function("crossbeam_bounded_1024", |b| {
        b.iter_custom(|iters| timed(iters, || cb.run(TELL_N)))
    });
    drop(cb);

    let trt = tokio_rt();
    g.bench_function("tokio_mpsc_1024", |b| {
        b.iter_custom(|iters| timed(iters, || tokio_stream(&trt, TELL_N)))
    });
    drop(trt);
    g.finish();
}

fn cross_shard_ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_shard_ping_pong");
    g.throughput(Throughput::Elements(PING_N));

    let rt = Runtime::builder().shards(2).build().expect("runtime");
    let ponger = rt
        .spawn_on(1, Ponger { pinger: None })
        .expect("spawn ponger");
    let pinger = rt
        .spawn_on(
            0,
            Pinger {
                ponger: ponger.clone(),
                left: 0,
                done: None,
            },
        )
        .expect("spawn pinger");
    ponger
        .tell(PongMsg::Attach(pinger.clone()))
        .expect("attach");
    g.bench_function("coreactor", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                pinger
                    .ask(|r| PingMsg::Start(PING_N, r), ASK_TIMEOUT)
                    .expect("ping-pong ask");
            })
        })
    });
    drop((pinger, ponger));
    rt.shutdown().expect("shutdown");

    let cb = CbPingPong::new();
    g.bench_function("crossbeam_bounded_1_pair", |b| {
        b.iter_custom(|iters| timed(iters, || cb.run(PING_N)))
    });
    drop(cb);

    let trt = tokio_rt();
    g.bench_function("tokio_mpsc_1_pair", |b| {
        b.iter_custom(|iters| timed(iters, || tokio_ping_pong(&trt, PING_N)))
    });
    drop(trt);

    let floor = LineBounce::new();
    g.bench_function("cache_line_floor_pinned", |b| {
        b.iter_custom(|iters| timed(iters, || floor.run(PING_N)))
    });
    drop(floor);
    g.finish();
}

fn outside_tell(c: &mut Criterion) {
    let mut g = c.benchmark_group("outside_tell");
    g.throughput(Throughput::Elements(TELL_N));

    let rt = Runtime::builder().shards(1).build().expect("runtime");
    let sink = rt.spawn_on(0, Sink::new()).expect("spawn sink");
    // The sending thread (this one) runs on CPU 1, next to the shard (or the baseline's
    // consumer) on CPU 0: left to the scheduler it sometimes shared CPU 0 with them and the
    // result was bimodal (7.5 or 16 M msgs/s from one run to the next). Pinned after the
    // runtime is built: placement reads the CPUs this thread may use, and would otherwise put
    // the shard on CPU 1 too. This is the last group, so the pin does not affect the others.
    if common::cpus() >= 2 {
        common::pin_current(1);
    }
    g.bench_function("coreactor", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                for i in 0..TELL_N {
                    sink.tell(SinkMsg::Data(i)).expect("tell");
                }
                let seen = sink.ask(SinkMsg::Fence, ASK_TIMEOUT).expect("fence");
                assert_eq!(seen, TELL_N);
            })
        })
    });
    drop(sink);
    rt.shutdown().expect("shutdown");

    let cb = CbSink::new(4096);
    g.bench_function("crossbeam_bounded_4096", |b| {
        b.iter_custom(|iters| timed(iters, || cb.run(TELL_N)))
    });
    drop(cb);
    g.finish();
}

fn benches(c: &mut Criterion) {
    eprintln!("{}", common::machine_line());
    same_shard_tell(c);
    cross_shard_tell(c);
    cross_shard_ping_pong(c);
    outside_tell(c);
}

criterion_group! {
    name = messaging;
    config = config();
    targets = benches
}
criterion_main!(messaging);
