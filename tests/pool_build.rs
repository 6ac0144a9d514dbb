//! Building a pool: invalid sizes and shards are typed errors (nothing spawned), the factory is
//! called once per member on the member's shard, and a panicking factory leaves only that
//! member dead.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{for_each_shard_count, runtime, wait_for, wait_until};
use coreactor::pool::{Pool, PoolBuildError, PoolError, PoolMember, Route};
use coreactor::{AskError, SpawnError};
use pool_common::{ASK, Conn, ConnMsg, Hooks};

#[test]
fn invalid_builds_are_typed_errors() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let hooks = Hooks::new();
        let err = Pool::builder(0, Conn::factory(&hooks))
            .build(&rt)
            .unwrap_err();
        assert_eq!(err, PoolBuildError::EmptyPool);
        let err = Pool::builder(2, Conn::factory(&hooks))
            .shards([])
            .build(&rt)
            .unwrap_err();
        assert_eq!(err, PoolBuildError::NoShards);
        let err = Pool::builder(2, Conn::factory(&hooks))
            .shards([0, n])
            .build(&rt)
            .unwrap_err();
        assert_eq!(
            err,
            PoolBuildError::NoSuchShard {
                shard: n,
                shards: n
            }
        );
        assert!(hooks.built.lock().unwrap().is_empty(), "nothing was built");
        rt.shutdown().unwrap();
    });
}

#[test]
fn a_full_shard_is_a_spawn_error_and_rolls_back() {
    let rt = coreactor::Runtime::builder()
        .shards(1)
        .max_actors(3)
        .build()
        .unwrap();
    let hooks = Hooks::new();
    // One probe plus three members do not fit in three slots.
    let err = Pool::builder(3, Conn::factory(&hooks))
        .build(&rt)
        .unwrap_err();
    assert_eq!(
        err,
        PoolBuildError::Spawn {
            shard: 0,
            error: SpawnError::ShardFull {
                shard: 0,
                max_actors: 3
            }
        }
    );
    // The members spawned before the failure were stopped again, and their slots come back.
    wait_until("the rolled-back members to stop", || hooks.stopped() == 2);
    let hooks = Hooks::new();
    let pool = wait_for("the slots to come back", || {
        Pool::builder(2, Conn::factory(&hooks)).build(&rt).ok()
    });
    assert_eq!(pool.ask(Route::Member(1), ConnMsg::Who).unwrap(), 1);
    pool.shutdown().unwrap();
    rt.shutdown().unwrap();
}

#[test]
fn a_panicking_factory_leaves_only_its_member_dead() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let hooks = Hooks::new();
        let make = Conn::factory(&hooks);
        let pool = Pool::builder(3, move |m: PoolMember| {
            assert!(m.index != 1, "connection refused");
            make(m)
        })
        .build(&rt)
        .unwrap();
        let rows = pool.broadcast(ConnMsg::Who, ASK);
        assert_eq!(rows[0], Ok(0));
        assert!(
            matches!(
                rows[1],
                Err(PoolError::Ask(AskError::Closed | AskError::Dropped))
            ),
            "{:?}",
            rows[1]
        );
        assert_eq!(rows[2], Ok(2));
        wait_until("member 1 to be seen dead", || !pool.members()[1].is_alive());
        assert_eq!(pool.stats().alive, 2);
        pool.shutdown().unwrap();
        assert_eq!(hooks.stopped(), 2);
        rt.shutdown().unwrap();
    });
}
