//! The "connection" actor the `pool_*.rs` tests pool, and what it records for them.
//!
//! [`Conn`] stands in for a database connection: the factory records the thread it ran on (so a
//! test can check it was the member's own shard), handlers answer with the member's index, and
//! the `stopped` hook (where a real connection is flushed and closed) can be held at a gate and
//! is counted.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, clippy::disallowed_types)]

use crate::common::Gate;
use coreactor::pool::{Pool, PoolMember};
use coreactor::{Actor, Context, Reply, Runtime, StopReason};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The ask timeout tests use when they expect an answer.
pub const ASK: Duration = Duration::from_secs(30);

/// What the members of one pool record, shared with the test.
#[derive(Default)]
pub struct Hooks {
    /// `(index, thread name)` for every factory call.
    pub built: Mutex<Vec<(usize, String)>>,
    /// `stopped` hooks that have returned.
    pub stopped: AtomicUsize,
    /// `(index, reason)` for every `stopped` hook, in the order they ran.
    pub stop_log: Mutex<Vec<(usize, StopReason)>>,
    /// If set, every `stopped` hook waits at this gate first (a slow flush).
    pub stop_gate: Mutex<Option<Arc<Gate>>>,
}

impl Hooks {
    pub fn new() -> Arc<Hooks> {
        Arc::new(Hooks::default())
    }

    pub fn stopped(&self) -> usize {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// A pooled "connection".
pub struct Conn {
    pub member: PoolMember,
    hooks: Arc<Hooks>,
    notes: Vec<u64>,
}

pub enum ConnMsg {
    /// Answers the member's index.
    Who(Reply<usize>),
    /// Answers `(index, value)`.
    Echo(u64, Reply<(usize, u64)>),
    /// Answers the shard the handler runs on.
    Shard(Reply<usize>),
    /// Records a value (a write).
    Note(u64),
    /// Answers the values recorded so far, in order.
    Notes(Reply<Vec<u64>>),
    /// Holds the member's shard thread at the gate.
    Block(Arc<Gate>),
    /// Odd members drop the reply unanswered; even ones answer their index.
    WhoIfEven(Reply<usize>),
}

impl Conn {
    /// A factory for [`Pool::builder`] that records into `hooks`.
    pub fn factory(hooks: &Arc<Hooks>) -> impl Fn(PoolMember) -> Conn + Send + Sync + 'static {
        let hooks = hooks.clone();
        move |member| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            hooks.built.lock().unwrap().push((member.index, name));
            Conn {
                member,
                hooks: hooks.clone(),
                notes: Vec::new(),
            }
        }
    }
}

impl Actor for Conn {
    type Msg = ConnMsg;

    fn handle(&mut self, msg: ConnMsg, ctx: &mut Context<'_, Self>) {
        let index = self.member.index;
        match msg {
            ConnMsg::Who(r) => r.send(index),
            ConnMsg::Echo(v, r) => r.send((index, v)),
            ConnMsg::Shard(r) => r.send(ctx.shard_id()),
            ConnMsg::Note(v) => self.notes.push(v),
            ConnMsg::Notes(r) => r.send(self.notes.clone()),
            ConnMsg::Block(gate) => gate.pass(),
            ConnMsg::WhoIfEven(r) => {
                if index % 2 == 0 {
                    r.send(index);
                } else {
                    drop(r);
                }
            }
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        let gate = self.hooks.stop_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass();
        }
        self.hooks
            .stop_log
            .lock()
            .unwrap()
            .push((self.member.index, reason.clone()));
        self.hooks.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A pool of `size` [`Conn`]s over every shard of `rt`, and what its members record.
pub fn conn_pool(rt: &Runtime, size: usize) -> (Pool<Conn>, Arc<Hooks>) {
    let hooks = Hooks::new();
    let pool = Pool::builder(size, Conn::factory(&hooks))
        .build(rt)
        .expect("pool builds");
    (pool, hooks)
}

/// Asks every member once, so each is installed and has run (blocking, outside threads only).
pub fn warm_up(pool: &Pool<Conn>) {
    for i in 0..pool.size() {
        let who = pool
            .ask_timeout(coreactor::pool::Route::Member(i), ConnMsg::Who, ASK)
            .expect("member answers");
        assert_eq!(who, i);
    }
}

/// The members' real queue depths, in member order.
pub fn depths(pool: &Pool<Conn>) -> Vec<usize> {
    pool.members().iter().map(|m| m.mailbox_len()).collect()
}
