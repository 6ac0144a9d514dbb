//! Registration through the name registry on the test kit: duplicates, registration after
//! start, and names freed by their owner's end.

mod registry_common;

use coreactor::lifecycle::State;
use coreactor::testkit::TestKit;
use coreactor::{ActorRef, RegistryError, StopReason};
use registry_common::*;

#[test]
fn duplicate_name_fails_the_second_init() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let first = kit.spawn_on(0, Service::new("first", &["db"], &tx));
    kit.run_until_idle();
    let second = kit.spawn_on(1, Service::new("second", &["other", "db"], &tx));
    kit.run_until_idle();
    assert_eq!(kit.state(&first), State::Operational);
    assert_eq!(kit.state(&second), State::ShutDown);
    let ev = drain(&rx);
    let reason = stopped_in(&ev, "second").expect("the second init failed");
    assert!(
        init_failed_with(&reason, &RegistryError::AlreadyRegistered("db".into())),
        "{reason:?}"
    );
    assert!(reason.is_failure());
    assert!(!ev.contains(&Event::Started("second")));

    // "db" still names the first; "other", registered by the failed actor, is gone again.
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    find(&seeker, "db", false, 1);
    find(&seeker, "other", false, 2);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 1), Some(Ok(ActorRef::from(&first))));
    assert_eq!(
        found_in(&ev, "seeker", 2),
        Some(Err(RegistryError::UnknownName("other".into())))
    );
    let s = stats(&kit);
    assert_eq!((s.names, s.actors), (1, 1));
}

#[test]
fn registering_the_same_name_twice_fails() {
    let kit = TestKit::with_registry(1);
    let (tx, rx) = events();
    let svc = kit.spawn_on(0, Service::new("svc", &["db", "db"], &tx));
    kit.run_until_idle();
    assert_eq!(kit.state(&svc), State::ShutDown);
    let reason = stopped_in(&drain(&rx), "svc").expect("stopped");
    assert!(
        init_failed_with(&reason, &RegistryError::AlreadyRegistered("db".into())),
        "{reason:?}"
    );
    assert_eq!(stats(&kit).names, 0);
}

#[test]
fn register_after_start() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let a = kit.spawn_on(0, Service::new("a", &["a"], &tx));
    let b = kit.spawn_on(1, Service::new("b", &["b"], &tx));
    kit.run_until_idle();
    a.tell(ServiceMsg::Register("a2".into())).unwrap();
    kit.run_until_idle();
    a.tell(ServiceMsg::ReportNames).unwrap();
    kit.run_until_idle();
    assert!(drain(&rx).contains(&Event::Names("a", vec!["a".into(), "a2".into()])));

    // A refused registration after start stops the actor with the registry's reason.
    b.tell(ServiceMsg::Register("a2".into())).unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&b), State::ShutDown);
    assert_eq!(
        stopped_in(&drain(&rx), "b"),
        Some(StopReason::Registry(RegistryError::AlreadyRegistered(
            "a2".into()
        )))
    );
    assert_eq!(kit.state(&a), State::Operational);
}

#[test]
fn a_name_is_free_again_after_its_owner_stops() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let first = kit.spawn_on(0, Service::new("first", &["db"], &tx));
    kit.run_until_idle();
    first.stop().unwrap();
    kit.run_until_idle();
    let second = kit.spawn_on(1, Service::new("second", &["db"], &tx));
    let seeker = kit.spawn_on(0, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    assert_eq!(kit.state(&second), State::Operational);
    find(&seeker, "db", false, 1);
    kit.run_until_idle();
    assert_eq!(
        found_in(&drain(&rx), "seeker", 1),
        Some(Ok(ActorRef::from(&second)))
    );
}

#[test]
fn registry_on_another_shard_of_the_kit() {
    let kit = TestKit::new(3);
    let registry = kit.start_registry(2);
    assert_eq!(kit.registry().map(|r| r.shard()), Some(2));
    let (tx, rx) = events();
    let svc = kit.spawn_on(0, Service::new("svc", &["db"], &tx));
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    find(&seeker, "db", false, 1);
    kit.run_until_idle();
    assert_eq!(
        found_in(&drain(&rx), "seeker", 1),
        Some(Ok(ActorRef::from(&svc)))
    );
    let names = kit
        .ask(&registry, coreactor::registry::RegistryMsg::Names)
        .unwrap();
    assert_eq!(names, vec![("db".to_string(), ActorRef::from(&svc))]);
}
