//! Untyped actor references: what the lifecycle protocols (supervision, links, registry,
//! monitors) hold of the actors they talk to.

use super::addr::{Addr, Vt};
use super::cell::Control;
use super::lifecycle::{State, SystemMsg};
use super::reason::StopReason;
use crate::Actor;
use crate::error::SendError;
use crate::mailbox::erased::ErasedMsg;
use crate::shard::{Envelope, EnvelopeVTable, ShardShared, route};
use crate::sync::Arc;
use std::any::TypeId;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A reference to an actor of any type: it can be stopped, watched, compared, sent control
/// messages ([`SystemMsg`]), and turned back into a typed [`Addr`] when the type matches.
/// `Clone + Send + Sync`; equal to another reference exactly when both name the same actor.
#[derive(Clone)]
pub struct ActorRef {
    pub(crate) shard: Arc<ShardShared>,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    control: &'static EnvelopeVTable,
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
}

impl ActorRef {
    pub(crate) fn of<A: Actor>(shard: Arc<ShardShared>, slot: u32, generation: u32) -> ActorRef {
        ActorRef {
            shard,
            slot,
            generation,
            control: &Vt::<A>::CONTROL,
            type_id: TypeId::of::<A>,
            type_name: std::any::type_name::<A>,
        }
    }

    /// The shard the actor lives on.
    pub fn shard(&self) -> usize {
        self.shard.id
    }

    /// The actor's type name (for reports).
    pub fn type_name(&self) -> &'static str {
        (self.type_name)()
    }

    /// True if the actor has not shut down (a snapshot).
    pub fn is_alive(&self) -> bool {
        self.state() != State::ShutDown
    }

    /// The actor's lifecycle state (a snapshot; `ShutDown` once its address is dead).
    pub fn state(&self) -> State {
        if self.shard.rt.is_stopping() {
            return State::ShutDown;
        }
        match self.shard.table.get(self.slot) {
            Some(m) if m.is_open(self.generation) => State::from_u8(m.lifecycle_state()),
            _ => State::ShutDown,
        }
    }

    /// The typed address, if the actor is an `A`.
    pub fn downcast<A: Actor>(&self) -> Option<Addr<A>> {
        ((self.type_id)() == TypeId::of::<A>())
            .then(|| Addr::new(self.shard.clone(), self.slot, self.generation))
    }

    /// True if the actor is an `A`.
    pub fn is<A: Actor>(&self) -> bool {
        (self.type_id)() == TypeId::of::<A>()
    }

    /// Asks the actor to shut down (its S-phase runs); `Requested` is the reason.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if it is already gone.
    pub fn stop(&self) -> Result<(), SendError<()>> {
        self.stop_with(StopReason::Requested)
    }

    /// Asks the actor to shut down with `reason` (used by supervisors to pass their own reason
    /// down the tree).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if it is already gone.
    pub fn stop_with(&self, reason: StopReason) -> Result<(), SendError<()>> {
        self.send_control(Control::Stop(reason))
            .map_err(|_| SendError::Closed(()))
    }

    /// Sends a control message to the actor's plugins (control lane: never refused because
    /// the mailbox is full, handled before user messages).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] with the message if the actor is gone. A message that races with
    /// the actor's end is counted as a dead letter on arrival.
    pub fn send_system<M: std::any::Any + Send>(&self, msg: M) -> Result<(), SendError<M>> {
        if !self.is_alive() {
            return Err(SendError::Closed(msg));
        }
        let _ = self.send_control(Control::System(SystemMsg::new(msg)));
        Ok(())
    }

    pub(crate) fn send_control(&self, c: Control) -> Result<(), Control> {
        if !self.is_alive() {
            return Err(c);
        }
        route(
            &self.shard,
            Envelope {
                slot: self.slot,
                generation: self.generation,
                stamp: 0,
                msg: ErasedMsg::new(c),
                vt: self.control,
            },
        );
        Ok(())
    }
}

impl<A: Actor> From<&Addr<A>> for ActorRef {
    fn from(a: &Addr<A>) -> ActorRef {
        ActorRef::of::<A>(a.shard.clone(), a.slot, a.generation)
    }
}

impl<A: Actor> From<Addr<A>> for ActorRef {
    fn from(a: Addr<A>) -> ActorRef {
        ActorRef::from(&a)
    }
}

impl PartialEq for ActorRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shard, &other.shard)
            && self.slot == other.slot
            && self.generation == other.generation
    }
}

impl Eq for ActorRef {}

impl Hash for ActorRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shard.id.hash(state);
        self.slot.hash(state);
        self.generation.hash(state);
    }
}

impl fmt::Debug for ActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.type_name();
        let short = name.rsplit("::").next().unwrap_or(name);
        write!(
            f,
            "{short}({}:{}#{})",
            self.shard.id, self.slot, self.generation
        )
    }
}
