//! The bounded injection lane of outside threads (`inject_capacity`, 64 here): while the target
//! shard is held at a gate it fills up; then `try_tell` answers `Full` with the message and
//! takes its admission back, a blocking `tell` waits for room and is delivered in order, an
//! ask waits within its timeout, and the shard's `inject_full` counter shows it. Mailboxes are
//! larger than the lane here, so every refusal comes from the lane, not from the mailbox.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{
    Blocker, Gate, GateGuard, Sink, SinkMsg, block_shard, for_each_shard_count, join, wait_until,
};
use coreactor::{Addr, AskError, Runtime, SendError};
use std::sync::Arc;
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);
/// The lane's slots.
const LANE: usize = 64;
/// Far above the lane's slots: every refusal comes from the lane.
const MAILBOX: usize = 1 << 16;

fn runtime(n: usize) -> Runtime {
    Runtime::builder()
        .shards(n)
        .mailbox_capacity(MAILBOX)
        .inject_capacity(LANE)
        .build()
        .unwrap()
}

/// Sends `0, 1, 2, ...` with `try_tell` until the lane refuses one; returns how many went in.
fn fill_lane(sink: &Addr<Sink>) -> u64 {
    let mut sent = 0u64;
    loop {
        match sink.try_tell(SinkMsg::Data(sent)) {
            Ok(()) => sent += 1,
            Err(SendError::Full(SinkMsg::Data(x))) => {
                assert_eq!(x, sent, "the refused message comes back");
                return sent;
            }
            Err(_) => panic!("unexpected answer while filling the lane"),
        }
        assert!(
            sent <= LANE as u64,
            "the lane holds at most {LANE} envelopes"
        );
    }
}

/// A runtime of `n` shards whose last shard is held at a gate with a sink on it, and that
/// shard's lane filled by [`fill_lane`].
struct FullLane {
    rt: Runtime,
    shard: usize,
    sink: Addr<Sink>,
    accepted: u64,
    /// Opens the gate when dropped.
    guard: GateGuard,
    _held: (Arc<Gate>, Addr<Blocker>),
}

fn full_lane(n: usize) -> FullLane {
    let rt = runtime(n);
    let shard = n - 1;
    let (gate, guard, blocker) = block_shard(&rt, shard);
    let sink = rt.spawn_on(shard, Sink::default()).unwrap();
    let accepted = fill_lane(&sink);
    FullLane {
        rt,
        shard,
        sink,
        accepted,
        guard,
        _held: (gate, blocker),
    }
}

fn inject_full(rt: &Runtime, shard: usize) -> u64 {
    rt.shard_stats()[shard].inject_full
}

// `try_tell` from an outside thread: `Full` with the message once the lane is full, the
// refused sends are not counted in the mailbox, and every accepted message arrives in order.
#[test]
fn try_tell_reports_a_full_lane_and_takes_the_admission_back() {
    for_each_shard_count(|n| {
        let FullLane {
            rt,
            shard: s,
            sink,
            accepted,
            guard,
            _held,
        } = full_lane(n);
        // The spawn's install task and nothing else shares the lane with the messages.
        assert!(
            accepted >= LANE as u64 - 4,
            "only {accepted} envelopes fit in the lane"
        );
        for _ in 0..10 {
            assert!(matches!(
                sink.try_tell(SinkMsg::Data(u64::MAX)),
                Err(SendError::Full(_))
            ));
        }
        assert!(inject_full(&rt, s) >= 11);
        assert_eq!(
            sink.mailbox_len() as u64,
            accepted,
            "refusals are not counted"
        );

        drop(guard);
        wait_until("every accepted message to be handled", || {
            sink.mailbox_len() == 0
        });
        assert_eq!(
            sink.ask(SinkMsg::Get, ASK).unwrap(),
            (0..accepted).collect::<Vec<_>>()
        );
        sink.try_tell(SinkMsg::Data(accepted)).expect("room again");
        assert_eq!(
            sink.ask(SinkMsg::Get, ASK).unwrap().len() as u64,
            accepted + 1
        );
        assert_eq!(rt.dead_letters(), 0);
        rt.shutdown().expect("clean shutdown");
    });
}

// A blocking `tell` from an outside thread waits while the lane is full and is delivered once
// the shard drains, after everything queued before it; an ask gives up with `Full` when its
// timeout ends first.
#[test]
fn tell_waits_for_room_and_ask_gives_up_at_its_timeout() {
    for_each_shard_count(|n| {
        let FullLane {
            rt,
            shard: s,
            sink,
            accepted,
            guard,
            _held,
        } = full_lane(n);

        assert_eq!(
            sink.ask(SinkMsg::Get, Duration::from_millis(20)),
            Err(AskError::Full),
            "the ask found no room before its timeout"
        );

        let before = inject_full(&rt, s);
        let teller = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for x in accepted..accepted + 10 {
                    sink.tell(SinkMsg::Data(x)).expect("tell waits, never Full");
                }
            })
        };
        wait_until("the teller to find the lane full", || {
            inject_full(&rt, s) > before
        });
        assert!(
            !teller.is_finished(),
            "the teller waits while the lane is full"
        );
        drop(guard);
        join("blocked teller", teller);
        wait_until("all messages to be handled", || sink.mailbox_len() == 0);
        assert_eq!(
            sink.ask(SinkMsg::Get, ASK).unwrap(),
            (0..accepted + 10).collect::<Vec<_>>()
        );
        assert_eq!(rt.dead_letters(), 0);
        rt.shutdown().expect("clean shutdown");
    });
}
