//! The stealing policy: how many actors a victim gives, when a shard advertises work, and
//! what a refused thief sees. Stepped on the test kit (steals happen only when the test asks).

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use coreactor::config::StealConfig;
use coreactor::testkit::TestKit;
use coreactor::{Actor, Addr, Context, Reply};

/// Counts the messages it handled.
#[derive(Default)]
struct Counter {
    n: u64,
}

enum CountMsg {
    Tick,
    Get(Reply<u64>),
}

impl Actor for Counter {
    type Msg = CountMsg;
    fn handle(&mut self, msg: CountMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            CountMsg::Tick => self.n += 1,
            CountMsg::Get(r) => r.send(self.n),
        }
    }
}

fn config(threshold: usize) -> StealConfig {
    StealConfig {
        backlog_threshold: threshold,
        batch: 8,
        ..StealConfig::default()
    }
}

/// Gives each actor 100 messages: more than one turn's budget (64 in the kit), so they stay
/// ready after a step.
fn backlog(actors: &[Addr<Counter>]) {
    for a in actors {
        for _ in 0..100 {
            a.tell(CountMsg::Tick).unwrap();
        }
    }
}

#[test]
fn a_victim_gives_half_of_its_ready_actors_rounded_up() {
    for (actors, moved) in [(2usize, 1u64), (3, 2), (4, 2), (5, 3)] {
        let kit = TestKit::with_steal(2, config(2));
        let rs: Vec<Addr<Counter>> = (0..actors)
            .map(|_| kit.spawn_migratable_on(0, Counter::default()))
            .collect();
        kit.run_until_idle();
        backlog(&rs);
        kit.step(0);
        assert!(
            kit.steal(1),
            "{actors} ready actors: shard 0 advertises work"
        );
        kit.run_until_idle();
        assert_eq!(
            kit.shard_stats(1).migrated_in,
            moved,
            "{actors} ready actors"
        );
        for r in &rs {
            assert_eq!(kit.ask(r, CountMsg::Get).unwrap(), 100);
        }
    }
}

#[test]
fn the_batch_bounds_one_steal() {
    let kit = TestKit::with_steal(
        2,
        StealConfig {
            batch: 2,
            ..config(2)
        },
    );
    let rs: Vec<Addr<Counter>> = (0..8)
        .map(|_| kit.spawn_migratable_on(0, Counter::default()))
        .collect();
    kit.run_until_idle();
    backlog(&rs);
    kit.step(0);
    assert!(kit.steal(1));
    kit.run_until_idle();
    assert_eq!(kit.shard_stats(1).migrated_in, 2);
}

#[test]
fn pinned_ready_actors_alone_are_not_advertised() {
    let kit = TestKit::with_steal(2, config(2));
    let pinned: Vec<Addr<Counter>> = (0..4)
        .map(|_| kit.spawn_on(0, Counter::default()))
        .collect();
    // A migratable actor at home, but idle: it is not in the ready queue.
    let idle = kit.spawn_migratable_on(0, Counter::default());
    kit.run_until_idle();
    backlog(&pinned);
    kit.step(0);
    assert!(
        !kit.steal(1),
        "only pinned actors are ready: nothing to offer, no request"
    );
    kit.run_until_idle();
    assert_eq!(kit.shard_stats(1).steals_attempted, 0);
    assert_eq!(kit.ask(&idle, CountMsg::Get).unwrap(), 0);
}

#[test]
fn a_refused_thief_does_not_see_the_offer_again() {
    // One migratable actor and two thieves: the first request takes it, the second is
    // refused, and the victim stops advertising.
    let kit = TestKit::with_steal(3, config(1));
    let r = kit.spawn_migratable_on(0, Counter::default());
    kit.run_until_idle();
    backlog(std::slice::from_ref(&r));
    kit.step(0);
    assert!(kit.steal(1));
    assert!(kit.steal(2));
    kit.run_until_idle();
    let (s1, s2) = (kit.shard_stats(1), kit.shard_stats(2));
    assert_eq!(
        s1.migrated_in + s2.migrated_in,
        1,
        "the one actor moved once"
    );
    assert_eq!(s1.steals_succeeded + s2.steals_succeeded, 1);
    assert_eq!(s1.steals_attempted + s2.steals_attempted, 2);
    assert!(!kit.steal(1) && !kit.steal(2), "no offer left");
    assert_eq!(kit.ask(&r, CountMsg::Get).unwrap(), 100);
}
