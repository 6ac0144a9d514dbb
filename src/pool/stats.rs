//! Pool statistics: one row per member (the runtime's [`ActorStats`]) and their sums.

use crate::stats::ActorStats;
use std::time::Duration;

/// One member's row in [`PoolStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStats {
    /// The member's index in the pool.
    pub index: usize,
    /// The shard it lives on.
    pub shard: usize,
    /// Its statistics ([`Addr::stats`](crate::Addr::stats)), `None` once it has stopped.
    pub stats: Option<ActorStats>,
}

/// A snapshot of a pool's statistics: per-member rows, in member order, and pool totals over
/// the live members.
///
/// Each member's row is a snapshot of its own counters, so the totals are exactly the sums of
/// the rows (not a consistent cut across members taken at one instant). Stopped members count
/// for nothing in the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// One row per member, in member order.
    pub members: Vec<MemberStats>,
    /// Members whose statistics were available (not stopped).
    pub alive: usize,
    /// Messages handled, summed.
    pub processed: u64,
    /// Messages accepted but not yet handled, summed.
    pub pending: u64,
    /// Time spent in handlers, summed.
    pub processing_total: Duration,
    /// The longest turn of any member (see [`ActorStats`]).
    pub processing_max: Duration,
    /// Mean mailbox wait over all handled messages: the members' means weighted by their
    /// `processed` counts (each member's mean is rounded down to the nanosecond).
    pub mean_mailbox_wait: Duration,
}

impl PoolStats {
    /// Totals `rows`.
    pub(crate) fn from_rows(members: Vec<MemberStats>) -> PoolStats {
        let mut out = PoolStats::default();
        let mut wait_ns: u128 = 0;
        for s in members.iter().filter_map(|m| m.stats.as_ref()) {
            out.alive += 1;
            out.processed += s.processed;
            out.pending += s.pending;
            out.processing_total += s.processing_total;
            out.processing_max = out.processing_max.max(s.processing_max);
            wait_ns += s.mean_mailbox_wait.as_nanos() * u128::from(s.processed);
        }
        let mean = wait_ns.checked_div(u128::from(out.processed)).unwrap_or(0);
        out.mean_mailbox_wait = Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX));
        out.members = members;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: usize, processed: u64, wait_us: u64, max_us: u64) -> MemberStats {
        MemberStats {
            index,
            shard: 0,
            stats: Some(ActorStats {
                processed,
                pending: 1,
                processing_total: Duration::from_micros(processed),
                processing_max: Duration::from_micros(max_us),
                mean_mailbox_wait: Duration::from_micros(wait_us),
            }),
        }
    }

    #[test]
    fn sums_and_weighted_mean() {
        let dead = MemberStats {
            index: 2,
            shard: 1,
            stats: None,
        };
        let s = PoolStats::from_rows(vec![row(0, 10, 1, 5), row(1, 30, 5, 3), dead]);
        assert_eq!(s.alive, 2);
        assert_eq!(s.processed, 40);
        assert_eq!(s.pending, 2);
        assert_eq!(s.processing_total, Duration::from_micros(40));
        assert_eq!(s.processing_max, Duration::from_micros(5));
        // (10 × 1 µs + 30 × 5 µs) / 40 = 4 µs.
        assert_eq!(s.mean_mailbox_wait, Duration::from_micros(4));
        assert_eq!(s.members.len(), 3);
    }

    #[test]
    fn empty_pool_stats_are_zero() {
        let s = PoolStats::from_rows(Vec::new());
        assert_eq!(s, PoolStats::default());
    }
}
