//! FIFO per (sender, receiver) pair under concurrent senders: outside threads and actors on
//! every shard send sequence-numbered messages to receivers on every shard; each receiver checks
//! per-sender order, and final counts (read by ask) show nothing was lost or duplicated.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{XorShift64, for_each_shard_count, join, wait_for};
use coreactor::{Actor, Addr, Context, Reply, Runtime};
use std::collections::BTreeMap;
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// What a receiver saw: per sender, how many messages arrived, and every order violation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Report {
    counts: BTreeMap<u32, u64>,
    violations: Vec<String>,
}

#[derive(Default)]
struct Receiver {
    next: BTreeMap<u32, u64>,
    violations: Vec<String>,
}

enum RecvMsg {
    Seq { sender: u32, seq: u64 },
    Report(Reply<Report>),
}

impl Actor for Receiver {
    type Msg = RecvMsg;
    fn handle(&mut self, msg: RecvMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            RecvMsg::Seq { sender, seq } => {
                let next = self.next.entry(sender).or_insert(0);
                if seq != *next && self.violations.len() < 16 {
                    self.violations
                        .push(format!("sender {sender}: got seq {seq}, expected {next}"));
                }
                *next = seq + 1;
            }
            RecvMsg::Report(r) => r.send(Report {
                counts: self.next.clone(),
                violations: self.violations.clone(),
            }),
        }
    }
}

/// An actor that, when told to, sends `per_target` numbered messages to each target in a
/// seeded random interleaving, all from one handler call.
struct Sender {
    id: u32,
}

enum SenderMsg {
    Go {
        targets: Vec<Addr<Receiver>>,
        per_target: u64,
        seed: u64,
        done: Reply<Result<(), String>>,
    },
}

impl Actor for Sender {
    type Msg = SenderMsg;
    fn handle(&mut self, msg: SenderMsg, _ctx: &mut Context<'_, Self>) {
        let SenderMsg::Go {
            targets,
            per_target,
            seed,
            done,
        } = msg;
        let mut rng = XorShift64::new(seed);
        let mut next = vec![0u64; targets.len()];
        let mut left: Vec<usize> = (0..targets.len()).collect();
        while !left.is_empty() {
            let pick = rng.below(left.len());
            let t = left[pick];
            let seq = next[t];
            if let Err(e) = targets[t].tell(RecvMsg::Seq {
                sender: self.id,
                seq,
            }) {
                done.send(Err(format!("sender {} seq {seq}: {e}", self.id)));
                return;
            }
            next[t] += 1;
            if next[t] == per_target {
                left.swap_remove(pick);
            }
        }
        done.send(Ok(()));
    }
}

/// Outside threads and one sender actor per shard all send to one receiver per shard; returns
/// once every receiver has seen every message, after checking order and counts.
fn run_fan_in(rt: &Runtime, threads: u32, per_target: u64, seed: u64) {
    let n = rt.shard_count();
    let receivers: Vec<Addr<Receiver>> = (0..n)
        .map(|s| rt.spawn_on(s, Receiver::default()).unwrap())
        .collect();
    let senders: Vec<Addr<Sender>> = (0..n)
        .map(|s| {
            rt.spawn_on(
                s,
                Sender {
                    id: 1000 + s as u32,
                },
            )
            .unwrap()
        })
        .collect();
    let outside: Vec<_> = (0..threads)
        .map(|id| {
            let targets = receivers.clone();
            std::thread::spawn(move || {
                let mut rng = XorShift64::new(seed ^ ((u64::from(id) + 1) * 0x9E37));
                let mut next = vec![0u64; targets.len()];
                let mut left: Vec<usize> = (0..targets.len()).collect();
                while !left.is_empty() {
                    let pick = rng.below(left.len());
                    let t = left[pick];
                    targets[t]
                        .tell(RecvMsg::Seq {
                            sender: id,
                            seq: next[t],
                        })
                        .expect("outside tell");
                    next[t] += 1;
                    if next[t] == per_target {
                        left.swap_remove(pick);
                    }
                }
            })
        })
        .collect();
    let actor_runs: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.clone();
            let targets = receivers.clone();
            std::thread::spawn(move || {
                s.ask(
                    |done| SenderMsg::Go {
                        targets,
                        per_target,
                        seed: seed.wrapping_add(i as u64 * 7919),
                        done,
                    },
                    ASK,
                )
            })
        })
        .collect();
    for t in outside {
        join("outside sender thread", t);
    }
    for t in actor_runs {
        join("sender actor ask", t)
            .expect("ask to sender actor")
            .expect("sender actor sent everything");
    }
    let mut expected: BTreeMap<u32, u64> = (0..threads).map(|id| (id, per_target)).collect();
    expected.extend((0..n).map(|s| (1000 + s as u32, per_target)));
    for (s, r) in receivers.iter().enumerate() {
        // Actor senders' messages may still be in flight: poll the report until complete.
        let report = wait_for(
            &format!("receiver on shard {s} to see every message"),
            || {
                let rep = r.ask(RecvMsg::Report, ASK).expect("report");
                let done = rep.counts.values().sum::<u64>() >= expected.values().sum::<u64>();
                done.then_some(rep)
            },
        );
        assert_eq!(report.violations, Vec::<String>::new(), "receiver {s}");
        assert_eq!(report.counts, expected, "receiver {s}: per-sender counts");
    }
}

// FIFO per pair, no loss, no duplicate, with threads and actors on every shard sending at once.
#[test]
fn mpsc_per_pair_order_across_shards() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .mailbox_capacity(1 << 16)
            .build()
            .unwrap();
        run_fan_in(&rt, 3, 1000, 0xF1F0_0001);
        rt.shutdown().expect("clean shutdown");
    });
}

// With 2-slot rings the ordered overflow buffer carries most cross-shard traffic, in order.
#[test]
fn tiny_ring_overflow_keeps_order() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .ring_capacity(2)
            .mailbox_capacity(1 << 16)
            .build()
            .unwrap();
        run_fan_in(&rt, 2, 1000, 0xF1F0_0002);
        let overflow: u64 = rt.shard_stats().iter().map(|s| s.ring_overflow).sum();
        if n > 1 {
            assert!(
                overflow > 0,
                "2-slot rings must overflow: {:?}",
                rt.shard_stats()
            );
        } else {
            assert_eq!(overflow, 0, "one shard has no rings");
        }
        rt.shutdown().expect("clean shutdown");
    });
}

// Many messages from one outside thread to one actor arrive in order (injection queue path).
#[test]
fn spsc_outside_thread_order() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let r = rt.spawn_on(n - 1, Receiver::default()).unwrap();
        for seq in 0..20_000 {
            r.tell(RecvMsg::Seq { sender: 7, seq }).unwrap();
        }
        let rep = r.ask(RecvMsg::Report, ASK).unwrap();
        assert_eq!(rep.violations, Vec::<String>::new());
        assert_eq!(rep.counts, BTreeMap::from([(7, 20_000)]));
        rt.shutdown().expect("clean shutdown");
    });
}

// More shards than a shard polls between two turns (8 of its rings, in rotation; every loop
// iteration polls all): FIFO per pair, no loss, with every shard sending to every shard.
#[test]
fn many_shards_per_pair_order() {
    let rt = Runtime::builder()
        .shards(12)
        .mailbox_capacity(1 << 16)
        .build()
        .unwrap();
    run_fan_in(&rt, 2, 300, 0xF1F0_0003);
    rt.shutdown().expect("clean shutdown");
}
