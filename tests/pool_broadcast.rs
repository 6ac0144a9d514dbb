//! Broadcast asks every member and returns one result per member, in member order, with errors
//! per member: a stopped member, a dropped reply and a member whose shard is blocked fail alone
//! while the others answer. Also `broadcast_async` and `tell_all`.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{Gate, block_on, for_each_shard_count, runtime, wait_until};
use coreactor::AskError;
use coreactor::pool::{PoolError, Route};
use pool_common::{ASK, ConnMsg, conn_pool, warm_up};
use std::time::Duration;

#[test]
fn broadcast_returns_results_in_member_order() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 6);
        let rows = pool.broadcast(ConnMsg::Who, ASK);
        let who: Vec<usize> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(who, [0, 1, 2, 3, 4, 5]);
        let shards: Vec<usize> = pool
            .broadcast(ConnMsg::Shard, ASK)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(shards, (0..6).map(|i| i % n).collect::<Vec<_>>());
        let rows = block_on(pool.broadcast_async(ConnMsg::Who, ASK));
        let who: Vec<usize> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(who, [0, 1, 2, 3, 4, 5]);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn broadcast_reports_errors_per_member() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        // Odd members drop the reply unanswered.
        let rows = pool.broadcast(ConnMsg::WhoIfEven, ASK);
        assert_eq!(rows.len(), 4);
        for (i, row) in rows.into_iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(row.unwrap(), i);
            } else {
                assert_eq!(
                    row.unwrap_err(),
                    PoolError::Ask(AskError::Dropped),
                    "member {i}"
                );
            }
        }
        // A stopped member fails alone.
        pool.members()[2].stop().unwrap();
        wait_until("member 2 to stop", || !pool.members()[2].is_alive());
        let rows = pool.broadcast(ConnMsg::Who, ASK);
        assert_eq!(rows[0], Ok(0));
        assert_eq!(rows[1], Ok(1));
        assert_eq!(rows[2], Err(PoolError::Ask(AskError::Closed)));
        assert_eq!(rows[3], Ok(3));
        let rows = block_on(pool.broadcast_async(ConnMsg::Who, ASK));
        assert_eq!(rows[2], Err(PoolError::Ask(AskError::Closed)));
        assert_eq!(rows[3], Ok(3));
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn broadcast_times_out_only_the_blocked_members() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        // Member 0 holds shard 0 at a gate: every member of shard 0 is stuck behind it.
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        pool.tell(Route::Member(0), ConnMsg::Block(gate.clone()))
            .unwrap();
        gate.wait_entered(1);
        let timeout = if n == 1 {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        let rows = pool.broadcast(ConnMsg::Who, timeout);
        for (i, row) in rows.into_iter().enumerate() {
            if i % n == 0 {
                assert_eq!(
                    row,
                    Err(PoolError::Ask(AskError::Timeout(timeout))),
                    "member {i}"
                );
            } else {
                assert_eq!(row, Ok(i));
            }
        }
        gate.open();
        let rows = pool.broadcast(ConnMsg::Who, ASK);
        assert!(rows.iter().all(Result::is_ok), "{rows:?}");
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn tell_all_reaches_every_member() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 5);
        let sent = pool.tell_all(|i| ConnMsg::Note(i as u64 * 10));
        assert!(sent.iter().all(Result::is_ok));
        let notes: Vec<Vec<u64>> = pool
            .broadcast(ConnMsg::Notes, ASK)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(notes, [vec![0], vec![10], vec![20], vec![30], vec![40]]);
        pool.shutdown().unwrap();
        let after = pool.tell_all(|i| ConnMsg::Note(i as u64));
        for (i, r) in after.into_iter().enumerate() {
            match r {
                Err(PoolError::Closed(ConnMsg::Note(v))) => assert_eq!(v, i as u64),
                other => panic!("member {i}: expected Closed with the note back: {other:?}"),
            }
        }
        rt.shutdown().unwrap();
    });
}
