//! Stress with message accounting: outside threads and actors on every shard send
//! sequence-numbered messages (`try_tell`, `tell`, `ask`, `Context::ask`) to 16 receivers while
//! a chaos thread stops receivers, makes them panic and spawns replacements. Once the traffic
//! has drained, every message is exactly one of handled, returned to its sender, or
//! dead-lettered (reported to the hook, then dropped unhandled); no `(sender, seq)` is handled
//! twice; each receiver incarnation handles each sender's messages in order; every ask ended
//! with `Ok` or the typed error matching what happened to its request. The harness is in
//! `tests/accounting/mod.rs`.
//!
//! Seeded: the seed is printed (shown on failure); `STRESS_SEED=<seed>` replays the same
//! choices (knobs, receivers, send kinds, chaos actions); the thread interleaving varies, the
//! invariants do not.
//!
//! Soak (many rounds, fresh seeds, 2 and 4 shards in turn; `SOAK_SECS` defaults to 120):
//!
//! ```sh
//! SOAK_SECS=600 cargo test --release --test stress_accounting -- --ignored soak
//! ```

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod accounting;
mod common;

use accounting::{Plan, Run, base_seed, derive};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

/// Messages per round and shard count (2 and 4 shards: 800k in all).
const MESSAGES: usize = 400_000;

/// One round: traffic under chaos, drain, clean shutdown, accounting.
fn round(shards: usize, seed: u64, messages: usize) {
    let plan = Plan::new(shards, seed, messages);
    println!("round: {plan:?}");
    let started = Instant::now();
    let mut run = Run::start(plan, Duration::from_secs(5));
    let joined = run.drain();
    if let Some(why) = &joined.chaos.ended_by {
        panic!("the chaos thread ended early: {why:?}");
    }
    let (counted, hooked) = (run.rt().dead_letters(), run.hooks.total());
    assert_eq!(
        counted, hooked,
        "Runtime::dead_letters() = {counted} but the hook was called {hooked} times"
    );
    run.shutdown();
    let verdict = run.verify(&joined, false);
    println!("  {:?}: {}", started.elapsed(), verdict.summary);
    assert!(
        verdict.failures.is_empty(),
        "accounting failed with {shards} shards, STRESS_SEED={seed}:\n{}",
        verdict.failures.join("\n")
    );
}

fn with_shards(shards: usize, seed: u64, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        eprintln!("failed with {shards} shards; reproduce with STRESS_SEED={seed}");
        resume_unwind(panic);
    }
}

#[test]
fn stress_accounting() {
    let seed = base_seed();
    println!("stress_accounting: STRESS_SEED={seed}");
    for shards in [2, 4] {
        let s = derive(seed, shards as u64);
        with_shards(shards, seed, || round(shards, s, MESSAGES));
    }
}

#[test]
#[ignore = "soak: SOAK_SECS=600 cargo test --release --test stress_accounting -- --ignored soak"]
fn soak_accounting() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .map(|s| s.trim().parse().expect("SOAK_SECS is a number of seconds"))
        .unwrap_or(120);
    let seed = base_seed();
    println!("soak_accounting: {secs} s, STRESS_SEED={seed}");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut rounds = 0u64;
    while Instant::now() < end {
        let shards = [2, 4][(rounds % 2) as usize];
        let s = derive(seed, 1000 + rounds);
        with_shards(shards, seed, || round(shards, s, MESSAGES));
        rounds += 1;
    }
    println!("soak_accounting: {rounds} rounds");
}
