//! Counters that the runtime keeps while it runs, and the snapshots users read.
//!
//! Each shard's counters are written only by that shard's thread (a `Relaxed` load and store,
//! no read-modify-write on the hot path) and read by anyone with `Relaxed` loads: a snapshot is
//! consistent per counter, not across counters.

use crate::sync::StatU64;
use crate::sync::atomic::Ordering;
use std::time::Duration;

macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident $(=> $bump:ident)? ),* $(,)?) => {
        /// Per-shard counters (single writer: the shard thread, except where noted).
        #[derive(Default)]
        pub(crate) struct ShardCounters {
            $( $(#[$doc])* pub(crate) $field: StatU64, )*
        }

        impl ShardCounters {
            $($(
                #[inline]
                pub(crate) fn $bump(&self) {
                    Self::add(&self.$field, 1);
                }
            )?)*

            pub(crate) fn snapshot(&self, shard: usize) -> ShardStats {
                ShardStats {
                    shard,
                    $( $field: self.$field.load(Ordering::Relaxed), )*
                }
            }
        }

        /// A snapshot of one shard's counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct ShardStats {
            /// The shard.
            pub shard: usize,
            $( $(#[$doc])* pub $field: u64, )*
        }
    };
}

counters! {
    /// User messages handled by actors of this shard.
    handled,
    /// User messages sent to an actor of the same shard.
    sent_local => bump_sent_local,
    /// Envelopes sent to another shard through a ring, each message of a batch counted as one.
    sent_remote => bump_sent_remote,
    /// Of those, user messages that joined the unpublished envelope sent just before them to
    /// the same actor rather than taking a ring slot of their own (`Actor::Msg` types of at
    /// most 28 bytes: see the "Batching" section of `docs/architecture.md`).
    batched => bump_batched,
    /// Envelopes that found their ring full and waited in the ordered overflow buffer.
    ring_overflow => bump_ring_overflow,
    /// Envelopes received from threads outside the runtime, each message of an open record
    /// (one that later messages joined, see `appended`) counted as one.
    injected,
    /// Of those, messages that joined the lane record their sender had pushed just before to
    /// the same actor, while it still waited for this shard to take it (`Actor::Msg` types of
    /// at most 16 bytes, sent faster than the shard takes them: see the "Batching" section of
    /// `docs/architecture.md`).
    appended,
    /// Times the shard parked (slept in `epoll_wait`).
    parks => bump_parks,
    /// Wake-up syscalls this shard issued to sleeping peers.
    wakeups_sent => bump_wakeups_sent,
    /// Wake-ups issued to this shard by outside threads (written by those threads).
    wakeups_received,
    /// Times a thread outside the runtime found this shard's bounded injection lane full and
    /// had to wait, or got `Full` back from `try_tell` (written by those threads).
    inject_full,
    /// Messages addressed to this shard that became dead letters (written by whichever thread
    /// discarded them).
    dead_letters,
    /// Actors that failed by panicking.
    panics => bump_panics,
    /// Steal requests this shard sent to busy peers.
    steals_attempted => bump_steals_attempted,
    /// Steal requests that brought back at least one actor.
    steals_succeeded => bump_steals_succeeded,
    /// Migratable actors that moved onto this shard.
    migrated_in => bump_migrated_in,
    /// Actors whose home is this shard that moved away.
    migrated_out => bump_migrated_out,
    /// Messages this shard forwarded to an actor of its that runs elsewhere.
    forwarded => bump_forwarded,
    /// Nanoseconds spent doing work.
    busy_ns,
    /// Nanoseconds spent spinning or parked.
    idle_ns,
}

impl ShardCounters {
    /// Adds one to a counter that several threads write.
    #[inline]
    pub(crate) fn bump_shared(counter: &StatU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter written only by the shard thread.
    #[inline]
    pub(crate) fn add(counter: &StatU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// A snapshot of one actor's statistics.
///
/// Processing time is measured per *turn* (one clock read per turn, not per message: a clock
/// read costs about as much as handling a small message). A turn handles up to `batch_budget`
/// messages, so `processing_total` is exact and `processing_max` is the longest turn — the
/// longest single message whenever messages arrive one per turn, an upper bound on it otherwise.
/// Mailbox wait is the time from the send (the sender shard's loop clock, refreshed once per
/// loop iteration) to the start of the turn that handled the message. A message from a thread
/// outside the runtime is stamped by the receiving shard instead, with its clock at its
/// previous take of the injection queue (or at its wake-up, if it was idle): right to within
/// one loop iteration as well, without a clock read on the sender's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorStats {
    /// Messages handled.
    pub processed: u64,
    /// User messages accepted but not yet handled.
    pub pending: u64,
    /// Total time spent in the handler.
    pub processing_total: Duration,
    /// The longest turn (see the type's docs: the longest message when turns hold one).
    pub processing_max: Duration,
    /// Mean time a message waited in the mailbox.
    pub mean_mailbox_wait: Duration,
}
