//! The pool's per-shard [`Probe`]: the shutdown confirmation (see `shutdown.rs`) and, when the
//! pool waits for its members' asynchronous init ([`PoolBuilder::wait_for_init`]), their
//! parent.
//!
//! # Parent protocol (only with `wait_for_init`)
//!
//! 1. The building thread asks the probe of a member's shard to spawn it
//!    ([`ProbeMsg::Spawn`]); the probe spawns it as its child on its own shard
//!    ([`Context::spawn_child_on`]) with the pool's init timeout as the member's I-phase
//!    timeout, so the member itself arms that timer and fails with
//!    [`StopReason::InitTimeout`] when it passes.
//! 2. A member that finishes its I-phase reports [`ChildEvent::Initialized`]; the probe
//!    starts it at once (it becomes `Operational`). One that goes down reports
//!    [`ChildEvent::Down`] with its reason, which the probe records: the reason is known
//!    exactly, whenever the member stops (no monitor race).
//! 3. [`ProbeMsg::Reasons`] asks for the recorded reasons of some members; the probe answers
//!    once every one of them is down (the building thread bounds the wait).
//! 4. In its S-phase (the runtime's graceful shutdown, or a rollback) the probe stops the
//!    members still alive and waits until they are down, as a supervisor does; members are
//!    never restarted.
//!
//! [`PoolBuilder::wait_for_init`]: super::PoolBuilder::wait_for_init

use crate::lifecycle::{ChildEvent, Plugin, Progress, SystemMsg};
use crate::{Actor, ActorRef, Context, Reply, SpawnError, StopReason};
use std::sync::Arc;

/// Spawns one member as a child of the probe; returns its reference.
pub(crate) type SpawnFn =
    Box<dyn FnOnce(&mut Context<'_, Probe>) -> Result<ActorRef, SpawnError> + Send>;

/// Recorded stop reasons, by member index.
pub(crate) type Reasons = Vec<(usize, StopReason)>;

/// Messages of a [`Probe`].
pub(crate) enum ProbeMsg {
    /// Answers at once (the shutdown confirmation).
    Ping(Reply<()>),
    /// Spawns member `index` as a child of this probe.
    Spawn {
        /// The member's index in the pool.
        index: usize,
        /// Makes the child.
        spawn: SpawnFn,
        /// The child's reference, or the spawn error.
        reply: Reply<Result<ActorRef, SpawnError>>,
    },
    /// Answers the reasons of these members once each is down.
    Reasons(Vec<usize>, Reply<Reasons>),
}

/// A member spawned by this probe.
struct Member {
    index: usize,
    actor: ActorRef,
    /// Set by its `Down` event.
    down: Option<StopReason>,
}

/// One tiny actor per shard of the pool; see the module docs.
#[derive(Default)]
pub(crate) struct Probe {
    members: Vec<Member>,
    /// `Reasons` requests waiting for members to go down.
    waiting: Vec<(Vec<usize>, Reply<Reasons>)>,
}

impl Probe {
    /// The recorded reasons of `indices`, if every one of them is down.
    fn reasons(&self, indices: &[usize]) -> Option<Reasons> {
        indices
            .iter()
            .map(|&i| {
                self.members
                    .iter()
                    .find(|m| m.index == i)
                    .and_then(|m| m.down.clone())
                    .map(|r| (i, r))
            })
            .collect()
    }

    /// Answers the waiting `Reasons` requests that can be answered now.
    fn answer_waiting(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (indices, reply) in waiting {
            match self.reasons(&indices) {
                Some(r) => reply.send(r),
                None => self.waiting.push((indices, reply)),
            }
        }
    }

    fn alive(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.down.is_none() && m.actor.is_alive())
            .count()
    }
}

impl Actor for Probe {
    type Msg = ProbeMsg;

    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        vec![Box::new(Parent)]
    }

    fn handle(&mut self, msg: ProbeMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ProbeMsg::Ping(reply) => reply.send(()),
            ProbeMsg::Spawn {
                index,
                spawn,
                reply,
            } => {
                let spawned = spawn(ctx);
                if let Ok(actor) = &spawned {
                    self.members.push(Member {
                        index,
                        actor: actor.clone(),
                        down: None,
                    });
                }
                reply.send(spawned);
            }
            ProbeMsg::Reasons(indices, reply) => {
                self.waiting.push((indices, reply));
                self.answer_waiting();
            }
        }
    }
}

/// The probe's parent plugin: starts members, records why they went down, stops them in the
/// probe's S-phase.
struct Parent;

impl Plugin<Probe> for Parent {
    fn name(&self) -> &'static str {
        "pool-parent"
    }

    fn shutdown_start(
        &mut self,
        reason: &StopReason,
        probe: &mut Probe,
        _ctx: &mut Context<'_, Probe>,
    ) {
        let why = Arc::new(reason.clone());
        for m in probe.members.iter().filter(|m| m.down.is_none()) {
            // `Closed`: already gone; its Down event is on the way or it was forced down.
            let _ = m
                .actor
                .stop_with(StopReason::SupervisorShutdown(why.clone()));
        }
    }

    fn shutdown(&mut self, probe: &mut Probe, _ctx: &mut Context<'_, Probe>) -> Progress {
        // A member whose address died without a Down event (forced at runtime shutdown) does
        // not hold the phase; the probe's S-phase timeout bounds the rest.
        Progress::done_when(probe.alive() == 0)
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        probe: &mut Probe,
        ctx: &mut Context<'_, Probe>,
    ) -> Option<SystemMsg> {
        match msg.downcast::<ChildEvent>() {
            Ok(ChildEvent::Initialized(child)) => {
                ctx.start_child(&child);
                None
            }
            Ok(ChildEvent::Down { child, reason, .. }) => {
                if let Some(m) = probe.members.iter_mut().find(|m| m.actor == child) {
                    m.down = Some(reason);
                }
                probe.answer_waiting();
                None
            }
            Err(other) => Some(other),
        }
    }
}
