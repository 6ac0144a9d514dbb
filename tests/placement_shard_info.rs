//! Placement: `shard_info()` has one entry per shard, each on its own named thread; shards are
//! pinned to distinct CPUs while there are CPUs, and beyond the CPU count run unpinned with a
//! warning; `Unpinned` pins nothing; `Fixed` pins where it is told. Pinning is checked from
//! inside each shard thread with the thread's own affinity mask.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::for_each_shard_count;
use coreactor::config::available_cpus;
use coreactor::{Actor, Context, Placement, Reply, Runtime, ShardInfo};
use std::collections::HashSet;
use std::thread::ThreadId;
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// What a shard thread says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    shard: usize,
    thread_id: ThreadId,
    thread_name: String,
    affinity: Vec<usize>,
}

struct Witness;

enum WitnessMsg {
    Look(Reply<Seen>),
}

impl Actor for Witness {
    type Msg = WitnessMsg;
    fn handle(&mut self, WitnessMsg::Look(r): WitnessMsg, ctx: &mut Context<'_, Self>) {
        let me = std::thread::current();
        let mut affinity: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        affinity.sort_unstable();
        r.send(Seen {
            shard: ctx.shard_id(),
            thread_id: me.id(),
            thread_name: me.name().unwrap_or_default().to_string(),
            affinity,
        });
    }
}

/// Asks an actor on every shard what its thread is.
fn look(rt: &Runtime) -> Vec<Seen> {
    (0..rt.shard_count())
        .map(|s| {
            rt.spawn_on(s, Witness)
                .unwrap()
                .ask(WitnessMsg::Look, ASK)
                .unwrap()
        })
        .collect()
}

/// Each entry matches what its shard thread sees from inside, and threads are distinct.
fn check_threads(info: &[ShardInfo], seen: &[Seen]) {
    assert_eq!(info.len(), seen.len());
    let ids: HashSet<ThreadId> = info.iter().map(|i| i.thread_id).collect();
    assert_eq!(ids.len(), info.len(), "distinct thread ids: {info:?}");
    for (i, (info, seen)) in info.iter().zip(seen).enumerate() {
        assert_eq!(info.shard, i);
        assert_eq!(seen.shard, i);
        assert_eq!(info.thread_name, format!("coreactor-shard-{i}"));
        assert_eq!(seen.thread_name, info.thread_name);
        assert_eq!(seen.thread_id, info.thread_id);
        if let Some(cpu) = info.cpu {
            assert_eq!(seen.affinity, [cpu], "shard {i} runs pinned to CPU {cpu}");
        }
    }
}

// shard_info has one entry per shard, on distinct named threads that match what the shards see.
#[test]
fn one_entry_per_shard_on_distinct_threads() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let info = rt.shard_info();
        assert_eq!(info.len(), n);
        assert_eq!(rt.shard_count(), n);
        check_threads(&info, &look(&rt));
        rt.shutdown().expect("clean shutdown");
    });
}

// Default placement pins shard i to the i-th available CPU; shards beyond the CPU count start
// anyway and report cpu None with a pin warning.
#[test]
fn default_placement_pins_then_runs_unpinned_beyond_cpus() {
    let cpus = available_cpus();
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let info = rt.shard_info();
        for (i, shard) in info.iter().enumerate() {
            if i < cpus.len() {
                assert_eq!(shard.cpu, Some(cpus[i]), "shard {i}: {shard:?}");
                assert_eq!(shard.pin_warning, None, "shard {i}");
            } else {
                assert_eq!(shard.cpu, None, "shard {i} beyond {} CPUs", cpus.len());
                assert!(shard.pin_warning.is_some(), "shard {i}: {shard:?}");
            }
        }
        check_threads(&info, &look(&rt));
        rt.shutdown().expect("clean shutdown");
    });
}

// Placement::Unpinned pins no shard and warns about none.
#[test]
fn unpinned_placement_pins_nothing() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .placement(Placement::Unpinned)
            .build()
            .unwrap();
        let info = rt.shard_info();
        assert_eq!(info.len(), n);
        for shard in &info {
            assert_eq!((shard.cpu, &shard.pin_warning), (None, &None), "{shard:?}");
        }
        check_threads(&info, &look(&rt));
        rt.shutdown().expect("clean shutdown");
    });
}

// Placement::Fixed pins where it is told, even several shards to one CPU: here every shard on
// CPU 0 (skipped if the process may not run on CPU 0).
#[test]
fn fixed_placement_pins_to_cpu_zero() {
    if !available_cpus().contains(&0) {
        eprintln!("skipped: CPU 0 is not in this process's affinity mask");
        return;
    }
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .placement(Placement::Fixed(vec![0; n]))
            .build()
            .unwrap();
        let info = rt.shard_info();
        for shard in &info {
            assert_eq!(
                (shard.cpu, &shard.pin_warning),
                (Some(0), &None),
                "{shard:?}"
            );
        }
        check_threads(&info, &look(&rt));
        rt.shutdown().expect("clean shutdown");
    });
}
