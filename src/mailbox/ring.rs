//! Bounded lock-free single-producer single-consumer ring with batched publication.
//!
//! One ring carries messages from one shard (the producer) to another (the consumer).
//! [`ring`] returns the two endpoints; each is `Send` (when `T: Send`) but not `Sync`, and every
//! method that moves an index takes `&mut self`, so the type system guarantees one producer
//! thread and one consumer thread at a time.
//!
//! # Layout
//!
//! ```text
//!  Producer (private)              Shared (Arc)                     Consumer (private)
//!  ┌───────────────────┐  ┌────────────────────────────────┐  ┌───────────────────┐
//!  │ tail              │  │ CachePadded { head, alive }    │  │ head              │
//!  │ published         │  │   written by the consumer only │  │ released          │
//!  │ head_cache        │  │ CachePadded { tail }           │  └───────────────────┘
//!  └───────────────────┘  │   written by the producer only │
//!                         │ CachePadded { waiting }        │
//!                         │   producer-written, rarely     │
//!                         │ slots: [Slot { stamp, value }; capacity], mask      │
//!                         └────────────────────────────────┘
//! ```
//!
//! Each slot carries a *stamp* beside its value: `p + 1` (wrapping) once position `p` of that
//! slot is published. The consumer learns that position `head` holds a value from the stamp
//! in the slot's own cache line, so a message costs its receiver one line transfer where a
//! shared tail would cost two that follow each other (the tail, then the slot): 280–420
//! against 440–490 ns per round trip of a two-thread model of the protocol on the 2-vCPU test
//! machine (see `docs/benchmarks.md`, session 7).
//!
//! Indices are positions in an unbounded sequence, stored as `usize` and compared with wrapping
//! arithmetic; position `p` lives in slot `p & mask`. Because the capacity is a power of two it
//! divides `2^usize::BITS`, so the mapping stays correct when a position wraps past `usize::MAX`.
//!
//! # Protocol
//!
//! Each shared index has exactly one writer; the other side only loads it.
//!
//! 1. [`Producer::try_push`] writes the value into the slot of its private `tail` and advances
//!    `tail`. It does not publish. It checks for space against `head_cache`, a past value of the
//!    shared head, and reloads the shared head (Acquire) only when the cache says the ring is full.
//! 2. [`Producer::publish`] stamps every slot written since the previous publication (one
//!    Release store each, into lines the producer has just written, so they cost no transfer),
//!    then stores the private `tail` into the shared tail (for [`Consumer::len_hint`] and the
//!    final clean-up). Nothing pushed is visible before its publication, which happens once
//!    per batch (a sender's turn); the consumer may take the first values of a batch while the
//!    later ones are still being stamped.
//! 3. [`Consumer::pop`] loads the stamp of the slot at its private `head` (Acquire); if it reads
//!    `head + 1`, it moves the value out and advances `head`. It does not publish its head. The
//!    stamp cannot be stale in the other direction: position `head + capacity` (the next stamp
//!    that slot will carry) is not written before the consumer releases `head`.
//! 4. [`Consumer::release`] stores the private `head` into the shared head with one Release
//!    store, handing every slot popped since the previous release back to the producer.
//!
//! # Invariants
//!
//! Writing `H` for the shared head, `h` for the consumer's private head, `Tp` for the published
//! tail (every position below it carries its stamp: `publish` advances it one stamp at a time,
//! then records it in the producer's `published` and the shared tail) and `t` for the
//! producer's private tail, with distances taken modulo `2^usize::BITS`, the positions
//! always satisfy `H <= h <= Tp <= t <= H + capacity`, and:
//!
//! - `[h, Tp)`: initialised, published, owned by the consumer (it may read each after its
//!   Acquire load of the slot's stamp reads the position's own stamp);
//! - `[Tp, t)`: initialised, not yet published, owned by the producer;
//! - `[t, H + capacity)`: uninitialised, owned by the producer (free space it may write);
//! - `[H, h)`: already moved out, uninitialised, still owned by the consumer until it releases.
//!
//! A slot's stamp is `p + 1` for the last position `p` of that slot that was published, or, before
//! the slot's first publication, `p - capacity + 1` for its first position `p` (as if published
//! one lap earlier; 0 in a ring whose positions start at 0, see `zeroed_slots`). A stamp equal to `head + 1` therefore means exactly "position `head` is
//! published": a stamp of the lap before differs by `capacity`, and the lap after cannot be
//! written yet.
//!
//! `head_cache <= H` holds because it is a value the head had earlier and indices only grow; so a
//! stale cache can only under-report space, never hand out a slot the consumer still owns.
//!
//! # Drop
//!
//! The slots can hold initialised values that neither endpoint will pop. Whichever endpoint drops
//! last frees them, through the `Drop` of the shared part, which runs when the last `Arc` goes:
//!
//! - Dropping the [`Producer`] first publishes its unpublished writes (step 2). The private
//!   `tail` is visible to nobody else, so without this the last endpoint could not know those
//!   slots are initialised. A still-alive consumer therefore also receives them.
//! - Dropping the [`Consumer`] first releases its head (step 4), so that slots it already popped
//!   are not dropped a second time, and then clears the `alive` flag read by
//!   [`Producer::is_consumer_alive`].
//! - The last `Arc` drop synchronises with every earlier one, so the shared part sees both final
//!   positions and drops each value in `[H, Tp)` exactly once.
//!
//! If a value's destructor panics during that clean-up, the values after it are leaked (never
//! dropped twice).
//!
//! # Deliberate bug for the loom models
//!
//! Under `--cfg coreactor_loom_bug="ring"`, [`Producer::publish`] stores the stamps with
//! `Relaxed` instead of `Release`. The consumer can then observe a stamp without the slot
//! write it announces happening before its read; the loom model `publish_relaxed_is_caught` in
//! `loom-tests/ring.rs` must report that as a causality violation on the slot's `UnsafeCell`.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, MaybeUninit};

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, UnsafeCell};

/// Ordering of the stamp stores in [`Producer::publish`]: `Release`, or `Relaxed` under the
/// deliberate loom bug (see the module docs).
const PUBLISH_ORDERING: Ordering = if cfg!(coreactor_loom_bug = "ring") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// Creates a ring that holds up to `capacity` values and returns its two endpoints.
///
/// # Panics
///
/// Panics if `capacity` is not a power of two or is smaller than 2. Callers validate the
/// configured capacity before they get here, so this is a programming error.
#[must_use]
pub fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    ring_starting_at(capacity, 0)
}

/// [`ring`] with both indices starting at `start` (lets tests cross `usize::MAX`).
fn ring_starting_at<T>(capacity: usize, start: usize) -> (Producer<T>, Consumer<T>) {
    assert!(
        capacity >= 2 && capacity.is_power_of_two(),
        "ring capacity must be a power of two >= 2, got {capacity}"
    );
    #[cfg(not(coreactor_loom))]
    if start == 0 {
        return endpoints(zeroed_slots(capacity), start);
    }
    let slots = (0..capacity)
        .map(|index| {
            // The slot's first position at or after `start`, stamped as if published one lap
            // earlier (module invariants; with `start == 0` zero does as well, see
            // `zeroed_slots`).
            let first = start.wrapping_add(index.wrapping_sub(start) & (capacity - 1));
            Slot {
                stamp: AtomicUsize::new(first.wrapping_sub(capacity).wrapping_add(1)),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        })
        .collect();
    endpoints(slots, start)
}

/// How many values a long [`Consumer::drain`] pops between two releases. Released only at the
/// end, a drain of a whole 16384-slot ring kept the space it freed from the producer for the
/// ~400 µs the drain took, and the producer, finding the ring full, overflowed for most of a
/// flood (`docs/benchmarks.md`, session 8). One Release store per this many values.
pub const RELEASE_EVERY: usize = 256;

/// Bytes one slot of a ring of `T` takes (its stamp and the value, padded to alignment).
#[cfg_attr(not(test), allow(dead_code))] // checked against `config::RING_SLOT_BYTES` in tests
pub(crate) const fn slot_bytes<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// `capacity` unpublished slots of a ring whose positions start at 0, all-zero: stamp 0 is
/// never `p + 1` for a position `p` of the first lap (`p < capacity`), and later laps find the
/// stamps `publish` wrote. Allocated zeroed, so the pages of a ring that is never used are
/// never touched (the kernel maps zero pages on first write): with a ring per ordered pair of
/// shards, most rings of a large machine stay idle, and cost address space only.
#[cfg(not(coreactor_loom))]
fn zeroed_slots<T>(capacity: usize) -> Box<[Slot<T>]> {
    use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
    let layout = Layout::array::<Slot<T>>(capacity).expect("ring size overflows");
    // A slot holds its 8-byte stamp, so the layout is never zero-sized, as `alloc_zeroed`
    // requires.
    debug_assert!(layout.size() > 0);
    // SAFETY: `layout` has a non-zero size (above).
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<Slot<T>>();
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[Slot<T>;
    // capacity]`, which is what the box frees it with, and it is not aliased. Its bytes are
    // zero, a valid `Slot<T>`: an `AtomicUsize` (zero is a valid value) and an
    // `UnsafeCell<MaybeUninit<T>>` (any bytes are, uninitialised included).
    unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, capacity)) }
}

/// The two endpoints of a ring whose indices start at `start`, over `slots`.
fn endpoints<T>(slots: Box<[Slot<T>]>, start: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = slots.len();
    let shared = Arc::new(Shared {
        consumer: CachePadded::new(ConsumerShared {
            head: AtomicUsize::new(start),
            alive: AtomicBool::new(true),
        }),
        producer: CachePadded::new(ProducerShared {
            tail: AtomicUsize::new(start),
        }),
        waiting: CachePadded::new(AtomicBool::new(false)),
        slots,
        mask: capacity - 1,
    });
    let producer = Producer {
        shared: Arc::clone(&shared),
        tail: start,
        published: start,
        head_cache: start,
        waiting: false,
        _not_sync: PhantomData,
    };
    let consumer = Consumer {
        shared,
        head: start,
        released: start,
        _not_sync: PhantomData,
    };
    (producer, consumer)
}

/// Fields only the consumer writes; the producer reads them.
struct ConsumerShared {
    /// Released head: every position below it is free for the producer.
    head: AtomicUsize,
    /// `false` once the [`Consumer`] was dropped.
    alive: AtomicBool,
}

/// Fields only the producer writes.
struct ProducerShared {
    /// Published tail: every position below it (and at or above the head) holds a value. Read
    /// only by [`Consumer::len_hint`] and the final clean-up; the consumer's hot path reads
    /// stamps, so this line stays with the producer.
    tail: AtomicUsize,
}

/// One position of the ring: a value and the stamp that publishes it.
struct Slot<T> {
    /// `p + 1` once position `p` is published here (module invariants). Written by the
    /// producer's `publish`, read by the consumer.
    stamp: AtomicUsize,
    /// The value; initialised or not as the module invariants say.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The part both endpoints reach through an `Arc`.
struct Shared<T> {
    /// Consumer-written line.
    consumer: CachePadded<ConsumerShared>,
    /// Producer-written line.
    producer: CachePadded<ProducerShared>,
    /// The producer holds values back for want of space (see [`Producer::set_waiting`]): a
    /// hint the consumer reads after every drain, on a line of its own that changes only when
    /// the hint does, so reading it costs no transfer.
    waiting: CachePadded<AtomicBool>,
    /// `capacity` slots; which are initialised is given by the invariants in the module docs.
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`.
    mask: usize,
}

impl<T> Shared<T> {
    /// The slot that holds position `pos`.
    #[inline]
    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.slots[pos & self.mask]
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Relaxed: both endpoints stored their final position (`Producer::drop` publishes,
        // `Consumer::drop` releases) before dropping their `Arc`, and the last `Arc` drop
        // synchronises with every earlier one (Release decrement, Acquire on the last), so these
        // loads see the final values and the slot writes behind them.
        let head = self.consumer.head.load(Ordering::Relaxed);
        let tail = self.producer.tail.load(Ordering::Relaxed);
        if !mem::needs_drop::<T>() {
            return;
        }
        let mut pos = head;
        while pos != tail {
            self.slot(pos).value.with_mut(|slot| {
                // SAFETY: `[head, tail)` is exactly the set of positions written and not moved
                // out (module invariants with both endpoints gone: `h == H`, `t == Tp`), and
                // this `&mut self` drop is the only access left, so the slot is initialised and
                // dropped here once.
                unsafe { (*slot).assume_init_drop() }
            });
            pos = pos.wrapping_add(1);
        }
    }
}

/// The sending end of a ring. See the [module docs](self) for the protocol.
///
/// `Send` when `T: Send`; not `Sync`: all methods that move the tail take `&mut self`.
pub struct Producer<T> {
    /// State shared with the consumer.
    shared: Arc<Shared<T>>,
    /// Next position to write (private tail).
    tail: usize,
    /// Last tail value stored into the shared tail.
    published: usize,
    /// A past value of the shared head; never ahead of it.
    head_cache: usize,
    /// The last value stored in the shared `waiting` flag.
    waiting: bool,
    /// Makes the endpoint `!Sync` by construction.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

// SAFETY: a `Producer` only touches the slots the protocol gives to the producer (free and
// unpublished positions) and the producer-written atomics, whichever thread it runs on; the
// consumer's side of the same `Shared` is reached only through the single `Consumer`. Moving it
// to another thread moves `T` values across threads, hence `T: Send`.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Writes `value` into the next free slot without publishing it.
    ///
    /// The value becomes visible to the consumer at the next [`publish`](Self::publish). Checks
    /// for space against the cached head and reloads the shared head only when the cache says
    /// the ring is full.
    ///
    /// # Errors
    ///
    /// Returns `Err(value)` when the ring is full: the consumer has not released enough slots.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.capacity();
        if self.tail.wrapping_sub(self.head_cache) == capacity {
            // Acquire: pairs with the Release store of the head in `Consumer::release`, so the
            // consumer's reads out of the released slots happen before we overwrite them.
            self.head_cache = self.shared.consumer.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) == capacity {
                return Err(value);
            }
        }
        self.shared.slot(self.tail).value.with_mut(|slot| {
            // SAFETY: `tail - head_cache < capacity` and `head_cache <= H`, so position `tail`
            // is in `[t, H + capacity)`: free space owned by the producer. The consumer's last
            // read of this slot (if any) happens before the Acquire load that produced
            // `head_cache`, and it will not touch the slot again until it is published. Writing
            // a `MaybeUninit` never drops the previous (moved-out) contents.
            unsafe { slot.write(MaybeUninit::new(value)) }
        });
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// The value pushed last, if it is not published yet: the producer may still change it
    /// ([`Unpublished::amend`]), since the consumer sees it only after the next
    /// [`publish`](Self::publish). `None` if every pushed value is published.
    #[inline]
    pub fn last_unpublished(&mut self) -> Option<Unpublished<'_, T>> {
        (self.tail != self.published).then_some(Unpublished { producer: self })
    }

    /// Makes every value pushed since the last publication visible to the consumer.
    ///
    /// Stamps each unpublished slot and stores the shared tail once if there are unpublished
    /// values, and does nothing otherwise. Returns `true` iff it published something.
    #[inline]
    pub fn publish(&mut self) -> bool {
        if self.tail == self.published {
            return false;
        }
        let mut pos = self.published;
        while pos != self.tail {
            let next = pos.wrapping_add(1);
            // Release: pairs with the Acquire load of the stamp in `Consumer::is_ready`, so the
            // slot's write in `try_push` happens before the consumer reads it. (`Relaxed` under
            // the deliberate loom bug, see the module docs.)
            self.shared.slot(pos).stamp.store(next, PUBLISH_ORDERING);
            pos = next;
        }
        // Release: `Shared::drop` and `len_hint` read it; no slot is read on its strength.
        self.shared
            .producer
            .tail
            .store(self.tail, Ordering::Release);
        self.published = self.tail;
        true
    }

    /// Number of values pushed but not yet published.
    #[inline]
    #[must_use]
    pub fn unpublished(&self) -> usize {
        self.tail.wrapping_sub(self.published)
    }

    /// Maximum number of values the ring holds.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Says whether the producer holds values back because the ring was full, so that the
    /// consumer, after it frees space, can tell it ([`Consumer::producer_waiting`]). Stores only
    /// when the value changes.
    ///
    /// A hint, not a protocol: the flag reaches no memory, and a consumer that misses it (it
    /// read the flag just before it was set) only leaves the producer to find the space by
    /// itself, as it would without the flag.
    #[inline]
    pub fn set_waiting(&mut self, waiting: bool) {
        if self.waiting != waiting {
            self.waiting = waiting;
            // Relaxed: a hint (see above).
            self.shared.waiting.store(waiting, Ordering::Relaxed);
        }
    }

    /// Returns `false` once the [`Consumer`] has been dropped.
    ///
    /// A hint for shutdown: values pushed after it turned `false` are only dropped, never
    /// received.
    #[inline]
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and the loom models
    pub fn is_consumer_alive(&self) -> bool {
        // Relaxed: a liveness hint; no memory is reached through this flag (the slots freed by
        // the consumer's drop are synchronised by the `Arc`, see `Shared::drop`).
        self.shared.consumer.alive.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Publish pending writes: the private tail is invisible to the consumer and to
        // `Shared::drop`, which must know these slots are initialised (module docs, Drop).
        self.publish();
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .field("published", &self.published)
            .field("head_cache", &self.head_cache)
            .finish_non_exhaustive()
    }
}

/// The last value a producer pushed, while it is unpublished ([`Producer::last_unpublished`]).
pub struct Unpublished<'a, T> {
    producer: &'a mut Producer<T>,
}

impl<T> Unpublished<'_, T> {
    /// Runs `f` on the value.
    #[inline]
    pub fn amend<R>(self, f: impl FnOnce(&mut T) -> R) -> R {
        let p = self.producer;
        p.shared
            .slot(p.tail.wrapping_sub(1))
            .value
            .with_mut(|slot| {
                // SAFETY: `last_unpublished` found `published < tail`, and the borrow keeps both
                // where they were, so position `tail - 1` is in `[Tp, t)`: initialised by
                // `try_push` and not yet published, owned by the producer (module invariants). The
                // consumer does not read it before the stamp that `publish` will store.
                f(unsafe { (*slot).assume_init_mut() })
            })
    }
}

/// The receiving end of a ring. See the [module docs](self) for the protocol.
///
/// `Send` when `T: Send`; not `Sync`: all methods that move the head take `&mut self`.
pub struct Consumer<T> {
    /// State shared with the producer.
    shared: Arc<Shared<T>>,
    /// Next position to read (private head).
    head: usize,
    /// Last head value stored into the shared head.
    released: usize,
    /// Makes the endpoint `!Sync` by construction.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

// SAFETY: a `Consumer` only touches the slots the protocol gives to the consumer (published,
// unpopped positions) and the consumer-written atomics, whichever thread it runs on; the
// producer's side of the same `Shared` is reached only through the single `Producer`. Moving it
// to another thread moves `T` values across threads, hence `T: Send`.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// Takes the oldest published value, or returns `None` if there is none.
    ///
    /// Reads the stamp of the slot at the head, in the line the value is read from. The slot is
    /// not handed back to the producer until [`release`](Self::release).
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let mut out = None;
        self.pop_with(|v| out = Some(v));
        out
    }

    /// Like [`pop`](Self::pop), but hands the oldest published value to `f` rather than
    /// returning it; false (and `f` not called) if there is none. The value goes from its slot
    /// to `f`'s argument without the copies an `Option` return costs it (a shard's drain moves
    /// 96-byte envelopes).
    #[inline]
    pub fn pop_with(&mut self, f: impl FnOnce(T)) -> bool {
        if !self.is_ready() {
            return false;
        }
        let value = self.shared.slot(self.head).value.with(|slot| {
            // SAFETY: the slot's stamp read `head + 1`, so position `head` is in `[h, Tp)`:
            // initialised and published (module invariants), and that Acquire load read the
            // Release store of `publish` that follows the write, so the write happens before
            // this read. The producer will not write the slot again before we release it, and
            // `head` is advanced right after, so the value is moved out only once.
            unsafe { slot.read().assume_init() }
        });
        self.head = self.head.wrapping_add(1);
        f(value);
        true
    }

    /// True if the slot at the head holds a published value: what [`pop`](Self::pop) checks
    /// first, without popping. One load, from the line the value is read from; a consumer that
    /// polls its rings while idle calls this.
    #[inline]
    #[must_use]
    pub fn is_ready(&self) -> bool {
        // Acquire: pairs with the Release stamp store in `Producer::publish` (see `pop`).
        self.shared.slot(self.head).stamp.load(Ordering::Acquire) == self.head.wrapping_add(1)
    }

    /// [`is_ready`](Self::is_ready) for a poll: when a value is there, also starts fetching
    /// the rest of its slot. A poll reads only the stamp; the envelope beside it spans one or
    /// two more lines, which the pop after the poll would otherwise fetch one at a time, after
    /// the shard's work in between (ping-pong 1.06–1.12x, `docs/benchmarks.md`, session 13).
    #[inline]
    pub fn poll(&self) -> bool {
        if !self.is_ready() {
            return false;
        }
        // After the stamp's Acquire load read `head + 1`: the slot is published, so even
        // loom's access tracking sees a synchronised read.
        self.shared
            .slot(self.head)
            .value
            .with(crate::sync::prefetch_read);
        true
    }

    /// Hands every slot popped since the last release back to the producer.
    ///
    /// Does one store to the shared head if anything was popped and nothing otherwise.
    #[inline]
    pub fn release(&mut self) {
        if self.head != self.released {
            // Release: pairs with the Acquire load of the head in `Producer::try_push`, so our
            // reads out of these slots happen before the producer overwrites them.
            self.shared
                .consumer
                .head
                .store(self.head, Ordering::Release);
            self.released = self.head;
        }
    }

    /// True if the producer said it holds values back for want of space
    /// ([`Producer::set_waiting`]). A hint, on a line that changes only when it does.
    #[inline]
    #[must_use]
    pub fn producer_waiting(&self) -> bool {
        // Relaxed: a hint; no memory is reached through it.
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Pops up to `max` values into `f`, releasing every [`RELEASE_EVERY`] values and once at
    /// the end. Returns how many were popped.
    ///
    /// If `f` panics, the values already popped stay popped and are released when the consumer
    /// is dropped or released next.
    #[inline]
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let mut count = 0;
        while count < max {
            if !self.pop_with(&mut f) {
                break;
            }
            count += 1;
            if count % RELEASE_EVERY == 0 {
                self.release();
            }
        }
        self.release();
        count
    }

    /// Returns `true` if no published value is visible: a value published before this call is
    /// seen.
    #[inline]
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and the loom models
    pub fn is_empty(&self) -> bool {
        !self.is_ready()
    }

    /// The ring's capacity.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Faults in the pages of the ring's slots now, rather than at the producer's first write
    /// into each (the slots are allocated zeroed and lazily, see `zeroed_slots`): a
    /// compare-exchange of the first stamp in each page with the value it holds, a write as far
    /// as the memory manager is concerned that changes no value, so it is safe at any time,
    /// with the producer running (if the producer stamps in between, the exchange fails, and
    /// the producer's store faulted the page in). Not `fetch_add(0)`: LLVM turns an RMW that
    /// changes nothing into a load, and a load maps the shared zero page. Every page that holds
    /// a stamp is touched: for slots smaller than a page, all of them but, at most, one that
    /// holds only the end of the last slot.
    pub fn prefault(&self) {
        const PAGE: usize = 4096;
        let mut last_page = usize::MAX;
        for slot in self.shared.slots.iter() {
            let page = (&raw const slot.stamp).addr() / PAGE;
            if page != last_page {
                // Relaxed: changes nothing; only the page fault is wanted.
                let stamp = slot.stamp.load(Ordering::Relaxed);
                let _ =
                    slot.stamp
                        .compare_exchange(stamp, stamp, Ordering::Relaxed, Ordering::Relaxed);
                last_page = page;
            }
        }
    }

    /// Number of published values not yet popped, as of a relaxed read of the shared tail.
    ///
    /// Only a hint: the producer may publish more at any moment.
    #[inline]
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))] // used by tests and the loom models
    pub fn len_hint(&self) -> usize {
        // Relaxed: only a count; no slot is read on the strength of this load. `publish` stores
        // the tail after the stamps, so the consumer may already have popped past the tail it
        // reads: the count then saturates at zero rather than wrapping.
        let tail = self.shared.producer.tail.load(Ordering::Relaxed);
        let behind = tail.wrapping_sub(self.head);
        if behind > self.capacity() { 0 } else { behind }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release what was popped, so `Shared::drop` does not drop those slots again.
        self.release();
        // Relaxed: a liveness hint (see `Producer::is_consumer_alive`).
        self.shared.consumer.alive.store(false, Ordering::Relaxed);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &(self.shared.mask + 1))
            .field("head", &self.head)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::*;
    use crate::sync::thread;
    use std::time::{Duration, Instant};

    /// Upper bound on any wait in these tests; reaching it means a lost message or a deadlock.
    const DEADLINE: Duration = Duration::from_secs(60);

    /// Counts its drops in a shared counter.
    #[derive(Debug)]
    struct DropCounter {
        drops: Arc<AtomicUsize>,
    }

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter(drops: &Arc<AtomicUsize>) -> DropCounter {
        DropCounter {
            drops: Arc::clone(drops),
        }
    }

    #[test]
    fn smoke() {
        let (mut tx, mut rx) = ring(4);
        assert_eq!(rx.pop(), None);
        tx.try_push(7).unwrap();
        assert!(tx.publish());
        assert_eq!(rx.pop(), Some(7));
        assert_eq!(rx.pop(), None);
        rx.release();
        assert!(rx.is_empty());
    }

    #[test]
    fn len() {
        let (mut tx, mut rx) = ring(8);
        assert_eq!(rx.len_hint(), 0);
        for i in 0..8 {
            tx.try_push(i).unwrap();
            assert_eq!(tx.unpublished(), i + 1);
            assert_eq!(rx.len_hint(), 0, "unpublished values are not counted");
        }
        tx.publish();
        assert_eq!(tx.unpublished(), 0);
        for i in 0..8 {
            assert_eq!(rx.len_hint(), 8 - i);
            assert_eq!(rx.pop(), Some(i));
        }
        assert_eq!(rx.len_hint(), 0);
    }

    #[test]
    fn producer_waiting_flag_reaches_the_consumer() {
        let (mut tx, rx) = ring::<u32>(2);
        assert!(!rx.producer_waiting());
        tx.set_waiting(true);
        assert!(rx.producer_waiting());
        tx.set_waiting(true);
        assert!(rx.producer_waiting(), "setting it again changes nothing");
        tx.set_waiting(false);
        assert!(!rx.producer_waiting());
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn capacity_must_be_power_of_two() {
        let _ = ring::<u8>(6);
    }

    #[test]
    fn capacity_bounds() {
        for bad in [0, 1, 3, 12] {
            assert!(
                std::panic::catch_unwind(|| ring::<u8>(bad)).is_err(),
                "{bad}"
            );
        }
        let (tx, _rx) = ring::<u8>(2);
        assert_eq!(tx.capacity(), 2);
        let (tx, _rx) = ring::<u8>(1024);
        assert_eq!(tx.capacity(), 1024);
    }

    #[test]
    fn full_returns_value() {
        let (mut tx, mut rx) = ring(4);
        for i in 0..4 {
            tx.try_push(i).unwrap();
        }
        assert_eq!(tx.try_push(4), Err(4));
        tx.publish();
        assert_eq!(tx.try_push(5), Err(5));
        assert_eq!(rx.pop(), Some(0));
        rx.release();
        tx.try_push(6).unwrap();
        assert_eq!(tx.try_push(7), Err(7));
    }

    #[test]
    fn wrap_around() {
        let (mut tx, mut rx) = ring(4);
        let mut next_in = 0_u64;
        let mut next_out = 0_u64;
        for cycle in 0..1_000_u64 {
            // Vary the batch size so the indices cross the slot boundary at every offset.
            let batch = cycle % 4 + 1;
            for _ in 0..batch {
                tx.try_push(next_in).unwrap();
                next_in += 1;
            }
            tx.publish();
            let popped = rx.drain(usize::MAX, |v| {
                assert_eq!(v, next_out);
                next_out += 1;
            });
            assert_eq!(popped as u64, batch);
        }
        assert_eq!(next_out, next_in);
    }

    #[test]
    fn index_wraps_at_usize_max() {
        let (mut tx, mut rx) = ring_starting_at(4, usize::MAX - 5);
        for i in 0..40 {
            tx.try_push(i).unwrap();
            tx.try_push(i + 1000).unwrap();
            tx.publish();
            assert_eq!(rx.len_hint(), 2);
            assert_eq!(rx.pop(), Some(i));
            assert_eq!(rx.pop(), Some(i + 1000));
            rx.release();
        }
        assert!(rx.is_empty());
    }

    #[test]
    fn unpublished_is_invisible() {
        let (mut tx, mut rx) = ring(4);
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        assert!(rx.is_empty());
        assert_eq!(rx.pop(), None);
        assert_eq!(tx.unpublished(), 2);
        assert!(tx.publish());
        assert!(!tx.publish(), "nothing left to publish");
        tx.try_push(3).unwrap();
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None, "3 is not published yet");
        tx.publish();
        assert_eq!(rx.pop(), Some(3));
    }

    #[test]
    fn poll_says_what_is_ready_says() {
        let (mut tx, mut rx) = ring(4);
        assert!(!rx.poll(), "empty");
        tx.try_push(1).unwrap();
        assert!(!rx.poll(), "pushed, not published");
        tx.publish();
        assert!(rx.poll() && rx.is_ready());
        assert_eq!(rx.pop(), Some(1));
        assert!(!rx.poll(), "taken");
    }

    #[test]
    fn release_batches() {
        let (mut tx, mut rx) = ring(2);
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        tx.publish();
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(
            tx.try_push(3),
            Err(3),
            "popped slots are not free before release"
        );
        rx.release();
        tx.try_push(3).unwrap();
        tx.try_push(4).unwrap();
        assert_eq!(tx.try_push(5), Err(5));
        tx.publish();
        assert_eq!(rx.drain(1, |v| assert_eq!(v, 3)), 1);
        tx.try_push(5).unwrap();
    }

    #[test]
    fn a_long_drain_frees_space_while_it_runs() {
        let capacity = 2 * RELEASE_EVERY;
        let (mut tx, mut rx) = ring(capacity);
        for i in 0..capacity {
            tx.try_push(i).unwrap();
        }
        tx.publish();
        let mut pushed_during = 0;
        let n = rx.drain(capacity, |v| {
            // The producer is the other end of the ring, free to run while the consumer drains.
            if v == RELEASE_EVERY - 1 {
                assert_eq!(
                    tx.try_push(usize::MAX),
                    Err(usize::MAX),
                    "nothing released yet"
                );
            }
            if v == RELEASE_EVERY {
                tx.try_push(capacity + v)
                    .expect("the first RELEASE_EVERY slots are free");
                pushed_during += 1;
            }
        });
        assert_eq!((n, pushed_during), (capacity, 1));
        tx.publish();
        assert_eq!(rx.pop(), Some(capacity + RELEASE_EVERY));
    }

    #[test]
    fn drain_respects_max() {
        let (mut tx, mut rx) = ring(8);
        for i in 0..6 {
            tx.try_push(i).unwrap();
        }
        tx.publish();
        let mut seen = Vec::new();
        assert_eq!(rx.drain(4, |v| seen.push(v)), 4);
        assert_eq!(rx.drain(0, |v| seen.push(v)), 0);
        assert_eq!(rx.drain(usize::MAX, |v| seen.push(v)), 2);
        assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn pop_with_hands_over_published_values_only() {
        let (mut tx, mut rx) = ring(4);
        let mut seen = Vec::new();
        assert!(!rx.pop_with(|v| seen.push(v)), "empty");
        tx.try_push(7).unwrap();
        assert!(!rx.pop_with(|v| seen.push(v)), "pushed, not published");
        tx.publish();
        assert!(rx.pop_with(|v| seen.push(v)));
        assert!(!rx.pop_with(|v| seen.push(v)));
        assert_eq!(seen, [7]);
    }

    #[test]
    fn spsc() {
        const COUNT: u64 = 1_000_000;
        const BATCH: usize = 16;
        let (mut tx, mut rx) = ring::<u64>(64);
        let start = Instant::now();

        let producer = thread::Builder::new()
            .name("ring-spsc-producer".into())
            .spawn(move || {
                let mut next = 0;
                while next < COUNT {
                    match tx.try_push(next) {
                        Ok(()) => {
                            next += 1;
                            if tx.unpublished() == BATCH {
                                tx.publish();
                            }
                        }
                        Err(_) => {
                            tx.publish();
                            assert!(start.elapsed() < DEADLINE, "producer stalled at {next}");
                            thread::yield_now();
                        }
                    }
                }
                tx.publish();
            })
            .unwrap();

        let mut expected = 0;
        while expected < COUNT {
            let popped = rx.drain(BATCH * 2, |v| {
                assert_eq!(v, expected, "FIFO order, every value exactly once");
                expected += 1;
            });
            if popped == 0 {
                assert!(start.elapsed() < DEADLINE, "consumer stalled at {expected}");
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(rx.is_empty());
    }

    #[test]
    fn destructors() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = ring(8);
        for _ in 0..6 {
            tx.try_push(counter(&drops)).unwrap();
        }
        tx.publish();
        // Popped and released: dropped by us.
        drop(rx.pop().unwrap());
        rx.release();
        // Popped, not released: dropped by us, must not be dropped again by the ring.
        drop(rx.pop().unwrap());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        // Pushed after wrap-around of the free space: still one drop each.
        tx.try_push(counter(&drops)).unwrap();
        tx.publish();
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 2, "producer still alive");
        assert!(!tx.is_consumer_alive());
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn drop_with_unpublished() {
        for consumer_first in [false, true] {
            let drops = Arc::new(AtomicUsize::new(0));
            let (mut tx, mut rx) = ring(4);
            tx.try_push(counter(&drops)).unwrap();
            tx.publish();
            tx.try_push(counter(&drops)).unwrap();
            tx.try_push(counter(&drops)).unwrap();
            assert_eq!(tx.unpublished(), 2);
            drop(rx.pop().unwrap());
            if consumer_first {
                drop(rx);
                drop(tx);
            } else {
                drop(tx);
                drop(rx);
            }
            assert_eq!(
                drops.load(Ordering::Relaxed),
                3,
                "consumer_first={consumer_first}"
            );
        }
    }

    #[test]
    fn producer_drop_publishes() {
        let (mut tx, mut rx) = ring(4);
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        drop(tx);
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn destructors_across_threads() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = ring(4);
        let handle = {
            let drops = Arc::clone(&drops);
            thread::Builder::new()
                .spawn(move || {
                    for _ in 0..3 {
                        tx.try_push(counter(&drops)).unwrap();
                    }
                    tx.publish();
                    tx
                })
                .unwrap()
        };
        let tx = handle.join().unwrap();
        drop(rx.pop().unwrap());
        let consumer = thread::Builder::new().spawn(move || drop(rx)).unwrap();
        consumer.join().unwrap();
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn zero_sized_types() {
        let (mut tx, mut rx) = ring::<()>(4);
        for _ in 0..4 {
            tx.try_push(()).unwrap();
        }
        assert_eq!(tx.try_push(()), Err(()));
        tx.publish();
        assert_eq!(rx.len_hint(), 4);
        assert_eq!(rx.drain(usize::MAX, |()| {}), 4);
        assert!(rx.is_empty());
        tx.try_push(()).unwrap();
        tx.publish();
        assert_eq!(rx.pop(), Some(()));
    }

    #[test]
    fn endpoints_are_send() {
        fn assert_send<S: Send>() {}
        assert_send::<Producer<String>>();
        assert_send::<Consumer<String>>();
    }

    #[test]
    fn is_ready_follows_publication_and_laps() {
        let (mut tx, mut rx) = ring::<u32>(2);
        for lap in 0..3 {
            assert!(!rx.is_ready(), "lap {lap}: empty");
            tx.try_push(lap).unwrap();
            tx.try_push(lap + 100).unwrap();
            assert!(!rx.is_ready(), "lap {lap}: pushed, not published");
            assert!(tx.publish());
            assert!(rx.is_ready(), "lap {lap}: published");
            assert_eq!(rx.pop(), Some(lap));
            assert!(rx.is_ready(), "lap {lap}: one left");
            assert_eq!(rx.pop(), Some(lap + 100));
            // The slots still hold this lap's stamps: they must not read as the next lap's.
            assert!(!rx.is_ready(), "lap {lap}: drained");
            rx.release();
        }
    }

    /// Resident memory of this process, in bytes (Linux).
    #[cfg(target_os = "linux")]
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        // SAFETY: `sysconf` only reads a configuration value.
        pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
    }

    /// What `f` returns, and by how many bytes the process's resident memory grew while it ran.
    #[cfg(target_os = "linux")]
    fn resident_growth<R>(f: impl FnOnce() -> R) -> (R, usize) {
        let before = resident_bytes();
        let r = f();
        (r, resident_bytes().saturating_sub(before))
    }

    /// An idle ring costs address space, not memory: its slots' pages are not touched until
    /// the producer writes them.
    #[test]
    #[cfg(target_os = "linux")]
    fn unused_ring_touches_no_slot_pages() {
        const SLOTS: usize = 1 << 14;
        // 16 Ki slots of 4 KiB: a 64 MiB ring (plus its stamps' share of each page).
        let ((mut tx, mut rx), grown) = resident_growth(|| ring::<[u64; 511]>(SLOTS));
        assert!(
            grown < 16 << 20,
            "an unused 64 MiB ring made {grown} bytes resident"
        );
        // It still works, and its first lap is seen as empty.
        assert!(rx.is_empty());
        tx.try_push([7; 511]).unwrap();
        assert!(rx.is_empty(), "not published yet");
        tx.publish();
        assert_eq!(rx.pop().map(|v| v[510]), Some(7));
    }

    /// `prefault` makes a lazily allocated ring resident, and the ring works as before.
    #[test]
    #[cfg(target_os = "linux")]
    fn prefault_makes_the_slots_resident() {
        const SLOTS: usize = 1 << 16;
        // 64 Ki slots of 256 bytes: a 16 MiB ring, sixteen slots (and stamps) per page. The
        // other tests of this binary run meanwhile and may free memory: the bound leaves them
        // 4 MiB.
        let ((mut tx, mut rx), grown) = resident_growth(|| {
            let (tx, rx) = ring::<[u64; 31]>(SLOTS);
            rx.prefault();
            (tx, rx)
        });
        assert!(
            grown >= 12 << 20,
            "a prefaulted 16 MiB ring made only {grown} bytes resident"
        );
        assert!(rx.is_empty(), "prefaulting publishes nothing");
        tx.try_push([3; 31]).unwrap();
        tx.publish();
        assert_eq!(rx.pop().map(|v| v[30]), Some(3));
        assert!(rx.is_empty());
    }

    #[test]
    fn cache_padded_groups_on_separate_lines() {
        const LINE: usize = 64;
        let consumer = mem::offset_of!(Shared<u64>, consumer);
        let producer = mem::offset_of!(Shared<u64>, producer);
        assert!(
            consumer.abs_diff(producer) >= LINE,
            "{consumer} vs {producer}"
        );
        assert_eq!(consumer % LINE, 0);
        assert_eq!(producer % LINE, 0);
        // Neither group's lines hold anything else: the other group or the read-only fields.
        let group = mem::size_of::<CachePadded<ConsumerShared>>();
        assert_eq!(group, mem::size_of::<CachePadded<ProducerShared>>());
        assert!(group >= LINE);
        assert!(consumer.abs_diff(producer) >= group, "groups overlap");
        // The rarely written hint has a line of its own too.
        let waiting = mem::offset_of!(Shared<u64>, waiting);
        assert_eq!(waiting % LINE, 0);
        assert!(mem::size_of::<CachePadded<AtomicBool>>() >= LINE);
        for other in [
            waiting,
            mem::offset_of!(Shared<u64>, slots),
            mem::offset_of!(Shared<u64>, mask),
        ] {
            for start in [consumer, producer] {
                assert!(
                    other < start || other >= start + group,
                    "{other} inside {start}"
                );
            }
        }
    }
}
