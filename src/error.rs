//! Small error types, one per area: sending, asking, spawning.
//!
//! Every failed send hands the message back ([`SendError::Full`], [`SendError::Closed`]), so no
//! message is ever lost without its sender being told.

use std::fmt;
use std::time::Duration;

/// Why a message could not be sent. The message is handed back to the caller.
///
/// # Examples
///
/// ```
/// use coreactor::SendError;
///
/// let err: SendError<u32> = SendError::Full(7);
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), 7);
/// ```
#[must_use = "a failed send hands the message back; dropping it loses the message"]
#[derive(PartialEq, Eq, Clone)]
pub enum SendError<M> {
    /// The receiver's mailbox holds `mailbox_capacity` user messages already (backpressure).
    Full(M),
    /// The receiver has stopped, never existed, or the runtime is shutting down.
    Closed(M),
}

impl<M> SendError<M> {
    /// Returns the message that could not be sent.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::Closed(m) => m,
        }
    }

    /// True if the mailbox was full.
    pub fn is_full(&self) -> bool {
        matches!(self, SendError::Full(_))
    }

    /// True if the receiver is gone.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("the receiver's mailbox is full"),
            SendError::Closed(_) => f.write_str("the receiver is stopped or does not exist"),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}

/// Why an `ask` got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskError {
    /// No reply arrived within the given timeout. A reply that arrives later is dropped and
    /// counted in the runtime's `late_replies`, never delivered to another asker.
    Timeout(Duration),
    /// The request could not be delivered: the actor is stopped or does not exist.
    Closed,
    /// The actor's mailbox stayed full until the deadline (outside threads) or was full at the
    /// time of the ask (inside an actor, which never waits).
    Full,
    /// The request was received but dropped without a reply: the handler dropped the
    /// [`Reply`](crate::Reply), the actor stopped or panicked before answering, or the request
    /// was discarded at shutdown.
    Dropped,
    /// The runtime is shut down.
    Shutdown,
    /// A blocking ask was made on a shard thread, where it would stall every actor of the shard
    /// (and deadlock if the target lives there): use `Context::ask` or `Addr::ask_async`.
    WouldBlock,
}

impl AskError {
    /// What an ask reports when its request could not be sent.
    pub(crate) fn from_send<M>(e: &SendError<M>, runtime_stopping: bool) -> AskError {
        match e {
            SendError::Full(_) => AskError::Full,
            SendError::Closed(_) if runtime_stopping => AskError::Shutdown,
            SendError::Closed(_) => AskError::Closed,
        }
    }
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Timeout(d) => write!(f, "no reply within {d:?}"),
            AskError::Closed => f.write_str("the actor is stopped or does not exist"),
            AskError::Full => f.write_str("the actor's mailbox is full"),
            AskError::Dropped => f.write_str("the request was dropped without a reply"),
            AskError::Shutdown => f.write_str("the runtime is shut down"),
            AskError::WouldBlock => {
                f.write_str("a blocking ask on a shard thread; use Context::ask or ask_async")
            }
        }
    }
}

impl std::error::Error for AskError {}

/// Why an actor could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The shard index is not below the runtime's shard count.
    NoSuchShard {
        /// The requested shard.
        shard: usize,
        /// How many shards the runtime has.
        shards: usize,
    },
    /// The shard already holds `max_actors` live actors.
    ShardFull {
        /// The shard that is full.
        shard: usize,
        /// Its configured `max_actors`.
        max_actors: usize,
    },
    /// The runtime is shutting down or shut down.
    Shutdown,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NoSuchShard { shard, shards } => {
                write!(f, "no shard {shard}: the runtime has {shards} shards")
            }
            SpawnError::ShardFull { shard, max_actors } => {
                write!(
                    f,
                    "shard {shard} already holds max_actors = {max_actors} actors"
                )
            }
            SpawnError::Shutdown => f.write_str("the runtime is shut down"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Why a link (a client's claim that a server outlives it) could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The server's address is dead (stopped, never existed).
    NoServer,
    /// The server is shutting down or shut down.
    NotLinkable,
    /// This client is already linked to that server.
    AlreadyLinked,
    /// No answer within the client's init timeout.
    Timeout,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NoServer => f.write_str("the server does not exist"),
            LinkError::NotLinkable => f.write_str("the server is shutting down"),
            LinkError::AlreadyLinked => f.write_str("already linked to this server"),
            LinkError::Timeout => f.write_str("the server did not answer in time"),
        }
    }
}

impl std::error::Error for LinkError {}

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is registered already (to another address, or to this one).
    AlreadyRegistered(String),
    /// No actor is registered under this name.
    UnknownName(String),
    /// The name is registered for an actor of another type.
    WrongType {
        /// The name looked up.
        name: String,
        /// The type the caller asked for.
        expected: &'static str,
        /// The type of the registered actor.
        found: &'static str,
    },
    /// A delayed discovery was cancelled before the name appeared.
    Cancelled(String),
    /// No answer from the registry (or no registration of the name) within the timeout.
    Timeout(String),
    /// The registry actor is gone (stopped, or the runtime is shutting down).
    Unavailable,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::AlreadyRegistered(n) => write!(f, "name {n:?} is already registered"),
            RegistryError::UnknownName(n) => write!(f, "no actor is registered as {n:?}"),
            RegistryError::WrongType {
                name,
                expected,
                found,
            } => write!(f, "{name:?} is a {found}, not a {expected}"),
            RegistryError::Cancelled(n) => write!(f, "discovery of {n:?} was cancelled"),
            RegistryError::Timeout(n) => write!(f, "{n:?}: no answer in time"),
            RegistryError::Unavailable => f.write_str("the registry is not running"),
        }
    }
}

impl std::error::Error for RegistryError {}
