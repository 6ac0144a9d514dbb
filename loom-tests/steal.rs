#![cfg(coreactor_loom)]
//! Loom models of the steal/migrate handshake (`src/shard/local/migrate.rs`) on the production
//! reactor loop: every message to a migrating actor is handled exactly once, in FIFO order per
//! sender, wherever the actor runs when it arrives.
//!
//! Two shards run `ShardLocal::run_loop` on two loom threads (`coreactor::__loom::ModelRuntime`,
//! see `src/testkit/model.rs`): shard 0 hosts the migratable actor `Counter` and may be stolen
//! from, shard 1 may steal. Both have a batch budget of one message per turn and a backlog
//! threshold of one ready actor, so the counter stays ready while it has mail and shard 0
//! offers it as soon as it runs; the idle shard 1, woken by the offer, sends a steal request
//! through its ring; shard 0 answers it between turns by packing the counter with its queued
//! mail and forwarding whatever reaches it afterwards. Messages come from up to three senders
//! at once: a pinned actor on shard 0 that sends one message per turn (so some leave after the
//! move and are forwarded 0 → 1), a pinned actor on shard 1 (through the ring 1 → 0; after a
//! move they travel 1 → 0 → 1), and the model's main thread (an outside thread: the injection
//! queue of shard 0). The counter checks each sender's sequence numbers as they come and, when
//! it has them all, stops both shards; the forced shutdown that follows (with the counter
//! possibly a guest on shard 1) runs along a single schedule (`loom::stop_exploring`), since
//! its races have their own model (`loom_inject_close`) and exploring it multiplied the
//! model's executions by about a hundred.
//!
//! Whether the steal happens depends on the interleaving (shard 0 may finish its mail before
//! shard 1 asks, and then refuses); the properties must hold in every one of them, and each
//! test checks afterwards that loom did reach executions where the counter moved and where
//! shard 0 forwarded mail to it (otherwise the model would prove nothing about migration).
//!
//! A lost message becomes a dead letter (the message reaches a shard where its actor is not),
//! which stops the model's shards at once (`ModelRuntime`); a duplicated or reordered message
//! is recorded by the counter; a message lost silently would leave both shards parked, which
//! loom reports as a deadlock. The first two are reported by the main thread after the join,
//! as "steal model violated: ...".
//!
//! The deliberate bug `--cfg coreactor_loom_bug="migrate"` sends forwards through the host's
//! injection queue instead of the ring that carries the actor; `ci/loom.sh` builds it alone
//! and `forwarding_bypassing_the_ring_is_caught` must fail with a dead letter.
//!
//! ```text
//! RUSTFLAGS="--cfg coreactor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_steal
//! ```

// std's Mutex and atomics hold the model's bookkeeping (outcome, coverage), which is not part of
// the protocol under test; the crate's own code reaches loom through its sync shim.
#![allow(clippy::disallowed_types)]
// The build with the other deliberate bugs compiles every model of this file out.
#![cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "polled",
        coreactor_loom_bug = "inject"
    ),
    allow(dead_code)
)]

use coreactor::__loom::{ModelRuntime, ModelStopper};
use coreactor::config::StealConfig;
use coreactor::{Actor, Addr, Context};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The senders, as indices into the counter's per-sender state.
const VICTIM: usize = 0;
const THIEF: usize = 1;
const OUTSIDE: usize = 2;

struct Msg {
    from: usize,
    seq: u32,
}

/// Per-execution outcome, read by the main thread after the shards are joined. (std types: the
/// outcome is not part of the protocol under test; loom runs one model thread at a time.)
#[derive(Default)]
struct Outcome {
    violation: Option<String>,
    handled: usize,
    moved: bool,
}

/// The migratable actor: checks that each sender's sequence numbers arrive as 0, 1, 2, ...
struct Counter {
    next: [u32; 3],
    left: usize,
    moved: bool,
    outcome: std::sync::Arc<Mutex<Outcome>>,
    stop: Option<ModelStopper>,
}

impl Actor for Counter {
    type Msg = Msg;

    fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
        let mut out = self.outcome.lock().unwrap();
        if msg.seq != self.next[msg.from] && out.violation.is_none() {
            out.violation = Some(format!(
                "sender {}: got #{} where #{} was due (lost, duplicated or reordered)",
                msg.from, msg.seq, self.next[msg.from]
            ));
        }
        self.next[msg.from] = msg.seq + 1;
        self.moved |= ctx.shard_id() != 0;
        out.handled += 1;
        self.left -= 1;
        if self.left == 0 || out.violation.is_some() {
            out.moved = self.moved;
            drop(out);
            // The handshake is over: the shutdown that follows runs along one schedule (its
            // races have their own model, loom_inject_close), which keeps this model small.
            loom::stop_exploring();
            if let Some(stop) = self.stop.take() {
                stop.stop();
            }
        }
    }
}

/// A pinned actor that sends its messages to the counter one per turn (it notifies itself
/// between two), so that on shard 0 some of them leave after the counter moved and are
/// forwarded, and on shard 1 they go through shard 0.
struct Sender {
    to: Addr<Counter>,
    from: usize,
    next: u32,
    count: u32,
}

impl Sender {
    fn send_next(&mut self, ctx: &mut Context<'_, Self>) {
        if self.next < self.count {
            let seq = self.next;
            self.next += 1;
            self.to
                .tell(Msg {
                    from: self.from,
                    seq,
                })
                .unwrap_or_else(|_| panic!("sender {}: message #{seq} refused", self.from));
            if self.next < self.count {
                ctx.notify(());
            }
        }
    }
}

impl Actor for Sender {
    type Msg = ();

    fn handle(&mut self, (): (), ctx: &mut Context<'_, Self>) {
        self.send_next(ctx);
    }

    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        self.send_next(ctx);
    }
}

fn steal_config() -> StealConfig {
    StealConfig {
        may_steal: true,
        may_be_stolen: true,
        backlog_threshold: 1,
        batch: 1,
        search_before_park: Duration::ZERO,
    }
}

/// How often something happened over the executions loom ran.
#[derive(Debug, Default)]
struct Coverage {
    /// Executions.
    runs: AtomicUsize,
    /// Executions in which the counter handled mail on shard 1.
    moved: AtomicUsize,
    /// Executions in which shard 0 forwarded mail to the moved counter.
    forwarded: AtomicUsize,
}

/// Runs the model with `counts[s]` messages from sender `s`. A violated property panics with a
/// message that starts with "steal model violated"; otherwise the model must have reached
/// executions where the counter moved and where mail was forwarded to it.
fn model(counts: [u32; 3]) {
    let coverage = std::sync::Arc::new(Coverage::default());
    let seen = coverage.clone();
    let execution = move || {
        seen.runs.fetch_add(1, Ordering::Relaxed);
        // Every loom object is dropped before a violation is reported (a panic unwinding
        // through loom objects aborts the process, loom issue #291).
        let verdict = execution(counts);
        match verdict {
            Ok((moved, forwarded)) => {
                seen.moved.fetch_add(usize::from(moved), Ordering::Relaxed);
                seen.forwarded
                    .fetch_add(usize::from(forwarded), Ordering::Relaxed);
            }
            Err(violation) => panic!("steal model violated: {violation}"),
        }
    };
    if std::env::var_os("LOOM_LOG").is_some() {
        // `loom::model` installs the log subscriber (set LOOM_MAX_BRANCHES too).
        loom::model(execution);
    } else {
        let mut builder = loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
            builder.max_branches = 100_000;
        }
        builder.check(execution);
    }
    let c = &*coverage;
    eprintln!("{counts:?}: {c:?}");
    assert!(
        c.moved.load(Ordering::Relaxed) > 0 && c.forwarded.load(Ordering::Relaxed) > 0,
        "the model never reached a move with forwarded mail: {c:?}"
    );
}

/// One execution: whether the counter moved and whether mail was forwarded to it; the first
/// violation otherwise.
fn execution(counts: [u32; 3]) -> Result<(bool, bool), String> {
    let total = counts.iter().sum::<u32>() as usize;
    let (rt, mut shards) = ModelRuntime::new(2, steal_config(), 1, 4, 16);
    let counter: Addr<Counter> = rt.reserve(0);
    let outcome = std::sync::Arc::new(Mutex::new(Outcome::default()));

    let thief = shards.pop().expect("shard 1");
    let victim = shards.pop().expect("shard 0");
    let to = counter.clone();
    let t1 = loom::thread::spawn(move || {
        thief.run(|shard| {
            shard.spawn(Sender {
                to,
                from: THIEF,
                next: 0,
                count: counts[THIEF],
            });
        });
    });
    let (to, stop, out) = (counter.clone(), rt.stopper(), outcome.clone());
    let t0 = loom::thread::spawn(move || {
        victim.run(|shard| {
            shard.install_migratable(
                &to,
                Counter {
                    next: [0; 3],
                    left: total,
                    moved: false,
                    outcome: out,
                    stop: Some(stop),
                },
            );
            shard.spawn(Sender {
                to,
                from: VICTIM,
                next: 0,
                count: counts[VICTIM],
            });
        });
    });
    for seq in 0..counts[OUTSIDE] {
        counter
            .tell(Msg { from: OUTSIDE, seq })
            .unwrap_or_else(|_| panic!("outside message #{seq} refused"));
    }
    drop(counter);
    t0.join().expect("shard 0 panicked");
    t1.join().expect("shard 1 panicked");

    let out = outcome.lock().unwrap();
    let (dead, s0, s1) = (rt.dead_letters(), rt.shard_stats(0), rt.shard_stats(1));
    drop(rt);
    if let Some(v) = &out.violation {
        return Err(v.clone());
    }
    if dead > 0 {
        return Err(format!(
            "{dead} message(s) became dead letters ({} of {total} handled)",
            out.handled
        ));
    }
    if out.handled != total {
        return Err(format!("{} of {total} messages handled", out.handled));
    }
    if out.moved && (s0.migrated_out != 1 || s1.migrated_in != 1) {
        return Err(format!(
            "the counter moved, but shard 0 counts {} actors out and shard 1 {} in",
            s0.migrated_out, s1.migrated_in
        ));
    }
    Ok((out.moved, s0.forwarded > 0))
}

/// The models of the correct protocol; compiled out when a deliberate bug is injected (any of
/// them would break these models for reasons of its own).
#[cfg(not(any(
    coreactor_loom_bug = "ring",
    coreactor_loom_bug = "doorbell",
    coreactor_loom_bug = "polled",
    coreactor_loom_bug = "inject",
    coreactor_loom_bug = "migrate"
)))]
mod protocol {
    use super::model;

    /// A sender on the victim only: the messages queued when the counter moves go with it, the
    /// later ones are forwarded 0 → 1 behind it.
    #[test]
    fn migrate_with_forwarded_mail() {
        model([3, 0, 0]);
    }

    /// Adds an outside thread sending through shard 0's injection queue while the counter moves.
    #[test]
    fn migrate_with_victim_and_outside_senders() {
        model([2, 0, 1]);
    }

    /// Adds a sender on the thief itself, whose messages reach the counter through shard 0 (and,
    /// after the move, come back 1 → 0 → 1 behind the counter).
    #[test]
    fn migrate_with_victim_and_thief_senders() {
        model([2, 1, 0]);
    }

    /// All three senders at once (a few minutes at 2 preemptions on this machine: run with
    /// `--ignored`).
    #[test]
    #[ignore = "minutes at 2 preemptions; run with --ignored"]
    fn migrate_with_three_senders() {
        model([1, 1, 1]);
    }
}

/// The deliberate bug (`--cfg coreactor_loom_bug="migrate"`): forwards take the host's
/// injection queue instead of the ring that carries the actor, so a forwarded message can
/// reach the thief before the actor and become a dead letter.
#[test]
#[cfg(coreactor_loom_bug = "migrate")]
#[should_panic(expected = "steal model violated")]
fn forwarding_bypassing_the_ring_is_caught() {
    model([3, 0, 0]);
}
