//! Actors and helpers shared by the `registry_*` tests: a `Service` that registers names, a
//! `Seeker` that discovers them, and an event channel both report to.
//!
//! Events travel over an unbounded crossbeam channel, so the actors never block and the tests
//! read them after `run_until_idle` (test kit) or with a bounded wait (real runtime).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use coreactor::plugins::registry::DiscoveryId;
use coreactor::testkit::TestKit;
use coreactor::{Actor, ActorRef, Addr, Context, RegistryError, StopReason};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::time::Duration;

/// How long a real-runtime test waits for one event before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What the test actors report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An actor became operational.
    Started(&'static str),
    /// An actor shut down, with its reason.
    Stopped(&'static str, StopReason),
    /// A discovery made by seeker `.0` with tag `.1` ended with `.2`.
    Found(&'static str, u32, Result<ActorRef, RegistryError>),
    /// A service's confirmed names.
    Names(&'static str, Vec<String>),
}

/// An event channel.
pub fn events() -> (Sender<Event>, Receiver<Event>) {
    crossbeam_channel::unbounded()
}

/// An actor that registers `names` in its I-phase.
pub struct Service {
    pub label: &'static str,
    pub names: Vec<String>,
    pub events: Sender<Event>,
    /// Told `SeekerMsg::Down` when this service is shut down.
    pub watcher: Option<Addr<Seeker>>,
}

/// What a [`Service`] handles.
pub enum ServiceMsg {
    /// Register one more name (the actor is operational).
    Register(String),
    /// Drop one of its names.
    Unregister(String),
    /// Report its confirmed names.
    ReportNames,
}

impl Service {
    pub fn new(label: &'static str, names: &[&str], events: &Sender<Event>) -> Service {
        Service {
            label,
            names: names.iter().map(|n| n.to_string()).collect(),
            events: events.clone(),
            watcher: None,
        }
    }

    pub fn watched_by(mut self, watcher: &Addr<Seeker>) -> Service {
        self.watcher = Some(watcher.clone());
        self
    }
}

impl Actor for Service {
    type Msg = ServiceMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        for n in &self.names {
            ctx.register_name(n.clone());
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        let _ = self.events.send(Event::Started(self.label));
    }

    fn handle(&mut self, msg: ServiceMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ServiceMsg::Register(n) => ctx.register_name(n),
            ServiceMsg::Unregister(n) => ctx.unregister_name(&n),
            ServiceMsg::ReportNames => {
                let _ = self
                    .events
                    .send(Event::Names(self.label, ctx.registered_names()));
            }
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        let _ = self.events.send(Event::Stopped(self.label, reason.clone()));
        if let Some(w) = &self.watcher {
            // Told after this actor is shut down; the watcher then looks the name up.
            let _ = w.tell(SeekerMsg::Down(self.names[0].clone()));
        }
    }
}

/// An actor that discovers names on request and reports every outcome.
pub struct Seeker {
    pub label: &'static str,
    pub events: Sender<Event>,
    /// A discovery to make in the I-phase (name, delayed), reported with tag 0.
    pub in_init: Option<(String, bool)>,
    pending: HashMap<u32, DiscoveryId>,
}

/// What a [`Seeker`] handles.
pub enum SeekerMsg {
    /// Discover a `Service` named `name` (waiting for it if `delayed`), reporting with `tag`.
    Find {
        name: String,
        delayed: bool,
        tag: u32,
    },
    /// Discover `name` expecting a `Seeker` (to provoke `WrongType`).
    FindSeeker { name: String, tag: u32 },
    /// Cancel the discovery tagged `tag`.
    Cancel(u32),
    /// A discovery ended.
    Found(u32, Result<ActorRef, RegistryError>),
    /// A service named `.0` was shut down: look the name up at once (tag 99).
    Down(String),
}

impl Seeker {
    pub fn new(label: &'static str, events: &Sender<Event>) -> Seeker {
        Seeker {
            label,
            events: events.clone(),
            in_init: None,
            pending: HashMap::new(),
        }
    }

    pub fn discovering_in_init(mut self, name: &str, delayed: bool) -> Seeker {
        self.in_init = Some((name.to_string(), delayed));
        self
    }

    fn find(&mut self, ctx: &mut Context<'_, Self>, name: String, delayed: bool, tag: u32) {
        let then = move |r: Result<Addr<Service>, RegistryError>| {
            SeekerMsg::Found(tag, r.map(ActorRef::from))
        };
        let id = if delayed {
            ctx.discover_delayed::<Service>(name, then)
        } else {
            ctx.discover::<Service>(name, then)
        };
        self.pending.insert(tag, id);
    }
}

impl Actor for Seeker {
    type Msg = SeekerMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        if let Some((name, delayed)) = self.in_init.clone() {
            self.find(ctx, name, delayed, 0);
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        let _ = self.events.send(Event::Started(self.label));
    }

    fn handle(&mut self, msg: SeekerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            SeekerMsg::Find { name, delayed, tag } => self.find(ctx, name, delayed, tag),
            SeekerMsg::FindSeeker { name, tag } => {
                ctx.discover::<Seeker>(name, move |r| SeekerMsg::Found(tag, r.map(ActorRef::from)));
            }
            SeekerMsg::Cancel(tag) => {
                let id = self.pending.remove(&tag).expect("a known tag");
                assert!(ctx.cancel_discovery(id), "the discovery was pending");
                assert!(!ctx.cancel_discovery(id), "cancelling twice is a no-op");
            }
            SeekerMsg::Found(tag, r) => {
                self.pending.remove(&tag);
                let _ = self.events.send(Event::Found(self.label, tag, r));
            }
            SeekerMsg::Down(name) => self.find(ctx, name, false, 99),
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        let _ = self.events.send(Event::Stopped(self.label, reason.clone()));
    }
}

/// The events received so far (test kit: call after `run_until_idle`).
pub fn drain(rx: &Receiver<Event>) -> Vec<Event> {
    rx.try_iter().collect()
}

/// The outcome of the discovery of `seeker` tagged `tag` among `events`, if any.
pub fn found_in(
    events: &[Event],
    seeker: &str,
    tag: u32,
) -> Option<Result<ActorRef, RegistryError>> {
    events.iter().find_map(|e| match e {
        Event::Found(s, t, r) if *s == seeker && *t == tag => Some(r.clone()),
        _ => None,
    })
}

/// The stop reason of `who` among `events`, if it stopped.
pub fn stopped_in(events: &[Event], who: &str) -> Option<StopReason> {
    events.iter().find_map(|e| match e {
        Event::Stopped(s, r) if *s == who => Some(r.clone()),
        _ => None,
    })
}

/// Waits (bounded) for the first event `pick` accepts, keeping the others in `seen`.
pub fn wait_event<T>(
    rx: &Receiver<Event>,
    seen: &mut Vec<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    if let Some(v) = seen.iter().find_map(&mut pick) {
        return v;
    }
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => {
                let v = pick(&e);
                seen.push(e);
                if let Some(v) = v {
                    return v;
                }
            }
            Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}; saw {seen:?}"),
        }
    }
}

/// Asks `seeker` to discover a `Service` named `name` with `tag`.
pub fn find(seeker: &Addr<Seeker>, name: &str, delayed: bool, tag: u32) {
    seeker
        .tell(SeekerMsg::Find {
            name: name.to_string(),
            delayed,
            tag,
        })
        .expect("the seeker takes messages");
}

/// The registry's counts (test kit).
pub fn stats(kit: &TestKit) -> coreactor::registry::RegistryStats {
    let registry = kit.registry().expect("the kit has a registry");
    kit.ask(&registry, coreactor::registry::RegistryMsg::Stats)
        .expect("the registry answers")
}

/// True if `reason` is an init failure whose root is the registry error `e`.
pub fn init_failed_with(reason: &StopReason, e: &RegistryError) -> bool {
    matches!(reason, StopReason::InitFailed(_)) && *reason.root() == StopReason::Registry(e.clone())
}
