//! Pool routing: round-robin cycles the members in order (shared by clones); key affinity is
//! stable across calls, clones and threads, matches the documented hash and spreads keys over
//! the members; a specific member is reached by index and a bad index is a typed error handing
//! the message back; members are built on, and live on, their own shards; messages routed to
//! one member keep their order.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{for_each_shard_count, join, runtime};
use coreactor::pool::{Pool, PoolError, Route, fnv1a_64, key_index};
use pool_common::{ASK, Conn, ConnMsg, Hooks, conn_pool, warm_up};

#[test]
fn round_robin_cycles_members_in_order() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 5);
        // The picks a fresh pool makes, and the members that actually answer, cycle in order.
        let picks: Vec<usize> = (0..7)
            .map(|_| pool.pick(Route::RoundRobin).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 3, 4, 0, 1]);
        let answered: Vec<usize> = (0..10)
            .map(|_| pool.ask(Route::RoundRobin, ConnMsg::Who).unwrap())
            .collect();
        assert_eq!(answered, [2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
        // Clones share the counter: they continue the same cycle.
        let clone = pool.clone();
        assert_eq!(clone.ask(Route::RoundRobin, ConnMsg::Who).unwrap(), 2);
        assert_eq!(pool.ask(Route::RoundRobin, ConnMsg::Who).unwrap(), 3);
        // Tells follow the same cycle: each member gets every fifth note.
        for v in 0..10u64 {
            pool.tell(Route::RoundRobin, ConnMsg::Note(v)).unwrap();
        }
        let notes: Vec<Vec<u64>> = (0..5)
            .map(|i| pool.ask(Route::Member(i), ConnMsg::Notes).unwrap())
            .collect();
        // 19 picks so far: member 19 % 5 = 4 got the first note.
        assert_eq!(
            notes,
            [vec![1, 6], vec![2, 7], vec![3, 8], vec![4, 9], vec![0, 5]]
        );
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn key_affinity_is_stable_across_calls_clones_and_threads() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        let clone = pool.clone();
        for key in 0..2_000u64 {
            let i = pool.pick(Route::Key(key)).unwrap();
            assert_eq!(i, key_index(key, 4), "the documented hash");
            assert_eq!(
                pool.pick(Route::Key(key)).unwrap(),
                i,
                "stable across calls"
            );
            assert_eq!(
                clone.pick(Route::Key(key)).unwrap(),
                i,
                "stable across clones"
            );
        }
        // The member that answers is the one picked, from any thread, every time.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for key in 0..200u64 {
                        let who = pool.ask(Route::Key(key), ConnMsg::Who).unwrap();
                        assert_eq!(who, key_index(key, 4), "key {key}");
                    }
                })
            })
            .collect();
        for t in threads {
            join("key-affine askers", t);
        }
        // Byte keys are hashed once with FNV-1a 64, then routed like a u64 key.
        let route = Route::key_bytes(b"users/42");
        assert_eq!(route, Route::Key(fnv1a_64(b"users/42")));
        let who = pool.ask(route, ConnMsg::Who).unwrap();
        assert_eq!(who, pool.pick(Route::key_bytes(b"users/42")).unwrap());
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn key_affinity_spreads_keys_over_members() {
    let rt = runtime(2);
    for size in [2, 3, 4, 7] {
        let (pool, _hooks) = conn_pool(&rt, size);
        let mut counts = vec![0usize; size];
        for key in 0..7_000u64 {
            counts[pool.pick(Route::Key(key)).unwrap()] += 1;
        }
        let even = 7_000 / size;
        for (i, c) in counts.iter().enumerate() {
            assert!(
                *c > even * 8 / 10 && *c < even * 12 / 10,
                "size {size}: member {i} got {c} of 7000 sequential keys"
            );
        }
        let mut bytes = vec![0usize; size];
        for key in 0..7_000u64 {
            let k = format!("table/{key}");
            bytes[pool.pick(Route::key_bytes(k.as_bytes())).unwrap()] += 1;
        }
        assert!(bytes.iter().all(|&c| c > even * 7 / 10), "{bytes:?}");
        pool.shutdown().unwrap();
    }
    rt.shutdown().unwrap();
}

#[test]
fn specific_member_by_index() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        for i in 0..4 {
            assert_eq!(pool.pick(Route::Member(i)).unwrap(), i);
            assert_eq!(pool.ask(Route::Member(i), ConnMsg::Who).unwrap(), i);
        }
        // Out of range: typed error, nothing sent, the message comes back.
        match pool.tell(Route::Member(4), ConnMsg::Note(7)) {
            Err(PoolError::NoSuchMember {
                index: 4,
                size: 4,
                msg: ConnMsg::Note(7),
            }) => {}
            other => panic!("expected NoSuchMember with the note back, got {other:?}"),
        }
        let err = pool.ask(Route::Member(9), ConnMsg::Who).unwrap_err();
        assert!(matches!(
            err,
            PoolError::NoSuchMember {
                index: 9,
                size: 4,
                ..
            }
        ));
        assert_eq!(err.to_string(), "no pool member 9: the pool has 4 members");
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn members_are_built_on_and_live_on_their_shards() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        // Default placement: member i on shard i % n.
        let (pool, hooks) = conn_pool(&rt, 6);
        warm_up(&pool);
        for i in 0..6 {
            assert_eq!(pool.members()[i].shard(), i % n);
            assert_eq!(pool.ask(Route::Member(i), ConnMsg::Shard).unwrap(), i % n);
        }
        let mut built = hooks.built.lock().unwrap().clone();
        built.sort();
        let expected: Vec<(usize, String)> = (0..6)
            .map(|i| (i, format!("coreactor-shard-{}", i % n)))
            .collect();
        assert_eq!(
            built, expected,
            "each factory call ran on its member's shard"
        );
        pool.shutdown().unwrap();

        // Chosen shards, in turn.
        let hooks = Hooks::new();
        let chosen = [n - 1, 0];
        let pool = Pool::builder(5, Conn::factory(&hooks))
            .shards(chosen)
            .build(&rt)
            .unwrap();
        for i in 0..5 {
            let shard = chosen[i % 2];
            assert_eq!(pool.member(i).unwrap().shard(), shard);
            assert_eq!(pool.ask(Route::Member(i), ConnMsg::Shard).unwrap(), shard);
        }
        assert!(pool.member(5).is_none());
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn messages_to_one_member_keep_their_order() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 3);
        for v in 0..500u64 {
            pool.tell_timeout(Route::Key(99), ConnMsg::Note(v), ASK)
                .unwrap();
        }
        let notes = pool.ask(Route::Key(99), ConnMsg::Notes).unwrap();
        assert_eq!(notes, (0..500).collect::<Vec<u64>>());
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}
