//! The lifecycle of one actor (rotor's I-phase and S-phase), stepped on the test kit with a
//! virtual clock: plugin order, init failure and timeout, shutdown timeout, double shutdown,
//! panics in hooks, and the control lane under a full mailbox.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod lifecycle_common;

use coreactor::lifecycle::{
    DEFAULT_INIT_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, Plugin, Progress, State,
};
use coreactor::testkit::TestKit;
use coreactor::{Actor, Context, StopReason};
use lifecycle_common::{Log, ProbeCfg, ProbeMsg};
use std::time::Duration;

/// A plugin that logs every call and holds each phase until its actor says `open`.
struct Step {
    name: &'static str,
    log: Log,
}

impl Plugin<Stepped> for Step {
    fn name(&self) -> &'static str {
        self.name
    }
    fn init(&mut self, a: &mut Stepped, _: &mut Context<'_, Stepped>) -> Progress {
        self.log.push(format!("{}:init", self.name));
        if a.open_init {
            Progress::Done
        } else {
            Progress::Pending
        }
    }
    fn start(&mut self, _: &mut Stepped, _: &mut Context<'_, Stepped>) {
        self.log.push(format!("{}:start", self.name));
    }
    fn shutdown_start(&mut self, _: &StopReason, _: &mut Stepped, _: &mut Context<'_, Stepped>) {
        self.log.push(format!("{}:shutdown_start", self.name));
    }
    fn shutdown(&mut self, _: &mut Stepped, _: &mut Context<'_, Stepped>) -> Progress {
        self.log.push(format!("{}:shutdown", self.name));
        Progress::Done
    }
    fn finished(&mut self, _: &StopReason, _: &mut Stepped, _: &mut Context<'_, Stepped>) {
        self.log.push(format!("{}:finished", self.name));
    }
}

struct Stepped {
    log: Log,
    open_init: bool,
}

enum SteppedMsg {
    Open,
}

impl Actor for Stepped {
    type Msg = SteppedMsg;
    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        ["p1", "p2", "p3"]
            .into_iter()
            .map(|name| {
                Box::new(Step {
                    name,
                    log: self.log.clone(),
                }) as Box<dyn Plugin<Self>>
            })
            .collect()
    }
    fn started(&mut self, _: &mut Context<'_, Self>) {
        self.log.push("actor:started");
    }
    fn handle(&mut self, msg: SteppedMsg, _: &mut Context<'_, Self>) {
        match msg {
            SteppedMsg::Open => self.open_init = true,
        }
    }
}

#[test]
fn plugins_run_in_order_for_init_and_in_reverse_for_start_and_shutdown() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(
        0,
        Stepped {
            log: log.clone(),
            open_init: false,
        },
    );
    kit.run_until_idle();
    // The poll stops at the first plugin that is not done: p2 and p3 are not asked yet.
    assert_eq!(log.take(), ["p1:init"]);
    assert_eq!(kit.state(&a), State::Initializing);

    a.tell(SteppedMsg::Open).unwrap();
    kit.run_until_idle();
    assert_eq!(
        log.take(),
        [
            "p1:init",
            "p2:init",
            "p3:init",
            "p3:start",
            "p2:start",
            "p1:start",
            "actor:started"
        ]
    );
    assert_eq!(kit.state(&a), State::Operational);

    a.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(
        log.take(),
        [
            "p3:shutdown_start",
            "p2:shutdown_start",
            "p1:shutdown_start",
            "p3:shutdown",
            "p2:shutdown",
            "p1:shutdown",
            "p3:finished",
            "p2:finished",
            "p1:finished"
        ]
    );
    assert_eq!(kit.state(&a), State::ShutDown);
}

#[test]
fn states_follow_the_phases_held_by_resources() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(
        0,
        ProbeCfg::new("a", &log).hold_init().hold_shutdown().build(),
    );
    assert_eq!(kit.state(&a), State::New);
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::Initializing);
    a.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::Operational);
    a.tell(ProbeMsg::Stop).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShuttingDown);
    // Messages are still handled in the S-phase: that is how the hold is released.
    a.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    assert_eq!(
        log.take(),
        [
            "a:init",
            "a:started",
            "a:stopping",
            "a:stopped:stopped itself"
        ]
    );
}

#[test]
fn a_failed_plugin_skips_operational_and_shuts_down_with_the_reason() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).fail_init("no disk").build());
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    assert_eq!(
        log.take(),
        [
            "a:init",
            "a:stopping",
            "a:stopped:init failed <- failed: no disk"
        ]
    );
}

#[test]
fn a_panic_in_init_fails_the_init() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).panic_in_init().build());
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    let last = log.snapshot().pop().unwrap();
    assert_eq!(last, "a:stopped:init failed <- panicked: a refuses to init");
}

#[test]
fn init_times_out_after_exactly_the_init_timeout() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).hold_init().build());
    kit.run_until_idle();
    kit.advance(DEFAULT_INIT_TIMEOUT - Duration::from_millis(10));
    assert_eq!(kit.state(&a), State::Initializing);
    kit.advance(Duration::from_millis(20));
    assert_eq!(kit.state(&a), State::ShutDown);
    assert_eq!(log.snapshot().last().unwrap(), "a:stopped:init timed out");
}

#[test]
fn a_shutdown_that_does_not_finish_in_time_is_reported_and_forced() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).hold_shutdown().build());
    kit.run_until_idle();
    a.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShuttingDown);
    assert!(kit.lifecycle_errors().is_empty());
    kit.advance(DEFAULT_SHUTDOWN_TIMEOUT + Duration::from_millis(10));
    assert_eq!(kit.state(&a), State::ShutDown);
    let errors = kit.lifecycle_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("shutdown timed out in plugin resources"),
        "{errors:?}"
    );
    assert_eq!(log.snapshot().last().unwrap(), "a:stopped:stop requested");
}

#[test]
fn a_second_shutdown_request_changes_nothing() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).hold_shutdown().build());
    kit.run_until_idle();
    a.tell(ProbeMsg::Stop).unwrap();
    kit.run_until_idle();
    a.stop().unwrap();
    a.tell(ProbeMsg::StopWith(StopReason::Failed("late".into())))
        .unwrap();
    kit.run_until_idle();
    a.tell(ProbeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    // The first reason wins; one S-phase, one `stopped`.
    assert_eq!(log.count("a:stopping"), 1);
    assert_eq!(log.with_prefix("a:stopped"), ["a:stopped:stopped itself"]);
}

#[test]
fn a_panicking_handler_runs_the_s_phase_with_the_panic_as_reason() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).build());
    kit.run_until_idle();
    a.tell(ProbeMsg::Panic).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    assert_eq!(
        log.take(),
        [
            "a:init",
            "a:started",
            "a:stopping",
            "a:stopped:panicked: a was told to panic"
        ]
    );
}

#[test]
fn the_control_lane_is_not_blocked_by_a_full_mailbox() {
    // Mailbox bound 4: the user lane is full, the stop still gets through, first.
    let kit = TestKit::with_params(1, 64, 16, 4, Duration::from_millis(1));
    let log = Log::default();
    let a = kit.spawn_on(0, ProbeCfg::new("a", &log).build());
    kit.run_until_idle();
    for _ in 0..4 {
        a.try_tell(ProbeMsg::Panic).unwrap();
    }
    assert!(a.try_tell(ProbeMsg::Panic).unwrap_err().is_full());
    a.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    // Handled before the queued messages (none of which ran: no panic).
    assert_eq!(log.with_prefix("a:stopped"), ["a:stopped:stop requested"]);
    assert_eq!(kit.shard_stats(0).dead_letters, 4);
}

/// Panics in `stopping` and in a plugin's S-phase: the actor still shuts down, with the reason
/// it was stopping for, and the plugin's panic is reported as a lifecycle error.
struct PanicsWhileStopping(Log);

struct PanickyPlugin;

impl Plugin<PanicsWhileStopping> for PanickyPlugin {
    fn name(&self) -> &'static str {
        "panicky"
    }
    fn shutdown(
        &mut self,
        _: &mut PanicsWhileStopping,
        _: &mut Context<'_, PanicsWhileStopping>,
    ) -> Progress {
        panic!("plugin cannot shut down")
    }
}

impl Actor for PanicsWhileStopping {
    type Msg = ();
    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        vec![Box::new(PanickyPlugin)]
    }
    fn stopping(&mut self, _: &StopReason, _: &mut Context<'_, Self>) {
        panic!("stopping hook panics")
    }
    fn stopped(&mut self, reason: &StopReason, _: &mut Context<'_, Self>) {
        self.0.push(reason.to_string());
    }
    fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
}

#[test]
fn panics_during_shutdown_do_not_keep_the_actor_alive() {
    let kit = TestKit::new(1);
    let log = Log::default();
    let a = kit.spawn_on(0, PanicsWhileStopping(log.clone()));
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::Operational);
    a.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&a), State::ShutDown);
    let errors = kit.lifecycle_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("plugin panicky failed its shutdown: panicked: plugin cannot shut down"),
        "{errors:?}"
    );
    assert_eq!(kit.shard_stats(0).panics, 2);
    // A failure like any other: the final reason is the (first) panic.
    assert_eq!(
        log.snapshot(),
        ["panicked: stopping hook panics (while stopping: stop requested)"]
    );
}

#[test]
fn a_root_actor_can_run_with_its_own_phase_timeouts() {
    use coreactor::Runtime;
    use coreactor::lifecycle::ChildOptions;
    let rt = Runtime::builder().shards(1).build().unwrap();
    let log = Log::default();
    let cfg = ProbeCfg::new("a", &log).hold_init();
    let a = rt
        .spawn_with_options(
            0,
            ChildOptions {
                init_timeout: Duration::from_millis(30),
                shutdown_timeout: Duration::from_secs(5),
            },
            move || cfg.build(),
        )
        .unwrap();
    // Held forever: its own 30 ms init timeout ends it (not the 5 s default).
    // (`ShutDown` is visible as soon as the address closes; `stopped` runs just after.)
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while a.state() != State::ShutDown || log.with_prefix("a:stopped").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "init timed out in time"
        );
        std::thread::yield_now();
    }
    assert_eq!(log.with_prefix("a:stopped"), ["a:stopped:init timed out"]);
    rt.shutdown().unwrap();
}
