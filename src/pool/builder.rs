//! [`PoolBuilder`]: size, factory, placement and timeouts, ending in
//! [`build`](PoolBuilder::build).

use super::probe::{Probe, ProbeMsg, SpawnFn};
use super::shutdown::wait_until;
use super::{InitFailure, Inner, MemberInitError, Pool, PoolBuildError, PoolMember};
use crate::lifecycle::{ChildOptions, State};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicU8, AtomicUsize};
use crate::{Actor, Addr, Runtime, SpawnError};
use std::fmt;
use std::time::{Duration, Instant};

/// The default timeout of [`Pool::ask`]: 5 s.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on how long [`Pool::shutdown`] (and dropping the last handle) waits for the
/// members to stop: 5 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`PoolBuilder::build`] waits past the init timeout of
/// [`wait_for_init`](PoolBuilder::wait_for_init) for the members' own init timers to fire and
/// for the reasons of failed members to arrive: 1 s.
pub const INIT_GRACE: Duration = Duration::from_secs(1);

/// Builds a [`Pool`]; made by [`Pool::builder`].
///
/// # Examples
///
/// ```
/// use coreactor::pool::{Pool, PoolMember};
/// use coreactor::{Actor, Context, Runtime};
/// use std::time::Duration;
///
/// struct Conn(PoolMember);
/// impl Actor for Conn {
///     type Msg = ();
///     fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
/// }
///
/// let rt = Runtime::builder().shards(4).build().unwrap();
/// let pool = Pool::builder(6, Conn)
///     .shards([1, 3]) // members 0, 2, 4 on shard 1; 1, 3, 5 on shard 3
///     .ask_timeout(Duration::from_millis(500))
///     .build(&rt)
///     .unwrap();
/// let shards: Vec<usize> = pool.members().iter().map(|m| m.shard()).collect();
/// assert_eq!(shards, [1, 3, 1, 3, 1, 3]);
/// pool.shutdown().unwrap();
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder<A, F> {
    size: usize,
    factory: F,
    shards: Option<Vec<usize>>,
    ask_timeout: Duration,
    shutdown_timeout: Duration,
    init_timeout: Option<Duration>,
    _actor: std::marker::PhantomData<fn() -> A>,
}

impl<A, F> fmt::Debug for PoolBuilder<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("size", &self.size)
            .field("shards", &self.shards)
            .field("ask_timeout", &self.ask_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("init_timeout", &self.init_timeout)
            .finish_non_exhaustive()
    }
}

impl<A, F> PoolBuilder<A, F>
where
    A: Actor,
    F: Fn(PoolMember) -> A + Send + Sync + 'static,
{
    pub(crate) fn new(size: usize, factory: F) -> Self {
        PoolBuilder {
            size,
            factory,
            shards: None,
            ask_timeout: DEFAULT_ASK_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            init_timeout: None,
            _actor: std::marker::PhantomData,
        }
    }

    /// Places the members on these shards, in turn: member `i` goes to `shards[i % len]`
    /// (default: every shard of the runtime, `0..shard_count`). A shard may be listed twice to
    /// give it more members.
    pub fn shards(mut self, shards: impl IntoIterator<Item = usize>) -> Self {
        self.shards = Some(shards.into_iter().collect());
        self
    }

    /// The timeout of [`Pool::ask`] and [`Pool::broadcast`]-style calls that take none
    /// (default [`DEFAULT_ASK_TIMEOUT`]).
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// How long [`Pool::shutdown`] (and dropping the last handle) waits for every member to
    /// stop (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Makes [`build`](Self::build) wait until every member is operational, at most `timeout`
    /// (plus [`INIT_GRACE`]): the pool's asynchronous init. A member may then hold its I-phase
    /// with the resources plugin — [`Context::acquire`](crate::Context::acquire) in
    /// [`Actor::init`] when it starts connecting, [`Context::release`](crate::Context::release)
    /// when the connection is open — and `build` returns only once every connection is open.
    /// `timeout` is each member's own I-phase timeout: a member still initializing then fails
    /// with [`StopReason::InitTimeout`](crate::StopReason::InitTimeout).
    ///
    /// Members are then children of the pool's per-shard probe, which starts each when it is
    /// initialized, records why one went down, and stops them when the runtime shuts down
    /// (they are never restarted). Without this option (the default) `build` returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::pool::{Pool, PoolMember};
    /// use coreactor::{Actor, Context, Runtime};
    /// use std::time::Duration;
    ///
    /// /// Opens its connection asynchronously: the completion arrives as a message.
    /// struct Conn { connected: bool }
    /// enum Msg { Connected, IsConnected(coreactor::Reply<bool>) }
    ///
    /// impl Actor for Conn {
    ///     type Msg = Msg;
    ///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.acquire(1); // holds the I-phase until released
    ///         ctx.send_after(Duration::from_millis(5), Msg::Connected); // stands in for a connect
    ///     }
    ///     fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
    ///         match msg {
    ///             Msg::Connected => {
    ///                 self.connected = true;
    ///                 ctx.release(1);
    ///             }
    ///             Msg::IsConnected(r) => r.send(self.connected),
    ///         }
    ///     }
    /// }
    ///
    /// let rt = Runtime::builder().shards(2).build()?;
    /// let pool = Pool::builder(4, |_: PoolMember| Conn { connected: false })
    ///     .wait_for_init(Duration::from_secs(2))
    ///     .build(&rt)?; // returns once all four are connected
    /// let all = pool.broadcast(Msg::IsConnected, Duration::from_secs(1));
    /// assert!(all.into_iter().all(|c| c == Ok(true)));
    /// pool.shutdown()?;
    /// rt.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_init(mut self, timeout: Duration) -> Self {
        self.init_timeout = Some(timeout);
        self
    }

    /// Spawns the members on `rt`: member `i` is built by the factory on its own shard (with
    /// [`Runtime::spawn_with`], or as a child of the shard's probe with
    /// [`wait_for_init`](Self::wait_for_init)), so what it opens there (a connection, a file)
    /// lives on the thread that uses it. Without `wait_for_init` it returns at once: messages
    /// sent before a member is installed are kept and delivered in order. With it, it returns
    /// once every member is operational.
    ///
    /// A factory that panics leaves that member stopped: requests routed to it answer `Closed`
    /// (see [`Pool::stats`] or [`Addr::is_alive`] to find it); with `wait_for_init` the build
    /// fails instead.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError::EmptyPool`], [`PoolBuildError::NoShards`],
    /// [`PoolBuildError::NoSuchShard`], [`PoolBuildError::OnShardThread`] (nothing spawned), or
    /// [`PoolBuildError::Spawn`] (a shard is full or the runtime is shutting down), or
    /// [`PoolBuildError::Init`] naming every member that failed its init or did not finish it
    /// in time; in these last two cases the members spawned so far are stopped again.
    pub fn build(self, rt: &Runtime) -> Result<Pool<A>, PoolBuildError> {
        if self.size == 0 {
            return Err(PoolBuildError::EmptyPool);
        }
        let shard_count = rt.shard_count();
        let shards = self.shards.unwrap_or_else(|| (0..shard_count).collect());
        if shards.is_empty() {
            return Err(PoolBuildError::NoShards);
        }
        if let Some(&shard) = shards.iter().find(|&&s| s >= shard_count) {
            return Err(PoolBuildError::NoSuchShard {
                shard,
                shards: shard_count,
            });
        }
        let shard_threads: Box<[std::thread::ThreadId]> =
            rt.shard_info().into_iter().map(|i| i.thread_id).collect();
        if self.init_timeout.is_some() && shard_threads.contains(&std::thread::current().id()) {
            return Err(PoolBuildError::OnShardThread);
        }
        let mut used: Vec<usize> = shards.clone();
        used.sort_unstable();
        used.dedup();

        let mut probes: Vec<Addr<Probe>> = Vec::with_capacity(used.len());
        let mut members: Vec<Addr<A>> = Vec::with_capacity(self.size);
        let rollback = |probes: &[Addr<Probe>], members: &[Addr<A>]| {
            for m in members {
                let _ = m.stop();
            }
            for p in probes {
                let _ = p.stop();
            }
        };
        for &shard in &used {
            match rt.spawn_on(shard, Probe::default()) {
                Ok(p) => probes.push(p),
                Err(error) => {
                    rollback(&probes, &members);
                    return Err(PoolBuildError::Spawn { shard, error });
                }
            }
        }
        let started = Instant::now();
        let factory = Arc::new(self.factory);
        for index in 0..self.size {
            let shard = shards[index % shards.len()];
            let factory = factory.clone();
            let member = PoolMember { index, shard };
            let spawned = match self.init_timeout {
                None => rt.spawn_with(shard, move || factory(member)),
                Some(init_timeout) => {
                    let opts = ChildOptions {
                        init_timeout,
                        shutdown_timeout: self.shutdown_timeout,
                    };
                    let probe = &probes[used.binary_search(&shard).expect("a used shard")];
                    spawn_child(probe, index, opts, move || factory(member))
                }
            };
            match spawned {
                Ok(m) => members.push(m),
                Err(error) => {
                    rollback(&probes, &members);
                    return Err(PoolBuildError::Spawn { shard, error });
                }
            }
        }
        if let Some(init_timeout) = self.init_timeout {
            let deadline = started + init_timeout + INIT_GRACE;
            let failed = await_init(&members, &probes, &used, deadline);
            if !failed.is_empty() {
                rollback(&probes, &members);
                return Err(PoolBuildError::Init { failed });
            }
        }
        Ok(Pool {
            inner: Arc::new(Inner {
                members: members.into(),
                probes: probes.into(),
                shard_threads,
                next: AtomicUsize::new(0),
                next_tie: AtomicUsize::new(0),
                state: AtomicU8::new(super::shutdown::OPEN),
                ask_timeout: self.ask_timeout,
                shutdown_timeout: self.shutdown_timeout,
            }),
        })
    }
}

/// Has `probe` spawn member `index` as its child (built by `make` on the probe's shard).
fn spawn_child<A: Actor>(
    probe: &Addr<Probe>,
    index: usize,
    opts: ChildOptions,
    make: impl FnOnce() -> A + Send + 'static,
) -> Result<Addr<A>, SpawnError> {
    let spawn: SpawnFn = Box::new(move |ctx| {
        let shard = ctx.shard_id();
        ctx.spawn_child_on(shard, opts, make)
            .map(|a: Addr<A>| a.actor_ref())
    });
    let reply = probe.ask(
        |reply| ProbeMsg::Spawn {
            index,
            spawn,
            reply,
        },
        INIT_GRACE,
    );
    match reply {
        Ok(Ok(actor)) => Ok(actor
            .downcast::<A>()
            .expect("the probe spawned an actor of the pool's type")),
        Ok(Err(e)) => Err(e),
        // The probe is gone or its shard does not answer: the runtime is going away.
        Err(_) => Err(SpawnError::Shutdown),
    }
}

/// Waits until every member is operational or down, at most until `deadline`; returns the
/// members that are not operational, with their stop reasons as the probes recorded them.
fn await_init<A: Actor>(
    members: &[Addr<A>],
    probes: &[Addr<Probe>],
    used: &[usize],
    deadline: Instant,
) -> Vec<MemberInitError> {
    // Initializing members are on their way: either operational, or down by their own
    // init timer, which fires before the deadline.
    let settled = |m: &Addr<A>| matches!(m.state(), State::Operational | State::ShutDown);
    wait_until(deadline, || members.iter().all(settled));
    let mut failed: Vec<MemberInitError> = members
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            let failure = match m.state() {
                State::Operational => return None,
                State::ShuttingDown | State::ShutDown => InitFailure::Stopped(None),
                other => InitFailure::TimedOut(other),
            };
            Some(MemberInitError {
                index,
                shard: m.shard(),
                failure,
            })
        })
        .collect();
    // The reasons, from each shard's probe: it answers once those members are down, which
    // the grace period bounds.
    let grace = deadline.max(Instant::now() + INIT_GRACE);
    for (probe, &shard) in probes.iter().zip(used) {
        let indices: Vec<usize> = failed
            .iter()
            .filter(|e| e.shard == shard && matches!(e.failure, InitFailure::Stopped(_)))
            .map(|e| e.index)
            .collect();
        if indices.is_empty() {
            continue;
        }
        let left = grace.saturating_duration_since(Instant::now());
        let Ok(reasons) = probe.ask(|r| ProbeMsg::Reasons(indices, r), left) else {
            continue;
        };
        for (index, reason) in reasons {
            if let Some(e) = failed.iter_mut().find(|e| e.index == index) {
                e.failure = InitFailure::Stopped(Some(reason));
            }
        }
    }
    failed
}
