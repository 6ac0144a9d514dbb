//! The floor probe: how fast the machine moves one cache line between two cores right now.
//!
//! On some hosts the cost of a cross-core transfer changes while a run goes on (on the 2-vCPU
//! Zen 4 guest of `docs/compare.md`, two pinned threads bounce a line 10–15 M times a second in
//! one mode and ~3 M in the other, switching every few seconds to minutes). A ratio between
//! two steps that ran in different modes says more about the host than about the runtimes, so
//! the harness runs this probe before every throughput step and reports it beside the rates.

// A bench measuring the bare hardware, not the runtime: std's atomics and spin hint are the
// point here (the `sync` shim is for the library's model-checked code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest a probe may take: it stops early and reports the rate so far (a host that
/// descheduled one of the two threads would otherwise stall it).
const LIMIT: Duration = Duration::from_millis(500);

/// Round trips per second of two threads, pinned to CPUs 0 and 1 where they exist, that pass
/// one counter back and forth `round_trips` times (or for at most [`LIMIT`]).
pub fn probe(round_trips: u64) -> f64 {
    let word = Arc::new(AtomicU64::new(0));
    // The answering side: turns every odd value into the next even one.
    let answer = {
        let word = word.clone();
        crate::common::spawn_pinned("floor-probe", 1, move || {
            let mut spins = 0u32;
            loop {
                let v = word.load(Ordering::Acquire);
                if v == u64::MAX {
                    return;
                }
                if v % 2 == 1 {
                    word.store(v + 1, Ordering::Release);
                    spins = 0;
                } else {
                    wait_a_little(&mut spins);
                }
            }
        })
    };
    let asking = crate::common::spawn_pinned("floor-probe", 0, move || {
        let start = Instant::now();
        let mut done = 0;
        let mut spins = 0u32;
        while done < round_trips {
            word.store(2 * done + 1, Ordering::Release);
            while word.load(Ordering::Acquire) != 2 * done + 2 {
                wait_a_little(&mut spins);
            }
            spins = 0;
            done += 1;
            if done % 1024 == 0 && start.elapsed() > LIMIT {
                break;
            }
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        word.store(u64::MAX, Ordering::Release);
        rate
    });
    let rate = asking.join().expect("floor probe thread");
    answer.join().expect("floor probe thread");
    rate
}

/// A spin that yields now and then, so that on one CPU (or with the two threads on one) the
/// other side still runs.
fn wait_a_little(spins: &mut u32) {
    *spins += 1;
    if *spins % 256 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}
