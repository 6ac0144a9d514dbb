//! Establishing links on the test kit (virtual time, shards stepped by hand): a client is
//! operational only once its server accepted; `operational_only` links wait for the server's
//! start; links asked after the I-phase report through their callback; `unlink` lets go.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod link_common;

use coreactor::lifecycle::State;
use coreactor::plugins::link::LinkOptions;
use coreactor::testkit::TestKit;
use link_common::{Log, Node, NodeMsg};

const NOT_OPERATIONAL_ONLY: LinkOptions = LinkOptions {
    operational_only: false,
};

#[test]
fn client_is_operational_only_after_the_server_accepted() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    // Only the client's shard runs: the request is sent, not answered.
    kit.step(1);
    kit.step(1);
    assert_eq!(kit.state(&client), State::Initializing);
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Operational);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(
        kit.ask(&client, NodeMsg::Servers).unwrap(),
        vec![server.actor_ref()]
    );
    assert_eq!(
        kit.ask(&server, NodeMsg::Clients).unwrap(),
        vec![client.actor_ref()]
    );
}

#[test]
fn operational_only_link_waits_for_the_server_start() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_init());
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Initializing);
    assert_eq!(kit.state(&client), State::Initializing);
    // A pending request is not a linked client yet.
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());

    server.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Operational);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(
        kit.ask(&server, NodeMsg::Clients).unwrap(),
        vec![client.actor_ref()]
    );
}

#[test]
fn chain_of_operational_only_links_starts_server_first() {
    // c -> s1 -> s2: nobody is operational before s2 starts.
    let kit = TestKit::new(2);
    let log = Log::new();
    let s2 = kit.spawn_on(0, Node::new("s2", &log).hold_init());
    let s1 = kit.spawn_on(1, Node::new("s1", &log).link(&s2.actor_ref()));
    let c = kit.spawn_on(0, Node::new("c", &log).link(&s1.actor_ref()));
    kit.run_until_idle();
    for state in [kit.state(&s2), kit.state(&s1), kit.state(&c)] {
        assert_eq!(state, State::Initializing);
    }
    s2.tell(NodeMsg::Release).unwrap();
    kit.run_until_idle();
    for state in [kit.state(&s2), kit.state(&s1), kit.state(&c)] {
        assert_eq!(state, State::Operational);
    }
}

#[test]
fn link_to_an_initializing_server_is_accepted_at_once_when_not_operational_only() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log).hold_init());
    let client = kit.spawn_on(
        1,
        Node::new("client", &log).link_with(&server.actor_ref(), NOT_OPERATIONAL_ONLY),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Initializing);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(
        kit.ask(&server, NodeMsg::Clients).unwrap(),
        vec![client.actor_ref()]
    );
}

#[test]
fn link_then_after_the_init_reports_success() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log));
    kit.run_until_idle();
    client
        .tell(NodeMsg::LinkThen(
            server.actor_ref(),
            LinkOptions::default(),
        ))
        .unwrap();
    kit.run_until_idle();
    assert_eq!(log.link_results("client"), vec![Ok(())]);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(
        kit.ask(&client, NodeMsg::Servers).unwrap(),
        vec![server.actor_ref()]
    );
}

#[test]
fn unlink_lets_the_server_go_without_the_client() {
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    assert!(
        kit.ask(&client, |r| NodeMsg::Unlink(server.actor_ref(), r))
            .unwrap()
    );
    assert!(
        !kit.ask(&client, |r| NodeMsg::Unlink(server.actor_ref(), r))
            .unwrap()
    );
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(log.stop_order(), vec!["server"]);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}

#[test]
fn client_shutdown_releases_the_server() {
    // Controlled shutdown, client-initiated: the server stays, and no longer waits for it.
    let kit = TestKit::new(2);
    let log = Log::new();
    let server = kit.spawn_on(0, Node::new("server", &log));
    let client = kit.spawn_on(1, Node::new("client", &log).link(&server.actor_ref()));
    kit.run_until_idle();
    client.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(kit.state(&server), State::Operational);
    assert!(kit.ask(&server, NodeMsg::Clients).unwrap().is_empty());
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(kit.lifecycle_errors(), Vec::<String>::new());
}
