//! Servers shutting down with linked clients, on the test kit: clients go first with
//! `UnlinkRequested(<server's reason>)`, a client may survive (`on_unlink` → false), unlink
//! requests and notifications crossing in flight settle in both orders, an unanswered unlink
//! is bounded by the S-phase timeout, and a set of linked actors finishes in link order.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod link_common;

use coreactor::lifecycle::{DEFAULT_SHUTDOWN_TIMEOUT, State};
use coreactor::testkit::TestKit;
use coreactor::{Actor, StopReason};
use link_common::{Event, Log, Node, NodeMsg, unlink_requested};
use std::time::Duration;

#[test]
fn server_shutdown_takes_its_clients_down_first() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let c1 = kit.spawn_on(1, Node::new("c1", &log).link(&server.actor_ref()));
    let c2 = kit.spawn_on(0, Node::new("c2", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert_eq!(kit.state(&c1), State::Operational);
    assert_eq!(kit.state(&c2), State::Operational);

    server.stop().unwrap();
    kit.run_until_idle();
    for a in [&c1, &c2] {
        assert_eq!(kit.state(a), State::ShutDown);
    }
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(
        log.reason("c1"),
        Some(unlink_requested(StopReason::Requested))
    );
    assert_eq!(
        log.reason("c2"),
        Some(unlink_requested(StopReason::Requested))
    );
    assert_eq!(log.reason("server"), Some(StopReason::Requested));
    assert_eq!(log.stop_order().last(), Some(&"server"));
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn server_waits_for_a_client_that_holds_its_shutdown() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(
        1,
        Node::new("client", &log)
            .link(&server.actor_ref())
            .hold_shutdown(),
    );
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShuttingDown);
    assert_eq!(kit.state(&server), State::ShuttingDown);
    client.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(log.stop_order(), vec!["client", "server"]);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn unanswered_unlink_is_bounded_by_the_shutdown_timeout() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(
        1,
        Node::new("client", &log)
            .link(&server.actor_ref())
            .hold_shutdown(),
    );
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    kit.advance(DEFAULT_SHUTDOWN_TIMEOUT - Duration::from_millis(10));
    assert_eq!(kit.state(&server), State::ShuttingDown);
    kit.advance(Duration::from_millis(20));
    // Both S-phases (the client's, held by its resource; the server's, waiting for the
    // client) were forced and reported; the forced client still notified the server.
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(kit.state(&server), State::ShutDown);
    let errors = kit.lifecycle_errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("link-server")),
        "the server's report names the plugin it waited in: {errors:?}"
    );
    assert_eq!(
        log.reason("client"),
        Some(unlink_requested(StopReason::Requested))
    );
}

#[test]
fn client_that_ignores_unlink_survives_its_server() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(
        1,
        Node::new("client", &log)
            .link(&server.actor_ref())
            .survive_unlink(),
    );
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.state(&client), State::Operational);
    assert!(log.events().contains(&Event::UnlinkAsked("client")));
    assert!(kit.ask(&client, NodeMsg::Servers).unwrap().is_empty());
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn intermediate_that_ignores_unlink_answers_at_once_and_keeps_its_clients() {
    // c -> b -> s; b survives s. b must not wait for its own client c to answer s.
    let kit = TestKit::new(2);
    let log = Log::new();
    let s = kit.spawn_on(0, Node::new("s", &log));
    let b = kit.spawn_on(
        1,
        Node::new("b", &log).link(&s.actor_ref()).survive_unlink(),
    );
    let c = kit.spawn_on(0, Node::new("c", &log).link(&b.actor_ref()));
    kit.run_until_idle();
    s.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&s), State::ShutDown);
    assert_eq!(kit.state(&b), State::Operational);
    assert_eq!(kit.state(&c), State::Operational);
    assert_eq!(kit.ask(&b, NodeMsg::Clients).unwrap(), vec![c.actor_ref()]);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

/// Both sides are stopped at once; `first` is the shard stepped first.
fn crossing(first: usize) -> (Log, usize) {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    client.stop().unwrap();
    server.stop().unwrap();
    kit.step(first);
    kit.step(1 - first);
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.shard_stats(0).panics + kit.shard_stats(1).panics, 0);
    (log, kit.lifecycle_errors().len())
}

#[test]
fn unlink_request_and_notify_cross_server_first() {
    // The server's unlink request is in flight when the client, stopping on its own, sends its
    // notify: the server takes the notify as the answer; the request dies with the client.
    let (log, errors) = crossing(0);
    assert_eq!(errors, 0);
    assert_eq!(log.reason("client"), Some(StopReason::Requested));
    assert!(!log.events().contains(&Event::UnlinkAsked("client")));
    assert_eq!(log.stop_order(), vec!["client", "server"]);
}

#[test]
fn unlink_request_and_notify_cross_client_first() {
    // The client is gone before the server asks: the request fails to send, the notify that
    // arrives afterwards is from a client the server no longer knows.
    let (log, errors) = crossing(1);
    assert_eq!(errors, 0);
    assert_eq!(log.reason("client"), Some(StopReason::Requested));
    assert_eq!(log.stop_order(), vec!["client", "server"]);
}

#[test]
fn unlink_request_during_the_clients_own_shutdown_is_answered_from_its_s_phase() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(
        1,
        Node::new("client", &log)
            .link(&server.actor_ref())
            .hold_shutdown(),
    );
    kit.run_until_idle();
    client.stop().unwrap();
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShuttingDown);
    assert_eq!(kit.state(&server), State::ShuttingDown);
    client.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    // `on_unlink` is not consulted once the client is stopping anyway; its reason stands.
    assert!(!log.events().contains(&Event::UnlinkAsked("client")));
    assert_eq!(log.reason("client"), Some(StopReason::Requested));
    assert_eq!(log.stop_order(), vec!["client", "server"]);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

/// a1 -> {a2, a3}, a2 -> a3 (rotor's "proper shutdown order, defined by linkage").
fn triangle(kit: &TestKit, log: &Log) -> [coreactor::Addr<Node>; 3] {
    let a3 = kit.spawn_on(0, Node::new("a3", log));
    let a2 = kit.spawn_on(1, Node::new("a2", log).link(&a3.actor_ref()));
    let a1 = kit.spawn_on(
        0,
        Node::new("a1", log)
            .link(&a2.actor_ref())
            .link(&a3.actor_ref()),
    );
    kit.run_until_idle();
    for a in [&a1, &a2, &a3] {
        assert_eq!(kit.state(a), State::Operational);
    }
    [a1, a2, a3]
}

#[test]
fn simultaneous_shutdown_finishes_in_link_order() {
    for first in 0..2 {
        let kit = TestKit::new(2);
        let log = Log::new();
        let [a1, a2, a3] = triangle(&kit, &log);
        // Stopped servers first, so the order is the links' doing, not the requests'.
        a3.stop().unwrap();
        a2.stop().unwrap();
        a1.stop().unwrap();
        kit.step(first);
        kit.run_until_idle();
        assert_eq!(log.stop_order(), vec!["a1", "a2", "a3"], "first = {first}");
        assert_eq!(log.reason("a3"), Some(StopReason::Requested));
        assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
    }
}

#[test]
fn root_server_shutdown_cascades_in_link_order() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let [_a1, _a2, a3] = triangle(&kit, &log);
    a3.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(log.stop_order(), vec!["a1", "a2", "a3"]);
    assert_eq!(log.reason("a3"), Some(StopReason::Requested));
    assert_eq!(
        log.reason("a2"),
        Some(unlink_requested(StopReason::Requested))
    );
    // a1 heard from a3 or a2 first; either way the root cause is a3's stop.
    let a1 = log.reason("a1").unwrap();
    assert!(matches!(a1, StopReason::UnlinkRequested(_)), "{a1:?}");
    assert_eq!(a1.root(), &StopReason::Requested);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn server_stopping_itself_passes_its_reason_down() {
    struct Quitter;
    impl Actor for Quitter {
        type Msg = ();
        fn handle(&mut self, _: (), ctx: &mut coreactor::Context<'_, Self>) {
            ctx.stop_with(StopReason::Failed("disk".into()));
        }
    }
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Quitter);
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    server.tell(()).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    let reason = log.reason("client").unwrap();
    assert_eq!(reason, unlink_requested(StopReason::Failed("disk".into())));
    assert!(reason.is_failure());
}
