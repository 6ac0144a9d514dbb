//! Monitors (Erlang's): a one-way "tell me when that actor is gone", with the reason chain.
//!
//! Unlike a [link](super::link), a monitor couples no lifecycles: the watched actor (the
//! *target*) does not wait for its watchers, and a watcher is not stopped by the target's end.
//!
//! # Protocol
//!
//! 1. [`Context::monitor`] stores the watcher's callback under a fresh [`MonitorId`] (plugin
//!    [`Monitors`] on the watcher) and sends `Watch{watcher, id}` to the target. If the
//!    target's address is already dead, the DOWN (with [`DownReason::NoSuchActor`]) is
//!    delivered at once.
//! 2. The target installs its [`Monitored`] plugin on demand (through
//!    [`plugins::unclaimed`](super)) and records the watcher. The plugin has the lowest rank,
//!    so it is polled last in the S-phase; it sends `Down{id, reason}` to every watcher in
//!    [`Plugin::finished`], i.e. once the target is `ShutDown` — after its whole S-phase
//!    (links released, names unregistered) or after the S-phase was forced. By then the
//!    target's address is closed: every send to it fails.
//! 3. A `Watch` that reaches a target after it shut down (the message was still queued) is
//!    dropped unprocessed; its destructor then sends the DOWN with
//!    [`DownReason::NoSuchActor`]. So every monitor gets exactly one DOWN, unless the watcher
//!    demonitors it or is itself gone.
//! 4. The watcher turns the DOWN into its own message with the stored callback and delivers it
//!    with [`Context::notify`] (never refused by a full mailbox).
//! 5. [`Context::demonitor`] forgets the callback and sends `Unwatch` to the target; a
//!    watcher that shuts down sends `Unwatch` for every monitor it still holds, so a
//!    long-lived target does not accumulate dead watchers.
//!
//! # Not guaranteed
//!
//! `monitor` is asynchronous: a stop that reaches the target before the watch does (sent by
//! a third actor, or from outside the runtime, right after `monitor`) ends the target first,
//! and the DOWN then says [`DownReason::NoSuchActor`]. A stop sent by the watcher itself after
//! `monitor` follows the watch (FIFO per pair). A DOWN already turned into a message (queued
//! in the watcher's mailbox) is still handled after [`Context::demonitor`]. An actor monitoring itself never gets its own DOWN. On a
//! runtime shutdown no DOWN is delivered (every actor is going away).

#![deny(unsafe_code)]

use super::{MONITORED_RANK, MONITORS_RANK};
use crate::actor::lifecycle::{Plugin, PluginTransfer, SystemMsg};
use crate::{Actor, ActorRef, Context, StopReason};

/// Identifies one monitor of a watcher ([`Context::monitor`]); unique per watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorId(u64);

/// Why a monitored actor is reported down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// It shut down with this reason (the full chain: see [`StopReason::chain`]).
    Stopped(StopReason),
    /// It did not exist (any more) when the monitor was set: its address was dead, or it shut
    /// down before the monitor reached it. Why it stopped is not known.
    NoSuchActor,
}

/// A monitored actor is gone: what the callback of [`Context::monitor`] receives.
#[derive(Debug, Clone)]
pub struct Down {
    /// The monitor that fired.
    pub id: MonitorId,
    /// The actor that went down (its address is closed).
    pub actor: ActorRef,
    /// Why.
    pub reason: DownReason,
}

impl Down {
    /// The stop reason, if the actor was seen to stop.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        match &self.reason {
            DownReason::Stopped(r) => Some(r),
            DownReason::NoSuchActor => None,
        }
    }
}

// ----- protocol messages -------------------------------------------------------------------

/// Watcher → target: "tell me when you are gone". Dropped unprocessed, it reports the target
/// as [`DownReason::NoSuchActor`] (see the module docs, step 3).
pub(crate) struct Watch {
    watcher: ActorRef,
    target: ActorRef,
    id: u64,
    /// Set once recorded by the target: the destructor then stays silent.
    settled: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.settled {
            let _ = self.watcher.send_system(DownMsg {
                actor: self.target.clone(),
                id: self.id,
                reason: DownReason::NoSuchActor,
            });
        }
    }
}

/// Watcher → target: forget monitor `id` of `watcher`.
pub(crate) struct Unwatch {
    watcher: ActorRef,
    id: u64,
}

/// Target → watcher: the target is gone.
pub(crate) struct DownMsg {
    actor: ActorRef,
    id: u64,
    reason: DownReason,
}

// ----- watcher side ------------------------------------------------------------------------

/// What a DOWN becomes for the watcher.
type OnDown<A> = Box<dyn FnOnce(Down) -> <A as Actor>::Msg>;

struct Watching<A: Actor> {
    id: u64,
    target: ActorRef,
    on_down: OnDown<A>,
}

/// The watcher side of monitors: the actors this actor watches, with the callbacks that turn
/// their DOWN into its messages. Added by [`Context::monitor`]; takes no part in the phases.
pub struct Monitors<A: Actor> {
    next_id: u64,
    watching: Vec<Watching<A>>,
}

impl<A: Actor> Monitors<A> {
    fn new() -> Self {
        Monitors {
            next_id: 0,
            watching: Vec::new(),
        }
    }

    fn monitor(
        &mut self,
        target: &ActorRef,
        on_down: OnDown<A>,
        ctx: &mut Context<'_, A>,
    ) -> MonitorId {
        self.next_id += 1;
        let id = self.next_id;
        let watch = Watch {
            watcher: ctx.actor_ref(),
            target: target.clone(),
            id,
            settled: false,
        };
        match target.send_system(watch) {
            Ok(()) => self.watching.push(Watching {
                id,
                target: target.clone(),
                on_down,
            }),
            Err(e) => {
                e.into_inner().settled = true;
                ctx.notify(on_down(Down {
                    id: MonitorId(id),
                    actor: target.clone(),
                    reason: DownReason::NoSuchActor,
                }));
            }
        }
        MonitorId(id)
    }

    fn demonitor(&mut self, id: MonitorId, ctx: &mut Context<'_, A>) -> bool {
        let Some(i) = self.watching.iter().position(|w| w.id == id.0) else {
            return false;
        };
        let w = self.watching.remove(i);
        let _ = w.target.send_system(Unwatch {
            watcher: ctx.actor_ref(),
            id: id.0,
        });
        true
    }

    fn on_down(&mut self, d: DownMsg, ctx: &mut Context<'_, A>) {
        let Some(i) = self
            .watching
            .iter()
            .position(|w| w.id == d.id && w.target == d.actor)
        else {
            // Demonitored meanwhile.
            return;
        };
        let w = self.watching.remove(i);
        ctx.notify((w.on_down)(Down {
            id: MonitorId(d.id),
            actor: d.actor,
            reason: d.reason,
        }));
    }
}

impl<A: Actor> Plugin<A> for Monitors<A> {
    fn name(&self) -> &'static str {
        "monitors"
    }

    /// Movable only while it watches nothing (its callbacks cannot leave the shard).
    fn can_transfer(&self) -> bool {
        self.watching.is_empty()
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        self.watching.is_empty().then(|| {
            Box::new(MonitorsState {
                next_id: self.next_id,
            }) as Box<dyn PluginTransfer<A>>
        })
    }

    fn finished(&mut self, _reason: &StopReason, _actor: &mut A, ctx: &mut Context<'_, A>) {
        let watcher = ctx.actor_ref();
        for w in self.watching.drain(..) {
            let _ = w.target.send_system(Unwatch {
                watcher: watcher.clone(),
                id: w.id,
            });
        }
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        _actor: &mut A,
        ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        match msg.downcast::<DownMsg>() {
            Ok(d) => {
                self.on_down(d, ctx);
                None
            }
            Err(m) => Some(m),
        }
    }
}

// ----- target side -------------------------------------------------------------------------

/// The target side of monitors: who watches this actor. Added when the first watch request
/// arrives; sends the DOWN notifications in [`Plugin::finished`].
#[derive(Debug, Default)]
pub struct Monitored {
    watchers: Vec<(ActorRef, u64)>,
}

impl<A: Actor> Plugin<A> for Monitored {
    fn name(&self) -> &'static str {
        "monitored"
    }

    /// The watchers' references travel with a migrating actor (its address does not change).
    fn can_transfer(&self) -> bool {
        true
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        Some(Box::new(Monitored {
            watchers: std::mem::take(&mut self.watchers),
        }))
    }

    fn finished(&mut self, reason: &StopReason, _actor: &mut A, ctx: &mut Context<'_, A>) {
        let me = ctx.actor_ref();
        for (watcher, id) in self.watchers.drain(..) {
            let _ = watcher.send_system(DownMsg {
                actor: me.clone(),
                id,
                reason: DownReason::Stopped(reason.clone()),
            });
        }
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        _actor: &mut A,
        _ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        let msg = match msg.downcast::<Watch>() {
            Ok(mut w) => {
                w.settled = true;
                self.watchers.push((w.watcher.clone(), w.id));
                return None;
            }
            Err(m) => m,
        };
        match msg.downcast::<Unwatch>() {
            Ok(u) => {
                self.watchers
                    .retain(|(watcher, id)| !(*watcher == u.watcher && *id == u.id));
                None
            }
            Err(m) => Some(m),
        }
    }
}

/// A monitor protocol message no plugin took: a watch request installs [`Monitored`] and is
/// recorded; a stray unwatch or DOWN (its monitor is gone) is dropped. Anything else comes
/// back.
pub(crate) fn unclaimed<A: Actor>(msg: SystemMsg, ctx: &mut Context<'_, A>) -> Option<SystemMsg> {
    let msg = match msg.downcast::<Watch>() {
        Ok(mut w) => {
            ctx.ensure_plugin(MONITORED_RANK, Monitored::default);
            // If the plugin cannot be reached, `w`'s destructor reports the target as gone.
            ctx.with_plugin(|m: &mut Monitored, _| {
                w.settled = true;
                m.watchers.push((w.watcher.clone(), w.id));
            });
            return None;
        }
        Err(m) => m,
    };
    if msg.is::<Unwatch>() || msg.is::<DownMsg>() {
        return None;
    }
    Some(msg)
}

// ----- the actor's API ---------------------------------------------------------------------

impl<A: Actor> Context<'_, A> {
    /// Watches `target`: when it is gone, `on_down` turns the [`Down`] notification (its
    /// reason chain included) into a message for this actor, delivered with
    /// [`notify`](Self::notify). No lifecycle coupling: neither actor waits for the other. If
    /// `target` is already dead the DOWN (with [`DownReason::NoSuchActor`]) is queued at once.
    /// See the [module docs](crate::plugins::monitor) for the guarantees.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::plugins::monitor::{Down, DownReason};
    /// use coreactor::testkit::TestKit;
    /// use coreactor::{Actor, ActorRef, Context, Reply, StopReason};
    ///
    /// struct Worker;
    /// impl Actor for Worker {
    ///     type Msg = ();
    ///     fn handle(&mut self, _: (), ctx: &mut Context<'_, Self>) {
    ///         ctx.stop_with(StopReason::Failed("disk full".into()));
    ///     }
    /// }
    ///
    /// enum Msg { Watch(ActorRef), Down(Down), Last(Reply<Option<DownReason>>) }
    /// struct Watcher { last: Option<DownReason> }
    /// impl Actor for Watcher {
    ///     type Msg = Msg;
    ///     fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
    ///         match msg {
    ///             Msg::Watch(target) => { ctx.monitor(&target, Msg::Down); }
    ///             Msg::Down(down) => self.last = Some(down.reason),
    ///             Msg::Last(reply) => reply.send(self.last.clone()),
    ///         }
    ///     }
    /// }
    ///
    /// let kit = TestKit::new(2);
    /// let worker = kit.spawn_on(0, Worker);
    /// let watcher = kit.spawn_on(1, Watcher { last: None });
    /// watcher.tell(Msg::Watch(worker.actor_ref())).unwrap();
    /// kit.run_until_idle();
    /// worker.tell(()).unwrap();
    /// kit.run_until_idle();
    /// assert_eq!(
    ///     kit.ask(&watcher, Msg::Last).unwrap(),
    ///     Some(DownReason::Stopped(StopReason::Failed("disk full".into())))
    /// );
    /// ```
    pub fn monitor(
        &mut self,
        target: &ActorRef,
        on_down: impl FnOnce(Down) -> A::Msg + 'static,
    ) -> MonitorId {
        self.ensure_plugin(MONITORS_RANK, Monitors::<A>::new);
        let on_down: OnDown<A> = Box::new(on_down);
        self.with_plugin(|m: &mut Monitors<A>, ctx| m.monitor(target, on_down, ctx))
            .expect("the monitors plugin was just ensured and is not running")
    }

    /// Cancels monitor `id`: its callback will not be called (a DOWN already queued as a
    /// message is still handled). Returns false if the monitor had fired or was unknown.
    pub fn demonitor(&mut self, id: MonitorId) -> bool {
        self.with_plugin(|m: &mut Monitors<A>, ctx| m.demonitor(id, ctx))
            .unwrap_or(false)
    }
}

impl<A: Actor> PluginTransfer<A> for Monitored {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        self
    }
}

/// The watcher side's state while it travels (only when it watches nothing: its callbacks
/// are shard-bound closures).
struct MonitorsState {
    next_id: u64,
}

impl<A: Actor> PluginTransfer<A> for MonitorsState {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        Box::new(Monitors::<A> {
            next_id: self.next_id,
            watching: Vec::new(),
        })
    }
}
