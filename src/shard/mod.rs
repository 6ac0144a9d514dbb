//! Shards: one reactor thread per core, and what other threads may see of it.
//!
//! A shard is split in two:
//!
//! * [`ShardShared`] (behind an `Arc`) is what *other* threads touch: the doorbell word, the
//!   injection queue for outside threads, the slot table (admission and liveness of its
//!   actors) and the shard's counters. Addresses hold an `Arc<ShardShared>`.
//! * [`ShardLocal`] is owned by the shard's thread alone (`!Send`): the actor slab, the ready
//!   queue, the ring endpoints, the timer wheel, the pending-ask table and the I/O poller.
//!   Nothing in it is shared or locked; interior mutability is `RefCell` with short borrows that
//!   never span user code.
//!
//! The thread that runs a shard publishes its `ShardLocal` in a thread-local ([`with_current`])
//! so that any send made on that thread (from a handler, a `Reply` being dropped, ...) takes the
//! ring towards its target shard instead of the injection queue.

pub(crate) mod close;
pub(crate) mod doorbell;
pub(crate) mod envelope;
#[cfg(not(coreactor_loom))]
pub(crate) mod io;
mod local;
pub(crate) mod outside;
pub(crate) mod poller;
pub(crate) mod table;
pub(crate) mod topology;
pub(crate) mod tsc;
pub(crate) mod wakefd;

pub(crate) use envelope::{Envelope, EnvelopeKind, EnvelopeVTable, STAMP_ON_ARRIVAL};
pub(crate) use local::{
    Cell, Clock, DeliveryRun, HomeId, Movable, PendingAsk, REPLY_VT, ShardLocal, ShardParams,
    TimerAction, Turn, pacing_pause,
};

use crate::stats::ShardCounters;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use close::ClosableQueue;
use crossbeam_utils::CachePadded;
use doorbell::{Doorbell, INJECT};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Instant;
use table::SlotTable;

#[cfg(not(coreactor_loom))]
pub(crate) type Waker = wakefd::WakeFd;
#[cfg(coreactor_loom)]
pub(crate) type Waker = wakefd::LoomWake;

/// A shard's wake-up primitive.
pub(crate) fn new_waker() -> std::io::Result<Waker> {
    #[cfg(not(coreactor_loom))]
    return wakefd::WakeFd::new();
    #[cfg(coreactor_loom)]
    return Ok(wakefd::LoomWake::new());
}

/// A fresh injection-lane id: never 0, never given twice in the process.
fn next_lane_id() -> u64 {
    /// The last id given. A statistics-grade atomic: only its uniqueness matters, which
    /// `fetch_add` gives at any ordering.
    static LAST_LANE_ID: crate::sync::StatU64 = crate::sync::StatU64::new(0);
    LAST_LANE_ID.fetch_add(1, Ordering::Relaxed) + 1
}

/// The runtime is accepting work.
pub(crate) const RUNNING: u8 = 0;
/// `shutdown` was called: shards are stopping their actors.
pub(crate) const STOPPING: u8 = 1;
/// Every shard has finished.
pub(crate) const STOPPED: u8 = 2;
/// `shutdown` was called and the graceful phase runs: every root actor (one without a
/// supervisor) runs its S-phase while messages still flow; then `STOPPING`.
pub(crate) const DRAINING: u8 = 3;

/// A message that could not be delivered, as reported to the dead-letter hook.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The shard the message was addressed to.
    pub shard: usize,
    /// The slot of the addressee.
    pub slot: u32,
    /// The Rust type of the message.
    pub message_type: &'static str,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
}

/// Why a message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The actor stopped (or failed) after the message was accepted.
    ActorStopped,
    /// The runtime shut down while the message was queued.
    Shutdown,
}

/// Callback invoked for every dead letter.
pub(crate) type DeadLetterHook = Box<dyn Fn(&DeadLetter) + Send + Sync>;

/// Runtime-wide state shared by every shard.
pub(crate) struct RtShared {
    pub(crate) state: AtomicU8,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) late_replies: Arc<AtomicU64>,
    pub(crate) stopped_actors_phase: AtomicUsize,
    pub(crate) shard_count: usize,
    pub(crate) epoch: Instant,
    pub(crate) hook: Option<DeadLetterHook>,
    /// The lifecycle-error hook, opaque to this layer (the actor layer stores and calls a
    /// `Box<dyn Fn(&LifecycleError) + Send + Sync>` in it).
    pub(crate) lifecycle_hook: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// Lifecycle contract violations reported so far.
    pub(crate) lifecycle_errors: AtomicU64,
    /// The runtime's name registry, when it has one: `(shard, slot, generation)` of its actor,
    /// set once at start (the registry module builds the reference from it). Ids, not an
    /// actor reference: a reference holds its shard, which holds this struct, and that cycle
    /// leaked the whole runtime (found by LeakSanitizer).
    pub(crate) registry: std::sync::OnceLock<(usize, u32, u32)>,
}

impl RtShared {
    pub(crate) fn new(shard_count: usize, hook: Option<DeadLetterHook>) -> Self {
        RtShared {
            state: AtomicU8::new(RUNNING),
            dead_letters: AtomicU64::new(0),
            late_replies: Arc::new(AtomicU64::new(0)),
            stopped_actors_phase: AtomicUsize::new(0),
            shard_count,
            epoch: Instant::now(),
            hook,
            lifecycle_hook: None,
            lifecycle_errors: AtomicU64::new(0),
            registry: std::sync::OnceLock::new(),
        }
    }

    /// True once the forced part of `shutdown` began: new work is refused. (Not during the
    /// graceful phase, whose S-phases still need to send.)
    #[inline]
    pub(crate) fn is_stopping(&self) -> bool {
        matches!(self.state.load(Ordering::Relaxed), STOPPING | STOPPED)
    }

    /// True once `shutdown` began, graceful phase included: spawns are refused and a dropped
    /// request is reported as a shutdown.
    #[inline]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.load(Ordering::Relaxed) != RUNNING
    }
}

/// Facts about a shard's thread, filled in when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadFacts {
    /// The OS thread name.
    pub name: String,
    /// The Rust thread id.
    pub thread_id: std::thread::ThreadId,
    /// The CPU the thread is pinned to, or `None` if it runs unpinned.
    pub cpu: Option<usize>,
    /// Why pinning was not done, if it was requested and failed.
    pub pin_warning: Option<String>,
}

/// The part of a shard that other threads may touch.
pub(crate) struct ShardShared {
    pub(crate) id: usize,
    pub(crate) rt: Arc<RtShared>,
    pub(crate) doorbell: Doorbell<Waker>,
    /// The injection queue and its shutdown handshake (see [`close`]).
    pub(crate) inject: ClosableQueue<Envelope>,
    /// Whether outside threads use the bounded injection lane (and wait while it is full):
    /// `new` was given its capacity. False for the test kit's hand-stepped shards: there the
    /// thread that would wait is the one that runs the shard, so every pusher takes the
    /// unbounded lane.
    bounded_outside: bool,
    /// This shard's injection lane's id, unique in the process (`outside` names the lane an
    /// open record is in by it).
    lane_id: u64,
    pub(crate) table: SlotTable,
    pub(crate) mailbox_capacity: u32,
    /// Written by the owner on every message: on lines of their own, so that senders of other
    /// shards reading this struct's read-mostly fields (`rt`, `table`, `mailbox_capacity`) do
    /// not miss on them after each of the owner's writes.
    pub(crate) counters: CachePadded<ShardCounters>,
    pub(crate) facts: OnceLock<ThreadFacts>,
    /// Set once this shard finished stopping its actors at shutdown (phase 1).
    actors_stopped: AtomicBool,
    /// Actors installed on this shard and not yet removed (written by the owner, read by
    /// `shutdown` to see when the graceful phase is over).
    pub(crate) live_actors: AtomicUsize,
    /// Set by the owner while it has ready migratable work to give (read by idle peers, at
    /// every transition to idle: its own line, so that read does not pull in the counters).
    pub(crate) stealable: CachePadded<AtomicBool>,
}

impl ShardShared {
    pub(crate) fn new(
        id: usize,
        rt: Arc<RtShared>,
        waker: Waker,
        max_actors: usize,
        mailbox_capacity: usize,
        outside_lane: Option<usize>,
    ) -> Self {
        ShardShared {
            id,
            rt,
            doorbell: Doorbell::new(waker),
            inject: outside_lane.map_or_else(ClosableQueue::new, ClosableQueue::with_capacity),
            lane_id: next_lane_id(),
            bounded_outside: outside_lane.is_some(),
            table: SlotTable::new(max_actors),
            mailbox_capacity: u32::try_from(mailbox_capacity).unwrap_or(u32::MAX),
            counters: CachePadded::new(ShardCounters::default()),
            facts: OnceLock::new(),
            actors_stopped: AtomicBool::new(false),
            live_actors: AtomicUsize::new(0),
            stealable: CachePadded::new(AtomicBool::new(false)),
        }
    }

    /// Records that this shard stopped all its actors (shutdown phase 1).
    pub(crate) fn mark_actors_stopped(&self) {
        self.actors_stopped.store(true, Ordering::Release);
    }

    /// True once this shard stopped all its actors at shutdown.
    pub(crate) fn actors_stopped(&self) -> bool {
        self.actors_stopped.load(Ordering::Acquire)
    }

    /// Owner: one more live actor. A load and a store, not an RMW: only the owner writes
    /// the count (like the shard counters), so no locked instruction per spawn.
    #[inline]
    pub(crate) fn live_actor_added(&self) {
        let n = self.live_actors.load(Ordering::Relaxed);
        self.live_actors.store(n + 1, Ordering::Relaxed);
    }

    /// Owner: one live actor fewer (see [`live_actor_added`](Self::live_actor_added)).
    #[inline]
    pub(crate) fn live_actor_removed(&self) {
        let n = self.live_actors.load(Ordering::Relaxed);
        self.live_actors.store(n - 1, Ordering::Relaxed);
    }

    /// The shard's `max_actors`.
    pub(crate) fn table_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Hands `env` to this shard from a thread that is not one of this runtime's shards.
    ///
    /// An outside thread uses the bounded lane and, while it is full, waits for room
    /// ([`Backoff`](crate::sync::Backoff)): outside producers get backpressure, never unbounded
    /// queues. A shard thread of another runtime must never block, so it uses the unbounded
    /// lane. Each thread keeps to its lane, so its messages stay in order (`mailbox::inject`).
    ///
    /// If the shard has already made its final drain, this pusher discards what is queued
    /// (the handshake is in [`close`]): nothing stays behind.
    pub(crate) fn inject(&self, env: Envelope) {
        if !self.bounded_outside || with_current(|cur| cur.is_some()) {
            self.push_unbounded(env);
            return;
        }
        let mut env = env;
        let mut backoff = crate::sync::Backoff::new();
        loop {
            match self.try_inject_outside(env) {
                Ok(()) => return,
                Err(back) => env = back,
            }
            backoff.snooze();
        }
    }

    /// An outside thread's push into the bounded lane; gives `env` back if the lane is full.
    #[inline]
    pub(crate) fn try_inject_outside(&self, env: Envelope) -> Result<(), Envelope> {
        if !self.bounded_outside {
            self.push_unbounded(env);
            return Ok(());
        }
        // Whatever this thread pushed open before may no longer take appends: they would
        // overtake this envelope.
        outside::superseded();
        self.count_full(self.inject.try_push_bounded(
            env,
            || self.notify_inject_polled(),
            |env| self.discard_shutdown(env),
        ))
    }

    /// Passes on the result of an outside thread's push into the bounded lane, counting it in
    /// `inject_full` if the lane was full.
    #[inline]
    fn count_full<R, E>(&self, result: Result<R, E>) -> Result<R, E> {
        if result.is_err() {
            ShardCounters::bump_shared(&self.counters.inject_full);
        }
        result
    }

    /// True if outside threads push into the bounded lane, where they may push open records
    /// ([`outside`]).
    #[inline]
    pub(crate) fn takes_open_records(&self) -> bool {
        self.bounded_outside
    }

    /// This shard's injection lane's id (see [`outside`]).
    #[inline]
    pub(crate) fn lane_id(&self) -> u64 {
        self.lane_id
    }

    /// An outside thread's push of an open record into the bounded lane (see [`outside`]);
    /// gives `write` back, uncalled, if the lane is full. Only when
    /// [`takes_open_records`](Self::takes_open_records).
    #[inline]
    pub(crate) fn try_inject_outside_open<W: FnOnce(&mut crate::mailbox::inject::CellWords)>(
        &self,
        write: W,
    ) -> Result<crate::mailbox::inject::OpenRecord, W> {
        debug_assert!(self.bounded_outside);
        self.count_full(self.inject.try_push_bounded_open(
            write,
            || self.notify_inject_polled(),
            |env| self.discard_shutdown(env),
        ))
    }

    /// A push into the unbounded lane (never waits).
    fn push_unbounded(&self, env: Envelope) {
        self.inject.push(
            env,
            || self.notify_inject(),
            |env| self.discard_shutdown(env),
        );
    }

    /// After a push: rings the doorbell unless its `INJECT` bit is already set.
    #[inline]
    fn notify_inject(&self) {
        // After the push's fence: a set bit means the shard has not taken it yet, and its
        // `drain_fence` will make this push visible (see `close.rs`).
        if self.doorbell.pending() & INJECT == 0 && self.doorbell.ring(INJECT) {
            ShardCounters::bump_shared(&self.counters.wakeups_received);
        }
    }

    /// After a push into the bounded lane, which the shard polls: wakes it only if it sleeps.
    /// Runs after the push's fence (`ClosableQueue::try_push_bounded`).
    #[inline]
    fn notify_inject_polled(&self) {
        if self.doorbell.ring_if_sleeping_fenced(INJECT) {
            ShardCounters::bump_shared(&self.counters.wakeups_received);
        }
    }

    fn discard_shutdown(&self, env: Envelope) {
        self.discard(env, DeadLetterReason::Shutdown);
    }

    /// The shard's final drain: after this, late pushes are discarded by their pushers.
    ///
    /// # Safety
    ///
    /// Called once, by this shard's thread (the injection queue's consumer), which pops the
    /// queue no more afterwards.
    pub(crate) unsafe fn close_inject(&self) {
        // SAFETY: the caller's contract is `ClosableQueue::close`'s.
        unsafe {
            self.inject
                .close(|env| self.discard(env, DeadLetterReason::Shutdown));
        }
    }

    /// Accounts for an envelope that cannot be delivered, then drops it (which answers any
    /// `Reply` inside with an error).
    pub(crate) fn discard(&self, env: Envelope, reason: DeadLetterReason) {
        if let Some(split) = env.vt.split {
            // A batch: each of its messages is a dead letter of its own.
            split(env, &mut |single| self.discard(single, reason));
            return;
        }
        match env.kind() {
            EnvelopeKind::User => {
                self.rt.dead_letters.fetch_add(1, Ordering::Relaxed);
                ShardCounters::bump_shared(&self.counters.dead_letters);
                if let Some(hook) = &self.rt.hook {
                    let letter = DeadLetter {
                        shard: self.id,
                        slot: env.slot,
                        message_type: (env.vt.type_name)(),
                        reason,
                    };
                    hook(&letter);
                }
            }
            EnvelopeKind::Reply => {
                self.rt.late_replies.fetch_add(1, Ordering::Relaxed);
            }
            EnvelopeKind::Control | EnvelopeKind::Task => {}
        }
        drop(env);
    }
}

crate::sync::thread_local_cell! {
    /// The shard this thread is running, or null. A raw pointer in a `Cell` (no destructor, no
    /// lazy registration): reading it is one TLS load on every send, which a `RefCell<Option<Rc>>`
    /// made several times dearer (docs/benchmarks.md). Through the sync shim so that each loom
    /// model thread has its own (`loom-tests/steal.rs` runs several shards in one process).
    static CURRENT: *const ShardLocal = std::ptr::null();
}

/// Runs `f` with the shard that the current thread is running, if any.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&ShardLocal>) -> R) -> R {
    let p = CURRENT.with(std::cell::Cell::get);
    if p.is_null() {
        f(None)
    } else {
        // SAFETY: a non-null `CURRENT` was stored by a live `CurrentGuard` of this thread, which
        // owns an `Rc` keeping the `ShardLocal` alive until the guard drops and restores the
        // previous value. Guards are strictly nested (a guard is a local of the frame that runs
        // the shard), and `f` cannot drop the guard of an enclosing frame, so `*p` outlives
        // this call. The reference is shared: `ShardLocal` uses only interior mutability.
        f(Some(unsafe { &*p }))
    }
}

/// Makes `shard` the current thread's shard until the guard drops (used by shard threads and
/// by the test kit, which steps several shards on one thread).
pub(crate) struct CurrentGuard {
    prev: *const ShardLocal,
    _shard: Rc<ShardLocal>,
}

impl CurrentGuard {
    pub(crate) fn enter(shard: Rc<ShardLocal>) -> CurrentGuard {
        let prev = CURRENT.with(|c| c.replace(Rc::as_ptr(&shard)));
        CurrentGuard {
            prev,
            _shard: shard,
        }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Sends `env` to shard `target` from wherever the caller runs: the local queue if it is the
/// current shard, the ring if the caller is another shard of the same runtime, the injection
/// queue otherwise.
#[inline]
pub(crate) fn route(target: &Arc<ShardShared>, env: Envelope) {
    let env = with_current(|cur| match cur {
        Some(local) if Arc::ptr_eq(&local.rt, &target.rt) => {
            if local.id == target.id {
                local.push_local(env);
            } else {
                local.send_remote(target.id, env);
            }
            None
        }
        _ => Some(env),
    });
    if let Some(env) = env {
        target.inject(env);
    }
}
