//! The user API: the [`Actor`] trait, addresses, the handler [`Context`], and asks.
//!
//! # Semantics
//!
//! * **Ownership.** An actor lives on one shard; only that shard's thread touches its state, and
//!   never behind a lock. Handlers run one message at a time (`&mut self`).
//! * **Ordering.** Messages from one sender to one receiver are handled in the order they were
//!   sent (FIFO per pair), on the same shard and across shards. No order is promised between
//!   different senders.
//! * **Fairness.** An actor handles at most `batch_budget` messages per turn before the other
//!   ready actors of its shard run.
//! * **Backpressure.** Each actor's user mailbox holds at most `mailbox_capacity` messages;
//!   [`Addr::try_tell`] answers [`SendError::Full`](crate::SendError::Full) at once, from any
//!   thread. Control messages (stop) and replies to the actor's own asks bypass the bound.
//! * **Delivery.** At most once. A message accepted for an actor that stops before handling it
//!   becomes a dead letter: counted, reported to the runtime's dead-letter hook, and dropped; if
//!   it carried a [`Reply`], the asker receives an error. Nothing is dropped silently.
//! * **Panics.** A panic in a handler (or in `started`/`stopped`) fails that actor only: it stops
//!   with [`StopReason::Panicked`], its queued messages become dead letters, and the shard keeps
//!   running its other actors.

mod actor_ref;
mod addr;
mod ask;
pub(crate) mod cell;
mod context;
pub mod lifecycle;
mod reason;
pub(crate) mod slot;

pub use actor_ref::ActorRef;
pub use addr::Addr;
pub use ask::{AskFuture, Reply};
pub(crate) use context::install_remote;
pub use context::{Context, TimerId};
pub use reason::StopReason;

use lifecycle::Plugin;

/// An actor: state owned by one shard, changed only by handling messages.
///
/// # Examples
///
/// ```
/// use coreactor::{Actor, Context, Reply, Runtime};
/// use std::time::Duration;
///
/// struct Counter(u64);
///
/// enum Msg {
///     Add(u64),
///     Get(Reply<u64>),
/// }
///
/// impl Actor for Counter {
///     type Msg = Msg;
///     fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => reply.send(self.0),
///         }
///     }
/// }
///
/// let rt = Runtime::builder().shards(2).build().unwrap();
/// let counter = rt.spawn(Counter(0)).unwrap();
/// counter.tell(Msg::Add(2)).unwrap();
/// counter.tell(Msg::Add(3)).unwrap();
/// let total = counter.ask(Msg::Get, Duration::from_secs(5)).unwrap();
/// assert_eq!(total, 5);
/// rt.shutdown().unwrap();
/// ```
pub trait Actor: Sized + 'static {
    /// The messages this actor handles (usually an enum). Messages up to 64 bytes travel
    /// between shards without a heap allocation.
    type Msg: Send + 'static;

    /// Handles one message.
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Context<'_, Self>);

    /// Starts the I-phase, on the actor's shard, when the actor is installed: the place to
    /// ask for links ([`Context::link`]), names ([`Context::register_name`],
    /// [`Context::discover`]), resources ([`Context::acquire`]) and children. The actor
    /// becomes operational only when all of that is done (see
    /// [`lifecycle`](crate::lifecycle)); a panic here fails the init.
    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx;
    }

    /// The actor's own lifecycle plugins, in I-phase order (asked once, at install).
    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        Vec::new()
    }

    /// Called when the actor becomes operational (for an actor without plugins holding its
    /// init: on its shard, before its first message).
    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        let _ = ctx;
    }

    /// Called when the S-phase begins, with the reason: cancel outstanding work here, or
    /// [`acquire`](Context::acquire) a resource to hold the shutdown until a flush completes.
    fn stopping(&mut self, reason: &StopReason, ctx: &mut Context<'_, Self>) {
        let _ = (reason, ctx);
    }

    /// Called on the actor's shard when it is shut down, whatever the reason. Messages still
    /// queued for it are dead letters by then.
    fn stopped(&mut self, reason: &StopReason, ctx: &mut Context<'_, Self>) {
        let _ = (reason, ctx);
    }

    /// A server this actor linked to is shutting down and asks it to unlink. Return `true`
    /// (the default) to shut down too, with [`StopReason::UnlinkRequested`]; `false` to
    /// survive the server.
    fn on_unlink(
        &mut self,
        server: &ActorRef,
        reason: &StopReason,
        ctx: &mut Context<'_, Self>,
    ) -> bool {
        let _ = (server, reason, ctx);
        true
    }
}

/// Renders a panic payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
