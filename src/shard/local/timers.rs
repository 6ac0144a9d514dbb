//! Timers of a shard: one-shot actions, intervals (stable ids across re-arming) and the
//! firing step of the loop.

use super::ShardLocal;

use crate::shard::Envelope;
use crate::timer::TimerKey;
use std::time::Duration;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Deliver a user message to an actor of this shard (`send_after`).
    Deliver(Envelope),
    /// Deliver the next message of an interval, then re-arm.
    Interval { index: u32, generation: u32 },
    /// An ask made by an actor of this shard timed out.
    AskTimeout { index: u32, generation: u32 },
    /// Run a closure on the shard.
    Task(Box<dyn FnOnce(&ShardLocal)>),
}

pub(super) struct IntervalEntry {
    generation: u32,
    slot: u32,
    actor_generation: u32,
    period_ticks: u64,
    make: Option<Box<dyn FnMut() -> Envelope>>,
    timer: Option<TimerKey>,
}

impl ShardLocal {
    /// The tick at which an interval of `period_ticks` armed now fires (never early).
    fn interval_deadline(&self, period_ticks: u64) -> u64 {
        self.deadline_tick(Duration::from_nanos(period_ticks * self.params.tick_ns))
    }

    /// Arms a timer.
    pub(crate) fn add_timer(&self, delay: Duration, action: TimerAction) -> TimerKey {
        let tick = self.deadline_tick(delay);
        self.insert_timer(tick, action)
    }

    /// Inserts a timer due at `tick` and lowers the loop's bound of the earliest deadline.
    fn insert_timer(&self, tick: u64, action: TimerAction) -> TimerKey {
        let key = self.timers.borrow_mut().insert(tick, action);
        let due = tick.saturating_mul(self.params.tick_ns);
        if due < self.timer_due_ns.get() {
            self.timer_due_ns.set(due);
        }
        key
    }

    /// Cancels a timer; true if it had not fired yet.
    pub(crate) fn cancel_timer(&self, key: TimerKey) -> bool {
        let action = self.timers.borrow_mut().cancel(key);
        action.is_some()
    }

    /// Registers an interval that makes one envelope per period for the actor at
    /// `(slot, actor_generation)`; returns its `(index, generation)`.
    pub(crate) fn add_interval(
        &self,
        slot: u32,
        actor_generation: u32,
        period: Duration,
        make: Box<dyn FnMut() -> Envelope>,
    ) -> (u32, u32) {
        let period_ticks = (period.as_nanos() as u64)
            .div_ceil(self.params.tick_ns)
            .max(1);
        let (index, generation) = {
            let mut intervals = self.intervals.borrow_mut();
            let index = match self.interval_free.borrow_mut().pop() {
                Some(i) => i,
                None => {
                    intervals.push(IntervalEntry {
                        generation: 0,
                        slot: 0,
                        actor_generation: 0,
                        period_ticks: 0,
                        make: None,
                        timer: None,
                    });
                    (intervals.len() - 1) as u32
                }
            };
            let e = &mut intervals[index as usize];
            e.generation = e.generation.wrapping_add(1);
            e.slot = slot;
            e.actor_generation = actor_generation;
            e.period_ticks = period_ticks;
            e.make = Some(make);
            (index, e.generation)
        };
        let key = self.insert_timer(
            self.interval_deadline(period_ticks),
            TimerAction::Interval { index, generation },
        );
        self.intervals.borrow_mut()[index as usize].timer = Some(key);
        (index, generation)
    }

    /// Cancels an interval; true if it was active.
    pub(crate) fn cancel_interval(&self, index: u32, generation: u32) -> bool {
        let removed = {
            let mut intervals = self.intervals.borrow_mut();
            match intervals.get_mut(index as usize) {
                Some(e) if e.generation == generation && e.make.is_some() => {
                    Some((e.make.take(), e.timer.take()))
                }
                _ => None,
            }
        };
        match removed {
            Some((make, timer)) => {
                if let Some(t) = timer {
                    self.cancel_timer(t);
                }
                self.interval_free.borrow_mut().push(index);
                drop(make);
                true
            }
            None => false,
        }
    }

    pub(super) fn fire_interval(&self, index: u32, generation: u32) {
        let target = {
            let intervals = self.intervals.borrow();
            match intervals.get(index as usize) {
                Some(e) if e.generation == generation && e.make.is_some() => {
                    Some((e.slot, e.actor_generation, e.period_ticks))
                }
                _ => None,
            }
        };
        let Some((slot, actor_generation, period_ticks)) = target else {
            return;
        };
        let alive = self
            .shared
            .table
            .get(slot)
            .is_some_and(|m| m.is_open(actor_generation));
        if !alive {
            self.cancel_interval(index, generation);
            return;
        }
        // Take the closure out while it runs: it is user code and may touch this shard.
        let make = self.intervals.borrow_mut()[index as usize].make.take();
        let Some(mut make) = make else { return };
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut make));
        {
            let mut intervals = self.intervals.borrow_mut();
            let e = &mut intervals[index as usize];
            if e.generation == generation {
                e.make = Some(make);
            }
        }
        if let Ok(env) = made {
            self.deliver_timer_message(env);
        }
        let still = {
            let intervals = self.intervals.borrow();
            intervals[index as usize].generation == generation
                && intervals[index as usize].make.is_some()
        };
        if still {
            let key = self.insert_timer(
                self.interval_deadline(period_ticks),
                TimerAction::Interval { index, generation },
            );
            self.intervals.borrow_mut()[index as usize].timer = Some(key);
        }
    }

    pub(super) fn deliver_timer_message(&self, mut env: Envelope) {
        let user = env.vt.kind == super::super::EnvelopeKind::User;
        let live = self.with_cell(env.slot, env.generation, |cell| {
            cell.timer_fired();
            // User messages count in the mailbox depth; control envelopes (phase timeouts,
            // plugin timers) travel in the control lane and do not.
            if user {
                cell.add_forced(self, 1);
            }
        });
        match live {
            Some(()) => {
                // Mailbox wait starts when the timer fires, not when it was armed.
                env.stamp = self.now_ns();
                env.deliver(self);
            }
            // The actor is gone: its own timer dies with it.
            _ => drop(env),
        }
    }

    pub(super) fn fire_timers(&self) -> bool {
        // One comparison while nothing is due: the loop runs this every iteration, and most
        // find no timer due (or none armed).
        if self.now_ns() < self.timer_due_ns.get() {
            return false;
        }
        let now_tick = self.now_tick();
        let due = self.timers.borrow().next_deadline();
        let (any, next) = match due {
            // Exact again after firing: what fired re-armed (intervals) or armed timers through
            // `insert_timer`, which only lowers the bound, so the wheel is looked at once more.
            Some(d) if d <= now_tick => {
                let any = self.fire_due(now_tick);
                (any, self.timers.borrow().next_deadline())
            }
            // Nothing due (the bound was left low by a cancel): the look just taken is exact.
            _ => (false, due),
        };
        self.timer_due_ns
            .set(next.map_or(u64::MAX, |d| d.saturating_mul(self.params.tick_ns)));
        any
    }

    /// Advances the wheel to `now_tick` and runs what fired; true if anything did.
    fn fire_due(&self, now_tick: u64) -> bool {
        let mut fired = std::mem::take(&mut *self.fired.borrow_mut());
        self.timers.borrow_mut().advance(now_tick, &mut fired);
        let any = !fired.is_empty();
        for (_, action) in fired.drain(..) {
            match action {
                TimerAction::Deliver(env) => self.deliver_timer_message(env),
                TimerAction::Interval { index, generation } => {
                    self.fire_interval(index, generation)
                }
                TimerAction::AskTimeout { index, generation } => {
                    self.ask_timed_out(index, generation)
                }
                TimerAction::Task(f) => f(self),
            }
        }
        *self.fired.borrow_mut() = fired;
        any
    }

    /// The earliest timer deadline as a delay from now (a lower bound), if any.
    pub(super) fn next_timer_delay(&self) -> Option<Duration> {
        let tick = self.timers.borrow().next_deadline()?;
        let at = tick.saturating_mul(self.params.tick_ns);
        Some(Duration::from_nanos(at.saturating_sub(self.now_ns())))
    }
}
