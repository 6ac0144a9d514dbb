//! Restarts after start: policies, strategies, intensity, backoff with the virtual clock,
//! and the escalation flags (rotor's spawner scenarios and Erlang's strategies).

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod lifecycle_common;

use coreactor::lifecycle::State;
use coreactor::supervisor::{
    Backoff, ChildSpec, Restart, Strategy, Supervisor, SupervisorBuilder, SupervisorMsg,
};
use coreactor::testkit::TestKit;
use coreactor::{ActorRef, Addr, StopReason};
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

fn restarts(kit: &TestKit, sup: &Addr<Supervisor>, name: &str) -> u32 {
    kit.ask(sup, SupervisorMsg::Children)
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
        .restarts
}

fn start(kit: &TestKit, b: SupervisorBuilder) -> Addr<Supervisor> {
    let sup = kit.spawn_on(0, b.backoff(Backoff::none()).build());
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Operational);
    sup
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log)).on_shard(1)),
    );
    let a1 = child(&kit, &sup, "a").unwrap();
    let b1 = child(&kit, &sup, "b").unwrap();
    a1.tell(ProbeMsg::Panic).unwrap();
    kit.run_until_idle();
    let a2 = child(&kit, &sup, "a").unwrap();
    assert_ne!(a1, a2, "a new incarnation");
    assert_eq!(kit.state(&a2), State::Operational);
    assert_eq!(child(&kit, &sup, "b").unwrap(), b1, "b untouched");
    assert_eq!(restarts(&kit, &sup, "a"), 1);
    assert_eq!(log.count("a:init"), 2);
}

#[test]
fn restart_policies_decide_by_reason() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("perm", &log)).restart(Restart::Permanent))
            .child(spec(ProbeCfg::new("trans", &log)).restart(Restart::Transient))
            .child(spec(ProbeCfg::new("temp", &log)).restart(Restart::Temporary)),
    );
    // A normal stop: only the permanent child comes back.
    for name in ["perm", "trans", "temp"] {
        child(&kit, &sup, name)
            .unwrap()
            .tell(ProbeMsg::Stop)
            .unwrap();
    }
    kit.run_until_idle();
    assert!(child(&kit, &sup, "perm").is_some());
    assert!(child(&kit, &sup, "trans").is_none());
    assert!(child(&kit, &sup, "temp").is_none());

    // A failure: the transient child would come back, the temporary never.
    let kit = TestKit::new(1);
    let sup = start(
        &kit,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("trans", &log)).restart(Restart::Transient))
            .child(spec(ProbeCfg::new("temp", &log)).restart(Restart::Temporary)),
    );
    for name in ["trans", "temp"] {
        child(&kit, &sup, name)
            .unwrap()
            .tell(ProbeMsg::Panic)
            .unwrap();
    }
    kit.run_until_idle();
    assert!(child(&kit, &sup, "trans").is_some());
    assert!(child(&kit, &sup, "temp").is_none());
    assert_eq!(kit.state(&sup), State::Operational);
}

#[test]
fn one_for_all_restarts_every_child() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .strategy(Strategy::OneForAll)
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log)).on_shard(1)),
    );
    let b1 = child(&kit, &sup, "b").unwrap();
    child(&kit, &sup, "a")
        .unwrap()
        .tell(ProbeMsg::Panic)
        .unwrap();
    kit.run_until_idle();
    let b2 = child(&kit, &sup, "b").unwrap();
    assert_ne!(b1, b2);
    assert_eq!(kit.state(&b2), State::Operational);
    assert_eq!(
        kit.state(&child(&kit, &sup, "a").unwrap()),
        State::Operational
    );
    assert_eq!(
        log.with_prefix("b:stopped"),
        ["b:stopped:supervisor shut down <- panicked: a was told to panic"]
    );
}

#[test]
fn rest_for_one_restarts_the_child_and_those_after_it() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .strategy(Strategy::RestForOne)
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("b", &log)))
            .child(spec(ProbeCfg::new("c", &log))),
    );
    let a1 = child(&kit, &sup, "a").unwrap();
    let c1 = child(&kit, &sup, "c").unwrap();
    child(&kit, &sup, "b")
        .unwrap()
        .tell(ProbeMsg::Panic)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(child(&kit, &sup, "a").unwrap(), a1, "before b: untouched");
    assert_ne!(child(&kit, &sup, "c").unwrap(), c1, "after b: restarted");
    assert_eq!(log.count("b:init"), 2);
    assert_eq!(log.count("c:init"), 2);
    assert_eq!(log.count("a:init"), 1);
}

#[test]
fn over_the_intensity_the_supervisor_gives_up_and_escalates() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .intensity(2, Duration::from_secs(1))
            .child(spec(ProbeCfg::new("a", &log)))
            .child(spec(ProbeCfg::new("witness", &log))),
    );
    for _ in 0..2 {
        child(&kit, &sup, "a")
            .unwrap()
            .tell(ProbeMsg::Panic)
            .unwrap();
        kit.run_until_idle();
        assert_eq!(kit.state(&sup), State::Operational);
    }
    child(&kit, &sup, "a")
        .unwrap()
        .tell(ProbeMsg::Panic)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(
        log.with_prefix("witness:stopped"),
        [
            "witness:stopped:supervisor shut down <- child a failed (escalated) <- panicked: a was told to panic"
        ]
    );
}

#[test]
fn restarts_outside_the_window_do_not_count() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .intensity(1, Duration::from_millis(100))
            .child(spec(ProbeCfg::new("a", &log))),
    );
    for _ in 0..3 {
        child(&kit, &sup, "a")
            .unwrap()
            .tell(ProbeMsg::Panic)
            .unwrap();
        kit.run_until_idle();
        assert_eq!(kit.state(&sup), State::Operational);
        kit.advance(Duration::from_millis(150));
    }
    assert_eq!(restarts(&kit, &sup, "a"), 3);
}

#[test]
fn backoff_doubles_the_delay_between_restarts() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = kit.spawn_on(
        0,
        Supervisor::builder()
            .intensity(10, Duration::from_secs(60))
            .backoff(Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                jitter: 0.0,
            })
            .child(spec(ProbeCfg::new("a", &log)))
            .build(),
    );
    kit.run_until_idle();
    for expected in [100u64, 200, 400] {
        child(&kit, &sup, "a")
            .unwrap()
            .tell(ProbeMsg::Panic)
            .unwrap();
        kit.run_until_idle();
        assert!(child(&kit, &sup, "a").is_none());
        kit.advance(Duration::from_millis(expected - 5));
        assert!(child(&kit, &sup, "a").is_none(), "not before {expected} ms");
        kit.advance(Duration::from_millis(10));
        assert!(
            child(&kit, &sup, "a").is_some(),
            "restarted at {expected} ms"
        );
    }
}

#[test]
fn backoff_delay_doubles_is_capped_and_jitter_stays_within_its_bounds() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        jitter: 0.5,
    };
    assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
    assert_eq!(b.delay(0, 1.0), Duration::from_millis(150));
    assert_eq!(b.delay(0, -1.0), Duration::from_millis(50));
    assert_eq!(b.delay(5, 0.0), Duration::from_secs(1), "capped");
    assert_eq!(b.delay(40, 0.0), Duration::from_secs(1), "no overflow");
}

#[test]
fn escalate_failure_takes_the_supervisor_down_on_a_failure_only() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)).escalate_failure())
            .child(spec(ProbeCfg::new("witness", &log))),
    );
    // A normal stop is restarted as usual.
    child(&kit, &sup, "a")
        .unwrap()
        .tell(ProbeMsg::Stop)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Operational);
    child(&kit, &sup, "a")
        .unwrap()
        .tell(ProbeMsg::StopWith(StopReason::Failed("corrupt".into())))
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(
        log.with_prefix("witness:stopped"),
        ["witness:stopped:supervisor shut down <- child a failed (escalated) <- failed: corrupt"]
    );
}

#[test]
fn autoshutdown_supervisor_follows_its_child_whatever_the_reason() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder()
            .child(spec(ProbeCfg::new("a", &log)).autoshutdown_supervisor())
            .child(spec(ProbeCfg::new("witness", &log))),
    );
    child(&kit, &sup, "a")
        .unwrap()
        .tell(ProbeMsg::Stop)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(
        log.with_prefix("witness:stopped"),
        ["witness:stopped:supervisor shut down <- child a went down <- stopped itself"]
    );
}

#[test]
fn a_panicking_factory_is_retried_then_escalated() {
    let kit = TestKit::new(2);
    let log = Log::default();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    let cfg = ProbeCfg::new("flaky", &log);
    let sup = start(
        &kit,
        Supervisor::builder()
            .intensity(3, Duration::from_secs(10))
            .child(
                ChildSpec::new("flaky", move || {
                    // Succeeds the first time, then panics on every restart.
                    if c.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0 {
                        panic!("cannot open the file");
                    }
                    cfg.build()
                })
                .on_shard(1),
            ),
    );
    child(&kit, &sup, "flaky")
        .unwrap()
        .tell(ProbeMsg::Panic)
        .unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    // First start + 3 restarts allowed by the intensity, the last of which escalates.
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 4);
}

#[test]
fn stop_child_stops_it_for_good() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let sup = start(
        &kit,
        Supervisor::builder().child(spec(ProbeCfg::new("a", &log))),
    );
    assert!(
        kit.ask(&sup, |r| SupervisorMsg::StopChild("a".into(), r))
            .unwrap()
    );
    kit.run_until_idle();
    assert!(child(&kit, &sup, "a").is_none());
    assert!(
        !kit.ask(&sup, |r| SupervisorMsg::StopChild("nope".into(), r))
            .unwrap()
    );
}
