//! Pool shutdown: every member is stopped, pending asks are answered with an error (their
//! queued requests become dead letters, so the askers get `Dropped`), and `shutdown` returns
//! only once every member's `stopped` hook has run — even a slow one; a member stuck in a
//! handler makes it time out naming the members not confirmed stopped; dropping the last
//! handle does the same as `shutdown`, dropping a clone does nothing; afterwards requests
//! answer `Closed`; a pool outliving its runtime does not hang.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{Gate, block_shard, for_each_shard_count, join, runtime, wait_until};
use coreactor::pool::{Pool, PoolError, PoolShutdownError, Route};
use coreactor::{AskError, StopReason};
use pool_common::{ASK, Conn, ConnMsg, Hooks, conn_pool, warm_up};
use std::time::Duration;

#[test]
fn shutdown_answers_pending_asks_and_runs_every_stopped_hook() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        // Hold every shard, then queue one ask per member behind the gates.
        let guards: Vec<_> = (0..n).map(|s| block_shard(&rt, s)).collect();
        let askers: Vec<_> = (0..4)
            .map(|i| {
                let pool = pool.clone();
                std::thread::spawn(move || pool.ask_timeout(Route::Member(i), ConnMsg::Who, ASK))
            })
            .collect();
        wait_until("the four asks to be queued", || pool.stats().pending == 4);
        let dead_before = rt.dead_letters();
        // The stops queue behind the asks, but a stop is handled before queued messages.
        pool.begin_shutdown();
        drop(guards);
        pool.shutdown().unwrap();
        assert_eq!(
            hooks.stopped(),
            4,
            "every stopped hook ran before shutdown returned"
        );
        for (i, a) in askers.into_iter().enumerate() {
            let r = join("an asker", a);
            assert_eq!(r, Err(PoolError::Ask(AskError::Dropped)), "member {i}");
        }
        assert_eq!(rt.dead_letters() - dead_before, 4);
        let mut log = hooks.stop_log.lock().unwrap().clone();
        log.sort_by_key(|(i, _)| *i);
        let expected: Vec<_> = (0..4).map(|i| (i, StopReason::Requested)).collect();
        assert_eq!(log, expected);
        assert!(pool.members().iter().all(|m| !m.is_alive()));
        rt.shutdown().unwrap();
    });
}

#[test]
fn shutdown_waits_for_slow_stopped_hooks() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        // Every `stopped` hook (a flush) waits at a gate. A member's address closes before its
        // hook runs, so "not alive" alone would not mean "flushed".
        let gate = Gate::new();
        let _open = gate.open_on_drop();
        *hooks.stop_gate.lock().unwrap() = Some(gate.clone());
        let shutter = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown())
        };
        gate.wait_entered(1);
        wait_until("a member to look stopped", || {
            pool.members().iter().any(|m| !m.is_alive())
        });
        assert!(
            !shutter.is_finished(),
            "shutdown returned while a hook was running"
        );
        assert_eq!(hooks.stopped(), 0);
        gate.open();
        join("shutdown", shutter).unwrap();
        assert_eq!(hooks.stopped(), 4);
        rt.shutdown().unwrap();
    });
}

#[test]
fn shutdown_times_out_naming_members_stuck_in_a_handler() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let hooks = Hooks::new();
        let pool = Pool::builder(4, Conn::factory(&hooks))
            .shutdown_timeout(Duration::from_millis(100))
            .build(&rt)
            .unwrap();
        warm_up(&pool);
        let gate = Gate::new();
        let guard = gate.open_on_drop();
        pool.tell(Route::Member(0), ConnMsg::Block(gate.clone()))
            .unwrap();
        gate.wait_entered(1);
        // Member 0 holds shard 0: it and every other member of shard 0 cannot stop.
        let on_shard_0: Vec<usize> = (0..4).filter(|i| i % n == 0).collect();
        match pool.shutdown() {
            Err(PoolShutdownError::Timeout { pending }) => assert_eq!(pending, on_shard_0),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(hooks.stopped(), 4 - on_shard_0.len());
        drop(guard);
        // Calling again keeps waiting, and succeeds once they are free.
        wait_until("shard 0's members to stop", || pool.shutdown().is_ok());
        assert_eq!(hooks.stopped(), 4);
        rt.shutdown().unwrap();
    });
}

#[test]
fn dropping_the_last_handle_shuts_down() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        let clone = pool.clone();
        drop(clone);
        assert_eq!(pool.broadcast(ConnMsg::Who, ASK).len(), 4);
        assert!(
            pool.members().iter().all(|m| m.is_alive()),
            "a clone's drop stops nothing"
        );
        let addrs = pool.members().to_vec();
        drop(pool);
        assert_eq!(
            hooks.stopped(),
            4,
            "every stopped hook ran before drop returned"
        );
        assert!(addrs.iter().all(|m| !m.is_alive()));
        rt.shutdown().unwrap();
    });
}

#[test]
fn requests_after_shutdown_answer_closed() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 3);
        pool.shutdown().unwrap();
        assert_eq!(hooks.stopped(), 3);
        pool.shutdown().unwrap();
        match pool.tell(Route::RoundRobin, ConnMsg::Note(1)) {
            Err(PoolError::Closed(ConnMsg::Note(1))) => {}
            other => panic!("expected Closed with the note back, got {other:?}"),
        }
        assert_eq!(
            pool.ask(Route::Key(3), ConnMsg::Who),
            Err(PoolError::Ask(AskError::Closed))
        );
        let rows = pool.broadcast(ConnMsg::Who, ASK);
        assert!(
            rows.iter()
                .all(|r| *r == Err(PoolError::Ask(AskError::Closed)))
        );
        rt.shutdown().unwrap();
    });
}

#[test]
fn a_pool_outliving_its_runtime_does_not_hang() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 4);
        warm_up(&pool);
        rt.shutdown().unwrap();
        // The runtime stopped the members (their hooks saw `Shutdown`).
        assert_eq!(hooks.stopped(), 4);
        assert_eq!(pool.shutdown(), Err(PoolShutdownError::RuntimeShutDown));
        drop(pool);
    });
}
