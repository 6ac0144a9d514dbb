//! [`PoolBuilder`]: size, factory, placement and timeouts, ending in
//! [`build`](PoolBuilder::build).

use super::shutdown::Probe;
use super::{Inner, Pool, PoolBuildError, PoolMember};
use crate::sync::Arc;
use crate::sync::atomic::{AtomicU8, AtomicUsize};
use crate::{Actor, Addr, Runtime};
use std::fmt;
use std::time::Duration;

/// The default timeout of [`Pool::ask`]: 5 s.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on how long [`Pool::shutdown`] (and dropping the last handle) waits for the
/// members to stop: 5 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

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
    _actor: std::marker::PhantomData<fn() -> A>,
}

impl<A, F> fmt::Debug for PoolBuilder<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("size", &self.size)
            .field("shards", &self.shards)
            .field("ask_timeout", &self.ask_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
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

    /// Spawns the members on `rt`: member `i` is built by the factory on its own shard (with
    /// [`Runtime::spawn_with`]), so what it opens there (a connection, a file) lives on the
    /// thread that uses it. Returns at once: messages sent before a member is installed are kept
    /// and delivered in order.
    ///
    /// A factory that panics leaves that member stopped: requests routed to it answer `Closed`
    /// (see [`Pool::stats`] or [`Addr::is_alive`] to find it).
    ///
    /// # Errors
    ///
    /// [`PoolBuildError::EmptyPool`], [`PoolBuildError::NoShards`],
    /// [`PoolBuildError::NoSuchShard`] (nothing spawned), or [`PoolBuildError::Spawn`] (a
    /// shard is full or the runtime is shutting down; the members spawned so far are stopped
    /// again).
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
            match rt.spawn_on(shard, Probe) {
                Ok(p) => probes.push(p),
                Err(error) => {
                    rollback(&probes, &members);
                    return Err(PoolBuildError::Spawn { shard, error });
                }
            }
        }
        let factory = Arc::new(self.factory);
        for index in 0..self.size {
            let shard = shards[index % shards.len()];
            let factory = factory.clone();
            match rt.spawn_with(shard, move || factory(PoolMember { index, shard })) {
                Ok(m) => members.push(m),
                Err(error) => {
                    rollback(&probes, &members);
                    return Err(PoolBuildError::Spawn { shard, error });
                }
            }
        }
        let shard_threads = rt.shard_info().into_iter().map(|i| i.thread_id).collect();
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
