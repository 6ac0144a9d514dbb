//! Links that fail, on the test kit (virtual time): a dead server, a server that never
//! answers, a shutting-down server, a double link, a link to oneself, and failures after the
//! I-phase (with and without a callback). The client's reason is asserted exactly.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod link_common;

use coreactor::lifecycle::{ChildOptions, DEFAULT_INIT_TIMEOUT, State};
use coreactor::plugins::link::LinkOptions;
use coreactor::testkit::TestKit;
use coreactor::{Actor, Addr, Context, LinkError, Reply, StopReason};
use link_common::{Log, Node, NodeMsg, link_failed};
use std::time::Duration;

#[test]
fn link_to_a_dead_server_fails_the_init_at_once() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);

    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    // One step of the client's shard: no answer needed, no time passes.
    kit.step(1);
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(log.reason("client"), Some(link_failed(LinkError::NoServer)));
}

#[test]
fn server_going_down_with_the_request_queued_answers_no_server() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    kit.run_until_idle();
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    // The request is on its way (the client's shard ran), then the server is stopped before its
    // shard runs: it shuts down with the request still queued.
    kit.step(1);
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.state(&client), State::ShutDown);
    // The request was dropped unanswered with the server: its destructor answered.
    assert_eq!(log.reason("client"), Some(link_failed(LinkError::NoServer)));
    assert_eq!(kit.now(), Duration::ZERO, "no timeout was needed");
}

/// Spawns supervised children and never starts them: they stay `Initialized` forever.
struct NeglectfulParent {
    log: Log,
}

impl Actor for NeglectfulParent {
    type Msg = Reply<Addr<Node>>;
    fn handle(&mut self, reply: Reply<Addr<Node>>, ctx: &mut Context<'_, Self>) {
        let log = self.log.clone();
        let child = ctx
            .spawn_child_on(0, ChildOptions::default(), move || {
                Node::new("server", &log)
            })
            .unwrap();
        reply.send(child);
    }
}

#[test]
fn link_without_answer_times_out_with_the_init_timeout() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let parent = kit.spawn_on(0, NeglectfulParent { log: log.clone() });
    let server = kit.ask(&parent, |r| r).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Initialized);

    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::Initializing);
    kit.advance(DEFAULT_INIT_TIMEOUT - Duration::from_millis(10));
    assert_eq!(kit.state(&client), State::Initializing);
    // The link's timer and the core's init timer expire together: the link failure is the
    // reason, not the generic init timeout.
    kit.advance(Duration::from_millis(20));
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(log.reason("client"), Some(link_failed(LinkError::Timeout)));
    // The abandoned request was withdrawn at the server: it never became a client.
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
    assert_eq!(kit.state(&server), State::Initialized);
}

#[test]
fn link_to_a_shutting_down_server_is_not_linkable() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_shutdown());
    kit.run_until_idle();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShuttingDown);

    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(
        log.reason("client"),
        Some(link_failed(LinkError::NotLinkable))
    );
    server.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn server_failing_its_init_refuses_its_pending_clients() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_init());
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::Initializing);
    server.stop().unwrap();
    kit.run_until_idle();
    // The server's S-phase refused the pending link.
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(log.reason("server"), Some(StopReason::Requested));
    assert_eq!(
        log.reason("client"),
        Some(link_failed(LinkError::NotLinkable))
    );
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn double_link_is_already_linked() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(
        1,
        Node::new("client", &log)
            .link(&server.actor_ref())
            .link(&server.actor_ref()),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(
        log.reason("client"),
        Some(link_failed(LinkError::AlreadyLinked))
    );
    // The first link was released when the client went down.
    assert_eq!(kit.state(&server), State::Operational);
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
}

#[test]
fn double_link_after_the_init_is_reported_to_the_callback() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    client
        .tell(NodeMsg::LinkThen(
            server.actor_ref(),
            LinkOptions::default(),
        ))
        .unwrap();
    kit.run_until_idle();
    assert_eq!(
        log.link_results("client"),
        vec![Err(LinkError::AlreadyLinked)]
    );
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(
        kit.ask(&client, NodeMsg::Servers).unwrap(),
        vec![server.actor_ref()]
    );
}

#[test]
fn link_to_oneself_is_not_linkable() {
    struct Narcissus;
    impl Actor for Narcissus {
        type Msg = ();
        fn init(&mut self, ctx: &mut Context<'_, Self>) {
            let me = ctx.actor_ref();
            ctx.link(&me);
        }
        fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
        fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
            assert_eq!(*reason, link_failed(LinkError::NotLinkable));
        }
    }
    let kit = TestKit::new(1);
    let n = kit.spawn_on(0, Narcissus);
    kit.run_until_idle();
    assert_eq!(kit.state(&n), State::ShutDown);
    assert_eq!(kit.shard_stats(0).panics, 0);
}

#[test]
fn failure_after_the_init_without_callback_stops_the_client() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let dead = kit.spawn_on(0, Node::new("dead", &log));
    let client = kit.spawn_on(1, Node::new("client", &log));
    kit.run_until_idle();
    dead.stop().unwrap();
    kit.run_until_idle();
    client.tell(NodeMsg::Link(dead.actor_ref())).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(
        log.reason("client"),
        Some(StopReason::LinkFailed(LinkError::NoServer))
    );
}

#[test]
fn failure_after_the_init_with_callback_keeps_the_client() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let dead = kit.spawn_on(0, Node::new("dead", &log));
    let client = kit.spawn_on(1, Node::new("client", &log));
    kit.run_until_idle();
    dead.stop().unwrap();
    kit.run_until_idle();
    client
        .tell(NodeMsg::LinkThen(dead.actor_ref(), LinkOptions::default()))
        .unwrap();
    kit.run_until_idle();
    assert_eq!(log.link_results("client"), vec![Err(LinkError::NoServer)]);
    assert_eq!(kit.state(&client), State::Operational);
}

#[test]
fn client_stopped_while_its_link_is_pending_withdraws_it() {
    // rotor's "auto-unlink on shutdown": the answer arrives after the client is gone.
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_init());
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    client.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(log.reason("client"), Some(StopReason::Requested));

    server.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Operational);
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn late_answer_after_the_client_shut_down_is_harmless() {
    // The server accepts in the same round in which the client is stopped: the answer meets
    // a dead client, the client's notify meets the server.
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_init());
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    server.tell(NodeMsg::Release).unwrap();
    client.stop().unwrap();
    kit.step(0);
    kit.step(1);
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(kit.state(&server), State::Operational);
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
    assert_eq!(kit.shard_stats(0).panics + kit.shard_stats(1).panics, 0);
}
