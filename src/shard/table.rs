//! The slot table: the part of each actor's bookkeeping that other threads may read.
//!
//! An address is `(shard, slot, generation)`. The owning shard keeps the actor itself in a
//! shard-local slab; this table keeps, per slot, one word that any sender may update:
//!
//! ```text
//!  63                32 31   30                      0
//! +--------------------+----+------------------------+
//! |     generation     |OPEN|  queued user messages  |
//! +--------------------+----+------------------------+
//! ```
//!
//! * `generation` changes only when the owner frees the slot, so a stale address can never
//!   reach the slot's next tenant: its sends fail with `Closed`.
//! * `OPEN` is set while the actor accepts user messages (from reservation until it stops).
//! * `queued` counts user messages accepted but not yet handled. A sender increments it with a
//!   compare-and-swap that also checks the generation, `OPEN` and the mailbox bound, so
//!   `try_tell` can answer `Full` or `Closed` synchronously, from any thread, without a lock.
//!   The owner decrements it once per turn for the messages it handled.
//!
//! Who writes what: senders (any thread) only CAS `queued` upward under the checks above; the
//! owner shard clears `OPEN` when its actor stops, decrements `queued`, and stores a fresh word
//! (next generation, closed, zero) when it frees the slot. All these accesses are `Relaxed`:
//! the word carries no data of its own. Messages travel through rings and queues that have
//! their own Release/Acquire pairs, and a message that races with a stop or a free is caught
//! on arrival by the owner's generation check (it becomes a dead letter, never a wrong
//! delivery).
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

/// One slot's shared bookkeeping, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
pub(crate) struct SlotMeta {
    word: AtomicU64,
    pub(crate) stats: StatCells,
    /// The actor's lifecycle state (`actor::lifecycle::State` as a byte), written by the owner
    /// shard, read by anyone as a snapshot. Reset to 0 (`New`) when the slot is freed.
    state: AtomicU8,
}

fn generation(word: u64) -> u32 {
    (word >> 32) as u32
}

impl SlotMeta {
    /// Admits one user message for generation `generation` if the actor is open and its mailbox
    /// holds fewer than `capacity` messages.
    #[inline]
    pub(crate) fn admit(&self, generation_: u32, capacity: u32) -> Admit {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if generation(cur) != generation_ || cur & OPEN == 0 {
                return Admit::Closed;
            }
            if cur & COUNT_MASK >= u64::from(capacity) {
                return Admit::Full;
            }
            match self.word.compare_exchange_weak(
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

    /// Counts one message the owner delivers to its own live actor regardless of the bound
    /// (timer messages, ask continuations). Owner thread only.
    #[inline]
    pub(crate) fn add_forced(&self, n: u32) {
        self.word.fetch_add(u64::from(n), Ordering::Relaxed);
    }

    /// Owner: `n` messages of the current generation were handled or discarded.
    #[inline]
    pub(crate) fn sub(&self, n: u32) {
        if n > 0 {
            let prev = self.word.fetch_sub(u64::from(n), Ordering::Relaxed);
            debug_assert!(prev & COUNT_MASK >= u64::from(n), "queued underflow");
        }
    }

    /// Owner: stop accepting user messages (generation unchanged).
    pub(crate) fn close(&self) {
        self.word.fetch_and(!OPEN, Ordering::Relaxed);
    }

    /// Owner: publishes the actor's lifecycle state.
    pub(crate) fn set_lifecycle_state(&self, state: u8) {
        self.state.store(state, Ordering::Relaxed);
    }

    /// The last published lifecycle state (check the generation separately).
    pub(crate) fn lifecycle_state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// True if the slot currently holds generation `g` and accepts messages.
    pub(crate) fn is_open(&self, g: u32) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        generation(w) == g && w & OPEN != 0
    }

    /// User messages queued for generation `g` (0 if the slot moved on).
    pub(crate) fn queued(&self, g: u32) -> u32 {
        let w = self.word.load(Ordering::Relaxed);
        if generation(w) == g {
            (w & COUNT_MASK) as u32
        } else {
            0
        }
    }

    /// The generation the slot currently holds.
    pub(crate) fn current_generation(&self) -> u32 {
        generation(self.word.load(Ordering::Relaxed))
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
        meta.word
            .store((u64::from(g) << 32) | OPEN, Ordering::Relaxed);
        for s in [
            &meta.stats.processed,
            &meta.stats.busy_ns,
            &meta.stats.max_ns,
            &meta.stats.wait_ns,
        ] {
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
        meta.word.store(u64::from(next) << 32, Ordering::Relaxed);
        meta.state.store(0, Ordering::Relaxed);
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
    fn slot_meta_is_one_cache_line() {
        assert_eq!(std::mem::align_of::<SlotMeta>(), 64);
        assert_eq!(std::mem::size_of::<SlotMeta>(), 64);
    }
}
