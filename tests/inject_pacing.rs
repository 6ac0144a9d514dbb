//! Lane pacing (`ShardConfig::inject_pacing`): a shard that keeps finding its injection lane
//! holding a few messages at every poll stops polling it for a while. Whatever the pauses, every
//! message of a stream is delivered, in each sender's order, and none is left in the lane when
//! the senders stop: a shard about to park looks at the lane even during a pause. The longest
//! pause is configured and the shard parks as soon as it is idle, so that a shard which slept
//! without looking at the lane would keep the tail of the stream until the test's deadline.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{Sink, SinkMsg, for_each_shard_count, wait_until};
use coreactor::Runtime;
use std::time::Duration;

const SENDERS: u64 = 2;
const PER_SENDER: u64 = 50_000;
/// Streams per shard count in the paced test.
const ROUNDS: usize = 5;
const DEADLINE: Duration = Duration::from_secs(30);

fn paced_runtime(n: usize, pacing: Duration) -> Runtime {
    Runtime::builder()
        .shards(n)
        .inject_pacing(pacing)
        .spin_before_park(Duration::ZERO)
        .mailbox_capacity(1024)
        .build()
        .unwrap()
}

/// Two outside threads stream tagged values into one sink; the sink must handle all of them
/// without any further message to wake its shard, then hold each sender's values in order.
fn stream_is_delivered_whole(n: usize, pacing: Duration) {
    let rt = paced_runtime(n, pacing);
    let sink = rt.spawn_on(n - 1, Sink::default()).unwrap();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..PER_SENDER {
                    sink.tell(SinkMsg::Data((s << 32) | i)).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let total = SENDERS * PER_SENDER;
    // Only statistics are read here: nothing is sent that could wake a shard which went to
    // sleep with the end of the stream still in its lane.
    wait_until("the whole stream handled without another message", || {
        sink.stats().is_some_and(|s| s.processed == total)
    });
    let got = sink.ask(SinkMsg::Get, DEADLINE).unwrap();
    assert_eq!(got.len() as u64, total);
    let mut next = [0u64; SENDERS as usize];
    for v in got {
        let s = (v >> 32) as usize;
        assert_eq!(v & 0xffff_ffff, next[s], "sender {s} out of order");
        next[s] += 1;
    }
    rt.shutdown().unwrap();
}

#[test]
fn a_paced_stream_is_delivered_whole_and_in_order() {
    // Whether the end of a stream falls into a pause is a race: a few rounds make a shard
    // that sleeps through a pause fail this test reliably.
    for_each_shard_count(|n| {
        for _ in 0..ROUNDS {
            stream_is_delivered_whole(n, Duration::from_millis(1));
        }
    });
}

#[test]
fn pacing_can_be_turned_off() {
    for_each_shard_count(|n| stream_is_delivered_whole(n, Duration::ZERO));
}
