//! A thread outside the runtime that sends small messages to one actor faster than its shard
//! takes them appends them to the injection-lane record it pushed just before (`shard::outside`):
//! several share one lane cell. They still behave as one message at a time: each arrives once
//! and in its sender's order, each payload is dropped once, and each one that cannot be
//! delivered (its actor stopped, the runtime shut down) is refused to its sender or reported as
//! a dead letter, never lost.
//!
//! The sink's shard is held at a gate while the flood is sent, so that it takes no record and
//! every append lands: the counts below do not depend on timing.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{
    Gate, GateGuard, SHARD_COUNTS, assert_no_payload_left, flood_builder, join, wait_until,
};
use coreactor::{Actor, Addr, Context, Runtime, SendError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// 16 bytes: two share an open record. The token's strong count tells whether every message
/// was dropped exactly once.
struct Item {
    /// `producer << 32 | sequence number`.
    tag: u64,
    _token: Arc<()>,
}

const _: () = assert!(std::mem::size_of::<Item>() == 16);

/// What the sink saw, read from outside.
#[derive(Default)]
struct Seen {
    handled: AtomicU64,
    out_of_order: AtomicU64,
}

impl Seen {
    fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
}

/// Checks each producer's order; stops itself after `stop_after` items, if set; holds its shard
/// at `gate` on the first item, if set.
struct Sink {
    next: Vec<u64>,
    stop_after: Option<u64>,
    gate: Option<Arc<Gate>>,
    seen: Arc<Seen>,
}

impl Sink {
    fn new(producers: usize, stop_after: Option<u64>, gate: &Arc<Gate>, seen: &Arc<Seen>) -> Self {
        Sink {
            next: vec![0; producers],
            stop_after,
            gate: Some(Arc::clone(gate)),
            seen: Arc::clone(seen),
        }
    }
}

impl Actor for Sink {
    type Msg = Item;
    fn handle(&mut self, item: Item, ctx: &mut Context<'_, Self>) {
        if let Some(gate) = self.gate.take() {
            gate.pass();
        }
        let (producer, seq) = ((item.tag >> 32) as usize, item.tag & u64::from(u32::MAX));
        if seq != self.next[producer] {
            self.seen.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.next[producer] = seq + 1;
        let handled = self.seen.handled.fetch_add(1, Ordering::Relaxed) + 1;
        if self.stop_after == Some(handled) {
            ctx.stop();
        }
    }
}

/// A runtime of `shards` shards whose mailboxes hold `n` messages, counting dead letters in
/// `dead`.
fn runtime(shards: usize, n: u64, dead: &Arc<AtomicU64>) -> Runtime {
    flood_builder(shards, n, dead).build().expect("runtime")
}

/// Sends items `from..to` of `producer`; returns how many `tell` refused.
fn send(sink: &Addr<Sink>, producer: u64, from: u64, to: u64, token: &Arc<()>) -> u64 {
    let mut refused = 0;
    for seq in from..to {
        let item = Item {
            tag: producer << 32 | seq,
            _token: Arc::clone(token),
        };
        match sink.tell(item) {
            Ok(()) => {}
            Err(SendError::Closed(_)) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    refused
}

/// A runtime of `shards` shards for floods of `n` items and a one-producer sink on shard `on`,
/// which item 0 holds at its gate: what the producer sends next waits in the lane.
struct Held {
    rt: Runtime,
    sink: Addr<Sink>,
    gate: Arc<Gate>,
    _open: GateGuard,
    token: Arc<()>,
    dead: Arc<AtomicU64>,
    seen: Arc<Seen>,
}

impl Held {
    fn new(shards: usize, n: u64, on: usize, stop_after: Option<u64>) -> Held {
        let (token, dead, seen) = (Arc::new(()), Arc::new(AtomicU64::new(0)), Arc::default());
        let rt = runtime(shards, n, &dead);
        let gate = Gate::new();
        let open = gate.open_on_drop();
        let sink = rt
            .spawn_on(on, Sink::new(1, stop_after, &gate, &seen))
            .expect("spawn");
        assert_eq!(send(&sink, 0, 0, 1, &token), 0);
        gate.wait_entered(1);
        Held {
            rt,
            sink,
            gate,
            _open: open,
            token,
            dead,
            seen,
        }
    }

    /// Items handled and dead letters.
    fn accounted(&self) -> u64 {
        self.seen.handled() + self.dead.load(Ordering::Relaxed)
    }

    /// Shuts the runtime down and checks that every payload was dropped once; returns the
    /// dead letters.
    fn shut_down(self, shards: usize) -> u64 {
        let Held {
            rt,
            sink,
            token,
            dead,
            ..
        } = self;
        rt.shutdown().expect("shutdown");
        drop(sink);
        assert_no_payload_left(&token, shards);
        dead.load(Ordering::Relaxed)
    }

    fn assert_in_order(&self, shards: usize) {
        assert_eq!(
            self.seen.out_of_order.load(Ordering::Relaxed),
            0,
            "{shards} shards"
        );
    }
}

#[test]
fn an_outside_flood_shares_cells_and_arrives_whole_and_in_order() {
    for shards in SHARD_COUNTS {
        let n = 1_001;
        let h = Held::new(shards, n, shards - 1, None);
        let before = h.rt.shard_stats()[shards - 1].clone();
        // Item 1 finds item 0's record taken and opens a new one; each later odd item opens
        // one more, which the next even item joins (two 16-byte items per record).
        assert_eq!(send(&h.sink, 0, 1, n, &h.token), 0);
        h.gate.open();
        wait_until("the sink handled the flood", || h.seen.handled() == n);
        h.assert_in_order(shards);
        let after = &h.rt.shard_stats()[shards - 1];
        assert_eq!(after.injected - before.injected, n - 1, "{shards} shards");
        assert_eq!(
            after.appended - before.appended,
            (n - 1) / 2,
            "{shards} shards"
        );
        assert_eq!(h.shut_down(shards), 0, "{shards} shards");
    }
}

/// Zero-sized messages: a whole flood joins one record.
#[test]
fn zero_sized_messages_share_one_record() {
    struct Count(Arc<AtomicU64>, Option<Arc<Gate>>);
    impl Actor for Count {
        type Msg = ();
        fn handle(&mut self, (): (), _ctx: &mut Context<'_, Self>) {
            if let Some(gate) = self.1.take() {
                gate.pass();
            }
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    for shards in SHARD_COUNTS {
        let n = 5_000;
        let dead = Arc::new(AtomicU64::new(0));
        let rt = runtime(shards, n, &dead);
        let (handled, gate) = (Arc::new(AtomicU64::new(0)), Gate::new());
        let _open = gate.open_on_drop();
        let sink = rt
            .spawn_on(0, Count(Arc::clone(&handled), Some(Arc::clone(&gate))))
            .expect("spawn");
        sink.tell(()).expect("tell");
        gate.wait_entered(1);
        let before = rt.shard_stats()[0].clone();
        for _ in 1..n {
            sink.tell(()).expect("tell");
        }
        gate.open();
        wait_until("all handled", || handled.load(Ordering::Relaxed) == n);
        let after = &rt.shard_stats()[0];
        // Item 1 opens a record (item 0's was taken); the other n - 2 join it.
        assert_eq!(
            (
                after.injected - before.injected,
                after.appended - before.appended
            ),
            (n - 1, n - 2),
            "{shards} shards"
        );
        rt.shutdown().expect("shutdown");
        assert_eq!(dead.load(Ordering::Relaxed), 0, "{shards} shards");
    }
}

/// Two threads flood one actor: each one's items stay in its order, none is lost.
#[test]
fn two_outside_producers_keep_their_own_order() {
    for shards in SHARD_COUNTS {
        let per = 20_000;
        let (token, dead, seen) = (Arc::new(()), Arc::new(AtomicU64::new(0)), Arc::default());
        let rt = runtime(shards, 2 * per, &dead);
        let gate = Gate::new();
        gate.open();
        let sink = rt
            .spawn_on(0, Sink::new(2, None, &gate, &seen))
            .expect("spawn");
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let (sink, token) = (sink.clone(), Arc::clone(&token));
                std::thread::spawn(move || send(&sink, p, 0, per, &token))
            })
            .collect();
        for p in producers {
            assert_eq!(join("producer", p), 0, "{shards} shards");
        }
        wait_until("the sink handled both floods", || seen.handled() == 2 * per);
        assert_eq!(
            seen.out_of_order.load(Ordering::Relaxed),
            0,
            "{shards} shards"
        );
        // Both floods and the spawn's install task, all sent from outside.
        assert_eq!(rt.shard_stats()[0].injected, 2 * per + 1, "{shards} shards");
        rt.shutdown().expect("shutdown");
        drop(sink);
        assert_no_payload_left(&token, shards);
    }
}

/// The sink stops after a few items while the rest wait in shared records: each of them
/// becomes a dead letter, one by one.
#[test]
fn items_in_shared_records_for_a_stopped_actor_are_each_dead_letters() {
    for shards in SHARD_COUNTS {
        let (n, stop_after) = (1_001, 10);
        let h = Held::new(shards, n, 0, Some(stop_after));
        let refused = send(&h.sink, 0, 1, n, &h.token);
        assert_eq!(refused, 0, "{shards} shards: the sink is alive while held");
        h.gate.open();
        wait_until("every item accounted for", || h.accounted() == n);
        assert_eq!(h.seen.handled(), stop_after, "{shards} shards");
        h.assert_in_order(shards);
        assert!(
            h.rt.shard_stats()[0].appended > 0,
            "{shards} shards: no record was shared"
        );
        h.shut_down(shards);
    }
}

/// Shutdown begins while a flood waits in shared records behind a held shard: every item is
/// handled or a dead letter, and every payload is dropped once.
#[test]
fn shared_records_left_at_shutdown_drop_every_payload_once() {
    for shards in SHARD_COUNTS {
        let n = 1_001;
        let h = Held::new(shards, n, 0, None);
        assert_eq!(send(&h.sink, 0, 1, n, &h.token), 0);
        let Held {
            rt,
            sink,
            gate,
            _open,
            token,
            dead,
            seen,
        } = h;
        let stopper = std::thread::spawn(move || rt.shutdown());
        gate.open();
        join("shutdown", stopper).expect("shutdown");
        drop(sink);
        let accounted = seen.handled() + dead.load(Ordering::Relaxed);
        assert_eq!(
            accounted, n,
            "{shards} shards: an item was neither handled nor a dead letter"
        );
        assert_eq!(
            seen.out_of_order.load(Ordering::Relaxed),
            0,
            "{shards} shards"
        );
        assert_no_payload_left(&token, shards);
    }
}
