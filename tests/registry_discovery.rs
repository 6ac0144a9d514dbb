//! Discovery through the name registry on the test kit (virtual time): unknown names,
//! aliases, typed lookups, delayed discovery before and after registration, its timeout and
//! cancellation, discoveries that hold the I-phase, and a runtime without a registry.

mod registry_common;

use coreactor::lifecycle::{DEFAULT_INIT_TIMEOUT, State};
use coreactor::testkit::TestKit;
use coreactor::{ActorRef, RegistryError, StopReason};
use registry_common::*;
use std::time::Duration;

#[test]
fn unknown_name() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    find(&seeker, "nobody", false, 1);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(
        found_in(&ev, "seeker", 1),
        Some(Err(RegistryError::UnknownName("nobody".into())))
    );
}

#[test]
fn discover_registered_name() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let svc = kit.spawn_on(1, Service::new("svc", &["db"], &tx));
    let seeker = kit.spawn_on(0, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    assert_eq!(kit.state(&svc), State::Operational);
    find(&seeker, "db", false, 1);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 1), Some(Ok(ActorRef::from(&svc))));
}

#[test]
fn aliases_name_one_actor() {
    let kit = TestKit::with_registry(1);
    let (tx, rx) = events();
    let svc = kit.spawn_on(0, Service::new("svc", &["a", "b", "c"], &tx));
    let seeker = kit.spawn_on(0, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    for (tag, name) in ["a", "b", "c"].into_iter().enumerate() {
        find(&seeker, name, false, tag as u32);
    }
    svc.tell(ServiceMsg::ReportNames).unwrap();
    kit.run_until_idle();
    let ev = drain(&rx);
    for tag in 0..3 {
        assert_eq!(found_in(&ev, "seeker", tag), Some(Ok(ActorRef::from(&svc))));
    }
    assert!(ev.contains(&Event::Names(
        "svc",
        vec!["a".into(), "b".into(), "c".into()]
    )));
    let s = stats(&kit);
    assert_eq!((s.names, s.actors, s.waiting), (3, 1, 0));

    // Dropping one alias keeps the others.
    svc.tell(ServiceMsg::Unregister("b".into())).unwrap();
    find(&seeker, "b", false, 10);
    find(&seeker, "c", false, 11);
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(
        found_in(&ev, "seeker", 10),
        Some(Err(RegistryError::UnknownName("b".into())))
    );
    assert_eq!(found_in(&ev, "seeker", 11), Some(Ok(ActorRef::from(&svc))));
    assert_eq!(stats(&kit).names, 2);
}

#[test]
fn wrong_type() {
    let kit = TestKit::with_registry(1);
    let (tx, rx) = events();
    kit.spawn_on(0, Service::new("svc", &["db"], &tx));
    let seeker = kit.spawn_on(0, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    seeker
        .tell(SeekerMsg::FindSeeker {
            name: "db".into(),
            tag: 1,
        })
        .unwrap();
    kit.run_until_idle();
    let ev = drain(&rx);
    match found_in(&ev, "seeker", 1) {
        Some(Err(RegistryError::WrongType {
            name,
            expected,
            found,
        })) => {
            assert_eq!(name, "db");
            assert!(expected.ends_with("::Seeker"), "{expected}");
            assert!(found.ends_with("::Service"), "{found}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
}

#[test]
fn delayed_discovery_before_registration() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    find(&seeker, "late", true, 1);
    find(&seeker, "late", true, 2);
    kit.run_until_idle();
    assert_eq!(found_in(&drain(&rx), "seeker", 1), None, "still waiting");
    assert_eq!(stats(&kit).waiting, 2);

    let svc = kit.spawn_on(0, Service::new("svc", &["late"], &tx));
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 1), Some(Ok(ActorRef::from(&svc))));
    assert_eq!(found_in(&ev, "seeker", 2), Some(Ok(ActorRef::from(&svc))));
    assert_eq!(stats(&kit).waiting, 0);
}

#[test]
fn delayed_discovery_after_registration() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let svc = kit.spawn_on(0, Service::new("svc", &["early"], &tx));
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    find(&seeker, "early", true, 1);
    kit.run_until_idle();
    assert_eq!(
        found_in(&drain(&rx), "seeker", 1),
        Some(Ok(ActorRef::from(&svc)))
    );
    assert_eq!(stats(&kit).waiting, 0);
}

#[test]
fn delayed_discovery_times_out_after_the_init_timeout() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    find(&seeker, "never", true, 1);
    kit.run_until_idle();
    kit.advance(DEFAULT_INIT_TIMEOUT - Duration::from_millis(10));
    assert_eq!(found_in(&drain(&rx), "seeker", 1), None, "not yet");
    kit.advance(Duration::from_millis(20));
    assert_eq!(
        found_in(&drain(&rx), "seeker", 1),
        Some(Err(RegistryError::Timeout("never".into())))
    );
    // The registry dropped the parked discovery; a later registration answers nobody.
    assert_eq!(stats(&kit).waiting, 0);
    kit.spawn_on(0, Service::new("svc", &["never"], &tx));
    kit.run_until_idle();
    assert_eq!(found_in(&drain(&rx), "seeker", 1), None);
    assert_eq!(kit.state(&seeker), State::Operational);
}

#[test]
fn cancel_delayed_discovery() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    find(&seeker, "later", true, 1);
    find(&seeker, "later", true, 2);
    kit.run_until_idle();
    assert_eq!(stats(&kit).waiting, 2);
    seeker.tell(SeekerMsg::Cancel(1)).unwrap();
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(
        found_in(&ev, "seeker", 1),
        Some(Err(RegistryError::Cancelled("later".into())))
    );
    assert_eq!(
        stats(&kit).waiting,
        1,
        "the registry dropped the cancelled one"
    );

    let svc = kit.spawn_on(0, Service::new("svc", &["later"], &tx));
    kit.run_until_idle();
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 1), None, "answered once only");
    assert_eq!(found_in(&ev, "seeker", 2), Some(Ok(ActorRef::from(&svc))));
}

#[test]
fn discovery_in_init_holds_the_i_phase() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(
        1,
        Seeker::new("seeker", &tx).discovering_in_init("dep", true),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&seeker), State::Initializing);
    let svc = kit.spawn_on(0, Service::new("svc", &["dep"], &tx));
    kit.run_until_idle();
    assert_eq!(kit.state(&seeker), State::Operational);
    let ev = drain(&rx);
    assert_eq!(found_in(&ev, "seeker", 0), Some(Ok(ActorRef::from(&svc))));
    assert!(ev.contains(&Event::Started("seeker")));
}

#[test]
fn failed_discovery_in_init_fails_the_init() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(
        1,
        Seeker::new("seeker", &tx).discovering_in_init("dep", false),
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&seeker), State::ShutDown);
    let ev = drain(&rx);
    let reason = stopped_in(&ev, "seeker").expect("stopped");
    assert!(
        init_failed_with(&reason, &RegistryError::UnknownName("dep".into())),
        "{reason:?}"
    );
    assert_eq!(found_in(&ev, "seeker", 0), None, "then is not called");
    assert!(!ev.contains(&Event::Started("seeker")));
}

#[test]
fn delayed_discovery_in_init_times_out() {
    let kit = TestKit::with_registry(2);
    let (tx, rx) = events();
    let seeker = kit.spawn_on(
        1,
        Seeker::new("seeker", &tx).discovering_in_init("dep", true),
    );
    kit.run_until_idle();
    kit.advance(DEFAULT_INIT_TIMEOUT + Duration::from_millis(10));
    assert_eq!(kit.state(&seeker), State::ShutDown);
    let reason = stopped_in(&drain(&rx), "seeker").expect("stopped");
    // The discovery's own timeout and the init timeout expire together; either fails the init.
    assert!(
        init_failed_with(&reason, &RegistryError::Timeout("dep".into()))
            || reason == StopReason::InitTimeout,
        "{reason:?}"
    );
    assert_eq!(stats(&kit).waiting, 0);
}

#[test]
fn no_registry_is_unavailable() {
    let kit = TestKit::new(2);
    assert!(kit.registry().is_none());
    let (tx, rx) = events();
    let svc = kit.spawn_on(0, Service::new("svc", &["db"], &tx));
    let seeker = kit.spawn_on(1, Seeker::new("seeker", &tx));
    kit.run_until_idle();
    find(&seeker, "db", false, 1);
    find(&seeker, "db", true, 2);
    kit.run_until_idle();
    assert_eq!(kit.state(&svc), State::ShutDown);
    let ev = drain(&rx);
    let reason = stopped_in(&ev, "svc").expect("the service's init failed");
    assert!(
        init_failed_with(&reason, &RegistryError::Unavailable),
        "{reason:?}"
    );
    assert_eq!(
        found_in(&ev, "seeker", 1),
        Some(Err(RegistryError::Unavailable))
    );
    assert_eq!(
        found_in(&ev, "seeker", 2),
        Some(Err(RegistryError::Unavailable))
    );
}
