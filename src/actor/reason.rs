//! Why an actor stopped: a reason with its chain of causes.
//!
//! A reason may wrap the reason that caused it: a child stopped by its supervisor carries
//! `SupervisorShutdown(<the supervisor's reason>)`, a supervisor whose child failed its init
//! carries `ChildInitFailed { cause: <the child's reason> }`, and so on up the tree.
//! [`StopReason::chain`] walks from the outermost reason to the root cause, and
//! [`StopReason::is_failure`] looks at the root: a tree taken down by a panic three levels
//! below is a failure at every level.

use crate::error::{LinkError, RegistryError};
use std::fmt;
use std::sync::Arc;

/// Why an actor stopped (or failed to start), with the cause that led to it.
///
/// # Examples
///
/// ```
/// use coreactor::StopReason;
///
/// let child = StopReason::Panicked("disk on fire".into());
/// let sup = StopReason::FailureEscalation { child: "db".into(), cause: child.into() };
/// assert!(sup.is_failure());
/// assert_eq!(sup.root(), &StopReason::Panicked("disk on fire".into()));
/// assert_eq!(
///     sup.to_string(),
///     "child db failed (escalated) <- panicked: disk on fire"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// It stopped itself with [`Context::stop`](crate::Context::stop).
    Normal,
    /// Someone called `stop` on its address.
    Requested,
    /// A handler or hook panicked; the payload's message, if it was a string.
    Panicked(String),
    /// The runtime shut down.
    Shutdown,
    /// Its supervisor is shutting down (or restarting the group); the supervisor's reason.
    SupervisorShutdown(Arc<StopReason>),
    /// Its I-phase failed: a plugin reported the failure given as cause.
    InitFailed(Arc<StopReason>),
    /// Its I-phase did not finish within its init timeout.
    InitTimeout,
    /// A child failed its init while this supervisor was initializing (policy
    /// `ShutdownSelf`).
    ChildInitFailed {
        /// The child's name.
        child: String,
        /// Why the child failed.
        cause: Arc<StopReason>,
    },
    /// A child went down and this supervisor was configured to go down with it
    /// (`autoshutdown_supervisor`).
    ChildDown {
        /// The child's name.
        child: String,
        /// Why the child went down.
        cause: Arc<StopReason>,
    },
    /// A child's failure was escalated: its `escalate_failure` flag, or the restart intensity
    /// was exceeded.
    FailureEscalation {
        /// The child's name.
        child: String,
        /// Why the child failed.
        cause: Arc<StopReason>,
    },
    /// A server it was linked to shut down and asked it to unlink; the server's reason.
    UnlinkRequested(Arc<StopReason>),
    /// A link it asked for during its init failed.
    LinkFailed(LinkError),
    /// A registry operation of its init failed.
    Registry(RegistryError),
    /// A plugin (or the actor) failed with this message.
    Failed(String),
}

impl StopReason {
    /// The reason this one wraps, if any.
    pub fn cause(&self) -> Option<&StopReason> {
        match self {
            StopReason::SupervisorShutdown(c)
            | StopReason::InitFailed(c)
            | StopReason::UnlinkRequested(c) => Some(c),
            StopReason::ChildInitFailed { cause, .. }
            | StopReason::ChildDown { cause, .. }
            | StopReason::FailureEscalation { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// The innermost cause (the reason itself when it wraps nothing).
    pub fn root(&self) -> &StopReason {
        let mut r = self;
        while let Some(c) = r.cause() {
            r = c;
        }
        r
    }

    /// The reasons from this one to the root cause.
    pub fn chain(&self) -> impl Iterator<Item = &StopReason> {
        std::iter::successors(Some(self), |r| r.cause())
    }

    /// True if the root cause is abnormal: a panic, a failed or timed-out init, a failed link
    /// or registry operation, a plugin failure. `Normal`, `Requested` and `Shutdown` roots are
    /// not failures (this is what restart policies and `escalate_failure` look at).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self.root(),
            StopReason::Normal | StopReason::Requested | StopReason::Shutdown
        )
    }

    fn describe_self(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Normal => f.write_str("stopped itself"),
            StopReason::Requested => f.write_str("stop requested"),
            StopReason::Panicked(m) => write!(f, "panicked: {m}"),
            StopReason::Shutdown => f.write_str("runtime shut down"),
            StopReason::SupervisorShutdown(_) => f.write_str("supervisor shut down"),
            StopReason::InitFailed(_) => f.write_str("init failed"),
            StopReason::InitTimeout => f.write_str("init timed out"),
            StopReason::ChildInitFailed { child, .. } => write!(f, "child {child} failed init"),
            StopReason::ChildDown { child, .. } => write!(f, "child {child} went down"),
            StopReason::FailureEscalation { child, .. } => {
                write!(f, "child {child} failed (escalated)")
            }
            StopReason::UnlinkRequested(_) => f.write_str("linked server shut down"),
            StopReason::LinkFailed(e) => write!(f, "link failed: {e}"),
            StopReason::Registry(e) => write!(f, "registry: {e}"),
            StopReason::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl fmt::Display for StopReason {
    /// The chain, outermost first: `supervisor shut down <- child db failed init <- ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.chain().enumerate() {
            if i > 0 {
                f.write_str(" <- ")?;
            }
            r.describe_self(f)?;
        }
        Ok(())
    }
}
