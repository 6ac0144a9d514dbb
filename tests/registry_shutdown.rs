//! The registry and actor shutdown, on the test kit: names are dropped in the owner's S-phase
//! before it is `ShutDown` (so whoever is told of its end cannot discover it any more),
//! pending discoveries are cancelled, and a registry that stops answers what it parked.

mod registry_common;

use coreactor::lifecycle::State;
use coreactor::testkit::TestKit;
use coreactor::{ActorRef, RegistryError};
use registry_common::*;

#[test]
fn names_are_unregistered_at_shutdown() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let svc = kit.spawn_on(1, Service::new("svc", &["a", "b"], &tx));
    let seeker = kit.spawn_on(0, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    assert_eq!(stats(&kit).names, 2);
    svc.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&svc), State::ShutDown);
    find(&seeker, "a", false, 1);
    find(&seeker, "b", true, 2);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(
        found_in(&ev, "seeker", 1),
        Some(Err(RegistryError::UnknownName("a".into())))
    );
    assert_eq!(found_in(&ev, "seeker", 2), None, "parked, not answered");
    let s = stats(&kit);
    assert_eq!((s.names, s.actors, s.waiting), (0, 0, 1));
}

#[test]
fn shutdown_waits_for_the_registry_acknowledgement() {
    let kit = TestKit::with_registry(2);
    let (tx, _rx) = events();
    let svc = kit.spawn_on(1, Service::new("svc", &["db"], &tx));
    kit.run_until_idle();
    svc.stop().unwrap();
    // Shard 1 alone: the S-phase starts and waits for the registry on shard 0.
    kit.step(1);
    kit.step(1);
    assert_eq!(kit.state(&svc), State::ShuttingDown);
    assert_eq!(svc.actor_ref().state(), State::ShuttingDown);
    // The registry drops the name and acknowledges; then the actor finishes.
    kit.step(0);
    kit.step(1);
    assert_eq!(kit.state(&svc), State::ShutDown);
    assert_eq!(stats(&kit).names, 0);
}

#[test]
fn a_watcher_told_of_the_end_cannot_discover_the_name() {
    // The registry, the watcher and the service on three different shards, so nothing but the
    // S-phase's acknowledgement orders "names dropped" before "watcher told".
    let kit = TestKit::new(3);
    kit.start_registry(0);
    let (tx, rx) = events();
    let watcher = kit.spawn_on(1, Seeker::new("watcher", &tx));
    let svc = kit.spawn_on(2, Service::new("svc", &["db"], &tx).watched_by(&watcher));
    kit.run_until_idle();
    find(&watcher, "db", false, 1);
    kit.run_until_idle();
    assert_eq!(
        found_in(&drain(&rx), "watcher", 1),
        Some(Ok(ActorRef::from(&svc)))
    );
    svc.stop().unwrap();
    // The most adverse order: the service's shard, then the watcher's, then the registry's
    // (which takes its inbound rings in shard order, the watcher's before the service's).
    kit.step(2);
    kit.step(1);
    kit.step(0);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert!(stopped_in(&ev, "svc").is_some());
    assert_eq!(
        found_in(&ev, "watcher", 99),
        Some(Err(RegistryError::UnknownName("db".into())))
    );
}

#[test]
fn pending_discoveries_are_cancelled_at_shutdown() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    find(&seeker, "x", true, 1);
    find(&seeker, "y", true, 2);
    kit.run_until_idle();
    assert_eq!(stats(&kit).waiting, 2);
    seeker.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&seeker), State::ShutDown);
    assert_eq!(stats(&kit).waiting, 0);
    kit.spawn_on(0, Service::new("svc", &["x"], &tx));
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 1), None, "then is not called");
    assert!(
        kit.lifecycle_errors().is_empty(),
        "{:?}",
        kit.lifecycle_errors()
    );
}

#[test]
fn init_failure_while_waiting_cancels_the_discovery() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(
        1,
        Seeker::new("seeker", &tx).discovering_in_init("dep", true),
    );
    kit.run_until_idle();
    assert_eq!(stats(&kit).waiting, 1);
    seeker.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&seeker), State::ShutDown);
    assert_eq!(stats(&kit).waiting, 0);
    assert!(stopped_in(&drain(&rx), "seeker").is_some());
}

#[test]
fn a_stopped_registry_answers_unavailable() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    let svc = kit.spawn_on(1, Service::new("svc", &["db"], &tx));
    find(&seeker, "later", true, 1);
    kit.run_until_idle();
    kit.registry().unwrap().stop().unwrap();
    kit.run_until_idle();
    find(&seeker, "db", false, 2);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(
        found_in(&ev, "seeker", 1),
        Some(Err(RegistryError::Unavailable))
    );
    assert_eq!(
        found_in(&ev, "seeker", 2),
        Some(Err(RegistryError::Unavailable))
    );
    // An owner whose registry is gone does not wait for it at shutdown.
    svc.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&svc), State::ShutDown);
    assert!(
        kit.lifecycle_errors().is_empty(),
        "{:?}",
        kit.lifecycle_errors()
    );
}
