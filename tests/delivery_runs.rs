//! Bursts that reach a shard in one drain. The shard pushes consecutive messages for one actor
//! without looking that actor up again (a delivery run, `shard::local::DeliveryRun`); every
//! message must still reach its own actor, in order, whatever the burst interleaves: other
//! actors of the same type on the same shard, an actor of another type, a spawn (a shard task)
//! followed by messages to the new actor, and a stop (a control message) of one of the targets.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{XorShift64, block_shard, for_each_shard_count, wait_for, wait_until};
use coreactor::{Actor, Addr, Context, Reply, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);
/// Messages per target in a burst.
const PER_TARGET: u64 = 300;

/// Checks that its messages arrive numbered 0, 1, 2, ... and counts them.
#[derive(Default)]
struct Seq {
    next: u64,
    out_of_order: u64,
}

enum SeqMsg {
    N(u64),
    Report(Reply<(u64, u64)>),
}

impl Actor for Seq {
    type Msg = SeqMsg;
    fn handle(&mut self, msg: SeqMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SeqMsg::N(n) => {
                if n != self.next {
                    self.out_of_order += 1;
                }
                self.next = n + 1;
            }
            SeqMsg::Report(r) => r.send((self.next, self.out_of_order)),
        }
    }
}

/// The same check for an actor of another message type (a 40-byte message).
#[derive(Default)]
struct Wide {
    next: u64,
    out_of_order: u64,
}

enum WideMsg {
    N([u64; 5]),
    Report(Reply<(u64, u64)>),
}

impl Actor for Wide {
    type Msg = WideMsg;
    fn handle(&mut self, msg: WideMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            WideMsg::N(words) => {
                if words != [words[0]; 5] || words[0] != self.next {
                    self.out_of_order += 1;
                }
                self.next = words[0] + 1;
            }
            WideMsg::Report(r) => r.send((self.next, self.out_of_order)),
        }
    }
}

/// Counts what it handles into a shared counter (it is stopped mid-burst, so it cannot be
/// asked afterwards).
struct Doomed {
    handled: Arc<AtomicU64>,
}

impl Actor for Doomed {
    type Msg = u64;
    fn handle(&mut self, _n: u64, _ctx: &mut Context<'_, Self>) {
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the burst is sent to: all on one shard.
struct Targets {
    seqs: Vec<Addr<Seq>>,
    wide: Addr<Wide>,
    doomed: Addr<Doomed>,
}

/// Sends the whole burst from one handler call, so it travels as one batch.
struct Burster;

enum BurstMsg {
    Go {
        to: Targets,
        seed: u64,
        /// The `Seq` spawned mid-burst, which received `PER_TARGET` messages too.
        done: Reply<Result<Addr<Seq>, String>>,
    },
}

impl Actor for Burster {
    type Msg = BurstMsg;
    fn handle(&mut self, msg: BurstMsg, ctx: &mut Context<'_, Self>) {
        let BurstMsg::Go { to, seed, done } = msg;
        done.send(burst(ctx, &to, seed));
    }
}

/// Runs of 1 to 8 messages to randomly chosen targets, with a spawn on the targets' shard a
/// third of the way through (later runs include the new actor) and a stop of `doomed` at two
/// thirds.
fn burst(ctx: &mut Context<'_, Burster>, to: &Targets, seed: u64) -> Result<Addr<Seq>, String> {
    let (shard, _, _) = common::addr_parts(&to.wide);
    let mut rng = XorShift64::new(seed);
    // Targets 0..seqs: the `Seq`s; then `wide`, `doomed`, and (once spawned) the new `Seq`.
    let kinds = to.seqs.len() + 3;
    let mut next = vec![0u64; kinds];
    let total = PER_TARGET * kinds as u64;
    let mut spawned: Option<Addr<Seq>> = None;
    let mut stopped = false;
    let mut sent = 0u64;
    while sent < total {
        if spawned.is_none() && sent >= total / 3 {
            spawned = Some(
                ctx.spawn_on(shard, Seq::default)
                    .map_err(|e| format!("spawn mid-burst: {e}"))?,
            );
        }
        if !stopped && sent >= 2 * total / 3 {
            to.doomed
                .stop()
                .map_err(|e| format!("stop mid-burst: {e}"))?;
            stopped = true;
        }
        let open: Vec<usize> = (0..kinds)
            .filter(|&k| next[k] < PER_TARGET && (k != kinds - 1 || spawned.is_some()))
            .collect();
        let k = open[rng.below(open.len())];
        for _ in 0..1 + rng.below(8) {
            if next[k] == PER_TARGET {
                break;
            }
            let n = next[k];
            let sent_ok = match k {
                k if k < to.seqs.len() => to.seqs[k].try_tell(SeqMsg::N(n)).is_ok(),
                k if k == to.seqs.len() => to.wide.try_tell(WideMsg::N([n; 5])).is_ok(),
                // Still open after the stop: it has not run since (its shard is held, or is
                // this one).
                k if k == to.seqs.len() + 1 => to.doomed.try_tell(n).is_ok(),
                _ => spawned
                    .as_ref()
                    .is_some_and(|s| s.try_tell(SeqMsg::N(n)).is_ok()),
            };
            if !sent_ok {
                return Err(format!("target {k} refused message {n}"));
            }
            next[k] += 1;
            sent += 1;
        }
    }
    spawned.ok_or_else(|| "nothing spawned".to_string())
}

/// Polls a report until it counts `PER_TARGET` messages (some of the burst may still be in
/// flight when an ask from this thread arrives: the two travel by different queues).
fn settled(what: &str, mut report: impl FnMut() -> (u64, u64)) -> (u64, u64) {
    wait_for(what, || {
        let r = report();
        (r.0 >= PER_TARGET).then_some(r)
    })
}

#[test]
fn every_message_of_an_interleaved_burst_reaches_its_own_actor_in_order() {
    for_each_shard_count(|n| {
        for seed in [0xB0_5701, 0xB0_5702, 0xB0_5703] {
            let rt = Runtime::builder()
                .shards(n)
                .mailbox_capacity(1 << 16)
                .build()
                .unwrap();
            let dest = n - 1;
            let seqs: Vec<Addr<Seq>> = (0..3)
                .map(|_| rt.spawn_on(dest, Seq::default()).unwrap())
                .collect();
            let wide = rt.spawn_on(dest, Wide::default()).unwrap();
            let handled = Arc::new(AtomicU64::new(0));
            let doomed = rt
                .spawn_on(
                    dest,
                    Doomed {
                        handled: handled.clone(),
                    },
                )
                .unwrap();
            let burster = rt.spawn_on(0, Burster).unwrap();
            // With more than one shard, hold the destination while the burst is sent, so that
            // all of it waits in one ring and is taken in by one drain.
            let hold = (n > 1).then(|| block_shard(&rt, dest));
            let to = Targets {
                seqs: seqs.clone(),
                wide: wide.clone(),
                doomed,
            };
            let spawned = burster
                .ask(|done| BurstMsg::Go { to, seed, done }, ASK)
                .expect("burst ask")
                .expect("burst sent");
            drop(hold);
            for (i, s) in seqs.iter().chain(std::iter::once(&spawned)).enumerate() {
                let what = format!("Seq {i} to see its messages");
                assert_eq!(
                    settled(&what, || s.ask(SeqMsg::Report, ASK).expect("report")),
                    (PER_TARGET, 0),
                    "{n} shards, seed {seed:#x}: Seq {i} (next expected, out of order)"
                );
            }
            assert_eq!(
                settled("Wide to see its messages", || wide
                    .ask(WideMsg::Report, ASK)
                    .expect("report")),
                (PER_TARGET, 0),
                "{n} shards, seed {seed:#x}: Wide"
            );
            // The stopped actor's messages were each handled or reported as a dead letter.
            wait_until("the doomed actor's messages to be accounted for", || {
                handled.load(Ordering::SeqCst) + rt.dead_letters() >= PER_TARGET
            });
            assert_eq!(
                handled.load(Ordering::SeqCst) + rt.dead_letters(),
                PER_TARGET,
                "{n} shards, seed {seed:#x}: doomed actor's messages handled + dead letters"
            );
            rt.shutdown().expect("clean shutdown");
        }
    });
}
