//! A pool of handler actors — typically one per database connection — spread over shards, with
//! routing, backpressure, per-member statistics and an orderly shutdown.
//!
//! The pool is built only on the public actor API
//! ([`Runtime::spawn_with`](crate::Runtime::spawn_with), [`Addr`], [`Context::ask`]): it is what
//! a storage engine that today shares `Arc<Mutex<Database>>` would write to give each connection
//! a single owner instead. `docs/storage.md` describes it at length, including how it works
//! around what that API lacks (a "stopped hook has returned" signal, above all).
//!
//! # Semantics
//!
//! * **Members.** [`Pool::builder`]`(size, factory)` spawns `size` actors, member `i` on shard
//!   `i % shard_count` (or on the shards given to [`PoolBuilder::shards`]), each built by the
//!   factory *on its own shard*, so a connection is opened on the thread that will use it. The
//!   members are fixed for the pool's life: key affinity is stable because the size never
//!   changes.
//! * **Routing** ([`Route`]): round-robin; key affinity (FNV-1a 64, fixed and seedless, see
//!   [`key_index`]); least-loaded (the real mailbox depths, [`Addr::mailbox_len`]); a specific
//!   member; and broadcast to all ([`Pool::broadcast`], one result per member, in member order).
//! * **Ordering.** Messages routed to the same member from one sender keep their order (the
//!   runtime's FIFO per sender and receiver). Nothing orders requests that go to different
//!   members.
//! * **Backpressure.** [`Pool::tell`] never waits: a full mailbox answers
//!   [`PoolError::MailboxFull`] with the message. [`Pool::tell_timeout`] and the blocking asks
//!   wait for room within their timeout; [`Pool::ask_async`], the broadcasts and asks made from
//!   actors never wait for room (a full mailbox is [`AskError::Full`] for that request).
//! * **Replies** are matched to their request by the runtime: concurrent askers of one member
//!   each get their own answer.
//! * **From actors**, asks must not block: use [`Pool::ask_from`] and [`Pool::broadcast_from`],
//!   which forward to [`Context::ask`] (the reply comes back as a message). A blocking
//!   [`Pool::ask`] on a shard thread answers `Ask(AskError::WouldBlock)`.
//! * **Shutdown** ([`Pool::shutdown`], and dropping the last handle) stops every member, answers
//!   pending asks with an error (queued requests become dead letters, whose `Reply`s answer
//!   [`AskError::Dropped`]) and waits, bounded, until every member is gone *and* its
//!   [`Actor::stopped`] hook has returned. That hook is where a member flushes and closes its
//!   connection.
//!
//! # Asynchronous initialisation
//!
//! By default the factory is the whole of a member's initialisation (it runs on the member's
//! shard before its first message) and [`PoolBuilder::build`] returns at once. With
//! [`PoolBuilder::wait_for_init`]`(timeout)`, a member may hold its I-phase until its
//! connection is open (the resources plugin: [`Context::acquire`] in [`Actor::init`],
//! [`Context::release`] when the connect completes), and `build` returns only when every
//! member is `Operational`. A member whose init fails or outlives `timeout` makes `build`
//! fail with [`PoolBuildError::Init`], naming each such member with its
//! [`StopReason`](crate::StopReason) (or the state it was stuck in); every member is stopped
//! again. The
//! members are then children of the pool's per-shard probe, which records their reasons
//! exactly (see `probe.rs`).

#![deny(unsafe_code)]

mod builder;
mod error;
mod future;
mod probe;
mod route;
mod shutdown;
mod stats;

pub use builder::{DEFAULT_ASK_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, INIT_GRACE, PoolBuilder};
pub use error::{InitFailure, MemberInitError, PoolBuildError, PoolError, PoolShutdownError};
pub use future::{BroadcastFuture, PoolAskFuture};
pub use route::{Route, fnv1a_64, key_index};
pub use stats::{MemberStats, PoolStats};

use crate::sync::Arc;
use crate::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::{Actor, Addr, AskError, Context, Reply};
use probe::Probe;
use std::fmt;
use std::time::Duration;

/// Who a member is, handed to the pool's factory: its index in the pool and its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PoolMember {
    /// The member's index, `0..size` (its place in [`Pool::members`]).
    pub index: usize,
    /// The shard it is built on and lives on.
    pub shard: usize,
}

/// A fixed set of actors of type `A` (say, one per database connection) behind one handle,
/// with routing, backpressure, statistics and shutdown. See the [module docs](self) for the
/// semantics.
///
/// `Clone + Send + Sync`: clones share the members and the routing counters. Dropping the last
/// clone shuts the pool down (like [`shutdown`](Self::shutdown), ignoring the result).
///
/// # Examples
///
/// The pool quick start: four "connection" actors over two shards.
///
/// ```
/// use coreactor::pool::{Pool, PoolMember, Route};
/// use coreactor::{Actor, Context, Reply, Runtime};
/// use std::time::Duration;
///
/// /// Stands in for a database connection, opened on the shard where it lives.
/// struct Conn(PoolMember);
/// enum Msg { Get(u64, Reply<String>), Who(Reply<usize>) }
///
/// impl Actor for Conn {
///     type Msg = Msg;
///     fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
///         match msg {
///             Msg::Get(key, r) => r.send(format!("{key}@{}", self.0.index)),
///             Msg::Who(r) => r.send(self.0.index),
///         }
///     }
/// }
///
/// let rt = Runtime::builder().shards(2).build()?;
/// let pool = Pool::builder(4, Conn).build(&rt)?;
/// let a = pool.ask(Route::Key(42), |r| Msg::Get(42, r))?;
/// assert_eq!(a, pool.ask(Route::Key(42), |r| Msg::Get(42, r))?); // same member every time
/// let who = pool.broadcast(Msg::Who, Duration::from_secs(5)); // one result per member
/// assert_eq!(who.into_iter().collect::<Result<Vec<_>, _>>()?, [0, 1, 2, 3]);
/// let stats = pool.stats();
/// assert_eq!((stats.members.len(), stats.members[1].shard), (4, 1));
/// pool.shutdown()?; // every member stopped, its `stopped` hook run
/// rt.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<A: Actor> {
    inner: Arc<Inner<A>>,
}

/// What every clone of a pool shares.
pub(crate) struct Inner<A: Actor> {
    members: Box<[Addr<A>]>,
    /// One per shard the pool uses (see `shutdown`).
    probes: Box<[Addr<Probe>]>,
    /// The runtime's shard threads, where shutdown must not wait.
    shard_threads: Box<[std::thread::ThreadId]>,
    /// Round-robin counter.
    next: AtomicUsize,
    /// Rotating start of the least-loaded scan (spreads ties).
    next_tie: AtomicUsize,
    /// `shutdown::{OPEN, STOPPING, DONE}`.
    state: AtomicU8,
    ask_timeout: Duration,
    shutdown_timeout: Duration,
}

impl<A: Actor> Drop for Inner<A> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl<A: Actor> Clone for Pool<A> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for Pool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("actor", &std::any::type_name::<A>())
            .field("members", &self.inner.members)
            .finish_non_exhaustive()
    }
}

impl<A: Actor> Pool<A> {
    /// A builder for a pool of `size` members, member `i` built by `factory` on its own shard
    /// (see [`PoolBuilder::build`]).
    pub fn builder<F>(size: usize, factory: F) -> PoolBuilder<A, F>
    where
        F: Fn(PoolMember) -> A + Send + Sync + 'static,
    {
        PoolBuilder::new(size, factory)
    }

    /// The number of members (fixed for the pool's life, never zero).
    pub fn size(&self) -> usize {
        self.inner.members.len()
    }

    /// The members' addresses, in member order.
    pub fn members(&self) -> &[Addr<A>] {
        &self.inner.members
    }

    /// Member `index`'s address, if there is one.
    pub fn member(&self, index: usize) -> Option<&Addr<A>> {
        self.inner.members.get(index)
    }

    /// The default timeout of [`ask`](Self::ask) (set by [`PoolBuilder::ask_timeout`]).
    pub fn default_ask_timeout(&self) -> Duration {
        self.inner.ask_timeout
    }

    /// Resolves `route` to a member index, as a request would (advancing the round-robin
    /// counter).
    ///
    /// # Errors
    ///
    /// [`PoolError::NoSuchMember`] for [`Route::Member`] outside `0..size`.
    pub fn pick(&self, route: Route) -> Result<usize, PoolError> {
        let members = &self.inner.members;
        let n = members.len();
        match route {
            // Relaxed: the counters only spread load; they order nothing.
            Route::RoundRobin => Ok(self.inner.next.fetch_add(1, Ordering::Relaxed) % n),
            Route::Key(key) => Ok(key_index(key, n)),
            Route::LeastLoaded => {
                let start = self.inner.next_tie.fetch_add(1, Ordering::Relaxed) % n;
                let depth = |i: usize| {
                    let m = &members[i];
                    // A stopped member looks infinitely loaded.
                    (!m.is_alive(), m.mailbox_len())
                };
                let best = (0..n)
                    .map(|k| (start + k) % n)
                    .min_by_key(|&i| depth(i))
                    .unwrap_or(0);
                Ok(best)
            }
            Route::Member(index) if index < n => Ok(index),
            Route::Member(index) => Err(PoolError::NoSuchMember {
                index,
                size: n,
                msg: (),
            }),
        }
    }

    fn addr(&self, route: Route) -> Result<&Addr<A>, PoolError> {
        self.pick(route).map(|i| &self.inner.members[i])
    }

    /// Sends `msg` to the member `route` picks, without waiting, from any thread or actor.
    ///
    /// # Errors
    ///
    /// [`PoolError::MailboxFull`] (its mailbox holds `mailbox_capacity` messages),
    /// [`PoolError::Closed`] (it stopped), [`PoolError::NoSuchMember`]; each with the message.
    pub fn tell(&self, route: Route, msg: A::Msg) -> Result<(), PoolError<A::Msg>> {
        let addr = match self.addr(route) {
            Ok(a) => a,
            Err(e) => return Err(e.with_msg(msg)),
        };
        addr.try_tell(msg).map_err(send_error)
    }

    /// Like [`tell`](Self::tell), but an outside thread waits for room at most `timeout` (on a
    /// shard thread it does not wait).
    ///
    /// # Errors
    ///
    /// As [`tell`](Self::tell); `MailboxFull` once `timeout` has passed without room.
    pub fn tell_timeout(
        &self,
        route: Route,
        msg: A::Msg,
        timeout: Duration,
    ) -> Result<(), PoolError<A::Msg>> {
        let addr = match self.addr(route) {
            Ok(a) => a,
            Err(e) => return Err(e.with_msg(msg)),
        };
        addr.tell_timeout(msg, timeout).map_err(send_error)
    }

    /// Sends each member the message `make(index)` makes, without waiting; one result per
    /// member, in member order.
    pub fn tell_all(
        &self,
        mut make: impl FnMut(usize) -> A::Msg,
    ) -> Vec<Result<(), PoolError<A::Msg>>> {
        self.inner
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| m.try_tell(make(i)).map_err(send_error))
            .collect()
    }

    /// Asks the member `route` picks, from a thread outside the runtime, blocking until the
    /// reply or the pool's default timeout ([`PoolBuilder::ask_timeout`]). `make` builds the
    /// request around the [`Reply`] the member answers through.
    ///
    /// # Errors
    ///
    /// [`PoolError::NoSuchMember`], or [`PoolError::Ask`] with the [`AskError`] (as
    /// [`Addr::ask`]: `Timeout`, `Full`, `Closed`, `Dropped`, `Shutdown`, and `WouldBlock` on a
    /// shard thread).
    pub fn ask<T: Send + 'static>(
        &self,
        route: Route,
        make: impl FnOnce(Reply<T>) -> A::Msg,
    ) -> Result<T, PoolError> {
        self.ask_timeout(route, make, self.inner.ask_timeout)
    }

    /// Like [`ask`](Self::ask) with an explicit `timeout`, which also bounds the wait for room
    /// in a full mailbox.
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask).
    pub fn ask_timeout<T: Send + 'static>(
        &self,
        route: Route,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> Result<T, PoolError> {
        Ok(self.addr(route)?.ask(make, timeout)?)
    }

    /// Asks the member `route` picks and returns a future of the reply, usable from any thread
    /// and any executor ([`Addr::ask_async`]: the member's shard enforces the timeout; a full
    /// mailbox fails at once with `Ask(AskError::Full)`).
    pub fn ask_async<T: Send + 'static>(
        &self,
        route: Route,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> PoolAskFuture<T> {
        match self.addr(route) {
            Ok(addr) => PoolAskFuture::asking(addr.ask_async(make, timeout)),
            Err(e) => PoolAskFuture::failed(e),
        }
    }

    /// Asks the member `route` picks from inside an actor, without blocking: forwards to
    /// [`Context::ask`], so when the reply (or an error) arrives, `then` turns it into a message
    /// for the asking actor.
    ///
    /// # Errors
    ///
    /// [`PoolError::NoSuchMember`], at once; nothing is sent and `then` is not called. Every
    /// other failure reaches `then`.
    pub fn ask_from<B, T, F>(
        &self,
        ctx: &mut Context<'_, B>,
        route: Route,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
        then: F,
    ) -> Result<(), PoolError>
    where
        B: Actor,
        T: Send + 'static,
        F: FnOnce(Result<T, AskError>) -> B::Msg + Send + 'static,
    {
        let addr = self.addr(route)?;
        ctx.ask(addr, make, timeout, then);
        Ok(())
    }

    /// Asks every member, from a thread outside the runtime, and blocks until all have
    /// answered or `timeout` has passed. Returns one result per member, in member order: a
    /// member that failed (stopped, timed out, full mailbox) has its own error and does not hold
    /// up the others.
    ///
    /// The requests are all sent first (`make` is called once per member) and answered in
    /// parallel. A full mailbox fails that member at once with `Ask(AskError::Full)` rather than
    /// waiting for room. On a shard thread every row is `Ask(AskError::WouldBlock)`: use
    /// [`broadcast_from`](Self::broadcast_from) there.
    pub fn broadcast<T: Send + 'static>(
        &self,
        make: impl Fn(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> Vec<Result<T, PoolError>> {
        if self.on_shard_thread() {
            return self
                .inner
                .members
                .iter()
                .map(|_| Err(PoolError::Ask(AskError::WouldBlock)))
                .collect();
        }
        future::wait_broadcast(self.broadcast_async(make, timeout), timeout)
    }

    /// Asks every member and returns a future of all the results, in member order (see
    /// [`broadcast`](Self::broadcast)); each member's shard enforces the timeout.
    pub fn broadcast_async<T: Send + 'static>(
        &self,
        make: impl Fn(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> BroadcastFuture<T> {
        BroadcastFuture::new(
            self.inner
                .members
                .iter()
                .map(|m| PoolAskFuture::asking(m.ask_async(&make, timeout)))
                .collect(),
        )
    }

    /// Asks every member from inside an actor, without blocking: each member's answer (or
    /// error) comes back as the message `then(index, result)`, one per member, in whatever order
    /// the answers arrive.
    pub fn broadcast_from<B, T, F>(
        &self,
        ctx: &mut Context<'_, B>,
        make: impl Fn(Reply<T>) -> A::Msg,
        timeout: Duration,
        then: F,
    ) where
        B: Actor,
        T: Send + 'static,
        F: Fn(usize, Result<T, AskError>) -> B::Msg + Send + Sync + 'static,
    {
        let then = Arc::new(then);
        for (index, member) in self.inner.members.iter().enumerate() {
            let then = then.clone();
            ctx.ask(member, &make, timeout, move |r| then(index, r));
        }
    }

    /// A snapshot of every member's statistics ([`Addr::stats`]: processed, pending, processing
    /// time total and max, mean mailbox wait) and their totals.
    pub fn stats(&self) -> PoolStats {
        PoolStats::from_rows(
            self.inner
                .members
                .iter()
                .enumerate()
                .map(|(index, m)| MemberStats {
                    index,
                    shard: m.shard(),
                    stats: m.stats(),
                })
                .collect(),
        )
    }

    /// Asks every member to stop, without waiting (the first step of
    /// [`shutdown`](Self::shutdown); usable from actors). Queued requests become dead letters
    /// and their asks are answered with [`AskError::Dropped`].
    pub fn begin_shutdown(&self) {
        self.inner.request_stop();
    }

    /// Stops every member and waits, at most the shutdown timeout
    /// ([`PoolBuilder::shutdown_timeout`]), until every member is gone and its
    /// [`Actor::stopped`] hook has returned. Pending asks are answered with an error. Every
    /// clone of the pool is affected; afterwards requests answer `Closed`. Calling it again
    /// returns at once once a shutdown has succeeded.
    ///
    /// # Errors
    ///
    /// [`PoolShutdownError::Timeout`] naming the members not confirmed stopped (a handler or
    /// `stopped` hook still running; call again to keep waiting),
    /// [`PoolShutdownError::OnShardThread`] (stops requested, not waited for: use
    /// [`begin_shutdown`](Self::begin_shutdown) in actors), or
    /// [`PoolShutdownError::RuntimeShutDown`].
    pub fn shutdown(&self) -> Result<(), PoolShutdownError> {
        self.inner.shutdown()
    }

    fn on_shard_thread(&self) -> bool {
        self.inner
            .shard_threads
            .contains(&std::thread::current().id())
    }
}

/// A runtime send error as a pool error, with the message.
fn send_error<M>(e: crate::SendError<M>) -> PoolError<M> {
    match e {
        crate::SendError::Full(m) => PoolError::MailboxFull(m),
        crate::SendError::Closed(m) => PoolError::Closed(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not `Send`: it lives on one shard.
    struct Nop {
        _not_send: std::rc::Rc<()>,
    }
    impl Actor for Nop {
        type Msg = ();
        fn handle(&mut self, _: Self::Msg, _: &mut Context<'_, Self>) {}
    }

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn pool_is_send_sync_clone_for_any_actor() {
        // Even for an actor that is not `Send`, the handle is shareable: it holds addresses.
        assert_send_sync_clone::<Pool<Nop>>();
    }
}
