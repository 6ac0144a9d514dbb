//! A flood of small messages from an actor to an actor on another shard travels in batches
//! (several messages share one envelope and one ring slot, see `mailbox::batch`), and still
//! behaves as one message at a time: each arrives once and in order, each payload is dropped
//! once, and each one that cannot be delivered (its actor stopped, the runtime shut down) is
//! either refused to its sender or reported as a dead letter, never lost.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{Gate, assert_no_payload_left, flood_builder, join, wait_until};
use coreactor::{Actor, Addr, Context, Reply, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// 16 bytes: three share an envelope. The token's strong count tells whether every message
/// was dropped exactly once.
struct Item {
    seq: u64,
    _token: Arc<()>,
}

/// What the sink saw and the flooder was refused, read from outside.
#[derive(Default)]
struct Seen {
    handled: AtomicU64,
    out_of_order: AtomicU64,
    refused: AtomicU64,
}

impl Seen {
    fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Messages handled, refused by `tell` or reported as dead letters (`dead`): every message
    /// sent must end as exactly one of these.
    fn accounted(&self, dead: &AtomicU64) -> u64 {
        self.handled() + self.refused.load(Ordering::Relaxed) + dead.load(Ordering::Relaxed)
    }

    fn assert_in_order(&self, shards: usize) {
        let wrong = self.out_of_order.load(Ordering::Relaxed);
        assert_eq!(wrong, 0, "{shards} shards: {wrong} items out of order");
    }
}

/// Checks the order of the items; stops itself after `stop_after` of them, if set; holds its
/// shard at `gate` on the first item, if set.
struct Sink {
    next: u64,
    stop_after: Option<u64>,
    gate: Option<Arc<Gate>>,
    seen: Arc<Seen>,
}

impl Actor for Sink {
    type Msg = Item;
    fn handle(&mut self, item: Item, ctx: &mut Context<'_, Self>) {
        if let Some(gate) = self.gate.take() {
            gate.pass();
        }
        if item.seq != self.next {
            self.seen.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.next = item.seq + 1;
        let handled = self.seen.handled.fetch_add(1, Ordering::Relaxed) + 1;
        if self.stop_after == Some(handled) {
            ctx.stop();
        }
    }
}

/// Sends `n` items to the sink within one turn, counting those `tell` refused.
struct Flooder {
    sink: Addr<Sink>,
    token: Arc<()>,
    seen: Arc<Seen>,
}

struct Flood(u64, Reply<()>);

impl Actor for Flooder {
    type Msg = Flood;
    fn handle(&mut self, Flood(n, reply): Flood, _ctx: &mut Context<'_, Self>) {
        for seq in 0..n {
            let item = Item {
                seq,
                _token: Arc::clone(&self.token),
            };
            if self.sink.tell(item).is_err() {
                self.seen.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        reply.send(());
    }
}

/// A runtime of `shards` shards whose mailboxes hold a whole flood of `n`, counting its dead
/// letters in `dead`.
fn runtime(shards: usize, n: u64, dead: &Arc<AtomicU64>) -> Runtime {
    flood_builder(shards, n, dead).build().expect("runtime")
}

/// A sink on the last shard and a flooder on shard 0.
fn pair(rt: &Runtime, stop_after: Option<u64>, token: &Arc<()>) -> (Addr<Flooder>, Arc<Seen>) {
    pair_gated(rt, stop_after, None, token)
}

fn pair_gated(
    rt: &Runtime,
    stop_after: Option<u64>,
    gate: Option<Arc<Gate>>,
    token: &Arc<()>,
) -> (Addr<Flooder>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let sink = rt
        .spawn_on(
            rt.shard_count() - 1,
            Sink {
                next: 0,
                stop_after,
                gate,
                seen: Arc::clone(&seen),
            },
        )
        .expect("spawn sink");
    let flooder = rt
        .spawn_on(
            0,
            Flooder {
                sink,
                token: Arc::clone(token),
                seen: Arc::clone(&seen),
            },
        )
        .expect("spawn flooder");
    (flooder, seen)
}

#[test]
fn a_flood_arrives_whole_in_order_and_in_batches() {
    for shards in [2, 4] {
        let n = 10_000;
        let (token, dead) = (Arc::new(()), Arc::new(AtomicU64::new(0)));
        let rt = runtime(shards, n, &dead);
        let (flooder, seen) = pair(&rt, None, &token);
        let before = rt.shard_stats()[0].clone();
        flooder.ask(|r| Flood(n, r), ASK).expect("flood");
        assert_eq!(seen.refused.load(Ordering::Relaxed), 0, "{shards} shards");
        wait_until("the sink handled the flood", || seen.handled() == n);
        seen.assert_in_order(shards);
        let after = rt.shard_stats()[0].clone();
        let batched = after.batched - before.batched;
        assert_eq!(after.sent_remote - before.sent_remote, n, "{shards} shards");
        // The first message leaves alone (published at once); the rest join batches of three.
        assert!(
            batched >= n / 2,
            "{shards} shards: only {batched} of {n} messages shared an envelope"
        );
        rt.shutdown().expect("shutdown");
        drop(flooder);
        assert_eq!(dead.load(Ordering::Relaxed), 0, "{shards} shards");
        assert_no_payload_left(&token, shards);
    }
}

#[test]
fn messages_for_a_stopped_actor_are_each_refused_or_dead_letters() {
    for shards in [2, 4] {
        let n = 10_000;
        let stop_after = 10;
        let (token, dead) = (Arc::new(()), Arc::new(AtomicU64::new(0)));
        let rt = runtime(shards, n, &dead);
        let (flooder, seen) = pair(&rt, Some(stop_after), &token);
        flooder.ask(|r| Flood(n, r), ASK).expect("flood");
        // Every message is handled, refused by `tell`, or a dead letter: the sink stops after
        // `stop_after`, and the rest were queued in its mailbox or still in batches in transit.
        wait_until("every message accounted for", || seen.accounted(&dead) == n);
        assert_eq!(
            rt.dead_letters(),
            dead.load(Ordering::Relaxed),
            "{shards} shards"
        );
        assert_eq!(seen.handled(), stop_after, "{shards} shards");
        seen.assert_in_order(shards);
        rt.shutdown().expect("shutdown");
        drop(flooder);
        assert_no_payload_left(&token, shards);
    }
}

#[test]
fn a_flood_cut_short_by_shutdown_drops_every_payload_once() {
    for shards in [2, 4] {
        let n = 50_000;
        let (token, dead) = (Arc::new(()), Arc::new(AtomicU64::new(0)));
        let rt = runtime(shards, n, &dead);
        let (flooder, seen) = pair(&rt, None, &token);
        // Shut down while the flood is in flight: once the sink has handled a first item.
        let pending = flooder.ask_async(|r| Flood(n, r), ASK);
        wait_until("the flood started", || seen.handled() > 0);
        rt.shutdown().expect("shutdown");
        drop(pending);
        drop(flooder);
        // The handler ran to its end (a turn is never cut short), so all `n` were sent.
        assert_eq!(
            seen.accounted(&dead),
            n,
            "{shards} shards: a message was neither handled, refused nor a dead letter"
        );
        seen.assert_in_order(shards);
        assert_no_payload_left(&token, shards);
    }
}

#[test]
fn batches_left_in_overflow_at_shutdown_are_dead_letters_one_by_one() {
    for shards in [2, 4] {
        let n = 10_000;
        let (token, dead) = (Arc::new(()), Arc::new(AtomicU64::new(0)));
        // A 64-slot ring: most of the flood waits in the sender's overflow, in batches.
        let rt = flood_builder(shards, n, &dead)
            .ring_capacity(64)
            .build()
            .expect("runtime");
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        let (flooder, seen) = pair_gated(&rt, None, Some(Arc::clone(&gate)), &token);
        // The sink's shard stops at the gate on the first item (published alone, at once), so
        // nothing more leaves the sender's overflow.
        flooder.ask(|r| Flood(n, r), ASK).expect("flood");
        gate.wait_entered(1);
        let overflowed = rt.shard_stats()[0].ring_overflow;
        assert!(overflowed > 0, "{shards} shards: the ring never filled");
        let check = flooder.clone();
        let stopper = std::thread::spawn(move || rt.shutdown());
        // The sender's shard stops its actors and discards its overflow while the sink's shard
        // is still held.
        wait_until("the flooder stopped", || !check.is_alive());
        gate.open();
        join("shutdown", stopper).expect("shutdown");
        drop((flooder, check));
        assert_eq!(
            seen.accounted(&dead),
            n,
            "{shards} shards: a message was neither handled, refused nor a dead letter"
        );
        assert_no_payload_left(&token, shards);
    }
}
