//! Links on a real 2-shard runtime (threads, real time; every wait bounded by
//! `common::DEADLINE`): client and server on different shards, start order, cascading
//! shutdown, link order of a simultaneous shutdown, and crossing stops repeated.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod link_common;

use common::wait_until;
use coreactor::lifecycle::State;
use coreactor::{Addr, Runtime, StopReason};
use link_common::{Log, Node, NodeMsg, unlink_requested};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

/// A 2-shard runtime counting lifecycle errors.
fn runtime() -> (Runtime, Arc<AtomicUsize>) {
    let errors = Arc::new(AtomicUsize::new(0));
    let e = errors.clone();
    let rt = Runtime::builder()
        .shards(2)
        .on_lifecycle_error(move |err| {
            eprintln!("lifecycle error: {err}");
            e.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("runtime starts");
    (rt, errors)
}

fn wait_state(what: &str, addr: &Addr<Node>, state: State) {
    wait_until(what, || addr.state() == state);
}

/// Waits until `n` nodes ran `stopped` (the state reads `ShutDown` a little earlier, when the
/// address closes).
fn wait_stopped(log: &Log, n: usize) {
    wait_until("nodes stopped", || log.stop_order().len() >= n);
}

#[test]
fn cross_shard_link_then_server_shutdown_takes_the_client_first() {
    let (rt, errors) = runtime();
    let log = Log::new();
    let server = rt.spawn_on(0, Node::new("server", &log)).unwrap();
    let client = rt
        .spawn_on(1, Node::new("client", &log).link(&server.actor_ref()))
        .unwrap();
    wait_state("client operational", &client, State::Operational);
    assert_eq!(
        client.ask(NodeMsg::Servers, ASK).unwrap(),
        vec![server.actor_ref()]
    );
    assert_eq!(
        server.ask(NodeMsg::Clients, ASK).unwrap(),
        vec![client.actor_ref()]
    );

    server.stop().unwrap();
    wait_stopped(&log, 2);
    assert_eq!(server.state(), State::ShutDown);
    assert_eq!(client.state(), State::ShutDown);
    assert_eq!(log.stop_order(), vec!["client", "server"]);
    assert_eq!(
        log.reason("client"),
        Some(unlink_requested(StopReason::Requested))
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    rt.shutdown().unwrap();
}

#[test]
fn cross_shard_operational_only_client_starts_after_its_server() {
    let (rt, errors) = runtime();
    let log = Log::new();
    let server = rt
        .spawn_on(0, Node::new("server", &log).hold_init())
        .unwrap();
    let client = rt
        .spawn_on(1, Node::new("client", &log).link(&server.actor_ref()))
        .unwrap();
    wait_state("server initializing", &server, State::Initializing);
    assert_ne!(client.state(), State::Operational);
    server.tell(NodeMsg::Release).unwrap();
    // The state reads `Operational` just before `started` runs: wait for the hooks.
    wait_until("both started", || log.start_order().len() == 2);
    assert_eq!(log.start_order(), vec!["server", "client"]);
    assert_eq!(client.state(), State::Operational);
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    rt.shutdown().unwrap();
}

#[test]
fn cross_shard_simultaneous_shutdown_finishes_in_link_order() {
    let (rt, errors) = runtime();
    for round in 0..20 {
        let log = Log::new();
        let a3 = rt.spawn_on(round % 2, Node::new("a3", &log)).unwrap();
        let a2 = rt
            .spawn_on(1 - round % 2, Node::new("a2", &log).link(&a3.actor_ref()))
            .unwrap();
        let a1 = rt
            .spawn_on(
                round % 2,
                Node::new("a1", &log)
                    .link(&a2.actor_ref())
                    .link(&a3.actor_ref()),
            )
            .unwrap();
        wait_state("a1 operational", &a1, State::Operational);
        // The cascade from a3 may have taken the others down already.
        let _ = a3.stop();
        let _ = a2.stop();
        let _ = a1.stop();
        wait_stopped(&log, 3);
        assert_eq!(log.stop_order(), vec!["a1", "a2", "a3"], "round {round}");
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    rt.shutdown().unwrap();
}

#[test]
fn cross_shard_crossing_stops_settle() {
    let (rt, errors) = runtime();
    for round in 0..50 {
        let log = Log::new();
        let server = rt.spawn_on(0, Node::new("server", &log)).unwrap();
        let client = rt
            .spawn_on(1, Node::new("client", &log).link(&server.actor_ref()))
            .unwrap();
        wait_state("client operational", &client, State::Operational);
        // A stop may find its actor gone already (taken down by the other side).
        if round % 2 == 0 {
            let _ = client.stop();
            let _ = server.stop();
        } else {
            let _ = server.stop();
            let _ = client.stop();
        }
        wait_stopped(&log, 2);
        assert_eq!(log.stop_order(), vec!["client", "server"], "round {round}");
        // Requested, or the server's request got there first.
        let reason = log.reason("client").unwrap();
        assert_eq!(reason.root(), &StopReason::Requested, "round {round}");
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    rt.shutdown().unwrap();
}

#[test]
fn graceful_runtime_shutdown_unlinks_in_link_order() {
    let (rt, errors) = runtime();
    let log = Log::new();
    let server = rt.spawn_on(0, Node::new("server", &log)).unwrap();
    let mid = rt
        .spawn_on(1, Node::new("mid", &log).link(&server.actor_ref()))
        .unwrap();
    let client = rt
        .spawn_on(0, Node::new("client", &log).link(&mid.actor_ref()))
        .unwrap();
    wait_state("client operational", &client, State::Operational);
    // Every root actor is asked to stop with `Shutdown`; the links order their S-phases.
    rt.shutdown().unwrap();
    assert_eq!(log.stop_order(), vec!["client", "mid", "server"]);
    assert_eq!(log.reason("server"), Some(StopReason::Shutdown));
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}
