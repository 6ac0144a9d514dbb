//! Backpressure through the pool with `mailbox_capacity(4)`: while a member's shard is held at a
//! gate, `tell` answers `PoolError::MailboxFull` handing the message back, `tell_timeout` gives
//! up with `MailboxFull`, a blocking ask reports `Full` past its deadline or waits for room
//! within it, `ask_async` fails at once, and once drained, sends succeed again — with every
//! accepted message handled in order.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{block_on, block_shard, for_each_shard_count, join, wait_until};
use coreactor::pool::{Pool, PoolError, Route};
use coreactor::{AskError, Runtime};
use pool_common::{ASK, Conn, ConnMsg, Hooks, depths, warm_up};
use std::time::Duration;

const CAP: usize = 4;

#[test]
fn full_mailbox_is_a_typed_error_on_tell() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .mailbox_capacity(CAP)
            .build()
            .unwrap();
        let hooks = Hooks::new();
        let pool = Pool::builder(2, Conn::factory(&hooks)).build(&rt).unwrap();
        warm_up(&pool);
        let (_gate, guard, _blocker) = block_shard(&rt, 0);
        for v in 0..CAP as u64 {
            pool.tell(Route::Member(0), ConnMsg::Note(v)).unwrap();
        }
        // The fifth is refused at once, and handed back.
        match pool.tell(Route::Member(0), ConnMsg::Note(99)) {
            Err(e @ PoolError::MailboxFull(_)) => {
                assert!(e.is_full());
                assert_eq!(e.to_string(), "the pool member's mailbox is full");
                assert!(matches!(e.into_inner(), Some(ConnMsg::Note(99))));
            }
            other => panic!("expected MailboxFull, got {other:?}"),
        }
        match pool.tell_timeout(
            Route::Member(0),
            ConnMsg::Note(98),
            Duration::from_millis(20),
        ) {
            Err(PoolError::MailboxFull(ConnMsg::Note(98))) => {}
            other => panic!("expected MailboxFull after waiting, got {other:?}"),
        }
        // Asks: a blocking ask waits for room within its timeout, then reports Full.
        let err = pool
            .ask_timeout(Route::Member(0), ConnMsg::Who, Duration::from_millis(20))
            .unwrap_err();
        assert_eq!(err, PoolError::Ask(AskError::Full));
        assert!(err.is_full());
        // An async ask never waits for room.
        let err = block_on(pool.ask_async(Route::Member(0), ConnMsg::Who, ASK)).unwrap_err();
        assert_eq!(err, PoolError::Ask(AskError::Full));
        assert_eq!(
            pool.members()[0].mailbox_len(),
            CAP,
            "refusals left no trace"
        );
        // A blocking ask with time to spare gets in once the gate opens.
        let asker = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.ask_timeout(Route::Member(0), ConnMsg::Notes, ASK))
        };
        drop(guard);
        let notes = join("the waiting asker", asker).unwrap();
        assert_eq!(notes, [0, 1, 2, 3]);
        wait_until("member 0 to drain", || depths(&pool)[0] == 0);
        pool.tell(Route::Member(0), ConnMsg::Note(4)).unwrap();
        let notes = pool.ask(Route::Member(0), ConnMsg::Notes).unwrap();
        assert_eq!(notes, [0, 1, 2, 3, 4]);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn full_members_do_not_block_the_others() {
    for n in [2, 4] {
        let rt = Runtime::builder()
            .shards(n)
            .mailbox_capacity(CAP)
            .build()
            .unwrap();
        let hooks = Hooks::new();
        let pool = Pool::builder(n, Conn::factory(&hooks)).build(&rt).unwrap();
        warm_up(&pool);
        let (_gate, guard, _blocker) = block_shard(&rt, 0);
        for v in 0..CAP as u64 {
            pool.tell(Route::Member(0), ConnMsg::Note(v)).unwrap();
        }
        let others_idle = || depths(&pool)[1..].iter().all(|&d| d == 0);
        // Least-loaded steers around the full member; round-robin hits it and is refused.
        for v in 0..20u64 {
            wait_until("the other members to drain", others_idle);
            assert_ne!(pool.pick(Route::LeastLoaded).unwrap(), 0);
            pool.tell(Route::LeastLoaded, ConnMsg::Note(v)).unwrap();
        }
        wait_until("the other members to drain", others_idle);
        let refused = (0..n)
            .filter(|_| {
                matches!(
                    pool.tell(Route::RoundRobin, ConnMsg::Note(0)),
                    Err(PoolError::MailboxFull(_))
                )
            })
            .count();
        assert_eq!(
            refused, 1,
            "one round of round-robin meets the full member once"
        );
        drop(guard);
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    }
}
