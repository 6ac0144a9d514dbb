//! Monitors: one DOWN per monitor with the target's reason chain, delivered after the target
//! is entirely shut down; `demonitor`; a dead target (at once, or while the watch is in
//! flight) reported as `NoSuchActor`; no lifecycle coupling. Test kit, and a real 2-shard
//! runtime.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod link_common;

use common::wait_until;
use coreactor::lifecycle::State;
use coreactor::plugins::monitor::{Down, DownReason, MonitorId};
use coreactor::testkit::TestKit;
use coreactor::{Actor, ActorRef, Context, Reply, Runtime, StopReason};
use link_common::{Log, Node, unlink_requested};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a watcher saw: the DOWN, and the target's state when it was handled.
type Seen = Arc<Mutex<Vec<(Down, State)>>>;

struct Watcher {
    seen: Seen,
}

enum WatcherMsg {
    Watch(ActorRef, Reply<MonitorId>),
    WatchQuietly(ActorRef),
    /// Monitors the target, then stops it: the stop follows the watch (FIFO per pair).
    WatchAndStop(ActorRef, Reply<MonitorId>),
    Demonitor(MonitorId, Reply<bool>),
    Down(Down),
}

impl Actor for Watcher {
    type Msg = WatcherMsg;
    fn handle(&mut self, msg: WatcherMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            WatcherMsg::Watch(target, reply) => reply.send(ctx.monitor(&target, WatcherMsg::Down)),
            WatcherMsg::WatchQuietly(target) => {
                ctx.monitor(&target, WatcherMsg::Down);
            }
            WatcherMsg::WatchAndStop(target, reply) => {
                reply.send(ctx.monitor(&target, WatcherMsg::Down));
                target
                    .stop_with(StopReason::Failed("enough".into()))
                    .unwrap();
            }
            WatcherMsg::Demonitor(id, reply) => reply.send(ctx.demonitor(id)),
            WatcherMsg::Down(d) => {
                let state = d.actor.state();
                self.seen.lock().unwrap().push((d, state));
            }
        }
    }
}

fn watcher() -> (Watcher, Seen) {
    let seen = Seen::default();
    (Watcher { seen: seen.clone() }, seen)
}

fn downs(seen: &Seen) -> Vec<(MonitorId, ActorRef, DownReason, State)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(d, s)| (d.id, d.actor.clone(), d.reason.clone(), *s))
        .collect()
}

#[test]
fn down_carries_the_reason_chain_after_the_target_is_gone() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let target = kit.spawn_on(1, Node::new("target", &log).link(&server.actor_ref()));
    let (w, seen) = watcher();
    let w = kit.spawn_on(0, w);
    kit.run_until_idle();
    let id = kit
        .ask(&w, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    assert!(downs(&seen).is_empty());

    server.stop().unwrap();
    kit.run_until_idle();
    let expected = unlink_requested(StopReason::Requested);
    assert_eq!(
        downs(&seen),
        vec![(
            id,
            target.actor_ref(),
            DownReason::Stopped(expected.clone()),
            State::ShutDown
        )]
    );
    assert_eq!(seen.lock().unwrap()[0].0.stop_reason(), Some(&expected));
    // No coupling: the watcher is untouched.
    assert_eq!(kit.state(&w), State::Operational);
}

#[test]
fn every_monitor_gets_its_own_down() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let target = kit.spawn_on(0, Node::new("target", &log));
    let (w1, seen1) = watcher();
    let (w2, seen2) = watcher();
    let w1 = kit.spawn_on(0, w1);
    let w2 = kit.spawn_on(1, w2);
    let a = kit
        .ask(&w1, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    let b = kit
        .ask(&w1, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    let c = kit
        .ask(&w2, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    assert_ne!(a, b);
    target.stop().unwrap();
    kit.run_until_idle();
    let ids1: Vec<MonitorId> = downs(&seen1).into_iter().map(|d| d.0).collect();
    assert_eq!(ids1.len(), 2);
    assert!(ids1.contains(&a) && ids1.contains(&b));
    assert_eq!(
        downs(&seen2),
        vec![(
            c,
            target.actor_ref(),
            DownReason::Stopped(StopReason::Requested),
            State::ShutDown
        )]
    );
}

#[test]
fn demonitor_cancels_the_down() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let target = kit.spawn_on(0, Node::new("target", &log));
    let (w, seen) = watcher();
    let w = kit.spawn_on(1, w);
    let id = kit
        .ask(&w, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    assert!(kit.ask(&w, |r| WatcherMsg::Demonitor(id, r)).unwrap());
    assert!(!kit.ask(&w, |r| WatcherMsg::Demonitor(id, r)).unwrap());
    target.stop().unwrap();
    kit.run_until_idle();
    assert!(downs(&seen).is_empty());
    assert_eq!(kit.state(&target), State::ShutDown);
}

#[test]
fn monitoring_a_dead_actor_reports_no_such_actor_at_once() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let target = kit.spawn_on(0, Node::new("target", &log));
    kit.run_until_idle();
    target.stop().unwrap();
    kit.run_until_idle();
    let (w, seen) = watcher();
    let w = kit.spawn_on(1, w);
    let id = kit
        .ask(&w, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    assert_eq!(
        downs(&seen),
        vec![(
            id,
            target.actor_ref(),
            DownReason::NoSuchActor,
            State::ShutDown
        )]
    );
    assert_eq!(kit.now(), Duration::ZERO);
}

#[test]
fn target_dying_with_the_watch_in_flight_reports_no_such_actor() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let target = kit.spawn_on(0, Node::new("target", &log));
    let (w, seen) = watcher();
    let w = kit.spawn_on(1, w);
    kit.run_until_idle();
    w.tell(WatcherMsg::WatchQuietly(target.actor_ref()))
        .unwrap();
    // The watch leaves the watcher's shard; the target is stopped before its shard runs.
    kit.step(1);
    target.stop().unwrap();
    kit.run_until_idle();
    let d = downs(&seen);
    assert_eq!(d.len(), 1, "exactly one DOWN");
    assert_eq!(d[0].2, DownReason::NoSuchActor);
}

#[test]
fn watcher_stopping_first_is_harmless() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let target = kit.spawn_on(0, Node::new("target", &log));
    let (w, seen) = watcher();
    let w = kit.spawn_on(1, w);
    kit.ask(&w, |r| WatcherMsg::Watch(target.actor_ref(), r))
        .unwrap();
    w.stop().unwrap();
    kit.run_until_idle();
    target.stop().unwrap();
    kit.run_until_idle();
    assert!(downs(&seen).is_empty());
    assert_eq!(kit.state(&target), State::ShutDown);
    assert_eq!(kit.shard_stats(0).panics + kit.shard_stats(1).panics, 0);
}

#[test]
fn cross_shard_down_on_a_runtime() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let log = Log::new();
    let target = rt.spawn_on(0, Node::new("target", &log)).unwrap();
    let (w, seen) = watcher();
    let w = rt.spawn_on(1, w).unwrap();
    // From outside, a stop could overtake the watch (which leaves at the end of the watcher's
    // turn) and the DOWN would say `NoSuchActor`; the watcher stops the target itself.
    let id = w
        .ask(
            |r| WatcherMsg::WatchAndStop(target.actor_ref(), r),
            Duration::from_secs(30),
        )
        .unwrap();
    wait_until("the DOWN", || !downs(&seen).is_empty());
    assert_eq!(
        downs(&seen),
        vec![(
            id,
            target.actor_ref(),
            DownReason::Stopped(StopReason::Failed("enough".into())),
            State::ShutDown
        )]
    );
    // The target's `stopped` ran before its DOWN left.
    assert_eq!(log.stop_order(), vec!["target"]);
    rt.shutdown().unwrap();
}
