//! Message accounting under chaos, shared by `stress_accounting.rs` and
//! `shutdown_under_load.rs`.
//!
//! Every user message sent to a receiver carries a [`Tracked`] identity `(sender, seq)` whose
//! state lives in a [`Ledger`] and ends in exactly one of:
//!
//! * `HANDLED`: a receiver handled it (and checked FIFO per sender for its incarnation);
//! * `RETURNED`: `try_tell`/`tell` handed it back (`SendError::Full`/`Closed`);
//! * `ASK_FAILED`: it was the request of an ask whose send failed; the runtime dropped it and
//!   the asker got `AskError::Closed`/`Full`/`Shutdown` instead;
//! * `DEAD`: it was dropped unhandled right after the dead-letter hook reported a `RecvMsg` on
//!   the same thread (the hook bumps a thread-local that the message's `Drop` consumes);
//! * `LOST`: dropped unhandled with none of the above — always a runtime bug.
//!
//! A second settlement of the same identity (a duplicate) is recorded as a problem. Senders:
//! outside threads (`try_tell`, blocking `tell`, blocking `ask`), one pump actor per shard
//! (`tell`, `Context::ask`), and the directory actor (the chaos `Panic` messages). A chaos
//! thread asks the directory actor to stop a receiver or make it panic and to spawn its
//! replacement on a random shard; senders learn the replacement from a shared directory when a
//! send comes back `Closed`.

// Each test binary uses a different subset of this harness.
#![allow(dead_code)]

use crate::common::{DEADLINE, XorShift64, join, wait_until};
use coreactor::{
    Actor, Addr, AskError, Context, DeadLetter, DeadLetterReason, Reply, Runtime, SendError,
    SpawnError, StopReason,
};
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Receivers (directory slots), spread over the shards.
pub const RECEIVERS: usize = 16;
/// Outside sender threads.
pub const OUTSIDE: usize = 3;
/// At most this many shards (one pump each).
pub const MAX_SHARDS: usize = 4;
/// The ledger lane of the chaos `Panic` messages (sent by the directory actor).
pub const CHAOS_LANE: u32 = (OUTSIDE + MAX_SHARDS) as u32;
/// Ledger lanes: outside senders, pumps, chaos.
pub const LANES: usize = OUTSIDE + MAX_SHARDS + 1;
/// Capacity of the chaos lane (one message per chaos panic at most).
const CHAOS_CAPACITY: usize = 1 << 16;
/// Generous: an ask that takes this long is a failure anyway.
const ASK_TIMEOUT: Duration = DEADLINE;
/// The payload of the injected panics (kept off stderr by [`quiet_chaos_panics`]).
pub const CHAOS_PANIC: &str = "chaos: injected panic";

const FREE: u8 = 0;
const IN_FLIGHT: u8 = 1;
const HANDLED: u8 = 2;
const RETURNED: u8 = 3;
const ASK_FAILED: u8 = 4;
const DEAD: u8 = 5;
const LOST: u8 = 6;

fn state_name(s: u8) -> &'static str {
    match s {
        FREE => "never sent",
        IN_FLIGHT => "in flight",
        HANDLED => "handled",
        RETURNED => "returned",
        ASK_FAILED => "ask send failed",
        DEAD => "dead-lettered",
        LOST => "LOST",
        _ => "?",
    }
}

thread_local! {
    /// `RecvMsg` dead letters reported by the hook on this thread whose message has not been
    /// dropped yet (the runtime reports, then drops, on the same thread).
    static DEAD_PENDING: Cell<u64> = const { Cell::new(0) };
    /// Set while this thread is inside an ask call: a request it cannot send is dropped by the
    /// runtime and reported to the asker as an `AskError`.
    static IN_ASK: Cell<bool> = const { Cell::new(false) };
}

fn in_ask<R>(f: impl FnOnce() -> R) -> R {
    IN_ASK.with(|c| c.set(true));
    let r = f();
    IN_ASK.with(|c| c.set(false));
    r
}

/// Keeps the injected panics off stderr; every other panic still goes to the previous hook.
pub fn quiet_chaos_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let text = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str));
            if text != Some(CHAOS_PANIC) {
                previous(info);
            }
        }));
    });
}

/// The seed: `STRESS_SEED` if set, else fresh.
pub fn base_seed() -> u64 {
    match std::env::var("STRESS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("STRESS_SEED={s:?} is not a u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            XorShift64::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next_u64()
        }
    }
}

/// A seed for a sub-stream (thread, actor, round) of `seed`.
pub fn derive(seed: u64, stream: u64) -> u64 {
    XorShift64::new(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

// ----- the ledger --------------------------------------------------------------------------------

struct Lane {
    next: AtomicU32,
    states: Box<[AtomicU8]>,
}

/// The state of every message identity, and the problems seen.
pub struct Ledger {
    lanes: Vec<Lane>,
    in_flight: AtomicI64,
    problems: AtomicU64,
    first_problems: Mutex<Vec<String>>,
}

/// Per-state counts over the whole ledger.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub sent: u64,
    pub in_flight: u64,
    pub handled: u64,
    pub returned: u64,
    pub ask_failed: u64,
    pub dead: u64,
    pub lost: u64,
}

impl Ledger {
    fn new(capacities: &[usize]) -> Arc<Ledger> {
        Arc::new(Ledger {
            lanes: capacities
                .iter()
                .map(|&c| Lane {
                    next: AtomicU32::new(0),
                    states: (0..c).map(|_| AtomicU8::new(FREE)).collect(),
                })
                .collect(),
            in_flight: AtomicI64::new(0),
            problems: AtomicU64::new(0),
            first_problems: Mutex::new(Vec::new()),
        })
    }

    /// A new message identity on `lane`, or `None` once the lane's budget is spent.
    fn alloc(self: &Arc<Self>, lane: u32) -> Option<Tracked> {
        let l = &self.lanes[lane as usize];
        let seq = l
            .next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                ((n as usize) < l.states.len()).then_some(n + 1)
            })
            .ok()?;
        l.states[seq as usize].store(IN_FLIGHT, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Some(Tracked {
            ledger: self.clone(),
            lane,
            seq,
        })
    }

    fn state(&self, lane: u32, seq: u32) -> u8 {
        self.lanes[lane as usize].states[seq as usize].load(Ordering::SeqCst)
    }

    /// Moves `(lane, seq)` from in flight to `to`; a second settlement is a problem.
    fn settle(&self, lane: u32, seq: u32, to: u8) -> bool {
        let cell = &self.lanes[lane as usize].states[seq as usize];
        match cell.compare_exchange(IN_FLIGHT, to, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                true
            }
            Err(was) => {
                self.problem(format!(
                    "message ({lane}, {seq}) {} but it was already {}: a duplicate",
                    state_name(to),
                    state_name(was)
                ));
                false
            }
        }
    }

    /// Records a problem (the first few with their text).
    pub fn problem(&self, text: String) {
        self.problems.fetch_add(1, Ordering::SeqCst);
        let mut first = self.first_problems.lock().unwrap();
        if first.len() < 20 {
            first.push(text);
        }
    }

    /// Messages created and not settled yet.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Messages created so far.
    pub fn sent(&self) -> u64 {
        self.lanes
            .iter()
            .map(|l| u64::from(l.next.load(Ordering::SeqCst)))
            .sum()
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for l in &self.lanes {
            let n = l.next.load(Ordering::SeqCst) as usize;
            t.sent += n as u64;
            for s in &l.states[..n] {
                match s.load(Ordering::SeqCst) {
                    IN_FLIGHT => t.in_flight += 1,
                    HANDLED => t.handled += 1,
                    RETURNED => t.returned += 1,
                    ASK_FAILED => t.ask_failed += 1,
                    DEAD => t.dead += 1,
                    _ => t.lost += 1,
                }
            }
        }
        t
    }

    /// The identities still in flight or lost (at most `max`), for failure messages.
    fn unsettled(&self, max: usize) -> Vec<(u32, u32, &'static str)> {
        let mut out = Vec::new();
        for (lane, l) in self.lanes.iter().enumerate() {
            let n = l.next.load(Ordering::SeqCst) as usize;
            for (seq, s) in l.states[..n].iter().enumerate() {
                let s = s.load(Ordering::SeqCst);
                if (s == IN_FLIGHT || s == LOST) && out.len() < max {
                    out.push((lane as u32, seq as u32, state_name(s)));
                }
            }
        }
        out
    }
}

/// The identity of one message; its `Drop` settles it if nobody else did.
pub struct Tracked {
    ledger: Arc<Ledger>,
    lane: u32,
    seq: u32,
}

impl Tracked {
    fn settle(&self, to: u8) -> bool {
        self.ledger.settle(self.lane, self.seq, to)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.ledger.state(self.lane, self.seq) != IN_FLIGHT {
            return;
        }
        let dead = DEAD_PENDING
            .try_with(|c| {
                let n = c.get();
                c.set(n.saturating_sub(1));
                n > 0
            })
            .unwrap_or(false);
        let to = if dead {
            DEAD
        } else if IN_ASK.try_with(Cell::get).unwrap_or(false) {
            ASK_FAILED
        } else {
            let thread = std::thread::current();
            self.ledger.problem(format!(
                "message ({}, {}) dropped unhandled on thread {:?} with no dead letter reported \
                 and no send error returned",
                self.lane,
                self.seq,
                thread.name().unwrap_or("?")
            ));
            LOST
        };
        self.settle(to);
    }
}

// ----- dead-letter hook --------------------------------------------------------------------------

/// What the dead-letter hook saw.
#[derive(Default)]
pub struct HookCounts {
    /// Dead letters of `RecvMsg`.
    pub recv: AtomicU64,
    /// Dead letters of any other message type (pump ticks, directory requests).
    pub other: AtomicU64,
    /// Of all of them, those with reason `Shutdown`.
    pub shutdown: AtomicU64,
}

impl HookCounts {
    pub fn total(&self) -> u64 {
        self.recv.load(Ordering::SeqCst) + self.other.load(Ordering::SeqCst)
    }
}

fn dead_letter_hook(counts: Arc<HookCounts>) -> impl Fn(&DeadLetter) + Send + Sync + 'static {
    let recv_type = std::any::type_name::<RecvMsg>();
    move |d: &DeadLetter| {
        if d.reason == DeadLetterReason::Shutdown {
            counts.shutdown.fetch_add(1, Ordering::SeqCst);
        }
        if d.message_type == recv_type {
            counts.recv.fetch_add(1, Ordering::SeqCst);
            DEAD_PENDING.with(|c| c.set(c.get() + 1));
        } else {
            counts.other.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// ----- shared state ------------------------------------------------------------------------------

/// Where senders look up the current incarnation of each receiver slot.
pub struct Directory {
    slots: Vec<Mutex<Option<Addr<Recv>>>>,
}

impl Directory {
    fn get(&self, slot: usize) -> Addr<Recv> {
        self.slots[slot]
            .lock()
            .unwrap()
            .clone()
            .expect("directory slot filled at start")
    }

    fn set(&self, slot: usize, addr: Addr<Recv>) {
        *self.slots[slot].lock().unwrap() = Some(addr);
    }
}

/// A sender's cache of the directory, refreshed when a send comes back `Closed`.
struct Routes(Vec<Option<Addr<Recv>>>);

impl Routes {
    fn new() -> Self {
        Routes(vec![None; RECEIVERS])
    }

    fn get(&mut self, dir: &Directory, slot: usize) -> Addr<Recv> {
        self.0[slot].get_or_insert_with(|| dir.get(slot)).clone()
    }

    fn invalidate(&mut self, slot: usize) {
        self.0[slot] = None;
    }
}

/// The outcome of one ask.
#[derive(Debug, Clone)]
pub struct AskRecord {
    pub lane: u32,
    pub seq: u32,
    pub result: Result<u32, AskError>,
}

/// State shared by the test, the senders and the actors.
pub struct Shared {
    pub ledger: Arc<Ledger>,
    pub dir: Directory,
    incarnations: AtomicU32,
    /// Receiver incarnations whose `started` ran.
    pub started: AtomicU64,
    /// Pumps that spent their budget.
    pub pumps_done: AtomicU64,
    /// Asks made by pumps, and their outcomes delivered back to the pumps.
    pub pump_asks: AtomicU64,
    pub pump_answers: Mutex<Vec<AskRecord>>,
    /// Messages handed back by `SendError`, as counted by their senders.
    pub returned: AtomicU64,
    /// Tells the chaos thread to finish.
    pub stop_chaos: AtomicBool,
    /// Set when the runtime shuts down: outside senders send a little more, then finish.
    pub winding_down: AtomicBool,
    /// What each outside sender is blocked in, for the failure message if one never returns.
    blocked_in: Vec<Mutex<Option<BlockedIn>>>,
}

/// A blocking call of an outside sender: the call, the receiver slot, the address.
type BlockedIn = (&'static str, usize, Addr<Recv>);

impl Shared {
    /// Settles a message handed back by a failed send; true if the receiver was closed.
    fn give_back(&self, e: SendError<RecvMsg>) -> bool {
        let closed = e.is_closed();
        let msg = e.into_inner();
        if msg.tracked().settle(RETURNED) {
            self.returned.fetch_add(1, Ordering::SeqCst);
        }
        closed
    }
}

// ----- actors ------------------------------------------------------------------------------------

/// What a receiver reports from its `stopped` hook.
#[derive(Debug)]
pub struct StopReport {
    pub slot: usize,
    pub incarnation: u32,
    pub handled: u64,
    pub reason: StopReason,
}

/// A receiver: handles tracked messages, checks FIFO per sender, reports when it stops.
pub struct Recv {
    slot: usize,
    incarnation: u32,
    last: [Option<u32>; LANES],
    handled: u64,
    shared: Arc<Shared>,
    reports: mpsc::Sender<StopReport>,
}

pub enum RecvMsg {
    Data(Tracked),
    Ask(Tracked, Reply<u32>),
    Panic(Tracked),
}

impl RecvMsg {
    fn tracked(&self) -> &Tracked {
        match self {
            RecvMsg::Data(t) | RecvMsg::Ask(t, _) | RecvMsg::Panic(t) => t,
        }
    }
}

impl Recv {
    fn new(
        slot: usize,
        incarnation: u32,
        shared: Arc<Shared>,
        reports: mpsc::Sender<StopReport>,
    ) -> Recv {
        Recv {
            slot,
            incarnation,
            last: [None; LANES],
            handled: 0,
            shared,
            reports,
        }
    }

    fn take(&mut self, t: &Tracked) {
        let last = &mut self.last[t.lane as usize];
        if let Some(prev) = *last
            && t.seq <= prev
        {
            self.shared.ledger.problem(format!(
                "FIFO violated: receiver slot {} incarnation {} handled ({}, {}) after ({}, {})",
                self.slot, self.incarnation, t.lane, t.seq, t.lane, prev
            ));
        }
        *last = Some(t.seq);
        if t.settle(HANDLED) {
            self.handled += 1;
        }
    }
}

impl Actor for Recv {
    type Msg = RecvMsg;

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        self.shared.started.fetch_add(1, Ordering::SeqCst);
    }

    fn handle(&mut self, msg: RecvMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            RecvMsg::Data(t) => self.take(&t),
            RecvMsg::Ask(t, reply) => {
                self.take(&t);
                reply.send(t.seq);
            }
            RecvMsg::Panic(t) => {
                self.take(&t);
                drop(t);
                panic!("{}", CHAOS_PANIC);
            }
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        let _ = self.reports.send(StopReport {
            slot: self.slot,
            incarnation: self.incarnation,
            handled: self.handled,
            reason: reason.clone(),
        });
    }
}

/// A sender actor: sends bursts of tracked messages (and some `Context::ask`s), one burst per
/// tick, re-arming itself until its lane's budget is spent.
pub struct Pump {
    lane: u32,
    shared: Arc<Shared>,
    rng: XorShift64,
    routes: Routes,
    burst: usize,
    done: bool,
}

pub enum PumpMsg {
    Tick,
    Answer(usize, u32, Result<u32, AskError>),
}

impl Actor for Pump {
    type Msg = PumpMsg;

    fn handle(&mut self, msg: PumpMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            PumpMsg::Tick => {
                for _ in 0..self.burst {
                    let Some(t) = self.shared.ledger.alloc(self.lane) else {
                        if !self.done {
                            self.done = true;
                            self.shared.pumps_done.fetch_add(1, Ordering::SeqCst);
                        }
                        return;
                    };
                    let r = self.rng.below(RECEIVERS);
                    let to = self.routes.get(&self.shared.dir, r);
                    if self.rng.below(100) < 5 {
                        let seq = t.seq;
                        self.shared.pump_asks.fetch_add(1, Ordering::SeqCst);
                        in_ask(|| {
                            ctx.ask(
                                &to,
                                move |reply| RecvMsg::Ask(t, reply),
                                ASK_TIMEOUT,
                                move |res| PumpMsg::Answer(r, seq, res),
                            );
                        });
                    } else if let Err(e) = to.tell(RecvMsg::Data(t))
                        && self.shared.give_back(e)
                    {
                        self.routes.invalidate(r);
                    }
                }
                // Replies to the pump's asks count towards its mailbox bound too, so the tick
                // may find it full: then re-arm through a timer, which bypasses the bound.
                match ctx.addr().try_tell(PumpMsg::Tick) {
                    Ok(()) => {}
                    Err(SendError::Full(tick)) => {
                        ctx.send_after(Duration::ZERO, tick);
                    }
                    Err(e) => {
                        if !self.shared.winding_down.load(Ordering::SeqCst) {
                            self.shared
                                .ledger
                                .problem(format!("pump {} could not re-arm: {e:?}", self.lane));
                        }
                    }
                }
            }
            PumpMsg::Answer(r, seq, result) => {
                if result == Err(AskError::Closed) {
                    self.routes.invalidate(r);
                }
                self.shared.pump_answers.lock().unwrap().push(AskRecord {
                    lane: self.lane,
                    seq,
                    result,
                });
            }
        }
    }
}

/// What the chaos thread asks the directory actor to do to a receiver slot.
#[derive(Debug, Clone, Copy)]
pub enum Chaos {
    Stop,
    Panic,
}

/// The directory actor: kills receivers as the chaos thread asks, spawns their replacements
/// and publishes them in the directory.
pub struct Admin {
    shared: Arc<Shared>,
    reports: mpsc::Sender<StopReport>,
}

pub enum AdminMsg {
    Restart {
        slot: usize,
        how: Chaos,
        shard: usize,
        reply: Reply<Result<u32, SpawnError>>,
    },
}

impl Actor for Admin {
    type Msg = AdminMsg;

    fn handle(&mut self, msg: AdminMsg, ctx: &mut Context<'_, Self>) {
        let AdminMsg::Restart {
            slot,
            how,
            shard,
            reply,
        } = msg;
        let old = self.shared.dir.get(slot);
        match how {
            Chaos::Stop => {
                let _ = old.stop();
            }
            Chaos::Panic => {
                if let Some(t) = self.shared.ledger.alloc(CHAOS_LANE)
                    && let Err(e) = old.try_tell(RecvMsg::Panic(t))
                {
                    self.shared.give_back(e);
                }
            }
        }
        let incarnation = self.shared.incarnations.fetch_add(1, Ordering::SeqCst);
        let (shared, reports) = (self.shared.clone(), self.reports.clone());
        let spawned = ctx.spawn_on(shard, move || Recv::new(slot, incarnation, shared, reports));
        if let Ok(addr) = &spawned {
            self.shared.dir.set(slot, addr.clone());
        }
        reply.send(spawned.map(|_| incarnation));
    }
}

// ----- outside threads ---------------------------------------------------------------------------

/// Sends the lane's budget from an outside thread: `try_tell`, blocking `tell`, and some
/// blocking `ask`s. Returns the ask outcomes.
fn outside_sender(shared: Arc<Shared>, lane: u32, seed: u64) -> Vec<AskRecord> {
    let mut rng = XorShift64::new(seed);
    let mut routes = Routes::new();
    let mut asks = Vec::new();
    let mut after_shutdown = 0;
    loop {
        if shared.winding_down.load(Ordering::SeqCst) {
            after_shutdown += 1;
            if after_shutdown > 500 {
                break;
            }
        }
        let Some(t) = shared.ledger.alloc(lane) else {
            break;
        };
        let r = rng.below(RECEIVERS);
        let to = routes.get(&shared.dir, r);
        let roll = rng.below(100);
        let blocked_in = &shared.blocked_in[lane as usize];
        if roll < 3 {
            let seq = t.seq;
            *blocked_in.lock().unwrap() = Some(("ask", r, to.clone()));
            let result = in_ask(|| to.ask(move |reply| RecvMsg::Ask(t, reply), ASK_TIMEOUT));
            if result == Err(AskError::Closed) {
                routes.invalidate(r);
            }
            asks.push(AskRecord { lane, seq, result });
        } else {
            let sent = if roll < 50 {
                to.try_tell(RecvMsg::Data(t))
            } else {
                *blocked_in.lock().unwrap() = Some(("tell", r, to.clone()));
                to.tell(RecvMsg::Data(t))
            };
            if let Err(e) = sent
                && shared.give_back(e)
            {
                routes.invalidate(r);
            }
        }
    }
    asks
}

/// How the chaos thread ended.
#[derive(Debug)]
pub struct ChaosReport {
    pub restarts: u64,
    /// The error that ended it, if not the `stop_chaos` flag.
    pub ended_by: Option<ChaosEnd>,
}

/// An error that ended the chaos thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChaosEnd {
    /// The directory actor could not spawn a replacement.
    Spawn(SpawnError),
    /// The ask to the directory actor failed.
    Ask(AskError),
}

fn chaos(shared: Arc<Shared>, admin: Addr<Admin>, shards: usize, seed: u64) -> ChaosReport {
    let mut rng = XorShift64::new(seed);
    let mut restarts = 0;
    while !shared.stop_chaos.load(Ordering::SeqCst) {
        // Pacing only: varies the interleavings, never decides an outcome.
        std::thread::sleep(Duration::from_micros(rng.below(1500) as u64));
        let slot = rng.below(RECEIVERS);
        let how = if rng.below(2) == 0 {
            Chaos::Stop
        } else {
            Chaos::Panic
        };
        let shard = rng.below(shards);
        let asked = admin.ask(
            |reply| AdminMsg::Restart {
                slot,
                how,
                shard,
                reply,
            },
            ASK_TIMEOUT,
        );
        match asked {
            Ok(Ok(_)) => restarts += 1,
            Ok(Err(e)) => {
                return ChaosReport {
                    restarts,
                    ended_by: Some(ChaosEnd::Spawn(e)),
                };
            }
            Err(e) => {
                return ChaosReport {
                    restarts,
                    ended_by: Some(ChaosEnd::Ask(e)),
                };
            }
        }
    }
    ChaosReport {
        restarts,
        ended_by: None,
    }
}

// ----- a run -------------------------------------------------------------------------------------

/// One run's parameters, all derived from its seed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub shards: usize,
    pub seed: u64,
    /// Messages per outside sender.
    pub outside_budget: usize,
    /// Messages per pump.
    pub pump_budget: usize,
    pub burst: usize,
    pub mailbox_capacity: usize,
    pub ring_capacity: usize,
    pub batch_budget: usize,
}

impl Plan {
    /// A plan for `shards` shards sending about `total` messages, knobs drawn from `seed`.
    pub fn new(shards: usize, seed: u64, total: usize) -> Plan {
        assert!((1..=MAX_SHARDS).contains(&shards));
        let mut rng = XorShift64::new(derive(seed, 1));
        let per = total / (OUTSIDE + shards);
        Plan {
            shards,
            seed,
            outside_budget: per,
            pump_budget: per,
            burst: [8, 32, 128][rng.below(3)],
            mailbox_capacity: [8, 64, 512][rng.below(3)],
            ring_capacity: [16, 64, 1024][rng.below(3)],
            batch_budget: [1, 16, 64][rng.below(3)],
        }
    }
}

/// A run in progress.
pub struct Run {
    pub plan: Plan,
    rt: Option<Runtime>,
    pub shared: Arc<Shared>,
    pub hooks: Arc<HookCounts>,
    reports: mpsc::Receiver<StopReport>,
    outside: Vec<JoinHandle<Vec<AskRecord>>>,
    chaos: Option<JoinHandle<ChaosReport>>,
}

/// What a finished run joined.
pub struct Joined {
    pub outside_asks: Vec<AskRecord>,
    pub chaos: ChaosReport,
}

impl Run {
    /// Starts the runtime, the receivers, the pumps, the directory actor, the outside senders
    /// and the chaos thread.
    pub fn start(plan: Plan, shutdown_timeout: Duration) -> Run {
        quiet_chaos_panics();
        let n = plan.shards;
        let mut capacities = vec![0; LANES];
        capacities[..OUTSIDE].fill(plan.outside_budget);
        capacities[OUTSIDE..OUTSIDE + n].fill(plan.pump_budget);
        capacities[CHAOS_LANE as usize] = CHAOS_CAPACITY;
        let shared = Arc::new(Shared {
            ledger: Ledger::new(&capacities),
            dir: Directory {
                slots: (0..RECEIVERS).map(|_| Mutex::new(None)).collect(),
            },
            incarnations: AtomicU32::new(0),
            started: AtomicU64::new(0),
            pumps_done: AtomicU64::new(0),
            pump_asks: AtomicU64::new(0),
            pump_answers: Mutex::new(Vec::new()),
            returned: AtomicU64::new(0),
            stop_chaos: AtomicBool::new(false),
            winding_down: AtomicBool::new(false),
            blocked_in: (0..OUTSIDE).map(|_| Mutex::new(None)).collect(),
        });
        let hooks = Arc::new(HookCounts::default());
        let rt = Runtime::builder()
            .shards(n)
            .mailbox_capacity(plan.mailbox_capacity)
            .ring_capacity(plan.ring_capacity)
            .batch_budget(plan.batch_budget)
            .spin_before_park(Duration::from_micros(10))
            .shutdown_timeout(shutdown_timeout)
            .on_dead_letter(dead_letter_hook(hooks.clone()))
            .build()
            .expect("runtime starts");
        let (report_tx, reports) = mpsc::channel();
        for slot in 0..RECEIVERS {
            let incarnation = shared.incarnations.fetch_add(1, Ordering::SeqCst);
            let recv = Recv::new(slot, incarnation, shared.clone(), report_tx.clone());
            let addr = rt.spawn_on(slot % n, recv).expect("spawn receiver");
            shared.dir.set(slot, addr);
        }
        let admin = rt
            .spawn_on(
                0,
                Admin {
                    shared: shared.clone(),
                    reports: report_tx,
                },
            )
            .expect("spawn directory actor");
        for shard in 0..n {
            let lane = (OUTSIDE + shard) as u32;
            let pump = Pump {
                lane,
                shared: shared.clone(),
                rng: XorShift64::new(derive(plan.seed, 100 + u64::from(lane))),
                routes: Routes::new(),
                burst: plan.burst,
                done: false,
            };
            let addr = rt.spawn_on(shard, pump).expect("spawn pump");
            addr.tell(PumpMsg::Tick).expect("start pump");
        }
        let outside = (0..OUTSIDE as u32)
            .map(|lane| {
                let shared = shared.clone();
                let seed = derive(plan.seed, 200 + u64::from(lane));
                std::thread::Builder::new()
                    .name(format!("outside-sender-{lane}"))
                    .spawn(move || outside_sender(shared, lane, seed))
                    .expect("spawn sender thread")
            })
            .collect();
        let chaos = {
            let shared = shared.clone();
            let seed = derive(plan.seed, 300);
            std::thread::Builder::new()
                .name("chaos".into())
                .spawn(move || chaos(shared, admin, n, seed))
                .expect("spawn chaos thread")
        };
        Run {
            plan,
            rt: Some(rt),
            shared,
            hooks,
            reports,
            outside,
            chaos: Some(chaos),
        }
    }

    /// Joins the outside senders, waits for the pumps to spend their budgets, stops the chaos
    /// thread and waits until every message and every pump ask is settled.
    pub fn drain(&mut self) -> Joined {
        let outside_asks = self.join_senders();
        let n = self.plan.shards as u64;
        wait_until("every pump to spend its budget", || {
            self.shared.pumps_done.load(Ordering::SeqCst) == n
        });
        self.shared.stop_chaos.store(true, Ordering::SeqCst);
        let chaos = join(
            "chaos thread",
            self.chaos.take().expect("chaos joined once"),
        );
        let ledger = &self.shared.ledger;
        wait_until(
            "every message to be handled, returned or dead-lettered",
            || ledger.in_flight() == 0,
        );
        let shared = &self.shared;
        wait_until("every pump ask to be answered", || {
            shared.pump_answers.lock().unwrap().len() as u64
                == shared.pump_asks.load(Ordering::SeqCst)
        });
        Joined {
            outside_asks,
            chaos,
        }
    }

    /// Joins the outside senders (after shutdown: they wind down) and the chaos thread.
    pub fn join_all(&mut self) -> Joined {
        let outside_asks = self.join_senders();
        self.shared.stop_chaos.store(true, Ordering::SeqCst);
        let chaos = join(
            "chaos thread",
            self.chaos.take().expect("chaos joined once"),
        );
        Joined {
            outside_asks,
            chaos,
        }
    }

    fn join_senders(&mut self) -> Vec<AskRecord> {
        let deadline = Instant::now() + DEADLINE;
        while !self.outside.iter().all(JoinHandle::is_finished) {
            if Instant::now() >= deadline {
                let mut status = String::new();
                for (lane, h) in self.outside.iter().enumerate() {
                    if h.is_finished() {
                        continue;
                    }
                    let _ = write!(status, "\n  outside sender {lane}: ");
                    match &*self.shared.blocked_in[lane].lock().unwrap() {
                        Some((op, slot, to)) => {
                            let _ = write!(
                                status,
                                "last blocking call: {op} to receiver slot {slot} at {to:?} \
                                 (is_alive {}, mailbox_len {}, winding down {})",
                                to.is_alive(),
                                to.mailbox_len(),
                                self.shared.winding_down.load(Ordering::SeqCst)
                            );
                        }
                        None => status.push_str("no blocking call made"),
                    }
                }
                panic!("outside senders still running after {DEADLINE:?}:{status}");
            }
            std::thread::park_timeout(Duration::from_millis(1));
        }
        self.outside
            .drain(..)
            .flat_map(|h| join("outside sender thread", h))
            .collect()
    }

    /// The runtime, until [`shutdown`](Self::shutdown).
    pub fn rt(&self) -> &Runtime {
        self.rt.as_ref().expect("runtime not shut down yet")
    }

    /// Shuts the runtime down while whatever runs keeps running, and asserts that the shutdown
    /// finished cleanly within its timeout.
    pub fn shutdown(&mut self) {
        self.shared.winding_down.store(true, Ordering::SeqCst);
        let rt = self.rt.take().expect("shut down once");
        let result = rt.shutdown();
        assert_eq!(
            result,
            Ok(()),
            "shutdown must finish cleanly within its timeout"
        );
    }

    /// Checks the accounting; see [`verify`].
    pub fn verify(&self, joined: &Joined, after_shutdown: bool) -> Verdict {
        assert!(self.rt.is_none(), "verify after shutdown");
        verify(
            &self.shared,
            &self.hooks,
            &self.reports,
            joined,
            after_shutdown,
        )
    }

    /// Waits until at least `n` messages were sent (or every budget is spent).
    pub fn wait_sent(&self, n: u64) {
        let ledger = &self.shared.ledger;
        let all = self.plan.outside_budget * OUTSIDE + self.plan.pump_budget * self.plan.shards;
        wait_until("traffic to reach the shutdown point", || {
            let sent = ledger.sent();
            sent >= n || sent >= all as u64
        });
    }
}

/// Everything checked after the runtime shut down, and the counts for the log.
pub struct Verdict {
    pub failures: Vec<String>,
    pub summary: String,
}

/// Checks the accounting of a run whose runtime has shut down and whose outside threads have
/// joined. `after_shutdown`: the runtime was shut down under load (asks may end with
/// `Shutdown`, pump asks may stay unanswered).
pub fn verify(
    shared: &Shared,
    hooks: &HookCounts,
    reports: &mpsc::Receiver<StopReport>,
    joined: &Joined,
    after_shutdown: bool,
) -> Verdict {
    let mut failures = Vec::new();
    let ledger = &shared.ledger;
    let t = ledger.tally();

    // Every message is in exactly one final state.
    if t.in_flight != 0 || t.lost != 0 {
        failures.push(format!(
            "{} messages still in flight and {} lost after shutdown; first: {:?}",
            t.in_flight,
            t.lost,
            ledger.unsettled(10)
        ));
    }
    let settled = t.handled + t.returned + t.ask_failed + t.dead;
    if settled + t.in_flight + t.lost != t.sent {
        failures.push(format!("the tally does not add up: {t:?}"));
    }
    let problems = ledger.problems.load(Ordering::SeqCst);
    if problems != 0 {
        failures.push(format!(
            "{problems} problems (duplicates, FIFO violations, losses), first: {:#?}",
            ledger.first_problems.lock().unwrap()
        ));
    }

    // Dead letters: one hook call per dropped message.
    let hook_recv = hooks.recv.load(Ordering::SeqCst);
    if hook_recv != t.dead {
        failures.push(format!(
            "the dead-letter hook reported {hook_recv} RecvMsg dead letters, but {} messages \
             were dropped unhandled right after a report",
            t.dead
        ));
    }

    // Returned messages, as counted by their senders.
    let returned = shared.returned.load(Ordering::SeqCst);
    if returned != t.returned {
        failures.push(format!(
            "senders counted {returned} returned messages, the ledger {}",
            t.returned
        ));
    }

    // Handled messages, as reported by each incarnation's `stopped` hook.
    let mut seen = std::collections::HashSet::new();
    let mut reported_handled = 0;
    let mut stop_reports = 0u64;
    for r in reports.try_iter() {
        stop_reports += 1;
        reported_handled += r.handled;
        if !seen.insert(r.incarnation) {
            failures.push(format!(
                "incarnation {} of slot {} reported stopping twice",
                r.incarnation, r.slot
            ));
        }
        let expected = match &r.reason {
            StopReason::Requested => true,
            StopReason::Panicked(m) => m == CHAOS_PANIC,
            StopReason::Shutdown => true,
            _ => false,
        };
        if !expected {
            failures.push(format!("unexpected stop: {r:?}"));
        }
    }
    let started = shared.started.load(Ordering::SeqCst);
    if stop_reports != started {
        failures.push(format!(
            "{started} receivers started but {stop_reports} reported stopping"
        ));
    }
    if reported_handled != t.handled {
        failures.push(format!(
            "receivers reported {reported_handled} handled messages, the ledger {}",
            t.handled
        ));
    }

    // Asks: each one ended with Ok (its request handled) or a typed error that matches what
    // happened to its request.
    let pump_answers = shared.pump_answers.lock().unwrap();
    let pump_asks = shared.pump_asks.load(Ordering::SeqCst);
    if !after_shutdown && pump_answers.len() as u64 != pump_asks {
        failures.push(format!(
            "pumps made {pump_asks} asks but got {} answers",
            pump_answers.len()
        ));
    }
    let mut ask_counts = std::collections::BTreeMap::<String, u64>::new();
    let mut ask_failures = 0;
    for a in joined.outside_asks.iter().chain(pump_answers.iter()) {
        let state = ledger.state(a.lane, a.seq);
        let key = match &a.result {
            Ok(_) => "Ok".to_string(),
            Err(e) => format!("{e:?}"),
        };
        *ask_counts.entry(key).or_default() += 1;
        let consistent = match &a.result {
            Ok(v) => *v == a.seq && state == HANDLED,
            Err(AskError::Closed | AskError::Full) => state == ASK_FAILED,
            Err(AskError::Dropped) => state == DEAD,
            Err(AskError::Shutdown) => after_shutdown && (state == DEAD || state == ASK_FAILED),
            Err(_) => false,
        };
        if !consistent {
            ask_failures += 1;
            if ask_failures <= 10 {
                failures.push(format!(
                    "ask ({}, {}) ended with {:?} but its request was {}",
                    a.lane,
                    a.seq,
                    a.result,
                    state_name(state)
                ));
            }
        }
    }
    if ask_failures > 10 {
        failures.push(format!("... {ask_failures} inconsistent asks in all"));
    }

    let mut summary = String::new();
    let _ = write!(
        summary,
        "sent {} = handled {} + returned {} + ask send failed {} + dead-lettered {}; \
         hook: {} RecvMsg, {} other, {} at shutdown; restarts {}; incarnations started {}; \
         asks {:?}",
        t.sent,
        t.handled,
        t.returned,
        t.ask_failed,
        t.dead,
        hook_recv,
        hooks.other.load(Ordering::SeqCst),
        hooks.shutdown.load(Ordering::SeqCst),
        joined.chaos.restarts,
        started,
        ask_counts,
    );
    Verdict { failures, summary }
}
