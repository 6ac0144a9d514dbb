//! The name registry: an ordinary actor that maps names to actors (rotor's `registry_t`).
//!
//! A runtime has at most one registry, opt-in ([`Builder::with_registry`](crate::Builder::with_registry),
//! [`TestKit::with_registry`](crate::testkit::TestKit::with_registry)); it lives on one shard
//! (shard 0 by default) and serves every shard. Actors use it through the registry client
//! plugin ([`Context::register_name`](crate::Context::register_name),
//! [`Context::discover`](crate::Context::discover),
//! [`Context::discover_delayed`](crate::Context::discover_delayed)); this module is the server.
//!
//! # Protocol
//!
//! Requests and answers are [`SystemMsg`]s: they travel in the
//! control lane of the registry and of the requester, so a full mailbox never refuses or
//! delays them. The registry takes them in its own plugin, returned from its
//! [`Actor::plugins`]. Each request carries the requester's [`ActorRef`] and a request id
//! chosen by the requester; the answer carries the id back.
//!
//! | request | effect | answer |
//! |---|---|---|
//! | register `{name, actor}` | binds `name` to `actor` (an actor may have many names: aliases) | ok, or `AlreadyRegistered` |
//! | unregister `{name, actor}` | unbinds `name` if it is bound to `actor` | none |
//! | unregister-all `{actor}` | unbinds every name of `actor` and drops the delayed discoveries `actor` asked for | an acknowledgement, if asked |
//! | discover `{name}` | looks `name` up | the actor, or `UnknownName` |
//! | delayed discover `{name}` | as discover, but an unknown name is parked | the actor, as soon as `name` is registered |
//! | cancel `{request id}` | drops a parked delayed discovery | `Cancelled` |
//!
//! # Invariants
//!
//! * `names[n] == a` exactly when `n` is in `aliases[a]`; every entry of `aliases` is non-empty.
//! * A parked discovery is in `waiting[name]` and in `parked[(requester, id)]`, or in neither.
//! * A name is never both bound and parked on: registering a name answers everything parked
//!   on it at once.
//! * **Liveness.** An actor that stops normally unregisters its names in its S-phase and waits
//!   for the acknowledgement before it is `ShutDown` (so whoever learns of its end afterwards
//!   cannot discover it). An actor that dies without unregistering (forced down) is found out
//!   lazily: a name bound to a dead actor counts as unbound at the next discovery, registration
//!   or listing that touches it, and all of that actor's names are dropped then.
//! * When the registry itself shuts down, every parked discovery is answered `Unavailable`;
//!   requests sent to a dead registry fail at once on the requester's side (`Unavailable`).

#![deny(unsafe_code)]

use crate::actor::lifecycle::{Plugin, SystemMsg};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::RegistryError;
use crate::runtime::{StartError, spawn_remote};
use crate::shard::{RtShared, ShardShared};
use crate::sync::Arc;
use crate::{Actor, ActorRef, Addr, Context, Reply, StopReason};
use std::collections::HashMap;

/// A request to the registry (control lane).
#[derive(Debug)]
pub(crate) enum Request {
    /// Bind `name` to `actor`; answer [`Answer::Registered`] to `reply_to`.
    Register {
        /// The name.
        name: String,
        /// The actor it names.
        actor: ActorRef,
        /// Who gets the answer.
        reply_to: ActorRef,
        /// The requester's id for this request.
        id: u64,
    },
    /// Unbind `name` if it is bound to `actor` (no answer).
    Unregister {
        /// The name.
        name: String,
        /// The actor it must be bound to.
        actor: ActorRef,
    },
    /// Unbind every name of `actor` and drop the delayed discoveries it asked for; answer
    /// [`Answer::Unregistered`] to `ack` if given.
    UnregisterAll {
        /// The actor.
        actor: ActorRef,
        /// Who gets the acknowledgement, and the request id.
        ack: Option<(ActorRef, u64)>,
    },
    /// Look `name` up; answer [`Answer::Discovered`]. With `delayed`, an unknown name is parked
    /// until it is registered (or the discovery is cancelled).
    Discover {
        /// The name.
        name: String,
        /// Who gets the answer.
        reply_to: ActorRef,
        /// The requester's id for this request.
        id: u64,
        /// Wait for the name instead of answering `UnknownName`.
        delayed: bool,
    },
    /// Drop the parked discovery `(reply_to, id)`, answering it `Cancelled`.
    Cancel {
        /// The requester.
        reply_to: ActorRef,
        /// Its id for the discovery.
        id: u64,
    },
}

/// The registry's answer to request `id` (control lane of the requester).
#[derive(Debug)]
pub(crate) struct Response {
    /// The id the requester gave.
    pub(crate) id: u64,
    /// The outcome.
    pub(crate) answer: Answer,
}

/// What a [`Response`] says.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Outcome of a registration.
    Registered(Result<(), RegistryError>),
    /// Outcome of a discovery.
    Discovered(Result<ActorRef, RegistryError>),
    /// Acknowledges an unregister-all.
    Unregistered,
}

/// Counts describing a registry, for diagnostics and tests ([`RegistryMsg::Stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryStats {
    /// Names bound (aliases counted one by one).
    pub names: usize,
    /// Distinct actors with at least one name.
    pub actors: usize,
    /// Delayed discoveries parked until their name is registered.
    pub waiting: usize,
}

/// The registry's user messages: read-only queries (the protocol itself travels in the
/// control lane).
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryMsg {
    /// Answers the current counts (names bound to dead actors are dropped first).
    Stats(Reply<RegistryStats>),
    /// Answers every binding, sorted by name (names bound to dead actors are dropped first).
    Names(Reply<Vec<(String, ActorRef)>>),
}

/// A delayed discovery waiting for its name.
#[derive(Debug)]
struct Parked {
    reply_to: ActorRef,
    id: u64,
}

/// The name registry actor. Start it with [`Builder::with_registry`](crate::Builder::with_registry)
/// (or [`TestKit::with_registry`](crate::testkit::TestKit::with_registry)); see the
/// [module docs](self) for the protocol.
///
/// # Examples
///
/// ```
/// use coreactor::registry::{RegistryMsg, RegistryStats};
/// use coreactor::testkit::TestKit;
///
/// let kit = TestKit::with_registry(1);
/// let registry = kit.registry().unwrap();
/// let stats = kit.ask(&registry, RegistryMsg::Stats).unwrap();
/// assert_eq!(stats, RegistryStats::default());
/// ```
#[derive(Debug, Default)]
pub struct Registry {
    /// name → actor.
    names: HashMap<String, ActorRef>,
    /// actor → its names, in registration order.
    aliases: HashMap<ActorRef, Vec<String>>,
    /// name → delayed discoveries waiting for it, in arrival order.
    waiting: HashMap<String, Vec<Parked>>,
    /// (requester, id) → the name it waits for.
    parked: HashMap<(ActorRef, u64), String>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn stats(&self) -> RegistryStats {
        RegistryStats {
            names: self.names.len(),
            actors: self.aliases.len(),
            waiting: self.parked.len(),
        }
    }

    /// The live actor bound to `name`; a binding to a dead actor is dropped (with all that
    /// actor's names) and reported as absent.
    fn live(&mut self, name: &str) -> Option<ActorRef> {
        let actor = self.names.get(name)?;
        if actor.is_alive() {
            return Some(actor.clone());
        }
        let dead = actor.clone();
        self.drop_names_of(&dead);
        None
    }

    /// Drops every binding to a dead actor.
    fn sweep(&mut self) {
        let dead: Vec<ActorRef> = self
            .aliases
            .keys()
            .filter(|a| !a.is_alive())
            .cloned()
            .collect();
        for a in dead {
            self.drop_names_of(&a);
        }
    }

    fn drop_names_of(&mut self, actor: &ActorRef) {
        for name in self.aliases.remove(actor).unwrap_or_default() {
            self.names.remove(&name);
        }
    }

    fn serve(&mut self, req: Request) {
        match req {
            Request::Register {
                name,
                actor,
                reply_to,
                id,
            } => {
                let result = self.register(name, actor);
                answer(&reply_to, id, Answer::Registered(result));
            }
            Request::Unregister { name, actor } => {
                if self.names.get(&name) == Some(&actor) {
                    self.names.remove(&name);
                    if let Some(list) = self.aliases.get_mut(&actor) {
                        list.retain(|n| *n != name);
                        if list.is_empty() {
                            self.aliases.remove(&actor);
                        }
                    }
                }
            }
            Request::UnregisterAll { actor, ack } => {
                self.drop_names_of(&actor);
                self.unpark_all_of(&actor);
                if let Some((to, id)) = ack {
                    answer(&to, id, Answer::Unregistered);
                }
            }
            Request::Discover {
                name,
                reply_to,
                id,
                delayed,
            } => match self.live(&name) {
                Some(actor) => answer(&reply_to, id, Answer::Discovered(Ok(actor))),
                None if delayed => self.park(name, reply_to, id),
                None => answer(
                    &reply_to,
                    id,
                    Answer::Discovered(Err(RegistryError::UnknownName(name))),
                ),
            },
            Request::Cancel { reply_to, id } => {
                if let Some(name) = self.unpark(&reply_to, id) {
                    answer(
                        &reply_to,
                        id,
                        Answer::Discovered(Err(RegistryError::Cancelled(name))),
                    );
                }
            }
        }
    }

    fn register(&mut self, name: String, actor: ActorRef) -> Result<(), RegistryError> {
        if self.live(&name).is_some() {
            return Err(RegistryError::AlreadyRegistered(name));
        }
        if !actor.is_alive() {
            // Registered on behalf of an actor that is gone by now: nothing to bind (the
            // requester learns nothing new; a later discovery would drop it anyway).
            return Ok(());
        }
        for p in self.waiting.remove(&name).unwrap_or_default() {
            self.parked.remove(&(p.reply_to.clone(), p.id));
            answer(&p.reply_to, p.id, Answer::Discovered(Ok(actor.clone())));
        }
        self.aliases
            .entry(actor.clone())
            .or_default()
            .push(name.clone());
        self.names.insert(name, actor);
        Ok(())
    }

    fn park(&mut self, name: String, reply_to: ActorRef, id: u64) {
        let list = self.waiting.entry(name.clone()).or_default();
        // Requesters of this name that died without cancelling are dropped now, so parked
        // discoveries never outgrow the live requesters by much.
        let (live, dead): (Vec<Parked>, Vec<Parked>) = std::mem::take(list)
            .into_iter()
            .partition(|p| p.reply_to.is_alive());
        *list = live;
        list.push(Parked {
            reply_to: reply_to.clone(),
            id,
        });
        for p in dead {
            self.parked.remove(&(p.reply_to, p.id));
        }
        self.parked.insert((reply_to, id), name);
    }

    /// Removes the parked discovery `(reply_to, id)`; returns its name.
    fn unpark(&mut self, reply_to: &ActorRef, id: u64) -> Option<String> {
        let name = self.parked.remove(&(reply_to.clone(), id))?;
        if let Some(list) = self.waiting.get_mut(&name) {
            list.retain(|p| !(p.id == id && p.reply_to == *reply_to));
            if list.is_empty() {
                self.waiting.remove(&name);
            }
        }
        Some(name)
    }

    fn unpark_all_of(&mut self, requester: &ActorRef) {
        let ids: Vec<u64> = self
            .parked
            .keys()
            .filter(|(r, _)| r == requester)
            .map(|(_, id)| *id)
            .collect();
        for id in ids {
            self.unpark(requester, id);
        }
    }

    /// The registry is going away: every parked discovery is answered `Unavailable`.
    fn close(&mut self) {
        self.parked.clear();
        for (_, list) in self.waiting.drain() {
            for p in list {
                answer(
                    &p.reply_to,
                    p.id,
                    Answer::Discovered(Err(RegistryError::Unavailable)),
                );
            }
        }
    }
}

/// Sends an answer; a requester that is gone needs none.
fn answer(to: &ActorRef, id: u64, answer: Answer) {
    let _ = to.send_system(Response { id, answer });
}

impl Actor for Registry {
    type Msg = RegistryMsg;

    fn handle(&mut self, msg: RegistryMsg, _ctx: &mut Context<'_, Self>) {
        self.sweep();
        match msg {
            RegistryMsg::Stats(reply) => reply.send(self.stats()),
            RegistryMsg::Names(reply) => {
                let mut all: Vec<(String, ActorRef)> = self
                    .names
                    .iter()
                    .map(|(n, a)| (n.clone(), a.clone()))
                    .collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                reply.send(all);
            }
        }
    }

    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        vec![Box::new(Server)]
    }
}

/// The registry's own plugin: takes the protocol requests from the control lane.
struct Server;

impl Plugin<Registry> for Server {
    fn name(&self) -> &'static str {
        "registry-server"
    }

    fn shutdown_start(
        &mut self,
        _reason: &StopReason,
        registry: &mut Registry,
        _ctx: &mut Context<'_, Registry>,
    ) {
        registry.close();
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        registry: &mut Registry,
        _ctx: &mut Context<'_, Registry>,
    ) -> Option<SystemMsg> {
        match msg.downcast::<Request>() {
            Ok(req) => {
                registry.serve(req);
                None
            }
            Err(other) => Some(other),
        }
    }
}

/// The runtime's registry, if one was started.
pub(crate) fn lookup(shards: &[Arc<ShardShared>]) -> Option<ActorRef> {
    let &(shard, slot, generation) = shards.first()?.rt.registry.get()?;
    Some(ActorRef::of::<Registry>(
        shards.get(shard)?.clone(),
        slot,
        generation,
    ))
}

/// Makes `registry` the runtime's registry. Returns false (and changes nothing) if the
/// runtime has one already.
pub(crate) fn publish(rt: &RtShared, registry: &Addr<Registry>) -> bool {
    rt.registry
        .set((registry.shard(), registry.slot, registry.generation))
        .is_ok()
}

/// Spawns a [`Registry`] on shard `shard` of a started runtime and publishes it.
///
/// # Errors
///
/// [`StartError::Config`] for the field `registry` if `shard` does not exist or the runtime
/// has a registry already, or if the shard cannot take the actor.
pub(crate) fn start(
    shards: &[Arc<ShardShared>],
    shard: usize,
) -> Result<Addr<Registry>, StartError> {
    let out_of_range = || {
        ConfigError::new(
            "registry",
            ConfigErrorKind::OutOfRange {
                value: shard as u64,
                min: 0,
                max: shards.len().saturating_sub(1) as u64,
            },
        )
    };
    let target = shards.get(shard).ok_or_else(out_of_range)?;
    let addr = spawn_remote(target, Registry::new).map_err(|e| {
        ConfigError::new(
            "registry",
            ConfigErrorKind::BadValue {
                value: e.to_string(),
                expected: "a shard that can take the registry actor",
            },
        )
    })?;
    if !publish(&target.rt, &addr) {
        let _ = addr.stop();
        return Err(ConfigError::new(
            "registry",
            ConfigErrorKind::BadValue {
                value: format!("a second registry on shard {shard}"),
                expected: "one registry per runtime",
            },
        )
        .into());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::State;
    use crate::testkit::TestKit;

    #[test]
    fn a_published_registry_does_not_keep_the_runtime_alive() {
        let kit = TestKit::with_registry(2);
        let registry = kit.registry().expect("published");
        let rt = std::sync::Arc::downgrade(&registry.actor_ref().shard.rt);
        drop(registry);
        drop(kit);
        assert!(
            rt.upgrade().is_none(),
            "the registry reference kept the runtime's shared state alive (a cycle)"
        );
    }

    /// An actor with no registry plugin: it never unregisters anything itself.
    struct Mute;
    impl Actor for Mute {
        type Msg = ();
        fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    }

    /// Records the registry's answers.
    struct Probe(crossbeam_channel::Sender<Response>);
    impl Actor for Probe {
        type Msg = ();
        fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
        fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
            vec![Box::new(ProbePlugin)]
        }
    }
    struct ProbePlugin;
    impl Plugin<Probe> for ProbePlugin {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn control(
            &mut self,
            msg: SystemMsg,
            probe: &mut Probe,
            _ctx: &mut Context<'_, Probe>,
        ) -> Option<SystemMsg> {
            match msg.downcast::<Response>() {
                Ok(r) => {
                    let _ = probe.0.send(r);
                    None
                }
                Err(m) => Some(m),
            }
        }
    }

    #[test]
    fn names_of_an_actor_that_died_without_unregistering_are_dropped_lazily() {
        let kit = TestKit::with_registry(2);
        let registry = kit.registry().unwrap().actor_ref();
        let (tx, rx) = crossbeam_channel::unbounded();
        let probe = kit.spawn_on(0, Probe(tx)).actor_ref();
        let mute = kit.spawn_on(1, Mute);
        kit.run_until_idle();
        for (id, name) in [(1, "a"), (2, "b")] {
            registry
                .send_system(Request::Register {
                    name: name.into(),
                    actor: mute.actor_ref(),
                    reply_to: probe.clone(),
                    id,
                })
                .unwrap();
        }
        kit.run_until_idle();
        assert!(
            rx.try_iter()
                .all(|r| matches!(r.answer, Answer::Registered(Ok(()))))
        );
        let stats = kit
            .ask(&kit.registry().unwrap(), RegistryMsg::Stats)
            .unwrap();
        assert_eq!((stats.names, stats.actors), (2, 1));

        // Gone without a word to the registry.
        mute.stop().unwrap();
        kit.run_until_idle();
        assert_eq!(mute.state(), State::ShutDown);
        registry
            .send_system(Request::Discover {
                name: "a".into(),
                reply_to: probe.clone(),
                id: 3,
                delayed: false,
            })
            .unwrap();
        kit.run_until_idle();
        let r = rx.try_recv().unwrap();
        assert_eq!(r.id, 3);
        assert!(matches!(
            r.answer,
            Answer::Discovered(Err(RegistryError::UnknownName(ref n))) if n == "a"
        ));
        // Every name of the dead actor went with the first lookup that noticed it.
        let stats = kit
            .ask(&kit.registry().unwrap(), RegistryMsg::Stats)
            .unwrap();
        assert_eq!(stats, RegistryStats::default());

        // A dead actor's name can be taken over.
        let heir = kit.spawn_on(1, Mute);
        registry
            .send_system(Request::Register {
                name: "b".into(),
                actor: heir.actor_ref(),
                reply_to: probe.clone(),
                id: 4,
            })
            .unwrap();
        kit.run_until_idle();
        assert!(matches!(
            rx.try_recv().unwrap().answer,
            Answer::Registered(Ok(()))
        ));
    }

    #[test]
    fn unregister_only_drops_the_callers_binding() {
        let mut reg = Registry::new();
        let kit = TestKit::new(1);
        let a = kit.spawn_on(0, Mute).actor_ref();
        let b = kit.spawn_on(0, Mute).actor_ref();
        assert_eq!(reg.register("x".into(), a.clone()), Ok(()));
        reg.serve(Request::Unregister {
            name: "x".into(),
            actor: b,
        });
        assert_eq!(reg.stats().names, 1);
        reg.serve(Request::Unregister {
            name: "x".into(),
            actor: a,
        });
        assert_eq!(reg.stats(), RegistryStats::default());
    }
}
