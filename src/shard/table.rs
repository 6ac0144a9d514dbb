//! The slot table: the part of each actor's bookkeeping that other threads may read.
//!
//! An address is `(shard, slot, generation)`. The owning shard keeps the actor itself in a
//! shard-local slab; this table keeps, per slot, one admission word that any sender may update:
//!
//! ```text
//!  63                32 31   30                      0
//! +--------------------+----+------------------------+
//! |     generation     |OPEN|         count          |
//! +--------------------+----+------------------------+
//! ```
//!
//! * `generation` changes only when the owner frees the slot, so a stale address can never
//!   reach the slot's next tenant: its sends fail with `Closed`.
//! * `OPEN` is set while the actor accepts user messages (from reservation until it stops).
//! * `count` is an upper bound on the user messages accepted but not yet handled. A sender
//!   increments it with a compare-and-swap that also checks the generation, `OPEN` and the
//!   mailbox bound, so `try_tell` can answer `Full` or `Closed` synchronously, from any
//!   thread, without a lock.
//! * The owner does not decrement `count`: once per turn it adds the messages it handled to
//!   `done` (`generation << 32 | n`), a second word on a cache line of its own. The queue
//!   depth is `count − done`. A sender that finds `count` at the bound first takes the credit
//!   back (a CAS that empties `done` if it still belongs to the sender's generation, then a
//!   CAS that subtracts it from `count` if that still holds the same generation) and checks
//!   again; only then does it answer `Full`. So the bound is exact, and in steady state the
//!   sender keeps the admission line and the owner its own line: a cross-core hop does not
//!   move the admission word back and forth.
//!
//! Who writes what: senders (any thread) CAS `count` upward under the checks above and take
//! `done` credit back as described; the owner shard clears `OPEN` when its actor stops, adds
//! to `done`, and stores fresh words (next generation, closed, zero) when it frees the slot.
//! All these accesses are `Relaxed`: the words carry no data of their own. Messages travel
//! through rings and queues that have their own Release/Acquire pairs, and a message that
//! races with a stop or a free is caught on arrival by the owner's generation check (it
//! becomes a dead letter, never a wrong delivery). Credit is tagged with its generation, so
//! credit of a freed slot's old tenant is dropped, never applied to the next one.
//!
//! Slots are allocated from a lock-free free list (any thread may reserve one, so that
//! `spawn_on` returns an address at once) or, when it is empty, from a fresh-index counter.
//! The table grows in chunks on first use and never moves, so readers need no lock.

#![deny(unsafe_code)]

use crate::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use crossbeam_queue::SegQueue;
use std::sync::OnceLock;

const CHUNK: usize = 256;
const OPEN: u64 = 1 << 31;
const COUNT_MASK: u64 = OPEN - 1;
/// The credit field of the owner's `done` word.
const COUNT_MASK_32: u64 = u32::MAX as u64;
/// Credit at which the owner subtracts it from `count` itself (see [`SlotMeta::sub`]).
const OWNER_RECLAIM_AT: u64 = 1 << 16;

/// Why a send could not be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The message may be sent; `queued` was incremented.
    Ok,
    /// The mailbox bound is reached.
    Full,
    /// Stale generation or closed actor.
    Closed,
}

/// Per-actor statistics, written by the shard that runs the actor (one writer at a time) and
/// readable by anyone.
#[derive(Default)]
pub(crate) struct StatCells {
    pub(crate) processed: crate::sync::StatU64,
    pub(crate) busy_ns: crate::sync::StatU64,
    pub(crate) max_ns: crate::sync::StatU64,
    pub(crate) wait_ns: crate::sync::StatU64,
}

/// The line senders write: the admission word.
#[repr(C, align(64))]
#[derive(Default)]
struct SenderLine {
    /// `generation | OPEN | count`; `count` is an upper bound on the queued user messages (see
    /// [`SlotMeta`]).
    word: AtomicU64,
}

/// The line the owner writes: handled-message credit, statistics, lifecycle state.
#[repr(C, align(64))]
#[derive(Default)]
struct OwnerLine {
    /// `generation << 32 | n`: `n` messages of that generation were handled or discarded and
    /// not yet subtracted from the admission word's `count`.
    done: AtomicU64,
    stats: StatCells,
    /// The actor's lifecycle state (`actor::lifecycle::State` as a byte), written by the owner
    /// shard, read by anyone as a snapshot. Reset to 0 (`New`) when the slot is freed.
    state: AtomicU8,
}

/// One slot's shared bookkeeping, on two cache lines: one written by senders, one by the owner.
///
/// The queue depth is `count − done`. A sender admits with one CAS on the admission word (the
/// checks of the module docs against `count`, which over-reports the depth by the credit not
/// yet taken back); only when `count` reaches the bound does it take the owner's `done` credit
/// (`reclaim`) and retry. The owner returns credit with an RMW on its own line. So in steady
/// state neither side writes the other's line: a message between two cores no longer moves
/// the admission word from the receiver (who decremented it) back to the sender on every hop.
#[repr(C)]
#[derive(Default)]
pub(crate) struct SlotMeta {
    send: SenderLine,
    own: OwnerLine,
}

fn generation(word: u64) -> u32 {
    (word >> 32) as u32
}

impl SlotMeta {
    /// Admits one user message for generation `generation` if the actor is open and its mailbox
    /// holds fewer than `capacity` messages.
    #[inline]
    pub(crate) fn admit(&self, generation_: u32, capacity: u32) -> Admit {
        let mut cur = self.send.word.load(Ordering::Relaxed);
        loop {
            if generation(cur) != generation_ || cur & OPEN == 0 {
                return Admit::Closed;
            }
            if cur & COUNT_MASK >= u64::from(capacity) {
                // `count` over-reports by the credit the owner returned: take it back before
                // answering Full. No credit to take: another sender may have just taken it and
                // be about to subtract it, so look at the word once more; Full only if it did
                // not move. (A sender paused between its two CASes can still make a concurrent
                // sender see Full one message early: the answer is a snapshot, and a retrying
                // sender finds the credit.)
                if !self.reclaim(generation_) {
                    let now = self.send.word.load(Ordering::Relaxed);
                    if now == cur {
                        return Admit::Full;
                    }
                    cur = now;
                    continue;
                }
                cur = self.send.word.load(Ordering::Relaxed);
                continue;
            }
            match self.send.word.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Admit::Ok,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes the owner's returned credit of generation `g` and subtracts it from `count`. False
    /// if there was none.
    #[cold]
    fn reclaim(&self, g: u32) -> bool {
        let tag = u64::from(g) << 32;
        let mut done = self.own.done.load(Ordering::Relaxed);
        let n = loop {
            if done & !COUNT_MASK_32 != tag || done & COUNT_MASK_32 == 0 {
                return false;
            }
            match self.own.done.compare_exchange_weak(
                done,
                tag,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break done & COUNT_MASK_32,
                Err(actual) => done = actual,
            }
        };
        // Every message counted in `done` of generation `g` was counted in `count` of `g`
        // first (admitted, or forced by the owner), so the subtraction cannot underflow. If
        // the word moved to another generation meanwhile, `g` is dead: the credit is dropped.
        let mut cur = self.send.word.load(Ordering::Relaxed);
        loop {
            if generation(cur) != g {
                return false;
            }
            debug_assert!(cur & COUNT_MASK >= n, "credit above count");
            match self.send.word.compare_exchange_weak(
                cur,
                cur - n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes back one admission of generation `generation_` whose message was not sent after
    /// all (an outside thread found the injection lane full). Any thread. Nothing happens if
    /// the slot has moved on to another generation since.
    pub(crate) fn unadmit(&self, generation_: u32) {
        let mut word = self.send.word.load(Ordering::Relaxed);
        loop {
            if generation(word) != generation_ || word & COUNT_MASK == 0 {
                return;
            }
            match self.send.word.compare_exchange_weak(
                word,
                word - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => word = current,
            }
        }
    }

    /// Counts one message the owner delivers to its own live actor regardless of the bound
    /// (timer messages, ask continuations). Owner thread only.
    #[inline]
    pub(crate) fn add_forced(&self, n: u32) {
        self.send.word.fetch_add(u64::from(n), Ordering::Relaxed);
    }

    /// Owner: `n` messages of the current generation were handled or discarded. Returns them
    /// as credit on the owner's own line (senders take it back when the bound looks reached).
    #[inline]
    pub(crate) fn sub(&self, n: u32) {
        if n > 0 {
            let prev = self.own.done.fetch_add(u64::from(n), Ordering::Relaxed);
            let credit = (prev & COUNT_MASK_32) + u64::from(n);
            debug_assert!(credit <= COUNT_MASK, "credit overflow");
            // Senders take credit back only at the bound. An actor fed mostly by forced
            // messages (timers, ask continuations) may not see a sender there for a long time,
            // while `count` and `done` both grow: the owner takes the credit back itself before
            // `count` could reach `OPEN`'s bit.
            if credit >= OWNER_RECLAIM_AT {
                self.reclaim(generation(prev));
            }
        }
    }

    /// The per-actor statistics.
    #[inline]
    pub(crate) fn stats(&self) -> &StatCells {
        &self.own.stats
    }

    /// Owner: stop accepting user messages (generation unchanged).
    pub(crate) fn close(&self) {
        self.send.word.fetch_and(!OPEN, Ordering::Relaxed);
    }

    /// Owner: publishes the actor's lifecycle state.
    pub(crate) fn set_lifecycle_state(&self, state: u8) {
        self.own.state.store(state, Ordering::Relaxed);
    }

    /// The last published lifecycle state (check the generation separately).
    pub(crate) fn lifecycle_state(&self) -> u8 {
        self.own.state.load(Ordering::Relaxed)
    }

    /// True if the slot currently holds generation `g` and accepts messages.
    pub(crate) fn is_open(&self, g: u32) -> bool {
        let w = self.send.word.load(Ordering::Relaxed);
        generation(w) == g && w & OPEN != 0
    }

    /// User messages queued for generation `g` (0 if the slot moved on): `count − done`, a
    /// snapshot.
    pub(crate) fn queued(&self, g: u32) -> u32 {
        let w = self.send.word.load(Ordering::Relaxed);
        if generation(w) != g {
            return 0;
        }
        let done = self.own.done.load(Ordering::Relaxed);
        let credit = if generation(done) == g {
            done & COUNT_MASK_32
        } else {
            0
        };
        (w & COUNT_MASK).saturating_sub(credit) as u32
    }

    /// The generation the slot currently holds.
    pub(crate) fn current_generation(&self) -> u32 {
        generation(self.send.word.load(Ordering::Relaxed))
    }
}

/// The shared per-shard table of slots.
pub(crate) struct SlotTable {
    chunks: Box<[OnceLock<Box<[SlotMeta]>>]>,
    free: SegQueue<u32>,
    fresh: AtomicU32,
    max: u32,
}

impl SlotTable {
    /// A table for at most `max_actors` live actors.
    pub(crate) fn new(max_actors: usize) -> Self {
        let max = u32::try_from(max_actors).unwrap_or(u32::MAX);
        let chunks = (max as usize).div_ceil(CHUNK);
        SlotTable {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            free: SegQueue::new(),
            fresh: AtomicU32::new(0),
            max,
        }
    }

    /// The configured `max_actors`.
    pub(crate) fn capacity(&self) -> usize {
        self.max as usize
    }

    /// The slot's bookkeeping, or `None` if the slot was never allocated.
    #[inline]
    pub(crate) fn get(&self, slot: u32) -> Option<&SlotMeta> {
        let slot = slot as usize;
        self.chunks
            .get(slot / CHUNK)?
            .get()
            .map(|c| &c[slot % CHUNK])
    }

    fn get_or_create(&self, slot: u32) -> &SlotMeta {
        let slot = slot as usize;
        let chunk = self.chunks[slot / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| SlotMeta::default()).collect());
        &chunk[slot % CHUNK]
    }

    /// Reserves a slot and opens it for messages; returns `(slot, generation)`, or `None` if
    /// `max_actors` slots are in use. Any thread.
    pub(crate) fn reserve(&self) -> Option<(u32, u32)> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let mut cur = self.fresh.load(Ordering::Relaxed);
                loop {
                    if cur >= self.max {
                        return None;
                    }
                    match self.fresh.compare_exchange_weak(
                        cur,
                        cur + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break cur,
                        Err(actual) => cur = actual,
                    }
                }
            }
        };
        let meta = self.get_or_create(slot);
        // The slot is ours alone: it came off the free list (pushed by the owner after it stored
        // the next generation) or is fresh. Its word is `generation << 32`, closed and empty.
        let g = meta.current_generation();
        meta.own.done.store(u64::from(g) << 32, Ordering::Relaxed);
        meta.send
            .word
            .store((u64::from(g) << 32) | OPEN, Ordering::Relaxed);
        let st = meta.stats();
        for s in [&st.processed, &st.busy_ns, &st.max_ns, &st.wait_ns] {
            s.store(0, Ordering::Relaxed);
        }
        Some((slot, g))
    }

    /// Shutdown: closes every slot (those still open were reserved by spawns that will never be
    /// installed). Generations are kept, so addresses stay dead rather than reusable.
    pub(crate) fn close_all(&self) {
        let fresh = self.fresh.load(Ordering::Relaxed);
        for slot in 0..fresh {
            if let Some(meta) = self.get(slot) {
                meta.close();
            }
        }
    }

    /// Owner: frees a slot whose actor is gone. Every address of the old generation becomes
    /// dead; the slot returns to the free list.
    pub(crate) fn release(&self, slot: u32) {
        let meta = self.get_or_create(slot);
        let next = meta.current_generation().wrapping_add(1);
        meta.send
            .word
            .store(u64::from(next) << 32, Ordering::Relaxed);
        // After the word: a sender still holding credit of the old generation then finds the
        // word moved on and drops it (`reclaim`).
        meta.own
            .done
            .store(u64::from(next) << 32, Ordering::Relaxed);
        meta.own.state.store(0, Ordering::Relaxed);
        self.free.push(slot);
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn reserve_admit_close_release() {
        let t = SlotTable::new(4);
        let (s, g) = t.reserve().unwrap();
        let m = t.get(s).unwrap();
        assert_eq!(m.admit(g, 2), Admit::Ok);
        assert_eq!(m.admit(g, 2), Admit::Ok);
        assert_eq!(m.admit(g, 2), Admit::Full);
        assert_eq!(m.queued(g), 2);
        m.sub(1);
        assert_eq!(m.admit(g, 2), Admit::Ok);
        assert_eq!(m.admit(g.wrapping_add(1), 2), Admit::Closed);
        m.close();
        assert_eq!(m.admit(g, 2), Admit::Closed);
        t.release(s);
        let (s2, g2) = t.reserve().unwrap();
        assert_eq!(s2, s);
        assert_ne!(g2, g);
        assert_eq!(
            t.get(s).unwrap().admit(g, 8),
            Admit::Closed,
            "stale address"
        );
        assert_eq!(t.get(s).unwrap().admit(g2, 8), Admit::Ok);
    }

    #[test]
    fn max_actors_is_enforced() {
        let t = SlotTable::new(3);
        assert!(t.reserve().is_some());
        assert!(t.reserve().is_some());
        let (s, _) = t.reserve().unwrap();
        assert!(t.reserve().is_none());
        t.release(s);
        assert!(t.reserve().is_some());
        assert!(t.get(1000).is_none());
    }

    #[test]
    fn slot_meta_is_two_cache_lines() {
        assert_eq!(std::mem::align_of::<SlotMeta>(), 64);
        assert_eq!(std::mem::size_of::<SlotMeta>(), 128);
    }

    #[test]
    fn owner_credit_is_reclaimed_at_the_bound() {
        let t = SlotTable::new(4);
        let (s, g) = t.reserve().unwrap();
        let m = t.get(s).unwrap();
        for _ in 0..3 {
            assert_eq!(m.admit(g, 3), Admit::Ok);
        }
        assert_eq!(m.admit(g, 3), Admit::Full);
        m.sub(2);
        assert_eq!(m.queued(g), 1);
        assert_eq!(m.admit(g, 3), Admit::Ok, "credit taken back at the bound");
        assert_eq!(m.queued(g), 2);
        assert_eq!(m.admit(g, 3), Admit::Ok);
        assert_eq!(m.admit(g, 3), Admit::Full);
        assert_eq!(m.queued(g), 3);
        // Credit of a generation that is gone is never applied to the next one.
        m.sub(3);
        m.close();
        t.release(s);
        let (s2, g2) = t.reserve().unwrap();
        assert_eq!(s2, s);
        assert_eq!(m.queued(g2), 0);
        assert_eq!(m.admit(g, 3), Admit::Closed);
        for _ in 0..3 {
            assert_eq!(m.admit(g2, 3), Admit::Ok);
        }
        assert_eq!(m.admit(g2, 3), Admit::Full);
    }

    #[test]
    fn forced_messages_alone_never_overflow_the_count() {
        let t = SlotTable::new(1);
        let (s, g) = t.reserve().unwrap();
        let m = t.get(s).unwrap();
        // Far more forced messages than the count field's 31 bits hold, handled in turns of
        // 64 with no sender ever at the bound: the owner takes its credit back itself.
        for _ in 0..(1u64 << 32) / (64 * 1024) {
            for _ in 0..1024 {
                m.add_forced(64);
                m.sub(64);
            }
        }
        assert!(m.is_open(g), "the count never reached the OPEN bit");
        assert_eq!(m.queued(g), 0);
        assert_eq!(m.admit(g, 1), Admit::Ok);
        assert_eq!(m.admit(g, 1), Admit::Full);
    }
}
