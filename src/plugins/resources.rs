//! The resources plugin: counters that hold an actor's I-phase or S-phase until released.
//!
//! The pattern (rotor's): acquire a resource id when an asynchronous operation starts (a
//! connect in `init`, a flush in `stopping`) and release it when the operation's completion
//! message arrives. While any resource is held, the I-phase (and, from `Operational` on, the
//! S-phase) waits; the release re-polls the phase. The phase timeouts bound the wait.

use super::RESOURCES_RANK;
use crate::actor::lifecycle::{Plugin, PluginTransfer, Progress};
use crate::{Actor, Context};
use std::collections::HashMap;

/// Identifies one kind of resource an actor holds (the actor's own numbering).
pub type ResourceId = u32;

/// Holds the actor's phases while any resource is acquired. Added on first
/// [`Context::acquire`].
///
/// As in rotor, a resource acquired before the actor is operational holds the I-phase only,
/// and one acquired from `Operational` on holds the S-phase: an init that fails or times out
/// while a connect is outstanding does not wait for that connect to shut down.
#[derive(Debug, Default)]
pub struct Resources {
    /// Holds per id, and how many of them were taken from `Operational` on.
    held: HashMap<ResourceId, (u32, u32)>,
}

impl Resources {
    fn holds_init(&self) -> bool {
        self.held.values().any(|(n, late)| n > late)
    }

    fn holds_shutdown(&self) -> bool {
        self.held.values().any(|(_, late)| *late > 0)
    }

    fn acquire(&mut self, id: ResourceId, late: bool) {
        let e = self.held.entry(id).or_insert((0, 0));
        e.0 += 1;
        if late {
            e.1 += 1;
        }
    }

    fn release(&mut self, id: ResourceId) -> bool {
        if let Some((n, late)) = self.held.get_mut(&id) {
            *n -= 1;
            // A release is counted against the early holds first: what remains holds the
            // S-phase whenever it may be a late hold (conservative).
            *late = (*late).min(*n);
            if *n == 0 {
                self.held.remove(&id);
            }
        }
        self.held.contains_key(&id)
    }
}

impl<A: Actor> Plugin<A> for Resources {
    fn name(&self) -> &'static str {
        "resources"
    }

    /// Movable while nothing is held.
    fn can_transfer(&self) -> bool {
        self.held.is_empty()
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        Some(Box::new(Resources::default()))
    }

    fn init(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        Progress::done_when(!self.holds_init())
    }

    fn shutdown(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        Progress::done_when(!self.holds_shutdown())
    }
}

impl<A: Actor> Context<'_, A> {
    /// Acquires resource `id` (counted: acquire twice, release twice). Until it is released,
    /// the I-phase waits (if acquired before the actor is operational) or the S-phase waits
    /// (if acquired from `Operational` on, including in [`Actor::stopping`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::testkit::TestKit;
    /// use coreactor::lifecycle::State;
    /// use coreactor::{Actor, Context};
    ///
    /// struct Store;
    /// enum Msg { Replayed }
    /// impl Actor for Store {
    ///     type Msg = Msg;
    ///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.acquire(1); // the log replay
    ///     }
    ///     fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
    ///         match msg { Msg::Replayed => { ctx.release(1); } }
    ///     }
    /// }
    ///
    /// let kit = TestKit::new(1);
    /// let store = kit.spawn_on(0, Store);
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&store), State::Initializing);
    /// store.tell(Msg::Replayed).unwrap();
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&store), State::Operational);
    /// ```
    pub fn acquire(&mut self, id: ResourceId) {
        let late = self.state() >= crate::lifecycle::State::Operational;
        self.ensure_plugin(RESOURCES_RANK, Resources::default);
        self.with_plugin(|r: &mut Resources, _| r.acquire(id, late));
    }

    /// Releases one hold of resource `id`; returns whether `id` is still held. The phase the
    /// actor is in is polled again after the current message.
    pub fn release(&mut self, id: ResourceId) -> bool {
        self.with_plugin(|r: &mut Resources, _| r.release(id))
            .unwrap_or(false)
    }

    /// True if resource `id` is held.
    pub fn holds(&mut self, id: ResourceId) -> bool {
        self.with_plugin(|r: &mut Resources, _| r.held.contains_key(&id))
            .unwrap_or(false)
    }
}

impl<A: Actor> PluginTransfer<A> for Resources {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        self
    }
}
