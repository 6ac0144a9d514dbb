//! Least-loaded routing reads the members' real queue depths (`Addr::mailbox_len`): with every
//! shard held at a gate the depths are exact, and each least-loaded send goes to a member with
//! the smallest queue (ties spread); with one member's shard blocked and its mailbox deep, no
//! least-loaded send goes to it; stopped members are avoided.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{block_shard, for_each_shard_count, runtime, wait_until};
use coreactor::pool::Route;
use pool_common::{ConnMsg, conn_pool, depths, warm_up};

#[test]
fn least_loaded_picks_the_smallest_real_queue() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        // Hold every shard: nothing is handled, so the depths are exactly what we queue.
        let guards: Vec<_> = (0..n).map(|s| block_shard(&rt, s)).collect();
        let initial = [3usize, 1, 4, 2];
        for (i, &d) in initial.iter().enumerate() {
            for v in 0..d {
                pool.tell(Route::Member(i), ConnMsg::Note(v as u64))
                    .unwrap();
            }
        }
        assert_eq!(depths(&pool), initial);
        assert_eq!(
            pool.pick(Route::LeastLoaded).unwrap(),
            1,
            "the unique minimum"
        );
        assert_eq!(
            pool.pick(Route::LeastLoaded).unwrap(),
            1,
            "picking sends nothing"
        );
        // Each send goes to a member whose queue was the smallest just before it.
        for v in 0..10u64 {
            let before = depths(&pool);
            pool.tell(Route::LeastLoaded, ConnMsg::Note(100 + v))
                .unwrap();
            let after = depths(&pool);
            let chosen: Vec<usize> = (0..4).filter(|&i| after[i] != before[i]).collect();
            assert_eq!(
                chosen.len(),
                1,
                "one member got it: {before:?} -> {after:?}"
            );
            let min = *before.iter().min().unwrap();
            assert_eq!(before[chosen[0]], min, "{before:?} -> {after:?}");
        }
        // 10 + 10 messages over 4 members, always to the shortest queue: all at 5.
        assert_eq!(depths(&pool), [5, 5, 5, 5]);
        // Ties are spread: the next four sends reach four different members.
        for v in 0..4u64 {
            pool.tell(Route::LeastLoaded, ConnMsg::Note(200 + v))
                .unwrap();
        }
        assert_eq!(depths(&pool), [6, 6, 6, 6]);
        drop(guards);
        wait_until("queues to drain", || depths(&pool) == [0, 0, 0, 0]);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn least_loaded_avoids_a_member_whose_shard_is_blocked() {
    for n in [2, 4] {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, n);
        warm_up(&pool);
        // Member 0 is alone on shard 0; block that shard so its mailbox fills.
        let (_gate, guard, _blocker) = block_shard(&rt, 0);
        for v in 0..1_000u64 {
            pool.tell(Route::Member(0), ConnMsg::Note(v)).unwrap();
        }
        assert_eq!(pool.members()[0].mailbox_len(), 1_000);
        // Fewer sends than member 0's depth: it can never be the least loaded.
        for v in 0..200u64 {
            let i = pool.pick(Route::LeastLoaded).unwrap();
            assert_ne!(i, 0, "picked the blocked member");
            pool.tell(Route::LeastLoaded, ConnMsg::Note(v)).unwrap();
        }
        assert_eq!(pool.members()[0].mailbox_len(), 1_000, "no send reached it");
        // The other members got all 200 notes.
        let others: usize = (1..n)
            .map(|i| pool.ask(Route::Member(i), ConnMsg::Notes).unwrap().len())
            .sum();
        assert_eq!(others, 200);
        drop(guard);
        let notes = pool.ask(Route::Member(0), ConnMsg::Notes).unwrap();
        assert_eq!(notes.len(), 1_000);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    }
}

#[test]
fn least_loaded_skips_stopped_members() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 3);
        warm_up(&pool);
        pool.members()[1].stop().unwrap();
        wait_until("member 1 to stop", || !pool.members()[1].is_alive());
        for _ in 0..30 {
            let who = pool.ask(Route::LeastLoaded, ConnMsg::Who).unwrap();
            assert_ne!(who, 1);
        }
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}
