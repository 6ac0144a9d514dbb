//! The name registry on a real 2-shard runtime (registry on shard 0, used from both shards),
//! with bounded waits: discovery across shards, delayed discovery, duplicate names,
//! unregistration at shutdown as seen by a watcher, and a runtime without a registry.

mod registry_common;

use coreactor::lifecycle::State;
use coreactor::{ActorRef, RegistryError, Runtime, StartError};
use registry_common::*;

fn runtime_with_registry() -> Runtime {
    Runtime::builder()
        .shards(2)
        .with_registry()
        .build()
        .expect("runtime starts")
}

fn started(rx: &crossbeam_channel::Receiver<Event>, seen: &mut Vec<Event>, who: &'static str) {
    wait_event(rx, seen, who, |e| (*e == Event::Started(who)).then_some(()));
}

fn found(
    rx: &crossbeam_channel::Receiver<Event>,
    seen: &mut Vec<Event>,
    seeker: &'static str,
    tag: u32,
) -> Result<ActorRef, RegistryError> {
    wait_event(rx, seen, "a discovery", |e| match e {
        Event::Found(s, t, r) if *s == seeker && *t == tag => Some(r.clone()),
        _ => None,
    })
}

fn stopped(
    rx: &crossbeam_channel::Receiver<Event>,
    seen: &mut Vec<Event>,
    who: &'static str,
) -> coreactor::StopReason {
    wait_event(rx, seen, "a stop", |e| match e {
        Event::Stopped(s, r) if *s == who => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn registry_on_shard_0_serves_shard_1() {
    let rt = runtime_with_registry();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    let svc = rt
        .spawn_on(1, Service::new("svc", &["db", "db-alias"], &tx))
        .unwrap();
    started(&rx, &mut seen, "svc");
    let near = rt.spawn_on(1, Seeker::new("near", &tx)).unwrap();
    let far = rt.spawn_on(0, Seeker::new("far", &tx)).unwrap();
    find(&near, "db", false, 1);
    find(&far, "db-alias", false, 1);
    find(&far, "nobody", false, 2);
    assert_eq!(found(&rx, &mut seen, "near", 1), Ok(ActorRef::from(&svc)));
    assert_eq!(found(&rx, &mut seen, "far", 1), Ok(ActorRef::from(&svc)));
    assert_eq!(
        found(&rx, &mut seen, "far", 2),
        Err(RegistryError::UnknownName("nobody".into()))
    );
    rt.shutdown().unwrap();
}

#[test]
fn delayed_discovery_across_shards() {
    let rt = runtime_with_registry();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    let seeker = rt
        .spawn_on(
            1,
            Seeker::new("seeker", &tx).discovering_in_init("dep", true),
        )
        .unwrap();
    let svc = rt.spawn_on(0, Service::new("svc", &["dep"], &tx)).unwrap();
    assert_eq!(found(&rx, &mut seen, "seeker", 0), Ok(ActorRef::from(&svc)));
    started(&rx, &mut seen, "seeker");
    assert_eq!(seeker.state(), State::Operational);
    rt.shutdown().unwrap();
}

#[test]
fn duplicate_name_fails_init() {
    let rt = runtime_with_registry();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    rt.spawn_on(0, Service::new("first", &["db"], &tx)).unwrap();
    started(&rx, &mut seen, "first");
    rt.spawn_on(1, Service::new("second", &["db"], &tx))
        .unwrap();
    let reason = stopped(&rx, &mut seen, "second");
    assert!(
        init_failed_with(&reason, &RegistryError::AlreadyRegistered("db".into())),
        "{reason:?}"
    );
    rt.shutdown().unwrap();
}

#[test]
fn watcher_told_of_the_end_gets_unknown_name() {
    let rt = runtime_with_registry();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    for round in 0..20u32 {
        let name = format!("svc-{round}");
        // Service and watcher on shard 1, then both arrangements across shards.
        let (svc_shard, watcher_shard) = [(1, 1), (1, 0), (0, 1)][round as usize % 3];
        let watcher = rt
            .spawn_on(watcher_shard, Seeker::new("watcher", &tx))
            .unwrap();
        let svc = rt
            .spawn_on(
                svc_shard,
                Service::new("svc", &[&name], &tx).watched_by(&watcher),
            )
            .unwrap();
        started(&rx, &mut seen, "svc");
        svc.stop().unwrap();
        assert_eq!(
            found(&rx, &mut seen, "watcher", 99),
            Err(RegistryError::UnknownName(name)),
            "round {round}"
        );
        watcher.stop().unwrap();
        stopped(&rx, &mut seen, "watcher");
        seen.clear();
    }
    rt.shutdown().unwrap();
}

#[test]
fn no_registry_is_unavailable() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    rt.spawn_on(1, Service::new("svc", &["db"], &tx)).unwrap();
    let reason = stopped(&rx, &mut seen, "svc");
    assert!(
        init_failed_with(&reason, &RegistryError::Unavailable),
        "{reason:?}"
    );
    let seeker = rt.spawn_on(0, Seeker::new("seeker", &tx)).unwrap();
    find(&seeker, "db", true, 1);
    assert_eq!(
        found(&rx, &mut seen, "seeker", 1),
        Err(RegistryError::Unavailable)
    );
    rt.shutdown().unwrap();
}

#[test]
fn registry_on_a_missing_shard_is_a_config_error() {
    let err = Runtime::builder()
        .shards(2)
        .registry_on(5)
        .build()
        .unwrap_err();
    match err {
        StartError::Config(e) => assert_eq!(e.field(), "registry"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn registry_on_shard_1() {
    let rt = Runtime::builder().shards(2).registry_on(1).build().unwrap();
    let (tx, rx) = events();
    let mut seen = Vec::new();
    let svc = rt.spawn_on(0, Service::new("svc", &["db"], &tx)).unwrap();
    let seeker = rt.spawn_on(0, Seeker::new("seeker", &tx)).unwrap();
    started(&rx, &mut seen, "svc");
    find(&seeker, "db", false, 1);
    let found = found(&rx, &mut seen, "seeker", 1).unwrap();
    assert_eq!(found, ActorRef::from(&svc));
    rt.shutdown().unwrap();
}
