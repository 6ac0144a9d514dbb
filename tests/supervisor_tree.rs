//! Supervisors bring trees up together and take them down together (rotor's scenarios),
//! stepped on the test kit; one tree also runs on real shard threads.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod lifecycle_common;

use coreactor::lifecycle::State;
use coreactor::supervisor::{ChildSpec, InitFailurePolicy, Restart, Supervisor, SupervisorMsg};
use coreactor::testkit::TestKit;
use coreactor::{ActorRef, Addr, Runtime};
use lifecycle_common::{Log, Probe, ProbeCfg, ProbeMsg};
use std::time::Duration;

fn spec(cfg: ProbeCfg) -> ChildSpec {
    ChildSpec::new(cfg.name, move || cfg.build())
}

fn child(kit: &TestKit, sup: &Addr<Supervisor>, name: &str) -> Option<Addr<Probe>> {
    let r: Option<ActorRef> = kit
        .ask(sup, |r| SupervisorMsg::Which(name.to_string(), r))
        .unwrap();
    r.map(|r| r.downcast::<Probe>().expect("a probe"))
}

#[test]
fn a_supervisor_is_initialized_only_when_all_its_children_are() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log).hold_init()))
            .build(),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Initializing);
    let a = child(&kit, &sup, "a").unwrap();
    let b = child(&kit, &sup, "b").unwrap();
    // Without synchronize_start a child starts as soon as it is initialized.
    assert_eq!(kit.state(&a), State::Operational);
    assert_eq!(kit.state(&b), State::Initializing);
    b.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&b), State::Operational);
    assert_eq!(kit.state(&sup), State::Operational);
}

#[test]
fn synchronize_start_starts_the_children_together() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .synchronize_start(true)
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log).hold_init()))
            .build(),
    );
    kit.run_until_idle();
    let a = child(&kit, &sup, "a").unwrap();
    let b = child(&kit, &sup, "b").unwrap();
    assert_eq!(kit.state(&a), State::Initialized);
    assert!(log.with_prefix("a:started").is_empty());
    b.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::Operational);
    assert_eq!(kit.state(&b), State::Operational);
    assert_eq!(kit.state(&sup), State::Operational);
}

#[test]
fn a_child_added_during_the_supervisors_init_holds_it_too() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log).hold_init()))
            .build(),
    );
    kit.run_until_idle();
    let c: ActorRef = kit
        .ask(&sup, |r| {
            SupervisorMsg::StartChild(spec(ProbeCfg::new("c", &log).hold_init()), r)
        })
        .unwrap()
        .unwrap();
    let a = child(&kit, &sup, "a").unwrap();
    a.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Initializing, "c still initializes");
    c.downcast::<Probe>()
        .unwrap()
        .tell(ProbeMsg::Release)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Operational);
    assert_eq!(c.state(), State::Operational);
}

#[test]
fn shutdown_self_policy_fails_the_supervisor_when_a_child_fails_its_init() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log).fail_init("no disk")))
            .build(),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(
        log.with_prefix("b:stopped"),
        ["b:stopped:init failed <- failed: no disk"]
    );
    // The sibling that had started is taken down with the supervisor's reason chain.
    assert_eq!(
        log.with_prefix("a:stopped"),
        [
            "a:stopped:supervisor shut down <- init failed <- child b failed init <- init failed <- failed: no disk"
        ]
    );
}

#[test]
fn shutdown_failed_policy_drops_only_the_failed_child() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .init_failure(InitFailurePolicy::ShutdownFailed)
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log).fail_init("no disk")))
            .build(),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Operational);
    let children = kit.ask(&sup, SupervisorMsg::Children).unwrap();
    assert_eq!(children[0].state, State::Operational);
    assert_eq!(children[1].state, State::ShutDown);
    assert_eq!(
        children[1].last_reason.as_ref().unwrap().to_string(),
        "init failed <- failed: no disk"
    );
}

#[test]
fn a_child_init_timeout_fails_an_initializing_supervisor() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(
                spec(ProbeCfg::new("a", &log).hold_init()).init_timeout(Duration::from_millis(50)),
            )
            .build(),
    );
    kit.run_until_idle();
    kit.advance(Duration::from_millis(40));
    assert_eq!(kit.state(&sup), State::Initializing);
    kit.advance(Duration::from_millis(20));
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(log.with_prefix("a:stopped"), ["a:stopped:init timed out"]);
}

#[test]
fn an_init_failure_escalates_through_three_levels() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let leaf = ProbeCfg::new("leaf", &log).fail_init("bad config");
    let mid = Supervisor::builder().child(spec(leaf));
    let root = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("sibling", &log)))
            .child(ChildSpec::new("mid", move || mid.clone().build()).on_shard(1))
            .build(),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&root), State::ShutDown);
    assert_eq!(
        log.with_prefix("sibling:stopped"),
        [
            "sibling:stopped:supervisor shut down <- init failed <- child mid failed init <- init failed <- child leaf failed init <- init failed <- failed: bad config"
        ]
    );
    for shard in 0..2 {
        assert_eq!(kit.actor_count(shard), 0, "shard {shard} is empty");
    }
}

#[test]
fn a_supervisor_finishes_its_shutdown_only_after_all_its_children() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log).hold_shutdown()).on_shard(1))
            .build(),
    );
    kit.run_until_idle();
    let b = child(&kit, &sup, "b").unwrap();
    sup.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShuttingDown);
    assert_eq!(kit.state(&b), State::ShuttingDown);
    b.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(
        log.with_prefix("b:stopped"),
        ["b:stopped:supervisor shut down <- stop requested"]
    );
}

#[test]
fn a_tree_spread_over_two_shards_comes_up_and_goes_down_together() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let inner = Supervisor::builder()
        .child(spec(ProbeCfg::new("inner-0", &log)).on_shard(0))
        .child(spec(ProbeCfg::new("inner-1", &log)));
    let root = kit.spawn_on(
        0,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("outer-1", &log)).on_shard(1))
            .child(ChildSpec::new("inner", move || inner.clone().build()).on_shard(1))
            .build(),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&root), State::Operational);
    let outer = child(&kit, &root, "outer-1").unwrap();
    assert_eq!(kit.ask(&outer, ProbeMsg::Shard).unwrap(), 1);
    let inner: Addr<Supervisor> = kit
        .ask(&root, |r| SupervisorMsg::Which("inner".into(), r))
        .unwrap()
        .unwrap()
        .downcast()
        .unwrap();
    let i0 = child(&kit, &inner, "inner-0").unwrap();
    assert_eq!(kit.ask(&i0, ProbeMsg::Shard).unwrap(), 0);
    assert_eq!(kit.state(&i0), State::Operational);
    root.stop().unwrap();
    kit.run_until_idle();
    for a in [&outer, &i0] {
        assert_eq!(kit.state(a), State::ShutDown);
    }
    assert_eq!(kit.state(&inner), State::ShutDown);
    assert_eq!(kit.state(&root), State::ShutDown);
    assert_eq!(log.with_prefix("inner-1:stopped").len(), 1);
}

#[test]
fn on_real_threads_a_tree_restarts_a_panicking_child_and_shuts_down() {
    let log = Log::default();
    let rt = Runtime::builder().shards(2).build().unwrap();
    let a = ProbeCfg::new("a", &log);
    let b = ProbeCfg::new("b", &log);
    let sup = rt
        .spawn_with(0, move || {
            Supervisor::builder()
                .child(ChildSpec::new("a", move || a.build()).on_shard(1))
                .child(ChildSpec::new("b", move || b.build()).restart(Restart::Transient))
                .build()
        })
        .unwrap();
    let wait = Duration::from_secs(10);
    common::wait_until("supervisor operational", || {
        sup.state() == State::Operational
    });
    let first = sup
        .ask(|r| SupervisorMsg::Which("a".into(), r), wait)
        .unwrap()
        .unwrap();
    first
        .downcast::<Probe>()
        .unwrap()
        .tell(ProbeMsg::Panic)
        .unwrap();
    common::wait_until("a restarted", || {
        sup.ask(|r| SupervisorMsg::Which("a".into(), r), wait)
            .unwrap()
            .is_some_and(|r| r != first && r.state() == State::Operational)
    });
    sup.stop().unwrap();
    common::wait_until("supervisor down", || sup.state() == State::ShutDown);
    assert_eq!(log.count("a:started"), 2);
    assert_eq!(log.with_prefix("b:stopped").len(), 1);
    rt.shutdown().unwrap();
}
