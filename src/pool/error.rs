//! The pool's error types, one per operation: requests, building, shutting down.

use crate::lifecycle::State;
use crate::{AskError, SpawnError, StopReason};
use std::fmt;

/// Why a request through a [`Pool`](super::Pool) failed.
///
/// `M` is the message type for sends (the message comes back in
/// [`MailboxFull`](Self::MailboxFull), [`Closed`](Self::Closed) and
/// [`NoSuchMember`](Self::NoSuchMember)); asks use `PoolError<()>` and report their failures as
/// [`Ask`](Self::Ask) (or `NoSuchMember`, before anything is sent).
///
/// # Examples
///
/// ```
/// use coreactor::pool::PoolError;
///
/// let err: PoolError<&str> = PoolError::MailboxFull("put k v");
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), Some("put k v"));
/// ```
#[must_use = "a failed send hands the message back; dropping it loses the message"]
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError<M = ()> {
    /// The chosen member's mailbox holds `mailbox_capacity` messages (backpressure, from
    /// `tell`; `tell_timeout` after waiting). The message comes back.
    MailboxFull(M),
    /// The chosen member has stopped (the pool was shut down, or the member failed). The
    /// message comes back.
    Closed(M),
    /// [`Route::Member`](super::Route::Member) named an index outside `0..size`. Nothing was
    /// sent; the message comes back.
    NoSuchMember {
        /// The requested index.
        index: usize,
        /// The pool's size.
        size: usize,
        /// The message (`()` for asks, whose request was never built).
        msg: M,
    },
    /// An ask got no answer: timeout, full mailbox (past the deadline), member stopped,
    /// request dropped (for example discarded at shutdown), runtime shut down, or a blocking
    /// ask on a shard thread ([`AskError::WouldBlock`]).
    Ask(AskError),
}

impl<M> PoolError<M> {
    /// The message handed back, if this error carries one.
    pub fn into_inner(self) -> Option<M> {
        match self {
            PoolError::MailboxFull(m)
            | PoolError::Closed(m)
            | PoolError::NoSuchMember { msg: m, .. } => Some(m),
            PoolError::Ask(_) => None,
        }
    }

    /// True if a mailbox was full (`MailboxFull`, or an ask that found no room in time).
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            PoolError::MailboxFull(_) | PoolError::Ask(AskError::Full)
        )
    }

    /// The ask error, for [`Ask`](Self::Ask).
    pub fn ask_error(&self) -> Option<&AskError> {
        match self {
            PoolError::Ask(e) => Some(e),
            _ => None,
        }
    }

    /// The same error with the message replaced by `msg` (used to hand a routing error back
    /// with the caller's message).
    pub(crate) fn with_msg<N>(self, msg: N) -> PoolError<N> {
        match self {
            PoolError::MailboxFull(_) => PoolError::MailboxFull(msg),
            PoolError::Closed(_) => PoolError::Closed(msg),
            PoolError::NoSuchMember { index, size, .. } => {
                PoolError::NoSuchMember { index, size, msg }
            }
            PoolError::Ask(e) => PoolError::Ask(e),
        }
    }
}

impl<M> From<AskError> for PoolError<M> {
    fn from(e: AskError) -> Self {
        PoolError::Ask(e)
    }
}

impl<M> fmt::Debug for PoolError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::MailboxFull(_) => f.write_str("MailboxFull(..)"),
            PoolError::Closed(_) => f.write_str("Closed(..)"),
            PoolError::NoSuchMember { index, size, .. } => f
                .debug_struct("NoSuchMember")
                .field("index", index)
                .field("size", size)
                .finish_non_exhaustive(),
            PoolError::Ask(e) => f.debug_tuple("Ask").field(e).finish(),
        }
    }
}

impl<M> fmt::Display for PoolError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::MailboxFull(_) => f.write_str("the pool member's mailbox is full"),
            PoolError::Closed(_) => f.write_str("the pool member is stopped"),
            PoolError::NoSuchMember { index, size, .. } => {
                write!(f, "no pool member {index}: the pool has {size} members")
            }
            PoolError::Ask(e) => write!(f, "ask through the pool failed: {e}"),
        }
    }
}

impl<M> std::error::Error for PoolError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Ask(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a [`Pool`](super::Pool) could not be built. Members spawned before the failure are
/// stopped again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolBuildError {
    /// The pool size was zero.
    EmptyPool,
    /// [`PoolBuilder::shards`](super::PoolBuilder::shards) was given no shard.
    NoShards,
    /// A requested shard does not exist.
    NoSuchShard {
        /// The requested shard.
        shard: usize,
        /// How many shards the runtime has.
        shards: usize,
    },
    /// The runtime refused to spawn an actor of the pool (a member or the pool's per-shard
    /// probe) on `shard`.
    Spawn {
        /// The shard.
        shard: usize,
        /// The runtime's error.
        error: SpawnError,
    },
    /// With [`PoolBuilder::wait_for_init`](super::PoolBuilder::wait_for_init): these members
    /// did not become operational (in member order). Every member was stopped again.
    Init {
        /// The members that failed, with why.
        failed: Vec<MemberInitError>,
    },
    /// [`PoolBuilder::wait_for_init`](super::PoolBuilder::wait_for_init) on a shard thread of
    /// the runtime, where waiting would stall the shard (or deadlock). Nothing was spawned.
    OnShardThread,
}

/// One member that did not become operational while its pool was built
/// ([`PoolBuildError::Init`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberInitError {
    /// The member's index.
    pub index: usize,
    /// Its shard.
    pub shard: usize,
    /// What happened to it.
    pub failure: InitFailure,
}

/// How a member failed to start ([`MemberInitError::failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitFailure {
    /// It went down before it became operational: its init failed, panicked, or outlived its
    /// init timeout ([`StopReason::InitTimeout`]). The reason chain, or `None` if its
    /// shutdown did not complete within the build's grace period.
    Stopped(Option<StopReason>),
    /// It was still in this state when the build's deadline (the init timeout plus a grace
    /// period) passed: its shard did not run its init timer (a shard stuck in user code).
    TimedOut(State),
}

impl MemberInitError {
    /// True if the member did not finish its init in time (its own init timer fired, or the
    /// build's deadline passed), false if it failed.
    pub fn is_timeout(&self) -> bool {
        match &self.failure {
            InitFailure::TimedOut(_) => true,
            InitFailure::Stopped(Some(r)) => r.chain().any(|r| *r == StopReason::InitTimeout),
            InitFailure::Stopped(None) => false,
        }
    }

    /// The member's stop reason, if it stopped and the reason is known.
    pub fn reason(&self) -> Option<&StopReason> {
        match &self.failure {
            InitFailure::Stopped(r) => r.as_ref(),
            InitFailure::TimedOut(_) => None,
        }
    }
}

impl fmt::Display for MemberInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, s) = (self.index, self.shard);
        match &self.failure {
            InitFailure::Stopped(Some(r)) => write!(f, "member {i} (shard {s}) stopped: {r}"),
            InitFailure::Stopped(None) => {
                write!(
                    f,
                    "member {i} (shard {s}) stopped (reason not reported in time)"
                )
            }
            InitFailure::TimedOut(state) => write!(
                f,
                "member {i} (shard {s}) still {state:?} at the init deadline"
            ),
        }
    }
}

impl std::error::Error for MemberInitError {}

impl fmt::Display for PoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolBuildError::EmptyPool => f.write_str("a pool needs at least one member"),
            PoolBuildError::NoShards => f.write_str("a pool needs at least one shard"),
            PoolBuildError::NoSuchShard { shard, shards } => {
                write!(f, "no shard {shard}: the runtime has {shards} shards")
            }
            PoolBuildError::Spawn { shard, error } => {
                write!(f, "could not spawn a pool actor on shard {shard}: {error}")
            }
            PoolBuildError::Init { failed } => {
                write!(f, "{} pool member(s) did not start: ", failed.len())?;
                for (n, e) in failed.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            PoolBuildError::OnShardThread => f.write_str(
                "a pool that waits for its members' init cannot be built on a shard thread",
            ),
        }
    }
}

impl std::error::Error for PoolBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolBuildError::Spawn { error, .. } => Some(error),
            PoolBuildError::Init { failed } => failed
                .first()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// Why [`Pool::shutdown`](super::Pool::shutdown) could not confirm that every member stopped.
/// In every case each member has been asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolShutdownError {
    /// These members (indices) were not confirmed stopped within the shutdown timeout: still
    /// in a handler, or still in their `stopped` hook.
    Timeout {
        /// The members not confirmed stopped.
        pending: Vec<usize>,
    },
    /// Called on a shard thread of the pool's runtime, where waiting would stall the shard (or
    /// deadlock, waiting for a member on the same shard). The stops were requested; nothing
    /// was waited for.
    OnShardThread,
    /// The runtime itself is shutting down: it stops the members, and
    /// [`Runtime::shutdown`](crate::Runtime::shutdown) is what waits for their hooks.
    RuntimeShutDown,
}

impl fmt::Display for PoolShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolShutdownError::Timeout { pending } => write!(
                f,
                "pool members {pending:?} were not confirmed stopped within the shutdown timeout"
            ),
            PoolShutdownError::OnShardThread => {
                f.write_str("pool shutdown on a shard thread: stops requested, not waited for")
            }
            PoolShutdownError::RuntimeShutDown => {
                f.write_str("the runtime is shutting down; it stops the pool members")
            }
        }
    }
}

impl std::error::Error for PoolShutdownError {}
