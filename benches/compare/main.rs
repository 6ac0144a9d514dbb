//! The peer comparison: the same workloads on coreactor and on its peers, in one process run,
//! interleaved and repeated (issue #7).
//!
//! Run it with `cargo bench --bench compare` (a few minutes on 2 cores). Peers: coreactor
//! (2 shards), plain threads + crossbeam-channel, tokio tasks + mpsc/oneshot (2 workers),
//! actix (2 arbiters), ractor and kameo (2-worker tokio runtime); each peer module says how
//! its actors map to the cores. Workloads (see `workload.rs` for the exact shapes):
//!
//! * throughput: ping-pong (round trips/s, two actors on different workers), counting
//!   (Savina #3: one producer actor floods one counter actor), fan-in (two outside producers,
//!   one actor with a bounded mailbox), thread ring (Savina #2: 100 actors, one token),
//!   fork-join throughput (Savina #4: 60 actors x 10 000 messages from one sender) and
//!   fork-join creation (Savina #5: 40 000 actors: spawn + first message + stop);
//! * latency: closed-loop ask round trips from an outside thread (pinned to CPU 1) and from
//!   an actor to an actor on the other worker, as hdrhistogram percentiles. Every ask is
//!   closed-loop (the next ask leaves when the previous answer arrived), so there is no
//!   coordinated omission to correct: no request is ever scheduled and left waiting;
//! * heap allocations per message (tell: the counting shape) and per outside ask, counted by
//!   a global allocator switched on only around those windows (`alloc_count.rs`).
//!
//! Method: every repetition runs every workload on every peer, the peer order rotating by one
//! each repetition (so a noisy period or a warm cache does not always favour the same peer);
//! each run builds its own runtime and tears it down, outside the timed part. The report gives
//! the median over repetitions (`COMPARE_REPS`, default 3) with min and max. A watchdog ends
//! the process with a message if any step hangs; completion waits have their own timeouts.
//!
//! Outputs: `results.csv`, `results.md`, `throughput.svg`, `latency.svg` in `target/compare/`,
//! or in `$COMPARE_OUT` (e.g. `COMPARE_OUT=docs/bench`). `COMPARE_PEERS=coreactor,tokio`
//! runs a subset; `COMPARE_NOTE` adds a remark to the charts' subtitle. With `CI` set it
//! makes a smoke run (small sizes, 1 repetition, well under a minute) and asserts only that
//! everything ran and the numbers are sane, never timings.

#[path = "../common/mod.rs"]
mod common;

mod alloc_count;
mod floor;
mod peer_actix;
mod peer_coreactor;
mod peer_kameo;
mod peer_ractor;
mod peer_threads;
mod peer_tokio;
mod report;
mod svg;
mod workload;

use report::{AllocResult, LatencyResult, Results, ThroughputResult};
use std::time::{Duration, Instant};
use workload::{Latency, Peer, Sizes, Throughput, watchdog};

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// The longest any single step (one workload on one peer) may take before the watchdog ends
/// the run.
const STEP_LIMIT: Duration = Duration::from_secs(180);

/// Runs `f` under the watchdog, labelled `peer / what`.
fn step<T>(peer: &str, what: &str, f: impl FnOnce() -> T) -> T {
    watchdog::arm(format!("{peer} / {what}"), STEP_LIMIT);
    let v = f();
    watchdog::disarm();
    v
}

/// One throughput run: units of work per second.
fn run_throughput(peer: &dyn Peer, w: Throughput, s: &Sizes) -> Option<f64> {
    let d = match w {
        Throughput::PingPong => peer.ping_pong(s.ping_pong),
        Throughput::Counting | Throughput::CountingSameWorker => {
            let mut session = if w == Throughput::Counting {
                peer.counting()
            } else {
                peer.counting_same_worker()?
            };
            // Warm-up: one untimed flood of the full size, then the timed one (Savina reports
            // the steady state of repeated iterations too). With a smaller warm-up the timed
            // run is the first to grow the mailboxes and buffers to 1 M entries, and measures
            // first-touch page faults and buffer doubling rather than message passing, for
            // every peer (see docs/compare.md).
            session.run(s.counting);
            let t0 = Instant::now();
            session.run(s.counting);
            t0.elapsed()
        }
        Throughput::FanIn => peer.fan_in(s.fan_in, s.fan_in_bound),
        Throughput::ThreadRing => peer.thread_ring(s.ring_actors, s.ring_hops),
        Throughput::ForkJoin => peer.fork_join(s.fj_actors, s.fj_msgs),
        Throughput::Creation => peer.creation(s.create)?,
    };
    Some(w.units(s) as f64 / d.as_secs_f64())
}

/// One latency run: the percentiles of `s.asks` recorded asks after `s.ask_warm` warm-up.
fn run_latency(peer: &dyn Peer, w: Latency, s: &Sizes) -> common::Percentiles {
    let hist = match w {
        Latency::Outside => {
            let mut session = peer.ask_outside();
            let (n, warm) = (s.asks, s.ask_warm);
            let (session, h) = common::run_pinned(1, move || {
                session.run(warm, None);
                let mut h = common::new_hist();
                session.run(n, Some(&mut h));
                (session, h)
            });
            drop(session);
            h
        }
        Latency::ActorToActor => peer.ask_actor(s.asks, s.ask_warm),
    };
    common::Percentiles::from_hist(w.name(), peer.name(), &hist)
}

/// Median over `windows` of `(allocs, bytes)` per unit of `run(k)` minus `run(0)`.
fn alloc_per_unit(k: u64, windows: usize, mut run: impl FnMut(u64)) -> (f64, f64) {
    let mut window = |n: u64| {
        alloc_count::enable(true);
        let (c0, b0) = alloc_count::read();
        run(n);
        let (c1, b1) = alloc_count::read();
        alloc_count::enable(false);
        (c1 - c0, b1 - b0)
    };
    for _ in 0..3 {
        window(k);
        window(0);
    }
    let (mut calls, mut bytes) = (Vec::new(), Vec::new());
    for _ in 0..windows {
        let (fc, fb) = window(k);
        let (ec, eb) = window(0);
        calls.push((fc as f64 - ec as f64) / k as f64);
        bytes.push((fb as f64 - eb as f64) / k as f64);
    }
    let med = |v: &[f64]| report::stats(v).expect("windows > 0").0;
    (med(&calls), med(&bytes))
}

fn run_alloc(peer: &dyn Peer, s: &Sizes) -> AllocResult {
    let mut counting = peer.counting();
    let (tell_calls, tell_bytes) = alloc_per_unit(s.alloc_k, s.alloc_windows, |k| counting.run(k));
    drop(counting);
    let mut ask = peer.ask_outside();
    let (ask_calls, ask_bytes) = alloc_per_unit(s.alloc_k, s.alloc_windows, |k| ask.run(k, None));
    drop(ask);
    AllocResult {
        peer: peer.name(),
        tell_calls,
        tell_bytes,
        ask_calls,
        ask_bytes,
    }
}

fn main() {
    let ci = common::ci();
    let mut sizes = if ci { Sizes::ci() } else { Sizes::full() };
    if let Some(r) = std::env::var("COMPARE_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        sizes.reps = r;
    }
    // `COMPARE_FLOOR=0` runs no floor probe (the floors are then reported as n/a).
    if let Some(r) = std::env::var("COMPARE_FLOOR")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        sizes.floor_round_trips = r;
    }
    let all: Vec<Box<dyn Peer>> = vec![
        Box::new(peer_coreactor::Coreactor),
        Box::new(peer_threads::Threads),
        Box::new(peer_tokio::Tokio),
        Box::new(peer_actix::Actix::new()),
        Box::new(peer_ractor::Ractor),
        Box::new(peer_kameo::Kameo),
    ];
    let wanted = std::env::var("COMPARE_PEERS")
        .ok()
        .filter(|v| !v.is_empty());
    let peers: Vec<Box<dyn Peer>> = all
        .into_iter()
        .filter(|p| {
            wanted.as_ref().is_none_or(|w| {
                // `threads` also selects `threads+crossbeam`.
                w.split(',').any(|n| {
                    let n = n.trim();
                    n == p.name() || p.name().split('+').next() == Some(n)
                })
            })
        })
        .collect();
    assert!(!peers.is_empty(), "COMPARE_PEERS matched no peer");

    println!("{}", common::machine_line());
    println!(
        "compare: {} peers, {} repetition(s){}; sizes {sizes:?}",
        peers.len(),
        sizes.reps,
        if ci { " (CI smoke run)" } else { "" }
    );
    let started = Instant::now();
    let mut results = Results {
        peers: peers.iter().map(|p| p.name()).collect(),
        throughput: Vec::new(),
        latency: Vec::new(),
        alloc: Vec::new(),
    };
    for p in &peers {
        for w in Throughput::ALL {
            results.throughput.push(ThroughputResult {
                workload: w,
                peer: p.name(),
                rates: Vec::new(),
                floors: Vec::new(),
            });
        }
        for w in Latency::ALL {
            results.latency.push(LatencyResult {
                workload: w,
                peer: p.name(),
                reps: Vec::new(),
            });
        }
    }

    for rep in 0..sizes.reps {
        let order: Vec<&dyn Peer> = (0..peers.len())
            .map(|k| &*peers[(k + rep) % peers.len()])
            .collect();
        for w in Throughput::ALL {
            for &peer in &order {
                let floor = if sizes.floor_round_trips > 0 {
                    floor::probe(sizes.floor_round_trips)
                } else {
                    f64::NAN
                };
                let rate = step(peer.name(), w.name(), || run_throughput(peer, w, &sizes));
                if let Some(rate) = rate {
                    println!(
                        "rep {rep}  {:<22} {:<18} {:>10} {}  (floor {})",
                        w.name(),
                        peer.name(),
                        report::si(rate),
                        w.unit(),
                        if floor.is_nan() {
                            "off".into()
                        } else {
                            format!("{} rt/s", report::si(floor))
                        }
                    );
                    let slot = results
                        .throughput
                        .iter_mut()
                        .find(|r| r.workload == w && r.peer == peer.name())
                        .expect("slot");
                    slot.rates.push(rate);
                    slot.floors.push(floor);
                }
            }
        }
        for w in Latency::ALL {
            for &peer in &order {
                let p = step(peer.name(), w.name(), || run_latency(peer, w, &sizes));
                println!(
                    "rep {rep}  {:<22} {:<18} p50 {:>7.1} µs  p99 {:>7.1} µs  p99.9 {:>7.1} µs  max {:>8.1} µs",
                    w.name(),
                    peer.name(),
                    p.p50 as f64 / 1e3,
                    p.p99 as f64 / 1e3,
                    p.p999 as f64 / 1e3,
                    p.max as f64 / 1e3
                );
                let slot = results
                    .latency
                    .iter_mut()
                    .find(|r| r.workload == w && r.peer == peer.name());
                slot.expect("slot").reps.push(p);
            }
        }
    }
    for peer in &peers {
        let a = step(peer.name(), "allocations", || run_alloc(&**peer, &sizes));
        println!(
            "alloc  {:<18} tell {:.2} allocs/msg ({:.0} B)  ask {:.2} allocs/ask ({:.0} B)",
            a.peer, a.tell_calls, a.tell_bytes, a.ask_calls, a.ask_bytes
        );
        results.alloc.push(a);
    }

    results.assert_sane();
    // `COMPARE_NOTE` adds a remark to the charts' subtitle (e.g. "loaded box").
    let note = std::env::var("COMPARE_NOTE").ok().filter(|v| !v.is_empty());
    let subtitle = format!(
        "{}; {} repetition(s){}{}",
        common::machine_line()
            .trim_start_matches("machine: ")
            .split(" (")
            .next()
            .unwrap_or_default(),
        sizes.reps,
        if ci { "; CI smoke sizes" } else { "" },
        note.map(|n| format!("; {n}")).unwrap_or_default()
    );
    let dir = report::out_dir();
    let md = results.markdown();
    for (name, body) in [
        ("results.csv", results.csv()),
        ("results.md", md.clone()),
        ("throughput.svg", svg::throughput(&results, &subtitle)),
        ("latency.svg", svg::latency(&results, &subtitle)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
    println!("\n{md}");
    println!("compare: done in {:.1} s", started.elapsed().as_secs_f64());
    if ci {
        println!("CI smoke checks passed (sanity only, no timing assertions)");
    }
}
