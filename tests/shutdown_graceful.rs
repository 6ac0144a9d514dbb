//! `Runtime::shutdown` first runs every actor's S-phase (supervisors take their trees down,
//! resources are released — a storage actor flushes), then forces whatever is left.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod lifecycle_common;

use coreactor::supervisor::{ChildSpec, Supervisor};
use coreactor::{Actor, Context, Runtime, StopReason};
use lifecycle_common::{Log, ProbeCfg};
use std::time::Duration;

/// Holds its S-phase until an asynchronous "flush" (a timer) completes.
struct Flusher {
    log: Log,
}

enum FlusherMsg {
    Flushed,
}

impl Actor for Flusher {
    type Msg = FlusherMsg;
    fn stopping(&mut self, _: &StopReason, ctx: &mut Context<'_, Self>) {
        ctx.acquire(7);
        ctx.send_after(Duration::from_millis(20), FlusherMsg::Flushed);
    }
    fn handle(&mut self, msg: FlusherMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            FlusherMsg::Flushed => {
                self.log.push("flushed");
                ctx.release(7);
            }
        }
    }
    fn stopped(&mut self, reason: &StopReason, _: &mut Context<'_, Self>) {
        self.log.push(format!("stopped:{reason}"));
    }
}

#[test]
fn shutdown_runs_the_s_phase_of_every_actor_before_forcing() {
    for shards in [1, 2, 3] {
        let log = Log::default();
        let rt = Runtime::builder()
            .shards(shards)
            .shutdown_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let l = log.clone();
        rt.spawn_with(shards - 1, move || Flusher { log: l })
            .unwrap();
        let a = ProbeCfg::new("a", &log);
        let b = ProbeCfg::new("b", &log);
        rt.spawn_with(0, move || {
            Supervisor::builder()
                .child(ChildSpec::new("a", move || a.build()).on_shard(shards - 1))
                .child(ChildSpec::new("b", move || b.build()))
                .build()
        })
        .unwrap();
        // Wait until both children run, so the shutdown finds a full tree.
        common::wait_until("the tree came up", || {
            !log.with_prefix("b:started").is_empty() && !log.with_prefix("a:started").is_empty()
        });
        rt.shutdown().expect("clean shutdown");
        let entries = log.snapshot();
        let flushed = entries
            .iter()
            .position(|e| e == "flushed")
            .expect("flushed");
        let stopped = entries
            .iter()
            .position(|e| e == "stopped:runtime shut down")
            .expect("the flusher stopped with Shutdown");
        assert!(flushed < stopped, "{entries:?}");
        assert_eq!(
            log.with_prefix("a:stopped"),
            ["a:stopped:supervisor shut down <- runtime shut down"]
        );
        assert_eq!(
            log.with_prefix("b:stopped"),
            ["b:stopped:supervisor shut down <- runtime shut down"]
        );
    }
}
