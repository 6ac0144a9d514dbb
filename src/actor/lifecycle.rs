//! The lifecycle every actor goes through (the rotor model), and the plugin trait that composes
//! its two asynchronous phases.
//!
//! ```text
//!  New ──► Initializing ──► Initialized ──► Operational ──► ShuttingDown ──► ShutDown
//!               │   (I-phase)     (waits for start)             (S-phase)      ▲
//!               └── init fails / times out / stop requested ─────────┘───────────┘
//! ```
//!
//! * **I-phase.** When the actor is installed on its shard it becomes `Initializing`:
//!   [`Actor::init`](crate::Actor::init) runs, then the plugins are polled **in order**; the
//!   poll stops at the first plugin that is not done, and resumes after every event the actor
//!   receives (a control message, a handled message, a released resource). When every plugin
//!   is done the actor is `Initialized`. A plugin that fails, a panic in `init`, or the init
//!   timeout skips `Operational`: the actor goes straight to its S-phase with
//!   [`StopReason::InitFailed`] (or [`StopReason::InitTimeout`]).
//! * **Start.** An actor without a supervisor starts at once. A supervised one tells its
//!   supervisor it is initialized ([`ChildEvent::Initialized`]) and waits for the supervisor's
//!   start signal (immediately, or — with `synchronize_start` — when all siblings are
//!   initialized). Starting calls every plugin's [`Plugin::start`] in **reverse** order, then
//!   [`Actor::started`](crate::Actor::started): `Operational`.
//! * **S-phase.** A stop (requested, self-inflicted, from the supervisor, a failed init, a
//!   panic) makes the actor `ShuttingDown`: [`Actor::stopping`](crate::Actor::stopping) runs,
//!   then the plugins are polled in **reverse** order until all are done; then the actor is
//!   `ShutDown`: its address closes, queued messages become dead letters,
//!   [`Actor::stopped`](crate::Actor::stopped) runs, and the supervisor (if any) receives
//!   [`ChildEvent::Down`] with the reason chain. A shutdown that does not finish within the
//!   shutdown timeout is reported to the runtime's lifecycle-error hook and forced.
//! * The actor handles its messages in every state but `ShutDown` (a plugin may be waiting
//!   for one of them); [`Context::state`](crate::Context::state) tells which state it is in.

use super::ActorRef;
use super::reason::StopReason;
use crate::Actor;
use crate::actor::Context;
use std::any::Any;
use std::fmt;
use std::time::Duration;

/// Default I-phase timeout of an actor spawned without explicit options.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default S-phase timeout of an actor spawned without explicit options.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum State {
    /// Spawned, not yet installed on its shard.
    New = 0,
    /// I-phase: `init` ran, plugins are not all done.
    Initializing = 1,
    /// I-phase done; waiting for the supervisor's start signal.
    Initialized = 2,
    /// Started: the normal working state.
    Operational = 3,
    /// S-phase: plugins are releasing what the actor holds.
    ShuttingDown = 4,
    /// Gone: the address is closed.
    ShutDown = 5,
}

impl State {
    pub(crate) fn from_u8(v: u8) -> State {
        match v {
            0 => State::New,
            1 => State::Initializing,
            2 => State::Initialized,
            3 => State::Operational,
            4 => State::ShuttingDown,
            _ => State::ShutDown,
        }
    }
}

/// What a plugin answers when polled during a phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// This plugin's part of the phase is done.
    Done,
    /// Not yet: poll again after the next event.
    Pending,
    /// The phase failed (only meaningful in the I-phase; in the S-phase it is treated as
    /// done and reported to the lifecycle-error hook).
    Failed(StopReason),
}

impl Progress {
    /// `Done` if `done`, else `Pending` (the usual answer of a plugin waiting for something).
    pub fn done_when(done: bool) -> Progress {
        if done {
            Progress::Done
        } else {
            Progress::Pending
        }
    }
}

/// A type-erased control message for plugins: lifecycle, supervision, link and registry
/// protocols travel as `SystemMsg`s in the control lane (never refused by a full mailbox,
/// handled before user messages).
pub struct SystemMsg(Box<dyn Any + Send>);

impl SystemMsg {
    /// Wraps a protocol message.
    pub fn new<M: Any + Send>(msg: M) -> SystemMsg {
        SystemMsg(Box::new(msg))
    }

    /// True if it holds an `M`.
    pub fn is<M: Any>(&self) -> bool {
        self.0.is::<M>()
    }

    /// Takes the `M` out, or gives the message back if it holds something else.
    ///
    /// # Errors
    ///
    /// The message itself when it is not an `M`.
    pub fn downcast<M: Any>(self) -> Result<M, SystemMsg> {
        match self.0.downcast::<M>() {
            Ok(m) => Ok(*m),
            Err(b) => Err(SystemMsg(b)),
        }
    }
}

impl fmt::Debug for SystemMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemMsg(..)")
    }
}

/// What a supervised actor tells its supervisor (delivered to the supervisor's plugins as a
/// [`SystemMsg`]).
#[derive(Debug, Clone)]
pub enum ChildEvent {
    /// The child finished its I-phase and waits for its start signal.
    Initialized(ActorRef),
    /// The child is shut down. `started` says whether it ever became operational (a child
    /// that was never started failed its init).
    Down {
        /// The child.
        child: ActorRef,
        /// Why it went down, with the cause chain.
        reason: StopReason,
        /// Whether it reached `Operational`.
        started: bool,
    },
}

/// How a child is spawned under a supervisor: who supervises it and its phase timeouts.
#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// Time allowed for the I-phase (after which the init fails with
    /// [`StopReason::InitTimeout`]).
    pub init_timeout: Duration,
    /// Time allowed for the S-phase (after which it is reported and forced).
    pub shutdown_timeout: Duration,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            init_timeout: DEFAULT_INIT_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// A part of an actor's init and shutdown (rotor's plugin): polled in order during the
/// I-phase, in reverse order at start and during the S-phase, and offered every control
/// message no earlier plugin consumed.
///
/// An actor lists its own plugins in [`Actor::plugins`](crate::Actor::plugins); they run
/// after the built-in ones (links, registry, resources) in the I-phase and before them in the
/// S-phase. Each method may be called many times: `init` and `shutdown` are re-polled after
/// every event until they answer [`Progress::Done`], so they must be idempotent (start the
/// asynchronous work once, then report its state).
///
/// # Examples
///
/// A plugin that holds the I-phase until the actor has seen a `Ready` message:
///
/// ```
/// use coreactor::lifecycle::{Plugin, Progress};
/// use coreactor::{Actor, Context};
///
/// struct Db { connected: bool }
/// enum Msg { Ready }
///
/// struct WaitConnected;
/// impl Plugin<Db> for WaitConnected {
///     fn name(&self) -> &'static str { "wait-connected" }
///     fn init(&mut self, db: &mut Db, _ctx: &mut Context<'_, Db>) -> Progress {
///         if db.connected { Progress::Done } else { Progress::Pending }
///     }
/// }
///
/// impl Actor for Db {
///     type Msg = Msg;
///     fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> { vec![Box::new(WaitConnected)] }
///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
///         ctx.addr().tell(Msg::Ready).unwrap(); // stands in for an async connect
///     }
///     fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
///         match msg { Msg::Ready => self.connected = true }
///     }
/// }
/// ```
pub trait Plugin<A: Actor>: AsAnyMut + 'static {
    /// A short name, used in reports.
    fn name(&self) -> &'static str;

    /// I-phase poll: is this plugin's part of the init done?
    fn init(&mut self, actor: &mut A, ctx: &mut Context<'_, A>) -> Progress {
        let _ = (actor, ctx);
        Progress::Done
    }

    /// Called once when the actor starts (reverse order), before `Actor::started`.
    fn start(&mut self, actor: &mut A, ctx: &mut Context<'_, A>) {
        let _ = (actor, ctx);
    }

    /// Called once when the S-phase begins (in reverse order, before any `shutdown` poll),
    /// with the reason: the place to send unlink requests, cancel, start a flush.
    fn shutdown_start(&mut self, reason: &StopReason, actor: &mut A, ctx: &mut Context<'_, A>) {
        let _ = (reason, actor, ctx);
    }

    /// S-phase poll: is this plugin's part of the shutdown done?
    fn shutdown(&mut self, actor: &mut A, ctx: &mut Context<'_, A>) -> Progress {
        let _ = (actor, ctx);
        Progress::Done
    }

    /// Called once when the actor is `ShutDown` (reverse order, before `Actor::stopped`),
    /// whether its S-phase finished or was forced by the shutdown timeout: the place for
    /// last notifications (monitors send DOWN here). The address is closed by then.
    fn finished(&mut self, reason: &StopReason, actor: &mut A, ctx: &mut Context<'_, A>) {
        let _ = (reason, actor, ctx);
    }

    /// Work stealing: true if this plugin's state may travel with its (migratable, operational)
    /// actor to another shard right now. The default, `false`, keeps the actor where it is: a
    /// plugin holding shard-bound state (a closure, a pending request) must not move.
    fn can_transfer(&self) -> bool {
        false
    }

    /// Work stealing: the plugin's state, ready to travel (called only after every plugin of
    /// the actor answered [`can_transfer`](Self::can_transfer) with `true`; the plugin left
    /// behind is dropped). `None` cancels the move.
    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        None
    }

    /// Offered a control message; returns it if it is not for this plugin.
    fn control(
        &mut self,
        msg: SystemMsg,
        actor: &mut A,
        ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        let _ = (actor, ctx);
        Some(msg)
    }
}

/// A plugin's state on its way to another shard with its actor (work stealing).
pub trait PluginTransfer<A: Actor>: Send {
    /// Rebuilds the plugin on the actor's new shard.
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>>;
}

/// Lets [`Context::with_plugin`](crate::Context::with_plugin) find a plugin by type;
/// implemented for every type, nothing to write.
pub trait AsAnyMut {
    /// The value as `Any`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAnyMut for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A lifecycle contract violation, reported to the runtime's lifecycle-error hook
/// ([`Builder::on_lifecycle_error`](crate::Builder::on_lifecycle_error); by default printed
/// to stderr). The runtime then forces the actor down; it never aborts the process.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LifecycleError {
    /// An actor's S-phase did not finish in time; it was forced down.
    ShutdownTimeout {
        /// The actor.
        actor: ActorRef,
        /// The plugin still holding the phase.
        plugin: &'static str,
        /// Why it was stopping.
        reason: StopReason,
    },
    /// A plugin reported a failure during the S-phase (treated as done).
    ShutdownFailed {
        /// The actor.
        actor: ActorRef,
        /// The plugin.
        plugin: &'static str,
        /// What it reported.
        error: StopReason,
    },
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::ShutdownTimeout {
                actor,
                plugin,
                reason,
            } => write!(
                f,
                "{actor:?}: shutdown timed out in plugin {plugin} (stopping because: {reason}); forced down"
            ),
            LifecycleError::ShutdownFailed {
                actor,
                plugin,
                error,
            } => write!(f, "{actor:?}: plugin {plugin} failed its shutdown: {error}"),
        }
    }
}

/// The lifecycle-error hook as the runtime stores it.
pub(crate) type LifecycleHook = Box<dyn Fn(&LifecycleError) + Send + Sync>;

/// Counts `e` and hands it to the runtime's hook (default: one line on stderr).
pub(crate) fn report(rt: &crate::shard::RtShared, e: &LifecycleError) {
    rt.lifecycle_errors
        .fetch_add(1, crate::sync::atomic::Ordering::Relaxed);
    match rt
        .lifecycle_hook
        .as_ref()
        .and_then(|h| h.downcast_ref::<LifecycleHook>())
    {
        Some(hook) => hook(e),
        None => eprintln!("coreactor: lifecycle error: {e}"),
    }
}
