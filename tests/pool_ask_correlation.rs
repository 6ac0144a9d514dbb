//! Replies through the pool are matched to their request: 8 threads × 1000 blocking asks at the
//! same pooled member each get exactly their own answer, and so do concurrent `ask_async`
//! futures.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{block_on, for_each_shard_count, join, runtime, wait_until};
use coreactor::pool::Route;
use pool_common::{ASK, ConnMsg, conn_pool};

const THREADS: u64 = 8;
const ASKS: u64 = 1_000;

#[test]
fn concurrent_askers_of_one_member_get_their_own_replies() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        // Every thread asks the same member, once by index and once by a key mapping to it.
        let target = pool.pick(Route::Key(7)).unwrap();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for i in 0..ASKS {
                        let v = t * 1_000_000 + i;
                        let route = if i % 2 == 0 {
                            Route::Member(target)
                        } else {
                            Route::Key(7)
                        };
                        let got = pool
                            .ask_timeout(route, |r| ConnMsg::Echo(v, r), ASK)
                            .unwrap();
                        assert_eq!(got, (target, v), "thread {t} ask {i}");
                    }
                })
            })
            .collect();
        for t in threads {
            join("askers", t);
        }
        // Every ask was handled once (the count is updated at the end of each turn).
        wait_until("the member's processed count", || {
            pool.members()[target].stats().unwrap().processed == THREADS * ASKS
        });
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn concurrent_async_asks_get_their_own_replies() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 2);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    // Up to 50 asks in flight at once per thread, completed out of order.
                    for round in 0..20u64 {
                        let futures: Vec<_> = (0..50u64)
                            .map(|i| {
                                let v = (t << 32) | (round << 16) | i;
                                (
                                    v,
                                    pool.ask_async(
                                        Route::Member(1),
                                        move |r| ConnMsg::Echo(v, r),
                                        ASK,
                                    ),
                                )
                            })
                            .collect();
                        for (v, f) in futures.into_iter().rev() {
                            assert_eq!(block_on(f).unwrap(), (1, v));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            join("async askers", t);
        }
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}
