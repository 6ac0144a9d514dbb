//! Heap allocations per message in steady state, counted by a global allocator of this bench
//! binary (every thread's allocations, shards included).
//!
//! Each scenario runs a *window*: the counter is read, `K` messages (or asks) go through and are
//! confirmed handled by an ask that fences the end of the window, and the counter is read again.
//! The same window with zero messages (the fence alone) is measured right after and subtracted,
//! so what remains is the cost of the `K` messages. Windows are repeated after a warm-up (so that
//! mailboxes, rings, overflow queues and tables have grown to their steady size) and the median
//! is reported. Scenarios, on a 2-shard runtime:
//!
//! * same-shard tell: an actor on shard 0 sends `K` 64-byte messages to an actor on shard 0;
//! * cross-shard tell: the same from shard 0 to shard 1;
//! * outside tell: the bench's thread `tell`s `K` 64-byte messages to an actor on shard 0;
//! * outside ask: the bench's thread makes `K` blocking `Addr::ask`s (empty window: no ask);
//! * `Context::ask` across shards: an actor on shard 0 makes `K` closed-loop asks to an actor
//!   on shard 1.
//!
//! Prints a table and writes `target/bench-results/alloc.csv`. In CI mode (`CI` set) it runs
//! shorter and asserts nothing.

mod common;

use common::actors::{PingMsg, Pinger, PongMsg, Ponger, RespMsg, Responder, must_tell};

use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime};
use std::alloc::{GlobalAlloc, Layout, System};
use std::time::Duration;

/// The allocation counters of this bench binary.
mod counter {
    // The library reaches atomics only through its loom shim (`src/sync`); this bench binary is
    // not model-checked and needs a plain static counter inside its global allocator.
    #![allow(clippy::disallowed_types)]

    use std::sync::atomic::{AtomicU64, Ordering};

    static CALLS: AtomicU64 = AtomicU64::new(0);
    static BYTES: AtomicU64 = AtomicU64::new(0);

    /// Allocation calls by exact size in bytes; the last bucket counts every larger size.
    pub const SIZE_BUCKETS: usize = 4097;
    static BY_SIZE: [AtomicU64; SIZE_BUCKETS] = [const { AtomicU64::new(0) }; SIZE_BUCKETS];

    /// Counts one allocation (or reallocation) of `bytes`.
    #[inline]
    pub fn count(bytes: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
        BY_SIZE[bytes.min(SIZE_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the per-size counts into `out` (no allocation).
    pub fn read_sizes(out: &mut [u64; SIZE_BUCKETS]) {
        for (o, c) in out.iter_mut().zip(BY_SIZE.iter()) {
            *o = c.load(Ordering::SeqCst);
        }
    }

    /// `(calls, bytes)` so far.
    pub fn read() -> (u64, u64) {
        (CALLS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
    }
}

/// The system allocator, counting `alloc`, `alloc_zeroed` and `realloc` calls.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counter::count(layout.size());
        // SAFETY: forwarded contract of `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counter::count(layout.size());
        // SAFETY: forwarded contract of `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counter::count(new_size);
        // SAFETY: forwarded contract of `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Messages (or asks) per window: below the default mailbox capacity (4096), so no tell ever
/// waits or answers `Full`.
const K: u64 = 1000;

// ----- actors ---------------------------------------------------------------------------------

/// A 64-byte message: 56 bytes of payload plus the enum tag (checked below).
enum SinkMsg {
    Data([u64; 7]),
    Fence(Reply<u64>),
}

const _: () = assert!(std::mem::size_of::<SinkMsg>() == 64);

/// Counts data messages; answers a fence with the count and resets it.
struct Sink {
    seen: u64,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SinkMsg::Data(d) => {
                std::hint::black_box(d);
                self.seen += 1;
            }
            SinkMsg::Fence(reply) => {
                reply.send(self.seen);
                self.seen = 0;
            }
        }
    }
}

/// Sends `k` data messages to its sink, then the fence carrying the outside asker's reply.
struct Driver {
    sink: Addr<Sink>,
}

enum DriverMsg {
    Run(u64, Reply<u64>),
}

impl Actor for Driver {
    type Msg = DriverMsg;
    fn handle(&mut self, DriverMsg::Run(k, reply): DriverMsg, _ctx: &mut Context<'_, Self>) {
        for i in 0..k {
            must_tell(&self.sink, SinkMsg::Data([i; 7]));
        }
        must_tell(&self.sink, SinkMsg::Fence(reply));
    }
}

/// Makes `k` closed-loop `Context::ask`s to its peer, then answers the outside asker.
struct AskDriver {
    peer: Addr<Responder>,
    left: u64,
    done: Option<Reply<u64>>,
}

enum AskDriverMsg {
    Run(u64, Reply<u64>),
    Answer(Result<u64, AskError>),
}

impl Actor for AskDriver {
    type Msg = AskDriverMsg;
    fn handle(&mut self, msg: AskDriverMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AskDriverMsg::Run(k, reply) => {
                self.left = k;
                self.done = Some(reply);
            }
            AskDriverMsg::Answer(r) => {
                r.expect("Context::ask answered");
                self.left -= 1;
            }
        }
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                done.send(0);
            }
        } else {
            ctx.ask(
                &self.peer,
                |r| RespMsg::Req(1, r),
                TIMEOUT,
                AskDriverMsg::Answer,
            );
        }
    }
}

// ----- measurement ----------------------------------------------------------------------------

/// One row of the table.
struct Row {
    scenario: &'static str,
    /// Median allocation calls of a window with `K` messages and of an empty window.
    full: f64,
    empty: f64,
    /// Median per message of `(full - empty) / K`.
    calls_per_msg: f64,
    bytes_per_msg: f64,
    /// Allocation sizes of the last (full, empty) pair, per message.
    sizes: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type Sizes = [u64; counter::SIZE_BUCKETS];

/// `(calls, bytes)` allocated while `f` runs (by every thread); with `sizes`, also the calls
/// per allocation size (`sizes.0` before, `sizes.1` after).
fn window(f: &mut impl FnMut(u64), k: u64, sizes: Option<&mut (Sizes, Sizes)>) -> (u64, u64) {
    match sizes {
        Some((before, after)) => {
            counter::read_sizes(before);
            let (c0, b0) = counter::read();
            f(k);
            let (c1, b1) = counter::read();
            counter::read_sizes(after);
            (c1 - c0, b1 - b0)
        }
        None => {
            let (c0, b0) = counter::read();
            f(k);
            let (c1, b1) = counter::read();
            (c1 - c0, b1 - b0)
        }
    }
}

/// "size B x calls/msg" for the sizes allocated more often in a full window than in an empty
/// one (per message, at least 0.01).
fn size_breakdown(full: &(Sizes, Sizes), empty: &(Sizes, Sizes), per: u64) -> String {
    let mut parts = Vec::new();
    for size in 0..counter::SIZE_BUCKETS {
        let f = full.1[size] as f64 - full.0[size] as f64;
        let e = empty.1[size] as f64 - empty.0[size] as f64;
        let d = (f - e) / per as f64;
        if d >= 0.01 {
            let label = if size == counter::SIZE_BUCKETS - 1 {
                format!(">={size} B")
            } else {
                format!("{size} B")
            };
            parts.push(format!("{label} x{d:.3}"));
        }
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// Runs `warm` warm-up windows, then `reps` pairs of (full, empty) windows. A full window
/// carries `K * msgs_per_unit` messages.
fn measure(
    scenario: &'static str,
    msgs_per_unit: u64,
    warm: usize,
    reps: usize,
    mut f: impl FnMut(u64),
) -> Row {
    let per = K * msgs_per_unit;
    let mut full_sizes: Box<(Sizes, Sizes)> =
        Box::new(([0; counter::SIZE_BUCKETS], [0; counter::SIZE_BUCKETS]));
    let mut empty_sizes: Box<(Sizes, Sizes)> =
        Box::new(([0; counter::SIZE_BUCKETS], [0; counter::SIZE_BUCKETS]));
    for _ in 0..warm {
        f(K);
        f(0);
    }
    let mut full = Vec::with_capacity(reps);
    let mut empty = Vec::with_capacity(reps);
    let mut calls = Vec::with_capacity(reps);
    let mut bytes = Vec::with_capacity(reps);
    for rep in 0..reps {
        let last = rep + 1 == reps;
        let (fc, fb) = window(&mut f, K, last.then_some(&mut *full_sizes));
        let (ec, eb) = window(&mut f, 0, last.then_some(&mut *empty_sizes));
        full.push(fc as f64);
        empty.push(ec as f64);
        calls.push((fc as f64 - ec as f64) / per as f64);
        bytes.push((fb as f64 - eb as f64) / per as f64);
    }
    Row {
        scenario,
        full: median(full),
        empty: median(empty),
        calls_per_msg: median(calls),
        bytes_per_msg: median(bytes),
        sizes: size_breakdown(&full_sizes, &empty_sizes, per),
    }
}

fn tell_via_driver(driver: &Addr<Driver>, k: u64) {
    let seen = driver
        .ask(|r| DriverMsg::Run(k, r), TIMEOUT)
        .expect("driver run");
    assert_eq!(seen, k);
}

fn main() {
    let ci = common::ci();
    let (warm, reps) = if ci { (3, 3) } else { (50, 21) };
    println!("{}", common::machine_line());
    println!(
        "alloc: K = {K} messages per window, {warm} warm-up windows, median of {reps}{}",
        if ci {
            " (CI run: nothing asserted)"
        } else {
            ""
        }
    );

    let rt = Runtime::builder().shards(2).build().expect("runtime");
    let mut rows = Vec::new();

    // Same-shard and cross-shard tells, driven by an actor on shard 0.
    for (scenario, to) in [
        ("same-shard tell, 64 B msg (0 -> 0)", 0),
        ("cross-shard tell, 64 B msg (0 -> 1)", 1),
    ] {
        let sink = rt.spawn_on(to, Sink { seen: 0 }).expect("spawn sink");
        let driver = rt.spawn_on(0, Driver { sink }).expect("spawn driver");
        rows.push(measure(scenario, 1, warm, reps, |k| {
            tell_via_driver(&driver, k)
        }));
        driver.stop().expect("stop driver");
    }

    // Cross-shard tells one at a time: a ping-pong, so every message is published alone (one
    // loop iteration, one flush per message). Per message = per round trip / 2.
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
    rows.push(measure(
        "cross-shard tell, 1 msg per flush (ping-pong 0 <-> 1)",
        2,
        warm,
        reps,
        |k| {
            pinger
                .ask(|r| PingMsg::Start(k, r), TIMEOUT)
                .expect("ping-pong run");
        },
    ));

    // Outside tells to shard 0, fenced by an outside ask.
    let sink = rt.spawn_on(0, Sink { seen: 0 }).expect("spawn sink");
    rows.push(measure(
        "outside tell, 64 B msg (thread -> 0)",
        1,
        warm,
        reps,
        |k| {
            for i in 0..k {
                sink.tell(SinkMsg::Data([i; 7])).expect("tell");
            }
            let seen = sink.ask(SinkMsg::Fence, TIMEOUT).expect("fence");
            assert_eq!(seen, k);
        },
    ));

    // Outside asks (each ask is its own fence; the empty window has no ask at all).
    let responder0 = rt.spawn_on(0, Responder).expect("spawn responder");
    rows.push(measure(
        "outside ask (thread -> 0), per ask",
        1,
        warm,
        reps,
        |k| {
            for i in 0..k {
                let v = responder0
                    .ask(|r| RespMsg::Req(i, r), TIMEOUT)
                    .expect("ask");
                assert_eq!(v, i);
            }
        },
    ));

    // Context::ask from shard 0 to shard 1.
    let responder1 = rt.spawn_on(1, Responder).expect("spawn responder");
    let asker = rt
        .spawn_on(
            0,
            AskDriver {
                peer: responder1,
                left: 0,
                done: None,
            },
        )
        .expect("spawn ask driver");
    rows.push(measure(
        "Context::ask (0 -> 1), per ask",
        1,
        warm,
        reps,
        |k| {
            asker
                .ask(|r| AskDriverMsg::Run(k, r), TIMEOUT)
                .expect("ask driver run");
        },
    ));
    rt.shutdown().expect("shutdown");

    let mut csv = String::from(
        "scenario,allocs_per_msg,bytes_per_msg,allocs_full_window,allocs_empty_window,sizes\n",
    );
    for r in &rows {
        csv.push_str(&format!(
            "{},{:.3},{:.1},{},{},{}\n",
            r.scenario.replace(',', ";"),
            r.calls_per_msg,
            r.bytes_per_msg,
            r.full,
            r.empty,
            r.sizes.replace(',', ";")
        ));
    }
    let path = common::results_dir().join("alloc.csv");
    std::fs::write(&path, csv).expect("write alloc.csv");

    println!();
    println!(
        "| scenario | allocs/msg | bytes/msg | allocs, full window | allocs, empty window | sizes (allocs/msg) |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.1} | {} | {} | {} |",
            r.scenario, r.calls_per_msg, r.bytes_per_msg, r.full, r.empty, r.sizes
        );
    }
}
