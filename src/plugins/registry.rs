//! The registry client plugin: names for this actor, and typed discovery of other actors'
//! names, through the runtime's [`Registry`](crate::registry::Registry).
//!
//! An actor gets this plugin the first time it calls one of the `Context` methods below.
//!
//! * **Registration** ([`Context::register_name`]) holds the I-phase until the registry
//!   confirms it; a refusal fails the init with [`StopReason::Registry`] (wrapped in
//!   [`StopReason::InitFailed`]). Made later, a refusal stops the actor with that reason.
//! * **Discovery** ([`Context::discover`], [`Context::discover_delayed`]) answers through a
//!   message `then` builds, delivered with [`Context::notify`] (never refused for a full
//!   mailbox). A delayed discovery waits until the name is registered. Every discovery is
//!   bounded by the actor's init timeout ([`ChildOptions::init_timeout`](crate::lifecycle::ChildOptions::init_timeout)):
//!   then it fails with [`RegistryError::Timeout`]. A discovery made during the I-phase holds
//!   it, and its failure fails the init (its `then` is not called: the init failure carries the
//!   error). Discoveries are typed: a name bound to an actor of another type answers
//!   [`RegistryError::WrongType`].
//! * **Cancellation** ([`Context::cancel_discovery`]) answers the discovery `Cancelled` at
//!   once; a late answer from the registry is ignored.
//! * **S-phase.** At `shutdown_start` the pending discoveries are dropped (their `then` is not
//!   called) and, if this actor ever asked to register a name or made a delayed discovery, the
//!   registry is told to drop this actor's names and parked discoveries; the plugin's shutdown
//!   waits for the registry's acknowledgement. So by the time the actor is `ShutDown` (and
//!   whoever watches it is told), its names cannot be discovered any more.
//! * **No registry.** Without a registry in the runtime (or once it is gone) every request
//!   fails with [`RegistryError::Unavailable`] (which fails the init during the I-phase).

#![deny(unsafe_code)]

use super::REGISTRY_RANK;
use crate::actor::lifecycle::{Plugin, PluginTransfer, Progress, State, SystemMsg};
use crate::registry::{Answer, Request, Response};
use crate::{Actor, ActorRef, Addr, Context, RegistryError, StopReason, TimerId};
use std::collections::HashMap;
use std::fmt;

/// Identifies one discovery of this actor, for [`Context::cancel_discovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiscoveryId(u64);

/// Turns the untyped outcome into the actor's message (the downcast happens inside).
type Then<A> = Box<dyn FnOnce(Result<ActorRef, RegistryError>) -> <A as Actor>::Msg>;
/// Runs on the found actor before `then` (discover-and-link links here).
pub(crate) type OnFound<A> = Box<dyn FnOnce(&mut Context<'_, A>, &ActorRef)>;

/// What the actor asked for in one discovery.
struct Wanted<A: Actor> {
    name: String,
    delayed: bool,
    /// Whether the found actor has the type `then` expects.
    type_ok: fn(&ActorRef) -> bool,
    /// The type `then` expects.
    expected: &'static str,
    on_found: Option<OnFound<A>>,
    then: Then<A>,
}

/// A discovery waiting for its answer.
struct Discovery<A: Actor> {
    wanted: Wanted<A>,
    /// Made during the I-phase: holds it, and its failure fails the init.
    holds_init: bool,
    timer: TimerId,
}

/// The timeout of discovery `.0` (delivered to this plugin through the control lane).
struct DiscoveryTimeout(u64);

/// The registry client plugin (one per actor that uses the registry; added on first use).
pub struct RegistryClient<A: Actor> {
    /// The runtime's registry, looked up once.
    registry: Option<ActorRef>,
    next_id: u64,
    /// Registrations sent and not yet answered: id → name.
    registering: HashMap<u64, String>,
    /// Names the registry confirmed, in order.
    names: Vec<String>,
    /// A registration or a delayed discovery was ever sent: the S-phase must clean up.
    dirty: bool,
    discoveries: HashMap<u64, Discovery<A>>,
    /// The first failure of the I-phase.
    failure: Option<RegistryError>,
    /// S-phase: the id of the unregister-all whose acknowledgement is awaited.
    leaving: Option<u64>,
}

impl<A: Actor> fmt::Debug for RegistryClient<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .field("registering", &self.registering)
            .field("names", &self.names)
            .field("discoveries", &self.discoveries.len())
            .field("failure", &self.failure)
            .field("leaving", &self.leaving)
            .finish()
    }
}

/// True in the I-phase (a failure there fails the init).
fn in_init(state: State) -> bool {
    matches!(state, State::New | State::Initializing)
}

impl<A: Actor> RegistryClient<A> {
    fn new(registry: Option<ActorRef>) -> Self {
        RegistryClient {
            registry,
            next_id: 0,
            registering: HashMap::new(),
            names: Vec::new(),
            dirty: false,
            discoveries: HashMap::new(),
            failure: None,
            leaving: None,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends `req` to the registry; false if there is none or it is gone.
    fn send(&self, req: Request) -> bool {
        self.registry
            .as_ref()
            .is_some_and(|r| r.send_system(req).is_ok())
    }

    /// A registration failed: during the I-phase the init fails, later the actor stops.
    fn registration_failed(&mut self, ctx: &mut Context<'_, A>, e: RegistryError) {
        match ctx.state() {
            s if in_init(s) => {
                self.failure.get_or_insert(e);
            }
            State::Initialized | State::Operational => ctx.stop_with(StopReason::Registry(e)),
            _ => {}
        }
    }

    fn register(&mut self, ctx: &mut Context<'_, A>, name: String) {
        if ctx.state() >= State::ShuttingDown {
            return;
        }
        let id = self.next_id();
        let me = ctx.actor_ref();
        let sent = self.send(Request::Register {
            name: name.clone(),
            actor: me.clone(),
            reply_to: me,
            id,
        });
        if sent {
            self.dirty = true;
            self.registering.insert(id, name);
        } else {
            self.registration_failed(ctx, RegistryError::Unavailable);
        }
    }

    fn unregister(&mut self, ctx: &mut Context<'_, A>, name: &str) {
        self.names.retain(|n| n != name);
        let _ = self.send(Request::Unregister {
            name: name.to_owned(),
            actor: ctx.actor_ref(),
        });
    }

    fn discover(&mut self, ctx: &mut Context<'_, A>, wanted: Wanted<A>) -> DiscoveryId {
        let id = self.next_id();
        let state = ctx.state();
        if state >= State::ShuttingDown {
            // Cancelled by the shutdown before it began: `then` is not called.
            return DiscoveryId(id);
        }
        let sent = self.send(Request::Discover {
            name: wanted.name.clone(),
            reply_to: ctx.actor_ref(),
            id,
            delayed: wanted.delayed,
        });
        let timer = ctx.control_after(ctx.options().init_timeout, DiscoveryTimeout(id));
        self.dirty |= wanted.delayed && sent;
        self.discoveries.insert(
            id,
            Discovery {
                wanted,
                holds_init: in_init(state),
                timer,
            },
        );
        if !sent {
            self.settle(ctx, id, Err(RegistryError::Unavailable));
        }
        DiscoveryId(id)
    }

    /// Completes discovery `id` (if it is still pending) with `outcome`.
    fn settle(
        &mut self,
        ctx: &mut Context<'_, A>,
        id: u64,
        outcome: Result<ActorRef, RegistryError>,
    ) {
        let Some(d) = self.discoveries.remove(&id) else {
            // A late answer: the discovery timed out or was cancelled.
            return;
        };
        ctx.cancel_timer(d.timer);
        let w = d.wanted;
        let outcome = outcome.and_then(|found| {
            if (w.type_ok)(&found) {
                Ok(found)
            } else {
                Err(RegistryError::WrongType {
                    name: w.name.clone(),
                    expected: w.expected,
                    found: found.type_name(),
                })
            }
        });
        match outcome {
            Ok(found) => {
                if let Some(hook) = w.on_found {
                    hook(ctx, &found);
                }
                let msg = (w.then)(Ok(found));
                ctx.notify(msg);
            }
            Err(e) if d.holds_init && in_init(ctx.state()) => {
                self.failure.get_or_insert(e);
            }
            Err(e) => {
                let msg = (w.then)(Err(e));
                ctx.notify(msg);
            }
        }
    }

    fn cancel(&mut self, ctx: &mut Context<'_, A>, id: u64) -> bool {
        let Some(d) = self.discoveries.remove(&id) else {
            return false;
        };
        ctx.cancel_timer(d.timer);
        if d.wanted.delayed {
            let _ = self.send(Request::Cancel {
                reply_to: ctx.actor_ref(),
                id,
            });
        }
        let msg = (d.wanted.then)(Err(RegistryError::Cancelled(d.wanted.name)));
        ctx.notify(msg);
        true
    }

    fn on_timeout(&mut self, ctx: &mut Context<'_, A>, id: u64) {
        let Some(d) = self.discoveries.get(&id) else {
            return;
        };
        let (name, delayed) = (d.wanted.name.clone(), d.wanted.delayed);
        if delayed {
            // The registry drops the parked discovery; its `Cancelled` answer is ignored.
            let _ = self.send(Request::Cancel {
                reply_to: ctx.actor_ref(),
                id,
            });
        }
        self.settle(ctx, id, Err(RegistryError::Timeout(name)));
    }

    fn on_response(&mut self, ctx: &mut Context<'_, A>, r: Response) {
        match r.answer {
            Answer::Registered(result) => {
                let Some(name) = self.registering.remove(&r.id) else {
                    return;
                };
                match result {
                    Ok(()) => self.names.push(name),
                    Err(e) => self.registration_failed(ctx, e),
                }
            }
            Answer::Discovered(outcome) => self.settle(ctx, r.id, outcome),
            Answer::Unregistered => {
                if self.leaving == Some(r.id) {
                    self.leaving = None;
                }
            }
        }
    }
}

impl<A: Actor> Plugin<A> for RegistryClient<A> {
    fn name(&self) -> &'static str {
        "registry"
    }

    /// Movable while nothing is in flight (no registration, discovery or departure waits for
    /// an answer): its names point at the actor's address, which does not change.
    fn can_transfer(&self) -> bool {
        self.registering.is_empty()
            && self.discoveries.is_empty()
            && self.leaving.is_none()
            && self.failure.is_none()
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        Some(Box::new(RegistryClientState {
            registry: self.registry.clone(),
            next_id: self.next_id,
            names: std::mem::take(&mut self.names),
            dirty: self.dirty,
        }))
    }

    fn init(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        if let Some(e) = &self.failure {
            return Progress::Failed(StopReason::Registry(e.clone()));
        }
        Progress::done_when(
            self.registering.is_empty() && !self.discoveries.values().any(|d| d.holds_init),
        )
    }

    fn shutdown_start(&mut self, _reason: &StopReason, _actor: &mut A, ctx: &mut Context<'_, A>) {
        for (_, d) in self.discoveries.drain() {
            ctx.cancel_timer(d.timer);
        }
        self.registering.clear();
        self.names.clear();
        if self.dirty {
            let id = self.next_id();
            let me = ctx.actor_ref();
            let sent = self.send(Request::UnregisterAll {
                actor: me.clone(),
                ack: Some((me, id)),
            });
            if sent {
                self.leaving = Some(id);
            }
        }
    }

    fn shutdown(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        let registry_alive = self.registry.as_ref().is_some_and(ActorRef::is_alive);
        Progress::done_when(!(self.leaving.is_some() && registry_alive))
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        _actor: &mut A,
        ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        let msg = match msg.downcast::<Response>() {
            Ok(r) => {
                self.on_response(ctx, r);
                return None;
            }
            Err(msg) => msg,
        };
        match msg.downcast::<DiscoveryTimeout>() {
            Ok(DiscoveryTimeout(id)) => {
                self.on_timeout(ctx, id);
                None
            }
            Err(msg) => Some(msg),
        }
    }
}

impl<A: Actor> Context<'_, A> {
    /// The runtime's name registry, if it has one.
    pub fn registry(&self) -> Option<ActorRef> {
        crate::registry::lookup(self.shards())
    }

    fn registry_client(&mut self) {
        let registry = self.registry();
        self.ensure_plugin(REGISTRY_RANK, || RegistryClient::<A>::new(registry));
    }

    /// Registers this actor under `name` (an actor may have several names). During the
    /// I-phase the actor becomes operational only once the registry has confirmed; a refusal
    /// ([`RegistryError::AlreadyRegistered`], [`RegistryError::Unavailable`] without a
    /// registry) fails the init with [`StopReason::Registry`]. Called later, a refusal stops
    /// the actor with that reason. Ignored once the actor is shutting down. The name is
    /// dropped when the actor shuts down.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::lifecycle::State;
    /// use coreactor::testkit::TestKit;
    /// use coreactor::{Actor, Addr, Context, RegistryError};
    ///
    /// struct Db;
    /// impl Actor for Db {
    ///     type Msg = ();
    ///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.register_name("db");
    ///     }
    ///     fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    /// }
    ///
    /// struct Client { db: Option<Addr<Db>> }
    /// enum Msg { Found(Result<Addr<Db>, RegistryError>) }
    /// impl Actor for Client {
    ///     type Msg = Msg;
    ///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
    ///         // Holds the I-phase until "db" is registered (at most the init timeout).
    ///         ctx.discover_delayed::<Db>("db", Msg::Found);
    ///     }
    ///     fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
    ///         match msg { Msg::Found(db) => self.db = Some(db.unwrap()) }
    ///     }
    /// }
    ///
    /// let kit = TestKit::with_registry(2);
    /// let client = kit.spawn_on(1, Client { db: None });
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&client), State::Initializing);
    /// let db = kit.spawn_on(0, Db);
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&db), State::Operational);
    /// assert_eq!(kit.state(&client), State::Operational);
    /// ```
    pub fn register_name(&mut self, name: impl Into<String>) {
        self.registry_client();
        let name = name.into();
        self.with_plugin(|c: &mut RegistryClient<A>, ctx| c.register(ctx, name));
    }

    /// Drops the name `name` of this actor (fire-and-forget; nothing happens if the name is
    /// bound to another actor).
    pub fn unregister_name(&mut self, name: &str) {
        self.with_plugin(|c: &mut RegistryClient<A>, ctx| c.unregister(ctx, name));
    }

    /// The names the registry has confirmed for this actor, in registration order.
    pub fn registered_names(&mut self) -> Vec<String> {
        self.with_plugin(|c: &mut RegistryClient<A>, _| c.names.clone())
            .unwrap_or_default()
    }

    /// Looks `name` up once: `then` receives the actor's typed address, or
    /// [`RegistryError::UnknownName`], [`RegistryError::WrongType`] (the name is bound to an
    /// actor that is not a `B`), [`RegistryError::Unavailable`] (no registry),
    /// [`RegistryError::Timeout`] (no answer within the init timeout). The message `then`
    /// builds is delivered with [`notify`](Self::notify). Made during the I-phase, the
    /// discovery holds it, and a failure fails the init (`then` is not called then).
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::testkit::TestKit;
    /// use coreactor::{Actor, Addr, Context, RegistryError};
    /// use std::sync::mpsc;
    ///
    /// struct Lonely { seen: mpsc::Sender<Result<Addr<Lonely>, RegistryError>> }
    /// enum Msg { Look, Found(Result<Addr<Lonely>, RegistryError>) }
    /// impl Actor for Lonely {
    ///     type Msg = Msg;
    ///     fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
    ///         match msg {
    ///             Msg::Look => { ctx.discover::<Lonely>("friend", Msg::Found); }
    ///             Msg::Found(r) => self.seen.send(r).unwrap(),
    ///         }
    ///     }
    /// }
    ///
    /// let kit = TestKit::with_registry(1);
    /// let (tx, rx) = mpsc::channel();
    /// let a = kit.spawn_on(0, Lonely { seen: tx });
    /// a.tell(Msg::Look).unwrap();
    /// kit.run_until_idle();
    /// assert_eq!(rx.try_recv().unwrap().unwrap_err(), RegistryError::UnknownName("friend".into()));
    /// ```
    pub fn discover<B: Actor>(
        &mut self,
        name: impl Into<String>,
        then: impl FnOnce(Result<Addr<B>, RegistryError>) -> A::Msg + 'static,
    ) -> DiscoveryId {
        self.discover_with::<B>(name.into(), false, None, then)
    }

    /// Like [`discover`](Self::discover), but a name that is not registered yet is waited
    /// for: `then` receives the address as soon as an actor registers `name`, or
    /// [`RegistryError::Timeout`] if none does within this actor's init timeout
    /// ([`ChildOptions::init_timeout`](crate::lifecycle::ChildOptions::init_timeout)).
    /// Cancel it with [`cancel_discovery`](Self::cancel_discovery); it is cancelled
    /// automatically (without calling `then`) when the actor shuts down.
    pub fn discover_delayed<B: Actor>(
        &mut self,
        name: impl Into<String>,
        then: impl FnOnce(Result<Addr<B>, RegistryError>) -> A::Msg + 'static,
    ) -> DiscoveryId {
        self.discover_with::<B>(name.into(), true, None, then)
    }

    /// Discovers `name` (waiting for it if `delayed`) and links to the actor found, in one
    /// step: in the I-phase, the init waits for both, and fails if either does (rotor's
    /// `discover_name(..).link()`). `then` receives the address once the discovery
    /// succeeded; the link's own outcome is the link plugin's (see
    /// [`Context::link`](crate::Context::link)).
    pub fn discover_and_link<B: Actor>(
        &mut self,
        name: impl Into<String>,
        delayed: bool,
        then: impl FnOnce(Result<Addr<B>, RegistryError>) -> A::Msg + 'static,
    ) -> DiscoveryId {
        self.discover_with::<B>(
            name.into(),
            delayed,
            Some(Box::new(|ctx, server| ctx.link(server))),
            then,
        )
    }

    /// Cancels a pending discovery: its `then` receives [`RegistryError::Cancelled`] at once
    /// (and a pending I-phase no longer waits for it). Returns false if it was no longer
    /// pending (answered, timed out or cancelled already).
    pub fn cancel_discovery(&mut self, id: DiscoveryId) -> bool {
        self.with_plugin(|c: &mut RegistryClient<A>, ctx| c.cancel(ctx, id.0))
            .unwrap_or(false)
    }

    /// The discovery behind [`discover`](Self::discover) and
    /// [`discover_delayed`](Self::discover_delayed), with an optional hook run on the found
    /// actor (with this context) before `then`'s message is delivered: discover-and-link
    /// links there.
    pub(crate) fn discover_with<B: Actor>(
        &mut self,
        name: String,
        delayed: bool,
        on_found: Option<OnFound<A>>,
        then: impl FnOnce(Result<Addr<B>, RegistryError>) -> A::Msg + 'static,
    ) -> DiscoveryId {
        self.registry_client();
        let typed = {
            let name = name.clone();
            move |outcome: Result<ActorRef, RegistryError>| {
                then(outcome.and_then(|found| {
                    found
                        .downcast::<B>()
                        .ok_or_else(|| RegistryError::WrongType {
                            name,
                            expected: std::any::type_name::<B>(),
                            found: found.type_name(),
                        })
                }))
            }
        };
        let wanted = Wanted {
            name,
            delayed,
            type_ok: ActorRef::is::<B>,
            expected: std::any::type_name::<B>(),
            on_found,
            then: Box::new(typed),
        };
        let discovered = self.with_plugin(|c: &mut RegistryClient<A>, ctx| c.discover(ctx, wanted));
        // The plugin is only out of its slot while one of its own callbacks runs (an
        // `on_found` hook); a discovery made from there is refused.
        discovered.unwrap_or(DiscoveryId(0))
    }
}

/// The registry client's state while it travels with its actor (nothing in flight).
struct RegistryClientState {
    registry: Option<ActorRef>,
    next_id: u64,
    names: Vec<String>,
    dirty: bool,
}

impl<A: Actor> PluginTransfer<A> for RegistryClientState {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        let mut c = RegistryClient::<A>::new(self.registry);
        c.next_id = self.next_id;
        c.names = self.names;
        c.dirty = self.dirty;
        Box::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestKit;

    struct Target;
    impl Actor for Target {
        type Msg = ();
        fn init(&mut self, ctx: &mut Context<'_, Self>) {
            ctx.register_name("target");
        }
        fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    }

    /// Discovers "target" with a hook, recording the order things happen in.
    struct Linker(crossbeam_channel::Sender<&'static str>);
    enum Msg {
        Hooked,
        Found(Result<Addr<Target>, RegistryError>),
    }
    impl Actor for Linker {
        type Msg = Msg;
        fn init(&mut self, ctx: &mut Context<'_, Self>) {
            let hook: OnFound<Self> = Box::new(|ctx, found| {
                assert!(found.is::<Target>());
                ctx.notify(Msg::Hooked);
            });
            ctx.discover_with::<Target>("target".into(), true, Some(hook), Msg::Found);
        }
        fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
            let _ = self.0.send(match msg {
                Msg::Hooked => "hook",
                Msg::Found(Ok(_)) => "found",
                Msg::Found(Err(_)) => "error",
            });
        }
    }

    #[test]
    fn on_found_hook_runs_before_then() {
        let kit = TestKit::with_registry(2);
        let (tx, rx) = crossbeam_channel::unbounded();
        let linker = kit.spawn_on(1, Linker(tx));
        kit.spawn_on(0, Target);
        kit.run_until_idle();
        assert_eq!(linker.state(), State::Operational);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["hook", "found"]);
    }
}
