//! The shard-local half of a shard and its reactor loop.
//!
//! # The loop
//!
//! One iteration of [`ShardLocal::run_once`]:
//!
//! 1. refresh the cached clock (unless the previous iteration ended with an actor's turn,
//!    which read it already);
//! 2. poll the head slot of every inbound ring (one load each) and take the doorbell's work
//!    bits (a plain load, and an RMW only when a bit is set); drain the rings that hold
//!    messages or whose bit is set, and the injection queue if its bit is set;
//! 3. deliver envelopes that this shard queued to itself (replies, controls, early arrivals);
//! 4. fire due timers;
//! 5. run every actor that was ready at the start of the step, each for at most
//!    `batch_budget` messages (fairness), re-queueing those with messages left;
//! 6. flush outbound rings: publish each dirty ring once and, if its shard announced that it
//!    sleeps, ring that shard's doorbell.
//!
//! When an iteration finds nothing to do the shard spins for `spin_before_park`, watching its
//! doorbell word and the head slot of every inbound ring, then parks: it announces `SLEEPING`
//! in the doorbell word (refused if work bits are set), polls its rings once more (not
//! blocking if one has a message), and sleeps in `epoll_wait` until its eventfd, an I/O event
//! or the next timer deadline wakes it. Senders pay the wake-up syscall only when they see
//! `SLEEPING`.
//!
//! The rings and the injection queue's bounded lane are *polled sources* of the doorbell
//! (`shard::doorbell`, "Polled sources"): an awake shard finds their messages by looking at
//! them, so a sender to an awake shard pays no read-modify-write on that shard's doorbell line
//! and the receiver none to take it back; a ring message's stamp sits in the line the message
//! is read from, so the receiver sees it with one cache-line transfer. The price is one load
//! per peer per iteration, and two for the lane (lines that stay in the cache while idle). The
//! doorbell keeps naming the unbounded injection lane (shard threads of other runtimes), the
//! sources of a shard that slept, and the news that is in no queue (room freed in a ring, a
//! change of the runtime's state).
//!
//! # Shutdown
//!
//! When the runtime is stopping, each shard (1) stops every actor (their queued messages become
//! dead letters, which answers pending asks with an error), drops its timers and pending asks,
//! and flushes or discards its outbound buffers; (2) signals it is done and keeps discarding
//! whatever still arrives until every shard is done; (3) closes its injection queue, drains its
//! rings a last time and exits.

mod asks;
#[cfg(not(coreactor_loom))]
mod io_dispatch;
mod migrate;
mod timers;

pub(crate) use migrate::{HomeId, Movable};

use super::envelope::EnvelopeKind;
use super::{DeadLetterReason, Envelope, RtShared, ShardShared};
use crate::mailbox::ring::{Consumer, Producer};
use crate::shard::doorbell::{INJECT, PEER_BITS, peer_bit};
use crate::stats::ShardCounters;
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use crate::timer::{TimerKey, TimerWheel};
use asks::AskTable;
pub(crate) use asks::{PendingAsk, REPLY_VT};
use crossbeam_utils::CachePadded;
use std::any::Any;
use std::cell::{Cell as StdCell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use timers::IntervalEntry;
pub(crate) use timers::TimerAction;

/// What a turn of an actor left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Its mailbox is empty.
    Idle,
    /// It has more messages: run it again after the others.
    More,
    /// It stopped and finished its shutdown: remove it.
    Stopped,
}

/// An actor as the shard sees it: something that runs turns. Implemented by the actor layer.
pub(crate) trait Cell: Any {
    /// Runs at most `budget` messages.
    fn run(&self, shard: &ShardLocal, budget: usize) -> Turn;
    /// Runtime shutdown: stop at once; queued messages become dead letters.
    fn abort(&self, shard: &ShardLocal);
    /// Counts `n` messages delivered past the mailbox bound (timer, notify) in the depth of
    /// the actor's address.
    fn add_forced(&self, shard: &ShardLocal, n: u32);
    /// A timer the actor armed on this shard fired.
    fn timer_fired(&self);
    /// True for a migratable actor at home (a candidate for stealing).
    fn migratable(&self) -> bool;
    /// Packs the actor for another shard if nothing ties it here; the cell is then empty.
    fn pack(&self, shard: &ShardLocal) -> Option<Box<dyn Movable>>;
    /// The runtime's graceful phase began: an actor without a supervisor begins its S-phase
    /// (supervised ones are stopped by their supervisors).
    fn drain(&self, shard: &ShardLocal);
    /// True if messages (user or control) wait for this actor.
    fn has_work(&self) -> bool;
    /// The concrete cell, whose `TypeId` a [`TypedCell`] reads once, for typed lookups.
    fn as_any(&self) -> &dyn Any;
}

/// The actor cell a drain delivered its last user message to. Messages arrive in bursts for
/// one actor (a producer's turn, an outside flood), so while the next envelope names the same
/// `(slot, generation)` it is pushed into that cell without the slab lookup, the type check and
/// the scheduling of [`ShardLocal::push_typed_in`] (about 40 % of a delivery's instructions in the
/// fan-in probe, `docs/benchmarks.md`, session 12).
///
/// A run lives on the stack of one drain (`drain_inbound`, `drain_local_queued`), and only user
/// messages are delivered while it holds a target: any other envelope ends it first (`accept`),
/// since a task or a control message may change the slab or an actor's state. Between two user
/// deliveries no actor runs, so what the recording push established still holds for the next
/// one: the cell is live, accepts messages, and is on the ready queue.
#[derive(Default)]
pub(crate) struct DeliveryRun {
    target: Option<RunTarget>,
}

struct RunTarget {
    slot: u32,
    generation: u32,
    /// A strong reference: the run never points at a freed cell, whatever happens to the slab.
    cell: TypedCell,
}

impl DeliveryRun {
    /// The run's cell if it is the live cell of type `C` at `(slot, generation)`.
    #[inline]
    pub(crate) fn cell<C: Cell>(&self, slot: u32, generation: u32) -> Option<&C> {
        let t = self.target.as_ref()?;
        if t.slot != slot || t.generation != generation {
            return None;
        }
        t.cell.get::<C>()
    }

    /// Ends the run: the next delivery looks its actor up.
    #[inline]
    pub(crate) fn end(&mut self) {
        self.target = None;
    }

    /// Makes `cell` (just found live at `(slot, generation)`, accepting and scheduled) the
    /// run's target.
    #[inline]
    fn record(&mut self, slot: u32, generation: u32, cell: &TypedCell) {
        self.target = Some(RunTarget {
            slot,
            generation,
            cell: cell.share(),
        });
    }
}

use typed_cell::TypedCell;

/// The one place where an actor cell is used as its concrete type.
mod typed_cell {
    use super::Cell;
    use std::any::{Any, TypeId};
    use std::ops::Deref;
    use std::rc::Rc;

    /// An actor cell with the `TypeId` of its concrete type, read from the cell itself when it
    /// was wrapped. A typed lookup ([`get`](Self::get)) compares it with a constant and casts,
    /// where a downcast makes two dynamic calls (`as_any`, then `type_id`): on a same-shard
    /// send that halved the rate (`docs/benchmarks.md`, session 16).
    ///
    /// Invariant: `cell_type` is the `TypeId` of the concrete type behind `cell`; both fields
    /// are private and set together, only by [`new`](Self::new) and [`share`](Self::share).
    pub(crate) struct TypedCell {
        cell: Rc<dyn Cell>,
        cell_type: TypeId,
    }

    impl TypedCell {
        pub(crate) fn new(cell: Rc<dyn Cell>) -> TypedCell {
            // `<dyn Any>::type_id` names the concrete cell behind the trait object.
            let cell_type = <dyn Any>::type_id(cell.as_any());
            TypedCell { cell, cell_type }
        }

        /// Another handle on the same cell.
        #[inline]
        pub(crate) fn share(&self) -> TypedCell {
            TypedCell {
                cell: Rc::clone(&self.cell),
                cell_type: self.cell_type,
            }
        }

        /// The cell as its concrete type `C`, if that is its type.
        #[inline(always)]
        pub(crate) fn get<C: Cell>(&self) -> Option<&C> {
            if self.cell_type != TypeId::of::<C>() {
                return None;
            }
            // SAFETY: `cell_type` is the `TypeId` of the concrete type behind `cell` (the
            // invariant above) and it equals `C`'s, so the data pointer of the `Rc<dyn Cell>`
            // points at a live `C`, kept alive by the `Rc` for as long as `&self` borrows it.
            Some(unsafe { &*Rc::as_ptr(&self.cell).cast::<C>() })
        }
    }

    impl Deref for TypedCell {
        type Target = Rc<dyn Cell>;
        fn deref(&self) -> &Rc<dyn Cell> {
            &self.cell
        }
    }
}

struct Entry {
    cell: TypedCell,
    generation: u32,
    scheduled: StdCell<bool>,
    /// Counted in `migratable_home`.
    counted_migratable: bool,
}

/// The live entry at `(slot, generation)` of `slab`, if there is one.
#[inline(always)]
fn live_entry(slab: &[Option<Entry>], slot: u32, generation: u32) -> Option<&Entry> {
    match slab.get(slot as usize) {
        Some(Some(e)) if e.generation == generation => Some(e),
        _ => None,
    }
}

impl Entry {
    fn new(cell: Rc<dyn Cell>, generation: u32, counted_migratable: bool) -> Entry {
        Entry {
            cell: TypedCell::new(cell),
            generation,
            scheduled: StdCell::new(false),
            counted_migratable,
        }
    }
}

struct OutLane {
    producer: Producer<Envelope>,
    overflow: VecDeque<Envelope>,
    dirty: bool,
    publish_batch: usize,
}

impl OutLane {
    /// Moves the oldest overflowed envelopes into the ring while it has room (FIFO: the
    /// overflow holds everything sent after the first envelope that found the ring full), then
    /// publishes. True if anything was published.
    #[inline]
    fn refill(&mut self) -> bool {
        while let Some(env) = self.overflow.pop_front() {
            if let Err(env) = self.producer.try_push(env) {
                self.overflow.push_front(env);
                break;
            }
        }
        self.producer.publish()
    }
}

/// Per-shard knobs the loop needs (resolved from the configuration).
#[derive(Debug, Clone)]
pub(crate) struct ShardParams {
    pub(crate) steal: crate::config::StealConfig,
    /// Distance to each peer's CPU (`shard::topology`): steal from the nearest first.
    pub(crate) peer_distance: Vec<u8>,
    pub(crate) batch_budget: usize,
    pub(crate) spin_before_park: Duration,
    pub(crate) spin_before_yield: Duration,
    /// The lane-pacing pause in nanoseconds ([`pacing_pause`] of `ShardConfig::inject_pacing`
    /// and the mailbox capacity; zero: never pause).
    pub(crate) inject_pacing_ns: u64,
    pub(crate) tick_ns: u64,
    #[cfg_attr(coreactor_loom, allow(dead_code))]
    pub(crate) io_events: usize,
}

/// Where the shard's clock comes from.
pub(crate) enum Clock {
    /// Real monotonic time since the runtime's epoch (the time-stamp counter where it can be
    /// trusted, see `shard::tsc`).
    Real(crate::shard::tsc::ShardClock),
    /// A virtual clock advanced by hand (test kit), in nanoseconds.
    Manual(Rc<StdCell<u64>>),
}

/// The half of a shard owned by its thread.
pub(crate) struct ShardLocal {
    pub(crate) id: usize,
    pub(crate) shared: Arc<ShardShared>,
    pub(crate) rt: Arc<RtShared>,
    pub(crate) peers: Box<[Arc<ShardShared>]>,
    pub(crate) params: ShardParams,
    slab: RefCell<Vec<Option<Entry>>>,
    ready: RefCell<VecDeque<u32>>,
    local_q: RefCell<VecDeque<Envelope>>,
    early: RefCell<HashMap<u32, Vec<Envelope>>>,
    out: RefCell<Vec<Option<OutLane>>>,
    dirty: RefCell<Vec<usize>>,
    /// Inbound ring endpoints, each on lines of its own: the vector was allocated by the thread
    /// that built the runtime, next to the other shards' vectors, and the consumer's private
    /// indices change on every drain.
    inbound: RefCell<Vec<CachePadded<Option<Consumer<Envelope>>>>>,
    timers: RefCell<TimerWheel<TimerAction>>,
    /// A lower bound, in the clock's nanoseconds, of the earliest timer deadline (`u64::MAX`:
    /// no timer): `fire_timers` looks at the wheel only once the clock reaches it. Lowered by
    /// every insertion (`insert_timer`), made exact by every `fire_timers` that looked;
    /// cancelling leaves it low, which costs one needless look.
    timer_due_ns: StdCell<u64>,
    fired: RefCell<Vec<(TimerKey, TimerAction)>>,
    asks: RefCell<AskTable>,
    intervals: RefCell<Vec<IntervalEntry>>,
    interval_free: RefCell<Vec<u32>>,
    clock: Clock,
    now: StdCell<u64>,
    /// An actor's turn refreshed `now` (in `end_turn`) since the loop last refreshed it: the
    /// next iteration may start without its own clock read (see `run_once`).
    clock_fresh: StdCell<bool>,
    last_account: StdCell<u64>,
    /// What the next messages taken from the injection queue are stamped with (their
    /// [`STAMP_ON_ARRIVAL`](crate::shard::STAMP_ON_ARRIVAL) replaced): the shard's clock at
    /// its previous take of that queue, or at the end of its last idle period (see
    /// `drain_inbound`).
    inject_since: StdCell<u64>,
    /// Consecutive polls that found the injection lane's bounded lane holding work (see
    /// [`pace_inject`](Self::pace_inject)).
    inject_streak: StdCell<u32>,
    /// While non-zero, the shard's clock time until which it does not poll the bounded lane
    /// (zero: it polls). Cleared before every park.
    inject_resume_at: StdCell<u64>,
    /// The next peer `poll_some_inbound` looks at.
    poll_cursor: StdCell<usize>,
    stopping: StdCell<bool>,
    /// The graceful phase of shutdown reached this shard.
    drain_started: StdCell<bool>,
    /// Actors of this shard that run elsewhere: slot → where (see `migrate`).
    forwards: RefCell<HashMap<u32, migrate::Forward>>,
    /// Guests (actors from other shards) by local slot.
    guests: RefCell<HashMap<u32, migrate::Guest>>,
    /// Guests by home identity `(home shard, slot, generation)` → local `(slot, generation)`.
    guest_slots: RefCell<HashMap<migrate::HomeKey, (u32, u32)>>,
    /// Migratable actors installed here at home.
    migratable_home: StdCell<usize>,
    /// The last value stored in `shared.stealable`.
    stealable_published: StdCell<bool>,
    /// A steal request of this shard awaits its answer.
    steal_in_flight: StdCell<bool>,
    /// After refusing a thief, this shard does not offer work again before this time (its
    /// clock, ns): otherwise a victim whose ready actors cannot move would re-offer, and wake
    /// the thief, at every loop iteration.
    offer_quiet_until: StdCell<u64>,
    /// xorshift64 state for victim choice (seeded by the shard id).
    rng: StdCell<u64>,
    #[cfg(not(coreactor_loom))]
    poller: crate::shard::poller::Poller,
    #[cfg(not(coreactor_loom))]
    events: RefCell<crate::shard::poller::Events>,
    #[cfg(not(coreactor_loom))]
    io: RefCell<crate::shard::io::IoTable>,
    #[cfg(not(coreactor_loom))]
    io_scratch: RefCell<Vec<(u64, crate::shard::io::Readiness)>>,
    iterations: StdCell<u64>,
    /// True from the moment the loop found no work until the next iteration starts.
    idle: StdCell<bool>,
    /// The runtime's state (`RUNNING`, `DRAINING`, ...) as read once at the start of this
    /// loop iteration ([`observe_runtime`](Self::observe_runtime)).
    rt_state: StdCell<u8>,
}

/// How long a shard whose outbound overflow waits for ring space parks at most before it
/// retries (nothing wakes it when the peer frees space).
const BACKLOG_RETRY: Duration = Duration::from_micros(200);

/// Most envelopes a shard writes into a ring before it publishes them mid-turn (a quarter of
/// the ring if that is less). Tied to the ring's length it was 4096 with the 16384-slot default
/// rings, and a receiver that had caught up idled for ~135 µs between publications during a
/// flood, long enough to park: 100–260 parks, and as many wake-up syscalls, per 4 M messages
/// (`docs/benchmarks.md`, session 8).
const PUBLISH_BATCH_MAX: usize = 256;

/// While a ring's overflow buffer is not empty, how many envelopes a shard adds to it between
/// two attempts to move its oldest ones into the ring. One read of the receiver's index per
/// attempt; with an attempt only every `publish_batch` envelopes the sender stayed in overflow
/// mode (three copies per message instead of one) for most of a long flood.
const REFILL_EVERY: usize = 64;

/// Inbound rings a shard polls between two turns (`poll_some_inbound`); every loop iteration
/// polls them all.
const POLL_PER_TURN: usize = 8;

/// Consecutive polls finding the injection lane holding work after which a small drain pauses
/// the polls ([`ShardLocal::pace_inject`]).
const PACING_STREAK: u32 = 4;
/// A drain of the injection queue taking fewer envelopes than this is small: the shard is right
/// behind its senders ([`ShardLocal::pace_inject`]).
const PACING_SMALL_DRAIN: usize = 64;
/// The shortest lane-pacing pause (`pacing_pause`).
const PACING_MIN_NS: u64 = 2_000;
/// Lane pacing: nanoseconds per mailbox slot of a pause (`pacing_pause`). Outside threads
/// streaming into one actor write the lane at up to ~30 M msgs/s on the reference machine, so
/// a pause of `capacity × 8 ns` lets them write about a quarter of a mailbox.
const PACING_NS_PER_SLOT: u64 = 8;

/// The length of a lane-pacing pause (`ShardLocal::pace_inject`) for a runtime whose mailboxes
/// hold `mailbox_capacity` messages and whose configured `inject_pacing` is `longest`: enough
/// time for the senders to write about a quarter of a mailbox, within
/// `[min(2 µs, longest), longest]`; zero (no pacing) if `longest` is zero.
///
/// A longer pause lets the senders fill more cells the shard does not touch, which it then
/// takes in one batch; but senders that fill the mailbox during a pause wait for it to end. On
/// the reference machine, two outside threads feeding one actor ran best with 8 µs pauses
/// into mailboxes of 1 024 and 4 096 messages (+13 % to +56 % over 2 µs) and with 2 µs into
/// mailboxes of 64 and 256, where 8 µs lost 10 % to 59 % (`docs/benchmarks.md`, session 11).
pub(crate) fn pacing_pause(longest: Duration, mailbox_capacity: u32) -> u64 {
    let longest = u64::try_from(longest.as_nanos()).unwrap_or(u64::MAX);
    let wanted = u64::from(mailbox_capacity).saturating_mul(PACING_NS_PER_SLOT);
    wanted.clamp(PACING_MIN_NS.min(longest), longest)
}

/// Idle spins between two looks at the clock, the outbound backlog and the steal offers.
/// Under loom a spin is a yield point and the model's clock never moves: one spin, then park.
const SPINS_PER_CHECK: u32 = if cfg!(coreactor_loom) { 1 } else { 64 };

/// The epoll token of the shard's own wake-up eventfd.
#[cfg(not(coreactor_loom))]
const WAKE_TOKEN: u64 = u64::MAX;

impl ShardLocal {
    /// Builds the shard-local half. `producers[j]` / `consumers[j]` are the ring endpoints
    /// towards / from shard `j` (`None` for `j == id`).
    pub(crate) fn new(
        shared: Arc<ShardShared>,
        peers: Box<[Arc<ShardShared>]>,
        params: ShardParams,
        producers: Vec<Option<Producer<Envelope>>>,
        consumers: Vec<Option<Consumer<Envelope>>>,
        clock: Clock,
    ) -> std::io::Result<ShardLocal> {
        let rt = shared.rt.clone();
        let out = producers
            .into_iter()
            .map(|p| {
                p.map(|producer| {
                    // A power of two (ring capacities are), so `send_remote` tests a multiple
                    // of it with a mask.
                    let publish_batch = (producer.capacity() / 4).clamp(1, PUBLISH_BATCH_MAX);
                    debug_assert!(publish_batch.is_power_of_two());
                    OutLane {
                        producer,
                        overflow: VecDeque::new(),
                        dirty: false,
                        publish_batch,
                    }
                })
            })
            .collect();
        #[cfg(not(coreactor_loom))]
        let poller = {
            let poller = crate::shard::poller::Poller::new()?;
            poller.register(
                shared.doorbell.waker().fd(),
                WAKE_TOKEN,
                crate::shard::poller::Interest::READABLE,
            )?;
            poller
        };
        let local = ShardLocal {
            id: shared.id,
            rt,
            peers,
            #[cfg(not(coreactor_loom))]
            events: RefCell::new(crate::shard::poller::Events::with_capacity(
                params.io_events,
            )),
            params,
            slab: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            local_q: RefCell::new(VecDeque::new()),
            early: RefCell::new(HashMap::new()),
            out: RefCell::new(out),
            dirty: RefCell::new(Vec::new()),
            inbound: RefCell::new(consumers.into_iter().map(CachePadded::new).collect()),
            timers: RefCell::new(TimerWheel::new(0)),
            timer_due_ns: StdCell::new(u64::MAX),
            fired: RefCell::new(Vec::new()),
            asks: RefCell::new(AskTable::default()),
            intervals: RefCell::new(Vec::new()),
            interval_free: RefCell::new(Vec::new()),
            clock,
            now: StdCell::new(0),
            clock_fresh: StdCell::new(false),
            last_account: StdCell::new(0),
            inject_since: StdCell::new(0),
            inject_streak: StdCell::new(0),
            inject_resume_at: StdCell::new(0),
            poll_cursor: StdCell::new(0),
            stopping: StdCell::new(false),
            drain_started: StdCell::new(false),
            forwards: RefCell::new(HashMap::new()),
            guests: RefCell::new(HashMap::new()),
            guest_slots: RefCell::new(HashMap::new()),
            migratable_home: StdCell::new(0),
            stealable_published: StdCell::new(false),
            steal_in_flight: StdCell::new(false),
            offer_quiet_until: StdCell::new(0),
            rng: StdCell::new(0x9E37_79B9_7F4A_7C15 ^ (shared.id as u64 + 1)),
            #[cfg(not(coreactor_loom))]
            poller,
            #[cfg(not(coreactor_loom))]
            io: RefCell::new(crate::shard::io::IoTable::default()),
            #[cfg(not(coreactor_loom))]
            io_scratch: RefCell::new(Vec::new()),
            iterations: StdCell::new(0),
            idle: StdCell::new(false),
            rt_state: StdCell::new(crate::shard::RUNNING),
            shared,
        };
        local.refresh_clock();
        local.last_account.set(local.now.get());
        // Not the epoch: what the first take finds was sent about when the shard started.
        local.inject_since.set(local.now.get());
        Ok(local)
    }

    // ----- time ---------------------------------------------------------------------------

    /// The shard's cached clock (nanoseconds since the runtime's epoch), refreshed once per
    /// loop iteration.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.now.get()
    }

    fn read_clock(&self) -> u64 {
        match &self.clock {
            Clock::Real(clock) => clock.now_ns(),
            Clock::Manual(c) => c.get(),
        }
    }

    fn refresh_clock(&self) -> u64 {
        let now = self.read_clock().max(self.now.get());
        self.now.set(now);
        now
    }

    /// Ends a turn: publishes what the turn sent to other shards, then reads the real clock
    /// once and returns the turn's duration in nanoseconds, measured from the end of the
    /// previous turn (or the start of the loop iteration). The reading also refreshes the
    /// cached clock, so one read per turn serves both.
    ///
    /// Publishing first takes the turn's bookkeeping (this clock read, the caller's return of
    /// mailbox credit and the statistics stores) off the path of a request or reply: a
    /// cross-core round trip waits for each of those only if they come before the ring tail
    /// store and the doorbell. (`run_ready` still flushes after every turn, for the turns that
    /// handled no user message and so never reach this.)
    #[inline]
    pub(crate) fn end_turn(&self) -> u64 {
        self.flush();
        let start = self.now.get();
        let now = self.refresh_clock();
        self.clock_fresh.set(true);
        now - start
    }

    /// The timer tick at or after `now + delay` (timers never fire early).
    pub(crate) fn deadline_tick(&self, delay: Duration) -> u64 {
        let at = self
            .now_ns()
            .saturating_add(delay.as_nanos().min(u128::from(u64::MAX)) as u64);
        at.div_ceil(self.params.tick_ns)
    }

    fn now_tick(&self) -> u64 {
        self.now_ns() / self.params.tick_ns
    }

    // ----- actors -------------------------------------------------------------------------

    /// Installs a cell in a slot reserved in the shared table, then delivers any message that
    /// arrived before it.
    pub(crate) fn install(&self, slot: u32, generation: u32, cell: Rc<dyn Cell>) {
        {
            let mut slab = self.slab.borrow_mut();
            let i = slot as usize;
            if slab.len() <= i {
                slab.resize_with(i + 1, || None);
            }
            debug_assert!(slab[i].is_none(), "slot {slot} installed twice");
            let counted_migratable = cell.migratable();
            if counted_migratable {
                self.migratable_home.set(self.migratable_home.get() + 1);
            }
            slab[i] = Some(Entry::new(cell, generation, counted_migratable));
        }
        self.shared.live_actor_added();
        self.schedule(slot);
        // Hashing the key costs about as much as the rest of an install: look only when some
        // message arrived before its actor (rare).
        let early = {
            let mut early = self.early.borrow_mut();
            if early.is_empty() {
                None
            } else {
                early.remove(&slot)
            }
        };
        for env in early.into_iter().flatten() {
            env.deliver(self);
        }
        if self.drain_started.get() {
            self.with_cell(slot, generation, |c| c.drain(self));
        }
    }

    /// Runs `f` with the live cell at `(slot, generation)`, if there is one.
    #[inline]
    pub(crate) fn with_cell<R>(
        &self,
        slot: u32,
        generation: u32,
        f: impl FnOnce(&dyn Cell) -> R,
    ) -> Option<R> {
        let slab = self.slab.borrow();
        live_entry(&slab, slot, generation).map(|e| f(&**e.cell))
    }

    /// Runs `f` with the live cell at `(slot, generation)` as its concrete type `C`, if there is
    /// one and it is a `C`.
    #[inline]
    pub(crate) fn with_typed_cell<C: Cell, R>(
        &self,
        slot: u32,
        generation: u32,
        f: impl FnOnce(&C) -> R,
    ) -> Option<R> {
        let slab = self.slab.borrow();
        live_entry(&slab, slot, generation)?.cell.get::<C>().map(f)
    }

    /// Pushes `value` into the live cell of type `C` at `(slot, generation)` with `push`, and
    /// schedules the cell if `push` accepted it; hands the value back otherwise. One slab
    /// borrow for the lookup, the type check and the scheduling: this is the same-shard send path
    /// (with no `run`). On success, makes the cell `run`'s target if one is given.
    #[inline(always)]
    pub(crate) fn push_typed_in<C: Cell, V>(
        &self,
        slot: u32,
        generation: u32,
        value: V,
        push: impl FnOnce(&C, V) -> Result<(), V>,
        run: Option<&mut DeliveryRun>,
    ) -> Result<(), V> {
        let slab = self.slab.borrow();
        let Some(e) = live_entry(&slab, slot, generation) else {
            return Err(value);
        };
        let Some(cell) = e.cell.get::<C>() else {
            return Err(value);
        };
        push(cell, value)?;
        if !e.scheduled.replace(true) {
            self.ready.borrow_mut().push_back(slot);
        }
        if let Some(run) = run {
            run.record(slot, generation, &e.cell);
        }
        Ok(())
    }

    /// Puts an actor with messages on the ready queue (once).
    #[inline]
    pub(crate) fn schedule(&self, slot: u32) {
        let slab = self.slab.borrow();
        if let Some(Some(e)) = slab.get(slot as usize)
            && !e.scheduled.replace(true)
        {
            self.ready.borrow_mut().push_back(slot);
        }
    }

    /// Keeps an envelope that arrived for a reserved slot before its actor was installed.
    pub(crate) fn park_early(&self, env: Envelope) {
        self.early
            .borrow_mut()
            .entry(env.slot)
            .or_default()
            .push(env);
    }

    /// Gives up a reserved slot whose actor will never be installed (its factory panicked or
    /// the shard is stopping): messages that arrived early become dead letters.
    pub(crate) fn abandon_reserved(&self, slot: u32) {
        if let Some(meta) = self.shared.table.get(slot) {
            meta.close();
        }
        let early = self.early.borrow_mut().remove(&slot);
        for env in early.into_iter().flatten() {
            self.shared.discard(env, DeadLetterReason::ActorStopped);
        }
        self.shared.table.release(slot);
    }

    fn remove(&self, slot: u32) {
        let entry = self
            .slab
            .borrow_mut()
            .get_mut(slot as usize)
            .and_then(Option::take);
        if let Some(e) = entry {
            if e.counted_migratable {
                self.migratable_home.set(self.migratable_home.get() - 1);
            }
            self.deregister_actor_io(slot);
            drop(e);
            self.shared.table.release(slot);
            self.shared.live_actor_removed();
            self.guest_removed(slot);
        }
    }

    /// Number of live actors on this shard.
    pub(crate) fn actor_count(&self) -> usize {
        self.slab.borrow().iter().filter(|e| e.is_some()).count()
    }

    /// True while the shard is shutting down.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    // ----- sending ------------------------------------------------------------------------

    /// Queues an envelope for this shard itself (delivered in step 3 of the loop).
    pub(crate) fn push_local(&self, env: Envelope) {
        self.local_q.borrow_mut().push_back(env);
    }

    /// Sends an envelope to another shard through the ring (or its ordered overflow buffer).
    #[inline]
    pub(crate) fn send_remote(&self, target: usize, env: Envelope) {
        let publish = {
            let mut out = self.out.borrow_mut();
            let Some(lane) = out.get_mut(target).and_then(Option::as_mut) else {
                drop(out);
                self.peers[target].inject(env);
                return;
            };
            self.push_on_lane(lane, target, env)
        };
        if publish {
            self.notify_peer(target);
        }
    }

    /// [`send_remote`](Self::send_remote) of `msg`, a user message small enough to share an
    /// envelope (`mailbox::batch`): first offered to the envelope sent last towards `target`
    /// if that is not published yet (the back of the overflow, or the ring's last unpublished
    /// slot), which `append` extends if it is for the same actor and has room; otherwise sent
    /// in an envelope of its own, which `make` builds with the send's stamp, as a batch that
    /// later messages may join (`open`) unless it is published at once (the first user message
    /// since the last flush, see `push_on_lane`). A flood then takes a ring slot per batch,
    /// not per message.
    #[inline]
    pub(crate) fn send_remote_batched<M>(
        &self,
        target: usize,
        msg: M,
        append: impl FnOnce(&mut Envelope, M) -> Result<(), M>,
        make: impl FnOnce(M, u64, bool) -> Envelope,
    ) {
        let publish = {
            let mut out = self.out.borrow_mut();
            let Some(lane) = out.get_mut(target).and_then(Option::as_mut) else {
                drop(out);
                self.peers[target].inject(make(msg, self.now_ns(), false));
                return;
            };
            let appended = match lane.overflow.back_mut() {
                Some(last) => append(last, msg),
                None => match lane.producer.last_unpublished() {
                    Some(last) => last.amend(|last| append(last, msg)),
                    None => Err(msg),
                },
            };
            match appended {
                Ok(()) => {
                    self.shared.counters.bump_sent_remote();
                    self.shared.counters.bump_batched();
                    return;
                }
                Err(msg) => {
                    let open = lane.dirty;
                    self.push_on_lane(lane, target, make(msg, self.now_ns(), open))
                }
            }
        };
        if publish {
            self.notify_peer(target);
        }
    }

    /// Pushes `env` onto the lane towards `target`: the ring, or its overflow if that holds
    /// envelopes already or the ring is full. True if it published, so that the caller wakes
    /// the target if it sleeps.
    #[inline]
    fn push_on_lane(&self, lane: &mut OutLane, target: usize, env: Envelope) -> bool {
        self.shared.counters.bump_sent_remote();
        let first = !lane.dirty;
        if first {
            lane.dirty = true;
            self.dirty.borrow_mut().push(target);
        }
        // A user message or an ask's reply that is the first envelope towards `target`
        // since the last flush (the end of the previous turn) is published at once: a lone
        // request or reply (a ping-pong, an ask) leaves when it is sent, not after the rest
        // of the turn and its bookkeeping (`docs/benchmarks.md`, session 13). The rest of a
        // flood waits for `publish_batch` envelopes or the flush, so the consumer can start
        // while this shard keeps producing, at one publication per batch.
        //
        // Controls and tasks wait for the flush after the turn, as before: their receivers
        // act on the sender's lifecycle (an unlink notice tells a server its client is
        // gone), which a turn changes up to its end, so a stopping client finishes before
        // its servers hear that it unlinked (rotor's finish order by linkage).
        let publish_now = first && matches!(env.kind(), EnvelopeKind::User | EnvelopeKind::Reply);
        if lane.overflow.is_empty() {
            match lane.producer.try_push(env) {
                Ok(()) => {
                    (publish_now || lane.producer.unpublished() >= lane.publish_batch)
                        && lane.producer.publish()
                }
                Err(env) => {
                    lane.overflow.push_back(env);
                    // Ask the consumer to ring this shard when it frees space: otherwise
                    // a shard with nothing else to do finds the space only by polling, and
                    // parks between polls.
                    lane.producer.set_waiting(true);
                    self.shared.counters.bump_ring_overflow();
                    // The ring is full: hand over what it holds now rather than at the end
                    // of the turn, so the consumer keeps working during a long flood.
                    lane.producer.publish()
                }
            }
        } else {
            lane.overflow.push_back(env);
            self.shared.counters.bump_ring_overflow();
            // A flood longer than the ring: every `REFILL_EVERY` overflowed envelopes (or
            // `publish_batch`, if less), move the oldest ones into whatever ring space the
            // consumer freed meanwhile (in order: the overflow is drained front first and
            // nothing bypasses it), so the consumer is never starved until the sender's turn
            // ends and the overflow empties as soon as the consumer keeps up. One read of
            // the consumer's index per attempt, not per message.
            lane.overflow.len() & (lane.publish_batch.min(REFILL_EVERY) - 1) == 0 && lane.refill()
        }
    }

    /// After publishing into the ring towards `target`: wakes that shard if it sleeps. An
    /// awake shard polls its rings and needs nothing (`Doorbell::ring_if_sleeping`).
    #[inline]
    fn notify_peer(&self, target: usize) {
        if self.peers[target]
            .doorbell
            .ring_if_sleeping(peer_bit(self.id))
        {
            self.shared.counters.bump_wakeups_sent();
        }
    }

    /// Rings `target`'s doorbell whatever it is doing: for news that is not in a ring (room
    /// freed in one, shutdown).
    fn ring_peer(&self, target: usize) {
        if self.peers[target].doorbell.ring(peer_bit(self.id)) {
            self.shared.counters.bump_wakeups_sent();
        }
    }

    /// Publishes every ring written since the last flush and rings each peer's doorbell once.
    /// Lanes whose overflow buffer is still not empty stay on the dirty list. No allocation:
    /// the list is edited in place. True if anything was published.
    ///
    /// Called after every turn and every loop iteration, usually with nothing written since
    /// the last call: that case is one inlined check.
    #[inline(always)]
    fn flush(&self) -> bool {
        !self.dirty.borrow().is_empty() && self.flush_dirty()
    }

    fn flush_dirty(&self) -> bool {
        // Both lists borrowed once: nothing below reaches them again (`notify_peer` touches
        // only the peer's doorbell and this shard's counters).
        let mut dirty = self.dirty.borrow_mut();
        let mut out = self.out.borrow_mut();
        let mut any = false;
        let mut i = 0;
        while let Some(&target) = dirty.get(i) {
            let Some(lane) = out[target].as_mut() else {
                dirty.swap_remove(i);
                continue;
            };
            let published = lane.refill();
            if lane.overflow.is_empty() {
                lane.dirty = false;
                lane.producer.set_waiting(false);
                dirty.swap_remove(i);
            } else {
                i += 1;
            }
            if published {
                any = true;
                self.notify_peer(target);
            }
        }
        any
    }

    // ----- the loop -----------------------------------------------------------------------

    fn account(&self, busy: bool) {
        let now = self.now_ns();
        let delta = now.saturating_sub(self.last_account.get());
        self.last_account.set(now);
        let c = &self.shared.counters;
        ShardCounters::add(if busy { &c.busy_ns } else { &c.idle_ns }, delta);
    }

    /// Drains the sources named by `polled` (found holding work by a poll) and `taken` (bits
    /// taken from the doorbell).
    fn drain_inbound(&self, polled: u64, taken: u64) -> bool {
        let bits = polled | taken;
        let mut any = false;
        let mut run = DeliveryRun::default();
        // After the final drain closed the injection queue, late pushers discard what they push.
        if bits & INJECT != 0 && !self.shared.inject.is_closed() {
            // Only a drain that took the `INJECT` bit owes the unbounded lane's pushers the
            // fence (`shard::close`, "Skipping the doorbell"): a pusher that skipped ringing
            // saw the bit set, and it stays set until a take, whose drain fences. A lane found
            // by polling needs none (the poll's Acquire load of the slot's sequence word).
            if taken & INJECT != 0 {
                self.shared.inject.drain_fence();
            }
            // Outside senders do not read the clock: what this take finds was pushed after
            // (about) the previous take, or, if the shard idled since, during the idle period
            // that ended when the first of it rang. So it is stamped with the clock of that
            // take or of that wake-up: its mailbox wait is right to within one loop iteration
            // (the precision of shard senders' stamps too), less an idle shard's wake-up
            // latency.
            let since = self.inject_since.replace(self.now_ns());
            let mut n = 0;
            while n < 4096 {
                // SAFETY: this is the shard's thread, the queue's consumer, and the queue is
                // open (checked above; only this thread closes it).
                let took = unsafe {
                    self.shared
                        .inject
                        .pop_with(|env| self.accept_injected(env, since, &mut run))
                };
                if took == 0 {
                    break;
                }
                let counters = &self.shared.counters;
                ShardCounters::add(&counters.injected, took as u64);
                if took > 1 {
                    ShardCounters::add(&counters.appended, took as u64 - 1);
                }
                n += 1;
            }
            self.pace_inject(n);
            if n == 4096 {
                // More may be queued: look again next iteration.
                self.shared.doorbell.ring(INJECT);
            }
            any |= n > 0;
        }
        for peer in peers_named(bits, self.peers.len()) {
            let mut consumer = self.inbound.borrow_mut()[peer].take();
            if let Some(c) = consumer.as_mut() {
                let max = c.capacity();
                // What is left (a full ring's worth was taken) is found by the next poll.
                let n = c.drain(max, |env| self.accept(env, &mut run));
                any |= n > 0;
                // The peer keeps an overflow for this ring: tell it that there is room
                // now (it may be spinning between polls, or parked).
                if n > 0
                    && c.producer_waiting()
                    && self.peers[peer].doorbell.ring(peer_bit(self.id))
                {
                    self.shared.counters.bump_wakeups_sent();
                }
            }
            *self.inbound.borrow_mut()[peer] = consumer;
        }
        any
    }

    /// Delivers `env`, taken from the injection queue, stamping it with `since` if its sender
    /// did not. Always inlined: the queue's pop calls it at two places (records pushed whole,
    /// open records), and the first must read the envelope straight into it.
    #[inline(always)]
    fn accept_injected(&self, mut env: Envelope, since: u64, run: &mut DeliveryRun) {
        if env.stamp == crate::shard::STAMP_ON_ARRIVAL {
            env.stamp = since;
        }
        self.accept(env, run);
    }

    /// Takes in what arrived: the polled sources found holding work (`polled`) and those the
    /// doorbell names. True if anything was delivered.
    #[inline]
    fn take_in(&self, polled: u64) -> bool {
        let taken = self.take_doorbell();
        polled | taken != 0 && self.drain_inbound(polled, taken)
    }

    /// Takes the doorbell's work bits, with a plain load first: the RMW of `take` would pull
    /// the doorbell's line away from the producers even when no bit is set. A bit set just
    /// after the load is seen by the next iteration, the spin loop, or refuses `prepare_park`.
    #[inline]
    fn take_doorbell(&self) -> u64 {
        if self.shared.doorbell.pending() != 0 {
            self.shared.doorbell.take()
        } else {
            0
        }
    }

    /// The polled sources that hold work: `INJECT` if the injection queue's bounded lane
    /// holds a value, and the peer bits of the inbound rings whose head slot holds a published
    /// message. One load per peer, each from the line the message will be read from, and two
    /// for the lane.
    fn poll_inbound(&self) -> u64 {
        let inbound = self.inbound.borrow();
        self.poll_inject() | ready_rings(&inbound, 0..inbound.len())
    }

    /// `INJECT` if the injection queue's bounded lane (outside threads) holds a value.
    #[inline]
    fn poll_inject(&self) -> u64 {
        if self.inject_resume_at.get() != 0 && self.inject_paused() {
            return 0;
        }
        if self.shared.inject.bounded_ready() {
            INJECT
        } else {
            self.inject_streak.set(0);
            0
        }
    }

    /// True while a pause in polling the bounded lane lasts ([`pace_inject`](Self::pace_inject));
    /// ends it once its time is over. Reads the clock: the loop's cached time does not move
    /// while the shard spins idle.
    #[cold]
    fn inject_paused(&self) -> bool {
        if self.read_clock() < self.inject_resume_at.get() {
            return true;
        }
        self.inject_resume_at.set(0);
        false
    }

    /// After a drain of the injection queue that took `taken` envelopes: pauses polling the
    /// bounded lane for `inject_pacing` if outside threads are streaming into it and the shard
    /// is right behind them.
    ///
    /// The lane's cells are written by the senders and read by the shard. A shard that keeps
    /// finding the lane holding work at every poll ([`PACING_STREAK`] in a row) but takes only a
    /// few envelopes each time ([`PACING_SMALL_DRAIN`]) reads each cell just as its sender
    /// writes it, so the cell's line crosses between the two cores once a message, each way,
    /// and both sides wait for it (on the reference machine, two senders feeding one actor ran
    /// at ~13.3 M msgs/s). Pausing the polls lets the senders fill cells the shard does not
    /// touch, which it then takes in one batch (~17.1 M; `docs/benchmarks.md`, session 9). A
    /// message that arrives alone never waits: the streak needs consecutive polls that found
    /// work, and an empty poll resets it; and a shard about to park clears the pause first
    /// (`park`).
    fn pace_inject(&self, taken: usize) {
        let pacing = self.params.inject_pacing_ns;
        if pacing == 0 {
            return;
        }
        let streak = self.inject_streak.get().saturating_add(1);
        self.inject_streak.set(streak);
        if streak >= PACING_STREAK && taken < PACING_SMALL_DRAIN {
            self.inject_resume_at
                .set(self.read_clock().saturating_add(pacing).max(1));
        }
    }

    /// Like [`poll_inbound`](Self::poll_inbound), but of at most [`POLL_PER_TURN`] rings, the
    /// next ones in rotation: what the shard looks at between two turns, so that a turn costs
    /// the same with 64 shards as with 2, and a ring is still looked at every
    /// `⌈(shards − 1) / POLL_PER_TURN⌉` turns (and at every iteration).
    fn poll_some_inbound(&self) -> u64 {
        let inbound = self.inbound.borrow();
        let count = inbound.len();
        let rings = if count <= POLL_PER_TURN + 1 {
            // Every peer fits (one entry is this shard's own, always empty).
            ready_rings(&inbound, 0..count)
        } else {
            // `first < count` and `POLL_PER_TURN < count`: one subtraction wraps a position.
            let wrap = |p: usize| if p >= count { p - count } else { p };
            let first = self.poll_cursor.get();
            self.poll_cursor.set(wrap(first + POLL_PER_TURN));
            ready_rings(&inbound, (first..first + POLL_PER_TURN).map(wrap))
        };
        self.poll_inject() | rings
    }

    #[inline]
    fn accept(&self, mut env: Envelope, run: &mut DeliveryRun) {
        // The common case lends the envelope: moving it (96 bytes) is left to the other cases.
        if !self.stopping.get()
            && let Some(push) = env.vt.push_in_run
            && push(self, &mut env, run)
        {
            // The message was taken out: what is dropped here is the empty envelope.
            return;
        }
        self.accept_other(env, run);
    }

    /// [`accept`](Self::accept) of an envelope that is not a user message for an actor here,
    /// or of any envelope once the shard is stopping.
    #[cold]
    #[inline(never)]
    fn accept_other(&self, env: Envelope, run: &mut DeliveryRun) {
        run.end();
        if self.stopping.get() {
            self.shared.discard(env, DeadLetterReason::Shutdown);
        } else {
            env.deliver(self);
        }
    }

    /// Delivers the envelopes this shard queued to itself. Runs twice per loop iteration, most
    /// often on an empty queue: that case is one check, inlined.
    #[inline(always)]
    fn drain_local(&self) -> bool {
        !self.local_q.borrow().is_empty() && self.drain_local_queued()
    }

    fn drain_local_queued(&self) -> bool {
        let mut any = false;
        let mut run = DeliveryRun::default();
        loop {
            let env = self.local_q.borrow_mut().pop_front();
            let Some(env) = env else { break };
            any = true;
            self.accept(env, &mut run);
        }
        any
    }

    fn run_ready(&self) -> bool {
        let n = self.ready.borrow().len();
        let budget = self.params.batch_budget;
        for _ in 0..n {
            let slot = self.ready.borrow_mut().pop_front();
            let Some(slot) = slot else { break };
            let cell = {
                let slab = self.slab.borrow();
                slab.get(slot as usize)
                    .and_then(Option::as_ref)
                    .map(|e| e.cell.clone())
            };
            let Some(cell) = cell else { continue };
            let turn = cell.run(self, budget);
            // Publish what the turn sent to other shards now rather than after every ready actor
            // ran: a request (or reply) leaves one turn earlier, which is what bounds the latency
            // of an ask between busy shards. Still one publication per ring per turn.
            self.flush();
            // Take in what arrived during the turn (a reply, a request) before the next turn,
            // so it is queued behind at most the actors already waiting, not behind another
            // full round of them: with a busy actor on the shard this halves an ask's wait.
            self.take_in(self.poll_some_inbound());
            match turn {
                Turn::More => self.ready.borrow_mut().push_back(slot),
                // Messages delivered by the drain above found the actor still marked scheduled
                // and did not queue it: look again before unmarking it.
                Turn::Idle if cell.has_work() => self.ready.borrow_mut().push_back(slot),
                Turn::Idle => {
                    let slab = self.slab.borrow();
                    if let Some(Some(e)) = slab.get(slot as usize) {
                        e.scheduled.set(false);
                    }
                }
                Turn::Stopped => {
                    drop(cell);
                    self.remove(slot);
                }
            }
        }
        n > 0
    }

    /// Reads the runtime's state once for this loop iteration; true once the forced part of
    /// shutdown began (the loop must end). The iteration then consults the cached value.
    ///
    /// Every change of the state is followed by a ring of every shard's doorbell
    /// (`Runtime::shutdown`), so a shard that spins or parks learns of it through its doorbell
    /// and reads it again at its next iteration, and the loop reads it again before it idles
    /// (its own take may have consumed that ring): one load per busy iteration, not one per
    /// spin.
    fn observe_runtime(&self) -> bool {
        let state = self.rt.state.load(Ordering::Relaxed);
        self.rt_state.set(state);
        matches!(state, crate::shard::STOPPING | crate::shard::STOPPED)
    }

    /// True once `shutdown` began (graceful phase included), as of this iteration's start.
    pub(super) fn runtime_shutting_down(&self) -> bool {
        self.rt_state.get() != crate::shard::RUNNING
    }

    /// One iteration of the reactor loop, as the test kit steps it; true if it did any work.
    pub(crate) fn run_once(&self) -> bool {
        self.observe_runtime();
        self.iterate()
    }

    /// One iteration of the reactor loop after [`observe_runtime`](Self::observe_runtime);
    /// true if it did any work.
    fn iterate(&self) -> bool {
        // A clock read costs ~11 ns here (`shard::tsc`; ~28 ns where it is `Instant`), a
        // good part of handling a small message. A busy shard
        // whose last iteration ended with a turn already read the clock at that turn's end
        // (`end_turn`): what happened since (that iteration's local deliveries and flush) is
        // short, so the cached clock is reused, as it is inside a turn. This halves the clock
        // reads of a loop that runs one turn per iteration (a token ring, a ping-pong under
        // load). After idling (`idle`, the idle time must be accounted) or with the manual
        // clock of the test kit (advanced between steps) the clock is always read.
        let fresh = self.clock_fresh.replace(false);
        if !fresh || self.idle.get() || matches!(self.clock, Clock::Manual(_)) {
            self.refresh_clock();
        }
        if !self.drain_started.get() && self.rt_state.get() == crate::shard::DRAINING {
            self.begin_drain();
        }
        if self.idle.replace(false) {
            // The time since the last accounting was spent spinning or parked.
            self.account(false);
            // What outside threads pushed meanwhile arrived during the idle period, which the
            // first of it ended (`drain_inbound`).
            self.inject_since.set(self.now_ns());
        }
        // The rings and the bounded injection lane are polled, not announced (see the module
        // docs); the doorbell names the rest.
        let mut work = self.take_in(self.poll_inbound());
        work |= self.drain_local();
        work |= self.fire_timers();
        work |= self.run_ready();
        work |= self.drain_local();
        self.publish_stealable();
        self.flush();
        work
    }

    /// Next value of the shard's xorshift64 generator.
    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// The graceful phase of shutdown: every actor without a supervisor begins its S-phase.
    fn begin_drain(&self) {
        self.drain_started.set(true);
        let cells: Vec<Rc<dyn Cell>> = self
            .slab
            .borrow()
            .iter()
            .flatten()
            .map(|e| e.cell.clone())
            .collect();
        for cell in cells {
            cell.drain(self);
        }
    }

    /// True if something is waiting for this shard without any wake-up.
    fn has_local_work(&self) -> bool {
        !self.ready.borrow().is_empty() || !self.local_q.borrow().is_empty()
    }

    /// True while some outbound ring is full and its overflow buffer waits for space. Nothing
    /// wakes a shard when a peer frees ring space, so such a shard retries while it spins and
    /// parks only briefly (see `run_loop`), instead of spinning hot on `flush`.
    fn has_backlog(&self) -> bool {
        !self.dirty.borrow().is_empty()
    }

    /// Parks until woken, an I/O event, or `timeout`.
    fn park(&self, timeout: Option<Duration>) {
        // A paused lane must be polled below: a shard that sleeps without looking at it would
        // strand what its senders wrote while it paused (they ring only a sleeping shard, and
        // may have pushed before it announced sleep).
        self.inject_resume_at.set(0);
        if !self.shared.doorbell.prepare_park() {
            return;
        }
        // The rings and the bounded injection lane are polled sources: a producer that
        // published before the announcement's fence may not have seen SLEEPING, and did not
        // ring (`shard::doorbell`).
        if self.poll_inbound() != 0 {
            self.shared.doorbell.finish_park();
            return;
        }
        self.shared.counters.bump_parks();
        #[cfg(not(coreactor_loom))]
        self.poll_io(timeout);
        #[cfg(coreactor_loom)]
        {
            let _ = timeout;
            self.shared.doorbell.waker().wait();
        }
        self.shared.doorbell.finish_park();
    }

    /// Deregisters every fd of an actor that stopped.
    pub(crate) fn deregister_actor_io(&self, slot: u32) {
        #[cfg(not(coreactor_loom))]
        {
            let tokens = {
                let io = self.io.borrow();
                // No lookup (and no hashing) on a shard without registered fds.
                if io.live() == 0 {
                    return;
                }
                io.tokens_of(slot)
            };
            for t in tokens {
                let _ = self.deregister_io(t);
            }
        }
        #[cfg(coreactor_loom)]
        let _ = slot;
    }

    /// The shard thread's main loop: runs until the runtime shuts down.
    pub(crate) fn run_loop(&self) {
        loop {
            if self.observe_runtime() {
                break;
            }
            let it = self.iterations.get().wrapping_add(1);
            self.iterations.set(it);
            // While busy, look at I/O every 16 iterations so registered fds are not starved.
            #[cfg(not(coreactor_loom))]
            if it % 16 == 0 && self.io.borrow().live() > 0 {
                self.poll_io(Some(Duration::ZERO));
            }
            if self.iterate() {
                self.account(true);
                continue;
            }
            self.account(true);
            // Out of work: before spinning down, ask a busy peer for migratable actors.
            if self.try_steal() {
                continue;
            }
            // This iteration may have taken the doorbell bit that announced a change of the
            // runtime's state after it read the state: read it once more before idling (the
            // take's Acquire makes the new state visible).
            if self.observe_runtime() {
                break;
            }
            self.idle.set(true);
            // Idle: spin, watching the doorbell, then park. The clock is read only every 64
            // spins: a read (~11 ns, ~28 ns where it is `Instant`) is longer than a doorbell
            // check, and would set the reaction time to a message.
            let spin_until = self.now_ns() + self.params.spin_before_park.as_nanos() as u64;
            let yield_from = self.now_ns() + self.params.spin_before_yield.as_nanos() as u64;
            let search_until =
                self.now_ns() + self.params.steal.search_before_park.as_nanos() as u64;
            let mut woke = false;
            let mut spins_to_check = SPINS_PER_CHECK;
            loop {
                // A ring message's stamp arrives with the first line of the message itself; the
                // doorbell names the rest, including a change of the runtime's state
                // (`observe_runtime`).
                if self.poll_inbound() != 0 || self.shared.doorbell.pending() != 0 {
                    woke = true;
                    break;
                }
                if self.has_local_work() {
                    woke = true;
                    break;
                }
                spins_to_check -= 1;
                if spins_to_check == 0 {
                    spins_to_check = SPINS_PER_CHECK;
                    if self.has_backlog() && self.flush() {
                        woke = true;
                        break;
                    }
                    let now = self.read_clock();
                    // Still searching: a peer may have started offering work since.
                    if now < search_until && self.try_steal() {
                        woke = true;
                        break;
                    }
                    if now >= spin_until {
                        break;
                    }
                    if now >= yield_from {
                        // Let another runnable thread on this CPU (an outside sender, a
                        // shard sharing the CPU) have it; returns at once if there is none.
                        crate::sync::thread::yield_now();
                        continue;
                    }
                }
                crate::sync::spin_loop();
            }
            if !woke && !self.has_local_work() {
                self.refresh_clock();
                let mut timeout = self.next_timer_delay();
                if self.has_backlog() {
                    timeout = Some(timeout.map_or(BACKLOG_RETRY, |t| t.min(BACKLOG_RETRY)));
                }
                self.park(timeout);
            }
        }
        self.shutdown();
    }

    /// Stops every actor of this shard (shutdown phase 1). Used by the loop and the test kit.
    pub(crate) fn stop_all_actors(&self) {
        self.stopping.set(true);
        let cells: Vec<Rc<dyn Cell>> = self
            .slab
            .borrow()
            .iter()
            .flatten()
            .map(|e| e.cell.clone())
            .collect();
        for cell in cells.iter().rev() {
            cell.abort(self);
        }
        drop(cells);
        let slots: Vec<u32> = self
            .slab
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as u32)
            .collect();
        for slot in slots {
            self.remove(slot);
        }
        self.ready.borrow_mut().clear();
        // Timers and pending asks die with their actors.
        let timers = std::mem::replace(&mut *self.timers.borrow_mut(), TimerWheel::new(0));
        drop(timers);
        let asks = std::mem::take(&mut *self.asks.borrow_mut());
        drop(asks);
        let intervals = std::mem::take(&mut *self.intervals.borrow_mut());
        drop(intervals);
        let early = std::mem::take(&mut *self.early.borrow_mut());
        for env in early.into_values().flatten() {
            self.shared.discard(env, DeadLetterReason::Shutdown);
        }
        self.drain_local();
        self.flush();
        self.discard_overflow();
    }

    fn discard_overflow(&self) {
        let mut dropped = Vec::new();
        for (target, lane) in self.out.borrow_mut().iter_mut().enumerate() {
            let Some(lane) = lane else { continue };
            lane.producer.publish();
            dropped.extend(lane.overflow.drain(..).map(|env| (target, env)));
            lane.dirty = false;
            lane.producer.set_waiting(false);
        }
        self.dirty.borrow_mut().clear();
        for (target, env) in dropped {
            // The target shard never saw these: account for them as its dead letters (counter,
            // hook), exactly as if it had discarded them itself.
            self.peers[target].discard(env, DeadLetterReason::Shutdown);
        }
        for peer in 0..self.peers.len() {
            if peer != self.id {
                self.ring_peer(peer);
            }
        }
    }

    /// Discards whatever arrives (shutdown phases 2 and 3).
    pub(crate) fn drain_discarding(&self) -> bool {
        // Every source, as if announced (`INJECT` included: the lanes' last drains fence).
        let taken = self.shared.doorbell.take() | all_peer_bits(self.peers.len());
        let mut any = self.drain_inbound(0, taken);
        any |= self.drain_local();
        self.flush();
        any
    }

    fn shutdown(&self) {
        self.stop_all_actors();
        self.shared.mark_actors_stopped();
        let n = self.rt.shard_count;
        if self.rt.stopped_actors_phase.fetch_add(1, Ordering::AcqRel) + 1 == n {
            for peer in self.peers.iter() {
                peer.doorbell.ring(INJECT);
            }
        }
        while self.rt.stopped_actors_phase.load(Ordering::Acquire) < n {
            // Look at the phase again after the drain: the last shard's wake-up may be the
            // doorbell bit that drain just took, and parking then would wait for the timeout
            // (found by loom-tests/steal.rs, where a park has no timeout).
            if !self.drain_discarding() && self.rt.stopped_actors_phase.load(Ordering::Acquire) < n
            {
                self.park(Some(Duration::from_millis(5)));
            }
        }
        // SAFETY: the shard's thread, once (`shutdown` runs at the end of `run_loop`); the
        // drains after it skip the closed queue (`drain_inbound`).
        unsafe { self.shared.close_inject() };
        self.drain_discarding();
        self.discard_overflow();
        // Slots reserved by spawns whose install task was discarded were never installed:
        // close them so their addresses answer Closed.
        self.shared.table.close_all();
    }
}

/// The peer bits of the rings among `peers` whose head slot holds a published message.
#[inline]
fn ready_rings(
    inbound: &[CachePadded<Option<Consumer<Envelope>>>],
    peers: impl Iterator<Item = usize>,
) -> u64 {
    let mut bits = 0;
    for peer in peers {
        if inbound[peer].as_ref().is_some_and(Consumer::poll) {
            bits |= peer_bit(peer);
        }
    }
    bits
}

/// The doorbell bits that name peer rings (all but `INJECT` and `SLEEPING`).
const PEER_MASK: u64 = (1u64 << PEER_BITS) - 1;

/// The peers (of `count`) whose rings doorbell `bits` names: for each set peer bit, in
/// ascending order, the peers of that group (`peer % PEER_BITS`). O(set bits + named peers),
/// not O(peers): a shard of a large runtime drains only the rings that rang.
fn peers_named(bits: u64, count: usize) -> impl Iterator<Item = usize> {
    let mut groups = bits & PEER_MASK;
    std::iter::from_fn(move || {
        (groups != 0).then(|| {
            let group = groups.trailing_zeros() as usize;
            groups &= groups - 1;
            group
        })
    })
    .flat_map(move |group| (group..count).step_by(PEER_BITS as usize))
}

fn all_peer_bits(peers: usize) -> u64 {
    (0..peers.min(PEER_BITS as usize)).fold(INJECT, |acc, p| acc | peer_bit(p))
}

impl Drop for ShardLocal {
    fn drop(&mut self) {
        // Whatever is still in the rings towards this shard is dropped with the consumers; the
        // payloads' own destructors answer any `Reply` inside.
        let consumers = std::mem::take(&mut *self.inbound.borrow_mut());
        for mut c in consumers.into_iter().filter_map(CachePadded::into_inner) {
            while let Some(env) = c.pop() {
                self.shared.discard(env, DeadLetterReason::Shutdown);
            }
            c.release();
        }
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::{
        Any, Cell, INJECT, Movable, PEER_BITS, Rc, ShardLocal, Turn, TypedCell, pacing_pause,
        peer_bit, peers_named,
    };
    use std::time::Duration;

    /// Cells that only carry a value: enough for the slab entry's typed lookup.
    struct CellA(u32);
    struct CellB(u32);

    macro_rules! inert_cell {
        ($t:ty) => {
            impl Cell for $t {
                fn run(&self, _: &ShardLocal, _: usize) -> Turn {
                    unreachable!("not run")
                }
                fn abort(&self, _: &ShardLocal) {}
                fn add_forced(&self, _: &ShardLocal, _: u32) {}
                fn timer_fired(&self) {}
                fn migratable(&self) -> bool {
                    false
                }
                fn pack(&self, _: &ShardLocal) -> Option<Box<dyn Movable>> {
                    None
                }
                fn drain(&self, _: &ShardLocal) {}
                fn has_work(&self) -> bool {
                    false
                }
                fn as_any(&self) -> &dyn Any {
                    self
                }
            }
        };
    }
    inert_cell!(CellA);
    inert_cell!(CellB);

    #[test]
    fn a_typed_lookup_yields_the_cell_only_as_its_own_type() {
        let a = TypedCell::new(Rc::new(CellA(7)));
        let b = TypedCell::new(Rc::new(CellB(9)));
        assert_eq!(a.get::<CellA>().map(|c| c.0), Some(7));
        assert!(a.get::<CellB>().is_none());
        assert_eq!(b.get::<CellB>().map(|c| c.0), Some(9));
        assert!(b.get::<CellA>().is_none());
        // A shared handle keeps the type.
        assert_eq!(a.share().get::<CellA>().map(|c| c.0), Some(7));
    }

    #[test]
    fn pacing_pause_grows_with_the_mailbox_within_its_bounds() {
        let us = Duration::from_micros;
        // 8 ns per mailbox slot, at least 2 µs, at most the configured pause.
        assert_eq!(pacing_pause(us(8), 64), 2_000);
        assert_eq!(pacing_pause(us(8), 512), 4_096);
        assert_eq!(pacing_pause(us(8), 1024), 8_000);
        assert_eq!(pacing_pause(us(8), u32::MAX), 8_000);
        // A configured pause shorter than the floor is used as it is; zero stays off.
        assert_eq!(pacing_pause(us(1), 64), 1_000);
        assert_eq!(pacing_pause(us(1), 4096), 1_000);
        assert_eq!(pacing_pause(Duration::ZERO, 4096), 0);
        assert_eq!(pacing_pause(us(1000), 4096), 32_768);
    }

    #[test]
    fn peers_named_lists_the_peers_of_each_set_group() {
        let named = |bits, count| peers_named(bits, count).collect::<Vec<_>>();
        assert_eq!(named(0, 8), Vec::<usize>::new());
        assert_eq!(named(INJECT, 8), Vec::<usize>::new(), "not a peer bit");
        assert_eq!(named(peer_bit(1) | peer_bit(3) | INJECT, 8), [1, 3]);
        // More peers than bits: a group names every peer `group + k * PEER_BITS`.
        let g = PEER_BITS as usize;
        assert_eq!(
            named(peer_bit(1) | peer_bit(3), 2 * g + 2),
            [1, 1 + g, 1 + 2 * g, 3, 3 + g]
        );
        // A group beyond the peer count names nobody.
        assert_eq!(named(peer_bit(5), 4), Vec::<usize>::new());
    }
}
