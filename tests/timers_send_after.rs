//! Timers: `send_after` fires exactly once and never before its delay (on the shard's own clock,
//! `ctx.now()`), cancelling it first prevents it; `interval` fires repeatedly and stops, closure
//! dropped, when cancelled or when its actor stops (by itself or by `Addr::stop`).

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{DropFlag, XorShift64, for_each_shard_count, wait_until};
use coreactor::{Actor, Context, Reply, TimerId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);
const SENTINEL: u64 = u64::MAX;

/// One fired `send_after`: its tag, the time from arming to handling, and its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fire {
    tag: u64,
    elapsed: Duration,
    delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cancel,
    StopSelf,
    KeepGoing,
}

/// What an interval did: when it was started and when each tick was handled (`ctx.now()`).
#[derive(Debug, Clone, Default)]
struct Ticks {
    started: Duration,
    at: Vec<Duration>,
    cancelled: Option<bool>,
}

#[derive(Default)]
struct Timed {
    armed: HashMap<u64, (Duration, Duration, TimerId)>,
    fired: Vec<Fire>,
    waiting: Option<(u64, Reply<Vec<Fire>>)>,
    interval: Option<(TimerId, u64, Mode)>,
    ticks: Ticks,
    tick_waiter: Option<Reply<Ticks>>,
}

enum TimedMsg {
    Arm(u64, Duration),
    ArmCancelled(u64, Duration, Reply<bool>),
    Cancel(u64, Reply<bool>),
    Fired(u64),
    WaitFor(u64, Reply<Vec<Fire>>),
    StartInterval {
        period: Duration,
        after: u64,
        mode: Mode,
        calls: Arc<AtomicU64>,
        flag: DropFlag,
        reply: Reply<Ticks>,
    },
    Tick,
}

impl Timed {
    fn arm(&mut self, ctx: &mut Context<'_, Self>, tag: u64, delay: Duration) -> TimerId {
        let id = ctx.send_after(delay, TimedMsg::Fired(tag));
        self.armed.insert(tag, (ctx.now(), delay, id));
        id
    }

    fn answer_waiter(&mut self) {
        if let Some((tag, _)) = &self.waiting
            && self.fired.iter().any(|f| f.tag == *tag)
        {
            let (_, r) = self.waiting.take().expect("checked");
            r.send(self.fired.clone());
        }
    }
}

impl Actor for Timed {
    type Msg = TimedMsg;
    fn handle(&mut self, msg: TimedMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            TimedMsg::Arm(tag, delay) => {
                self.arm(ctx, tag, delay);
            }
            TimedMsg::ArmCancelled(tag, delay, r) => {
                let id = self.arm(ctx, tag, delay);
                r.send(ctx.cancel_timer(id));
            }
            TimedMsg::Cancel(tag, r) => r.send(ctx.cancel_timer(self.armed[&tag].2)),
            TimedMsg::Fired(tag) => {
                let (at, delay, _) = self.armed[&tag];
                self.fired.push(Fire {
                    tag,
                    elapsed: ctx.now() - at,
                    delay,
                });
                self.answer_waiter();
            }
            TimedMsg::WaitFor(tag, r) => {
                self.waiting = Some((tag, r));
                self.answer_waiter();
            }
            TimedMsg::StartInterval {
                period,
                after,
                mode,
                calls,
                flag,
                reply,
            } => {
                self.ticks = Ticks {
                    started: ctx.now(),
                    ..Ticks::default()
                };
                self.tick_waiter = Some(reply);
                let id = ctx.interval(period, move || {
                    let _owned = &flag;
                    calls.fetch_add(1, Ordering::SeqCst);
                    TimedMsg::Tick
                });
                self.interval = Some((id, after, mode));
            }
            TimedMsg::Tick => {
                self.ticks.at.push(ctx.now());
                let (id, after, mode) = self.interval.expect("an interval runs");
                if self.ticks.at.len() as u64 == after {
                    match mode {
                        Mode::Cancel => self.ticks.cancelled = Some(ctx.cancel_timer(id)),
                        Mode::StopSelf => ctx.stop(),
                        Mode::KeepGoing => {}
                    }
                    let ticks = self.ticks.clone();
                    self.tick_waiter.take().expect("one waiter").send(ticks);
                }
            }
        }
    }
}

// send_after fires exactly once per timer, never before its delay on the shard clock.
#[test]
fn send_after_fires_once_not_early() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let mut rng = XorShift64::new(0x7153_0001);
        for s in 0..n {
            let t = rt.spawn_on(s, Timed::default()).unwrap();
            let delays: Vec<Duration> = (0..8)
                .map(|_| Duration::from_millis(1 + rng.below(25) as u64))
                .collect();
            for (tag, d) in delays.iter().enumerate() {
                t.tell(TimedMsg::Arm(tag as u64, *d)).unwrap();
            }
            // Armed last with the longest delay: when it fires, the others have had their turn.
            t.tell(TimedMsg::Arm(SENTINEL, Duration::from_millis(60)))
                .unwrap();
            let fired = t.ask(|r| TimedMsg::WaitFor(SENTINEL, r), ASK).unwrap();
            let mut tags: Vec<u64> = fired.iter().map(|f| f.tag).collect();
            tags.sort_unstable();
            let mut expected: Vec<u64> = (0..delays.len() as u64).collect();
            expected.push(SENTINEL);
            assert_eq!(tags, expected, "each timer fired exactly once");
            for f in &fired {
                assert!(f.elapsed >= f.delay, "fired early: {f:?}");
            }
        }
        rt.shutdown().expect("clean shutdown");
    });
}

// A send_after cancelled before it fires never fires; cancelling a fired timer returns false.
#[test]
fn cancel_before_firing_prevents_it() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let t = rt.spawn_on(n - 1, Timed::default()).unwrap();
        let cancelled = t
            .ask(
                |r| TimedMsg::ArmCancelled(1, Duration::from_millis(10), r),
                ASK,
            )
            .unwrap();
        assert!(cancelled, "cancel before firing returns true");
        t.tell(TimedMsg::Arm(2, Duration::from_millis(5))).unwrap();
        t.tell(TimedMsg::Arm(SENTINEL, Duration::from_millis(40)))
            .unwrap();
        let fired = t.ask(|r| TimedMsg::WaitFor(SENTINEL, r), ASK).unwrap();
        let tags: Vec<u64> = fired.iter().map(|f| f.tag).collect();
        assert_eq!(tags, [2, SENTINEL], "the cancelled timer never fired");
        assert!(!t.ask(|r| TimedMsg::Cancel(2, r), ASK).unwrap());
        assert!(!t.ask(|r| TimedMsg::Cancel(1, r), ASK).unwrap());
        rt.shutdown().expect("clean shutdown");
    });
}

struct IntervalRun {
    ticks: Ticks,
    calls: Arc<AtomicU64>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

fn start_interval(
    t: &coreactor::Addr<Timed>,
    period: Duration,
    after: u64,
    mode: Mode,
) -> IntervalRun {
    let calls = Arc::new(AtomicU64::new(0));
    let (flag, dropped) = DropFlag::new();
    let ticks = t
        .ask(
            |reply| TimedMsg::StartInterval {
                period,
                after,
                mode,
                calls: calls.clone(),
                flag,
                reply,
            },
            ASK,
        )
        .unwrap();
    IntervalRun {
        ticks,
        calls,
        dropped,
    }
}

// An interval fires repeatedly; cancelled from its handler it stops at once: no further tick or
// call of its closure, and the closure is dropped.
#[test]
fn interval_stops_when_cancelled() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let t = rt.spawn_on(n - 1, Timed::default()).unwrap();
        let period = Duration::from_millis(2);
        let run = start_interval(&t, period, 5, Mode::Cancel);
        assert_eq!(run.ticks.at.len(), 5);
        assert_eq!(run.ticks.cancelled, Some(true));
        assert!(
            run.dropped.load(Ordering::SeqCst),
            "closure dropped on cancel"
        );
        // Wait several periods (on a timer) and check nothing more came.
        t.tell(TimedMsg::Arm(SENTINEL, period * 10)).unwrap();
        t.ask(|r| TimedMsg::WaitFor(SENTINEL, r), ASK).unwrap();
        assert_eq!(run.calls.load(Ordering::SeqCst), 5, "no call after cancel");
        let again = start_interval(&t, period, 1, Mode::Cancel);
        assert_eq!(again.ticks.at.len(), 1);
        assert_eq!(
            run.calls.load(Ordering::SeqCst),
            5,
            "the old interval stays cancelled"
        );
        rt.shutdown().expect("clean shutdown");
    });
}

// An interval stops when its actor stops itself: its closure is not called again and is dropped.
#[test]
fn interval_stops_when_actor_stops_itself() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let t = rt.spawn_on(n - 1, Timed::default()).unwrap();
        let run = start_interval(&t, Duration::from_millis(2), 3, Mode::StopSelf);
        assert_eq!(run.ticks.at.len(), 3);
        wait_until("the actor to stop", || !t.is_alive());
        wait_until("the interval's closure to be dropped", || {
            run.dropped.load(Ordering::SeqCst)
        });
        assert_eq!(
            run.calls.load(Ordering::SeqCst),
            3,
            "no call after the stop"
        );
        rt.shutdown().expect("clean shutdown");
    });
}

// An interval stops when its actor is stopped from outside: the closure is dropped.
#[test]
fn interval_stops_when_actor_is_stopped() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let t = rt.spawn_on(n - 1, Timed::default()).unwrap();
        let run = start_interval(&t, Duration::from_millis(2), 3, Mode::KeepGoing);
        assert!(run.ticks.at.len() >= 3);
        t.stop().unwrap();
        wait_until("the actor to stop", || !t.is_alive());
        let calls_at_stop = run.calls.load(Ordering::SeqCst);
        wait_until("the interval's closure to be dropped", || {
            run.dropped.load(Ordering::SeqCst)
        });
        assert_eq!(run.calls.load(Ordering::SeqCst), calls_at_stop);
        rt.shutdown().expect("clean shutdown");
    });
}

// Interval ticks are never early: the first comes at least one period after the interval was
// started and each next one at least one period after the previous (shard clock).
#[test]

fn interval_never_fires_early() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let t = rt.spawn_on(n - 1, Timed::default()).unwrap();
        let period = Duration::from_micros(2500);
        let run = start_interval(&t, period, 20, Mode::Cancel);
        let mut prev = run.ticks.started;
        for (k, at) in run.ticks.at.iter().enumerate() {
            assert!(
                *at - prev >= period,
                "tick {k} came {:?} after the previous, period {period:?}",
                *at - prev
            );
            prev = *at;
        }
        rt.shutdown().expect("clean shutdown");
    });
}
