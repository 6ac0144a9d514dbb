//! Helpers shared by the integration tests: shard-count loops, deadline-bounded waits, a gate
//! that holds a shard thread inside a handler, a seeded RNG, drop flags and a tiny `block_on`.
//!
//! Nothing here sleeps to synchronise: every wait polls a condition and fails the test with a
//! message once [`DEADLINE`] has passed, so a bug shows up as a failure, never as a hang.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use coreactor::{Actor, Addr, Context, Reply, Runtime};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// Every test runs once per shard count.
pub const SHARD_COUNTS: [usize; 3] = [1, 2, 4];

/// How long any wait may take before the test fails (generous: the machine may be loaded).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `f` with 1, 2 and 4 shards; a failure names the shard count it happened with.
pub fn for_each_shard_count(mut f: impl FnMut(usize)) {
    for n in SHARD_COUNTS {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(n))) {
            eprintln!("test failed with {n} shard(s)");
            resume_unwind(panic);
        }
    }
}

/// A runtime with `n` shards and otherwise default settings.
pub fn runtime(n: usize) -> Runtime {
    Runtime::builder()
        .shards(n)
        .build()
        .expect("runtime starts")
}

/// Polls `cond` until it holds; fails the test after [`DEADLINE`] naming `what`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, || cond().then_some(()));
}

/// Polls `f` until it returns `Some`; fails the test after [`DEADLINE`] naming `what`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut spins = 0u32;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for: {what}"
        );
        spins += 1;
        if spins < 16 {
            std::thread::yield_now();
        } else {
            std::thread::park_timeout(Duration::from_micros(200));
        }
    }
}

/// Joins `handle`, failing the test if the thread has not finished within [`DEADLINE`].
pub fn join<T>(what: &str, handle: JoinHandle<T>) -> T {
    wait_until(what, || handle.is_finished());
    match handle.join() {
        Ok(v) => v,
        Err(panic) => resume_unwind(panic),
    }
}

/// A deterministic xorshift64* generator.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator for `seed` (zero is replaced, xorshift cannot leave it).
    pub fn new(seed: u64) -> Self {
        XorShift64(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A gate that handlers wait at until the test opens it (bounded by [`DEADLINE`]).
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    entered: AtomicUsize,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// Called inside a handler: counts the arrival, then waits for [`open`](Self::open).
    pub fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let (open, _) = self
            .cv
            .wait_timeout_while(open, DEADLINE, |open| !*open)
            .unwrap();
        assert!(*open, "gate never opened within {DEADLINE:?}");
    }

    /// Waits until `n` handlers have arrived at the gate.
    pub fn wait_entered(&self, n: usize) {
        wait_until("handlers to reach the gate", || {
            self.entered.load(Ordering::SeqCst) >= n
        });
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Opens the gate when the guard drops, so a failing test never leaves a shard stuck.
    pub fn open_on_drop(self: &Arc<Self>) -> GateGuard {
        GateGuard(self.clone())
    }
}

pub struct GateGuard(Arc<Gate>);

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// An actor whose only job is to hold its shard's thread at a gate, or answer pings.
pub struct Blocker;

pub enum BlockerMsg {
    Block(Arc<Gate>),
    Ping(Reply<usize>),
}

impl Actor for Blocker {
    type Msg = BlockerMsg;
    fn handle(&mut self, msg: BlockerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            BlockerMsg::Block(gate) => gate.pass(),
            BlockerMsg::Ping(r) => r.send(ctx.shard_id()),
        }
    }
}

/// Spawns a [`Blocker`] on `shard` and holds that shard's thread at a fresh gate; returns the
/// gate and a guard that opens it (at the latest when the guard drops).
pub fn block_shard(rt: &Runtime, shard: usize) -> (Arc<Gate>, GateGuard, Addr<Blocker>) {
    let blocker = rt.spawn_on(shard, Blocker).expect("spawn blocker");
    let gate = Gate::new();
    blocker
        .tell(BlockerMsg::Block(gate.clone()))
        .expect("block");
    gate.wait_entered(1);
    let guard = gate.open_on_drop();
    (gate, guard, blocker)
}

/// A flag set when the value holding it is dropped.
#[derive(Debug)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    pub fn new() -> (DropFlag, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (DropFlag(flag.clone()), flag)
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The `(shard, slot, generation)` of an address, read from its `Debug` form
/// `Addr<T>(shard:slot#generation)`.
pub fn addr_parts<A: Actor>(addr: &Addr<A>) -> (usize, u32, u32) {
    let text = format!("{addr:?}");
    let (_, tail) = text.rsplit_once('(').expect("Addr debug form");
    let tail = tail.trim_end_matches(')');
    let (shard, rest) = tail.split_once(':').expect("shard:slot");
    let (slot, generation) = rest.split_once('#').expect("slot#generation");
    (
        shard.parse().unwrap(),
        slot.parse().unwrap(),
        generation.parse().unwrap(),
    )
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `fut` on this thread, parking between wake-ups; fails the test if
/// the future is not ready within [`DEADLINE`].
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = pin!(fut);
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let now = Instant::now();
        assert!(
            now < deadline,
            "block_on: future not ready within {DEADLINE:?}"
        );
        std::thread::park_timeout(deadline - now);
    }
}

/// Records the `u64`s it receives, in order, and answers `Get` with them: the sink of the
/// backpressure tests.
#[derive(Default)]
pub struct Sink {
    got: Vec<u64>,
}

pub enum SinkMsg {
    Data(u64),
    Get(Reply<Vec<u64>>),
}

impl Actor for Sink {
    type Msg = SinkMsg;
    fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SinkMsg::Data(x) => self.got.push(x),
            SinkMsg::Get(r) => r.send(self.got.clone()),
        }
    }
}

/// Every payload of a test's messages was dropped, once: each holds a clone of `token`, so only
/// the test's own is left.
pub fn assert_no_payload_left(token: &Arc<()>, shards: usize) {
    assert_eq!(
        Arc::strong_count(token),
        1,
        "{shards} shards: a payload leaked"
    );
}

/// A runtime builder of `shards` shards whose mailboxes hold a whole flood of `n` messages,
/// counting its dead letters in `dead`.
pub fn flood_builder(shards: usize, n: u64, dead: &Arc<AtomicU64>) -> coreactor::Builder {
    let dead = Arc::clone(dead);
    Runtime::builder()
        .shards(shards)
        .mailbox_capacity(n as usize + 64)
        .on_dead_letter(move |_| {
            dead.fetch_add(1, Ordering::Relaxed);
        })
}
