//! `ShardConfig::prefault_rings`: a shard that prefaults its inbound rings has them resident
//! before it runs any actor, and they carry messages as before; without it, an idle ring stays
//! out of memory.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![cfg(target_os = "linux")]

mod common;

use common::{Sink, SinkMsg, wait_for};
use coreactor::config::RING_SLOT_BYTES;
use coreactor::{Actor, Addr, Context, Runtime};
use std::time::Duration;

/// Large rings (13 MiB each), so that what they make resident stands well above what the rest
/// of a runtime does (stacks, injection lanes, tables: 1.4–2 MiB, and some of it reused from
/// the runtime before).
const RING_CAPACITY: usize = 1 << 17;
/// Messages sent through the ring: more than a lap.
const MESSAGES: u64 = 20_000;
const DEADLINE: Duration = Duration::from_secs(30);

/// Resident memory of this process, in bytes.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: `sysconf` only reads a configuration value.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// Sends `MESSAGES` values to a sink on another shard when asked.
struct Forwarder {
    sink: Addr<Sink>,
}

impl Actor for Forwarder {
    type Msg = coreactor::Reply<()>;
    fn handle(&mut self, done: coreactor::Reply<()>, _ctx: &mut Context<'_, Self>) {
        for v in 0..MESSAGES {
            self.sink.tell(SinkMsg::Data(v)).expect("sink alive");
        }
        done.send(());
    }
}

fn runtime(prefault: bool) -> Runtime {
    Runtime::builder()
        .shards(2)
        .ring_capacity(RING_CAPACITY)
        .mailbox_capacity(2 * MESSAGES as usize)
        .prefault_rings(prefault)
        .build()
        .unwrap()
}

#[test]
fn prefaulted_rings_are_resident_at_start_and_carry_messages() {
    // Two rings (one each way) of 131 072 slots: 26 MiB.
    let rings = 2 * RING_CAPACITY * RING_SLOT_BYTES;

    // What a runtime makes resident besides its rings (stacks, injection lanes, tables).
    let before = resident_bytes();
    let lazy = runtime(false);
    let base = resident_bytes().saturating_sub(before);
    lazy.shutdown().unwrap();

    let before = resident_bytes();
    let rt = runtime(true);
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown.saturating_sub(base) >= rings * 3 / 4,
        "prefaulted rings of {rings} bytes made only {grown} bytes resident, \
         against {base} without prefaulting"
    );
    let sink = rt.spawn_on(1, Sink::default()).unwrap();
    let forwarder = rt.spawn_on(0, Forwarder { sink: sink.clone() }).unwrap();
    forwarder.ask(|r| r, DEADLINE).unwrap();
    // The forwarder's messages cross the ring; this thread's `Get` takes the injection lane,
    // which may overtake them: ask until all arrived.
    let got = wait_for("every forwarded message", || {
        let got = sink.ask(SinkMsg::Get, DEADLINE).unwrap();
        (got.len() as u64 >= MESSAGES).then_some(got)
    });
    assert!(
        got.iter().copied().eq(0..MESSAGES),
        "in order, once each (got {} values)",
        got.len()
    );
    rt.shutdown().unwrap();
}
