//! Pool statistics: one row per member (processed, pending, processing time, mailbox wait, as
//! `Addr::stats` reports them) and totals that are exactly the rows' sums; a stopped member's
//! row is empty and counts for nothing.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{block_shard, for_each_shard_count, runtime, wait_until};
use coreactor::pool::{PoolStats, Route};
use pool_common::{ConnMsg, conn_pool, warm_up};
use std::time::Duration;

fn check_sums(s: &PoolStats) {
    let rows: Vec<_> = s.members.iter().filter_map(|m| m.stats.clone()).collect();
    assert_eq!(s.alive, rows.len());
    assert_eq!(s.processed, rows.iter().map(|r| r.processed).sum::<u64>());
    assert_eq!(s.pending, rows.iter().map(|r| r.pending).sum::<u64>());
    assert_eq!(
        s.processing_total,
        rows.iter().map(|r| r.processing_total).sum::<Duration>()
    );
    assert_eq!(
        s.processing_max,
        rows.iter()
            .map(|r| r.processing_max)
            .max()
            .unwrap_or_default()
    );
    let weighted: u128 = rows
        .iter()
        .map(|r| r.mean_mailbox_wait.as_nanos() * u128::from(r.processed))
        .sum();
    let mean = weighted.checked_div(u128::from(s.processed)).unwrap_or(0);
    assert_eq!(s.mean_mailbox_wait.as_nanos(), mean);
}

#[test]
fn stats_rows_and_sums() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        // Member i handles 10 × (i + 1) messages: 100 in all.
        for i in 0..4 {
            for _ in 0..10 * (i + 1) {
                pool.ask(Route::Member(i), ConnMsg::Who).unwrap();
            }
        }
        wait_until("every turn to be accounted", || {
            pool.stats().processed == 100
        });
        let s = pool.stats();
        check_sums(&s);
        assert_eq!(s.alive, 4);
        assert_eq!(s.pending, 0);
        for (i, row) in s.members.iter().enumerate() {
            assert_eq!(row.index, i);
            assert_eq!(row.shard, i % n);
            let st = row.stats.as_ref().unwrap();
            assert_eq!(st.processed, 10 * (i as u64 + 1));
            assert_eq!(Some(st), pool.members()[i].stats().as_ref());
            assert!(st.processing_max <= st.processing_total);
        }
        assert!(s.processing_total > Duration::ZERO);

        // Pending: with every shard held, queued messages are counted per member.
        let guards: Vec<_> = (0..n).map(|s| block_shard(&rt, s)).collect();
        for i in 0..4 {
            for v in 0..i as u64 {
                pool.tell(Route::Member(i), ConnMsg::Note(v)).unwrap();
            }
        }
        let s = pool.stats();
        check_sums(&s);
        let pending: Vec<u64> = s
            .members
            .iter()
            .map(|m| m.stats.as_ref().unwrap().pending)
            .collect();
        assert_eq!(pending, [0, 1, 2, 3]);
        assert_eq!(s.pending, 6);
        drop(guards);
        wait_until("the notes to be handled", || pool.stats().processed == 106);
        let s = pool.stats();
        check_sums(&s);
        assert_eq!(s.pending, 0);
        // A handled message waited in its mailbox at least a little: the mean is not zero.
        assert!(s.mean_mailbox_wait > Duration::ZERO);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn stopped_members_have_empty_rows() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 3);
        warm_up(&pool);
        wait_until("warm-up accounted", || pool.stats().processed == 3);
        pool.members()[1].stop().unwrap();
        wait_until("member 1 to stop", || !pool.members()[1].is_alive());
        let s = pool.stats();
        check_sums(&s);
        assert_eq!(s.alive, 2);
        assert_eq!(s.members[1].stats, None);
        assert_eq!(s.processed, 2);
        pool.shutdown().unwrap();
        let s = pool.stats();
        assert_eq!((s.alive, s.processed, s.members.len()), (0, 0, 3));
        rt.shutdown().unwrap();
    });
}
