//! Per-core configuration: one validated [`Config`] for every shard of a runtime.
//!
//! A [`Config`] says how many shards to run ([`Config::shards`]), where to pin them
//! ([`Placement`]), the knobs every shard starts from ([`ShardConfig`]) and per-shard
//! exceptions ([`ShardOverride`]). The default works anywhere: one shard per available core,
//! spread over the CPUs this process may use, with the `DEFAULT_*` values of this module.
//!
//! # Sources and precedence
//!
//! A configuration is built in code (the fields are public), read from TOML
//! ([`Config::from_toml_str`], [`Config::from_toml_file`], cargo feature `toml`, on by default)
//! and then adjusted from `COREACTOR_*` environment variables ([`Config::apply_env`]). Two rules
//! decide which value a shard gets:
//!
//! 1. **Later sources win within the same scope**: code defaults < TOML file < environment.
//! 2. **The more specific scope wins over the more general one**: a per-shard override
//!    (`[shard.1]`, `COREACTOR_SHARD1_*`, [`Config::overrides`]) beats the defaults of every
//!    shard (`[shard]`, `COREACTOR_SHARD_*`, [`Config::shard`]) whatever their source, and an
//!    explicit CPU for a shard beats the [`Placement`].
//!
//! The full format, every knob, its default, range and effect are in `docs/config.md`.
//!
//! # Validation
//!
//! Nothing in this module panics on bad input; every failure is a [`ConfigError`] that names the
//! field by its TOML path (`shards`, `placement`, `shard.ring_capacity`, `shard.3.batch_budget`,
//! `shard.steal.batch`, `shutdown_timeout_ms`) or, for environment input, by the variable.
//! Checks happen in two places:
//!
//! - **Each value on its own** (type, zero, range, power of two) is checked when it is read from
//!   TOML or the environment, so the error points at the line or variable that holds it, and
//!   again by [`Config::validate`] / [`Config::resolve`] for values set in code.
//! - **Values against each other and against the machine** (an override for a shard that does
//!   not exist, a [`Placement::Fixed`] list of the wrong length, a CPU this process may not use)
//!   are checked only by [`Config::validate`] / [`Config::resolve`], because a later source may
//!   still change the shard count.
//!
//! [`Config::resolve`] turns a configuration into one [`ResolvedShard`] per shard: the knobs that
//! shard actually runs with and the CPU it is pinned to. The runtime starts from that list and
//! never reads a [`Config`] field directly.
//!
//! This module is pure data: no threads, no atomics, no `unsafe`.
//!
//! # Examples
//!
//! ```
//! use coreactor::config::{Config, Placement};
//!
//! let mut config = Config::new();
//! config.shards = Some(2);
//! config.placement = Placement::Fixed(vec![1, 0]);
//! config.overrides.entry(1).or_default().batch_budget = Some(4);
//!
//! // A mocked CPU list keeps the example independent of the machine.
//! let shards = config.resolve_with_cpus(&[0, 1])?;
//! assert_eq!(shards[0].cpu, Some(1));
//! assert_eq!(shards[0].batch_budget, 16);
//! assert_eq!(shards[1].batch_budget, 4);
//! # Ok::<(), coreactor::config::ConfigError>(())
//! ```

#![deny(unsafe_code)]

mod env;
mod error;
#[cfg(feature = "toml")]
mod toml;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

pub use error::{ConfigError, ConfigErrorKind};

/// Largest default capacity of an inbound SPSC ring between two shards, in messages: `16384`,
/// what a runtime of up to 8 shards gets (see [`default_ring_capacity`]).
///
/// Chosen from the flood benchmarks (`docs/benchmarks.md`, session 8): a cross-shard flood ran
/// at about 19 M msgs/s with 1024-slot rings and at 29–41 M with 16384 on the reference
/// machine, where a ring that fits in the receiving core's L2 cache (1 MiB) leaves its lines
/// there for the sender to take back on every lap.
pub const DEFAULT_RING_CAPACITY: usize = 16384;
/// Smallest default ring capacity, however many shards: `1024`.
pub const MIN_DEFAULT_RING_CAPACITY: usize = 1024;
/// Address space the default ring capacity lets all rings of a runtime take together:
/// 256 MiB (see [`default_ring_capacity`]).
pub const DEFAULT_RING_MEMORY: usize = 256 << 20;
/// Bytes one ring slot takes: the 96-byte envelope and its 8-byte stamp (what
/// [`default_ring_capacity`] budgets with).
pub const RING_SLOT_BYTES: usize = 104;

/// The ring capacity a runtime of `shards` shards gets when none is configured: the largest
/// power of two up to [`DEFAULT_RING_CAPACITY`] with which its `shards × (shards − 1)` rings take
/// at most [`DEFAULT_RING_MEMORY`] of address space, and never below
/// [`MIN_DEFAULT_RING_CAPACITY`]. So a small runtime gets long rings (floods between shards run
/// faster, see [`DEFAULT_RING_CAPACITY`]) while ring memory, which grows with the square of the
/// shard count, stays bounded on large machines. A ring's pages become resident only as far as
/// traffic has reached into it.
///
/// # Examples
///
/// ```
/// use coreactor::config::default_ring_capacity;
///
/// assert_eq!(default_ring_capacity(2), 16384);
/// assert_eq!(default_ring_capacity(16), 8192);
/// assert_eq!(default_ring_capacity(32), 2048);
/// assert_eq!(default_ring_capacity(64), 1024);
/// ```
#[must_use]
pub fn default_ring_capacity(shards: usize) -> usize {
    let rings = shards.saturating_mul(shards.saturating_sub(1)).max(1);
    let fit = DEFAULT_RING_MEMORY / rings.saturating_mul(RING_SLOT_BYTES);
    // The largest power of two not above `fit` (0 when nothing fits: the floor applies).
    let pow = if fit == 0 { 0 } else { 1 << fit.ilog2() };
    pow.clamp(MIN_DEFAULT_RING_CAPACITY, DEFAULT_RING_CAPACITY)
}
/// Default bound of each actor's user-message mailbox, in messages: `4096`.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 4096;
/// Default number of messages one actor may handle per turn before the shard moves on: `16`.
///
/// Chosen from the busy ask-latency benchmark: a request crossing two busy shards waits about
/// one turn on each, and with 64 the p99 round trip was ~13 µs on the reference machine
/// against ~2 µs with 8–16 (`docs/benchmarks.md`); throughput of a flooded actor changes little.
pub const DEFAULT_BATCH_BUDGET: usize = 16;
/// Default time an idle shard spins before it parks: 50 µs.
pub const DEFAULT_SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);
/// Default number of 64-byte cells in a shard's bounded injection lane (outside threads):
/// `8192` (512 KiB per shard; an envelope whose message fits in 24 bytes takes one cell, a
/// larger one two, so the lane holds 4096–8192 envelopes).
///
/// Chosen from the fork-join benchmark (`docs/benchmarks.md`, session 8): one outside thread
/// feeding 60 actors ran at about 14 M msgs/s with a 1024-slot lane and 18–20 M with 4096–8192
/// on the reference machine; as with the rings, a short lane's lines are still in the
/// shard's cache when the pushers come back to them.
pub const DEFAULT_INJECT_CAPACITY: usize = 8192;
/// Default time an idle shard spins before it starts yielding its CPU between polls: 5 µs.
///
/// Chosen from the peer comparison (`docs/benchmarks.md`, session 4): with more runnable threads
/// than CPUs (an outside producer next to two shard threads on 2 CPUs) pure spinning took the
/// producer's CPU and fork-join throughput was 1.3–1.7x lower; an answer that comes back within a
/// few microseconds (ping-pong, asks between shards) still finds the shard spinning.
pub const DEFAULT_SPIN_BEFORE_YIELD: Duration = Duration::from_micros(5);
/// Default longest pause in polling the injection lane while outside senders stream into it:
/// 8 µs.
///
/// A shard that polls the lane's next cell while a sender is writing it takes that cell's line
/// from the sender once a message; pausing the polls when it keeps finding only a few messages
/// lets the senders run ahead. The pause a runtime uses is sized from its mailbox capacity
/// (about a quarter of a mailbox's worth of messages at the lane's peak rate, at least
/// 2 µs) and capped by this value. On the reference machine, two outside senders feeding one
/// actor with mailboxes of 1 024 messages went from ~13 M msgs/s without pausing to ~17 M with
/// 2 µs pauses (`docs/benchmarks.md`, session 9) and to ~23 M with 8 µs ones (session 11).
/// A lone message or ask never waits for it (see [`ShardConfig::inject_pacing`]).
pub const DEFAULT_INJECT_PACING: Duration = Duration::from_micros(8);
/// Default resolution of each shard's timer wheel: 1 ms.
pub const DEFAULT_TIMER_TICK: Duration = Duration::from_millis(1);
/// Default number of readiness events one `epoll_wait` call may return: `256`.
pub const DEFAULT_IO_EVENTS: usize = 256;
/// Default bound on live actors per shard: `65536`.
pub const DEFAULT_MAX_ACTORS: usize = 65536;
/// Default for [`ShardConfig::prefault_rings`]: `false` (rings are faulted in on first use).
pub const DEFAULT_PREFAULT_RINGS: bool = false;
/// Default for [`StealConfig::may_steal`]: `true`.
pub const DEFAULT_MAY_STEAL: bool = true;
/// Default for [`StealConfig::may_be_stolen`]: `true`.
pub const DEFAULT_MAY_BE_STOLEN: bool = true;
/// Default ready backlog past which a shard publishes migratable work for stealing: `2`
/// (`benches/steal.rs`: with 64, shards with a handful of busy actors never shared them; with
/// 2, a balanced run costs nothing measurable — `docs/steal.md`).
pub const DEFAULT_STEAL_BACKLOG_THRESHOLD: usize = 2;
/// Default number of ready actors taken by one steal: `8`.
pub const DEFAULT_STEAL_BATCH: usize = 8;
/// Default time an idle shard looks for work to steal before it parks: 20 µs.
pub const DEFAULT_SEARCH_BEFORE_PARK: Duration = Duration::from_micros(20);
/// Default bound on a graceful `Runtime::shutdown` before it forces the stop: 5 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted shard count: `1024`. A default shard count (one per core) is capped here.
pub const MAX_SHARDS: usize = 1024;

/// Valid ranges; the docs of each field and `docs/config.md` repeat them.
mod limits {
    use std::time::Duration;

    pub(super) const RING_CAPACITY: (usize, usize) = (2, 1 << 20);
    pub(super) const MAILBOX_CAPACITY: (usize, usize) = (1, 1 << 24);
    pub(super) const INJECT_CAPACITY: (usize, usize) = (2, 1 << 20);
    pub(super) const BATCH_BUDGET: (usize, usize) = (1, 1 << 16);
    pub(super) const SPIN_BEFORE_PARK: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(1));
    pub(super) const SPIN_BEFORE_YIELD: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(1));
    pub(super) const INJECT_PACING: (Duration, Duration) =
        (Duration::ZERO, Duration::from_millis(1));
    pub(super) const TIMER_TICK: (Duration, Duration) =
        (Duration::from_micros(10), Duration::from_secs(1));
    pub(super) const IO_EVENTS: (usize, usize) = (1, 65536);
    pub(super) const MAX_ACTORS: (usize, usize) = (1, 1 << 24);
    pub(super) const STEAL_BACKLOG_THRESHOLD: (usize, usize) = (1, usize::MAX);
    pub(super) const STEAL_BATCH: (usize, usize) = (1, 1024);
    pub(super) const SEARCH_BEFORE_PARK: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(1));
    pub(super) const SHUTDOWN_TIMEOUT: (Duration, Duration) =
        (Duration::ZERO, Duration::from_secs(24 * 60 * 60));
    pub(super) const SHARDS: (usize, usize) = (1, super::MAX_SHARDS);
}

/// The whole runtime's configuration: shard count, placement, per-shard knobs.
///
/// `Config::default()` is [`Config::new()`]: one shard per available core, [`Placement::Spread`],
/// [`ShardConfig::default()`] on every shard, no overrides, a 5 s shutdown bound. See the
/// [module docs](self) for the sources, their precedence and when values are checked.
///
/// # Examples
///
/// ```
/// use coreactor::config::Config;
///
/// let mut config = Config::new();
/// config.shards = Some(3);
/// config.shard.ring_capacity = Some(4096);
/// config.overrides.entry(2).or_default().steal.may_steal = Some(false);
///
/// let shards = config.resolve_with_cpus(&[0, 1, 2, 3])?;
/// assert_eq!(shards.len(), 3);
/// assert!(shards.iter().all(|s| s.ring_capacity == 4096));
/// assert!(!shards[2].steal.may_steal && shards[1].steal.may_steal);
/// # Ok::<(), coreactor::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of shards (one OS thread each), from 1 to [`MAX_SHARDS`]. TOML `shards`.
    ///
    /// `None` (TOML `"auto"`, the default) means one shard per available core, from
    /// [`std::thread::available_parallelism`] (which honours affinity masks and cgroup quotas),
    /// capped at [`MAX_SHARDS`]; with [`Placement::Fixed`] it means one shard per listed CPU.
    /// More shards than CPUs is valid: pinned shards then share CPUs round-robin.
    pub shards: Option<usize>,
    /// How shards are pinned to CPUs; default [`Placement::Spread`]. TOML `placement`.
    pub placement: Placement,
    /// Knobs applied to every shard unless [`Config::overrides`] says otherwise. TOML `[shard]`.
    pub shard: ShardConfig,
    /// Per-shard exceptions, keyed by shard id (`0..shards`): only their `Some` fields replace
    /// the value from [`Config::shard`]. An id outside the shard range is an error at
    /// [`Config::resolve`]. TOML `[shard.N]`.
    pub overrides: BTreeMap<usize, ShardOverride>,
    /// How long `Runtime::shutdown` waits for a graceful stop (actors run their shutdown phase,
    /// mailboxes drain) before it forces the stop; default [`DEFAULT_SHUTDOWN_TIMEOUT`] (5 s),
    /// at most 24 h. TOML `shutdown_timeout_ms`.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// How shards are pinned to CPUs.
///
/// "Available CPUs" is the list [`available_cpus`] returns (the process's affinity mask, in
/// ascending order), or the list given to [`Config::resolve_with_cpus`]. A per-shard
/// [`ShardConfig::cpu`] / [`ShardOverride::cpu`] beats the placement for that shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Consecutive shards go to distinct physical cores first, alternating packages (NUMA
    /// nodes), and only then to the second SMT sibling of each core, wrapping round-robin when
    /// there are more shards than CPUs. The topology comes from Linux sysfs
    /// (`/sys/devices/system/cpu/cpuN/topology`); where it is unknown for any available CPU,
    /// shard `i` takes the `i`-th available CPU. TOML `"spread"`. The default.
    #[default]
    Spread,
    /// Shards fill one package, core by core, the SMT siblings of a core next to each other, so
    /// that shards share caches and whole packages stay free. Without topology information it
    /// is the in-order, round-robin mapping, as for [`Placement::Spread`]. TOML `"pack"`.
    Pack,
    /// No shard is pinned; the OS scheduler moves threads freely. Shards with an explicit CPU
    /// are still pinned. TOML `"unpinned"`.
    Unpinned,
    /// Shard `i` is pinned to `list[i]`. The list must have exactly one CPU per shard (a `None`
    /// shard count means `list.len()` shards) and every CPU must be available; a CPU may appear
    /// more than once. TOML `[0, 1, ...]`.
    Fixed(Vec<usize>),
}

/// The knobs of one shard. In [`Config::shard`] they are the defaults for every shard.
///
/// `ShardConfig::default()` holds the `DEFAULT_*` values of this module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// An explicit CPU to pin to, beating [`Config::placement`]. Meant for
    /// [`ShardOverride::cpu`]; set here it pins *every* shard without an override to that CPU.
    /// Default `None`. Must be an available CPU. TOML `cpu`.
    pub cpu: Option<usize>,
    /// Capacity, in messages, of each inbound SPSC ring from another shard; a power of two in
    /// `2..=1048576`. Default `None`: sized from the shard count by [`default_ring_capacity`]
    /// (16384 up to 8 shards, down to 1024 from 64). TOML `ring_capacity`.
    pub ring_capacity: Option<usize>,
    /// Per-actor bound on queued user messages, `1..=16777216`; a send beyond it reports a full
    /// mailbox. Default [`DEFAULT_MAILBOX_CAPACITY`]. TOML `mailbox_capacity`.
    pub mailbox_capacity: usize,
    /// Cells (64-byte lines) of the shard's bounded injection lane, which threads outside the
    /// runtime push into (power of two, `2..=1048576`): an envelope takes one cell if its
    /// message fits in 24 bytes (or is boxed), two otherwise. While it is full an outside
    /// `tell` waits and `try_tell` answers `Full`. Default [`DEFAULT_INJECT_CAPACITY`]. TOML `inject_capacity`.
    pub inject_capacity: usize,
    /// Messages one actor may handle per turn before the shard runs the next ready actor (the
    /// fairness budget), `1..=65536`; default [`DEFAULT_BATCH_BUDGET`]. TOML `batch_budget`.
    pub batch_budget: usize,
    /// Time an idle shard spins before it parks, at most 1 s (zero parks at once); default
    /// [`DEFAULT_SPIN_BEFORE_PARK`]. TOML `spin_before_park_us` (microseconds).
    pub spin_before_park: Duration,
    /// Part of the idle spin spent purely spinning, at most 1 s; after it the shard yields its
    /// CPU (`sched_yield`) between polls until `spin_before_park` is over, so that another
    /// runnable thread on its CPU (an outside producer, another shard) can run. A value at or
    /// above `spin_before_park` never yields; zero yields from the start. Default
    /// [`DEFAULT_SPIN_BEFORE_YIELD`]. TOML `spin_before_yield_us` (microseconds).
    pub spin_before_yield: Duration,
    /// The longest time the shard stops polling its injection lane when outside threads
    /// stream into it faster than one poll apart, at most 1 ms (zero never pauses). While the
    /// shard keeps finding the lane holding work at consecutive polls and takes only a few
    /// messages each time, it is reading each cell while its sender writes it, and the cell's
    /// line moves between the two cores once a message; the pause lets the senders run ahead,
    /// and the shard then takes what they wrote in one batch. The pause is
    /// `mailbox_capacity × 8 ns` (time for the senders to write about a quarter of a mailbox),
    /// at least `min(2 µs, inject_pacing)` and at most `inject_pacing`: senders that fill a
    /// small mailbox during a long pause would wait for it to end. A message that arrives
    /// alone (an ask, a sporadic tell) never waits for it: only a stream starts a pause, and a
    /// shard about to park always looks at the lane first. Costs a message that arrives while
    /// a stream keeps the lane paused (one of the stream's, or another thread's ask) up to the
    /// pause in latency. Default [`DEFAULT_INJECT_PACING`]. TOML `inject_pacing_us`
    /// (microseconds).
    pub inject_pacing: Duration,
    /// Resolution of the shard's timer wheel, `10 µs..=1 s`; default [`DEFAULT_TIMER_TICK`].
    /// TOML `timer_tick_us` (microseconds).
    pub timer_tick: Duration,
    /// Readiness events fetched by one `epoll_wait`, `1..=65536`; default
    /// [`DEFAULT_IO_EVENTS`]. TOML `io_events`.
    pub io_events: usize,
    /// Bound on live actors on the shard, `1..=16777216`; default [`DEFAULT_MAX_ACTORS`].
    /// TOML `max_actors`.
    pub max_actors: usize,
    /// Fault in the pages of the shard's inbound rings when its thread starts, instead of on
    /// their first lap. A ring's memory is allocated zeroed and lazily, so a ring that never
    /// carries a message costs no memory; the price is a page fault (up to ~30 µs on the
    /// reference machine) at each new page during a ring's first lap, which put ~1 % of the
    /// first 50 000 asks between two shards above 3 µs (`docs/benchmarks.md`, session 10).
    /// With this set, the shard's thread touches every page of its inbound rings before it
    /// runs any actor: `ring_capacity ×` [`RING_SLOT_BYTES`] bytes per peer are committed at
    /// start (1.6 MiB per peer with the default capacity). Default [`DEFAULT_PREFAULT_RINGS`]
    /// (`false`). TOML `prefault_rings`.
    pub prefault_rings: bool,
    /// Work-stealing knobs. TOML `[shard.steal]`.
    pub steal: StealConfig,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            cpu: None,
            ring_capacity: None,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            inject_capacity: DEFAULT_INJECT_CAPACITY,
            batch_budget: DEFAULT_BATCH_BUDGET,
            spin_before_park: DEFAULT_SPIN_BEFORE_PARK,
            spin_before_yield: DEFAULT_SPIN_BEFORE_YIELD,
            inject_pacing: DEFAULT_INJECT_PACING,
            timer_tick: DEFAULT_TIMER_TICK,
            io_events: DEFAULT_IO_EVENTS,
            max_actors: DEFAULT_MAX_ACTORS,
            prefault_rings: DEFAULT_PREFAULT_RINGS,
            steal: StealConfig::default(),
        }
    }
}

impl ShardConfig {
    /// Replaces each field for which `patch` holds `Some` (including the `steal` fields).
    ///
    /// Nothing is checked here; [`Config::resolve`] checks the result.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::config::{ShardConfig, ShardOverride};
    ///
    /// let mut shard = ShardConfig::default();
    /// let mut patch = ShardOverride::default();
    /// patch.batch_budget = Some(8);
    /// patch.steal.may_steal = Some(false);
    /// shard.apply(&patch);
    /// assert_eq!(shard.batch_budget, 8);
    /// assert!(!shard.steal.may_steal);
    /// assert_eq!(shard.ring_capacity, None); // not set: sized from the shard count
    /// ```
    pub fn apply(&mut self, patch: &ShardOverride) {
        fn set<T: Copy>(field: &mut T, patch: Option<T>) {
            if let Some(value) = patch {
                *field = value;
            }
        }
        if patch.cpu.is_some() {
            self.cpu = patch.cpu;
        }
        if patch.ring_capacity.is_some() {
            self.ring_capacity = patch.ring_capacity;
        }
        set(&mut self.mailbox_capacity, patch.mailbox_capacity);
        set(&mut self.inject_capacity, patch.inject_capacity);
        set(&mut self.batch_budget, patch.batch_budget);
        set(&mut self.spin_before_park, patch.spin_before_park);
        set(&mut self.spin_before_yield, patch.spin_before_yield);
        set(&mut self.inject_pacing, patch.inject_pacing);
        set(&mut self.timer_tick, patch.timer_tick);
        set(&mut self.io_events, patch.io_events);
        set(&mut self.max_actors, patch.max_actors);
        set(&mut self.prefault_rings, patch.prefault_rings);
        set(&mut self.steal.may_steal, patch.steal.may_steal);
        set(&mut self.steal.may_be_stolen, patch.steal.may_be_stolen);
        set(
            &mut self.steal.backlog_threshold,
            patch.steal.backlog_threshold,
        );
        set(&mut self.steal.batch, patch.steal.batch);
        set(
            &mut self.steal.search_before_park,
            patch.steal.search_before_park,
        );
    }
}

/// Work-stealing knobs of one shard. `StealConfig::default()` holds the `DEFAULT_*` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StealConfig {
    /// Whether this shard, when idle, steals ready work from busier shards; default
    /// [`DEFAULT_MAY_STEAL`]. TOML `steal.may_steal`.
    pub may_steal: bool,
    /// Whether other shards may take this shard's migratable actors; default
    /// [`DEFAULT_MAY_BE_STOLEN`]. Pinned actors never move either way. TOML
    /// `steal.may_be_stolen`.
    pub may_be_stolen: bool,
    /// Ready backlog (actors) past which this shard publishes migratable work to its steal
    /// queue, at least 1; default [`DEFAULT_STEAL_BACKLOG_THRESHOLD`]. TOML
    /// `steal.backlog_threshold`.
    pub backlog_threshold: usize,
    /// Ready actors taken by one steal, `1..=1024`; default [`DEFAULT_STEAL_BATCH`]. TOML
    /// `steal.batch`.
    pub batch: usize,
    /// Time an idle shard searches for work to steal before it parks, at most 1 s; default
    /// [`DEFAULT_SEARCH_BEFORE_PARK`]. TOML `steal.search_before_park_us` (microseconds).
    pub search_before_park: Duration,
}

impl Default for StealConfig {
    fn default() -> Self {
        Self {
            may_steal: DEFAULT_MAY_STEAL,
            may_be_stolen: DEFAULT_MAY_BE_STOLEN,
            backlog_threshold: DEFAULT_STEAL_BACKLOG_THRESHOLD,
            batch: DEFAULT_STEAL_BATCH,
            search_before_park: DEFAULT_SEARCH_BEFORE_PARK,
        }
    }
}

/// Per-shard exceptions to [`Config::shard`]: each `Some` field replaces that shard's value.
///
/// The fields mirror [`ShardConfig`]; the steal knobs sit in a nested [`StealOverride`] (not an
/// `Option<StealOverride>`), so a single steal field can be overridden with
/// `o.steal.batch = Some(4)`, mirroring TOML `[shard.N.steal]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardOverride {
    /// Explicit CPU for this shard; beats [`Config::placement`]. TOML `shard.N.cpu`.
    pub cpu: Option<usize>,
    /// See [`ShardConfig::ring_capacity`].
    pub ring_capacity: Option<usize>,
    /// See [`ShardConfig::mailbox_capacity`].
    pub mailbox_capacity: Option<usize>,
    /// See [`ShardConfig::inject_capacity`].
    pub inject_capacity: Option<usize>,
    /// See [`ShardConfig::batch_budget`].
    pub batch_budget: Option<usize>,
    /// See [`ShardConfig::spin_before_park`].
    pub spin_before_park: Option<Duration>,
    /// See [`ShardConfig::spin_before_yield`].
    pub spin_before_yield: Option<Duration>,
    /// See [`ShardConfig::inject_pacing`].
    pub inject_pacing: Option<Duration>,
    /// See [`ShardConfig::timer_tick`].
    pub timer_tick: Option<Duration>,
    /// See [`ShardConfig::io_events`].
    pub io_events: Option<usize>,
    /// See [`ShardConfig::max_actors`].
    pub max_actors: Option<usize>,
    /// See [`ShardConfig::prefault_rings`].
    pub prefault_rings: Option<bool>,
    /// Steal knobs; see [`StealConfig`].
    pub steal: StealOverride,
}

impl ShardOverride {
    /// `true` when no field is `Some`, so the override changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Per-shard exceptions to [`StealConfig`]: each `Some` field replaces that shard's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StealOverride {
    /// See [`StealConfig::may_steal`].
    pub may_steal: Option<bool>,
    /// See [`StealConfig::may_be_stolen`].
    pub may_be_stolen: Option<bool>,
    /// See [`StealConfig::backlog_threshold`].
    pub backlog_threshold: Option<usize>,
    /// See [`StealConfig::batch`].
    pub batch: Option<usize>,
    /// See [`StealConfig::search_before_park`].
    pub search_before_park: Option<Duration>,
}

/// The validated settings of one shard, as produced by [`Config::resolve`].
///
/// Defaults and overrides are already merged and every value is in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedShard {
    /// Shard id, `0..shard count`; equal to the index in the resolved list.
    pub id: usize,
    /// CPU to pin the shard's thread to; `None` leaves it unpinned. Several shards may name the
    /// same CPU when there are more shards than CPUs.
    pub cpu: Option<usize>,
    /// See [`ShardConfig::ring_capacity`]; a power of two.
    pub ring_capacity: usize,
    /// See [`ShardConfig::mailbox_capacity`].
    pub mailbox_capacity: usize,
    /// See [`ShardConfig::inject_capacity`].
    pub inject_capacity: usize,
    /// See [`ShardConfig::batch_budget`].
    pub batch_budget: usize,
    /// See [`ShardConfig::spin_before_park`].
    pub spin_before_park: Duration,
    /// See [`ShardConfig::spin_before_yield`].
    pub spin_before_yield: Duration,
    /// See [`ShardConfig::inject_pacing`].
    pub inject_pacing: Duration,
    /// See [`ShardConfig::timer_tick`].
    pub timer_tick: Duration,
    /// See [`ShardConfig::io_events`].
    pub io_events: usize,
    /// See [`ShardConfig::max_actors`].
    pub max_actors: usize,
    /// See [`ShardConfig::prefault_rings`].
    pub prefault_rings: bool,
    /// See [`StealConfig`].
    pub steal: StealConfig,
}

/// The CPUs this thread may run on, ascending: the affinity mask of the calling thread
/// (`sched_getaffinity` on Linux, through `core_affinity`).
///
/// Where the platform cannot report a mask, it falls back to `0..n` with `n` from
/// [`std::thread::available_parallelism`] (at least one CPU); pinning may then fail at runtime,
/// which the runtime reports as a warning.
#[must_use]
pub fn available_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => {
            let mut cpus: Vec<usize> = ids.into_iter().map(|core| core.id).collect();
            cpus.sort_unstable();
            cpus.dedup();
            cpus
        }
        _ => (0..parallelism()).collect(),
    }
}

/// [`std::thread::available_parallelism`], or 1 when it cannot be determined.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

impl Config {
    /// The default configuration: one shard per available core, [`Placement::Spread`],
    /// [`ShardConfig::default()`] everywhere, no overrides, [`DEFAULT_SHUTDOWN_TIMEOUT`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            shards: None,
            placement: Placement::Spread,
            shard: ShardConfig::default(),
            overrides: BTreeMap::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Checks the whole configuration against this machine, as [`Config::resolve`] does.
    ///
    /// # Errors
    ///
    /// Every error [`Config::resolve`] reports.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(drop)
    }

    /// Checks the configuration against this machine and returns one [`ResolvedShard`] per
    /// shard, in id order.
    ///
    /// The CPUs are [`available_cpus`]; a `None` shard count means
    /// [`std::thread::available_parallelism`] shards (capped at [`MAX_SHARDS`]), or one per CPU
    /// listed by [`Placement::Fixed`].
    ///
    /// # Errors
    ///
    /// As [`Config::resolve_with_cpus`].
    pub fn resolve(&self) -> Result<Vec<ResolvedShard>, ConfigError> {
        self.resolve_inner(&available_cpus(), parallelism().min(MAX_SHARDS))
    }

    /// [`Config::resolve`] against a given list of available CPUs, for tests and for callers
    /// that restrict the runtime to a CPU set. A `None` shard count means `available.len()`
    /// shards (capped at [`MAX_SHARDS`]), or one per CPU listed by [`Placement::Fixed`].
    ///
    /// Shard `i` is pinned to, in order of precedence: its override's `cpu`, the default
    /// [`ShardConfig::cpu`], then the placement ([`Placement::Spread`] and [`Placement::Pack`]:
    /// entry `i % available.len()` of `available` in that placement's topology order, see
    /// their docs; [`Placement::Fixed`]: `list[i]`;
    /// [`Placement::Unpinned`]: not pinned).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first offending field, checked in this order:
    /// - any value out of its range (kinds [`Zero`](ConfigErrorKind::Zero),
    ///   [`OutOfRange`](ConfigErrorKind::OutOfRange),
    ///   [`NotPowerOfTwo`](ConfigErrorKind::NotPowerOfTwo)), on `shards`,
    ///   `shutdown_timeout_ms`, `shard.<key>`, then `shard.<N>.<key>`;
    /// - `shards`: [`NoCpus`](ConfigErrorKind::NoCpus) when the count is `None` and `available`
    ///   is empty; `placement`: [`Zero`](ConfigErrorKind::Zero) for an empty
    ///   [`Placement::Fixed`] list with a `None` count;
    /// - `shard.<N>`: [`OverrideForMissingShard`](ConfigErrorKind::OverrideForMissingShard);
    /// - `placement`: [`PlacementLength`](ConfigErrorKind::PlacementLength) or
    ///   [`NoSuchCpu`](ConfigErrorKind::NoSuchCpu) for [`Placement::Fixed`];
    /// - `shard.cpu` / `shard.<N>.cpu`: [`NoSuchCpu`](ConfigErrorKind::NoSuchCpu);
    /// - `placement`: [`NoCpus`](ConfigErrorKind::NoCpus) when a shard needs
    ///   [`Placement::Spread`] or [`Placement::Pack`] and `available` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::config::{Config, ConfigErrorKind};
    ///
    /// let mut config = Config::new();
    /// config.shards = Some(3);
    /// // Three shards on two CPUs: shard 2 wraps around to CPU 4.
    /// let cpus: Vec<_> = config
    ///     .resolve_with_cpus(&[4, 5])?
    ///     .iter()
    ///     .map(|shard| shard.cpu)
    ///     .collect();
    /// assert_eq!(cpus, [Some(4), Some(5), Some(4)]);
    ///
    /// config.overrides.entry(0).or_default().cpu = Some(7);
    /// let err = config.resolve_with_cpus(&[4, 5]).unwrap_err();
    /// assert_eq!(err.field(), "shard.0.cpu");
    /// assert!(matches!(err.kind(), ConfigErrorKind::NoSuchCpu { cpu: 7, .. }));
    /// # Ok::<(), coreactor::config::ConfigError>(())
    /// ```
    pub fn resolve_with_cpus(
        &self,
        available: &[usize],
    ) -> Result<Vec<ResolvedShard>, ConfigError> {
        self.resolve_inner(available, available.len().min(MAX_SHARDS))
    }

    /// Reads a configuration from TOML text, starting from [`Config::new()`]; keys the text
    /// leaves out keep their defaults. The format is described in `docs/config.md`.
    ///
    /// Each value is checked on its own (type, range); checks across fields and against the
    /// machine are left to [`Config::resolve`], after environment overrides.
    ///
    /// # Errors
    ///
    /// [`Parse`](ConfigErrorKind::Parse) for malformed TOML (with line and column),
    /// [`UnknownKey`](ConfigErrorKind::UnknownKey), [`WrongType`](ConfigErrorKind::WrongType),
    /// [`BadValue`](ConfigErrorKind::BadValue) and the range kinds, each naming the field by
    /// its TOML path.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::config::{Config, ConfigErrorKind, Placement};
    ///
    /// let config = Config::from_toml_str(
    ///     r#"
    ///     shards = 2
    ///     placement = "unpinned"
    ///     [shard]
    ///     batch_budget = 32
    ///     [shard.1.steal]
    ///     may_steal = false
    ///     "#,
    /// )?;
    /// assert_eq!(config.shards, Some(2));
    /// assert_eq!(config.placement, Placement::Unpinned);
    /// assert_eq!(config.shard.batch_budget, 32);
    /// assert_eq!(config.overrides[&1].steal.may_steal, Some(false));
    ///
    /// let err = Config::from_toml_str("[shard]\nring_capacity = 1000").unwrap_err();
    /// assert_eq!(err.field(), "shard.ring_capacity");
    /// assert!(matches!(err.kind(), ConfigErrorKind::NotPowerOfTwo { value: 1000 }));
    /// # Ok::<(), coreactor::config::ConfigError>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let mut config = Self::new();
        toml::apply(&mut config, s)?;
        Ok(config)
    }

    /// Reads a configuration from a TOML file; see [`Config::from_toml_str`].
    ///
    /// # Errors
    ///
    /// [`Io`](ConfigErrorKind::Io) when the file cannot be read, otherwise as
    /// [`Config::from_toml_str`]. Every error carries the path ([`ConfigError::file`]).
    #[cfg(feature = "toml")]
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::new("", ConfigErrorKind::Io(err)).in_file(path))?;
        Self::from_toml_str(&text).map_err(|err| err.in_file(path))
    }

    /// Applies `COREACTOR_*` variables from the process environment; see
    /// [`Config::apply_env_from`] for the variables and their precedence.
    ///
    /// # Errors
    ///
    /// As [`Config::apply_env_from`], plus [`BadEnv`](ConfigErrorKind::BadEnv) for a
    /// `COREACTOR_*` variable whose name or value is not valid UTF-8.
    pub fn apply_env(self) -> Result<Self, ConfigError> {
        let vars = env::process_vars()?;
        self.apply_env_from(vars)
    }

    /// Applies `COREACTOR_*` variables from `vars`; other variables are ignored.
    ///
    /// | Variable | Sets |
    /// |---|---|
    /// | `COREACTOR_SHARDS` | [`Config::shards`]: a count, or `auto` for `None` |
    /// | `COREACTOR_PLACEMENT` | `spread`, `pack`, `unpinned` or a comma list of CPUs (`0,2,4`) |
    /// | `COREACTOR_SHUTDOWN_TIMEOUT_MS` | [`Config::shutdown_timeout`], milliseconds |
    /// | `COREACTOR_SHARD_<KEY>` | [`Config::shard`], e.g. `COREACTOR_SHARD_RING_CAPACITY` |
    /// | `COREACTOR_SHARD<N>_<KEY>` | shard `N`'s override, e.g. `COREACTOR_SHARD1_CPU` |
    ///
    /// `<KEY>` is the TOML key of `[shard]` in upper case, with steal keys prefixed `STEAL_`
    /// and durations in their TOML unit: `CPU`, `RING_CAPACITY`, `MAILBOX_CAPACITY`,
    /// `INJECT_CAPACITY`, `BATCH_BUDGET`, `SPIN_BEFORE_PARK_US`, `SPIN_BEFORE_YIELD_US`, `INJECT_PACING_US`, `TIMER_TICK_US`, `IO_EVENTS`, `MAX_ACTORS`,
    /// `STEAL_MAY_STEAL`, `STEAL_MAY_BE_STOLEN`, `STEAL_BACKLOG_THRESHOLD`, `STEAL_BATCH`,
    /// `STEAL_SEARCH_BEFORE_PARK_US`. Booleans are `true`/`false`/`1`/`0`.
    ///
    /// A variable replaces the value already in `self` for the same scope (and a later pair in
    /// `vars` an earlier one); a per-shard override still beats `COREACTOR_SHARD_<KEY>`. Each value is checked on its own;
    /// [`Config::resolve`] checks the rest.
    ///
    /// # Errors
    ///
    /// Every error names the variable: [`UnknownKey`](ConfigErrorKind::UnknownKey) for an
    /// unrecognised `COREACTOR_*` name (typo protection), [`BadEnv`](ConfigErrorKind::BadEnv)
    /// for a value that does not parse, and the range kinds for a value out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::config::{Config, ConfigErrorKind};
    ///
    /// let vars = [
    ///     ("COREACTOR_SHARDS".to_owned(), "2".to_owned()),
    ///     ("COREACTOR_SHARD1_BATCH_BUDGET".to_owned(), "8".to_owned()),
    ///     ("PATH".to_owned(), "/usr/bin".to_owned()),
    /// ];
    /// let config = Config::new().apply_env_from(vars)?;
    /// assert_eq!(config.shards, Some(2));
    /// assert_eq!(config.overrides[&1].batch_budget, Some(8));
    ///
    /// let typo = [("COREACTOR_SHRADS".to_owned(), "2".to_owned())];
    /// let err = Config::new().apply_env_from(typo).unwrap_err();
    /// assert_eq!(err.field(), "COREACTOR_SHRADS");
    /// assert!(matches!(err.kind(), ConfigErrorKind::UnknownKey));
    /// # Ok::<(), coreactor::config::ConfigError>(())
    /// ```
    pub fn apply_env_from(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        for (name, value) in vars {
            env::apply_var(&mut self, &name, &value)?;
        }
        Ok(self)
    }

    /// Checks every value on its own, naming fields by their TOML path.
    fn check_values(&self) -> Result<(), ConfigError> {
        if let Some(shards) = self.shards {
            check_count(limits::SHARDS, false, shards, || "shards".to_owned())?;
        }
        check_duration(
            limits::SHUTDOWN_TIMEOUT,
            Unit::Millis,
            self.shutdown_timeout,
            || "shutdown_timeout_ms".to_owned(),
        )?;
        for key in ShardKey::ALL {
            if let Some(value) = key.get(&self.shard) {
                key.check(value, || format!("shard.{}", key.path()))?;
            }
        }
        for (id, patch) in &self.overrides {
            for key in ShardKey::ALL {
                if let Some(value) = key.get_override(patch) {
                    key.check(value, || format!("shard.{id}.{}", key.path()))?;
                }
            }
        }
        Ok(())
    }

    fn resolve_inner(
        &self,
        available: &[usize],
        default_count: usize,
    ) -> Result<Vec<ResolvedShard>, ConfigError> {
        self.check_values()?;

        let count = match (self.shards, &self.placement) {
            (Some(count), _) => count,
            (None, Placement::Fixed(list)) if list.is_empty() => {
                return Err(ConfigError::new("placement", ConfigErrorKind::Zero));
            }
            (None, Placement::Fixed(list)) => {
                check_count(limits::SHARDS, false, list.len(), || "placement".to_owned())?;
                list.len()
            }
            (None, _) if default_count == 0 => {
                return Err(ConfigError::new("shards", ConfigErrorKind::NoCpus));
            }
            (None, _) => default_count,
        };

        if let Some((&shard, _)) = self.overrides.range(count..).next() {
            return Err(ConfigError::new(
                format!("shard.{shard}"),
                ConfigErrorKind::OverrideForMissingShard {
                    shard,
                    shards: count,
                },
            ));
        }

        let no_such_cpu = |field: String, cpu: usize| {
            ConfigError::new(
                field,
                ConfigErrorKind::NoSuchCpu {
                    cpu,
                    available: available.to_vec(),
                },
            )
        };
        if let Placement::Fixed(list) = &self.placement {
            if list.len() != count {
                return Err(ConfigError::new(
                    "placement",
                    ConfigErrorKind::PlacementLength {
                        expected: count,
                        got: list.len(),
                    },
                ));
            }
            if let Some(&cpu) = list.iter().find(|cpu| !available.contains(cpu)) {
                return Err(no_such_cpu("placement".to_owned(), cpu));
            }
        }
        if let Some(cpu) = self.shard.cpu.filter(|cpu| !available.contains(cpu)) {
            return Err(no_such_cpu("shard.cpu".to_owned(), cpu));
        }
        for (id, patch) in &self.overrides {
            if let Some(cpu) = patch.cpu.filter(|cpu| !available.contains(cpu)) {
                return Err(no_such_cpu(format!("shard.{id}.cpu"), cpu));
            }
        }

        let ordered = placement_order(available, &self.placement, cpu_place);
        (0..count)
            .map(|id| {
                let mut shard = self.shard.clone();
                if let Some(patch) = self.overrides.get(&id) {
                    shard.apply(patch);
                }
                let cpu = match (shard.cpu, &self.placement) {
                    (Some(cpu), _) => Some(cpu),
                    (None, Placement::Unpinned) => None,
                    (None, Placement::Fixed(list)) => list.get(id).copied(),
                    (None, Placement::Spread | Placement::Pack) => {
                        if ordered.is_empty() {
                            return Err(ConfigError::new("placement", ConfigErrorKind::NoCpus));
                        }
                        Some(ordered[id % ordered.len()])
                    }
                };
                Ok(ResolvedShard {
                    id,
                    cpu,
                    ring_capacity: shard
                        .ring_capacity
                        .unwrap_or_else(|| default_ring_capacity(count)),
                    mailbox_capacity: shard.mailbox_capacity,
                    inject_capacity: shard.inject_capacity,
                    batch_budget: shard.batch_budget,
                    spin_before_park: shard.spin_before_park,
                    spin_before_yield: shard.spin_before_yield,
                    inject_pacing: shard.inject_pacing,
                    timer_tick: shard.timer_tick,
                    io_events: shard.io_events,
                    max_actors: shard.max_actors,
                    prefault_rings: shard.prefault_rings,
                    steal: shard.steal,
                })
            })
            .collect()
    }
}

/// `(package, core)` of `cpu`, if Linux sysfs says.
pub(crate) fn cpu_place(cpu: usize) -> Option<(u32, u32)> {
    let read = |what: &str| -> Option<u32> {
        std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{what}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some((read("physical_package_id")?, read("core_id")?))
}

/// The order in which [`Placement::Spread`] and [`Placement::Pack`] hand out `available` CPUs
/// (shard `i` takes entry `i mod len`), given each CPU's `(package, core)`. In order when any
/// CPU's place is unknown, and for the other placements.
fn placement_order(
    available: &[usize],
    placement: &Placement,
    place: impl Fn(usize) -> Option<(u32, u32)>,
) -> Vec<usize> {
    if !matches!(placement, Placement::Spread | Placement::Pack) {
        return available.to_vec();
    }
    let Some(places) = available
        .iter()
        .map(|&cpu| place(cpu))
        .collect::<Option<Vec<_>>>()
    else {
        return available.to_vec();
    };
    let mut cpus: Vec<(usize, (u32, u32))> = available.iter().copied().zip(places).collect();
    if matches!(placement, Placement::Pack) {
        cpus.sort_by_key(|&(cpu, (package, core))| (package, core, cpu));
        return cpus.into_iter().map(|(cpu, _)| cpu).collect();
    }
    // Spread: key (sibling index in its core, rank of the core in its package, package).
    let mut cores: Vec<(u32, u32)> = cpus.iter().map(|&(_, p)| p).collect();
    cores.sort_unstable();
    cores.dedup();
    let rank = |(package, core): (u32, u32)| {
        cores
            .iter()
            .filter(|&&(p, c)| p == package && c < core)
            .count()
    };
    let sibling = |cpu: usize, p: (u32, u32)| {
        cpus.iter()
            .filter(|&&(other, q)| q == p && other < cpu)
            .count()
    };
    let mut keyed: Vec<((usize, usize, u32, usize), usize)> = cpus
        .iter()
        .map(|&(cpu, p)| ((sibling(cpu, p), rank(p), p.0, cpu), cpu))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, cpu)| cpu).collect()
}

/// Checks a count against `(min, max)` and, if asked, for a power of two.
///
/// Zero below a minimum of one reports [`ConfigErrorKind::Zero`].
fn check_count(
    (min, max): (usize, usize),
    power_of_two: bool,
    value: usize,
    field: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    let kind = if value == 0 && min >= 1 {
        ConfigErrorKind::Zero
    } else if value < min || value > max {
        ConfigErrorKind::OutOfRange {
            value: to_u64(value),
            min: to_u64(min),
            max: to_u64(max),
        }
    } else if power_of_two && !value.is_power_of_two() {
        ConfigErrorKind::NotPowerOfTwo {
            value: to_u64(value),
        }
    } else {
        return Ok(());
    };
    Err(ConfigError::new(field(), kind))
}

/// The unit a duration field is written in (its TOML key's suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Micros,
    Millis,
}

impl Unit {
    fn per_second(self) -> u128 {
        match self {
            Self::Micros => 1_000_000,
            Self::Millis => 1_000,
        }
    }

    /// `d` in this unit, rounded down (or up, if `round_up`), saturating at `u64::MAX`.
    fn count(self, d: Duration, round_up: bool) -> u64 {
        let nanos_per_unit = 1_000_000_000 / self.per_second();
        let whole = d.as_nanos() / nanos_per_unit;
        let whole = if round_up && d.as_nanos() % nanos_per_unit != 0 {
            whole + 1
        } else {
            whole
        };
        u64::try_from(whole).unwrap_or(u64::MAX)
    }

    fn duration(self, n: u64) -> Duration {
        match self {
            Self::Micros => Duration::from_micros(n),
            Self::Millis => Duration::from_millis(n),
        }
    }
}

/// Checks a duration against `(min, max)`, reporting values in the field's unit.
fn check_duration(
    (min, max): (Duration, Duration),
    unit: Unit,
    value: Duration,
    field: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if value >= min && value <= max {
        return Ok(());
    }
    Err(ConfigError::new(
        field(),
        ConfigErrorKind::OutOfRange {
            value: unit.count(value, value > max),
            min: unit.count(min, true),
            max: unit.count(max, false),
        },
    ))
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// One knob of a shard, shared by the TOML reader, the environment reader and validation so
/// that all three agree on names, units and ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShardKey {
    Cpu,
    RingCapacity,
    MailboxCapacity,
    InjectCapacity,
    BatchBudget,
    SpinBeforePark,
    SpinBeforeYield,
    InjectPacing,
    TimerTick,
    IoEvents,
    MaxActors,
    PrefaultRings,
    MaySteal,
    MayBeStolen,
    BacklogThreshold,
    StealBatch,
    SearchBeforePark,
}

/// What a [`ShardKey`] holds and which values are valid.
#[derive(Clone, Copy, Debug)]
enum Knob {
    Flag,
    Cpu,
    Count {
        range: (usize, usize),
        power_of_two: bool,
    },
    Duration {
        range: (Duration, Duration),
        unit: Unit,
    },
}

/// A knob's value, as read from a source or a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Flag(bool),
    /// A count or CPU id.
    Count(usize),
    Duration(Duration),
}

/// A raw value from TOML or the environment, before it is checked against its knob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Raw {
    Flag(bool),
    /// An integer in the knob's unit.
    Int(u64),
}

impl ShardKey {
    const ALL: [Self; 17] = [
        Self::Cpu,
        Self::RingCapacity,
        Self::MailboxCapacity,
        Self::InjectCapacity,
        Self::BatchBudget,
        Self::SpinBeforePark,
        Self::SpinBeforeYield,
        Self::InjectPacing,
        Self::TimerTick,
        Self::IoEvents,
        Self::MaxActors,
        Self::PrefaultRings,
        Self::MaySteal,
        Self::MayBeStolen,
        Self::BacklogThreshold,
        Self::StealBatch,
        Self::SearchBeforePark,
    ];

    /// Whether the key lives in the `steal` sub-table.
    #[cfg(any(feature = "toml", test))]
    fn in_steal(self) -> bool {
        matches!(
            self,
            Self::MaySteal
                | Self::MayBeStolen
                | Self::BacklogThreshold
                | Self::StealBatch
                | Self::SearchBeforePark
        )
    }

    /// The key inside its own TOML table (`batch` for the steal batch).
    fn toml_key(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::RingCapacity => "ring_capacity",
            Self::MailboxCapacity => "mailbox_capacity",
            Self::InjectCapacity => "inject_capacity",
            Self::BatchBudget => "batch_budget",
            Self::SpinBeforePark => "spin_before_park_us",
            Self::SpinBeforeYield => "spin_before_yield_us",
            Self::InjectPacing => "inject_pacing_us",
            Self::TimerTick => "timer_tick_us",
            Self::IoEvents => "io_events",
            Self::MaxActors => "max_actors",
            Self::PrefaultRings => "prefault_rings",
            Self::MaySteal => "may_steal",
            Self::MayBeStolen => "may_be_stolen",
            Self::BacklogThreshold => "backlog_threshold",
            Self::StealBatch => "batch",
            Self::SearchBeforePark => "search_before_park_us",
        }
    }

    /// The path below `shard` / `shard.N` (`steal.batch` for the steal batch).
    fn path(self) -> &'static str {
        match self {
            Self::MaySteal => "steal.may_steal",
            Self::MayBeStolen => "steal.may_be_stolen",
            Self::BacklogThreshold => "steal.backlog_threshold",
            Self::StealBatch => "steal.batch",
            Self::SearchBeforePark => "steal.search_before_park_us",
            other => other.toml_key(),
        }
    }

    /// The `<KEY>` of `COREACTOR_SHARD_<KEY>` / `COREACTOR_SHARD<N>_<KEY>`.
    fn env_key(self) -> &'static str {
        match self {
            Self::Cpu => "CPU",
            Self::RingCapacity => "RING_CAPACITY",
            Self::MailboxCapacity => "MAILBOX_CAPACITY",
            Self::InjectCapacity => "INJECT_CAPACITY",
            Self::BatchBudget => "BATCH_BUDGET",
            Self::SpinBeforePark => "SPIN_BEFORE_PARK_US",
            Self::SpinBeforeYield => "SPIN_BEFORE_YIELD_US",
            Self::InjectPacing => "INJECT_PACING_US",
            Self::TimerTick => "TIMER_TICK_US",
            Self::IoEvents => "IO_EVENTS",
            Self::MaxActors => "MAX_ACTORS",
            Self::PrefaultRings => "PREFAULT_RINGS",
            Self::MaySteal => "STEAL_MAY_STEAL",
            Self::MayBeStolen => "STEAL_MAY_BE_STOLEN",
            Self::BacklogThreshold => "STEAL_BACKLOG_THRESHOLD",
            Self::StealBatch => "STEAL_BATCH",
            Self::SearchBeforePark => "STEAL_SEARCH_BEFORE_PARK_US",
        }
    }

    /// Whether the knob takes a boolean.
    fn is_flag(self) -> bool {
        matches!(self.knob(), Knob::Flag)
    }

    /// For the tests that set every knob: a value that differs from the default and passes
    /// validation (a flag's opposite; `32` for the numbers, in every knob's range).
    #[cfg(test)]
    fn non_default_text(self) -> &'static str {
        match self.get(&ShardConfig::default()) {
            Some(Value::Flag(true)) => "false",
            Some(Value::Flag(false)) => "true",
            _ => "32",
        }
    }

    fn knob(self) -> Knob {
        let count = |range| Knob::Count {
            range,
            power_of_two: false,
        };
        let micros = |range| Knob::Duration {
            range,
            unit: Unit::Micros,
        };
        match self {
            Self::Cpu => Knob::Cpu,
            Self::RingCapacity => Knob::Count {
                range: limits::RING_CAPACITY,
                power_of_two: true,
            },
            Self::MailboxCapacity => count(limits::MAILBOX_CAPACITY),
            Self::InjectCapacity => Knob::Count {
                range: limits::INJECT_CAPACITY,
                power_of_two: true,
            },
            Self::BatchBudget => count(limits::BATCH_BUDGET),
            Self::SpinBeforePark => micros(limits::SPIN_BEFORE_PARK),
            Self::SpinBeforeYield => micros(limits::SPIN_BEFORE_YIELD),
            Self::InjectPacing => micros(limits::INJECT_PACING),
            Self::TimerTick => micros(limits::TIMER_TICK),
            Self::IoEvents => count(limits::IO_EVENTS),
            Self::MaxActors => count(limits::MAX_ACTORS),
            Self::PrefaultRings | Self::MaySteal | Self::MayBeStolen => Knob::Flag,
            Self::BacklogThreshold => count(limits::STEAL_BACKLOG_THRESHOLD),
            Self::StealBatch => count(limits::STEAL_BATCH),
            Self::SearchBeforePark => micros(limits::SEARCH_BEFORE_PARK),
        }
    }

    /// The knob's value in `shard`; `None` only for an unset CPU or ring capacity.
    fn get(self, shard: &ShardConfig) -> Option<Value> {
        Some(match self {
            Self::Cpu => return shard.cpu.map(Value::Count),
            Self::RingCapacity => return shard.ring_capacity.map(Value::Count),
            Self::MailboxCapacity => Value::Count(shard.mailbox_capacity),
            Self::InjectCapacity => Value::Count(shard.inject_capacity),
            Self::BatchBudget => Value::Count(shard.batch_budget),
            Self::SpinBeforePark => Value::Duration(shard.spin_before_park),
            Self::SpinBeforeYield => Value::Duration(shard.spin_before_yield),
            Self::InjectPacing => Value::Duration(shard.inject_pacing),
            Self::TimerTick => Value::Duration(shard.timer_tick),
            Self::IoEvents => Value::Count(shard.io_events),
            Self::MaxActors => Value::Count(shard.max_actors),
            Self::PrefaultRings => Value::Flag(shard.prefault_rings),
            Self::MaySteal => Value::Flag(shard.steal.may_steal),
            Self::MayBeStolen => Value::Flag(shard.steal.may_be_stolen),
            Self::BacklogThreshold => Value::Count(shard.steal.backlog_threshold),
            Self::StealBatch => Value::Count(shard.steal.batch),
            Self::SearchBeforePark => Value::Duration(shard.steal.search_before_park),
        })
    }

    /// The knob's value in `patch`, if it overrides it.
    fn get_override(self, patch: &ShardOverride) -> Option<Value> {
        match self {
            Self::Cpu => patch.cpu.map(Value::Count),
            Self::RingCapacity => patch.ring_capacity.map(Value::Count),
            Self::MailboxCapacity => patch.mailbox_capacity.map(Value::Count),
            Self::InjectCapacity => patch.inject_capacity.map(Value::Count),
            Self::BatchBudget => patch.batch_budget.map(Value::Count),
            Self::SpinBeforePark => patch.spin_before_park.map(Value::Duration),
            Self::SpinBeforeYield => patch.spin_before_yield.map(Value::Duration),
            Self::InjectPacing => patch.inject_pacing.map(Value::Duration),
            Self::TimerTick => patch.timer_tick.map(Value::Duration),
            Self::IoEvents => patch.io_events.map(Value::Count),
            Self::MaxActors => patch.max_actors.map(Value::Count),
            Self::PrefaultRings => patch.prefault_rings.map(Value::Flag),
            Self::MaySteal => patch.steal.may_steal.map(Value::Flag),
            Self::MayBeStolen => patch.steal.may_be_stolen.map(Value::Flag),
            Self::BacklogThreshold => patch.steal.backlog_threshold.map(Value::Count),
            Self::StealBatch => patch.steal.batch.map(Value::Count),
            Self::SearchBeforePark => patch.steal.search_before_park.map(Value::Duration),
        }
    }

    /// Checks `value` against the knob's range. CPUs are checked against the CPU list later.
    fn check(self, value: Value, field: impl FnOnce() -> String) -> Result<(), ConfigError> {
        match (self.knob(), value) {
            (
                Knob::Count {
                    range,
                    power_of_two,
                },
                Value::Count(n),
            ) => check_count(range, power_of_two, n, field),
            (Knob::Duration { range, unit }, Value::Duration(d)) => {
                check_duration(range, unit, d, field)
            }
            (Knob::Flag, Value::Flag(_)) | (Knob::Cpu, Value::Count(_)) => Ok(()),
            (knob, _) => Err(knob.wrong_type(field(), "a value of another type")),
        }
    }

    /// Checks a raw value and stores it in `patch`.
    fn store(self, patch: &mut ShardOverride, raw: Raw, field: &str) -> Result<(), ConfigError> {
        let value = match (self.knob(), raw) {
            (Knob::Flag, Raw::Flag(b)) => Value::Flag(b),
            (Knob::Cpu | Knob::Count { .. }, Raw::Int(n)) => {
                Value::Count(usize::try_from(n).map_err(|_| {
                    ConfigError::new(
                        field,
                        ConfigErrorKind::OutOfRange {
                            value: n,
                            min: 0,
                            max: to_u64(usize::MAX),
                        },
                    )
                })?)
            }
            (Knob::Duration { unit, .. }, Raw::Int(n)) => Value::Duration(unit.duration(n)),
            (knob, Raw::Flag(_)) => return Err(knob.wrong_type(field.to_owned(), "a boolean")),
            (knob, Raw::Int(_)) => return Err(knob.wrong_type(field.to_owned(), "an integer")),
        };
        self.check(value, || field.to_owned())?;
        let steal = &mut patch.steal;
        match (self, value) {
            (Self::Cpu, Value::Count(n)) => patch.cpu = Some(n),
            (Self::RingCapacity, Value::Count(n)) => patch.ring_capacity = Some(n),
            (Self::MailboxCapacity, Value::Count(n)) => patch.mailbox_capacity = Some(n),
            (Self::InjectCapacity, Value::Count(n)) => patch.inject_capacity = Some(n),
            (Self::BatchBudget, Value::Count(n)) => patch.batch_budget = Some(n),
            (Self::SpinBeforePark, Value::Duration(d)) => patch.spin_before_park = Some(d),
            (Self::SpinBeforeYield, Value::Duration(d)) => patch.spin_before_yield = Some(d),
            (Self::InjectPacing, Value::Duration(d)) => patch.inject_pacing = Some(d),
            (Self::TimerTick, Value::Duration(d)) => patch.timer_tick = Some(d),
            (Self::IoEvents, Value::Count(n)) => patch.io_events = Some(n),
            (Self::MaxActors, Value::Count(n)) => patch.max_actors = Some(n),
            (Self::PrefaultRings, Value::Flag(b)) => patch.prefault_rings = Some(b),
            (Self::MaySteal, Value::Flag(b)) => steal.may_steal = Some(b),
            (Self::MayBeStolen, Value::Flag(b)) => steal.may_be_stolen = Some(b),
            (Self::BacklogThreshold, Value::Count(n)) => steal.backlog_threshold = Some(n),
            (Self::StealBatch, Value::Count(n)) => steal.batch = Some(n),
            (Self::SearchBeforePark, Value::Duration(d)) => steal.search_before_park = Some(d),
            // `check` above accepted the value, so its type matches the knob.
            (_, _) => return Err(self.knob().wrong_type(field.to_owned(), "another type")),
        }
        Ok(())
    }
}

impl Knob {
    /// What a source must provide for this knob, for [`ConfigErrorKind::WrongType`].
    fn expected(self) -> &'static str {
        match self {
            Self::Flag => "a boolean",
            Self::Cpu => "a CPU id (non-negative integer)",
            Self::Count { .. } => "a non-negative integer",
            Self::Duration {
                unit: Unit::Micros, ..
            } => "a non-negative integer (microseconds)",
            Self::Duration {
                unit: Unit::Millis, ..
            } => "a non-negative integer (milliseconds)",
        }
    }

    fn wrong_type(self, field: String, found: &'static str) -> ConfigError {
        ConfigError::new(
            field,
            ConfigErrorKind::WrongType {
                expected: self.expected(),
                found,
            },
        )
    }
}

/// Parses a placement name (`spread`, `pack`, `unpinned`), shared by TOML and the environment.
fn placement_by_name(name: &str) -> Option<Placement> {
    match name {
        "spread" => Some(Placement::Spread),
        "pack" => Some(Placement::Pack),
        "unpinned" => Some(Placement::Unpinned),
        _ => None,
    }
}

/// Checks a shard count read from a source; `field` names the source.
fn shards_from_int(n: u64, field: &str) -> Result<usize, ConfigError> {
    let count = usize::try_from(n).unwrap_or(usize::MAX);
    check_count(limits::SHARDS, false, count, || field.to_owned())?;
    Ok(count)
}

/// Checks a shutdown timeout in milliseconds read from a source; `field` names the source.
fn shutdown_timeout_from_ms(ms: u64, field: &str) -> Result<Duration, ConfigError> {
    let timeout = Unit::Millis.duration(ms);
    check_duration(limits::SHUTDOWN_TIMEOUT, Unit::Millis, timeout, || {
        field.to_owned()
    })?;
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spread_takes_one_cpu_per_core_and_alternates_packages_first() {
        use super::{Placement, placement_order};
        // Two packages of two cores with two SMT siblings each: CPUs 0-3 on package 0 (core 0:
        // 0 and 2, core 1: 1 and 3), 4-7 on package 1 (core 0: 4 and 6, core 1: 5 and 7).
        let place = |cpu: usize| {
            let cpu = u32::try_from(cpu).unwrap();
            Some((cpu / 4, cpu % 2))
        };
        let cpus: Vec<usize> = (0..8).collect();
        assert_eq!(
            placement_order(&cpus, &Placement::Spread, place),
            [0, 4, 1, 5, 2, 6, 3, 7]
        );
        assert_eq!(
            placement_order(&cpus, &Placement::Pack, place),
            [0, 2, 1, 3, 4, 6, 5, 7]
        );
        // Unknown topology for any CPU: in order.
        let partly = |cpu: usize| (cpu != 3).then_some((0, 0));
        assert_eq!(placement_order(&cpus, &Placement::Spread, partly), cpus);
        assert_eq!(placement_order(&cpus, &Placement::Pack, |_| None), cpus);
        assert_eq!(placement_order(&cpus, &Placement::Unpinned, place), cpus);
    }

    use super::*;

    #[test]
    fn defaults_match_constants() {
        let config = Config::default();
        assert_eq!(config, Config::new());
        assert_eq!(config.shards, None);
        assert_eq!(config.placement, Placement::Spread);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(5));
        let shard = &config.shard;
        assert_eq!(shard.cpu, None);
        assert_eq!(shard.ring_capacity, None);
        assert_eq!(shard.mailbox_capacity, 4096);
        assert_eq!(shard.batch_budget, 16);
        assert_eq!(shard.spin_before_park, Duration::from_micros(50));
        assert_eq!(shard.timer_tick, Duration::from_millis(1));
        assert_eq!(shard.io_events, 256);
        assert_eq!(shard.max_actors, 65536);
        assert_eq!(
            shard.steal,
            StealConfig {
                may_steal: true,
                may_be_stolen: true,
                backlog_threshold: 2,
                batch: 8,
                search_before_park: Duration::from_micros(20),
            }
        );
    }

    #[test]
    fn defaults_pass_every_check() {
        for key in ShardKey::ALL {
            if let Some(value) = key.get(&ShardConfig::default()) {
                assert!(key.check(value, String::new).is_ok(), "{key:?}");
            }
        }
    }

    #[test]
    fn key_names_are_unique_and_consistent() {
        for (i, a) in ShardKey::ALL.iter().enumerate() {
            for b in &ShardKey::ALL[i + 1..] {
                assert_ne!(a.path(), b.path());
                assert_ne!(a.env_key(), b.env_key());
            }
            let from_path = a.path().replace('.', "_").to_uppercase();
            assert_eq!(from_path, a.env_key(), "{a:?}");
            assert_eq!(a.path().starts_with("steal."), a.in_steal());
            assert!(a.path().ends_with(a.toml_key()));
        }
    }

    #[test]
    fn count_checks() {
        let field = || "f".to_owned();
        assert!(check_count((1, 8), false, 1, field).is_ok());
        assert!(check_count((1, 8), false, 8, field).is_ok());
        let zero = check_count((1, 8), false, 0, field).unwrap_err();
        assert!(matches!(zero.kind(), ConfigErrorKind::Zero));
        let big = check_count((1, 8), false, 9, field).unwrap_err();
        assert!(matches!(
            big.kind(),
            ConfigErrorKind::OutOfRange {
                value: 9,
                min: 1,
                max: 8
            }
        ));
        let one = check_count(limits::RING_CAPACITY, true, 1, field).unwrap_err();
        assert!(matches!(
            one.kind(),
            ConfigErrorKind::OutOfRange { value: 1, .. }
        ));
        let odd = check_count(limits::RING_CAPACITY, true, 1000, field).unwrap_err();
        assert!(matches!(
            odd.kind(),
            ConfigErrorKind::NotPowerOfTwo { value: 1000 }
        ));
    }

    #[test]
    fn duration_checks_report_in_unit_and_round_outward() {
        let field = || "f".to_owned();
        let range = limits::TIMER_TICK;
        assert!(check_duration(range, Unit::Micros, Duration::from_micros(10), field).is_ok());
        let low = check_duration(range, Unit::Micros, Duration::from_nanos(9_999), field);
        assert!(matches!(
            low.unwrap_err().kind(),
            ConfigErrorKind::OutOfRange {
                value: 9,
                min: 10,
                max: 1_000_000
            }
        ));
        // Just above the maximum is reported above it, not equal to it.
        let high = Duration::from_secs(1) + Duration::from_nanos(1);
        let high = check_duration(range, Unit::Micros, high, field).unwrap_err();
        assert!(matches!(
            high.kind(),
            ConfigErrorKind::OutOfRange {
                value: 1_000_001,
                ..
            }
        ));
        let ms = check_duration(limits::SHUTDOWN_TIMEOUT, Unit::Millis, Duration::MAX, field);
        assert!(matches!(
            ms.unwrap_err().kind(),
            ConfigErrorKind::OutOfRange {
                max: 86_400_000,
                ..
            }
        ));
    }

    #[test]
    fn store_rejects_mismatched_raw_types() {
        let mut patch = ShardOverride::default();
        let err = ShardKey::MaySteal
            .store(&mut patch, Raw::Int(1), "x")
            .unwrap_err();
        assert!(matches!(
            err.kind(),
            ConfigErrorKind::WrongType {
                expected: "a boolean",
                ..
            }
        ));
        let err = ShardKey::StealBatch
            .store(&mut patch, Raw::Flag(true), "x")
            .unwrap_err();
        assert!(matches!(err.kind(), ConfigErrorKind::WrongType { .. }));
        assert!(patch.is_empty());
        ShardKey::SearchBeforePark
            .store(&mut patch, Raw::Int(7), "x")
            .unwrap();
        assert_eq!(
            patch.steal.search_before_park,
            Some(Duration::from_micros(7))
        );
    }

    #[test]
    fn apply_copies_only_some_fields() {
        let mut shard = ShardConfig::default();
        shard.apply(&ShardOverride::default());
        assert_eq!(shard, ShardConfig::default());
        let patch = ShardOverride {
            cpu: Some(3),
            timer_tick: Some(Duration::from_micros(100)),
            steal: StealOverride {
                batch: Some(2),
                ..StealOverride::default()
            },
            ..ShardOverride::default()
        };
        shard.apply(&patch);
        assert_eq!(shard.cpu, Some(3));
        assert_eq!(shard.timer_tick, Duration::from_micros(100));
        assert_eq!(shard.steal.batch, 2);
        assert_eq!(
            shard.steal.backlog_threshold,
            DEFAULT_STEAL_BACKLOG_THRESHOLD
        );
        assert_eq!(shard.ring_capacity, None);
    }

    #[test]
    fn default_ring_capacity_bounds_ring_memory() {
        let memory =
            |shards: usize| shards * (shards - 1) * default_ring_capacity(shards) * RING_SLOT_BYTES;
        assert_eq!(default_ring_capacity(1), DEFAULT_RING_CAPACITY);
        for shards in 2..=8 {
            assert_eq!(
                default_ring_capacity(shards),
                DEFAULT_RING_CAPACITY,
                "{shards}"
            );
        }
        let mut previous = DEFAULT_RING_CAPACITY;
        for shards in 2..=1024 {
            let cap = default_ring_capacity(shards);
            assert!(cap.is_power_of_two(), "{shards}: {cap}");
            assert!(cap <= previous, "{shards}: grows from {previous} to {cap}");
            assert!(cap >= MIN_DEFAULT_RING_CAPACITY);
            // Within the budget unless the floor applies.
            assert!(
                cap == MIN_DEFAULT_RING_CAPACITY || memory(shards) <= DEFAULT_RING_MEMORY,
                "{shards}: {cap}"
            );
            // And the largest power of two that is: doubling it would not fit.
            assert!(cap == DEFAULT_RING_CAPACITY || 2 * memory(shards) > DEFAULT_RING_MEMORY);
            previous = cap;
        }
        assert_eq!(default_ring_capacity(usize::MAX), MIN_DEFAULT_RING_CAPACITY);
    }

    #[test]
    fn unset_ring_capacity_resolves_from_the_shard_count() {
        for (shards, expected) in [(1, 16384), (2, 16384), (16, 8192), (32, 2048)] {
            let config = Config {
                shards: Some(shards),
                placement: Placement::Unpinned,
                ..Config::default()
            };
            let resolved = config.resolve().expect("valid");
            assert!(
                resolved.iter().all(|s| s.ring_capacity == expected),
                "{shards}"
            );
        }
        let mut config = Config {
            shards: Some(32),
            placement: Placement::Unpinned,
            ..Config::default()
        };
        config.shard.ring_capacity = Some(64);
        config.overrides.entry(1).or_default().ring_capacity = Some(128);
        let resolved = config.resolve().expect("valid");
        assert_eq!(resolved[0].ring_capacity, 64);
        assert_eq!(resolved[1].ring_capacity, 128);
    }

    #[test]
    fn spread_and_pack_wrap_round_robin() {
        for placement in [Placement::Spread, Placement::Pack] {
            let config = Config {
                shards: Some(5),
                placement,
                ..Config::new()
            };
            let cpus: Vec<_> = config
                .resolve_with_cpus(&[2, 3])
                .unwrap()
                .into_iter()
                .map(|s| s.cpu)
                .collect();
            assert_eq!(cpus, [Some(2), Some(3), Some(2), Some(3), Some(2)]);
        }
    }

    #[test]
    fn unpinned_leaves_shards_unpinned_except_explicit() {
        let mut config = Config {
            shards: Some(3),
            placement: Placement::Unpinned,
            ..Config::new()
        };
        config.overrides.entry(1).or_default().cpu = Some(0);
        let cpus: Vec<_> = config
            .resolve_with_cpus(&[0, 1])
            .unwrap()
            .into_iter()
            .map(|s| s.cpu)
            .collect();
        assert_eq!(cpus, [None, Some(0), None]);
    }

    #[test]
    fn default_cpu_pins_every_shard_without_override() {
        let mut config = Config {
            shards: Some(3),
            ..Config::new()
        };
        config.shard.cpu = Some(1);
        config.overrides.entry(2).or_default().cpu = Some(0);
        let cpus: Vec<_> = config
            .resolve_with_cpus(&[0, 1])
            .unwrap()
            .into_iter()
            .map(|s| s.cpu)
            .collect();
        assert_eq!(cpus, [Some(1), Some(1), Some(0)]);
    }

    #[test]
    fn shard_count_defaults() {
        let config = Config::new();
        assert_eq!(config.resolve_with_cpus(&[0, 1, 2]).unwrap().len(), 3);
        let fixed = Config {
            placement: Placement::Fixed(vec![1, 1, 0, 1]),
            ..Config::new()
        };
        let shards = fixed.resolve_with_cpus(&[0, 1]).unwrap();
        assert_eq!(shards.len(), 4);
        assert_eq!(shards[2].cpu, Some(0));
        let many: Vec<usize> = (0..2000).collect();
        assert_eq!(config.resolve_with_cpus(&many).unwrap().len(), MAX_SHARDS);
        let ids: Vec<_> = config
            .resolve_with_cpus(&[0, 1, 2])
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, [0, 1, 2]);
    }

    #[test]
    fn no_cpus() {
        let err = Config::new().resolve_with_cpus(&[]).unwrap_err();
        assert_eq!(err.field(), "shards");
        assert!(matches!(err.kind(), ConfigErrorKind::NoCpus));

        let spread = Config {
            shards: Some(1),
            ..Config::new()
        };
        let err = spread.resolve_with_cpus(&[]).unwrap_err();
        assert_eq!(err.field(), "placement");
        assert!(matches!(err.kind(), ConfigErrorKind::NoCpus));

        let unpinned = Config {
            shards: Some(2),
            placement: Placement::Unpinned,
            ..Config::new()
        };
        assert_eq!(unpinned.resolve_with_cpus(&[]).unwrap().len(), 2);

        let empty = Config {
            placement: Placement::Fixed(Vec::new()),
            ..Config::new()
        };
        let err = empty.resolve_with_cpus(&[0]).unwrap_err();
        assert_eq!(err.field(), "placement");
        assert!(matches!(err.kind(), ConfigErrorKind::Zero));
    }

    #[test]
    fn too_many_shards() {
        let config = Config {
            shards: Some(MAX_SHARDS + 1),
            ..Config::new()
        };
        let err = config.resolve_with_cpus(&[0]).unwrap_err();
        assert_eq!(err.field(), "shards");
        assert!(matches!(
            err.kind(),
            ConfigErrorKind::OutOfRange { max: 1024, .. }
        ));
    }

    #[test]
    fn code_built_values_are_checked_with_toml_paths() {
        let mut config = Config::new();
        config.shard.steal.batch = 0;
        let err = config.resolve_with_cpus(&[0]).unwrap_err();
        assert_eq!(err.field(), "shard.steal.batch");
        assert!(matches!(err.kind(), ConfigErrorKind::Zero));

        let mut config = Config::new();
        config.shutdown_timeout = Duration::from_secs(90_000);
        let err = config.resolve_with_cpus(&[0]).unwrap_err();
        assert_eq!(err.field(), "shutdown_timeout_ms");

        let mut config = Config::new();
        config.overrides.entry(0).or_default().timer_tick = Some(Duration::from_micros(5));
        let err = config.resolve_with_cpus(&[0]).unwrap_err();
        assert_eq!(err.field(), "shard.0.timer_tick_us");
        assert!(matches!(
            err.kind(),
            ConfigErrorKind::OutOfRange {
                value: 5,
                min: 10,
                ..
            }
        ));
    }

    #[test]
    fn resolve_uses_this_machine() {
        let cpus = available_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
        let shards = Config::new().resolve().unwrap();
        assert_eq!(shards.len(), parallelism().min(MAX_SHARDS));
        assert!(
            shards
                .iter()
                .all(|s| s.cpu.is_some_and(|c| cpus.contains(&c)))
        );
        assert!(Config::new().validate().is_ok());
    }
}
