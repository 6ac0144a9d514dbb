//! Shutdown always terminates: pending and queued asks are answered with `Shutdown`, full rings
//! and parked shards do not stall it, everything is refused afterwards, dropping the runtime
//! shuts down and joins the shard threads, `stopped` hooks see `Shutdown`, and a handler stuck
//! past `shutdown_timeout` yields `ShutdownError::Timeout` naming its shard.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{DropFlag, block_on, block_shard, for_each_shard_count, join, wait_until};
use coreactor::{
    Actor, Addr, AskError, Context, Reply, Runtime, SendError, ShutdownError, SpawnError,
    StopReason,
};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

type Log<T> = Arc<Mutex<Vec<T>>>;

/// What a `stopped` hook saw and could do at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StopRecord {
    reason: StopReason,
    spawn_here: Result<(), SpawnError>,
    spawn_elsewhere: Result<(), SpawnError>,
}

thread_local! {
    /// Flags dropped when the shard thread that registered them exits.
    static ON_THREAD_EXIT: RefCell<Vec<DropFlag>> = const { RefCell::new(Vec::new()) };
}

/// Holds replies; records its stop; sets flags when dropped and when its thread exits.
#[derive(Default)]
struct Holder {
    held: Vec<Reply<u64>>,
    stops: Log<StopRecord>,
    _dropped: Option<DropFlag>,
    thread_exit: Option<DropFlag>,
}

enum HolderMsg {
    Hold(Reply<u64>),
    Held(Reply<usize>),
    Echo(u64, Reply<u64>),
    Data(u64),
}

impl Actor for Holder {
    type Msg = HolderMsg;
    fn handle(&mut self, msg: HolderMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            HolderMsg::Hold(r) => self.held.push(r),
            HolderMsg::Held(r) => r.send(self.held.len()),
            HolderMsg::Echo(x, r) => r.send(x),
            HolderMsg::Data(_) => {}
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        if let Some(flag) = self.thread_exit.take() {
            ON_THREAD_EXIT.with(|f| f.borrow_mut().push(flag));
        }
    }

    fn stopped(&mut self, reason: &StopReason, ctx: &mut Context<'_, Self>) {
        let other = (ctx.shard_id() + 1) % ctx.shard_count();
        let record = StopRecord {
            reason: reason.clone(),
            spawn_here: ctx.spawn(Holder::default()).map(drop),
            spawn_elsewhere: ctx.spawn_on(other, Holder::default).map(drop),
        };
        self.stops.lock().unwrap().push(record);
    }
}

fn holder(stops: &Log<StopRecord>) -> Holder {
    Holder {
        stops: stops.clone(),
        ..Holder::default()
    }
}

fn shutdown_record() -> StopRecord {
    StopRecord {
        reason: StopReason::Shutdown,
        spawn_here: Err(SpawnError::Shutdown),
        spawn_elsewhere: Err(SpawnError::Shutdown),
    }
}

// Outside asks whose Reply an actor holds, and asks still queued, are answered with
// AskError::Shutdown when the runtime shuts down.
#[test]
fn pending_asks_get_shutdown() {
    for_each_shard_count(|n| {
        // The blocked shard cannot finish the graceful phase: it ends at the timeout, and the
        // gate opens once the forced phase has closed the holder.
        let rt = Runtime::builder()
            .shards(n)
            .shutdown_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let stops = Log::default();
        let holders: Vec<_> = (0..n)
            .map(|s| rt.spawn_on(s, holder(&stops)).unwrap())
            .collect();
        let mut askers = Vec::new();
        for h in &holders {
            for _ in 0..2 {
                let h = h.clone();
                askers.push(std::thread::spawn(move || h.ask(HolderMsg::Hold, ASK)));
            }
        }
        for h in &holders {
            wait_until("two held replies", || {
                h.ask(HolderMsg::Held, ASK).unwrap() == 2
            });
        }
        // On the last shard, one more ask stays queued behind a handler held at a gate, which a
        // helper opens once shutdown has begun.
        let s = n - 1;
        let (gate, guard, _blocker) = block_shard(&rt, s);
        let queued = {
            let h = holders[s].clone();
            std::thread::spawn(move || h.ask(|r| HolderMsg::Echo(5, r), ASK))
        };
        wait_until("the ask to be queued", || holders[s].mailbox_len() == 1);
        let opener = {
            let h = holders[s].clone();
            std::thread::spawn(move || {
                wait_until("shutdown to begin", || !h.is_alive());
                gate.open();
            })
        };
        rt.shutdown().expect("clean shutdown");
        drop(guard);
        join("gate opener", opener);
        for (i, a) in askers.into_iter().enumerate() {
            assert_eq!(join("held asker", a), Err(AskError::Shutdown), "asker {i}");
        }
        assert_eq!(join("queued asker", queued), Err(AskError::Shutdown));
        assert_eq!(*stops.lock().unwrap(), vec![shutdown_record(); n]);
    });
}

/// Counts what it receives.
#[derive(Default)]
struct Sink {
    got: u64,
}

enum SinkMsg {
    Data(u64),
    Got(Reply<u64>),
}

impl Actor for Sink {
    type Msg = SinkMsg;
    fn handle(&mut self, msg: SinkMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            SinkMsg::Data(_) => self.got += 1,
            SinkMsg::Got(r) => r.send(self.got),
        }
    }
}

/// Floods every sink, then tells itself to flood again, until the runtime stops.
struct Flooder {
    sinks: Vec<Addr<Sink>>,
}

enum FloodMsg {
    Flood,
}

impl Actor for Flooder {
    type Msg = FloodMsg;
    fn handle(&mut self, FloodMsg::Flood: FloodMsg, ctx: &mut Context<'_, Self>) {
        for sink in &self.sinks {
            for i in 0..200 {
                // A full mailbox is fine: keep the rings busy.
                if let Err(SendError::Closed(_)) = sink.try_tell(SinkMsg::Data(i)) {
                    return;
                }
            }
        }
        // Closed once the runtime stops: then the flood ends.
        let _ = ctx.addr().try_tell(FloodMsg::Flood);
    }
}

// Shutdown returns Ok while 2-slot rings overflow, actors flood every shard and outside threads
// flood too; the outside senders then see Closed.
#[test]
fn shutdown_with_full_rings() {
    for_each_shard_count(|n| {
        let rt = Runtime::builder()
            .shards(n)
            .ring_capacity(2)
            .build()
            .unwrap();
        let sinks: Vec<_> = (0..n)
            .map(|s| rt.spawn_on(s, Sink::default()).unwrap())
            .collect();
        for s in 0..n {
            let f = rt
                .spawn_on(
                    s,
                    Flooder {
                        sinks: sinks.clone(),
                    },
                )
                .unwrap();
            f.tell(FloodMsg::Flood).unwrap();
        }
        // Sends each outside thread made before the runtime closed (it may not be scheduled at
        // once on a machine whose cores the shards keep busy: the flood waits for it).
        let attempts: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let outside: Vec<_> = (0..2)
            .map(|t| {
                let sinks = sinks.clone();
                let attempts = attempts.clone();
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    loop {
                        let sink = &sinks[(i as usize + t) % sinks.len()];
                        match sink.try_tell(SinkMsg::Data(i)) {
                            Ok(()) | Err(SendError::Full(_)) => {
                                i += 1;
                                attempts[t].store(i, Ordering::Relaxed);
                            }
                            Err(SendError::Closed(_)) => return i,
                        }
                    }
                })
            })
            .collect();
        wait_until("the flood to be under way", || {
            let stats = rt.shard_stats();
            let handled: u64 = stats.iter().map(|s| s.handled).sum();
            let overflow: u64 = stats.iter().map(|s| s.ring_overflow).sum();
            handled > 5_000
                && (n == 1 || overflow > 0)
                && attempts.iter().all(|a| a.load(Ordering::Relaxed) > 0)
        });
        rt.shutdown().expect("shutdown returns Ok under a flood");
        for t in outside {
            assert!(join("outside flooder", t) > 0);
        }
        for sink in &sinks {
            assert!(matches!(
                sink.try_tell(SinkMsg::Data(0)),
                Err(SendError::Closed(SinkMsg::Data(0)))
            ));
        }
    });
}

// Shutdown returns Ok when every shard is parked.
#[test]
fn shutdown_while_parked() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let sinks: Vec<_> = (0..n)
            .map(|s| rt.spawn_on(s, Sink::default()).unwrap())
            .collect();
        // Snapshot before the asks: each shard parks again after answering its ask.
        let parks: Vec<u64> = rt.shard_stats().iter().map(|s| s.parks).collect();
        for sink in &sinks {
            assert_eq!(sink.ask(SinkMsg::Got, ASK), Ok(0));
        }
        wait_until("every shard to park again", || {
            rt.shard_stats()
                .iter()
                .zip(&parks)
                .all(|(s, p)| s.parks > *p)
        });
        rt.shutdown().expect("shutdown of parked shards");
    });
}

// After shutdown every send is refused (Closed for tells, Shutdown for asks), spawns from
// `stopped` hooks are SpawnError::Shutdown, and every hook saw StopReason::Shutdown.
#[test]
fn everything_is_refused_after_shutdown() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let stops = Log::default();
        let holders: Vec<_> = (0..n)
            .map(|s| rt.spawn_on(s, holder(&stops)).unwrap())
            .collect();
        for h in &holders {
            assert_eq!(h.ask(|r| HolderMsg::Echo(1, r), ASK), Ok(1));
        }
        rt.shutdown().expect("clean shutdown");
        for h in &holders {
            assert!(!h.is_alive());
            assert!(matches!(
                h.try_tell(HolderMsg::Data(2)),
                Err(SendError::Closed(HolderMsg::Data(2)))
            ));
            assert!(matches!(
                h.tell(HolderMsg::Data(3)),
                Err(SendError::Closed(HolderMsg::Data(3)))
            ));
            assert_eq!(
                h.ask(|r| HolderMsg::Echo(3, r), ASK),
                Err(AskError::Shutdown)
            );
            assert_eq!(
                block_on(h.ask_async(|r| HolderMsg::Echo(4, r), ASK)),
                Err(AskError::Shutdown)
            );
            assert_eq!(h.stop(), Err(SendError::Closed(())));
        }
        assert_eq!(*stops.lock().unwrap(), vec![shutdown_record(); n]);
    });
}

// Dropping the runtime shuts it down: actors get `stopped(Shutdown)` and are dropped, and the
// shard threads have exited (their thread-locals destroyed) before `drop` returns.
#[test]
fn drop_runtime_shuts_down_and_joins() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let stops = Log::default();
        let mut flags = Vec::new();
        let holders: Vec<_> = (0..n)
            .map(|s| {
                let (dropped, dropped_flag) = DropFlag::new();
                let (exit, exit_flag) = DropFlag::new();
                flags.push((dropped_flag, exit_flag));
                rt.spawn_on(
                    s,
                    Holder {
                        _dropped: Some(dropped),
                        thread_exit: Some(exit),
                        ..holder(&stops)
                    },
                )
                .unwrap()
            })
            .collect();
        for h in &holders {
            assert_eq!(h.ask(|r| HolderMsg::Echo(1, r), ASK), Ok(1));
        }
        drop(rt);
        for (s, (dropped, exited)) in flags.iter().enumerate() {
            assert!(dropped.load(Ordering::SeqCst), "actor on shard {s} dropped");
            assert!(exited.load(Ordering::SeqCst), "shard thread {s} exited");
        }
        assert_eq!(*stops.lock().unwrap(), vec![shutdown_record(); n]);
        assert!(!holders[0].is_alive());
    });
}

/// Holds shard `n - 1` in a handler past a 200 ms `shutdown_timeout`, shuts down, then releases
/// the handler; returns the shutdown result once the stuck shard has dropped its actor.
fn shutdown_with_stuck_handler(n: usize) -> Result<(), ShutdownError> {
    let rt = Runtime::builder()
        .shards(n)
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let s = n - 1;
    let stops = Log::default();
    let (dropped, dropped_flag) = DropFlag::new();
    let h = rt
        .spawn_on(
            s,
            Holder {
                _dropped: Some(dropped),
                ..holder(&stops)
            },
        )
        .unwrap();
    assert_eq!(h.ask(|r| HolderMsg::Echo(1, r), ASK), Ok(1));
    let (_gate, guard, _blocker) = block_shard(&rt, s);
    let result = rt.shutdown();
    // Release the stuck handler whatever the outcome, so the detached thread can exit.
    drop(guard);
    wait_until("the stuck shard to stop its actors", || {
        dropped_flag.load(Ordering::SeqCst)
    });
    result
}

// A handler stuck past shutdown_timeout makes shutdown return Timeout naming exactly its shard.
#[test]

fn stuck_handler_times_out_naming_its_shard() {
    for_each_shard_count(|n| {
        assert_eq!(
            shutdown_with_stuck_handler(n),
            Err(ShutdownError::Timeout { stuck: vec![n - 1] })
        );
    });
}

// A handler stuck past shutdown_timeout does not hang shutdown: it returns Timeout including
// the stuck shard, and once released the detached shard still stops its actors.
#[test]
fn stuck_handler_does_not_hang_shutdown() {
    for_each_shard_count(|n| match shutdown_with_stuck_handler(n) {
        Err(ShutdownError::Timeout { stuck }) => assert!(stuck.contains(&(n - 1)), "{stuck:?}"),
        other => panic!("expected Timeout, got {other:?}"),
    });
}
