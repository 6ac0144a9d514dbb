//! Dead addresses: after a stop (requested or self-initiated) every send is `Closed`, a stale
//! address never reaches its slot's next tenant, queued messages become counted dead letters
//! reported to the hook with their type, and spawn errors name the shard and the bound.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{
    BlockerMsg, addr_parts, block_on, block_shard, for_each_shard_count, join, wait_until,
};
use coreactor::{
    Actor, Addr, AskError, Context, DeadLetter, DeadLetterReason, Reply, Runtime, SendError,
    SpawnError, StopReason,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Counts data messages; records why it stopped.
struct Counter {
    count: u64,
    stops: Log<StopReason>,
}

enum CounterMsg {
    Data(u64),
    Count(Reply<u64>),
    StopSelf,
    SpawnHere(Reply<Result<(), SpawnError>>),
    SpawnOn(usize, Reply<Result<(), SpawnError>>),
    TellTo(Addr<Counter>, u64, Reply<Result<(), u64>>),
}

impl Counter {
    fn new(stops: &Log<StopReason>) -> Self {
        Counter {
            count: 0,
            stops: stops.clone(),
        }
    }
}

impl Actor for Counter {
    type Msg = CounterMsg;
    fn handle(&mut self, msg: CounterMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            CounterMsg::Data(_) => self.count += 1,
            CounterMsg::Count(r) => r.send(self.count),
            CounterMsg::StopSelf => ctx.stop(),
            CounterMsg::SpawnHere(r) => {
                let stops = self.stops.clone();
                r.send(ctx.spawn(Counter::new(&stops)).map(drop));
            }
            CounterMsg::SpawnOn(shard, r) => {
                let stops = self.stops.clone();
                r.send(ctx.spawn_on(shard, move || Counter::new(&stops)).map(drop));
            }
            CounterMsg::TellTo(to, x, r) => r.send(match to.tell(CounterMsg::Data(x)) {
                Ok(()) => Ok(()),
                Err(SendError::Closed(CounterMsg::Data(x))) => Err(x),
                Err(e) => panic!("expected Closed(Data), got {e:?}"),
            }),
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        self.stops.lock().unwrap().push(reason.clone());
    }
}

/// Every way of reaching a dead actor from outside says it is gone.
fn assert_closed(a: &Addr<Counter>) {
    assert!(!a.is_alive());
    match a.try_tell(CounterMsg::Data(41)) {
        Err(SendError::Closed(CounterMsg::Data(41))) => {}
        other => panic!("try_tell to a dead actor: expected Closed(Data(41)), got {other:?}"),
    }
    match a.tell_timeout(CounterMsg::Data(42), ASK) {
        Err(SendError::Closed(CounterMsg::Data(42))) => {}
        other => panic!("tell_timeout to a dead actor: expected Closed(Data(42)), got {other:?}"),
    }
    assert_eq!(a.ask(CounterMsg::Count, ASK), Err(AskError::Closed));
    assert_eq!(
        block_on(a.ask_async(CounterMsg::Count, ASK)),
        Err(AskError::Closed)
    );
    assert_eq!(a.stop(), Err(SendError::Closed(())));
    assert_eq!(a.stats(), None);
    assert_eq!(a.mailbox_len(), 0);
}

// After addr.stop() the address is Closed for every operation and `stopped` sees Requested.
#[test]
fn stop_closes_the_address() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let stops = log();
        let a = rt.spawn_on(n - 1, Counter::new(&stops)).unwrap();
        assert!(a.is_alive());
        assert_eq!(a.ask(CounterMsg::Count, ASK), Ok(0));
        a.stop().expect("first stop");
        wait_until("the actor to stop", || !a.is_alive());
        assert_closed(&a);
        wait_until("the stopped hook", || !stops.lock().unwrap().is_empty());
        assert_eq!(*stops.lock().unwrap(), [StopReason::Requested]);
        rt.shutdown().expect("clean shutdown");
    });
}

// After ctx.stop() the address is Closed for every operation and `stopped` sees Normal.
#[test]
fn self_stop_closes_the_address() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let stops = log();
        let a = rt.spawn_on(n - 1, Counter::new(&stops)).unwrap();
        a.tell(CounterMsg::StopSelf).unwrap();
        wait_until("the actor to stop itself", || !a.is_alive());
        assert_closed(&a);
        wait_until("the stopped hook", || !stops.lock().unwrap().is_empty());
        assert_eq!(*stops.lock().unwrap(), [StopReason::Normal]);
        rt.shutdown().expect("clean shutdown");
    });
}

// A stale address whose slot was reused (same slot, new generation) is Closed from threads and
// actors alike, and never reaches the new tenant; over several reuse rounds.
#[test]
fn stale_address_never_reaches_new_tenant() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let s = n - 1;
        let stops = log();
        let prober = rt.spawn_on(0, Counter::new(&stops)).unwrap();
        let ping = rt.spawn_on(s, common::Blocker).unwrap();
        let mut stale: Vec<Addr<Counter>> = Vec::new();
        let mut victim = rt.spawn_on(s, Counter::new(&stops)).unwrap();
        for round in 0..5 {
            let (_, slot, generation) = addr_parts(&victim);
            victim.stop().unwrap();
            wait_until("the victim to stop", || !victim.is_alive());
            // A round trip through the shard: it has freed the victim's slot by now.
            ping.ask(BlockerMsg::Ping, ASK).unwrap();
            stale.push(victim.clone());
            let tenants: Vec<Addr<Counter>> = (0..8)
                .map(|_| rt.spawn_on(s, Counter::new(&stops)).unwrap())
                .collect();
            let reused = tenants
                .iter()
                .find(|t| addr_parts(t).1 == slot)
                .unwrap_or_else(|| panic!("round {round}: slot {slot} was not reused"))
                .clone();
            assert_ne!(addr_parts(&reused).2, generation, "a new generation");
            assert_ne!(reused, victim);
            for (i, old) in stale.iter().enumerate() {
                assert_closed(old);
                let from_actor = prober
                    .ask(|r| CounterMsg::TellTo(old.clone(), i as u64, r), ASK)
                    .unwrap();
                assert_eq!(from_actor, Err(i as u64), "Closed from an actor");
            }
            for t in &tenants {
                assert_eq!(t.ask(CounterMsg::Count, ASK), Ok(0), "round {round}");
            }
            // Stop the others so the next round's victim is the reused slot's tenant.
            for t in tenants.iter().filter(|t| **t != reused) {
                t.stop().unwrap();
                wait_until("a tenant to stop", || !t.is_alive());
            }
            victim = reused;
        }
        assert_eq!(
            rt.dead_letters(),
            0,
            "stale sends were refused, not accepted"
        );
        rt.shutdown().expect("clean shutdown");
    });
}

// Messages accepted before a stop but still queued become dead letters: the hook sees each with
// the message type and ActorStopped, dead_letters() counts them, and a queued ask gets Dropped.
#[test]
fn queued_messages_become_dead_letters() {
    for_each_shard_count(|n| {
        let letters: Log<DeadLetter> = log();
        let rt = {
            let letters = letters.clone();
            Runtime::builder()
                .shards(n)
                .on_dead_letter(move |l| letters.lock().unwrap().push(l.clone()))
                .build()
                .unwrap()
        };
        let s = n - 1;
        let stops = log();
        let a = rt.spawn_on(s, Counter::new(&stops)).unwrap();
        assert_eq!(a.ask(CounterMsg::Count, ASK), Ok(0));
        let (_gate, guard, _blocker) = block_shard(&rt, s);
        for i in 0..3 {
            a.tell(CounterMsg::Data(i)).unwrap();
        }
        let asker = {
            let a = a.clone();
            std::thread::spawn(move || a.ask(CounterMsg::Count, ASK))
        };
        wait_until("the ask to be queued", || a.mailbox_len() == 4);
        a.stop().unwrap();
        drop(guard);
        assert_eq!(join("queued asker", asker), Err(AskError::Dropped));
        wait_until("four dead letters", || letters.lock().unwrap().len() >= 4);
        let (_, slot, _) = addr_parts(&a);
        let letters = letters.lock().unwrap().clone();
        assert_eq!(letters.len(), 4);
        for l in &letters {
            assert_eq!(l.message_type, std::any::type_name::<CounterMsg>());
            assert_eq!(l.reason, DeadLetterReason::ActorStopped);
            assert_eq!((l.shard, l.slot), (s, slot));
        }
        assert_eq!(rt.dead_letters(), 4);
        assert_eq!(rt.shard_stats()[s].dead_letters, 4);
        wait_until("the stopped hook", || !stops.lock().unwrap().is_empty());
        assert_eq!(*stops.lock().unwrap(), [StopReason::Requested]);
        rt.shutdown().expect("clean shutdown");
    });
}

// Spawning on a shard that does not exist is NoSuchShard, from the runtime and from an actor.
#[test]
fn spawn_on_missing_shard() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let stops = log();
        let expected = SpawnError::NoSuchShard {
            shard: 99,
            shards: n,
        };
        assert_eq!(
            rt.spawn_on(99, Counter::new(&stops)).map(drop),
            Err(expected.clone())
        );
        let s2 = stops.clone();
        assert_eq!(
            rt.spawn_with(99, move || Counter::new(&s2)).map(drop),
            Err(expected.clone())
        );
        let a = rt.spawn_on(0, Counter::new(&stops)).unwrap();
        assert_eq!(
            a.ask(|r| CounterMsg::SpawnOn(99, r), ASK),
            Ok(Err(expected))
        );
        assert_eq!(a.ask(|r| CounterMsg::SpawnOn(n - 1, r), ASK), Ok(Ok(())));
        rt.shutdown().expect("clean shutdown");
    });
}

// With max_actors(2) a third actor on the shard is ShardFull (runtime and Context::spawn); other
// shards are unaffected, and a stopped actor's slot can be used again.
#[test]
fn max_actors_gives_shard_full() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder().shards(n).max_actors(2).build().unwrap();
        let stops = log();
        let full = SpawnError::ShardFull {
            shard: 0,
            max_actors: 2,
        };
        let a = rt.spawn_on(0, Counter::new(&stops)).unwrap();
        let b = rt.spawn_on(0, Counter::new(&stops)).unwrap();
        assert_eq!(
            rt.spawn_on(0, Counter::new(&stops)).map(drop),
            Err(full.clone())
        );
        assert_eq!(a.ask(CounterMsg::SpawnHere, ASK), Ok(Err(full.clone())));
        assert_eq!(
            a.ask(|r| CounterMsg::SpawnOn(0, r), ASK),
            Ok(Err(full.clone()))
        );
        if n > 1 {
            rt.spawn_on(1, Counter::new(&stops))
                .expect("another shard has room");
        }
        b.stop().unwrap();
        wait_until("b to stop", || !b.is_alive());
        // The slot is freed right after the stop; poll until a spawn fits again.
        let c = common::wait_for("a free slot after the stop", || {
            match rt.spawn_on(0, Counter::new(&stops)) {
                Ok(c) => Some(c),
                Err(e) => {
                    assert_eq!(e, full);
                    None
                }
            }
        });
        assert_eq!(c.ask(CounterMsg::Count, ASK), Ok(0));
        rt.shutdown().expect("clean shutdown");
    });
}
