//! The injection queue with its shutdown handshake: after a shard's final drain, nothing pushed
//! by an outside thread is left behind.
//!
//! # Protocol
//!
//! Outside threads push into a shard's [`InjectQueue`] at any time, also while and after the
//! shard shuts down. The shard *closes* the queue once, in its final drain. Every pushed value
//! must then be either consumed by the shard (a regular [`pop`](ClosableQueue::pop)) or handed
//! to a `discard` callback (dead letter) by someone, exactly once, and never stay in the queue.
//!
//! A pusher ([`push`](ClosableQueue::push)):
//!
//! 1. pushes its value;
//! 2. `fence(SeqCst)`;
//! 3. loads `closed` (Relaxed); if set, discards everything queued, its own value or anyone
//!    else's, if it can take the consumer's role (see "One consumer" below);
//! 4. calls `notify` (in the runtime: for the unbounded lane, rings the shard's doorbell unless
//!    its `INJECT` bit is already set, see below; for the bounded lane, which the shard polls,
//!    rings only if the shard announced that it sleeps, see "Two lanes").
//!
//! The shard ([`close`](ClosableQueue::close)):
//!
//! 1. stores `closed = true` (Relaxed);
//! 2. `fence(SeqCst)`;
//! 3. pops and discards everything queued;
//! 4. hands the consumer's role back (see "One consumer").
//!
//! # Skipping the doorbell (unbounded lane)
//!
//! Ringing the doorbell is an RMW on a cache line the shard also writes; threads that push
//! many messages would pay it for every one. So the unbounded lane's `notify` first loads the
//! doorbell word and rings only if the `INJECT` bit is clear. This is safe because the load
//! comes after the pusher's fence (step 2), and the shard, after a `take` that returned
//! `INJECT`, issues [`drain_fence`](ClosableQueue::drain_fence) before it pops (a drain the
//! shard starts because a poll found the bounded lane holding work, without taking the bit,
//! needs none: the bit stays set until a take): another store-buffering pair
//! (pusher: push, fence, load the word; shard: clear the bit, fence, pop). If the pusher's load
//! still saw the bit set, its fence precedes the shard's in the total order of SeqCst fences,
//! so the shard's pops see the push; otherwise the pusher saw the bit clear and rings.
//! `loom-tests/inject_close.rs` checks it with the real doorbell.
//!
//! This is the store-buffering pattern: each side writes (the queue, the flag) then reads what
//! the other side writes. The two SeqCst fences are totally ordered. If the pusher's fence comes
//! first, its push happens before the shard's drain in step 3, which finds the value (or a pop
//! that took it). If the shard's fence comes first, its `closed` store is visible to the
//! pusher's load in step 4, which discards. Either way somebody drains after the push; a value
//! is popped at most once because popping is the queue's own atomic operation. Without either
//! fence, both loads may read stale values and the value stays queued forever (a leak, and an
//! asker that waits for its full timeout).
//!
//! A SeqCst store and load of the flag would not do: the other access of each side is inside
//! the queue, with crossbeam's orderings, not ours; and loom models SeqCst loads and stores as
//! AcqRel, while it does model `fence(SeqCst)`. `loom-tests/inject_close.rs` checks the
//! handshake with [`InjectQueue`]'s loom stand-in, whose emptiness check is no stronger than
//! crossbeam's.
//!
//! # One consumer
//!
//! The bounded lane has a single consumer ([`BoundedInject::pop`] is `unsafe`): a shard takes
//! a message with plain loads and stores of the head, no read-modify-write. The role is a
//! token, `consumer`, which the shard holds from the queue's creation until its final drain.
//! After `close`, late pushers discard, and several may do so at once, so each must hold the
//! token while it pops:
//!
//! * to discard, a thread takes the token with a CAS (`false` to `true`, Acquire). If the CAS
//!   fails, someone else holds it and will look at the queue again after giving it back, so
//!   the thread leaves at once (lock-free: nobody waits for the holder);
//! * a holder pops and discards everything, gives the token back (Release), issues
//!   `fence(SeqCst)`, and looks at both lanes again; if either holds a value, it tries to
//!   take the token once more.
//!
//! The Release/Acquire pair orders each holder's pops before the next holder's, as
//! [`BoundedInject::pop`] requires. A value is never left behind: a pusher whose CAS failed
//! pushed, then fenced (step 2), then read the token set; the holder cleared it, fenced, then
//! looks at the lanes. Of the two SeqCst fences, if the pusher's comes first the holder's look
//! sees the value; otherwise the pusher's CAS reads the cleared token or a later holder's,
//! and that holder looks again after its own release. The shard hands the token back the same
//! way at the end of `close`, and must not pop afterwards. `loom-tests/inject_close.rs`
//! checks it, and with the final look left out (`--cfg coreactor_loom_bug="inject_token"`)
//! must find a value left queued.
//!
//! # Two lanes
//!
//! The queue has two lanes (`mailbox::inject`): a bounded one for outside threads
//! ([`try_push_bounded`](ClosableQueue::try_push_bounded), which gives the value back when the
//! lane is full and then neither notifies nor checks `closed`) and an unbounded one for shard
//! threads of other runtimes ([`push`](ClosableQueue::push)). Both follow the steps above;
//! `pop`, `close` and the pushers' discards drain both. The argument is per lane: a push into
//! either is a store the other side's drain must see, and the fences order it the same way.
//!
//! The bounded lane is a *polled source* of the shard's doorbell (`shard::doorbell`, "Polled
//! sources"): an awake shard looks at the sequence word of its oldest slot at every loop
//! iteration ([`bounded_ready`](ClosableQueue::bounded_ready)), so its pushers do not ring an
//! awake shard at all. Their `notify` loads the doorbell word after the fence of step 2 (the
//! same fence serves both handshakes) and rings only if `SLEEPING` is set; the shard, after it
//! announces sleep and fences, polls the lane once more before it blocks. Of several pushers,
//! the one whose position is the oldest is the one that matters: the shard looks at that
//! slot, and its pusher fences after writing it. `loom-tests/doorbell.rs`, models (g) and (h),
//! check it with two pushers racing for the slots.
//!
//! # Deliberate bug (`--cfg coreactor_loom_bug="inject"`)
//!
//! The pusher's fence (step 3) is left out; `loom-tests/inject_close.rs` must then find the
//! interleaving that leaves a value in the queue. The pusher's fence is the one dropped because
//! crossbeam's `SegQueue::pop` happens to issue a SeqCst fence of its own before it decides the
//! queue is empty, which would stand in for the shard's fence in a real run but not for this one.

use crate::mailbox::inject::{BoundedInject, CellWords, InjectQueue, LaneRecord, OpenRecord};
use crate::sync::atomic::{AtomicBool, Ordering, fence};

/// Default number of cells of the bounded (outside-thread) lane: 1024 (4 in loom models, whose
/// cost grows with every atomic they create).
pub const DEFAULT_BOUNDED_LANE: usize = if cfg!(coreactor_loom) { 4 } else { 1024 };

/// The injection lanes that their consumer closes once; see the module docs for the handshake.
pub struct ClosableQueue<T: LaneRecord> {
    bounded: BoundedInject<T>,
    queue: InjectQueue<T>,
    closed: AtomicBool,
    /// The consumer's token ("One consumer"): set while some thread may pop the lanes. The
    /// shard holds it from the start until the end of `close`.
    consumer: AtomicBool,
}

impl<T: LaneRecord> ClosableQueue<T> {
    /// An open, empty queue whose bounded lane holds [`DEFAULT_BOUNDED_LANE`] values.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_BOUNDED_LANE)
    }

    /// An open, empty queue whose bounded lane holds `capacity` values (a power of two, at
    /// least 2).
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two of at least 2.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        ClosableQueue {
            bounded: BoundedInject::new(capacity),
            queue: InjectQueue::new(),
            closed: AtomicBool::new(false),
            consumer: AtomicBool::new(true),
        }
    }

    /// Pusher on the unbounded lane: queues `value`, calls `notify`, and, if the consumer has
    /// closed the queue, hands everything still queued to `discard` (steps 1–4 of the module
    /// docs).
    pub fn push(&self, value: T, notify: impl FnOnce(), discard: impl FnMut(T)) {
        self.queue.push(value);
        self.after_push(notify, discard);
    }

    /// Pusher on the bounded lane: like [`push`](Self::push), or, if the lane is full, gives
    /// `value` back at once (nothing else happens then).
    ///
    /// # Errors
    ///
    /// The value, when the lane is full (a snapshot: the consumer may be taking values).
    pub fn try_push_bounded(
        &self,
        value: T,
        notify: impl FnOnce(),
        discard: impl FnMut(T),
    ) -> Result<(), T> {
        self.bounded.push(value)?;
        self.after_push(notify, discard);
        Ok(())
    }

    /// Pusher on the bounded lane: like [`try_push_bounded`](Self::try_push_bounded) for an
    /// open record ([`BoundedInject::push_open`]), which this thread may then add values to
    /// with [`append`](Self::append). Gives `write` back, uncalled, if the lane is full.
    ///
    /// # Errors
    ///
    /// `write`, when the lane is full.
    pub fn try_push_bounded_open<W: FnOnce(&mut CellWords)>(
        &self,
        write: W,
        notify: impl FnOnce(),
        discard: impl FnMut(T),
    ) -> Result<OpenRecord, W> {
        let record = self.bounded.push_open(write)?;
        self.after_push(notify, discard);
        Ok(record)
    }

    /// Adds a value to `record`, an open record this thread pushed into the bounded lane and
    /// which holds at most `capacity`, unless it was taken (see [`BoundedInject::append`]; no
    /// step 2–4 is needed: whoever takes the record takes what was appended before).
    ///
    /// # Errors
    ///
    /// `write`, uncalled, when the record was taken or is full.
    #[inline]
    pub fn append<W: FnOnce(&mut CellWords, usize)>(
        &self,
        record: &mut OpenRecord,
        capacity: usize,
        write: W,
    ) -> Result<(), W> {
        self.bounded.append(record, capacity, write)
    }

    /// Steps 2–4 of a push.
    fn after_push(&self, notify: impl FnOnce(), discard: impl FnMut(T)) {
        // Step 2. Pairs with the fence in `close`: either this push happens before the
        // consumer's final drain, or its `closed` store is visible to the load below. Pairs also
        // with `drain_fence`, which is what lets `notify` skip a redundant doorbell ring.
        #[cfg(not(coreactor_loom_bug = "inject"))]
        fence(Ordering::SeqCst);
        // Relaxed: the fences above and in `close` order this load (see the module docs).
        if self.closed.load(Ordering::Relaxed) {
            self.discard_late(discard);
        }
        notify();
    }

    /// Consumer: call after the doorbell `take` that returned the `INJECT` bit and before
    /// popping, so that a pusher that skipped ringing (it saw the bit still set) is seen.
    pub fn drain_fence(&self) {
        // Pairs with the fence in `push` (see "Skipping the doorbell").
        fence(Ordering::SeqCst);
    }

    /// Consumer: true if the bounded lane's oldest position holds a value (one load of its
    /// head and one of that slot's sequence word): how a shard polls the lane.
    #[inline]
    pub fn bounded_ready(&self) -> bool {
        !self.bounded.is_empty()
    }

    /// True if neither lane holds a value: exact for the consumer, a snapshot for any other
    /// thread.
    pub fn is_empty(&self) -> bool {
        self.bounded.is_empty() && self.queue.is_empty()
    }

    /// True once the consumer closed the queue (exact for the consumer, which closes it).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Consumer: takes the oldest value of the bounded lane, else of the unbounded one.
    ///
    /// # Safety
    ///
    /// The caller is the consumer (the thread that will close the queue) and has not closed
    /// it yet: no other thread pops before the close ("One consumer" in the module docs).
    #[inline]
    #[cfg_attr(not(any(test, coreactor_loom)), allow(dead_code))] // the shard uses `pop_with`
    pub unsafe fn pop(&self) -> Option<T> {
        let mut out = None;
        // SAFETY: the caller's contract, passed on.
        unsafe { self.pop_with(|v| out = Some(v)) };
        out
    }

    /// Consumer: like [`pop`](Self::pop), but hands the value to `f` and returns the number of
    /// values its record held (see [`BoundedInject::pop_with`]); 0 if both lanes are empty.
    ///
    /// # Safety
    ///
    /// As for [`pop`](Self::pop).
    #[inline]
    pub unsafe fn pop_with(&self, f: impl FnMut(T)) -> usize {
        debug_assert!(!self.is_closed(), "a pop after close");
        // SAFETY: the caller's contract: this thread holds the consumer's token.
        unsafe { self.take_any(f) }
    }

    /// Hands the oldest value of the bounded lane, else of the unbounded one, to `f`, and
    /// returns the number of values its record held; 0 if both are empty.
    ///
    /// # Safety
    ///
    /// The caller holds the consumer's token.
    #[inline]
    unsafe fn take_any(&self, mut f: impl FnMut(T)) -> usize {
        // SAFETY: the caller holds the token, so it is the bounded lane's one consumer.
        let took = unsafe { self.bounded.pop_with(&mut f) };
        if took > 0 {
            return took;
        }
        self.queue.pop().map_or(0, |v| {
            f(v);
            1
        })
    }

    /// Consumer's final drain: closes the queue, hands everything queued to `discard`, and
    /// hands the consumer's role to late pushers, which discard what they push from then on.
    ///
    /// # Safety
    ///
    /// As for [`pop`](Self::pop): the consumer, once. It must not pop afterwards.
    pub unsafe fn close(&self, mut discard: impl FnMut(T)) {
        // Relaxed: the fence below publishes it (pairs with the fence in `push`).
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // SAFETY: the caller's contract: this thread holds the token.
        unsafe { self.discard_queued(&mut discard) };
        self.hand_back(discard);
    }

    /// A late pusher (the queue is closed): discards everything queued if it can take the
    /// consumer's token; else its holder will see what this pusher pushed ("One consumer").
    fn discard_late(&self, mut discard: impl FnMut(T)) {
        if self.take_token() {
            // SAFETY: this thread holds the token.
            unsafe { self.discard_queued(&mut discard) };
            self.hand_back(discard);
        }
    }

    /// Takes the consumer's token; false if another thread holds it.
    fn take_token(&self) -> bool {
        // Acquire: pairs with the previous holder's Release, so its pops happen before ours.
        self.consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The token's holder gives it back, then looks at the lanes again, and discards again if
    /// it can take the token back while something is queued.
    fn hand_back(&self, mut discard: impl FnMut(T)) {
        loop {
            // Release: the next holder's pops come after ours.
            self.consumer.store(false, Ordering::Release);
            // Pairs with the fence of a pusher whose CAS found the token held ("One consumer").
            fence(Ordering::SeqCst);
            // The deliberate bug leaves the look out (see the module docs).
            let look_again = cfg!(not(coreactor_loom_bug = "inject_token"));
            if !look_again || self.is_empty() || !self.take_token() {
                return;
            }
            // SAFETY: the token was taken just above.
            unsafe { self.discard_queued(&mut discard) };
        }
    }

    /// Pops and discards everything queued.
    ///
    /// # Safety
    ///
    /// The caller holds the consumer's token.
    unsafe fn discard_queued(&self, discard: &mut impl FnMut(T)) {
        // SAFETY: the caller holds the token.
        while unsafe { self.take_any(&mut *discard) } > 0 {}
    }
}

impl<T: LaneRecord> Default for ClosableQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::ClosableQueue;
    use crate::mailbox::inject::LaneRecord;

    /// Pops as the queue's consumer.
    fn take<T: LaneRecord>(q: &ClosableQueue<T>) -> Option<T> {
        // SAFETY: each test pops from one thread, before it closes the queue.
        unsafe { q.pop() }
    }

    /// Closes the queue as its consumer.
    fn close<T: LaneRecord>(q: &ClosableQueue<T>, discard: impl FnMut(T)) {
        // SAFETY: each test's one thread closes its queue once and pops no more.
        unsafe { q.close(discard) }
    }

    #[test]
    fn bounded_ready_sees_the_bounded_lane_only() {
        let q = ClosableQueue::<u32>::with_capacity(2);
        assert!(!q.bounded_ready());
        let mut notified = 0;
        q.try_push_bounded(1, || notified += 1, |_| panic!("open queue"))
            .unwrap();
        assert_eq!(notified, 1, "a push notifies once, after its fence");
        assert!(q.bounded_ready());
        // The unbounded lane is announced through the doorbell, not polled.
        q.push(2, || notified += 1, |_| panic!("open queue"));
        assert_eq!(take(&q), Some(1), "the bounded lane first");
        assert!(!q.bounded_ready(), "only the unbounded lane holds a value");
        assert_eq!(take(&q), Some(2));
        assert_eq!(notified, 2);
    }

    #[test]
    fn full_bounded_lane_gives_the_value_back_without_notifying() {
        let q = ClosableQueue::<u32>::with_capacity(2);
        let mut notified = 0;
        // Even values: one cell each (`LaneRecord` for integers).
        for v in [0, 2] {
            q.try_push_bounded(v, || notified += 1, |_| panic!("open queue"))
                .unwrap();
        }
        assert_eq!(
            q.try_push_bounded(9, || notified += 1, |_| panic!("open queue")),
            Err(9)
        );
        assert_eq!(notified, 2);
    }

    #[test]
    fn pushes_after_close_are_discarded_by_their_pusher() {
        let q = ClosableQueue::<u32>::with_capacity(2);
        let mut closed_with = Vec::new();
        q.try_push_bounded(1, || {}, |_| panic!("open queue"))
            .unwrap();
        close(&q, |v| closed_with.push(v));
        assert_eq!(closed_with, vec![1]);
        let mut late = Vec::new();
        q.try_push_bounded(2, || {}, |v| late.push(v)).unwrap();
        assert_eq!(
            late,
            vec![2],
            "the pusher found the queue closed and discarded"
        );
        assert!(!q.bounded_ready());
    }
}
