//! The injection queues: how threads outside the runtime hand work to a shard.
//!
//! Two lanes feed a shard's inbox (`shard::close::ClosableQueue` wraps both):
//!
//! * [`BoundedInject`], for threads outside the runtime: a bounded lock-free array queue
//!   (Vyukov's bounded MPMC algorithm: one sequence word per slot, a CAS on the tail to claim a
//!   slot, a CAS on the head to take one). It allocates nothing after construction. A full
//!   queue is reported to the pusher, which waits for room (outside threads may block) or, for
//!   `try_tell`, answers `Full`. Built on the `crate::sync` shim, so the loom models check this
//!   code itself (`loom-tests/inject_bounded.rs`).
//! * [`InjectQueue`], for shard threads of *another* runtime (a cross-runtime send must never
//!   block a shard): unbounded, `crossbeam_queue::SegQueue` (MPMC; the shard is the only
//!   regular consumer, and after shutdown a late pusher may drain it too). It allocates a block
//!   every 31 values, which is why outside threads no longer use it: in a one-thread send loop
//!   the bounded lane took an outside `tell` from ~10 M to ~14 M msgs/s (`docs/benchmarks.md`).
//!
//! A given thread always uses the same lane (outside or shard thread), so each sender's
//! messages stay in order; the shard may interleave the two lanes freely.
//!
//! Crossbeam's atomics are invisible to loom, so under `--cfg coreactor_loom` the unbounded
//! lane is a loom `Mutex<VecDeque>` stand-in with the same API: the models check the protocol
//! around it (doorbell, park/wake, the shutdown handshake of `shard::close`), not crossbeam's
//! own algorithm, which crossbeam tests itself. `docs/loom.md` records this gap.
//!
//! The stand-in must not be *stronger* than `SegQueue` where a protocol relies on the queue. A
//! bare mutex would be: its lock order would make a push and a later pop that finds the queue
//! empty synchronize, which would hide a missing fence in the shutdown handshake. So `pop`
//! first reads a length hint without the lock, like `SegQueue::pop` reads the tail index, and
//! answers `None` if the hint is zero: a pop may miss a push that does not happen before it.

use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// Ordering of a push's `seq` store: `Release`, or `Relaxed` under the deliberate loom bug
/// `--cfg coreactor_loom_bug="inject_bounded"`, which `loom-tests/inject_bounded.rs` must report
/// as a causality violation on the slot's value cell.
const PUBLISH_ORDERING: Ordering = if cfg!(coreactor_loom_bug = "inject_bounded") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// How many positions ahead of its own a push prefetches (see `push`).
const PREFETCH_AHEAD: usize = 4;

/// One slot of a [`BoundedInject`]: its sequence word and its value, on lines of their own (a
/// pusher filling slot `i + 1` does not take the line the shard is reading slot `i` from).
struct Slot<T> {
    /// `pos` when the slot is free for the push at position `pos`; `pos + 1` once that push
    /// wrote it; `pos + capacity` after the pop of `pos` freed it for the next lap.
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Bounded lock-free multi-producer queue (any number of pushers and poppers) of `capacity`
/// values, a power of two. See the module docs.
pub struct BoundedInject<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[CachePadded<Slot<T>>]>,
    mask: usize,
}

// SAFETY: values move between threads through the queue (hence `T: Send`); a slot's value cell
// is accessed only by the one thread whose CAS claimed that position (the pusher writes it
// before its Release store of `seq`, the popper reads it after its Acquire load of that `seq`
// and its own CAS on the head), so sharing `&BoundedInject` never gives two threads the same
// cell at once.
unsafe impl<T: Send> Send for BoundedInject<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for BoundedInject<T> {}

impl<T> BoundedInject<T> {
    /// An empty queue of `capacity` slots.
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two of at least 2 (the configuration checks it first).
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity >= 2 && capacity.is_power_of_two(),
            "inject capacity must be a power of two >= 2, got {capacity}"
        );
        let slots = (0..capacity)
            .map(|i| {
                CachePadded::new(Slot {
                    seq: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
            })
            .collect();
        BoundedInject {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            mask: capacity - 1,
        }
    }

    /// Appends `value`, or gives it back if every slot holds a value not yet taken (a
    /// snapshot: a pop may be freeing a slot at that moment).
    pub fn push(&self, value: T) -> Result<(), T> {
        // Relaxed: the slot's `seq` (Acquire) decides; the tail only picks the candidate.
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            // Acquire: pairs with the Release store of the pop that freed the slot, so its read
            // of the old value happens before the write below.
            let seq = slot.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(pos) as isize;
            if lag == 0 {
                // The slot is free for `pos`: claim the position.
                match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.value.with_mut(|cell| {
                            // SAFETY: the CAS gave this thread position `pos`, and `seq == pos`
                            // says the slot's previous value (if any) was taken: no other
                            // thread touches the cell until the store below publishes it.
                            unsafe { (*cell).write(value) };
                        });
                        // Release: the popper's Acquire load of `seq` sees the value.
                        slot.seq.store(pos.wrapping_add(1), PUBLISH_ORDERING);
                        // Fetch the lines of a slot a few pushes ahead for writing now: the
                        // shard wrote them when it popped their last value, and a push that
                        // finds them there waits for the transfer (in its `seq` load, and in
                        // the fence that follows a push).
                        crate::sync::prefetch_write(
                            &raw const self.slots[pos.wrapping_add(PREFETCH_AHEAD) & self.mask],
                        );
                        return Ok(());
                    }
                    Err(current) => pos = current,
                }
            } else if lag < 0 {
                // The slot still holds the value of the previous lap: full.
                return Err(value);
            } else {
                // Another pusher claimed `pos` already: look at the tail again.
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest value, or `None` if the oldest position holds no value yet (empty, or
    /// its pusher claimed it and is still writing: it rings the doorbell after it wrote).
    pub fn pop(&self) -> Option<T> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            // Acquire: pairs with the pusher's Release store, so its write is visible.
            let seq = slot.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if lag == 0 {
                match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let value = slot.value.with(|cell| {
                            // SAFETY: `seq == pos + 1` says the push of `pos` wrote the cell
                            // (its Release store, our Acquire load), and the CAS made this thread
                            // the only one to take position `pos`: the value is read once.
                            unsafe { (*cell).assume_init_read() }
                        });
                        // Release: the pusher of the next lap sees the cell empty before it
                        // writes it.
                        slot.seq
                            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
                        return Some(value);
                    }
                    Err(current) => pos = current,
                }
            } else if lag < 0 {
                return None;
            } else {
                // Another popper took `pos` already.
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// True if the oldest position holds no value (a snapshot).
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        let pos = self.head.load(Ordering::Relaxed);
        let seq = self.slots[pos & self.mask].seq.load(Ordering::Acquire);
        seq != pos.wrapping_add(1)
    }

    /// The number of slots.
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }
}

impl<T> Drop for BoundedInject<T> {
    fn drop(&mut self) {
        // `&mut self`: every pusher and popper is gone; what is still queued is dropped here.
        while self.pop().is_some() {}
    }
}

#[cfg(not(coreactor_loom))]
mod imp {
    use crossbeam_queue::SegQueue;

    /// Unbounded lock-free multi-producer queue.
    pub(crate) struct InjectQueue<T>(SegQueue<T>);

    impl<T> InjectQueue<T> {
        pub(crate) fn new() -> Self {
            InjectQueue(SegQueue::new())
        }

        /// Appends `value`; never blocks, never fails.
        pub(crate) fn push(&self, value: T) {
            self.0.push(value);
        }

        /// Removes the oldest value.
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }

        /// True if no value is queued (a snapshot).
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(coreactor_loom)]
mod imp {
    use crate::sync::Mutex;
    use crate::sync::atomic::{AtomicUsize, Ordering};
    use std::collections::VecDeque;

    /// loom-visible stand-in: a mutex around a deque, with a lock-free emptiness check (see the
    /// module docs).
    pub(crate) struct InjectQueue<T> {
        queue: Mutex<VecDeque<T>>,
        /// The deque's length, written under the lock, read without it by `pop`.
        len: AtomicUsize,
    }

    impl<T> InjectQueue<T> {
        pub(crate) fn new() -> Self {
            InjectQueue {
                queue: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }

        pub(crate) fn push(&self, value: T) {
            let mut queue = self.queue.lock().unwrap();
            queue.push_back(value);
            // Relaxed: the lock orders the deque; the hint promises nothing more (a pop that
            // must see this push has to be ordered after it by the caller's protocol).
            self.len.store(queue.len(), Ordering::Relaxed);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            // Relaxed, without the lock: may read a stale zero and miss a concurrent push,
            // as `SegQueue::pop` may (see the module docs).
            if self.len.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut queue = self.queue.lock().unwrap();
            let value = queue.pop_front();
            self.len.store(queue.len(), Ordering::Relaxed);
            value
        }

        #[allow(dead_code)]
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().unwrap().is_empty()
        }
    }
}

pub(crate) use imp::InjectQueue;

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::{BoundedInject, InjectQueue};
    use std::sync::Arc;

    #[test]
    fn bounded_fifo_full_and_wrap() {
        let q = BoundedInject::new(4);
        assert_eq!(q.capacity(), 4);
        assert!(q.is_empty());
        for lap in 0..5 {
            for i in 0..4 {
                q.push(lap * 10 + i).unwrap();
            }
            assert_eq!(q.push(99), Err(99), "a full queue gives the value back");
            for i in 0..4 {
                assert_eq!(q.pop(), Some(lap * 10 + i));
            }
            assert_eq!(q.pop(), None);
            assert!(q.is_empty());
        }
    }

    #[test]
    fn bounded_drops_what_is_left() {
        let counter = Arc::new(());
        let q = BoundedInject::new(8);
        for _ in 0..5 {
            q.push(Arc::clone(&counter)).unwrap();
        }
        drop(q.pop());
        drop(q);
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn bounded_two_pushers_keep_their_order() {
        let q = Arc::new(BoundedInject::new(16));
        let per = 20_000u64;
        let pushers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = Arc::clone(&q);
                std::thread::Builder::new()
                    .spawn(move || {
                        for i in 0..per {
                            let mut v = (p << 32) | i;
                            while let Err(back) = q.push(v) {
                                v = back;
                                std::thread::yield_now();
                            }
                        }
                    })
                    .unwrap()
            })
            .collect();
        let mut next = [0u64; 2];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while next != [per, per] {
            assert!(std::time::Instant::now() < deadline, "consumer starved");
            match q.pop() {
                Some(v) => {
                    let p = (v >> 32) as usize;
                    assert_eq!(v & 0xffff_ffff, next[p], "pusher {p} out of order");
                    next[p] += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        for h in pushers {
            h.join().unwrap();
        }
        assert!(q.is_empty());
    }

    #[test]
    fn smoke_fifo() {
        let q = InjectQueue::new();
        assert!(q.is_empty());
        for i in 0..10 {
            q.push(i);
        }
        for i in 0..10 {
            assert_eq!(q.pop(), Some(i));
        }
        assert_eq!(q.pop(), None);
    }
}
