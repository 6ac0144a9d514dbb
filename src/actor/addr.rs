//! Addresses: small `Clone + Send` handles through which anyone sends to an actor.

use super::ask::{AskFuture, Reply};
use super::cell::{ActorCell, Control};
use super::lifecycle::SystemMsg;
use super::{Actor, StopReason};
use crate::error::{AskError, SendError};
use crate::mailbox::batch::Batch;
use crate::mailbox::erased::{ErasedMsg, fits_inline};
use crate::mailbox::inject::{CellWords, MAX_OPEN_VALUES};
use crate::shard::envelope::{OPEN_PAYLOAD_BYTES, open_message, read_header, write_header};
use crate::shard::outside;
use crate::shard::table::Admit;
use crate::shard::{
    DeadLetterReason, DeliveryRun, Envelope, EnvelopeKind, EnvelopeVTable, STAMP_ON_ARRIVAL,
    ShardLocal, ShardShared, route, with_current,
};
use crate::stats::ActorStats;
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use std::any::TypeId;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::{Duration, Instant};

/// How long [`Addr::ask`] polls for the reply before parking. Parking made every outside ask
/// cost a futex wake on the replying shard and the asker's wake-up latency: p50 14 µs, p99 52 µs
/// on a KVM guest (session 5, `docs/benchmarks.md`), against about 1 µs for the reply itself.
const ASK_SPIN: Duration = Duration::from_micros(20);
/// The first part of [`ASK_SPIN`], spent spinning without yielding the CPU.
const ASK_SPIN_HOT: Duration = Duration::from_micros(2);

/// The address of an actor of type `A`: its shard, slot and generation.
///
/// Cheap to clone and `Send + Sync`: hand it to any thread or actor. A stale address (its
/// actor stopped, even if the slot was reused since) is answered with
/// [`SendError::Closed`], never delivered to the slot's next tenant.
pub struct Addr<A: Actor> {
    pub(crate) shard: Arc<ShardShared>,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> Clone for Addr<A> {
    fn clone(&self) -> Self {
        Addr {
            shard: self.shard.clone(),
            slot: self.slot,
            generation: self.generation,
            _actor: PhantomData,
        }
    }
}

impl<A: Actor> PartialEq for Addr<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shard, &other.shard)
            && self.slot == other.slot
            && self.generation == other.generation
    }
}

impl<A: Actor> Eq for Addr<A> {}

impl<A: Actor> Hash for Addr<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shard.id.hash(state);
        self.slot.hash(state);
        self.generation.hash(state);
    }
}

impl<A: Actor> fmt::Debug for Addr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Addr<{}>({}:{}#{})",
            std::any::type_name::<A>(),
            self.shard.id,
            self.slot,
            self.generation
        )
    }
}

/// The smaller of `a` and `b`, in a constant.
const fn const_min(a: usize, b: usize) -> usize {
    if a < b { a } else { b }
}

/// Per-actor-type envelope vtables.
pub(crate) struct Vt<A>(PhantomData<A>);

impl<A: Actor> Vt<A> {
    pub(crate) const USER: EnvelopeVTable = EnvelopeVTable {
        deliver: Self::deliver_user,
        push_in_run: Some(Self::push_user_in_run),
        split: None,
        gather: if Self::APPENDABLE {
            Some(Self::gather)
        } else {
            None
        },
        kind: EnvelopeKind::User,
        type_name: std::any::type_name::<A::Msg>,
    };

    /// User messages for one actor sharing one envelope (`mailbox::batch`).
    const BATCH: EnvelopeVTable = EnvelopeVTable {
        deliver: Self::deliver_batch,
        push_in_run: Some(Self::push_batch_in_run),
        split: Some(Self::split_batch),
        gather: None,
        kind: EnvelopeKind::User,
        type_name: std::any::type_name::<A::Msg>,
    };

    pub(crate) const CONTROL: EnvelopeVTable = EnvelopeVTable {
        deliver: Self::deliver_control,
        push_in_run: None,
        split: None,
        gather: None,
        kind: EnvelopeKind::Control,
        type_name: std::any::type_name::<Control>,
    };

    /// True if `A::Msg` is small enough for several to share an envelope (`mailbox::batch`).
    pub(crate) const BATCHED: bool = Batch::<A::Msg>::WORTHWHILE && fits_inline::<A::Msg>();

    /// How many `A::Msg`s an outside thread's open lane record holds (`shard::outside`): as
    /// many as fit in its message bytes, at most a batch's worth.
    const OPEN_CAPACITY: usize = if !Self::BATCHED {
        0
    } else if size_of::<A::Msg>() == 0 {
        const_min(Batch::<A::Msg>::CAPACITY, MAX_OPEN_VALUES)
    } else {
        const_min(
            OPEN_PAYLOAD_BYTES / size_of::<A::Msg>(),
            Batch::<A::Msg>::CAPACITY,
        )
    };

    /// True if an outside thread's messages of type `A::Msg` may share a lane cell: at least
    /// two fit in an open record (16 bytes or less, or zero-sized).
    pub(crate) const APPENDABLE: bool = Self::OPEN_CAPACITY >= 2;

    /// `gather` of [`USER`](Self::USER) (see `shard::envelope`, "Open records"): one message
    /// as a single user envelope, more as a batch.
    ///
    /// # Safety
    ///
    /// `shard::envelope::GatherFn`'s: an open record of `A::Msg`s written by
    /// [`tell_outside_open`](Self::tell_outside_open) and the appends of
    /// [`tell_outside_appendable`](Self::tell_outside_appendable), holding `count` of them.
    unsafe fn gather(words: &CellWords, count: usize) -> Envelope {
        debug_assert!((1..=Self::OPEN_CAPACITY).contains(&count));
        // SAFETY: an open record starts with `write_header` (`tell_outside_open`).
        let (_, slot, generation) = unsafe { read_header(words) };
        // SAFETY: message `i < count <= OPEN_CAPACITY` of the record lies inside its bytes
        // (`open_message`), written once by its push or an append; each is read once, here.
        let take = |i: usize| unsafe { open_message::<A::Msg>(words, i).read() };
        if count == 1 {
            return Self::user(slot, generation, STAMP_ON_ARRIVAL, take(0));
        }
        let mut batch = Batch::one(take(0));
        for i in 1..count {
            // `count <= OPEN_CAPACITY <= Batch::CAPACITY`: never refused.
            let refused = batch.push(take(i));
            debug_assert!(refused.is_ok(), "an open record holds at most a batch");
        }
        Envelope {
            slot,
            generation,
            stamp: STAMP_ON_ARRIVAL,
            msg: ErasedMsg::new(batch),
            vt: &Self::BATCH,
        }
    }

    /// An outside thread's send of an admitted message of an [`APPENDABLE`](Self::APPENDABLE)
    /// type into the bounded lane of `shard`: appended to the open record this thread pushed
    /// last, if `shard::outside` found it to be for the same actor and the shard has not taken
    /// it; else pushed, open or plain as the outside probing says. Gives `msg` back if the lane
    /// is full.
    #[inline]
    fn tell_outside_appendable(
        shard: &ShardShared,
        slot: u32,
        generation: u32,
        msg: A::Msg,
    ) -> Result<(), A::Msg> {
        let plan = outside::plan(shard.lane_id(), slot, generation, TypeId::of::<A::Msg>());
        match plan {
            outside::Plan::Join(mut record) => {
                let mut msg = Some(msg);
                let appended = shard
                    .inject
                    .append(&mut record, Self::OPEN_CAPACITY, |words, i| {
                        // SAFETY: `i` is the record's count, below `OPEN_CAPACITY` (the append
                        // checks it), and `A::Msg` is at most 8-aligned (`BATCHED`): the place
                        // is inside the record's bytes and aligned; the append reserved it for
                        // this thread.
                        unsafe {
                            open_message::<A::Msg>(words, i).write(msg.take().expect("once"));
                        }
                    });
                if appended.is_ok() {
                    outside::joined(record, Self::OPEN_CAPACITY);
                    return Ok(());
                }
                let msg = msg.take().expect("not appended");
                outside::refused();
                if outside::should_open() {
                    Self::tell_outside_open(shard, slot, generation, msg)
                } else {
                    Self::tell_outside_plain(shard, slot, generation, msg)
                }
            }
            outside::Plan::Open => Self::tell_outside_open(shard, slot, generation, msg),
            outside::Plan::Plain => Self::tell_outside_plain(shard, slot, generation, msg),
        }
    }

    /// An outside thread's push of an admitted message as an open record (out of line: the
    /// plain push and the append, the paths of a thread sending to many actors in turn and of
    /// a flood, stay inline). Gives `msg` back if the lane is full.
    #[inline(never)]
    fn tell_outside_open(
        shard: &ShardShared,
        slot: u32,
        generation: u32,
        msg: A::Msg,
    ) -> Result<(), A::Msg> {
        let mut msg = Some(msg);
        let pushed = shard.try_inject_outside_open(|words| {
            write_header(words, &Self::USER, slot, generation);
            // SAFETY: message 0 of an open record: inside its bytes, since at least two fit
            // (`APPENDABLE`), and aligned (`BATCHED`).
            unsafe { open_message::<A::Msg>(words, 0).write(msg.take().expect("once")) };
        });
        match pushed {
            Ok(record) => {
                outside::opened(
                    shard.lane_id(),
                    slot,
                    generation,
                    TypeId::of::<A::Msg>(),
                    record,
                );
                Ok(())
            }
            Err(_) => Err(msg.take().expect("not written")),
        }
    }

    /// An outside thread's push of an admitted user message into the bounded lane of `shard`
    /// as a record of its own. Gives `msg` back if the lane is full.
    #[inline(always)]
    fn tell_outside_plain(
        shard: &ShardShared,
        slot: u32,
        generation: u32,
        msg: A::Msg,
    ) -> Result<(), A::Msg> {
        // No clock read here: the shard stamps the message when it takes it in.
        shard
            .try_inject_outside(Self::user(slot, generation, STAMP_ON_ARRIVAL, msg))
            // SAFETY: the envelope was built just above by `user` from an `A::Msg`, and comes
            // back untouched.
            .map_err(|env| unsafe { env.msg.take::<A::Msg>() })
    }

    /// Appends `msg`, a user message for the actor at `(slot, generation)`, to `last`, an
    /// unpublished envelope, if that is a user envelope for the same actor with room: a single
    /// one becomes a batch of two, a batch takes one more. Gives `msg` back otherwise.
    #[inline]
    pub(crate) fn append(
        last: &mut Envelope,
        slot: u32,
        generation: u32,
        msg: A::Msg,
    ) -> Result<(), A::Msg> {
        if !Self::BATCHED
            || last.slot != slot
            || last.generation != generation
            || last.vt.kind != EnvelopeKind::User
        {
            return Err(msg);
        }
        // Same slot and generation on the same lane: the same actor, whose user envelopes all
        // come from this `Vt<A>` (`USER`, or `BATCH` built here), so `last` carries an
        // `A::Msg` or a batch of them.
        if last.vt.split.is_some() {
            // SAFETY: a `BATCH` envelope of `Vt<A>` carries an inline `Batch<A::Msg>` (built
            // below; a batch is exactly one inline payload).
            return unsafe { last.msg.get_mut::<Batch<A::Msg>>() }.push(msg);
        }
        // SAFETY: `last` is a single user envelope of `Vt<A>` (above): an erased `A::Msg`,
        // taken once; `last.msg` is replaced right after.
        let first = unsafe { last.msg.take_in_place::<A::Msg>() };
        let mut batch = Batch::one(first);
        // A batch of one has room for a second (`BATCHED`).
        let _ = batch.push(msg);
        last.msg = ErasedMsg::new(batch);
        last.vt = &Self::BATCH;
        Ok(())
    }

    /// A user envelope for `(slot, generation)` that other messages for the same actor may
    /// join while it is unpublished: a batch of `msg` alone (only for `BATCHED` types).
    #[inline]
    pub(crate) fn user_batch(slot: u32, generation: u32, stamp: u64, msg: A::Msg) -> Envelope {
        debug_assert!(Self::BATCHED);
        Envelope {
            slot,
            generation,
            stamp,
            msg: ErasedMsg::new(Batch::one(msg)),
            vt: &Self::BATCH,
        }
    }

    /// Pushes a batch's messages into its live actor's mailbox within a drain's run, like
    /// [`push_user_in_run`](Self::push_user_in_run) for each. False if the actor is not here
    /// to take them, with the messages not pushed still in the envelope (`deliver_batch` then
    /// handles them one by one).
    fn push_batch_in_run(shard: &ShardLocal, env: &mut Envelope, run: &mut DeliveryRun) -> bool {
        let (slot, generation, stamp) = (env.slot, env.generation, env.stamp);
        // SAFETY: `BATCH` envelopes of `Vt<A>` carry an inline `Batch<A::Msg>` (`append`).
        let batch = unsafe { env.msg.get_mut::<Batch<A::Msg>>() };
        let in_run = run
            .cell::<ActorCell<A>>(slot, generation)
            .is_some_and(ActorCell::accepting);
        if !in_run {
            // The first message looks the actor up and makes it the run's target.
            let Some(msg) = batch.pop() else {
                return true;
            };
            if let Err(msg) = Self::push_msg(shard, slot, generation, msg, stamp, Some(run)) {
                batch.unpop(msg);
                return false;
            }
        }
        // No actor runs during a run, so the target found accepting above still accepts.
        let Some(cell) = run.cell::<ActorCell<A>>(slot, generation) else {
            return batch.len() == 0;
        };
        while let Some(msg) = batch.pop() {
            cell.push(msg, stamp);
        }
        true
    }

    /// Pushes `msg` into the mailbox of the live actor at `(slot, generation)` if it accepts
    /// messages, making it `run`'s target if given; gives `msg` back otherwise.
    #[inline]
    fn push_msg(
        shard: &ShardLocal,
        slot: u32,
        generation: u32,
        msg: A::Msg,
        stamp: u64,
        run: Option<&mut DeliveryRun>,
    ) -> Result<(), A::Msg> {
        shard.push_typed_in::<ActorCell<A>, _>(
            slot,
            generation,
            msg,
            |cell, msg| {
                if !cell.accepting() {
                    return Err(msg);
                }
                cell.push(msg, stamp);
                Ok(())
            },
            run,
        )
    }

    /// Delivers a batch's messages one by one, each as a single user envelope.
    fn deliver_batch(shard: &ShardLocal, env: Envelope) {
        Self::split_batch(env, &mut |single| Self::deliver_user(shard, single));
    }

    /// `split` of [`BATCH`](Self::BATCH) envelopes.
    fn split_batch(env: Envelope, each: &mut dyn FnMut(Envelope)) {
        let Envelope {
            slot,
            generation,
            stamp,
            msg,
            ..
        } = env;
        // SAFETY: `BATCH` envelopes of `Vt<A>` carry a `Batch<A::Msg>` (`append`), taken once.
        let mut batch = unsafe { msg.take::<Batch<A::Msg>>() };
        while let Some(msg) = batch.pop() {
            each(Self::user(slot, generation, stamp, msg));
        }
    }

    /// A user message envelope for `(slot, generation)` (already admitted).
    pub(crate) fn user(slot: u32, generation: u32, stamp: u64, msg: A::Msg) -> Envelope {
        Envelope {
            slot,
            generation,
            stamp,
            msg: ErasedMsg::new(msg),
            vt: &Self::USER,
        }
    }

    /// The push of a user message into its live actor's mailbox, lending the envelope: the
    /// message is taken out of it in place. False, with the envelope untouched, if there is no
    /// such actor accepting messages here (`deliver_user` then finds out why).
    #[inline]
    fn push_user(shard: &ShardLocal, env: &mut Envelope, run: Option<&mut DeliveryRun>) -> bool {
        shard
            .push_typed_in::<ActorCell<A>, _>(
                env.slot,
                env.generation,
                env,
                |cell, env| {
                    if !cell.accepting() {
                        return Err(env);
                    }
                    Self::take_into(cell, env);
                    Ok(())
                },
                run,
            )
            .is_ok()
    }

    /// [`push_user`](Self::push_user) within a drain's run: a message for the run's target is
    /// pushed without a lookup; another one is looked up and its actor becomes the target.
    fn push_user_in_run(shard: &ShardLocal, env: &mut Envelope, run: &mut DeliveryRun) -> bool {
        // No actor runs during a run, so its target still accepts; checked anyway (one load),
        // so that a target stopped by a path this reasoning missed costs a lookup, not a
        // message.
        if let Some(cell) = run.cell::<ActorCell<A>>(env.slot, env.generation)
            && cell.accepting()
        {
            Self::take_into(cell, env);
            return true;
        }
        Self::push_user_first(shard, env, run)
    }

    /// Moves the user message out of `env` (left empty) into `cell`'s mailbox.
    #[inline(always)]
    fn take_into(cell: &ActorCell<A>, env: &mut Envelope) {
        // SAFETY: `env` carries `Vt::<A>::USER` (both callers are its entries), which only
        // `Vt::<A>::user` attaches, to an erased `A::Msg`; the message is taken once, here,
        // since it is delivered once.
        cell.push(unsafe { env.msg.take_in_place::<A::Msg>() }, env.stamp);
    }

    /// The first message of a run (out of line: the run's later messages skip it).
    #[inline(never)]
    fn push_user_first(shard: &ShardLocal, env: &mut Envelope, run: &mut DeliveryRun) -> bool {
        Self::push_user(shard, env, Some(run))
    }

    fn deliver_user(shard: &ShardLocal, mut env: Envelope) {
        if Self::push_user(shard, &mut env, None) {
            return;
        }
        let (slot, generation) = (env.slot, env.generation);
        // The actor moved to another shard (work stealing): forward.
        let Some(env) = shard.forward_moved(env) else {
            return;
        };
        let reserved = shard
            .shared
            .table
            .get(slot)
            .is_some_and(|m| m.is_open(generation));
        let installed = shard.with_cell(slot, generation, |_| ()).is_some();
        if reserved && !installed && !shard.is_stopping() {
            // Sent by someone who got the address before the spawn reached this shard.
            shard.park_early(env);
        } else {
            shard.shared.discard(env, DeadLetterReason::ActorStopped);
        }
    }

    pub(crate) fn control(slot: u32, generation: u32, c: Control) -> Envelope {
        Envelope {
            slot,
            generation,
            stamp: 0,
            msg: ErasedMsg::new(c),
            vt: &Self::CONTROL,
        }
    }

    fn deliver_control(shard: &ShardLocal, env: Envelope) {
        let (slot, generation) = (env.slot, env.generation);
        let mut env = Some(env);
        let delivered = shard
            .with_typed_cell(slot, generation, |cell: &ActorCell<A>| {
                let env = env.take().expect("taken once");
                // SAFETY: `Vt::<A>::CONTROL` is attached only to envelopes whose payload is an
                // erased `Control` (`Vt::<A>::control` and `ActorRef::send_control`).
                cell.push_control(unsafe { env.msg.take::<Control>() });
            })
            .is_some();
        if delivered {
            shard.schedule(slot);
        } else if let Some(env) = env.and_then(|env| shard.forward_moved(env)) {
            let reserved = shard
                .shared
                .table
                .get(slot)
                .is_some_and(|m| m.is_open(generation));
            if reserved && !shard.is_stopping() {
                shard.park_early(env);
                return;
            }
            // SAFETY: as above, a `CONTROL` envelope carries an erased `Control`.
            let c = unsafe { env.msg.take::<Control>() };
            if matches!(c, Control::System(_)) {
                // A protocol message for an actor that is gone: accounted like any message
                // that could not be delivered (the protocols' timeouts tell the sender).
                super::cell::report_dead_letter(
                    shard,
                    slot,
                    std::any::type_name::<SystemMsg>(),
                    if shard.is_stopping() {
                        DeadLetterReason::Shutdown
                    } else {
                        DeadLetterReason::ActorStopped
                    },
                );
            }
        }
    }
}

impl<A: Actor> Addr<A> {
    pub(crate) fn new(shard: Arc<ShardShared>, slot: u32, generation: u32) -> Self {
        Addr {
            shard,
            slot,
            generation,
            _actor: PhantomData,
        }
    }

    /// The shard this actor lives on.
    pub fn shard(&self) -> usize {
        self.shard.id
    }

    /// True if the actor has not stopped (a snapshot: it may stop right after).
    pub fn is_alive(&self) -> bool {
        !self.shard.rt.is_stopping()
            && self
                .shard
                .table
                .get(self.slot)
                .is_some_and(|m| m.is_open(self.generation))
    }

    /// The actor's lifecycle state (a snapshot).
    pub fn state(&self) -> crate::lifecycle::State {
        self.actor_ref().state()
    }

    /// This address as an untyped [`ActorRef`](crate::ActorRef).
    pub fn actor_ref(&self) -> crate::ActorRef {
        crate::ActorRef::from(self)
    }

    /// User messages accepted for this actor and not yet handled (its real queue depth).
    pub fn mailbox_len(&self) -> usize {
        self.shard
            .table
            .get(self.slot)
            .map_or(0, |m| m.queued(self.generation) as usize)
    }

    /// A snapshot of this actor's statistics, or `None` if it has stopped.
    pub fn stats(&self) -> Option<ActorStats> {
        let meta = self.shard.table.get(self.slot)?;
        if !meta.is_open(self.generation) {
            return None;
        }
        let s = meta.stats();
        let processed = s.processed.load(Ordering::Relaxed);
        let wait = s.wait_ns.load(Ordering::Relaxed);
        Some(ActorStats {
            processed,
            pending: u64::from(meta.queued(self.generation)),
            processing_total: Duration::from_nanos(s.busy_ns.load(Ordering::Relaxed)),
            processing_max: Duration::from_nanos(s.max_ns.load(Ordering::Relaxed)),
            mean_mailbox_wait: Duration::from_nanos(wait.checked_div(processed).unwrap_or(0)),
        })
    }

    /// Sends `msg` without waiting, from any thread or actor.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] if the mailbox holds `mailbox_capacity` messages,
    /// [`SendError::Closed`] if the actor stopped or the runtime is shutting down. Either way the
    /// message comes back.
    #[inline]
    pub fn try_tell(&self, msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        // Shutdown closes the slots of the actors it stops, but a slot reserved by a spawn whose
        // install task was still queued is closed only by the final drain; checking the runtime
        // state (a read-mostly line) makes every send after `shutdown` began answer Closed.
        if self.shard.rt.is_stopping() {
            return Err(SendError::Closed(msg));
        }
        let Some(meta) = self.shard.table.get(self.slot) else {
            return Err(SendError::Closed(msg));
        };
        match meta.admit(self.generation, self.shard.mailbox_capacity) {
            Admit::Ok => self.send_admitted(msg).map_err(|msg| {
                // An outside thread found the shard's injection lane full: the message was
                // not sent, so its admission is taken back.
                meta.unadmit(self.generation);
                SendError::Full(msg)
            }),
            Admit::Full => Err(SendError::Full(msg)),
            Admit::Closed => Err(SendError::Closed(msg)),
        }
    }

    /// Sends `msg`. On a shard thread this never blocks and is [`try_tell`](Self::try_tell);
    /// on an outside thread it waits while the mailbox is full (backpressure) until there is
    /// room or the actor stops.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] (on a shard thread only) and [`SendError::Closed`], with the message.
    pub fn tell(&self, msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        self.tell_until(msg, None)
    }

    /// Like [`tell`](Self::tell), but an outside thread waits for room at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] if there was no room in time, [`SendError::Closed`] if the actor is
    /// gone.
    pub fn tell_timeout(&self, msg: A::Msg, timeout: Duration) -> Result<(), SendError<A::Msg>> {
        self.tell_until(msg, Some(Instant::now() + timeout))
    }

    #[inline]
    fn tell_until(&self, msg: A::Msg, deadline: Option<Instant>) -> Result<(), SendError<A::Msg>> {
        // The common case inline: room in the mailbox, nothing to set up for waiting.
        match self.try_tell(msg) {
            Err(SendError::Full(msg)) => self.wait_for_room(msg, deadline),
            other => other,
        }
    }

    /// The rest of [`tell_until`](Self::tell_until) after a `Full`: on an outside thread,
    /// waits for room (until `deadline`) and tries again.
    #[cold]
    #[inline(never)]
    fn wait_for_room(
        &self,
        mut msg: A::Msg,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<A::Msg>> {
        if with_current(|c| c.is_some()) {
            // A shard thread never waits.
            return Err(SendError::Full(msg));
        }
        let mut backoff = crate::sync::Backoff::new();
        let capacity = self.shard.mailbox_capacity;
        // After a `Full`, wait until the mailbox has drained a quarter of its bound before trying
        // again. Retrying at the first free slot kept sender and shard in lockstep: the shard
        // returns credit once per turn, the sender sent that one turn's worth, and each message
        // crossed between the cores while both were touching it (outside tell into a full
        // 4 096-message mailbox: 7.5 M msgs/s; with the wait, see docs/benchmarks.md).
        let resume_at = capacity.saturating_sub((capacity / 4).max(1));
        loop {
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(SendError::Full(msg));
                }
                backoff.snooze();
                // A stopped actor's count no longer drains: `try_tell` answers it.
                if self.mailbox_len() <= resume_at as usize || !self.is_alive() {
                    break;
                }
            }
            msg = match self.try_tell(msg) {
                Err(SendError::Full(m)) => m,
                other => return other,
            };
        }
    }

    /// Routes an admitted message: a direct push when the target is the current shard, the ring
    /// from another shard, the injection queue from a thread outside the runtime. Gives the
    /// message back only when an outside thread finds the shard's bounded injection lane full.
    #[inline]
    fn send_admitted(&self, msg: A::Msg) -> Result<(), A::Msg> {
        // `Some(on_a_shard)`: not sent yet, and whether this thread runs a shard (of another
        // runtime).
        let leftover = with_current(|cur| match cur {
            Some(local) if Arc::ptr_eq(&local.shared, &self.shard) => {
                local.shared.counters.bump_sent_local();
                self.push_local(local, msg, local.now_ns());
                None
            }
            Some(local) if Arc::ptr_eq(&local.rt, &self.shard.rt) => {
                let (slot, generation) = (self.slot, self.generation);
                if Vt::<A>::BATCHED {
                    local.send_remote_batched(
                        self.shard.id,
                        msg,
                        |last, msg| Vt::<A>::append(last, slot, generation, msg),
                        |msg, stamp, open| {
                            if open {
                                Vt::<A>::user_batch(slot, generation, stamp, msg)
                            } else {
                                Vt::<A>::user(slot, generation, stamp, msg)
                            }
                        },
                    );
                } else {
                    local.send_remote(
                        self.shard.id,
                        Vt::<A>::user(slot, generation, local.now_ns(), msg),
                    );
                }
                None
            }
            other => Some((msg, other.is_some())),
        });
        let Some((msg, on_a_shard)) = leftover else {
            return Ok(());
        };
        if on_a_shard {
            // A shard thread of another runtime: the unbounded lane (it must not block).
            // No clock read here: the shard stamps the message when it takes it in.
            self.shard.inject(Vt::<A>::user(
                self.slot,
                self.generation,
                STAMP_ON_ARRIVAL,
                msg,
            ));
            return Ok(());
        }
        if Vt::<A>::APPENDABLE && self.shard.takes_open_records() {
            return Vt::<A>::tell_outside_appendable(&self.shard, self.slot, self.generation, msg);
        }
        Vt::<A>::tell_outside_plain(&self.shard, self.slot, self.generation, msg)
    }

    #[inline]
    pub(crate) fn push_local(&self, local: &ShardLocal, msg: A::Msg, stamp: u64) {
        if let Err(msg) = Vt::<A>::push_msg(local, self.slot, self.generation, msg, stamp, None) {
            // Not installed yet (spawned from another shard) or stopping: the envelope path
            // parks it or turns it into a dead letter.
            Vt::<A>::user(self.slot, self.generation, stamp, msg).deliver(local);
        }
    }

    /// Asks the actor to stop after the message it is handling (control lane: never blocked by
    /// a full mailbox, handled before queued user messages, which then become dead letters).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if the actor is already gone.
    pub fn stop(&self) -> Result<(), SendError<()>> {
        if !self.is_alive() {
            return Err(SendError::Closed(()));
        }
        route(
            &self.shard,
            Vt::<A>::control(
                self.slot,
                self.generation,
                Control::Stop(StopReason::Requested),
            ),
        );
        Ok(())
    }

    /// What an ask reports when its request could not be sent. Drops the request, whose
    /// `Reply` the caller already settled.
    pub(crate) fn ask_send_error(&self, e: SendError<A::Msg>) -> AskError {
        let err = AskError::from_send(&e, self.shard.rt.is_shutting_down());
        drop(e);
        err
    }

    /// Asks from a thread outside the runtime and blocks until the reply or `timeout`.
    ///
    /// The caller polls for the reply for up to 20 µs (yielding its CPU after the first 2 µs)
    /// before it parks, so a quick reply costs neither side a system call.
    ///
    /// `make` builds the request from the [`Reply`] handle the actor answers through; replies are
    /// matched to their request, so concurrent askers never see each other's answers. While the
    /// mailbox is full the call waits for room within the same timeout.
    ///
    /// # Errors
    ///
    /// [`AskError::Timeout`], [`AskError::Closed`], [`AskError::Full`] (no room before the
    /// deadline), [`AskError::Dropped`] (the actor dropped the request unanswered, stopped or
    /// panicked), [`AskError::Shutdown`]. Called on a shard thread it returns
    /// [`AskError::WouldBlock`] at once: use [`Context::ask`](crate::Context::ask) there.
    pub fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> Result<T, AskError> {
        if with_current(|c| c.is_some()) {
            return Err(AskError::WouldBlock);
        }
        let deadline = Instant::now() + timeout;
        let (reply, slot) = Reply::for_thread(&self.shard.rt);
        let msg = make(reply);
        if let Err(e) = self.tell_until(msg, Some(deadline)) {
            slot.cancel_quietly();
            return Err(self.ask_send_error(e));
        }
        // Poll a while before parking: an awake shard answers within microseconds, and a
        // parked asker costs the replier a futex wake and itself a wake-up latency.
        let mut spin_until = Some(Instant::now() + ASK_SPIN.min(timeout));
        let mut spins = 0u32;
        loop {
            match slot.poll() {
                super::slot::Poll::Ready(r) => return r,
                super::slot::Poll::TimedOut => return Err(AskError::Timeout(timeout)),
                super::slot::Poll::Pending => {}
            }
            if let Some(until) = spin_until {
                spins = spins.wrapping_add(1);
                if spins % 64 != 0 {
                    crate::sync::spin_loop();
                    continue;
                }
                let now = Instant::now();
                if now < until {
                    // Past the first few microseconds, let a shard that shares this CPU run.
                    if until - now < ASK_SPIN - ASK_SPIN_HOT {
                        crate::sync::thread::yield_now();
                    }
                    continue;
                }
                spin_until = None;
            }
            let now = Instant::now();
            if now >= deadline {
                if slot.time_out() {
                    return Err(AskError::Timeout(timeout));
                }
                continue;
            }
            crate::sync::thread::park_timeout(deadline - now);
        }
    }

    /// Asks from anywhere and returns a future of the reply, usable with any executor. The
    /// timeout is enforced by the actor's shard, so the future completes even if nobody else
    /// wakes it.
    pub fn ask_async<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> AskFuture<T> {
        let (reply, slot) = Reply::for_future(&self.shard.rt);
        let msg = make(reply);
        match self.try_tell(msg) {
            Ok(()) => {
                let timer_slot = slot.clone();
                route(
                    &self.shard,
                    Envelope::task(move |shard: &ShardLocal| {
                        shard.add_timer(
                            timeout,
                            crate::shard::TimerAction::Task(Box::new(move |_| {
                                timer_slot.time_out();
                            })),
                        );
                    }),
                );
                AskFuture::pending(slot, timeout)
            }
            Err(e) => {
                slot.cancel_quietly();
                AskFuture::failed(self.ask_send_error(e))
            }
        }
    }
}
