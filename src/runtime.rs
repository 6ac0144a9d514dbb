//! The runtime: builds the shards from a [`Config`], starts one pinned thread per shard, spawns
//! actors, reports placement and statistics, and shuts everything down.

use crate::actor::cell::Supervision;
use crate::actor::install_remote;
use crate::actor::{Actor, Addr};
use crate::config::{Config, ConfigError, Placement, ResolvedShard, ShardOverride};
use crate::error::SpawnError;
use crate::mailbox::ring::{Consumer, Producer, ring};
use crate::shard::{
    Clock, CurrentGuard, DRAINING, DeadLetter, Envelope, RUNNING, RtShared, STOPPED, STOPPING,
    ShardLocal, ShardParams, ShardShared, ThreadFacts, route,
};
use crate::stats::ShardStats;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicUsize, Ordering};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Why a runtime could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid; the error names the field.
    Config(ConfigError),
    /// The OS refused a resource (thread, epoll, eventfd).
    Io(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid configuration: {e}"),
            StartError::Io(e) => write!(f, "could not start a shard: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Io(e) => Some(e),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError::Io(e)
    }
}

/// Why a shutdown did not finish cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownError {
    /// These shards did not finish stopping their actors within the shutdown timeout (an actor
    /// blocked in a handler or hook). Their threads, and those of the shards waiting for them,
    /// are left running detached; they exit once the blocked code returns.
    Timeout {
        /// The shards still running.
        stuck: Vec<usize>,
    },
    /// A shard thread panicked outside any actor (a bug in coreactor).
    ShardPanicked {
        /// The shard.
        shard: usize,
    },
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::Timeout { stuck } => {
                write!(
                    f,
                    "shards {stuck:?} did not stop within the shutdown timeout"
                )
            }
            ShutdownError::ShardPanicked { shard } => write!(f, "shard {shard} panicked"),
        }
    }
}

impl std::error::Error for ShutdownError {}

/// Where a shard runs, as reported by [`Runtime::shard_info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard index.
    pub shard: usize,
    /// The shard thread's name (`coreactor-shard-N`).
    pub thread_name: String,
    /// The shard thread's id.
    pub thread_id: std::thread::ThreadId,
    /// The CPU the shard is pinned to, `None` if unpinned.
    pub cpu: Option<usize>,
    /// Why the requested pinning did not happen, if it did not.
    pub pin_warning: Option<String>,
}

/// Builds a [`Runtime`]: every knob of [`Config`] as a chainable setter, ending in
/// [`build`](Self::build). Setters change the defaults of every shard; use
/// [`shard_override`](Self::shard_override) for one shard.
///
/// # Examples
///
/// ```
/// use coreactor::Runtime;
/// use std::time::Duration;
///
/// let rt = Runtime::builder()
///     .shards(2)
///     .ring_capacity(256)
///     .batch_budget(32)
///     .spin_before_park(Duration::from_micros(20))
///     .build()
///     .unwrap();
/// assert_eq!(rt.shard_count(), 2);
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct Builder {
    config: Config,
    hook: Option<crate::shard::DeadLetterHook>,
    lifecycle_hook: Option<crate::actor::lifecycle::LifecycleHook>,
    registry: Option<usize>,
}

macro_rules! shard_setters {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty => $($path:ident).+ ),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.shard.$($path).+ = value;
                self
            }
        )*
    };
}

impl Builder {
    /// Uses `config` as the starting point (replacing everything set so far).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Number of shards (default: one per available CPU).
    pub fn shards(mut self, n: usize) -> Self {
        self.config.shards = Some(n);
        self
    }

    /// How shards are pinned to CPUs (default: [`Placement::Spread`]).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.config.placement = placement;
        self
    }

    /// How long [`Runtime::shutdown`] waits for the shards (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Overrides knobs for one shard only.
    pub fn shard_override(mut self, shard: usize, patch: ShardOverride) -> Self {
        self.config.overrides.insert(shard, patch);
        self
    }

    /// Pins every shard that has no override of its own to `cpu` (mostly for tests; use
    /// [`shard_override`](Self::shard_override) or [`Placement::Fixed`] to place shards).
    pub fn cpu(mut self, cpu: usize) -> Self {
        self.config.shard.cpu = Some(cpu);
        self
    }

    /// Capacity of each SPSC ring between two shards (power of two; default: sized from the
    /// shard count by [`config::default_ring_capacity`](crate::config::default_ring_capacity),
    /// 16384 up to 8 shards).
    pub fn ring_capacity(mut self, value: usize) -> Self {
        self.config.shard.ring_capacity = Some(value);
        self
    }

    shard_setters! {
        /// Per-actor bound on queued user messages (default 4096).
        mailbox_capacity: usize => mailbox_capacity,
        /// 64-byte cells in the bounded injection lane of outside threads (power of two; default
        /// 8192); an envelope takes one cell, or two if its message is over 24 bytes.
        inject_capacity: usize => inject_capacity,
        /// Messages one actor may handle per turn before the others run (default 16).
        batch_budget: usize => batch_budget,
        /// How long an idle shard spins before parking (default 50 µs).
        spin_before_park: Duration => spin_before_park,
        /// How long of that spin is pure spinning before the shard yields its CPU between
        /// polls (default 5 µs).
        spin_before_yield: Duration => spin_before_yield,
        /// How long the shard pauses polling its injection lane while outside threads stream
        /// into it (default 2 µs; zero never pauses).
        inject_pacing: Duration => inject_pacing,
        /// Resolution of the timer wheel (default 1 ms).
        timer_tick: Duration => timer_tick,
        /// I/O events taken per `epoll_wait` (default 256).
        io_events: usize => io_events,
        /// Live actors per shard (default 65536).
        max_actors: usize => max_actors,
        /// Whether each shard faults in its inbound rings' pages at start (default false).
        prefault_rings: bool => prefault_rings,
        /// Whether idle shards may steal migratable work (default true).
        may_steal: bool => steal.may_steal,
        /// Whether other shards may steal from this one (default true).
        may_be_stolen: bool => steal.may_be_stolen,
        /// Ready backlog above which a shard offers work to thieves (default 64).
        steal_backlog_threshold: usize => steal.backlog_threshold,
        /// Actors moved per steal (default 8).
        steal_batch: usize => steal.batch,
        /// How long an idle shard looks for work to steal before parking (default 20 µs).
        search_before_park: Duration => steal.search_before_park,
    }

    /// Applies `COREACTOR_*` environment overrides on top of what is set so far.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable that is unknown or unparsable.
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        self.config = self.config.apply_env()?;
        Ok(self)
    }

    /// Calls `hook` for every dead letter (a message accepted for an actor that stopped before
    /// handling it, or queued at shutdown). The hook runs on whichever thread discards the
    /// message; keep it short and non-blocking.
    pub fn on_dead_letter(mut self, hook: impl Fn(&DeadLetter) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Calls `hook` for every lifecycle contract violation (an S-phase that did not finish in
    /// time and was forced, a plugin failing its shutdown) instead of printing it to stderr.
    /// The actor is forced down either way; the process never aborts.
    pub fn on_lifecycle_error(
        mut self,
        hook: impl Fn(&crate::lifecycle::LifecycleError) + Send + Sync + 'static,
    ) -> Self {
        self.lifecycle_hook = Some(Box::new(hook));
        self
    }

    /// Starts a name [`Registry`](crate::registry::Registry) on shard 0 (see
    /// [`registry_on`](Self::registry_on)).
    pub fn with_registry(self) -> Self {
        self.registry_on(0)
    }

    /// Starts the runtime's name [`Registry`](crate::registry::Registry) on shard `shard`;
    /// every shard's actors use it ([`Context::register_name`](crate::Context::register_name),
    /// [`Context::discover`](crate::Context::discover)). Without it, registry requests fail
    /// with [`RegistryError::Unavailable`](crate::RegistryError::Unavailable).
    pub fn registry_on(mut self, shard: usize) -> Self {
        self.registry = Some(shard);
        self
    }

    /// Validates the configuration and starts the shards.
    ///
    /// # Errors
    ///
    /// [`StartError::Config`] naming the invalid field (`registry` for a registry shard that
    /// does not exist), or [`StartError::Io`] if the OS refused a thread, an epoll instance or
    /// an eventfd.
    pub fn build(self) -> Result<Runtime, StartError> {
        let runtime = Runtime::start(self.config, self.hook, self.lifecycle_hook)?;
        if let Some(shard) = self.registry {
            crate::registry::start(&runtime.shards, shard)?;
        }
        Ok(runtime)
    }
}

/// A running set of shards.
///
/// Dropping a runtime shuts it down (like [`shutdown`](Self::shutdown), ignoring the result).
pub struct Runtime {
    shards: Box<[Arc<ShardShared>]>,
    rt: Arc<RtShared>,
    threads: Vec<Option<std::thread::JoinHandle<()>>>,
    next: AtomicUsize,
    shutdown_timeout: Duration,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Set once the process has printed its pinning warning (warn once, not once per shard).
static PIN_WARNED: std::sync::OnceLock<()> = std::sync::OnceLock::new();

impl Runtime {
    /// A builder with the default configuration.
    pub fn builder() -> Builder {
        Builder {
            config: Config::new(),
            hook: None,
            lifecycle_hook: None,
            registry: None,
        }
    }

    /// Starts a runtime from a [`Config`].
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn from_config(config: Config) -> Result<Runtime, StartError> {
        Runtime::start(config, None, None)
    }

    fn start(
        config: Config,
        hook: Option<crate::shard::DeadLetterHook>,
        lifecycle_hook: Option<crate::actor::lifecycle::LifecycleHook>,
    ) -> Result<Runtime, StartError> {
        let mut resolved = config.resolve()?;
        let n = resolved.len();
        // More shards than CPUs: pinning two shards to one CPU by placement would make them
        // fight over it, so later shards that the placement puts on an already used CPU run
        // unpinned (with a warning). CPUs chosen explicitly (fixed list, `cpu` keys) are obeyed.
        let explicit = |id: usize| {
            matches!(config.placement, Placement::Fixed(_))
                || config.shard.cpu.is_some()
                || config.overrides.get(&id).is_some_and(|o| o.cpu.is_some())
        };
        let mut used = std::collections::HashSet::new();
        let mut unpinned = Vec::new();
        for r in &mut resolved {
            if let Some(cpu) = r.cpu
                && !used.insert(cpu)
                && !explicit(r.id)
            {
                r.cpu = None;
                unpinned.push(r.id);
            }
        }
        let mut rt = RtShared::new(n, hook);
        rt.lifecycle_hook =
            lifecycle_hook.map(|h| Box::new(h) as Box<dyn std::any::Any + Send + Sync>);
        let rt = Arc::new(rt);
        let mut shards = Vec::with_capacity(n);
        for r in &resolved {
            shards.push(Arc::new(ShardShared::new(
                r.id,
                rt.clone(),
                crate::shard::new_waker()?,
                r.max_actors,
                r.mailbox_capacity,
                Some(r.inject_capacity),
            )));
        }
        let shards: Box<[Arc<ShardShared>]> = shards.into();
        // rings[i][j]: endpoints of the ring from shard i to shard j.
        let mut producers: Vec<Vec<Option<Producer<Envelope>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut consumers: Vec<Vec<Option<Consumer<Envelope>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for (i, from) in resolved.iter().enumerate() {
            for j in 0..n {
                if i != j {
                    let (p, c) = ring(from.ring_capacity.max(resolved[j].ring_capacity));
                    producers[i][j] = Some(p);
                    consumers[j][i] = Some(c);
                }
            }
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(usize, std::io::Result<()>)>();
        let mut threads = Vec::with_capacity(n);
        let cpus: Vec<Option<usize>> = resolved.iter().map(|r| r.cpu).collect();
        let mut distances = crate::shard::topology::distances(&cpus).into_iter();
        for (i, r) in resolved.into_iter().enumerate() {
            let distance = distances.next().unwrap_or_default();
            let shared = shards[i].clone();
            let peers = shards.clone();
            let prods = std::mem::take(&mut producers[i]);
            let cons = std::mem::take(&mut consumers[i]);
            let tx = ready_tx.clone();
            let overbooked = unpinned.contains(&i);
            let spawned = crate::sync::thread::Builder::new()
                .name(format!("coreactor-shard-{i}"))
                .spawn(move || shard_main(r, overbooked, distance, shared, peers, prods, cons, tx));
            match spawned {
                Ok(h) => threads.push(Some(h)),
                Err(e) => {
                    let partial = Runtime {
                        shards: shards.clone(),
                        rt: rt.clone(),
                        threads,
                        next: AtomicUsize::new(0),
                        shutdown_timeout: config.shutdown_timeout,
                    };
                    drop(partial);
                    return Err(StartError::Io(e));
                }
            }
        }
        drop(ready_tx);
        let runtime = Runtime {
            shards,
            rt,
            threads,
            next: AtomicUsize::new(0),
            shutdown_timeout: config.shutdown_timeout,
        };
        for _ in 0..n {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((_, Err(e))) => return Err(StartError::Io(e)),
                Err(_) => {
                    return Err(StartError::Io(std::io::Error::other(
                        "a shard thread exited during startup",
                    )));
                }
            }
        }
        Ok(runtime)
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Where each shard runs: thread id, name and the CPU it is pinned to.
    pub fn shard_info(&self) -> Vec<ShardInfo> {
        self.shards
            .iter()
            .map(|s| {
                let f = s.facts.get().expect("facts are set before build() returns");
                ShardInfo {
                    shard: s.id,
                    thread_name: f.name.clone(),
                    thread_id: f.thread_id,
                    cpu: f.cpu,
                    pin_warning: f.pin_warning.clone(),
                }
            })
            .collect()
    }

    /// A snapshot of every shard's counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.shards
            .iter()
            .map(|s| s.counters.snapshot(s.id))
            .collect()
    }

    /// Messages that could not be delivered so far (see [`Builder::on_dead_letter`]).
    pub fn dead_letters(&self) -> u64 {
        self.rt.dead_letters.load(Ordering::Relaxed)
    }

    /// Replies that arrived after their ask had timed out (or was abandoned), and were dropped.
    pub fn late_replies(&self) -> u64 {
        self.rt.late_replies.load(Ordering::Relaxed)
    }

    fn check_running(&self) -> Result<(), SpawnError> {
        if self.rt.is_shutting_down() {
            Err(SpawnError::Shutdown)
        } else {
            Ok(())
        }
    }

    fn shard(&self, shard: usize) -> Result<&Arc<ShardShared>, SpawnError> {
        self.shards.get(shard).ok_or(SpawnError::NoSuchShard {
            shard,
            shards: self.shards.len(),
        })
    }

    /// Spawns `actor` on the next shard in round-robin order.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn<A: Actor + Send>(&self, actor: A) -> Result<Addr<A>, SpawnError> {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        self.spawn_on(shard, actor)
    }

    /// Spawns `actor` on shard `shard`.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_on<A: Actor + Send>(&self, shard: usize, actor: A) -> Result<Addr<A>, SpawnError> {
        self.spawn_with(shard, move || actor)
    }

    /// Like [`spawn_with`](Self::spawn_with), with the actor's own I-phase and S-phase
    /// timeouts (an actor without a supervisor otherwise runs with the defaults, 5 s each):
    /// for a root supervisor whose tree needs longer to come up or to flush.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_with_options<A, F>(
        &self,
        shard: usize,
        opts: crate::lifecycle::ChildOptions,
        factory: F,
    ) -> Result<Addr<A>, SpawnError>
    where
        A: Actor,
        F: FnOnce() -> A + Send + 'static,
    {
        self.check_running()?;
        let target = self.shard(shard)?;
        spawn_remote_with(target, factory, Supervision { parent: None, opts }, None)
    }

    /// Spawns a **migratable** actor on shard `shard`: when that shard is busy and another is
    /// idle, the work-stealing layer may move it to the idle shard. Its address keeps working,
    /// messages keep their per-sender order, asks and supervision are unaffected. Its state
    /// must be `Send` and own nothing shard-bound (it cannot register file descriptors);
    /// everything else stays pinned (the default).
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_migratable<A: Actor + Send>(
        &self,
        shard: usize,
        actor: A,
    ) -> Result<Addr<A>, SpawnError> {
        self.check_running()?;
        let target = self.shard(shard)?;
        spawn_remote_with(
            target,
            move || actor,
            Supervision::none(),
            Some(crate::actor::cell::pack_cell::<A>),
        )
    }

    /// Spawns on shard `shard` an actor built there by `factory`, so that what it owns (a
    /// connection, a file, a cache) is created on the thread that will use it; the actor itself
    /// need not be `Send`. A panicking factory leaves a dead address (its sends fail `Closed`).
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSuchShard`], [`SpawnError::ShardFull`], [`SpawnError::Shutdown`].
    pub fn spawn_with<A, F>(&self, shard: usize, factory: F) -> Result<Addr<A>, SpawnError>
    where
        A: Actor,
        F: FnOnce() -> A + Send + 'static,
    {
        self.check_running()?;
        let target = self.shard(shard)?;
        spawn_remote(target, factory)
    }

    /// Shuts the runtime down in two phases, each bounded by the configured
    /// `shutdown_timeout`:
    ///
    /// 1. **Graceful.** Every actor without a supervisor runs its S-phase (reason
    ///    [`StopReason::Shutdown`](crate::StopReason::Shutdown)); supervisors take their
    ///    trees down the same way, links unlink, resources are released (a storage actor
    ///    flushes here). Messages still flow; new spawns from outside are refused. The phase
    ///    ends when no actor is left or the timeout passes.
    /// 2. **Forced.** New sends are refused; what is left is stopped at once (queued messages
    ///    become dead letters, pending asks are answered with an error), and every shard
    ///    thread is joined.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Timeout`] naming shards stuck in user code (left detached), or
    /// [`ShutdownError::ShardPanicked`].
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<(), ShutdownError> {
        if self
            .rt
            .state
            .compare_exchange(RUNNING, DRAINING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            for s in self.shards.iter() {
                s.doorbell.ring(crate::shard::doorbell::INJECT);
            }
            let deadline = Instant::now() + self.shutdown_timeout;
            let mut backoff = Duration::from_micros(50);
            while Instant::now() < deadline
                && self
                    .shards
                    .iter()
                    .any(|s| s.live_actors.load(Ordering::Relaxed) > 0)
                && self
                    .threads
                    .iter()
                    .all(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            {
                crate::sync::thread::park_timeout(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(5));
            }
        }
        if self
            .rt
            .state
            .compare_exchange(DRAINING, STOPPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            for s in self.shards.iter() {
                s.doorbell.ring(crate::shard::doorbell::INJECT);
            }
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        let mut result = Ok(());
        loop {
            let pending: Vec<usize> = self
                .threads
                .iter()
                .enumerate()
                .filter(|(_, t)| t.as_ref().is_some_and(|h| !h.is_finished()))
                .map(|(i, _)| i)
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                // Healthy shards wait for the others before their final drain, so the stuck
                // ones are those that never finished stopping their actors.
                let mut stuck: Vec<usize> = pending
                    .iter()
                    .copied()
                    .filter(|&i| !self.shards[i].actors_stopped())
                    .collect();
                if stuck.is_empty() {
                    stuck = pending.clone();
                }
                for &i in &pending {
                    self.threads[i] = None;
                }
                result = Err(ShutdownError::Timeout { stuck });
                break;
            }
            crate::sync::thread::park_timeout(Duration::from_micros(200));
        }
        for (i, t) in self.threads.iter_mut().enumerate() {
            if let Some(h) = t.take()
                && h.join().is_err()
                && result.is_ok()
            {
                result = Err(ShutdownError::ShardPanicked { shard: i });
            }
        }
        self.rt.state.store(STOPPED, Ordering::Release);
        // Outside threads may have injected after the shards' final drains; their pushers drain
        // those themselves (see `ShardShared::inject`).
        result
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.threads.iter().any(Option::is_some) {
            let _ = self.shutdown_inner();
        }
    }
}

/// Builds the `ShardFull` error for a shard.
pub(crate) fn shard_full(shard: &ShardShared) -> SpawnError {
    SpawnError::ShardFull {
        shard: shard.id,
        max_actors: shard.table_capacity(),
    }
}

/// Reserves a slot on `target` and sends it the factory; returns the address at once.
pub(crate) fn spawn_remote<A, F>(
    target: &Arc<ShardShared>,
    factory: F,
) -> Result<Addr<A>, SpawnError>
where
    A: Actor,
    F: FnOnce() -> A + Send + 'static,
{
    spawn_remote_with(target, factory, Supervision::none(), None)
}

/// [`spawn_remote`] with a supervisor and/or as a migratable actor.
pub(crate) fn spawn_remote_with<A, F>(
    target: &Arc<ShardShared>,
    factory: F,
    supervision: Supervision,
    packer: Option<crate::actor::cell::Packer<A>>,
) -> Result<Addr<A>, SpawnError>
where
    A: Actor,
    F: FnOnce() -> A + Send + 'static,
{
    if target.rt.is_shutting_down() {
        return Err(SpawnError::Shutdown);
    }
    let (slot, generation) = target.table.reserve().ok_or_else(|| shard_full(target))?;
    let task = if packer.is_none() && supervision.is_none() {
        // The common spawn (no supervisor, default timeouts, pinned): the task carries only
        // the factory and the slot, so that a small factory fits in the envelope's inline
        // storage instead of a heap box (allocated by the spawner, freed by the shard).
        Envelope::task(move |shard: &ShardLocal| {
            install_remote(
                shard,
                slot,
                generation,
                factory,
                Supervision::none(),
                None::<crate::actor::cell::Packer<A>>,
            );
        })
    } else {
        Envelope::task(move |shard: &ShardLocal| {
            install_remote(shard, slot, generation, factory, supervision, packer);
        })
    };
    route(target, task);
    Ok(Addr::new(target.clone(), slot, generation))
}

#[allow(clippy::too_many_arguments)] // one call site: the thread body of `start`
fn shard_main(
    r: ResolvedShard,
    overbooked: bool,
    peer_distance: Vec<u8>,
    shared: Arc<ShardShared>,
    peers: Box<[Arc<ShardShared>]>,
    producers: Vec<Option<Producer<Envelope>>>,
    consumers: Vec<Option<Consumer<Envelope>>>,
    ready: std::sync::mpsc::Sender<(usize, std::io::Result<()>)>,
) {
    let id = r.id;
    let (cpu, pin_warning) = if overbooked {
        let why = format!("shard {id}: more shards than CPUs; running unpinned");
        if PIN_WARNED.set(()).is_ok() {
            eprintln!("coreactor: warning: {why}");
        }
        (None, Some(why))
    } else {
        pin(r.cpu)
    };
    let current = std::thread::current();
    let _ = shared.facts.set(ThreadFacts {
        name: current.name().unwrap_or_default().to_string(),
        thread_id: current.id(),
        cpu,
        pin_warning,
    });
    let params = ShardParams {
        steal: r.steal,
        peer_distance,
        batch_budget: r.batch_budget,
        spin_before_park: r.spin_before_park,
        spin_before_yield: r.spin_before_yield,
        inject_pacing_ns: crate::shard::pacing_pause(r.inject_pacing, shared.mailbox_capacity),
        tick_ns: (r.timer_tick.as_nanos() as u64).max(1),
        io_events: r.io_events,
    };
    if r.prefault_rings {
        // Before the shard reports ready: no actor runs before its rings are resident.
        for consumer in consumers.iter().flatten() {
            consumer.prefault();
        }
    }
    let clock = Clock::Real(crate::shard::tsc::ShardClock::new(shared.rt.epoch));
    let local = match ShardLocal::new(shared, peers, params, producers, consumers, clock) {
        Ok(l) => Rc::new(l),
        Err(e) => {
            let _ = ready.send((id, Err(e)));
            return;
        }
    };
    let _ = ready.send((id, Ok(())));
    drop(ready);
    let guard = CurrentGuard::enter(local.clone());
    local.run_loop();
    drop(guard);
    drop(local);
}

/// Pins the current thread to `cpu`; on failure returns why (warned once per process).
fn pin(cpu: Option<usize>) -> (Option<usize>, Option<String>) {
    let Some(cpu) = cpu else {
        return (None, None);
    };
    let ok = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == cpu))
        .is_some_and(core_affinity::set_for_current);
    if ok {
        (Some(cpu), None)
    } else {
        let why = format!("could not pin to CPU {cpu}; running unpinned");
        if PIN_WARNED.set(()).is_ok() {
            eprintln!("coreactor: warning: {why}");
        }
        (None, Some(why))
    }
}
