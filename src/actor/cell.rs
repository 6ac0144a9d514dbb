//! The typed actor cell: an actor, its mailbox, its control lane and its lifecycle (the state
//! machine of [`lifecycle`](super::lifecycle)), as one shard runs them.
//!
//! A turn: (1) install → I-phase start, (2) control messages (stop, start, plugin protocol
//! messages, phase timeouts), (3) up to `batch_budget` user messages, interrupted as soon as a
//! control message arrives or a stop is requested, (4) controls again, (5) settle: apply a
//! requested stop and poll the plugins of the current phase, (6) on `ShutDown`, finish.

use super::actor_ref::ActorRef;
use super::context::Context;
use super::lifecycle::{
    ChildEvent, ChildOptions, LifecycleError, Plugin, Progress, State, SystemMsg,
};
use super::reason::StopReason;
use super::{Actor, panic_message};
use crate::shard::table::SlotMeta;
use crate::shard::{
    Cell, DeadLetter, DeadLetterReason, HomeId, Movable, ShardLocal, TimerAction, Turn,
};
use crate::stats::ShardCounters;

use crate::sync::atomic::Ordering;
use crate::timer::TimerKey;
use std::any::Any;
use std::cell::{Cell as StdCell, RefCell};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A message waiting in a mailbox, with the time it was sent.
pub(crate) struct Queued<M> {
    pub(crate) msg: M,
    pub(crate) stamp: u64,
}

/// An actor's user-message queue. The first message waits inline: an actor that never has
/// more than one message queued at a time (a short-lived worker, a request/response server
/// under closed-loop load) never allocates a queue buffer.
///
/// Invariant: `head`, when set, is older than every message in `rest` (a message goes to
/// `head` only when the whole queue is empty).
pub(crate) struct Mailbox<M> {
    head: Option<Queued<M>>,
    rest: VecDeque<Queued<M>>,
}

impl<M> Default for Mailbox<M> {
    fn default() -> Self {
        Mailbox {
            head: None,
            rest: VecDeque::new(),
        }
    }
}

impl<M> Mailbox<M> {
    /// Appends at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, q: Queued<M>) {
        if self.head.is_none() && self.rest.is_empty() {
            self.head = Some(q);
        } else {
            self.rest.push_back(q);
        }
    }

    /// Takes the oldest message.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Queued<M>> {
        match self.head.take() {
            Some(q) => Some(q),
            None => self.rest.pop_front(),
        }
    }

    /// Number of queued messages.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none() && self.rest.is_empty()
    }
}

impl<M> IntoIterator for Mailbox<M> {
    type Item = Queued<M>;
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<Queued<M>>,
        std::collections::vec_deque::IntoIter<Queued<M>>,
    >;

    /// Oldest first.
    fn into_iter(self) -> Self::IntoIter {
        self.head.into_iter().chain(self.rest)
    }
}

/// A control message: handled before any user message, never refused for a full mailbox.
pub(crate) enum Control {
    /// Begin the S-phase with this reason (first reason wins).
    Stop(StopReason),
    /// The supervisor's start signal (Initialized → Operational).
    Start,
    /// A protocol message for the plugins.
    System(SystemMsg),
    /// The phase timer armed in phase epoch `.0` expired.
    PhaseTimeout(u32),
}

/// Who supervises an actor and with which timeouts.
pub(crate) struct Supervision {
    pub(crate) parent: Option<ActorRef>,
    pub(crate) opts: ChildOptions,
}

impl Supervision {
    pub(crate) fn none() -> Supervision {
        Supervision {
            parent: None,
            opts: ChildOptions::default(),
        }
    }

    /// True for [`Supervision::none`]: no supervisor and the default timeouts.
    pub(crate) fn is_none(&self) -> bool {
        let d = ChildOptions::default();
        self.parent.is_none()
            && self.opts.init_timeout == d.init_timeout
            && self.opts.shutdown_timeout == d.shutdown_timeout
    }
}

/// One plugin in an actor's ordered list.
struct PluginSlot<A: Actor> {
    /// Position key: built-ins have small ranks, the actor's own plugins come after.
    rank: u32,
    /// `None` only while the plugin is being called.
    plugin: Option<Box<dyn Plugin<A>>>,
    init_done: bool,
    shutdown_started: bool,
    shutdown_done: bool,
}

/// Rank of the first of the actor's own plugins ([`Actor::plugins`]).
const USER_PLUGIN_RANK: u32 = 1000;

/// Packs a migratable actor's cell for another shard (monomorphised where `A: Send`).
pub(crate) type Packer<A> = fn(&ActorCell<A>, &ShardLocal, Vec<MovedPlugin<A>>) -> Box<dyn Movable>;

/// A plugin's state travelling with its actor, with its rank.
pub(crate) type MovedPlugin<A> = (u32, Box<dyn super::lifecycle::PluginTransfer<A>>);

/// An actor as its shard holds it.
pub(crate) struct ActorCell<A: Actor> {
    /// Position in the running shard's slab (and table): the actor's identity for this
    /// shard's own bookkeeping (timers, asks, local deliveries).
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    /// Where the actor's address points when it runs away from home (a guest after a
    /// steal); `None` at home, where the address is `(this shard, slot, generation)`.
    home: Option<HomeId>,
    /// Set for migratable actors (spawned as such; their state is `Send`).
    packer: Option<Packer<A>>,
    /// Local references that tie the actor to this shard: pending asks, timers, intervals.
    /// A migratable actor moves only when this is zero.
    pins: StdCell<u32>,
    state: StdCell<State>,
    actor: RefCell<Option<A>>,
    mailbox: RefCell<Mailbox<A::Msg>>,
    control: RefCell<VecDeque<Control>>,
    plugins: RefCell<Vec<PluginSlot<A>>>,
    /// A stop asked for and not yet applied (first reason wins).
    pending_stop: RefCell<Option<StopReason>>,
    /// Why the S-phase runs.
    reason: RefCell<Option<StopReason>>,
    /// The first panic during the S-phase (in `stopping` or a plugin): the actor still goes
    /// down, and its final reason says it failed.
    shutdown_panic: RefCell<Option<String>>,
    /// Set when a stop is requested or a control message queued: checked after every message,
    /// so it is one `Cell` read instead of two `RefCell` borrows.
    interrupt: StdCell<bool>,
    /// Reached `Operational`.
    started: StdCell<bool>,
    /// Something happened since the phase's plugins were last polled (a message, a control
    /// message, a plugin call): `settle` polls only then.
    dirty: StdCell<bool>,
    supervision: Supervision,
    phase_timer: StdCell<Option<TimerKey>>,
    /// Bumped at every phase change, so a timeout armed for an earlier phase is ignored.
    phase_epoch: StdCell<u32>,
}

impl<A: Actor> ActorCell<A> {
    pub(crate) fn new(slot: u32, generation: u32, actor: A, supervision: Supervision) -> Self {
        ActorCell {
            slot,
            generation,
            home: None,
            packer: None,
            pins: StdCell::new(0),
            state: StdCell::new(State::New),
            actor: RefCell::new(Some(actor)),
            mailbox: RefCell::new(Mailbox::default()),
            control: RefCell::new(VecDeque::new()),
            plugins: RefCell::new(Vec::new()),
            pending_stop: RefCell::new(None),
            reason: RefCell::new(None),
            shutdown_panic: RefCell::new(None),
            interrupt: StdCell::new(false),
            started: StdCell::new(false),
            dirty: StdCell::new(false),
            supervision,
            phase_timer: StdCell::new(None),
            phase_epoch: StdCell::new(0),
        }
    }

    /// True while the actor takes messages.
    #[inline]
    pub(crate) fn accepting(&self) -> bool {
        self.state.get() != State::ShutDown
    }

    /// The lifecycle state.
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// The supervisor, if any.
    pub(crate) fn parent(&self) -> Option<&ActorRef> {
        self.supervision.parent.as_ref()
    }

    /// The phase timeouts this actor runs with.
    pub(crate) fn options(&self) -> &ChildOptions {
        &self.supervision.opts
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

    /// Asks the actor to stop after the current message (first reason wins; ignored once the
    /// S-phase runs).
    pub(crate) fn request_stop(&self, reason: StopReason) {
        let mut stop = self.pending_stop.borrow_mut();
        if stop.is_none() {
            *stop = Some(reason);
        }
        self.interrupt.set(true);
    }

    fn stop_pending(&self) -> bool {
        self.pending_stop.borrow().is_some()
    }

    /// This actor as an untyped reference (its home identity).
    pub(crate) fn self_ref(&self, shard: &ShardLocal) -> ActorRef {
        let (shared, slot, generation) = self.identity(shard);
        ActorRef::of::<A>(shared, slot, generation)
    }

    /// The actor's address identity: its home shard, slot and generation.
    pub(crate) fn identity(
        &self,
        shard: &ShardLocal,
    ) -> (crate::sync::Arc<crate::shard::ShardShared>, u32, u32) {
        match &self.home {
            None => (shard.shared.clone(), self.slot, self.generation),
            Some(h) => (h.shared.clone(), h.slot, h.generation),
        }
    }

    /// Makes the actor migratable.
    pub(crate) fn with_packer(mut self, packer: Packer<A>) -> Self {
        self.packer = Some(packer);
        self
    }

    /// One more local reference (ask, timer, interval) ties the actor to this shard.
    pub(crate) fn pin(&self) {
        self.pins.set(self.pins.get() + 1);
    }

    /// A local reference is gone.
    pub(crate) fn unpin(&self) {
        self.pins.set(self.pins.get().saturating_sub(1));
    }

    /// True for a migratable actor (at home or not).
    #[cfg_attr(coreactor_loom, allow(dead_code))]
    pub(crate) fn is_migratable(&self) -> bool {
        self.packer.is_some()
    }

    /// The slot-table entry the actor's address admits through (at home: this shard's).
    pub(crate) fn meta<'s>(&'s self, shard: &'s ShardLocal) -> &'s SlotMeta {
        match &self.home {
            None => shard.shared.table.get(self.slot),
            Some(h) => h.shared.table.get(h.slot),
        }
        .expect("a live actor's slot exists in the table")
    }

    fn set_state(&self, shard: &ShardLocal, state: State) {
        self.state.set(state);
        self.phase_epoch.set(self.phase_epoch.get().wrapping_add(1));
        self.cancel_phase_timer(shard);
        self.meta(shard).set_lifecycle_state(state as u8);
    }

    fn cancel_phase_timer(&self, shard: &ShardLocal) {
        if let Some(key) = self.phase_timer.take()
            && shard.cancel_timer(key)
        {
            self.unpin();
        }
    }

    fn arm_phase_timer(&self, shard: &ShardLocal, timeout: std::time::Duration) {
        if self.phase_timer.get().is_some() {
            return;
        }
        let env = super::addr::Vt::<A>::control(
            self.slot,
            self.generation,
            Control::PhaseTimeout(self.phase_epoch.get()),
        );
        self.pin();
        self.phase_timer
            .set(Some(shard.add_timer(timeout, TimerAction::Deliver(env))));
    }

    // ----- plugins -------------------------------------------------------------------------

    /// Adds `plugin` at `rank` unless a plugin of its type is there; reopens its I-phase either
    /// way (the actor asked it for more work).
    pub(crate) fn ensure_plugin<P: Plugin<A>>(&self, rank: u32, make: impl FnOnce() -> P) {
        self.dirty.set(true);
        let mut plugins = self.plugins.borrow_mut();
        if let Some(i) = plugins
            .iter_mut()
            .position(|s| s.plugin.as_mut().is_some_and(|p| p.as_any_mut().is::<P>()))
        {
            plugins[i].init_done = false;
            return;
        }
        let at = plugins.partition_point(|s| s.rank <= rank);
        plugins.insert(
            at,
            PluginSlot {
                rank,
                plugin: Some(Box::new(make())),
                init_done: false,
                shutdown_started: false,
                shutdown_done: false,
            },
        );
    }

    /// Runs `f` on the plugin of type `P`, if the actor has one and it is not being called.
    pub(crate) fn with_plugin<P: Plugin<A>, R>(
        &self,
        ctx: &mut Context<'_, A>,
        f: impl FnOnce(&mut P, &mut Context<'_, A>) -> R,
    ) -> Option<R> {
        self.dirty.set(true);
        let mut plugin = {
            let mut plugins = self.plugins.borrow_mut();
            let index = plugins
                .iter_mut()
                .position(|s| s.plugin.as_mut().is_some_and(|p| p.as_any_mut().is::<P>()))?;
            plugins[index].plugin.take()?
        };
        let p = plugin
            .as_any_mut()
            .downcast_mut::<P>()
            .expect("found by type");
        let r = f(p, ctx);
        self.put_back(plugin);
        Some(r)
    }

    fn put_back(&self, plugin: Box<dyn Plugin<A>>) {
        let mut plugins = self.plugins.borrow_mut();
        let s = plugins
            .iter_mut()
            .find(|s| s.plugin.is_none())
            .expect("the slot of the plugin being called");
        s.plugin = Some(plugin);
    }

    /// Takes the plugin at `index` out for a call (None if out of range or busy).
    fn take_plugin(&self, index: usize) -> Option<Box<dyn Plugin<A>>> {
        self.plugins
            .borrow_mut()
            .get_mut(index)
            .and_then(|s| s.plugin.take())
    }

    fn slot_flags(&self, index: usize) -> Option<(bool, bool, bool)> {
        self.plugins
            .borrow()
            .get(index)
            .map(|s| (s.init_done, s.shutdown_started, s.shutdown_done))
    }

    /// Calls `f` with the actor, a context and the plugin at `index`, catching a panic.
    fn call_plugin<R>(
        &self,
        shard: &ShardLocal,
        index: usize,
        f: impl FnOnce(&mut dyn Plugin<A>, &mut A, &mut Context<'_, A>) -> R,
    ) -> Option<Result<R, String>> {
        let mut plugin = self.take_plugin(index)?;
        let mut actor = self.actor.borrow_mut();
        let Some(a) = actor.as_mut() else {
            drop(actor);
            self.put_back(plugin);
            return None;
        };
        let mut ctx = Context::new(shard, self);
        let r = catch_unwind(AssertUnwindSafe(|| f(&mut *plugin, a, &mut ctx)));
        drop(actor);
        self.put_back(plugin);
        Some(r.map_err(|p| {
            shard.shared.counters.bump_panics();
            panic_message(&*p)
        }))
    }

    /// How many plugins the actor has (plugins are looked up by index at every step, so one
    /// inserted during a poll is seen by the next poll).
    fn plugin_count(&self) -> usize {
        self.plugins.borrow().len()
    }

    fn plugin_name(&self, index: usize) -> &'static str {
        self.plugins
            .borrow()
            .get(index)
            .and_then(|s| s.plugin.as_ref().map(|p| p.name()))
            .unwrap_or("?")
    }

    fn mark(&self, index: usize, f: impl FnOnce(&mut PluginSlot<A>)) {
        if let Some(s) = self.plugins.borrow_mut().get_mut(index) {
            f(s);
        }
    }

    // ----- phases --------------------------------------------------------------------------

    /// Calls an actor hook, catching a panic (which requests a stop with `on_panic(msg)`).
    fn call_hook(
        &self,
        shard: &ShardLocal,
        hook: impl FnOnce(&mut A, &mut Context<'_, A>),
        on_panic: impl FnOnce(String) -> StopReason,
    ) {
        let mut actor = self.actor.borrow_mut();
        let Some(a) = actor.as_mut() else { return };
        let mut ctx = Context::new(shard, self);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook(a, &mut ctx))) {
            shard.shared.counters.bump_panics();
            drop(actor);
            self.request_stop(on_panic(panic_message(&*p)));
        }
    }

    /// New → Initializing: `Actor::init`, then the actor's own plugins join the list.
    fn begin_init(&self, shard: &ShardLocal) {
        self.set_state(shard, State::Initializing);
        self.dirty.set(true);
        self.call_hook(
            shard,
            |a, ctx| a.init(ctx),
            |m| StopReason::InitFailed(std::sync::Arc::new(StopReason::Panicked(m))),
        );
        let own = {
            let mut actor = self.actor.borrow_mut();
            let Some(a) = actor.as_mut() else { return };
            match catch_unwind(AssertUnwindSafe(|| a.plugins())) {
                Ok(v) => v,
                Err(p) => {
                    shard.shared.counters.bump_panics();
                    drop(actor);
                    self.request_stop(StopReason::InitFailed(std::sync::Arc::new(
                        StopReason::Panicked(panic_message(&*p)),
                    )));
                    Vec::new()
                }
            }
        };
        let mut plugins = self.plugins.borrow_mut();
        for (i, p) in own.into_iter().enumerate() {
            plugins.push(PluginSlot {
                rank: USER_PLUGIN_RANK + i as u32,
                plugin: Some(p),
                init_done: false,
                shutdown_started: false,
                shutdown_done: false,
            });
        }
    }

    /// Polls the I-phase plugins in order, stopping at the first that is not done.
    fn poll_init(&self, shard: &ShardLocal) {
        let mut i = 0;
        while i < self.plugin_count() {
            if self.state.get() != State::Initializing || self.stop_pending() {
                return;
            }
            if self.slot_flags(i).is_some_and(|f| f.0) {
                i += 1;
                continue;
            }
            match self.call_plugin(shard, i, |p, a, ctx| p.init(a, ctx)) {
                None => return,
                Some(Ok(Progress::Done)) => {
                    self.mark(i, |s| s.init_done = true);
                    // The call may have added or reopened an earlier plugin (a user plugin
                    // asking for a link): start over; done plugins are skipped.
                    i = 0;
                    continue;
                }
                Some(Ok(Progress::Pending)) => {
                    self.arm_phase_timer(shard, self.supervision.opts.init_timeout);
                    return;
                }
                Some(Ok(Progress::Failed(r))) => {
                    self.request_stop(StopReason::InitFailed(std::sync::Arc::new(r)));
                    return;
                }
                Some(Err(m)) => {
                    self.request_stop(StopReason::InitFailed(std::sync::Arc::new(
                        StopReason::Panicked(m),
                    )));
                    return;
                }
            }
        }
        if self.state.get() != State::Initializing || self.stop_pending() {
            return;
        }
        self.set_state(shard, State::Initialized);
        match &self.supervision.parent {
            Some(parent) => {
                let me = self.self_ref(shard);
                if parent.send_system(ChildEvent::Initialized(me)).is_err() {
                    // An orphan: its supervisor is gone before it could start.
                    self.request_stop(StopReason::SupervisorShutdown(std::sync::Arc::new(
                        StopReason::Requested,
                    )));
                }
            }
            None => self.start(shard),
        }
    }

    /// Initialized → Operational: plugins' `start` in reverse order, then `Actor::started`.
    fn start(&self, shard: &ShardLocal) {
        if self.state.get() != State::Initialized {
            return;
        }
        for i in (0..self.plugin_count()).rev() {
            if let Some(Err(m)) = self.call_plugin(shard, i, |p, a, ctx| p.start(a, ctx)) {
                self.request_stop(StopReason::Panicked(m));
            }
        }
        self.set_state(shard, State::Operational);
        self.started.set(true);
        self.call_hook(shard, |a, ctx| a.started(ctx), StopReason::Panicked);
    }

    /// Any state → ShuttingDown (ignored once there): `Actor::stopping`, then every plugin's
    /// `shutdown_start` in reverse order.
    fn begin_shutdown(&self, shard: &ShardLocal, reason: StopReason) {
        if matches!(self.state.get(), State::ShuttingDown | State::ShutDown) {
            return;
        }
        self.set_state(shard, State::ShuttingDown);
        self.dirty.set(true);
        *self.reason.borrow_mut() = Some(reason.clone());
        self.call_hook(
            shard,
            |a, ctx| a.stopping(&reason, ctx),
            StopReason::Panicked,
        );
        // A panic in `stopping` does not start another S-phase: it marks this one as failed.
        if let Some(StopReason::Panicked(m)) = self.pending_stop.borrow_mut().take() {
            self.note_shutdown_panic(m);
        }
        for i in (0..self.plugin_count()).rev() {
            self.mark(i, |s| s.shutdown_started = true);
            if let Some(Err(m)) =
                self.call_plugin(shard, i, |p, a, ctx| p.shutdown_start(&reason, a, ctx))
            {
                self.plugin_panicked_in_shutdown(shard, i, m);
            }
        }
    }

    /// Polls the S-phase plugins in reverse order; finishes when all are done.
    fn poll_shutdown(&self, shard: &ShardLocal) {
        let mut i = self.plugin_count();
        while i > 0 {
            i -= 1;
            let Some((_, started, done)) = self.slot_flags(i) else {
                continue;
            };
            if done {
                continue;
            }
            if !started {
                // Added during the S-phase: it gets its start now.
                self.mark(i, |s| s.shutdown_started = true);
                let reason = self.reason.borrow().clone().unwrap_or(StopReason::Normal);
                let _ = self.call_plugin(shard, i, |p, a, ctx| p.shutdown_start(&reason, a, ctx));
            }
            match self.call_plugin(shard, i, |p, a, ctx| p.shutdown(a, ctx)) {
                None => return,
                Some(Ok(Progress::Done)) => self.mark(i, |s| s.shutdown_done = true),
                Some(Ok(Progress::Pending)) => {
                    self.arm_phase_timer(shard, self.supervision.opts.shutdown_timeout);
                    return;
                }
                Some(Ok(Progress::Failed(e))) => {
                    self.report(
                        shard,
                        LifecycleError::ShutdownFailed {
                            actor: self.self_ref(shard),
                            plugin: self.plugin_name(i),
                            error: e,
                        },
                    );
                    self.mark(i, |s| s.shutdown_done = true);
                }
                Some(Err(m)) => {
                    self.plugin_panicked_in_shutdown(shard, i, m);
                    self.mark(i, |s| s.shutdown_done = true);
                }
            }
        }
        self.finish_stop(shard);
    }

    /// Plugin `i` panicked during the S-phase: the phase goes on, the final reason becomes a
    /// failure, and the panic is reported.
    fn plugin_panicked_in_shutdown(&self, shard: &ShardLocal, i: usize, message: String) {
        self.note_shutdown_panic(message.clone());
        self.report(
            shard,
            LifecycleError::ShutdownFailed {
                actor: self.self_ref(shard),
                plugin: self.plugin_name(i),
                error: StopReason::Panicked(message),
            },
        );
    }

    fn note_shutdown_panic(&self, message: String) {
        let mut p = self.shutdown_panic.borrow_mut();
        if p.is_none() {
            *p = Some(message);
        }
    }

    fn first_pending_shutdown_plugin(&self) -> &'static str {
        let plugins = self.plugins.borrow();
        plugins
            .iter()
            .rev()
            .find(|s| !s.shutdown_done)
            .and_then(|s| s.plugin.as_ref().map(|p| p.name()))
            .unwrap_or("?")
    }

    fn report(&self, shard: &ShardLocal, e: LifecycleError) {
        super::lifecycle::report(&shard.rt, &e);
    }

    /// Applies a requested stop and polls the current phase until nothing changes.
    #[inline(always)]
    fn settle(&self, shard: &ShardLocal) {
        // The common case, a running actor after a turn that only handled messages: a change
        // (`dirty`) matters only to the phases that poll their plugins, so with no stop
        // pending there is nothing to settle.
        if !matches!(self.state.get(), State::Initializing | State::ShuttingDown)
            && !self.stop_pending()
        {
            self.dirty.set(false);
            self.interrupt.set(false);
            return;
        }
        self.settle_changes(shard);
    }

    /// `settle` when a stop is pending or a phase polls its plugins.
    fn settle_changes(&self, shard: &ShardLocal) {
        loop {
            let stop = self.pending_stop.borrow_mut().take();
            if let Some(r) = stop {
                self.begin_shutdown(shard, r);
            }
            let before = self.state.get();
            if self.dirty.replace(false) {
                match before {
                    State::Initializing => self.poll_init(shard),
                    State::ShuttingDown => self.poll_shutdown(shard),
                    _ => {}
                }
            }
            if self.state.get() == before && !self.stop_pending() {
                break;
            }
        }
        self.interrupt.set(false);
    }

    fn on_phase_timeout(&self, shard: &ShardLocal, epoch: u32) {
        if epoch != self.phase_epoch.get() {
            return;
        }
        self.phase_timer.set(None);
        match self.state.get() {
            State::Initializing => self.request_stop(StopReason::InitTimeout),
            State::ShuttingDown => {
                let reason = self.reason.borrow().clone().unwrap_or(StopReason::Normal);
                self.report(
                    shard,
                    LifecycleError::ShutdownTimeout {
                        actor: self.self_ref(shard),
                        plugin: self.first_pending_shutdown_plugin(),
                        reason,
                    },
                );
                self.finish_stop(shard);
            }
            _ => {}
        }
    }

    /// Handles the queued control messages (a check of an empty queue when there are none:
    /// this runs twice per turn).
    #[inline(always)]
    fn run_controls(&self, shard: &ShardLocal) {
        if !self.control.borrow().is_empty() {
            self.run_queued_controls(shard);
        }
    }

    fn run_queued_controls(&self, shard: &ShardLocal) {
        loop {
            let c = self.control.borrow_mut().pop_front();
            let Some(c) = c else { break };
            if self.state.get() == State::ShutDown {
                continue;
            }
            self.dirty.set(true);
            match c {
                Control::Stop(reason) => self.request_stop(reason),
                Control::Start => {
                    if !self.stop_pending() {
                        self.start(shard);
                    }
                }
                Control::PhaseTimeout(epoch) => self.on_phase_timeout(shard, epoch),
                Control::System(msg) => self.dispatch_system(shard, msg),
            }
            if self.stop_pending() && self.state.get() != State::ShuttingDown {
                self.settle(shard);
            }
        }
    }

    /// Offers a protocol message to the plugins in order; one nobody takes is dropped (a late
    /// answer to something already settled, which the protocols allow).
    fn dispatch_system(&self, shard: &ShardLocal, msg: SystemMsg) {
        let mut msg = Some(msg);
        let mut i = 0;
        while i < self.plugin_count() {
            let m = msg.take().expect("present until consumed");
            match self.call_plugin(shard, i, |p, a, ctx| p.control(m, a, ctx)) {
                Some(Ok(None)) => return,
                Some(Ok(Some(back))) => msg = Some(back),
                Some(Err(panic)) => {
                    self.request_stop(StopReason::Panicked(panic));
                    return;
                }
                None => return,
            }
            i += 1;
        }
        let Some(m) = msg else { return };
        let mut actor = self.actor.borrow_mut();
        let Some(a) = actor.as_mut() else { return };
        let mut ctx = Context::new(shard, self);
        // Built-in protocols an actor takes part in without having asked (a link request to a
        // server) install their plugin here and take the message.
        let _late_answer = crate::plugins::unclaimed(m, a, &mut ctx);
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
            self.dirty.set(true);
            let busy_ns = shard.end_turn();
            let max_ns = busy_ns;
            let meta = self.meta(shard);
            meta.sub(handled as u32);
            let s = meta.stats();
            let add = |c: &crate::sync::StatU64, n: u64| {
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

    /// ShutDown: closes the address, turns queued messages into dead letters, deregisters
    /// I/O, drops the plugins, calls `stopped`, drops the actor, and tells the supervisor.
    fn finish_stop(&self, shard: &ShardLocal) {
        let reason = self
            .reason
            .borrow_mut()
            .take()
            .unwrap_or(StopReason::Shutdown);
        // A panic while shutting down is a failure like any other (the supervisor's restart
        // policy sees it), even if the actor was stopping for a normal reason.
        let reason = match self.shutdown_panic.borrow_mut().take() {
            Some(m) if !reason.is_failure() => {
                StopReason::Panicked(format!("{m} (while stopping: {reason})"))
            }
            _ => reason,
        };
        let ever_ran = self.state.get() != State::New;
        self.set_state(shard, State::ShutDown);
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
        self.pending_stop.borrow_mut().take();
        // Before the actor (and the fds it owns) is dropped, so a closed fd's number is never
        // confused with a new one.
        shard.deregister_actor_io(self.slot);
        // Every plugin hears of the end, in reverse order, whether its S-phase finished or
        // was forced (monitors send their DOWN notifications here).
        if ever_ran {
            for i in (0..self.plugin_count()).rev() {
                if let Some(Err(_)) =
                    self.call_plugin(shard, i, |p, a, ctx| p.finished(&reason, a, ctx))
                {
                    // Counted as a panic; the actor is going away regardless.
                }
            }
        }
        let plugins = std::mem::take(&mut *self.plugins.borrow_mut());
        drop(plugins);
        let actor = self.actor.borrow_mut().take();
        if let Some(mut a) = actor.filter(|_| ever_ran) {
            let mut ctx = Context::new(shard, self);
            if catch_unwind(AssertUnwindSafe(|| a.stopped(&reason, &mut ctx))).is_err() {
                shard.shared.counters.bump_panics();
            }
            drop(a);
        }
        if let Some(parent) = &self.supervision.parent {
            let _ = parent.send_system(ChildEvent::Down {
                child: self.self_ref(shard),
                reason,
                started: self.started.get(),
            });
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
        match self.state.get() {
            State::ShutDown => return Turn::Stopped,
            State::New => {
                self.begin_init(shard);
                self.settle(shard);
            }
            _ => {}
        }
        self.run_controls(shard);
        if self.state.get() != State::ShutDown && !self.stop_pending() {
            self.run_messages(shard, budget);
            self.run_controls(shard);
        }
        self.settle(shard);
        if self.state.get() == State::ShutDown {
            return Turn::Stopped;
        }
        if self.has_work() {
            Turn::More
        } else {
            Turn::Idle
        }
    }

    fn abort(&self, shard: &ShardLocal) {
        if self.state.get() != State::ShutDown {
            // Forced: no S-phase, the runtime is going away.
            if self.reason.borrow().is_none() {
                *self.reason.borrow_mut() = Some(StopReason::Shutdown);
            }
            self.finish_stop(shard);
        }
    }

    fn add_forced(&self, shard: &ShardLocal, n: u32) {
        self.meta(shard).add_forced(n);
    }

    fn timer_fired(&self) {
        self.unpin();
    }

    fn migratable(&self) -> bool {
        self.packer.is_some() && self.home.is_none()
    }

    fn pack(&self, shard: &ShardLocal) -> Option<Box<dyn Movable>> {
        let packer = self.packer?;
        let movable = self.home.is_none()
            && self.state.get() == State::Operational
            && self.pins.get() == 0
            && self
                .plugins
                .borrow()
                .iter()
                .all(|s| s.plugin.as_ref().is_some_and(|p| p.can_transfer()))
            && self.pending_stop.borrow().is_none()
            && self.phase_timer.get().is_none()
            && self.actor.borrow().is_some();
        if !movable {
            return None;
        }
        // All or nothing: a plugin refusing at the last moment gets its state back.
        let mut moved = Vec::new();
        for i in 0..self.plugin_count() {
            let mut plugins = self.plugins.borrow_mut();
            let slot = &mut plugins[i];
            match slot.plugin.as_mut().and_then(|p| p.transfer()) {
                Some(t) => moved.push((i, slot.rank, t)),
                None => {
                    for (j, _, t) in moved.drain(..).rev() {
                        plugins[j].plugin = Some(t.attach());
                    }
                    return None;
                }
            }
        }
        let plugins = moved.into_iter().map(|(_, rank, t)| (rank, t)).collect();
        Some(packer(self, shard, plugins))
    }

    fn drain(&self, shard: &ShardLocal) {
        if self.supervision.parent.is_none()
            && !matches!(self.state.get(), State::ShuttingDown | State::ShutDown)
        {
            self.push_control(Control::Stop(StopReason::Shutdown));
            shard.schedule(self.slot);
        }
    }

    fn has_work(&self) -> bool {
        !self.mailbox.borrow().is_empty() || !self.control.borrow().is_empty()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A migratable actor on its way to another shard: everything of its cell that is not tied to
/// the shard it leaves (the actor, its queued messages, its supervision).
struct Moved<A: Actor + Send> {
    actor: A,
    mailbox: Mailbox<A::Msg>,
    control: VecDeque<Control>,
    supervision: Supervision,
    plugins: Vec<MovedPlugin<A>>,
    home: HomeId,
}

/// Packs a cell for migration (see `ActorCell::pack` for when it is allowed). The cell left
/// behind is empty and is dropped by the shard.
pub(crate) fn pack_cell<A: Actor + Send>(
    cell: &ActorCell<A>,
    shard: &ShardLocal,
    plugins: Vec<MovedPlugin<A>>,
) -> Box<dyn Movable> {
    let actor = cell.actor.borrow_mut().take().expect("checked by pack");
    let mailbox = std::mem::take(&mut *cell.mailbox.borrow_mut());
    let control = std::mem::take(&mut *cell.control.borrow_mut());
    let supervision = Supervision {
        parent: cell.supervision.parent.clone(),
        opts: cell.supervision.opts.clone(),
    };
    Box::new(Moved::<A> {
        actor,
        mailbox,
        control,
        supervision,
        plugins,
        home: HomeId {
            shared: shard.shared.clone(),
            slot: cell.slot,
            generation: cell.generation,
        },
    })
}

impl<A: Actor + Send> Movable for Moved<A> {
    fn install(self: Box<Self>, slot: u32, generation: u32, guest: bool) -> std::rc::Rc<dyn Cell> {
        let Moved {
            actor,
            mailbox,
            control,
            supervision,
            plugins,
            home,
        } = *self;
        let mut cell =
            ActorCell::new(slot, generation, actor, supervision).with_packer(pack_cell::<A>);
        if guest {
            cell.home = Some(home);
        }
        cell.state.set(State::Operational);
        cell.started.set(true);
        *cell.plugins.borrow_mut() = plugins
            .into_iter()
            .map(|(rank, t)| PluginSlot {
                rank,
                plugin: Some(t.attach()),
                init_done: true,
                shutdown_started: false,
                shutdown_done: false,
            })
            .collect();
        *cell.mailbox.borrow_mut() = mailbox;
        let interrupt = !control.is_empty();
        *cell.control.borrow_mut() = control;
        cell.interrupt.set(interrupt);
        std::rc::Rc::new(cell)
    }

    fn home(&self) -> &HomeId {
        &self.home
    }
}

#[cfg(test)]
mod tests {
    use super::{Mailbox, Queued};

    fn q(n: u32) -> Queued<u32> {
        Queued { msg: n, stamp: 0 }
    }

    #[test]
    fn mailbox_is_fifo_across_the_inline_head() {
        let mut m = Mailbox::default();
        assert!(m.is_empty());
        m.push_back(q(1));
        m.push_back(q(2));
        m.push_back(q(3));
        assert_eq!(m.len(), 3);
        assert_eq!(m.pop_front().map(|q| q.msg), Some(1));
        // The head is free but older messages wait behind it: a new one goes to the back.
        m.push_back(q(4));
        assert_eq!(m.pop_front().map(|q| q.msg), Some(2));
        assert_eq!(m.pop_front().map(|q| q.msg), Some(3));
        assert_eq!(m.pop_front().map(|q| q.msg), Some(4));
        assert!(m.pop_front().is_none());
        // Empty again: the next message waits inline.
        m.push_back(q(5));
        m.push_back(q(6));
        let all: Vec<u32> = m.into_iter().map(|q| q.msg).collect();
        assert_eq!(all, [5, 6]);
    }
}
