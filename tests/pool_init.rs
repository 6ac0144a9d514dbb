//! A pool's asynchronous init ([`PoolBuilder::wait_for_init`]): members hold their I-phase
//! with the resources plugin until their "connection" is open, and `build` returns only when
//! every member is operational; a member whose connect fails, or that never finishes, makes
//! `build` fail with a typed error naming it (and its stop reason), every member stopped.
//!
//! The "server" the members connect to is the test thread: a member's `init` sends it a
//! connect request and the test answers through the member's address, so the test decides
//! exactly when (and whether) each connection opens.

// Tests are not the runtime: std's atomics, channels and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{DEADLINE, for_each_shard_count, join, runtime, wait_until};
use coreactor::lifecycle::State;
use coreactor::pool::{InitFailure, Pool, PoolBuildError, PoolBuilder, PoolMember};
use coreactor::{Actor, Addr, Context, Reply, StopReason};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The resource a connecting member holds.
const CONNECTING: u32 = 1;

/// What the test thread decides for a member's connect request.
enum Answer {
    Open,
    Refuse,
}

enum Msg {
    /// The connect completed.
    Connected(Answer),
    IsConnected(Reply<bool>),
}

/// Behaviour of one member.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Sends a connect request to the test and waits for the answer.
    Connect,
    /// Fails in `init` already (a bad configuration).
    FailAtOnce,
}

struct Db {
    member: PoolMember,
    mode: Mode,
    connected: bool,
    requests: mpsc::Sender<(usize, Addr<Db>)>,
    /// Members whose `stopped` hook ran.
    stopped: Arc<AtomicUsize>,
}

impl Actor for Db {
    type Msg = Msg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        if self.mode == Mode::FailAtOnce {
            ctx.stop_with(StopReason::Failed("bad config".into()));
            return;
        }
        ctx.acquire(CONNECTING);
        self.requests
            .send((self.member.index, ctx.addr()))
            .expect("the test listens");
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) {
        match msg {
            Msg::Connected(Answer::Open) => {
                self.connected = true;
                ctx.release(CONNECTING);
            }
            Msg::Connected(Answer::Refuse) => {
                ctx.stop_with(StopReason::Failed("connection refused".into()));
            }
            Msg::IsConnected(r) => r.send(self.connected),
        }
    }

    fn stopped(&mut self, _reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

type Factory = Box<dyn Fn(PoolMember) -> Db + Send + Sync>;

/// Connect requests: the member's index and address.
type Requests = mpsc::Receiver<(usize, Addr<Db>)>;

/// A builder for `size` members (`modes(index)` says how each behaves) and the receiving end
/// of their connect requests.
fn builder(
    size: usize,
    modes: impl Fn(usize) -> Mode + Send + Sync + 'static,
    stopped: &Arc<AtomicUsize>,
) -> (PoolBuilder<Db, Factory>, Requests) {
    let (tx, rx) = mpsc::channel();
    let stopped = stopped.clone();
    let factory: Factory = Box::new(move |member| Db {
        member,
        mode: modes(member.index),
        connected: false,
        requests: tx.clone(),
        stopped: stopped.clone(),
    });
    (Pool::builder(size, factory), rx)
}

/// Receives `n` connect requests, in index order.
fn requests(rx: &Requests, n: usize) -> Vec<(usize, Addr<Db>)> {
    let mut got: Vec<_> = (0..n)
        .map(|_| rx.recv_timeout(DEADLINE).expect("a connect request"))
        .collect();
    got.sort_by_key(|(i, _)| *i);
    got
}

#[test]
fn build_waits_until_every_member_has_connected() {
    for_each_shard_count(|n| {
        let rt = Arc::new(runtime(n));
        let stopped = Arc::new(AtomicUsize::new(0));
        let size = 2 * n + 1;
        let (b, rx) = builder(size, |_| Mode::Connect, &stopped);
        let b = b.wait_for_init(DEADLINE);
        let build = {
            let rt = rt.clone();
            std::thread::spawn(move || b.build(&rt))
        };
        // Every member is connecting at once, held in its I-phase: the build cannot be done.
        let pending = requests(&rx, size);
        for (_, m) in &pending {
            assert_eq!(m.state(), State::Initializing);
        }
        assert!(
            !build.is_finished(),
            "build returned before any connection opened"
        );
        for (_, m) in &pending {
            m.tell(Msg::Connected(Answer::Open)).unwrap();
        }
        let pool = join("build", build).expect("every member connects");
        assert!(
            pool.members()
                .iter()
                .all(|m| m.state() == State::Operational)
        );
        let connected = pool.broadcast(Msg::IsConnected, DEADLINE);
        assert!(connected.into_iter().all(|c| c == Ok(true)));
        for (i, m) in pool.members().iter().enumerate() {
            assert_eq!(m.shard(), i % n);
        }
        // The members are the probes' children: the runtime's graceful shutdown stops them
        // (through the probes) and runs their hooks.
        Arc::into_inner(rt).unwrap().shutdown().unwrap();
        assert_eq!(stopped.load(Ordering::SeqCst), size);
        drop(pool);
    });
}

#[test]
fn a_failed_init_is_a_typed_error_naming_the_member() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let stopped = Arc::new(AtomicUsize::new(0));
        let size = 5;
        // Member 1 fails in `init`; member 3's connect is refused; the others connect.
        let modes = |i| {
            if i == 1 {
                Mode::FailAtOnce
            } else {
                Mode::Connect
            }
        };
        let (b, rx) = builder(size, modes, &stopped);
        let b = b.wait_for_init(DEADLINE);
        let answer = std::thread::spawn(move || {
            for (i, m) in requests(&rx, size - 1) {
                let a = if i == 3 { Answer::Refuse } else { Answer::Open };
                m.tell(Msg::Connected(a)).unwrap();
            }
        });
        let err = b.build(&rt).unwrap_err();
        join("answers", answer);
        let PoolBuildError::Init { failed } = &err else {
            panic!("expected an init error, got {err:?}");
        };
        let named: Vec<(usize, usize)> = failed.iter().map(|e| (e.index, e.shard)).collect();
        assert_eq!(named, [(1, 1 % n), (3, 3 % n)], "{err}");
        let roots: Vec<StopReason> = failed
            .iter()
            .map(|e| e.reason().expect("the reason is known").root().clone())
            .collect();
        assert_eq!(
            roots,
            [
                StopReason::Failed("bad config".into()),
                StopReason::Failed("connection refused".into())
            ]
        );
        assert!(failed.iter().all(|e| !e.is_timeout()));
        let text = err.to_string();
        assert!(
            text.contains("member 3") && text.contains("connection refused"),
            "{text}"
        );
        // Every member was stopped again, the connected ones included.
        wait_until("every member stopped", || {
            stopped.load(Ordering::SeqCst) == size
        });
        rt.shutdown().unwrap();
    });
}

#[test]
fn an_init_that_never_finishes_times_out() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let stopped = Arc::new(AtomicUsize::new(0));
        let size = 3;
        let (b, rx) = builder(size, |_| Mode::Connect, &stopped);
        let timeout = Duration::from_millis(200);
        let b = b.wait_for_init(timeout);
        // Members 0 and 2 connect; member 1's connect is never answered.
        let answer = std::thread::spawn(move || {
            let pending = requests(&rx, size);
            for (i, m) in &pending {
                if *i != 1 {
                    m.tell(Msg::Connected(Answer::Open)).unwrap();
                }
            }
            pending
        });
        let t0 = Instant::now();
        let err = b.build(&rt).unwrap_err();
        let took = t0.elapsed();
        let _pending = join("answers", answer);
        let PoolBuildError::Init { failed } = &err else {
            panic!("expected an init error, got {err:?}");
        };
        assert_eq!(failed.len(), 1, "{err}");
        let e = &failed[0];
        assert_eq!((e.index, e.shard), (1, 1 % n));
        assert!(e.is_timeout(), "{err}");
        // The member's own init timer fired: it stopped with the reason.
        assert!(
            matches!(&e.failure, InitFailure::Stopped(Some(r)) if r.chain().any(|r| *r == StopReason::InitTimeout)),
            "{err}"
        );
        assert!(took >= timeout, "returned after {took:?}");
        assert!(took < DEADLINE, "returned after {took:?}");
        wait_until("every member stopped", || {
            stopped.load(Ordering::SeqCst) == size
        });
        rt.shutdown().unwrap();
    });
}

#[test]
fn without_the_option_build_returns_at_once() {
    let rt = runtime(2);
    let stopped = Arc::new(AtomicUsize::new(0));
    let (b, rx) = builder(2, |_| Mode::Connect, &stopped);
    let pool = b.build(&rt).unwrap();
    // The members are still connecting; nothing waited for them.
    let pending = requests(&rx, 2);
    for (_, m) in &pending {
        assert_eq!(m.state(), State::Initializing);
        m.tell(Msg::Connected(Answer::Open)).unwrap();
    }
    wait_until("members operational", || {
        pool.members()
            .iter()
            .all(|m| m.state() == State::Operational)
    });
    pool.shutdown().unwrap();
    rt.shutdown().unwrap();
}
