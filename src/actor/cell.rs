//! The typed actor cell: an actor, its mailbox and its control lane, as one shard runs them.

use super::context::Context;
use super::{Actor, StopReason, panic_message};
use crate::shard::table::SlotMeta;
use crate::shard::{Cell, DeadLetter, DeadLetterReason, ShardLocal, Turn};
use crate::stats::ShardCounters;
use crate::sync::atomic::Ordering;
use std::any::Any;
use std::cell::{Cell as StdCell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A message waiting in a mailbox, with the time it was sent.
pub(crate) struct Queued<M> {
    pub(crate) msg: M,
    pub(crate) stamp: u64,
}

/// A control message: handled before any user message.
pub(crate) enum Control {
    /// Stop after the current message.
    Stop(StopReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Running,
    Stopped,
}

/// An actor as its shard holds it.
pub(crate) struct ActorCell<A: Actor> {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    state: StdCell<State>,
    actor: RefCell<Option<A>>,
    mailbox: RefCell<VecDeque<Queued<A::Msg>>>,
    control: RefCell<VecDeque<Control>>,
    stop: RefCell<Option<StopReason>>,
    /// Set when a stop is requested or a control message queued: checked after every message,
    /// so it is one `Cell` read instead of two `RefCell` borrows.
    interrupt: StdCell<bool>,
}

impl<A: Actor> ActorCell<A> {
    pub(crate) fn new(slot: u32, generation: u32, actor: A) -> Self {
        ActorCell {
            slot,
            generation,
            state: StdCell::new(State::New),
            actor: RefCell::new(Some(actor)),
            mailbox: RefCell::new(VecDeque::new()),
            control: RefCell::new(VecDeque::new()),
            stop: RefCell::new(None),
            interrupt: StdCell::new(false),
        }
    }

    /// True while the actor takes messages.
    #[inline]
    pub(crate) fn accepting(&self) -> bool {
        self.state.get() != State::Stopped
    }

    /// Appends a user message (already admitted and counted).
    #[inline]
    pub(crate) fn push(&self, msg: A::Msg, stamp: u64) {
        self.mailbox.borrow_mut().push_back(Queued { msg, stamp });
    }

    /// Appends a control message.
    pub(crate) fn push_control(&self, c: Control) {
        self.control.borrow_mut().push_back(c);
        self.interrupt.set(true);
    }

    /// Asks the actor to stop after the current message (first reason wins).
    pub(crate) fn request_stop(&self, reason: StopReason) {
        let mut stop = self.stop.borrow_mut();
        if stop.is_none() {
            *stop = Some(reason);
        }
        self.interrupt.set(true);
    }

    fn stop_requested(&self) -> bool {
        self.stop.borrow().is_some()
    }

    fn meta<'s>(&self, shard: &'s ShardLocal) -> &'s SlotMeta {
        shard
            .shared
            .table
            .get(self.slot)
            .expect("a live actor's slot exists in the table")
    }

    fn call_started(&self, shard: &ShardLocal) {
        let mut actor = self.actor.borrow_mut();
        let Some(a) = actor.as_mut() else { return };
        let mut ctx = Context::new(shard, self);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| a.started(&mut ctx))) {
            shard.shared.counters.bump_panics();
            self.request_stop(StopReason::Panicked(panic_message(&*p)));
        }
    }

    fn run_controls(&self) {
        self.interrupt.set(self.stop.borrow().is_some());
        loop {
            let c = self.control.borrow_mut().pop_front();
            match c {
                None => break,
                Some(Control::Stop(reason)) => self.request_stop(reason),
            }
        }
    }

    fn run_messages(&self, shard: &ShardLocal, budget: usize) -> usize {
        let mut actor = self.actor.borrow_mut();
        let Some(a) = actor.as_mut() else { return 0 };
        // One clock read per turn, not per message: on this class of machine a clock read costs
        // about as much as handling a small message (see docs/benchmarks.md).
        let turn_start = shard.now_ns();
        let mut handled = 0usize;
        let mut wait_ns = 0u64;
        // One `catch_unwind` per turn: the counters live outside the closure, so after a panic
        // they still say how many messages were taken (the panicking one included).
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut ctx = Context::new(shard, self);
            while handled < budget {
                let q = self.mailbox.borrow_mut().pop_front();
                let Some(q) = q else { break };
                handled += 1;
                wait_ns += turn_start.saturating_sub(q.stamp);
                a.handle(q.msg, &mut ctx);
                if self.interrupt.get() {
                    break;
                }
            }
        }));
        if let Err(p) = result {
            shard.shared.counters.bump_panics();
            self.request_stop(StopReason::Panicked(panic_message(&*p)));
        }
        drop(actor);
        if handled > 0 {
            let busy_ns = shard.end_turn();
            let max_ns = busy_ns;
            let meta = self.meta(shard);
            meta.sub(handled as u32);
            let s = &meta.stats;
            let add = |c: &crate::sync::atomic::AtomicU64, n: u64| {
                c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed)
            };
            add(&s.processed, handled as u64);
            add(&s.busy_ns, busy_ns);
            add(&s.wait_ns, wait_ns);
            if max_ns > s.max_ns.load(Ordering::Relaxed) {
                s.max_ns.store(max_ns, Ordering::Relaxed);
            }
            ShardCounters::add(&shard.shared.counters.handled, handled as u64);
        }
        handled
    }

    /// Stops the actor: closes its address, turns queued messages into dead letters, calls
    /// `stopped`, and drops the actor.
    fn finish_stop(&self, shard: &ShardLocal, reason: StopReason) {
        let was_running = self.state.replace(State::Stopped) == State::Running;
        let meta = self.meta(shard);
        meta.close();
        let dead_reason = if reason == StopReason::Shutdown {
            DeadLetterReason::Shutdown
        } else {
            DeadLetterReason::ActorStopped
        };
        let queued = std::mem::take(&mut *self.mailbox.borrow_mut());
        meta.sub(queued.len() as u32);
        for q in queued {
            report_dead_letter(
                shard,
                self.slot,
                std::any::type_name::<A::Msg>(),
                dead_reason,
            );
            drop(q);
        }
        self.control.borrow_mut().clear();
        // Before the actor (and the fds it owns) is dropped, so a closed fd's number is never
        // confused with a new one.
        shard.deregister_actor_io(self.slot);
        let actor = self.actor.borrow_mut().take();
        if let Some(mut a) = actor.filter(|_| was_running) {
            let mut ctx = Context::new(shard, self);
            if catch_unwind(AssertUnwindSafe(|| a.stopped(&reason, &mut ctx))).is_err() {
                shard.shared.counters.bump_panics();
            }
            drop(a);
        }
    }
}

/// Counts one dead letter and reports it to the runtime's hook.
pub(crate) fn report_dead_letter(
    shard: &ShardLocal,
    slot: u32,
    message_type: &'static str,
    reason: DeadLetterReason,
) {
    shard.rt.dead_letters.fetch_add(1, Ordering::Relaxed);
    ShardCounters::bump_shared(&shard.shared.counters.dead_letters);
    if let Some(hook) = &shard.rt.hook {
        hook(&DeadLetter {
            shard: shard.id,
            slot,
            message_type,
            reason,
        });
    }
}

impl<A: Actor> Cell for ActorCell<A> {
    fn run(&self, shard: &ShardLocal, budget: usize) -> Turn {
        if self.state.get() == State::Stopped {
            return Turn::Stopped;
        }
        if self.state.get() == State::New {
            self.state.set(State::Running);
            self.call_started(shard);
        }
        self.run_controls();
        if !self.stop_requested() {
            self.run_messages(shard, budget);
            self.run_controls();
        }
        let stop = self.stop.borrow_mut().take();
        if let Some(reason) = stop {
            self.finish_stop(shard, reason);
            return Turn::Stopped;
        }
        if self.mailbox.borrow().is_empty() && self.control.borrow().is_empty() {
            Turn::Idle
        } else {
            Turn::More
        }
    }

    fn abort(&self, shard: &ShardLocal) {
        if self.state.get() != State::Stopped {
            self.finish_stop(shard, StopReason::Shutdown);
        }
    }

    fn has_work(&self) -> bool {
        !self.mailbox.borrow().is_empty() || !self.control.borrow().is_empty()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
