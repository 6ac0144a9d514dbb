//! A configurable probe actor that logs its lifecycle, for the lifecycle and supervisor tests.

#![allow(clippy::disallowed_types, dead_code)]

use coreactor::lifecycle::{Plugin, Progress};
use coreactor::{Actor, Context, Reply, StopReason};
use std::sync::{Arc, Mutex};

/// A shared, ordered event log.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Entries starting with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }

    pub fn count(&self, entry: &str) -> usize {
        self.snapshot().iter().filter(|e| *e == entry).count()
    }
}

/// What a probe does in its phases.
#[derive(Clone)]
pub struct ProbeCfg {
    pub name: &'static str,
    pub log: Log,
    /// Holds its I-phase with resource 1 until `Release`.
    pub hold_init: bool,
    /// Holds its S-phase with resource 2 until `Release`.
    pub hold_shutdown: bool,
    /// A plugin fails its init with this message.
    pub fail_init: Option<&'static str>,
    /// `init` panics.
    pub panic_in_init: bool,
}

impl ProbeCfg {
    pub fn new(name: &'static str, log: &Log) -> ProbeCfg {
        ProbeCfg {
            name,
            log: log.clone(),
            hold_init: false,
            hold_shutdown: false,
            fail_init: None,
            panic_in_init: false,
        }
    }

    pub fn hold_init(mut self) -> Self {
        self.hold_init = true;
        self
    }

    pub fn hold_shutdown(mut self) -> Self {
        self.hold_shutdown = true;
        self
    }

    pub fn fail_init(mut self, why: &'static str) -> Self {
        self.fail_init = Some(why);
        self
    }

    pub fn panic_in_init(mut self) -> Self {
        self.panic_in_init = true;
        self
    }

    pub fn build(&self) -> Probe {
        Probe { cfg: self.clone() }
    }
}

pub struct Probe {
    pub cfg: ProbeCfg,
}

pub enum ProbeMsg {
    Release,
    Panic,
    Stop,
    StopWith(StopReason),
    Name(Reply<&'static str>),
    Shard(Reply<usize>),
}

struct FailInit(&'static str);

impl Plugin<Probe> for FailInit {
    fn name(&self) -> &'static str {
        "fail-init"
    }
    fn init(&mut self, _: &mut Probe, _: &mut Context<'_, Probe>) -> Progress {
        Progress::Failed(StopReason::Failed(self.0.to_string()))
    }
}

impl Actor for Probe {
    type Msg = ProbeMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        self.cfg.log.push(format!("{}:init", self.cfg.name));
        if self.cfg.hold_init {
            ctx.acquire(1);
        }
        if self.cfg.panic_in_init {
            panic!("{} refuses to init", self.cfg.name);
        }
    }

    fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
        match self.cfg.fail_init {
            Some(why) => vec![Box::new(FailInit(why))],
            None => Vec::new(),
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        self.cfg.log.push(format!("{}:started", self.cfg.name));
    }

    fn stopping(&mut self, _reason: &StopReason, ctx: &mut Context<'_, Self>) {
        self.cfg.log.push(format!("{}:stopping", self.cfg.name));
        if self.cfg.hold_shutdown {
            ctx.acquire(2);
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        self.cfg
            .log
            .push(format!("{}:stopped:{reason}", self.cfg.name));
    }

    fn handle(&mut self, msg: ProbeMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ProbeMsg::Release => {
                ctx.release(1);
                ctx.release(2);
            }
            ProbeMsg::Panic => panic!("{} was told to panic", self.cfg.name),
            ProbeMsg::Stop => ctx.stop(),
            ProbeMsg::StopWith(r) => ctx.stop_with(r),
            ProbeMsg::Name(r) => r.send(self.cfg.name),
            ProbeMsg::Shard(r) => r.send(ctx.shard_id()),
        }
    }
}
