//! The test kit drives real shards by hand with a virtual clock: timers and ask timeouts fire
//! exactly when the test advances time, never by luck.

use coreactor::testkit::TestKit;
use coreactor::{Actor, Addr, AskError, Context, Reply, TimerId};
use std::time::Duration;

/// Records when (virtual time) each of its timer messages arrived.
struct Alarm {
    fired: Vec<(u32, Duration)>,
    cancel_me: Option<TimerId>,
}

enum AlarmMsg {
    Arm(u32, Duration),
    ArmAndCancel(u32, Duration),
    Every(Duration),
    Fired(u32),
    Log(Reply<Vec<(u32, Duration)>>),
}

impl Actor for Alarm {
    type Msg = AlarmMsg;
    fn handle(&mut self, msg: AlarmMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AlarmMsg::Arm(id, d) => {
                ctx.send_after(d, AlarmMsg::Fired(id));
            }
            AlarmMsg::ArmAndCancel(id, d) => {
                let t = ctx.send_after(d, AlarmMsg::Fired(id));
                assert!(ctx.cancel_timer(t), "a pending timer cancels");
                assert!(!ctx.cancel_timer(t), "twice is a no-op");
            }
            AlarmMsg::Every(d) => {
                let mut n = 100;
                self.cancel_me = Some(ctx.interval(d, move || {
                    n += 1;
                    AlarmMsg::Fired(n)
                }));
            }
            AlarmMsg::Fired(id) => {
                self.fired.push((id, ctx.now()));
                if id == 103
                    && let Some(t) = self.cancel_me.take()
                {
                    assert!(ctx.cancel_timer(t));
                }
            }
            AlarmMsg::Log(r) => r.send(self.fired.clone()),
        }
    }
}

fn alarm() -> Alarm {
    Alarm {
        fired: Vec::new(),
        cancel_me: None,
    }
}

/// What `a` recorded so far: each timer message's id and the virtual time it arrived.
fn log(kit: &TestKit, a: &Addr<Alarm>) -> Vec<(u32, Duration)> {
    kit.ask(a, AlarmMsg::Log).unwrap()
}

// send_after fires on the first tick at or after its deadline, and a cancelled one never does.
#[test]
fn send_after_fires_when_virtual_time_reaches_the_deadline() {
    let kit = TestKit::new(2);
    let a = kit.spawn_on(1, alarm());
    a.tell(AlarmMsg::Arm(1, Duration::from_millis(10))).unwrap();
    a.tell(AlarmMsg::Arm(2, Duration::from_millis(5))).unwrap();
    a.tell(AlarmMsg::ArmAndCancel(3, Duration::from_millis(1)))
        .unwrap();
    kit.run_until_idle();
    kit.advance(Duration::from_millis(4));
    assert_eq!(log(&kit, &a), vec![]);
    kit.advance(Duration::from_millis(1));
    assert_eq!(log(&kit, &a), vec![(2, Duration::from_millis(5))]);
    kit.advance(Duration::from_millis(100));
    assert_eq!(
        log(&kit, &a),
        vec![
            (2, Duration::from_millis(5)),
            (1, Duration::from_millis(105))
        ],
        "the 10 ms timer fires at the first step after its deadline, here 105 ms"
    );
}

// The loop looks at the wheel only once the clock reaches the earliest deadline it knows of:
// a nearer timer armed later, after time moved on and the far one was the only one, still
// fires at its own deadline, and the far one at its own.
#[test]
fn a_near_timer_armed_after_a_far_one_fires_at_its_deadline() {
    let kit = TestKit::new(1);
    let a = kit.spawn_on(0, alarm());
    a.tell(AlarmMsg::Arm(1, Duration::from_millis(100)))
        .unwrap();
    kit.run_until_idle();
    kit.advance(Duration::from_millis(10));
    a.tell(AlarmMsg::Arm(2, Duration::from_millis(5))).unwrap();
    kit.run_until_idle();
    kit.advance(Duration::from_millis(4));
    assert_eq!(log(&kit, &a), vec![]);
    kit.advance(Duration::from_millis(1));
    assert_eq!(log(&kit, &a), vec![(2, Duration::from_millis(15))]);
    kit.advance(Duration::from_millis(84));
    assert_eq!(log(&kit, &a).len(), 1, "not early");
    kit.advance(Duration::from_millis(1));
    assert_eq!(
        log(&kit, &a),
        vec![
            (2, Duration::from_millis(15)),
            (1, Duration::from_millis(100))
        ]
    );
}

// An interval fires once per period until the actor cancels it.
#[test]
fn interval_repeats_until_cancelled() {
    let kit = TestKit::new(1);
    let a = kit.spawn_on(0, alarm());
    a.tell(AlarmMsg::Every(Duration::from_millis(10))).unwrap();
    kit.run_until_idle();
    for _ in 0..10 {
        kit.advance(Duration::from_millis(10));
    }
    let log = log(&kit, &a);
    let ids: Vec<u32> = log.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![101, 102, 103], "cancelled from the third firing");
    let times: Vec<u64> = log.iter().map(|(_, t)| t.as_millis() as u64).collect();
    assert_eq!(times, vec![10, 20, 30]);
}

/// Answers `Get` only when told to release (holds the replies meanwhile).
struct Slow {
    held: Vec<Reply<u32>>,
}

enum SlowMsg {
    Get(Reply<u32>),
    Release(u32),
}

impl Actor for Slow {
    type Msg = SlowMsg;
    fn handle(&mut self, msg: SlowMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SlowMsg::Get(r) => self.held.push(r),
            SlowMsg::Release(v) => {
                for r in self.held.drain(..) {
                    r.send(v);
                }
            }
        }
    }
}

/// Asks `Slow` with a timeout and records the outcomes.
struct Asker {
    slow: coreactor::Addr<Slow>,
    outcomes: Vec<Result<u32, AskError>>,
}

enum AskerMsg {
    Go(Duration),
    Got(Result<u32, AskError>),
    Outcomes(Reply<Vec<Result<u32, AskError>>>),
}

impl Actor for Asker {
    type Msg = AskerMsg;
    fn handle(&mut self, msg: AskerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AskerMsg::Go(t) => ctx.ask(&self.slow, SlowMsg::Get, t, AskerMsg::Got),
            AskerMsg::Got(r) => self.outcomes.push(r),
            AskerMsg::Outcomes(r) => r.send(self.outcomes.clone()),
        }
    }
}

// A Context::ask across shards times out exactly at its deadline in virtual time; the late
// reply is counted and never delivered; a fresh ask gets its own answer.
#[test]
fn actor_ask_timeout_and_late_reply() {
    let kit = TestKit::new(2);
    let slow = kit.spawn_on(1, Slow { held: Vec::new() });
    let asker = kit.spawn_on(
        0,
        Asker {
            slow: slow.clone(),
            outcomes: Vec::new(),
        },
    );
    asker.tell(AskerMsg::Go(Duration::from_millis(50))).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.pending_asks(0), 1);
    kit.advance(Duration::from_millis(49));
    assert_eq!(kit.ask(&asker, AskerMsg::Outcomes).unwrap(), vec![]);
    kit.advance(Duration::from_millis(1));
    assert_eq!(
        kit.ask(&asker, AskerMsg::Outcomes).unwrap(),
        vec![Err(AskError::Timeout(Duration::from_millis(50)))]
    );
    assert_eq!(kit.pending_asks(0), 0);
    // The late reply is dropped (counted), then a new ask is answered with its own value.
    slow.tell(SlowMsg::Release(7)).unwrap();
    kit.run_until_idle();
    asker.tell(AskerMsg::Go(Duration::from_secs(1))).unwrap();
    kit.run_until_idle();
    slow.tell(SlowMsg::Release(8)).unwrap();
    kit.run_until_idle();
    assert_eq!(
        kit.ask(&asker, AskerMsg::Outcomes).unwrap(),
        vec![Err(AskError::Timeout(Duration::from_millis(50))), Ok(8)]
    );
}
