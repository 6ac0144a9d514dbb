//! Supervisors: ordinary actors that start children (on any shard), drive their lifecycle,
//! and restart them by policy — Erlang's strategies on rotor's phases.
//!
//! A [`Supervisor`] spawns its children in its own I-phase (each with the phase timeouts of
//! its [`ChildSpec`]) and becomes initialized only when every child is; it starts each child
//! as soon as the child is initialized, or — with `synchronize_start` — all of them together
//! when it starts itself. Its S-phase stops every child (reason
//! [`SupervisorShutdown`](crate::StopReason::SupervisorShutdown) wrapping its own) and ends
//! only when all are down. All of this is messages in the control lane
//! ([`ChildEvent`]s up, start/stop down), so children on other shards and nested
//! supervisors work the same way.
//!
//! | the child went down… | while the supervisor… | outcome |
//! |---|---|---|
//! | before it started (init failed) | initializes, `ShutdownSelf` | supervisor's init fails: `InitFailed(ChildInitFailed{..})`, the tree above decides |
//! | before it started | initializes, `ShutdownFailed` | child dropped, supervisor goes on |
//! | any reason, `autoshutdown_supervisor` | is operational | supervisor stops: `ChildDown{..}` |
//! | a failure, `escalate_failure` | is operational | supervisor stops: `FailureEscalation{..}` |
//! | reason the [`Restart`] policy restarts | is operational | restart by [`Strategy`] after [`Backoff`]; over the [`Intensity`] the supervisor stops: `FailureEscalation{..}` |
//! | reason the policy does not restart | is operational | child dropped |
//! | anything | shuts down | recorded; the S-phase ends when all children are down |
//!
//! # Examples
//!
//! ```
//! use coreactor::supervisor::{ChildSpec, Restart, Supervisor};
//! use coreactor::lifecycle::State;
//! use coreactor::testkit::TestKit;
//! use coreactor::{Actor, Context};
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
//! }
//!
//! let kit = TestKit::new(2);
//! let sup = kit.spawn_on(
//!     0,
//!     Supervisor::builder()
//!         .child(ChildSpec::new("a", || Worker))
//!         .child(ChildSpec::new("b", || Worker).on_shard(1).restart(Restart::Transient))
//!         .build(),
//! );
//! kit.run_until_idle();
//! assert_eq!(kit.state(&sup), State::Operational);
//! ```

mod spec;

pub use spec::{Backoff, ChildSpec, InitFailurePolicy, Intensity, Restart, Strategy};

use crate::actor::lifecycle::{ChildEvent, Plugin, Progress, State, SystemMsg};
use crate::error::SpawnError;
use crate::{Actor, ActorRef, Context, Reply, StopReason};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// A supervisor's configuration: policies plus the initial children.
#[derive(Debug, Clone, Default)]
pub struct SupervisorBuilder {
    strategy: Strategy,
    init_failure: InitFailurePolicy,
    synchronize_start: bool,
    intensity: Intensity,
    backoff: Backoff,
    seed: u64,
    children: Vec<ChildSpec>,
}

impl SupervisorBuilder {
    /// The restart strategy (default [`Strategy::OneForOne`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// What a child's failed init does while the supervisor initializes (default
    /// [`InitFailurePolicy::ShutdownSelf`]).
    pub fn init_failure(mut self, policy: InitFailurePolicy) -> Self {
        self.init_failure = policy;
        self
    }

    /// Start the children together, once all are initialized (default: each as soon as it
    /// is initialized).
    pub fn synchronize_start(mut self, on: bool) -> Self {
        self.synchronize_start = on;
        self
    }

    /// At most `max_restarts` restarts within `window` (default 3 in 5 s).
    pub fn intensity(mut self, max_restarts: u32, window: Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            window,
        };
        self
    }

    /// The delay between restarts (default [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seed of the jitter generator (default 0: runs are reproducible).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a child, started in the supervisor's I-phase (children start in the order added).
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// The supervisor actor (spawn it like any actor; as a child, use
    /// `ChildSpec::new(name, move || builder.clone().build())`).
    pub fn build(self) -> Supervisor {
        Supervisor {
            rng: self.seed ^ 0x9E37_79B9_7F4A_7C15,
            children: Vec::new(),
            restarts: VecDeque::new(),
            init_failure: None,
            epoch: 0,
            group: None,
            cfg: self,
        }
    }
}

/// Where a child is, as its supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Spawned; its I-phase runs.
    Starting,
    /// Initialized; waits for its start signal.
    Initialized,
    /// Started.
    Running,
    /// Asked to stop (group restart or supervisor shutdown).
    Stopping,
    /// Down; a restart is scheduled.
    RestartPending,
    /// Down for good (policy, or never restarted).
    Down,
}

struct Child {
    spec: ChildSpec,
    actor: Option<ActorRef>,
    phase: Phase,
    restarts: u32,
    last_reason: Option<StopReason>,
}

impl Child {
    /// A child not started yet.
    fn new(spec: ChildSpec) -> Child {
        Child {
            spec,
            actor: None,
            phase: Phase::Down,
            restarts: 0,
            last_reason: None,
        }
    }
}

/// A group restart waiting for its members to be down.
struct Group {
    /// Children to restart, in spec order.
    restart: Vec<usize>,
}

/// What a supervisor reports of one child.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The spec's name.
    pub name: String,
    /// The current incarnation, if one is alive.
    pub actor: Option<ActorRef>,
    /// Its state (`ShutDown` when none is alive).
    pub state: State,
    /// How many times it was restarted.
    pub restarts: u32,
    /// Why the last incarnation went down.
    pub last_reason: Option<StopReason>,
}

/// Messages a supervisor handles.
#[non_exhaustive]
pub enum SupervisorMsg {
    /// Adds and starts a child; answers its reference.
    StartChild(ChildSpec, Reply<Result<ActorRef, SpawnError>>),
    /// Stops a child for good (it is not restarted); answers whether it was alive.
    StopChild(String, Reply<bool>),
    /// Lists the children in spec order.
    Children(Reply<Vec<ChildInfo>>),
    /// The current incarnation of the named child.
    Which(String, Reply<Option<ActorRef>>),
    /// A scheduled restart is due (sent by the supervisor to itself).
    #[doc(hidden)]
    RestartDue {
        /// Invalidates restarts scheduled before a shutdown.
        epoch: u64,
        /// Children to start, in order.
        children: Vec<usize>,
    },
}

/// A supervisor actor. Build it with [`Supervisor::builder`]; see the [module
/// docs](self) for what it does.
pub struct Supervisor {
    cfg: SupervisorBuilder,
    children: Vec<Child>,
    /// Times of the restarts within the intensity window.
    restarts: VecDeque<Duration>,
    /// Set when a child's init failure fails this supervisor's init.
    init_failure: Option<StopReason>,
    rng: u64,
    epoch: u64,
    group: Option<Group>,
}

impl Supervisor {
    /// A builder with the defaults: one-for-one, `ShutdownSelf`, no synchronized start,
    /// 3 restarts in 5 s, 10 ms–1 s backoff.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder::default()
    }

    fn jitter_unit(&mut self) -> f64 {
        // xorshift64*: deterministic per seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (v as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn index_of(&self, actor: &ActorRef) -> Option<usize> {
        self.children
            .iter()
            .position(|c| c.actor.as_ref() == Some(actor))
    }

    /// Spawns child `i` (a fresh incarnation).
    fn spawn(&mut self, i: usize, ctx: &mut Context<'_, Self>) -> Result<(), SpawnError> {
        let shard = self.children[i].spec.shard.unwrap_or(ctx.shard_id());
        let opts = self.children[i].spec.opts.clone();
        let start = self.children[i].spec.start.clone();
        let actor = start(ctx, shard, opts)?;
        let c = &mut self.children[i];
        c.actor = Some(actor);
        c.phase = Phase::Starting;
        Ok(())
    }

    fn spawn_or_fail(&mut self, i: usize, ctx: &mut Context<'_, Self>) {
        if let Err(e) = self.spawn(i, ctx) {
            let reason = StopReason::Failed(format!("spawn failed: {e}"));
            let name = self.children[i].spec.name.clone();
            self.children[i].phase = Phase::Down;
            self.children[i].last_reason = Some(reason.clone());
            match ctx.state() {
                State::Initializing => self.fail_init(name, reason),
                State::ShuttingDown | State::ShutDown => {}
                _ => ctx.stop_with(StopReason::FailureEscalation {
                    child: name,
                    cause: Arc::new(reason),
                }),
            }
        }
    }

    fn fail_init(&mut self, child: String, cause: StopReason) {
        if self.init_failure.is_none() {
            self.init_failure = Some(StopReason::ChildInitFailed {
                child,
                cause: Arc::new(cause),
            });
        }
    }

    fn on_initialized(&mut self, child: ActorRef, ctx: &mut Context<'_, Self>) {
        let Some(i) = self.index_of(&child) else {
            return;
        };
        if self.children[i].phase != Phase::Starting {
            return;
        }
        self.children[i].phase = Phase::Initialized;
        if !self.cfg.synchronize_start || ctx.state() == State::Operational {
            ctx.start_child(&child);
            self.children[i].phase = Phase::Running;
        }
    }

    fn on_down(
        &mut self,
        child: ActorRef,
        reason: StopReason,
        started: bool,
        ctx: &mut Context<'_, Self>,
    ) {
        let Some(i) = self.index_of(&child) else {
            return;
        };
        let was = self.children[i].phase;
        let c = &mut self.children[i];
        c.actor = None;
        c.phase = Phase::Down;
        c.last_reason = Some(reason.clone());
        let name = c.spec.name.clone();
        match ctx.state() {
            State::ShuttingDown | State::ShutDown => return,
            State::Initializing if !started => {
                match self.cfg.init_failure {
                    InitFailurePolicy::ShutdownSelf => self.fail_init(name, reason),
                    InitFailurePolicy::ShutdownFailed => {}
                }
                return;
            }
            _ => {}
        }
        if was == Phase::Stopping {
            // A member of a group restart is down.
            self.maybe_restart_group(ctx);
            return;
        }
        let spec = &self.children[i].spec;
        if spec.autoshutdown_supervisor {
            ctx.stop_with(StopReason::ChildDown {
                child: name,
                cause: Arc::new(reason),
            });
            return;
        }
        if spec.escalate_failure && reason.is_failure() {
            ctx.stop_with(StopReason::FailureEscalation {
                child: name,
                cause: Arc::new(reason),
            });
            return;
        }
        if !spec.restart.applies(&reason) {
            return;
        }
        // Intensity: restarts within the sliding window, this one included.
        let now = ctx.now();
        let window = self.cfg.intensity.window;
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= self.cfg.intensity.max_restarts as usize {
            ctx.stop_with(StopReason::FailureEscalation {
                child: name,
                cause: Arc::new(reason),
            });
            return;
        }
        self.restarts.push_back(now);
        let members: Vec<usize> = match self.cfg.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (i..self.children.len()).collect(),
        };
        let mut restart = Vec::new();
        for &m in &members {
            let c = &mut self.children[m];
            if m != i {
                if c.spec.restart == Restart::Temporary || c.phase == Phase::Down {
                    // Stopped with the group but not brought back.
                    if let Some(a) = &c.actor {
                        let _ = a.stop_with(StopReason::SupervisorShutdown(Arc::new(
                            StopReason::Requested,
                        )));
                        c.phase = Phase::Stopping;
                    }
                    continue;
                }
                if let Some(a) = &c.actor {
                    let _ = a.stop_with(StopReason::SupervisorShutdown(Arc::new(reason.clone())));
                    c.phase = Phase::Stopping;
                }
            }
            restart.push(m);
        }
        self.group = Some(Group { restart });
        self.maybe_restart_group(ctx);
    }

    /// Once every member of the pending group is down, schedules its restart.
    fn maybe_restart_group(&mut self, ctx: &mut Context<'_, Self>) {
        let Some(group) = &self.group else { return };
        if self.children.iter().any(|c| c.phase == Phase::Stopping) {
            return;
        }
        let restart = group.restart.clone();
        self.group = None;
        for &m in &restart {
            self.children[m].phase = Phase::RestartPending;
        }
        let n = self.restarts.len().saturating_sub(1) as u32;
        let unit = self.jitter_unit();
        let delay = self.cfg.backoff.delay(n, unit);
        if delay.is_zero() {
            self.restart_now(self.epoch, restart, ctx);
        } else {
            ctx.send_after(
                delay,
                SupervisorMsg::RestartDue {
                    epoch: self.epoch,
                    children: restart,
                },
            );
        }
    }

    fn restart_now(&mut self, epoch: u64, children: Vec<usize>, ctx: &mut Context<'_, Self>) {
        if epoch != self.epoch || !matches!(ctx.state(), State::Operational | State::Initialized) {
            return;
        }
        for m in children {
            if self.children[m].phase != Phase::RestartPending {
                continue;
            }
            self.children[m].restarts += 1;
            self.spawn_or_fail(m, ctx);
        }
    }

    fn alive(&self) -> usize {
        self.children.iter().filter(|c| c.actor.is_some()).count()
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        let specs = std::mem::take(&mut self.cfg.children);
        for spec in specs {
            self.children.push(Child::new(spec));
            let i = self.children.len() - 1;
            self.spawn_or_fail(i, ctx);
        }
    }

    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        vec![Box::new(ChildManager)]
    }

    fn handle(&mut self, msg: SupervisorMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            SupervisorMsg::StartChild(spec, reply) => {
                if matches!(ctx.state(), State::ShuttingDown | State::ShutDown) {
                    reply.send(Err(SpawnError::Shutdown));
                    return;
                }
                self.children.push(Child::new(spec));
                let i = self.children.len() - 1;
                match self.spawn(i, ctx) {
                    Ok(()) => reply.send(Ok(self.children[i].actor.clone().expect("just spawned"))),
                    Err(e) => {
                        self.children.pop();
                        reply.send(Err(e));
                    }
                }
            }
            SupervisorMsg::StopChild(name, reply) => {
                let found = self.children.iter_mut().find(|c| c.spec.name == name);
                let alive = match found {
                    Some(c) => {
                        c.spec.restart = Restart::Temporary;
                        if c.phase == Phase::RestartPending {
                            c.phase = Phase::Down;
                        }
                        c.actor.as_ref().is_some_and(|a| a.stop().is_ok())
                    }
                    None => false,
                };
                reply.send(alive);
            }
            SupervisorMsg::Children(reply) => {
                let list = self
                    .children
                    .iter()
                    .map(|c| ChildInfo {
                        name: c.spec.name.clone(),
                        actor: c.actor.clone(),
                        state: c.actor.as_ref().map_or(State::ShutDown, ActorRef::state),
                        restarts: c.restarts,
                        last_reason: c.last_reason.clone(),
                    })
                    .collect();
                reply.send(list);
            }
            SupervisorMsg::Which(name, reply) => {
                let actor = self
                    .children
                    .iter()
                    .find(|c| c.spec.name == name)
                    .and_then(|c| c.actor.clone());
                reply.send(actor);
            }
            SupervisorMsg::RestartDue { epoch, children } => {
                self.restart_now(epoch, children, ctx);
            }
        }
    }
}

/// The child manager plugin: holds the supervisor's I-phase until every child is
/// initialized, starts children (synchronized or not), stops them all in the S-phase and
/// holds it until all are down, and turns [`ChildEvent`]s into supervision decisions.
struct ChildManager;

impl Plugin<Supervisor> for ChildManager {
    fn name(&self) -> &'static str {
        "child-manager"
    }

    fn init(&mut self, sup: &mut Supervisor, _ctx: &mut Context<'_, Supervisor>) -> Progress {
        if let Some(f) = &sup.init_failure {
            return Progress::Failed(f.clone());
        }
        Progress::done_when(!sup.children.iter().any(|c| c.phase == Phase::Starting))
    }

    fn start(&mut self, sup: &mut Supervisor, ctx: &mut Context<'_, Supervisor>) {
        for c in sup.children.iter_mut() {
            if c.phase == Phase::Initialized
                && let Some(a) = &c.actor
            {
                ctx.start_child(a);
                c.phase = Phase::Running;
            }
        }
    }

    fn shutdown_start(
        &mut self,
        reason: &StopReason,
        sup: &mut Supervisor,
        _ctx: &mut Context<'_, Supervisor>,
    ) {
        sup.epoch += 1;
        sup.group = None;
        let why = Arc::new(reason.clone());
        for c in sup.children.iter_mut() {
            match &c.actor {
                Some(a) => {
                    let _ = a.stop_with(StopReason::SupervisorShutdown(why.clone()));
                    c.phase = Phase::Stopping;
                }
                None => c.phase = Phase::Down,
            }
        }
    }

    fn shutdown(&mut self, sup: &mut Supervisor, _ctx: &mut Context<'_, Supervisor>) -> Progress {
        // A child whose address died without a Down event (forced at runtime shutdown, or
        // its factory's slot abandoned) does not hold the phase.
        for c in sup.children.iter_mut() {
            if c.actor.as_ref().is_some_and(|a| !a.is_alive()) {
                c.actor = None;
                c.phase = Phase::Down;
            }
        }
        Progress::done_when(sup.alive() == 0)
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        sup: &mut Supervisor,
        ctx: &mut Context<'_, Supervisor>,
    ) -> Option<SystemMsg> {
        match msg.downcast::<ChildEvent>() {
            Ok(ChildEvent::Initialized(child)) => {
                sup.on_initialized(child, ctx);
                None
            }
            Ok(ChildEvent::Down {
                child,
                reason,
                started,
            }) => {
                sup.on_down(child, reason, started, ctx);
                None
            }
            Err(other) => Some(other),
        }
    }
}
