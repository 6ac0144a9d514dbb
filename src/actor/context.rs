//! The handler context: what an actor can do while it handles a message.

use super::actor_ref::ActorRef;
use super::addr::{Addr, Vt};
use super::ask::{Pending, Reply};
use super::cell::{ActorCell, Control, Supervision};
use super::lifecycle::{ChildOptions, Plugin, State, SystemMsg};
use super::{Actor, StopReason};
use crate::error::{AskError, SpawnError};
use crate::shard::{ShardLocal, TimerAction};
use crate::timer::TimerKey;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

/// Identifies a timer armed by [`Context::send_after`] or [`Context::interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(TimerIdKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimerIdKind {
    Once(TimerKey),
    Interval(u32, u32),
}

/// What an actor may do while it handles a message: learn its address, send, ask, spawn,
/// arm timers, stop. Obtained only as the argument of the [`Actor`] methods.
pub struct Context<'a, A: Actor> {
    shard: &'a ShardLocal,
    cell: &'a ActorCell<A>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, A: Actor> Context<'a, A> {
    pub(crate) fn new(shard: &'a ShardLocal, cell: &'a ActorCell<A>) -> Self {
        Context {
            shard,
            cell,
            _not_send: PhantomData,
        }
    }

    /// This actor's address.
    pub fn addr(&self) -> Addr<A> {
        let (shared, slot, generation) = self.cell.identity(self.shard);
        Addr::new(shared, slot, generation)
    }

    /// The shard this actor runs on.
    pub fn shard_id(&self) -> usize {
        self.shard.id
    }

    /// How many shards the runtime has.
    pub fn shard_count(&self) -> usize {
        self.shard.peers.len()
    }

    /// Every shard of the runtime, by id.
    pub(crate) fn shards(&self) -> &[crate::sync::Arc<crate::shard::ShardShared>] {
        &self.shard.peers
    }

    /// Shard `shard`'s shared half, or the typed error for a shard that does not exist.
    fn peer(
        &self,
        shard: usize,
    ) -> Result<&crate::sync::Arc<crate::shard::ShardShared>, SpawnError> {
        let peers = &self.shard.peers;
        peers.get(shard).ok_or(SpawnError::NoSuchShard {
            shard,
            shards: peers.len(),
        })
    }

    /// The shard's clock: time since the runtime started, refreshed once per loop iteration
    /// (virtual under the test kit).
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.shard.now_ns())
    }

    /// Stops this actor once the current message is handled: its S-phase runs (plugins
    /// release what it holds), then messages still queued become dead letters and
    /// [`Actor::stopped`] runs with [`StopReason::Normal`].
    pub fn stop(&mut self) {
        self.cell.request_stop(StopReason::Normal);
    }

    /// Like [`stop`](Self::stop), with a reason of the caller's choice (for example
    /// [`StopReason::Failed`] to report a failure to the supervisor).
    pub fn stop_with(&mut self, reason: StopReason) {
        self.cell.request_stop(reason);
    }

    /// This actor's lifecycle state.
    pub fn state(&self) -> State {
        self.cell.state()
    }

    /// This actor as an untyped reference (what links, monitors and supervisors hold).
    pub fn actor_ref(&self) -> ActorRef {
        self.cell.self_ref(self.shard)
    }

    /// This actor's supervisor, if it has one.
    pub fn parent(&self) -> Option<ActorRef> {
        self.cell.parent().cloned()
    }

    /// The I-phase and S-phase timeouts this actor runs with (its supervisor's choice, or the
    /// defaults).
    pub fn options(&self) -> &ChildOptions {
        self.cell.options()
    }

    /// Delivers `msg` to this actor's own plugins, through the control lane, after `delay`
    /// (plugins use it for their protocol timeouts).
    pub fn control_after<M: std::any::Any + Send>(&mut self, delay: Duration, msg: M) -> TimerId {
        let env = Vt::<A>::control(
            self.cell.slot,
            self.cell.generation,
            Control::System(SystemMsg::new(msg)),
        );
        self.cell.pin();
        TimerId(TimerIdKind::Once(
            self.shard.add_timer(delay, TimerAction::Deliver(env)),
        ))
    }

    /// Runs `f` on this actor's plugin of type `P`; `None` if it has none (or `P` is the
    /// plugin being called right now).
    pub fn with_plugin<P: Plugin<A>, R>(
        &mut self,
        f: impl FnOnce(&mut P, &mut Context<'_, A>) -> R,
    ) -> Option<R> {
        let cell = self.cell;
        cell.with_plugin(self, f)
    }

    /// Adds the plugin `make` builds at `rank` (position in the I-phase order) unless one of
    /// type `P` is there, and reopens its I-phase: built-in plugins call this when the actor
    /// asks them for work.
    pub(crate) fn ensure_plugin<P: Plugin<A>>(&mut self, rank: u32, make: impl FnOnce() -> P) {
        self.cell.ensure_plugin(rank, make);
    }

    /// Spawns a child of this actor on shard `shard`, built there by `factory`: this actor is
    /// its supervisor. The child runs its I-phase with the timeouts in `opts`, then reports
    /// [`ChildEvent::Initialized`](crate::lifecycle::ChildEvent::Initialized) to this actor's
    /// plugins and waits for [`start_child`](Self::start_child); when it shuts down this
    /// actor's plugins receive [`ChildEvent::Down`](crate::lifecycle::ChildEvent::Down).
    /// [`Supervisor`](crate::supervisor::Supervisor) is built on this.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_child_on<B, F>(
        &mut self,
        shard: usize,
        opts: ChildOptions,
        factory: F,
    ) -> Result<Addr<B>, SpawnError>
    where
        B: Actor,
        F: FnOnce() -> B + Send + 'static,
    {
        let target = self.peer(shard)?;
        let supervision = Supervision {
            parent: Some(self.actor_ref()),
            opts,
        };
        crate::runtime::spawn_remote_with(target, factory, supervision, None)
    }

    /// Spawns a **migratable** actor on shard `shard`, built there by `factory`: when its
    /// shard is busy and another is idle, the work-stealing layer may move it (its address,
    /// ordering and supervision are unaffected; see `docs/architecture.md`). Its state must be
    /// `Send` and own nothing shard-bound: it may not register file descriptors.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_migratable_on<B, F>(
        &mut self,
        shard: usize,
        factory: F,
    ) -> Result<Addr<B>, SpawnError>
    where
        B: Actor + Send,
        F: FnOnce() -> B + Send + 'static,
    {
        let target = self.peer(shard)?;
        crate::runtime::spawn_remote_with(
            target,
            factory,
            Supervision::none(),
            Some(super::cell::pack_cell::<B>),
        )
    }

    /// [`spawn_child_on`](Self::spawn_child_on) for a **migratable** child (see
    /// [`spawn_migratable_on`](Self::spawn_migratable_on)): work stealing may move it, its
    /// supervisor keeps supervising it through its unchanged address.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_migratable_child_on<B, F>(
        &mut self,
        shard: usize,
        opts: ChildOptions,
        factory: F,
    ) -> Result<Addr<B>, SpawnError>
    where
        B: Actor + Send,
        F: FnOnce() -> B + Send + 'static,
    {
        let target = self.peer(shard)?;
        let supervision = Supervision {
            parent: Some(self.actor_ref()),
            opts,
        };
        crate::runtime::spawn_remote_with(
            target,
            factory,
            supervision,
            Some(super::cell::pack_cell::<B>),
        )
    }

    /// Sends a child its start signal (it becomes operational if it is initialized).
    pub fn start_child(&mut self, child: &ActorRef) {
        let _ = child.send_control(Control::Start);
    }

    /// Spawns an actor on this shard. The actor need not be `Send`.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShardFull`] when the shard holds `max_actors` actors,
    /// [`SpawnError::Shutdown`] during shutdown.
    pub fn spawn<B: Actor>(&mut self, actor: B) -> Result<Addr<B>, SpawnError> {
        spawn_local(self.shard, actor)
    }

    /// Spawns an actor on shard `shard`, built there by `factory` (so whatever it owns is created
    /// on the thread that will use it). Returns its address at once; messages sent to it before
    /// it is installed are kept and delivered in order.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_on<B, F>(&mut self, shard: usize, factory: F) -> Result<Addr<B>, SpawnError>
    where
        B: Actor,
        F: FnOnce() -> B + Send + 'static,
    {
        let target = self.peer(shard)?;
        crate::runtime::spawn_remote(target, factory)
    }

    /// Delivers `msg` to this actor itself, after the messages already queued, bypassing
    /// the mailbox bound (like timer and I/O messages): for notifications that must not be
    /// refused, such as a monitor's DOWN or a plugin's completion.
    pub fn notify(&mut self, msg: A::Msg) {
        let env = Vt::<A>::user(
            self.cell.slot,
            self.cell.generation,
            self.shard.now_ns(),
            msg,
        );
        self.cell.meta(self.shard).add_forced(1);
        self.shard.push_local(env);
    }

    /// Sends `msg` to this actor itself after `delay` (bypassing the mailbox bound).
    pub fn send_after(&mut self, delay: Duration, msg: A::Msg) -> TimerId {
        let env = Vt::<A>::user(
            self.cell.slot,
            self.cell.generation,
            self.shard.now_ns(),
            msg,
        );
        self.cell.pin();
        TimerId(TimerIdKind::Once(
            self.shard.add_timer(delay, TimerAction::Deliver(env)),
        ))
    }

    /// Sends this actor the message made by `make` every `period`, until cancelled or the actor
    /// stops.
    pub fn interval(
        &mut self,
        period: Duration,
        mut make: impl FnMut() -> A::Msg + 'static,
    ) -> TimerId {
        let (slot, generation) = (self.cell.slot, self.cell.generation);
        self.cell.pin();
        let (index, gen_) = self.shard.add_interval(
            slot,
            generation,
            period,
            Box::new(move || Vt::<A>::user(slot, generation, 0, make())),
        );
        TimerId(TimerIdKind::Interval(index, gen_))
    }

    /// Cancels a timer; true if it had not fired yet (for an interval: if it was active).
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let cancelled = match id.0 {
            TimerIdKind::Once(key) => self.shard.cancel_timer(key),
            TimerIdKind::Interval(index, generation) => {
                self.shard.cancel_interval(index, generation)
            }
        };
        if cancelled {
            self.cell.unpin();
        }
        cancelled
    }

    /// Asks another actor without blocking: `make` builds the request around a [`Reply`];
    /// when the reply (or an error: timeout, full mailbox, closed, dropped) arrives, `then`
    /// turns it into a message for this actor, which is handled like any other.
    ///
    /// Nothing blocks: the shard keeps running while the ask is pending.
    pub fn ask<B, T, F>(
        &mut self,
        to: &Addr<B>,
        make: impl FnOnce(Reply<T>) -> B::Msg,
        timeout: Duration,
        then: F,
    ) where
        B: Actor,
        T: Send + 'static,
        F: FnOnce(Result<T, AskError>) -> A::Msg + Send + 'static,
    {
        let pending = Pending::<A, T, F> {
            slot: self.cell.slot,
            generation: self.cell.generation,
            timeout,
            then,
            _types: PhantomData,
        };
        self.cell.pin();
        let (index, generation) = self.shard.add_ask(Box::new(pending), timeout);
        let reply = Reply::for_actor(self.shard.shared.clone(), index, generation);
        let msg = make(reply);
        if let Err(e) = to.try_tell(msg) {
            // Settle first: the request's `Reply`, dropped with it, comes back as a dropped
            // reply, and the ask then completes with this error.
            let err = AskError::from_send(&e, self.shard.rt.is_shutting_down());
            self.shard.ask_send_failed(index, generation, err);
            drop(e);
        }
    }
}

/// Spawns `actor` on the current shard (installed at once).
pub(crate) fn spawn_local<B: Actor>(shard: &ShardLocal, actor: B) -> Result<Addr<B>, SpawnError> {
    if shard.rt.is_shutting_down() || shard.is_stopping() {
        return Err(SpawnError::Shutdown);
    }
    let (slot, generation) = shard
        .shared
        .table
        .reserve()
        .ok_or_else(|| crate::runtime::shard_full(&shard.shared))?;
    shard.install(
        slot,
        generation,
        Rc::new(ActorCell::new(slot, generation, actor, Supervision::none())),
    );
    Ok(Addr::new(shard.shared.clone(), slot, generation))
}

/// Installs on `shard` (the current shard) the actor built by `factory` in a slot reserved for
/// it. A panicking factory closes the slot: messages sent meanwhile become dead letters.
pub(crate) fn install_remote<B, F>(
    shard: &ShardLocal,
    slot: u32,
    generation: u32,
    factory: F,
    supervision: Supervision,
    packer: Option<super::cell::Packer<B>>,
) where
    B: Actor,
    F: FnOnce() -> B,
{
    if shard.is_stopping() {
        shard.abandon_reserved(slot);
        return;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(factory)) {
        Ok(actor) => {
            let mut cell = ActorCell::new(slot, generation, actor, supervision);
            if let Some(p) = packer {
                cell = cell.with_packer(p);
            }
            shard.install(slot, generation, Rc::new(cell))
        }
        Err(p) => {
            shard.shared.counters.bump_panics();
            shard.abandon_reserved(slot);
            // A supervisor learns that its child never came up.
            if let Some(parent) = supervision.parent {
                let child = ActorRef::of::<B>(shard.shared.clone(), slot, generation);
                let _ = parent.send_system(super::lifecycle::ChildEvent::Down {
                    child,
                    reason: StopReason::InitFailed(std::sync::Arc::new(StopReason::Panicked(
                        super::panic_message(&*p),
                    ))),
                    started: false,
                });
            }
        }
    }
}

#[cfg(not(coreactor_loom))]
impl<A: Actor> Context<'_, A> {
    /// Registers `fd` with this shard's epoll instance: every readiness event becomes the
    /// message `on_ready` makes, delivered to this actor on its own shard (bypassing the mailbox
    /// bound, like a timer message). Level-triggered interests give a message at every poll
    /// while the fd stays ready; edge-triggered ones (`Interest::READABLE.edge_triggered()`)
    /// one per change, after which the actor must read or write until `WouldBlock`. The fd
    /// stays owned by the caller; it is deregistered automatically when this actor stops.
    ///
    /// # Errors
    ///
    /// The `epoll_ctl` error (for example `EEXIST` if the fd is already registered on this
    /// shard, `EPERM` for a regular file).
    pub fn register_io(
        &mut self,
        fd: &impl std::os::fd::AsRawFd,
        interest: crate::io::Interest,
        mut on_ready: impl FnMut(crate::io::Readiness) -> A::Msg + 'static,
    ) -> std::io::Result<crate::io::IoToken> {
        if self.cell.is_migratable() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a migratable actor cannot own a file descriptor: spawn it pinned",
            ));
        }
        let (slot, generation) = (self.cell.slot, self.cell.generation);
        self.shard.register_io(
            fd.as_raw_fd(),
            interest,
            slot,
            generation,
            Box::new(move |r| Vt::<A>::user(slot, generation, 0, on_ready(r))),
        )
    }

    /// Changes the interest set of a registration.
    ///
    /// # Errors
    ///
    /// `NotFound` for a token that is not registered, or the `epoll_ctl` error.
    pub fn reregister_io(
        &mut self,
        token: crate::io::IoToken,
        interest: crate::io::Interest,
    ) -> std::io::Result<()> {
        self.shard.reregister_io(token, interest)
    }

    /// Removes a registration (no more events for it).
    ///
    /// # Errors
    ///
    /// `NotFound` for a token that is not registered, or the `epoll_ctl` error.
    pub fn deregister_io(&mut self, token: crate::io::IoToken) -> std::io::Result<()> {
        self.shard.deregister_io(token)
    }
}
