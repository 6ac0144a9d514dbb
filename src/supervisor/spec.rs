//! What a supervisor is told: its children (`ChildSpec`) and its policies.

use super::Supervisor;
use crate::actor::lifecycle::ChildOptions;
use crate::error::SpawnError;
use crate::{Actor, ActorRef, Context};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Whether a child is restarted when it goes down (Erlang's names; rotor's in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always restarted, whatever the reason (`always`).
    #[default]
    Permanent,
    /// Restarted only after a failure: a panic, a failed init, a plugin failure
    /// (`fail_only`, "on failure").
    Transient,
    /// Never restarted (`never`).
    Temporary,
}

impl Restart {
    /// Whether a child that went down for `reason` is restarted under this policy.
    pub fn applies(self, reason: &crate::StopReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => reason.is_failure(),
            Restart::Temporary => false,
        }
    }
}

/// Which children are restarted together when one must be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the child that went down.
    #[default]
    OneForOne,
    /// All children: the others are stopped, then all are started again in order.
    OneForAll,
    /// The child and every child started after it (in spec order).
    RestForOne,
}

/// What a failed child init does to a supervisor that is itself still initializing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitFailurePolicy {
    /// The supervisor's own init fails (`ChildInitFailed`), and the failure climbs the tree
    /// (rotor's `shutdown_self`, the default).
    #[default]
    ShutdownSelf,
    /// Only the failed child is dropped; the supervisor goes on initializing with the others
    /// (what rotor's `shutdown_failed` documents; see docs/lifecycle.md).
    ShutdownFailed,
}

/// At most `max_restarts` restarts within `window`; one more and the supervisor gives up and
/// goes down with [`StopReason::FailureEscalation`](crate::StopReason::FailureEscalation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within the window.
    pub max_restarts: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Default for Intensity {
    /// 3 restarts in 5 seconds.
    fn default() -> Self {
        Intensity {
            max_restarts: 3,
            window: Duration::from_secs(5),
        }
    }
}

/// Delay before a restart: `initial * 2^n` capped at `max`, where `n` counts the child's
/// restarts within the intensity window, then spread by ±`jitter` (a fraction, 0.0–1.0) from
/// the supervisor's seeded generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay of the first restart.
    pub initial: Duration,
    /// Upper bound.
    pub max: Duration,
    /// Relative spread, 0.0 (none) to 1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 10 ms doubling up to 1 s, ±10 %.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(1),
            jitter: 0.1,
        }
    }
}

impl Backoff {
    /// No delay at all.
    pub fn none() -> Backoff {
        Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// The delay before restart number `n` (0-based), with `unit` a sample in [-1, 1].
    pub fn delay(&self, n: u32, unit: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let spread = 1.0 + self.jitter.clamp(0.0, 1.0) * unit.clamp(-1.0, 1.0);
        base.mul_f64(spread.max(0.0))
    }
}

type Starter = dyn Fn(&mut Context<'_, Supervisor>, usize, ChildOptions) -> Result<ActorRef, SpawnError>
    + Send
    + Sync;

/// One child of a supervisor: how to build it, where, and how it is supervised.
///
/// # Examples
///
/// ```
/// use coreactor::supervisor::{ChildSpec, Restart};
/// use coreactor::{Actor, Context};
/// use std::time::Duration;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
/// }
///
/// let spec = ChildSpec::new("worker", || Worker)
///     .on_shard(1)
///     .restart(Restart::Transient)
///     .init_timeout(Duration::from_millis(500));
/// assert_eq!(spec.name(), "worker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: String,
    pub(crate) shard: Option<usize>,
    pub(crate) restart: Restart,
    pub(crate) opts: ChildOptions,
    pub(crate) escalate_failure: bool,
    pub(crate) autoshutdown_supervisor: bool,
    pub(crate) start: Arc<Starter>,
}

impl ChildSpec {
    /// A child built by `factory` (called on the child's shard, once per start). Defaults:
    /// the supervisor's shard, [`Restart::Permanent`], the default phase timeouts.
    pub fn new<B, F>(name: impl Into<String>, factory: F) -> ChildSpec
    where
        B: Actor,
        F: Fn() -> B + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        ChildSpec::with_start(
            name.into(),
            Arc::new(move |ctx, shard, opts| {
                let f = factory.clone();
                ctx.spawn_child_on(shard, opts, move || f())
                    .map(ActorRef::from)
            }),
        )
    }

    fn with_start(name: String, start: Arc<Starter>) -> ChildSpec {
        ChildSpec {
            name,
            shard: None,
            restart: Restart::default(),
            opts: ChildOptions::default(),
            escalate_failure: false,
            autoshutdown_supervisor: false,
            start,
        }
    }

    /// A **migratable** child (its state is `Send` and owns nothing shard-bound): when its
    /// shard is busy, work stealing may move it to an idle one; supervision is unaffected.
    pub fn migratable<B, F>(name: impl Into<String>, factory: F) -> ChildSpec
    where
        B: Actor + Send,
        F: Fn() -> B + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        ChildSpec::with_start(
            name.into(),
            Arc::new(move |ctx, shard, opts| {
                let f = factory.clone();
                ctx.spawn_migratable_child_on(shard, opts, move || f())
                    .map(ActorRef::from)
            }),
        )
    }

    /// The child's name (unique among its siblings by convention; used in reasons).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the child on shard `shard` instead of the supervisor's.
    pub fn on_shard(mut self, shard: usize) -> Self {
        self.shard = Some(shard);
        self
    }

    /// The restart policy.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// The child's I-phase timeout.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.opts.init_timeout = timeout;
        self
    }

    /// The child's S-phase timeout (keep it below the supervisor's own).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.opts.shutdown_timeout = timeout;
        self
    }

    /// A failure of this child (abnormal reason) takes the supervisor down with
    /// [`StopReason::FailureEscalation`](crate::StopReason::FailureEscalation) instead of
    /// restarting it (rotor's `escalate_failure`).
    pub fn escalate_failure(mut self) -> Self {
        self.escalate_failure = true;
        self
    }

    /// This child going down, for any reason, takes the supervisor down with
    /// [`StopReason::ChildDown`](crate::StopReason::ChildDown) (rotor's
    /// `autoshutdown_supervisor`).
    pub fn autoshutdown_supervisor(mut self) -> Self {
        self.autoshutdown_supervisor = true;
        self
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("shard", &self.shard)
            .field("restart", &self.restart)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
