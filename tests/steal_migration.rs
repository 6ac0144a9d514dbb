//! Work stealing moves migratable actors between shards without their senders noticing:
//! every message arrives exactly once and in per-sender order, before, during and after a
//! move; asks are answered; pinned actors never move; a migrated actor that stops frees its
//! address. Stepped on the test kit with seeded, randomised interleavings; one run on real
//! threads.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::XorShift64;
use coreactor::config::StealConfig;
use coreactor::testkit::TestKit;
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime, SendError};
use std::collections::HashMap;
use std::time::Duration;

/// Records every (sender, seq) it receives and the shards it ran on.
#[derive(Default)]
struct Recorder {
    seen: Vec<(u32, u64)>,
    shards: Vec<usize>,
}

/// What a recorder saw: `(sender, seq)` in arrival order, and the shards it ran on.
type Seen = (Vec<(u32, u64)>, Vec<usize>);

enum RecMsg {
    Data(u32, u64),
    Log(Reply<Seen>),
    Shard(Reply<usize>),
    Panic,
}

impl Actor for Recorder {
    type Msg = RecMsg;
    fn handle(&mut self, msg: RecMsg, ctx: &mut Context<'_, Self>) {
        if self.shards.last() != Some(&ctx.shard_id()) {
            self.shards.push(ctx.shard_id());
        }
        match msg {
            RecMsg::Data(sender, seq) => self.seen.push((sender, seq)),
            RecMsg::Log(r) => r.send((std::mem::take(&mut self.seen), self.shards.clone())),
            RecMsg::Shard(r) => r.send(ctx.shard_id()),
            RecMsg::Panic => panic!("recorder told to panic"),
        }
    }
}

/// A pinned actor that sends numbered messages to every recorder.
struct Pumper {
    id: u32,
    targets: Vec<Addr<Recorder>>,
    next: Vec<u64>,
}

enum PumpMsg {
    Pump(u64),
    Sent(Reply<Vec<u64>>),
}

impl Actor for Pumper {
    type Msg = PumpMsg;
    fn handle(&mut self, msg: PumpMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            PumpMsg::Pump(n) => {
                for (i, t) in self.targets.iter().enumerate() {
                    for _ in 0..n {
                        // The recorders' mailboxes are large enough for the test's bursts.
                        t.try_tell(RecMsg::Data(self.id, self.next[i]))
                            .unwrap_or_else(|_| panic!("pumper {} could not send", self.id));
                        self.next[i] += 1;
                    }
                }
            }
            PumpMsg::Sent(r) => r.send(self.next.clone()),
        }
    }
}

/// 100 messages to each actor, then one step of shard 0: a turn handles 64 of each, so every
/// actor stays ready and shard 0 has a backlog to offer.
fn backlog_on_shard_0(kit: &TestKit, actors: &[Addr<Recorder>]) {
    for r in actors {
        for i in 0..100 {
            r.tell(RecMsg::Data(1, i)).unwrap();
        }
    }
    kit.step(0);
}

fn steal_config() -> StealConfig {
    StealConfig {
        backlog_threshold: 2,
        batch: 8,
        ..StealConfig::default()
    }
}

fn check_fifo(seen: &[(u32, u64)], expected: &HashMap<u32, u64>, who: usize) {
    let mut next: HashMap<u32, u64> = HashMap::new();
    for &(sender, seq) in seen {
        let n = next.entry(sender).or_insert(0);
        assert_eq!(
            seq, *n,
            "recorder {who}: sender {sender} out of order or duplicated"
        );
        *n += 1;
    }
    for (&sender, &count) in expected {
        assert_eq!(
            next.get(&sender).copied().unwrap_or(0),
            count,
            "recorder {who}: sender {sender} lost messages"
        );
    }
}

#[test]
fn migration_keeps_every_message_once_and_in_per_sender_order() {
    let mut moved_total = 0;
    for seed in 1..=20u64 {
        let mut rng = XorShift64::new(seed);
        let kit = TestKit::with_steal(2, steal_config());
        let recorders: Vec<Addr<Recorder>> = (0..4)
            .map(|_| kit.spawn_migratable_on(0, Recorder::default()))
            .collect();
        let pinned = kit.spawn_on(0, Recorder::default());
        let mut all = recorders.clone();
        all.push(pinned.clone());
        let pumpers: Vec<Addr<Pumper>> = (0..2)
            .map(|s| {
                kit.spawn_on(
                    s,
                    Pumper {
                        id: 100 + s as u32,
                        targets: all.clone(),
                        next: vec![0; all.len()],
                    },
                )
            })
            .collect();
        kit.run_until_idle();
        let mut outside_next = vec![0u64; all.len()];
        for _ in 0..40 {
            // A backlog on shard 0 (more than one turn's budget per recorder), from the test
            // thread (an outside sender) and from the pumpers on both shards...
            // (The kit runs nothing unless stepped: drain before a burst could fill a mailbox,
            // where an outside `tell` would wait for room forever.)
            if all.iter().any(|r| r.mailbox_len() > 500) {
                kit.run_until_idle();
            }
            let n = 65 + rng.below(150) as u64;
            for (i, r) in all.iter().enumerate() {
                for _ in 0..n {
                    r.try_tell(RecMsg::Data(1, outside_next[i])).unwrap();
                    outside_next[i] += 1;
                }
            }
            for p in &pumpers {
                if rng.below(2) == 0 {
                    p.tell(PumpMsg::Pump(1 + rng.below(100) as u64)).unwrap();
                }
            }
            // ...then steps in a random order, with steal attempts at random points.
            for _ in 0..2 + rng.below(6) {
                match rng.below(3) {
                    0 => {
                        kit.steal(rng.below(2));
                    }
                    _ => {
                        kit.step(rng.below(2));
                    }
                }
            }
        }
        kit.run_until_idle();
        let moved: u64 = (0..2).map(|s| kit.shard_stats(s).migrated_in).sum();
        let mut expected_by_recorder: Vec<HashMap<u32, u64>> = (0..all.len())
            .map(|i| HashMap::from([(1u32, outside_next[i])]))
            .collect();
        for p in &pumpers {
            let sent = kit.ask(p, PumpMsg::Sent).unwrap();
            let id = if p == &pumpers[0] { 100 } else { 101 };
            for (i, n) in sent.into_iter().enumerate() {
                expected_by_recorder[i].insert(id, n);
            }
        }
        for (i, r) in all.iter().enumerate() {
            let (seen, shards) = kit.ask(r, RecMsg::Log).unwrap();
            check_fifo(&seen, &expected_by_recorder[i], i);
            if i == all.len() - 1 {
                assert_eq!(shards, vec![0], "seed {seed}: the pinned actor never moved");
            }
        }
        moved_total += moved;
        let s0 = kit.shard_stats(0);
        assert_eq!(
            s0.migrated_out,
            kit.shard_stats(1).migrated_in,
            "seed {seed}"
        );
    }
    assert!(
        moved_total >= 10,
        "the seeds exercise migration: {moved_total} moves"
    );
}

#[test]
fn a_migrated_actor_answers_asks_and_keeps_its_address() {
    let kit = TestKit::with_steal(2, steal_config());
    let rs: Vec<Addr<Recorder>> = (0..4)
        .map(|_| kit.spawn_migratable_on(0, Recorder::default()))
        .collect();
    kit.run_until_idle();
    backlog_on_shard_0(&kit, &rs);
    assert!(kit.steal(1), "shard 0 advertises work");
    kit.run_until_idle();
    assert_eq!(
        kit.shard_stats(1).migrated_in,
        2,
        "half of the 4 ready actors"
    );
    assert_eq!(kit.shard_stats(1).steals_succeeded, 1);
    let where_now: Vec<usize> = rs
        .iter()
        .map(|r| kit.ask(r, RecMsg::Shard).unwrap())
        .collect();
    assert_eq!(where_now.iter().filter(|&&s| s == 1).count(), 2);
    for r in &rs {
        assert_eq!(r.shard(), 0, "the address still names the home shard");
        let (seen, _) = kit.ask(r, RecMsg::Log).unwrap();
        assert_eq!(seen.len(), 100);
    }
    assert!(kit.shard_stats(0).forwarded > 0);
}

#[test]
fn a_migrated_actor_that_panics_frees_its_address() {
    let kit = TestKit::with_steal(2, steal_config());
    let rs: Vec<Addr<Recorder>> = (0..2)
        .map(|_| kit.spawn_migratable_on(0, Recorder::default()))
        .collect();
    kit.run_until_idle();
    backlog_on_shard_0(&kit, &rs);
    assert!(kit.steal(1));
    kit.run_until_idle();
    let guest = rs
        .iter()
        .find(|r| kit.ask(r, RecMsg::Shard).unwrap() == 1)
        .expect("one actor moved")
        .clone();
    guest.tell(RecMsg::Panic).unwrap();
    kit.run_until_idle();
    assert!(!guest.is_alive());
    assert!(matches!(
        guest.try_tell(RecMsg::Data(1, 0)),
        Err(SendError::Closed(_))
    ));
    assert_eq!(kit.actor_count(1), 0, "the guest's local slot is freed");
    assert_eq!(kit.actor_count(0), 1, "the other one is still at home");
}

#[test]
fn actors_with_pending_timers_or_pinned_actors_are_not_taken() {
    let kit = TestKit::with_steal(2, steal_config());
    let pinned: Vec<Addr<Recorder>> = (0..4)
        .map(|_| kit.spawn_on(0, Recorder::default()))
        .collect();
    kit.run_until_idle();
    backlog_on_shard_0(&kit, &pinned);
    // Only pinned actors: shard 0 has no migratable work to advertise.
    assert!(!kit.steal(1));
    kit.run_until_idle();
    assert_eq!(kit.shard_stats(1).migrated_in, 0);
}

#[test]
fn on_real_threads_an_idle_shard_takes_work_from_a_busy_one() {
    /// Burns about `n` microseconds of CPU per message.
    struct Burner {
        done: u64,
    }
    enum BurnMsg {
        Work(u64),
        Done(Reply<u64>),
    }
    impl Actor for Burner {
        type Msg = BurnMsg;
        fn handle(&mut self, msg: BurnMsg, _: &mut Context<'_, Self>) {
            match msg {
                BurnMsg::Work(us) => {
                    let until = std::time::Instant::now() + Duration::from_micros(us);
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    self.done += 1;
                }
                BurnMsg::Done(r) => r.send(self.done),
            }
        }
    }
    let rt = Runtime::builder()
        .shards(2)
        .steal_backlog_threshold(2)
        .build()
        .unwrap();
    let burners: Vec<Addr<Burner>> = (0..8)
        .map(|_| rt.spawn_migratable(0, Burner { done: 0 }).unwrap())
        .collect();
    for _ in 0..200 {
        for b in &burners {
            b.tell(BurnMsg::Work(20)).unwrap();
        }
    }
    let total: u64 = burners
        .iter()
        .map(|b| b.ask(BurnMsg::Done, Duration::from_secs(30)).unwrap())
        .sum();
    assert_eq!(total, 1600);
    let stats = rt.shard_stats();
    assert!(
        stats[1].migrated_in > 0,
        "shard 1 took work from shard 0: {stats:?}"
    );
    rt.shutdown().unwrap();
}

#[test]
fn asks_and_stops_in_flight_during_a_move_are_delivered_once() {
    for order in 0..4 {
        let kit = TestKit::with_steal(2, steal_config());
        let rs: Vec<Addr<Recorder>> = (0..4)
            .map(|_| kit.spawn_migratable_on(0, Recorder::default()))
            .collect();
        kit.run_until_idle();
        backlog_on_shard_0(&kit, &rs);
        // The steal request and these messages race towards shard 0 in an order the loop
        // picks; either way each is delivered once, where the actor is.
        let mut asks = Vec::new();
        if order % 2 == 0 {
            assert!(kit.steal(1));
        }
        for r in &rs {
            asks.push(r.ask_async(RecMsg::Shard, Duration::from_secs(5)));
        }
        rs[order].stop().unwrap();
        if order % 2 == 1 {
            assert!(kit.steal(1));
        }
        for _ in 0..order {
            kit.step(1);
        }
        kit.run_until_idle();
        for (i, a) in asks.into_iter().enumerate() {
            let shard = common::block_on(a);
            if i == order {
                // The stop (control lane) overtakes the queued ask: the ask is a dead letter
                // and its asker is told, whichever shard the actor was on.
                assert_eq!(shard, Err(AskError::Dropped), "order {order}");
            } else {
                assert!(shard.is_ok(), "order {order}, actor {i}: {shard:?}");
            }
        }
        assert!(!rs[order].is_alive());
        let alive = rs.iter().filter(|r| r.is_alive()).count();
        assert_eq!(alive, 3);
        assert_eq!(kit.actor_count(0) + kit.actor_count(1), 3, "order {order}");
        for (i, r) in rs.iter().enumerate() {
            if i != order {
                let (seen, _) = kit.ask(r, RecMsg::Log).unwrap();
                assert_eq!(seen.len(), 100, "order {order}, actor {i}");
            }
        }
    }
}
