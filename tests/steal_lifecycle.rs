//! A migrated actor keeps its supervision, its links and its monitors: they all hold its
//! address, which names its home shard, and the plugins' state travels with it.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod lifecycle_common;

use coreactor::config::StealConfig;
use coreactor::lifecycle::State;
use coreactor::plugins::monitor::Down;
use coreactor::supervisor::{Backoff, ChildSpec, Supervisor, SupervisorMsg};
use coreactor::testkit::TestKit;
use coreactor::{Actor, ActorRef, Addr, Context, Reply, StopReason};
use lifecycle_common::Log;

fn steal_config() -> StealConfig {
    StealConfig {
        backlog_threshold: 2,
        ..StealConfig::default()
    }
}

/// A migratable worker that reports the shard it runs on.
struct Worker {
    log: Log,
    name: &'static str,
}

enum WorkerMsg {
    Work,
    Shard(Reply<usize>),
    Panic,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    fn handle(&mut self, msg: WorkerMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            WorkerMsg::Work => {}
            WorkerMsg::Shard(r) => r.send(ctx.shard_id()),
            WorkerMsg::Panic => panic!("worker {} fails", self.name),
        }
    }
    fn stopped(&mut self, reason: &StopReason, ctx: &mut Context<'_, Self>) {
        self.log.push(format!(
            "{}:stopped on {}:{reason}",
            self.name,
            ctx.shard_id()
        ));
    }
}

/// Makes shard 0 busy with every worker, then lets shard 1 steal; returns the ones that moved.
fn steal_some(kit: &TestKit, workers: &[Addr<Worker>]) -> Vec<Addr<Worker>> {
    for w in workers {
        for _ in 0..100 {
            w.tell(WorkerMsg::Work).unwrap();
        }
    }
    kit.step(0);
    assert!(kit.steal(1), "shard 0 advertises work");
    kit.run_until_idle();
    workers
        .iter()
        .filter(|w| kit.ask(w, WorkerMsg::Shard).unwrap() == 1)
        .cloned()
        .collect()
}

#[test]
fn a_supervised_migratable_child_is_restarted_after_failing_away_from_home() {
    let kit = TestKit::with_steal(2, steal_config());
    let log = Log::default();
    let mut b = Supervisor::builder().backoff(Backoff::none());
    for name in ["w0", "w1", "w2", "w3"] {
        let l = log.clone();
        b = b.child(ChildSpec::migratable(name, move || Worker {
            log: l.clone(),
            name,
        }));
    }
    let sup = kit.spawn_on(0, b.build());
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::Operational);
    let children = kit.ask(&sup, SupervisorMsg::Children).unwrap();
    let workers: Vec<Addr<Worker>> = children
        .iter()
        .map(|c| c.actor.as_ref().unwrap().downcast().unwrap())
        .collect();
    let moved = steal_some(&kit, &workers);
    assert!(!moved.is_empty());
    let victim = moved[0].clone();
    victim.tell(WorkerMsg::Panic).unwrap();
    kit.run_until_idle();
    // It failed on shard 1; its supervisor on shard 0 restarted it (at home, on shard 0).
    assert_eq!(
        log.with_prefix("w")
            .iter()
            .filter(|e| e.contains("stopped on 1:panicked"))
            .count(),
        1
    );
    let children = kit.ask(&sup, SupervisorMsg::Children).unwrap();
    assert_eq!(children.iter().map(|c| c.restarts).sum::<u32>(), 1);
    assert!(children.iter().all(|c| c.state == State::Operational));
    sup.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&sup), State::ShutDown);
    assert_eq!(kit.actor_count(0) + kit.actor_count(1), 0);
}

/// Links to a server and monitors nothing; records its end.
struct Client {
    server: ActorRef,
    log: Log,
}

impl Actor for Client {
    type Msg = ();
    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.link(&self.server);
    }
    fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
    fn stopped(&mut self, reason: &StopReason, _: &mut Context<'_, Self>) {
        self.log.push(format!("client:stopped:{reason}"));
    }
}

/// Watches a target; records the DOWN.
struct Watcher {
    target: ActorRef,
    log: Log,
}

enum WatcherMsg {
    Down(Down),
}

impl Actor for Watcher {
    type Msg = WatcherMsg;
    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.monitor(&self.target, WatcherMsg::Down);
    }
    fn handle(&mut self, msg: WatcherMsg, _: &mut Context<'_, Self>) {
        match msg {
            WatcherMsg::Down(d) => self.log.push(format!(
                "down:{}",
                d.stop_reason().map(|r| r.to_string()).unwrap_or_default()
            )),
        }
    }
}

#[test]
fn a_migrated_server_keeps_its_links_and_monitors() {
    let kit = TestKit::with_steal(2, steal_config());
    let log = Log::default();
    let workers: Vec<Addr<Worker>> = ["s0", "s1", "s2", "s3"]
        .into_iter()
        .map(|name| {
            kit.spawn_migratable_on(
                0,
                Worker {
                    log: log.clone(),
                    name,
                },
            )
        })
        .collect();
    kit.run_until_idle();
    // Every worker is a link server and a monitor target (plugins it did not ask for).
    for w in &workers {
        kit.spawn_on(
            1,
            Client {
                server: w.actor_ref(),
                log: log.clone(),
            },
        );
        kit.spawn_on(
            1,
            Watcher {
                target: w.actor_ref(),
                log: log.clone(),
            },
        );
    }
    kit.run_until_idle();
    let moved = steal_some(&kit, &workers);
    assert!(
        !moved.is_empty(),
        "servers with links and monitors still move"
    );
    let server = moved[0].clone();
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::ShutDown);
    // Its client went down first (unlinked), and its watcher got DOWN with the reason.
    assert_eq!(
        log.with_prefix("client:stopped"),
        ["client:stopped:linked server shut down <- stop requested"]
    );
    assert_eq!(log.with_prefix("down:"), ["down:stop requested"]);
}
