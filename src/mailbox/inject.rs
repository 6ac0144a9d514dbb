//! The injection queues: how threads outside the runtime hand work to a shard.
//!
//! Two lanes feed a shard's inbox (`shard::close::ClosableQueue` wraps both):
//!
//! * [`BoundedInject`], for threads outside the runtime: a bounded lock-free array queue of
//!   64-byte cells, after Vyukov's bounded queue (one sequence word per cell, a CAS on the tail
//!   to claim cells) with a single consumer, which takes a cell with plain loads and stores
//!   of the head, no read-modify-write. A value is a [`LaneRecord`] of one or two cells: a
//!   pusher claims both cells of a two-cell record with one CAS (after checking that both are
//!   free), and publishes the record with the first cell's sequence word alone; the record's
//!   *meta* word, in the first cell, tells the consumer how many cells to take. An envelope
//!   takes one cell if its message fits in 24 bytes: one line crosses between the cores per
//!   small message, where the 128-byte slots of earlier versions moved two
//!   (`docs/benchmarks.md`, session 9). It allocates nothing after
//!   construction. A full queue is reported to the pusher, which waits for room (outside
//!   threads may block) or, for `try_tell`, answers `Full`. Built on the `crate::sync` shim, so
//!   the loom models check this code itself, with records of both lengths
//!   (`loom-tests/inject_bounded.rs`).
//!
//!   A one-cell record may be pushed *open* ([`BoundedInject::push_open`]): its pusher may
//!   then add values to it ([`BoundedInject::append`]) until the consumer takes it, so that a
//!   thread that sends faster than the shard takes its messages fills lines rather than
//!   taking one per message (`shard::outside`). The record's meta word then holds the lane's
//!   own state instead of the record's meta: how many values it holds, a tag naming its
//!   position (so that a word of a later lap is never mistaken for it), `WRITING` while an
//!   append is between its reservation and its commit, and `SEALED` once the consumer took
//!   it (or once the append that filled it closed it). An append reserves with a
//!   compare-and-swap and commits with a Release store; the consumer seals with a
//!   compare-and-swap (a filled record with an Acquire load). So an append either lands
//!   before the consumer's seal, which then sees it, or fails and writes nothing. A consumer
//!   that finds `WRITING` waits for the commit: the append between the two is a few stores,
//!   as a push between its claim and its publication is.
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

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// Ordering of a push's `seq` store: `Release`, or `Relaxed` under the deliberate loom bug
/// `--cfg coreactor_loom_bug="inject_bounded"`, which `loom-tests/inject_bounded.rs` must report
/// as a causality violation on the cell's words.
const PUBLISH_ORDERING: Ordering = if cfg!(coreactor_loom_bug = "inject_bounded") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// Ordering of an append's commit: `Release`, or `Relaxed` under the deliberate loom bug
/// `--cfg coreactor_loom_bug="inject_append"`, which `loom-tests/inject_bounded.rs` must report
/// as a causality violation on the appended value.
const APPEND_COMMIT_ORDERING: Ordering = if cfg!(coreactor_loom_bug = "inject_append") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// How many cells ahead of its own a push prefetches (see `publish`).
const PREFETCH_AHEAD: usize = 4;

/// Words of a record a cell holds (after its sequence and meta words): 48 bytes, so that a
/// cell is one 64-byte line.
pub const CELL_WORDS: usize = 6;

/// The words of one cell.
pub type CellWords = MaybeUninit<[u64; CELL_WORDS]>;

// The meta word of an open record (see the module docs). A record's own meta word
// (`LaneRecord::meta`) keeps `OPEN` clear.
/// The record is open: this word is the lane's state, not the record's meta.
const OPEN: usize = 1 << 1;
/// An append reserved the next value's place and is writing it.
const WRITING: usize = 1 << 2;
/// The consumer took the record: appends fail.
const SEALED: usize = 1 << 3;
const COUNT_SHIFT: u32 = 4;
const COUNT_BITS: u32 = 16;
/// The position tag's shift: the word keeps the position's low 44 bits, so a word of the same
/// cell `2^44` positions later could be taken for this one (never in practice).
const TAG_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
const _: () = assert!(usize::BITS == 64, "the open-record word needs 64 bits");

/// The most values an open record holds.
pub const MAX_OPEN_VALUES: usize = (1 << COUNT_BITS) - 1;

/// The meta word of an open record at `pos` holding `count` values, neither writing nor
/// sealed.
#[inline]
fn open_word(pos: usize, count: usize) -> usize {
    debug_assert!(count <= MAX_OPEN_VALUES);
    OPEN | (count << COUNT_SHIFT) | (pos << TAG_SHIFT)
}

/// How many values an open record's word says it holds.
#[inline]
fn open_count(word: usize) -> usize {
    (word >> COUNT_SHIFT) & MAX_OPEN_VALUES
}

/// How many values an open record holds, from the meta word [`LaneRecord::read`] gets for it;
/// `None` for the meta word of a record pushed whole.
#[inline]
pub fn open_values(meta: usize) -> Option<usize> {
    (meta & OPEN != 0).then(|| open_count(meta))
}

/// An open record its pusher may add values to (see [`BoundedInject::push_open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRecord {
    pos: usize,
    count: usize,
}

impl OpenRecord {
    /// A placeholder: no record (count 0; appending to it fails unless the lane's first cell
    /// holds an open record of no value, which never exists).
    pub const NONE: OpenRecord = OpenRecord { pos: 0, count: 0 };

    /// How many values the record holds (as far as its pusher knows: all of them, since only
    /// its pusher appends).
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// A record of `count` values at position 0, for tests of its pusher's bookkeeping.
    #[cfg(all(test, not(coreactor_loom)))]
    pub(crate) fn holding(count: usize) -> OpenRecord {
        OpenRecord { pos: 0, count }
    }
}

/// A value the bounded lane carries: one record of one or two cells.
///
/// A record is a *meta* word, which the lane stores atomically in the record's first cell so
/// that the consumer learns the record's length from it, and the words of one or two cells,
/// written by the one pusher that claimed them and read by the consumer.
pub trait LaneRecord: Sized {
    /// The record's meta word; [`cells`](Self::cells) of it must say how many cells it takes.
    fn meta(&self) -> usize;
    /// How many cells (1 or 2) a record with meta word `meta` takes.
    fn cells(meta: usize) -> usize;
    /// Moves the record into the words of its cells: `first` always, `second` when it takes
    /// two.
    fn write(self, first: &mut CellWords, second: Option<&mut CellWords>);
    /// Moves a record back out of its cells. For an open record ([`open_values`] of `meta` is
    /// `Some(count)`), moves its `count` values out of its one cell, as one record.
    ///
    /// # Safety
    /// The cells hold what [`write`](Self::write) wrote of a record whose meta word is `meta`,
    /// or, for an open record, what the `push_open` write and `count - 1` appends wrote; it is
    /// read once.
    unsafe fn read(meta: usize, first: &CellWords, second: Option<&CellWords>) -> Self;
}

/// Integers as lane records, for the unit tests and the loom models: an odd value takes two
/// cells (written to both, checked on the way out), an even one takes one, so the models cover
/// both record lengths.
#[cfg(any(test, coreactor_loom))]
macro_rules! int_lane_record {
    ($($t:ty),*) => {$(
        impl LaneRecord for $t {
            fn meta(&self) -> usize {
                (*self & 1) as usize
            }
            fn cells(meta: usize) -> usize {
                1 + (meta & 1)
            }
            fn write(self, first: &mut CellWords, second: Option<&mut CellWords>) {
                first.write([self as u64; CELL_WORDS]);
                if let Some(second) = second {
                    second.write([!(self as u64); CELL_WORDS]);
                }
            }
            unsafe fn read(meta: usize, first: &CellWords, second: Option<&CellWords>) -> Self {
                assert!(open_values(meta).is_none(), "integer records are never pushed open");
                // SAFETY: the caller guarantees `write` wrote these cells.
                let value = unsafe { first.assume_init_ref()[CELL_WORDS - 1] };
                assert_eq!(Self::cells(meta), 1 + usize::from(second.is_some()));
                if let Some(second) = second {
                    // SAFETY: as above.
                    let check = unsafe { second.assume_init_ref()[0] };
                    assert_eq!(check, !value, "a record's second cell");
                }
                value as $t
            }
        }
    )*};
}

/// A run of up to [`CELL_WORDS`] integers in one cell, for the unit tests and the loom models
/// of open records: value `i` is word `i` ([`push_open`](BoundedInject::push_open) writes the
/// first, each append the next).
#[cfg(any(test, coreactor_loom))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run(pub Vec<u64>);

#[cfg(any(test, coreactor_loom))]
impl Run {
    /// Writes `value` as value `i` of a run's cell.
    pub fn write_at(words: &mut CellWords, i: usize, value: u64) {
        assert!(i < CELL_WORDS, "a run holds at most {CELL_WORDS} values");
        // SAFETY: `i < CELL_WORDS`: inside the cell's words.
        unsafe { words.as_mut_ptr().cast::<u64>().add(i).write(value) };
    }
}

#[cfg(any(test, coreactor_loom))]
impl LaneRecord for Run {
    fn meta(&self) -> usize {
        assert!((1..=CELL_WORDS).contains(&self.0.len()), "a run of 1..=6");
        self.0.len() << COUNT_SHIFT
    }
    fn cells(_meta: usize) -> usize {
        1
    }
    fn write(self, first: &mut CellWords, _second: Option<&mut CellWords>) {
        for (i, v) in self.0.into_iter().enumerate() {
            Self::write_at(first, i, v);
        }
    }
    unsafe fn read(meta: usize, first: &CellWords, _second: Option<&CellWords>) -> Self {
        // Pushed whole, `meta` is the run's length in the count field; pushed open, the lane
        // puts the count there too.
        let count = open_values(meta).unwrap_or(meta >> COUNT_SHIFT);
        let words = first.as_ptr().cast::<u64>();
        // SAFETY: the caller guarantees `count` values were written, each into its word.
        Run((0..count).map(|i| unsafe { words.add(i).read() }).collect())
    }
}

#[cfg(any(test, coreactor_loom))]
int_lane_record!(usize, u32, u64);

/// One cell of a [`BoundedInject`]: one cache line.
#[repr(C, align(64))]
struct Cell {
    /// `pos` when the cell is free for the push at position `pos`; `pos + 1` once the push of
    /// a record starting at `pos` published it (a record's second cell keeps its free value
    /// while it holds the record: only the first cell's word is looked at); `pos + capacity`
    /// after the pop of `pos` freed it for the next lap.
    seq: AtomicUsize,
    /// The meta word of the record starting in this cell.
    meta: AtomicUsize,
    words: UnsafeCell<CellWords>,
}

/// Bounded lock-free queue of `capacity` 64-byte cells, a power of two, for any number of
/// pushers and one consumer at a time ([`pop`](Self::pop) is `unsafe` for that); a value takes
/// one or two cells. See the module docs.
pub struct BoundedInject<T: LaneRecord> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    cells: Box<[Cell]>,
    mask: usize,
    _values: PhantomData<T>,
}

// SAFETY: values move between threads through the queue (hence `T: Send`); a cell's words are
// accessed only by the one pusher whose tail CAS claimed that position, which writes them
// before its Release store of the first cell's `seq`, and then by the consumer, which reads
// them after its Acquire load of that `seq` (`pop`'s contract makes it the only one), so
// sharing `&BoundedInject` never gives two threads the same words at once.
unsafe impl<T: LaneRecord + Send> Send for BoundedInject<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: LaneRecord + Send> Sync for BoundedInject<T> {}

impl<T: LaneRecord> BoundedInject<T> {
    /// An empty queue of `capacity` cells.
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two of at least 2 (the configuration checks it first).
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity >= 2 && capacity.is_power_of_two(),
            "inject capacity must be a power of two >= 2, got {capacity}"
        );
        let cells = (0..capacity)
            .map(|i| Cell {
                seq: AtomicUsize::new(i),
                meta: AtomicUsize::new(0),
                words: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        BoundedInject {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            cells,
            mask: capacity - 1,
            _values: PhantomData,
        }
    }

    #[inline]
    fn cell(&self, pos: usize) -> &Cell {
        &self.cells[pos & self.mask]
    }

    /// Appends `value`, or gives it back if the cells it needs still hold values not yet taken
    /// (a snapshot: a pop may be freeing them at that moment).
    pub fn push(&self, value: T) -> Result<(), T> {
        let meta = value.meta();
        debug_assert_eq!(meta & OPEN, 0, "a record's meta word keeps OPEN clear");
        let two = T::cells(meta) == 2;
        let Some((pos, first, second)) = self.claim(two) else {
            return Err(value);
        };
        Self::write(first, second, value);
        self.publish(pos, first, meta, two);
        Ok(())
    }

    /// Pushes an *open* one-cell record, whose words `write` fills, and returns it: this thread
    /// may add values to it with [`append`](Self::append) until the consumer takes it. Gives
    /// `write` back, uncalled, if the cell still holds a value not yet taken.
    ///
    /// The consumer reads the record with [`LaneRecord::read`] (its meta word then says how
    /// many values it holds, see [`open_values`]), which must understand what `write` and the
    /// appends wrote.
    pub fn push_open<W: FnOnce(&mut CellWords)>(&self, write: W) -> Result<OpenRecord, W> {
        let Some((pos, first, _)) = self.claim(false) else {
            return Err(write);
        };
        first.words.with_mut(|words| {
            // SAFETY: as in `write`: the claim gave this thread the position, and nobody else
            // touches its words until the `seq` store publishes them.
            write(unsafe { &mut *words });
        });
        self.publish(pos, first, open_word(pos, 1), false);
        Ok(OpenRecord { pos, count: 1 })
    }

    /// Adds one value to `record`, an open record this thread pushed, unless the consumer has
    /// taken it: `write` then writes value number `record.count()` (counting from 0) into the
    /// record's cell, and the count grows by one. The record holds at most `capacity` values
    /// (`capacity <= MAX_OPEN_VALUES`): the append that fills it also closes it, so that the
    /// consumer takes it without a read-modify-write. Gives `write` back, uncalled, if the
    /// record was taken or is full.
    ///
    /// No doorbell is rung and no fence issued: the record was published, with both, by its
    /// push, and whoever takes it (the shard, or a pusher discarding after shutdown) takes
    /// what was appended before it sealed the record.
    pub fn append<W: FnOnce(&mut CellWords, usize)>(
        &self,
        record: &mut OpenRecord,
        capacity: usize,
        write: W,
    ) -> Result<(), W> {
        debug_assert!(capacity <= MAX_OPEN_VALUES);
        if record.count >= capacity {
            return Err(write);
        }
        let cell = self.cell(record.pos);
        let open = open_word(record.pos, record.count);
        // Relaxed: the word alone decides. If this succeeds the consumer has not sealed the
        // record (a seal sets SEALED, and a later lap's push a different tag), and it cannot
        // seal it while WRITING is set: nobody reads the words written below until the commit.
        if cell
            .meta
            .compare_exchange(open, open | WRITING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Err(write);
        }
        cell.words.with_mut(|words| {
            // SAFETY: the reservation above keeps the consumer off the record's words until
            // the commit below, and only the record's pusher (this thread) appends to it.
            write(unsafe { &mut *words }, record.count);
        });
        record.count += 1;
        let full = record.count >= capacity;
        let commit = open_word(record.pos, record.count) | if full { SEALED } else { 0 };
        // Release: the consumer's Acquire seal or load, which reads this word or a later one,
        // sees the value written above.
        cell.meta.store(commit, APPEND_COMMIT_ORDERING);
        Ok(())
    }

    /// Claims the next position (and the one after it for a two-cell record) with the tail
    /// CAS, and returns it with its cell (and the second one); `None` if the cells still hold
    /// values not yet taken.
    #[inline(always)]
    fn claim(&self, two: bool) -> Option<(usize, &Cell, Option<&Cell>)> {
        // Relaxed: the cells' `seq` (Acquire) decide; the tail only picks the candidate.
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let first = self.cell(pos);
            // Acquire: pairs with the Release store of the pop that freed the cell, so its read
            // of the old words happens before the writes of the claimer.
            let lag = first.seq.load(Ordering::Acquire).wrapping_sub(pos) as isize;
            if lag == 0 {
                let mut second = None;
                if two {
                    // The second cell must be free for `pos + 1` too. Nobody can claim it
                    // while the tail is `pos`, so what is seen here holds if the CAS succeeds.
                    let next = pos.wrapping_add(1);
                    let cell = self.cell(next);
                    let lag = cell.seq.load(Ordering::Acquire).wrapping_sub(next) as isize;
                    if lag < 0 {
                        return None;
                    }
                    if lag > 0 {
                        pos = self.tail.load(Ordering::Relaxed);
                        continue;
                    }
                    second = Some(cell);
                }
                let claimed = pos.wrapping_add(if two { 2 } else { 1 });
                match self.tail.compare_exchange_weak(
                    pos,
                    claimed,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((pos, first, second)),
                    Err(current) => pos = current,
                }
            } else if lag < 0 {
                // The cell still holds a record of the previous lap: full.
                return None;
            } else {
                // Another pusher claimed `pos` already: look at the tail again.
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Publishes the record this thread wrote at its claimed position `pos` (whose cell is
    /// `first`), with meta word `meta`.
    #[inline(always)]
    fn publish(&self, pos: usize, first: &Cell, meta: usize, two: bool) {
        // Relaxed: the Release store of `seq` below publishes it.
        first.meta.store(meta, Ordering::Relaxed);
        // Release: the consumer's Acquire load of `seq` sees the words.
        first.seq.store(pos.wrapping_add(1), PUBLISH_ORDERING);
        // Fetch the line of a cell a few pushes ahead for writing now: the shard wrote it when
        // it freed it, and a push that finds it there waits for the transfer (in its `seq`
        // load, and in the fence that follows a push).
        let claimed = pos.wrapping_add(if two { 2 } else { 1 });
        crate::sync::prefetch_write(&raw const *self.cell(claimed.wrapping_add(PREFETCH_AHEAD)));
    }

    /// Writes `value` into the cell `first` and, for a two-cell record, `second`: the cells of
    /// the positions this thread claimed.
    fn write(first: &Cell, second: Option<&Cell>, value: T) {
        first.words.with_mut(|first| match second {
            Some(second) => second.words.with_mut(|second| {
                // SAFETY: the tail CAS gave this thread both positions, and their `seq` said
                // both cells were freed: no other thread touches these words until the first
                // cell's `seq` store publishes them.
                value.write(unsafe { &mut *first }, Some(unsafe { &mut *second }));
            }),
            // SAFETY: as above, for the one position.
            None => value.write(unsafe { &mut *first }, None),
        });
    }

    /// Takes the oldest value, or `None` if the oldest position holds no value yet (empty, or
    /// its pusher claimed it and is still writing: it rings the doorbell after it wrote).
    ///
    /// The queue has one consumer at a time, so a pop is loads and stores, with no
    /// read-modify-write: a locked instruction here (the head CAS of the multi-consumer
    /// algorithm) waited, at every message, for the store that freed the previous cell to
    /// reach a line the pushers had just written (`docs/benchmarks.md`, session 10).
    ///
    /// # Safety
    ///
    /// The caller is the queue's one consumer: no other `pop` runs at the same time, and every
    /// earlier `pop` happens before this one (`shard::close` hands the role from the shard to
    /// late pushers with an Acquire/Release token).
    pub unsafe fn pop(&self) -> Option<T> {
        let mut out = None;
        // SAFETY: the caller's contract, passed on.
        unsafe { self.pop_with(|v| out = Some(v)) };
        out
    }

    /// Like [`pop`](Self::pop), but hands the oldest value to `f` rather than returning it,
    /// and returns the number of values its record held (1, or more for an open record that
    /// took appends); 0 (and `f` not called) if the lane is empty. The value goes from its
    /// cells to `f`'s argument without the copies an `Option` return costs it (a shard's drain
    /// of the lane moves 96-byte envelopes).
    ///
    /// # Safety
    ///
    /// As for [`pop`](Self::pop).
    #[inline]
    pub unsafe fn pop_with(&self, f: impl FnOnce(T)) -> usize {
        // Relaxed: only the consumer writes the head, and the previous consumer's store
        // happens before this load (the caller's contract).
        let pos = self.head.load(Ordering::Relaxed);
        let first = self.cell(pos);
        // Acquire: pairs with the pusher's Release store, so its writes are visible.
        if first.seq.load(Ordering::Acquire) != pos.wrapping_add(1) {
            return 0;
        }
        // Relaxed: ordered by the Acquire load above; only an open record's appends change it
        // until the cell is freed (`take_open`).
        let meta = first.meta.load(Ordering::Relaxed);
        if meta & OPEN != 0 {
            let (value, count) = self.take_open(pos);
            f(value);
            return count;
        }
        let second = (T::cells(meta) == 2).then(|| self.cell(pos.wrapping_add(1)));
        // The head moves past the record before it is read, so a read that panics leaves it
        // taken rather than read again (pushers never look at the head).
        let after = pos.wrapping_add(if second.is_some() { 2 } else { 1 });
        self.head.store(after, Ordering::Relaxed);
        let value = Self::read(first, second, meta);
        // Release: the pushers of the next lap see the cells empty before they write them.
        let lap = self.mask + 1;
        first.seq.store(pos.wrapping_add(lap), Ordering::Release);
        if let Some(second) = second {
            second
                .seq
                .store(pos.wrapping_add(1).wrapping_add(lap), Ordering::Release);
        }
        f(value);
        1
    }

    /// The rest of [`pop_with`](Self::pop_with) for the open record published at `pos`: seals
    /// it, takes what it holds and how many values that is, and frees its cell. Out of line, so that the path of the records pushed whole stays as it was: a
    /// record read there goes straight into `f`'s argument (when the two paths shared one
    /// read, the shard's drain copied each 96-byte envelope once more, a fifth of an outside
    /// flood's speed: `docs/benchmarks.md`, session 15), and an open record's values share the
    /// call.
    #[inline(never)]
    fn take_open(&self, pos: usize) -> (T, usize) {
        let first = self.cell(pos);
        let count = Self::seal(first);
        self.head.store(pos.wrapping_add(1), Ordering::Relaxed);
        // What `LaneRecord::read` gets for an open record (see `open_values`).
        let value = Self::read(first, None, OPEN | (count << COUNT_SHIFT));
        // Release: as in `pop_with`.
        first
            .seq
            .store(pos.wrapping_add(self.mask + 1), Ordering::Release);
        (value, count)
    }

    /// Closes the open record in `first` to appends and returns how many values it holds. An
    /// append caught between its reservation and its commit is waited for: a few stores,
    /// unless its thread was preempted right there. A record its last append filled and closed
    /// needs no read-modify-write.
    fn seal(first: &Cell) -> usize {
        let mut backoff = crate::sync::Backoff::new();
        // Acquire, here and below: pairs with the Release commit of the last append counted in
        // the word read (a filled record is never written again until its cell is freed).
        let mut word = first.meta.load(Ordering::Acquire);
        loop {
            if word & WRITING != 0 {
                backoff.snooze();
                word = first.meta.load(Ordering::Acquire);
                continue;
            }
            if word & SEALED != 0 {
                // Filled and closed by its pusher's last append.
                return open_count(word);
            }
            match first.meta.compare_exchange_weak(
                word,
                word | SEALED,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return open_count(word),
                Err(current) => word = current,
            }
        }
    }

    /// Reads the record in the cell `first` and, for a two-cell record, `second`: the cells at
    /// the consumer's head, published (and sealed, for an open record, whose `meta` is then
    /// what [`open_values`] reads).
    fn read(first: &Cell, second: Option<&Cell>, meta: usize) -> T {
        first.words.with(|first| match second {
            Some(second) => second.words.with(|second| {
                // SAFETY: the first cell's `seq` said the push of its position wrote both cells
                // (its Release store, our Acquire load) with this meta word, and `pop`'s
                // contract makes this thread the only consumer: read once, then freed.
                unsafe { T::read(meta, &*first, Some(&*second)) }
            }),
            // SAFETY: as above, for the one cell; for an open record, the seal saw the commit
            // of every append it counted (Acquire), the push wrote the rest before publishing,
            // and no append can add to a sealed record.
            None => unsafe { T::read(meta, &*first, None) },
        })
    }

    /// True if the oldest position holds no value: exact for the consumer (until a push), a
    /// snapshot that may be stale from any other thread.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        let pos = self.head.load(Ordering::Relaxed);
        let seq = self.cell(pos).seq.load(Ordering::Acquire);
        seq != pos.wrapping_add(1)
    }

    /// The number of cells.
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }
}

impl<T: LaneRecord> Drop for BoundedInject<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: every pusher and the consumer are gone, so this thread is the
        // only consumer; what is still queued is dropped here.
        while unsafe { self.pop() }.is_some() {}
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

        /// True if no value is queued: the length hint, without the lock, so no stronger than
        /// `SegQueue::is_empty` (see `pop`).
        pub(crate) fn is_empty(&self) -> bool {
            self.len.load(Ordering::Relaxed) == 0
        }
    }
}

pub(crate) use imp::InjectQueue;

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::{BoundedInject, CELL_WORDS, CellWords, InjectQueue, LaneRecord, OpenRecord, Run};
    use std::sync::Arc;

    /// Pops as the queue's consumer.
    fn take<T: LaneRecord>(q: &BoundedInject<T>) -> Option<T> {
        // SAFETY: each test pops from one thread only.
        unsafe { q.pop() }
    }

    #[test]
    fn pop_with_hands_over_the_oldest_record_once() {
        fn take_with(q: &BoundedInject<u64>, seen: &mut Vec<u64>) -> bool {
            // SAFETY: this test pops from one thread only.
            unsafe { q.pop_with(|v| seen.push(v)) > 0 }
        }
        let q = BoundedInject::new(4);
        let mut seen = Vec::new();
        assert!(!take_with(&q, &mut seen), "empty");
        q.push(2).unwrap();
        q.push(3).unwrap(); // odd: a two-cell record
        assert!(take_with(&q, &mut seen));
        assert!(take_with(&q, &mut seen));
        assert!(!take_with(&q, &mut seen));
        assert_eq!(seen, [2, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn bounded_fifo_full_and_wrap() {
        let q = BoundedInject::new(4);
        assert_eq!(q.capacity(), 4);
        assert!(q.is_empty());
        for lap in 0..5u64 {
            // Even values take one cell each: four fit.
            for i in 0..4 {
                q.push(lap * 100 + 2 * i).unwrap();
            }
            assert_eq!(q.push(98), Err(98), "a full queue gives the value back");
            for i in 0..4 {
                assert_eq!(take(&q), Some(lap * 100 + 2 * i));
            }
            assert_eq!(take(&q), None);
            assert!(q.is_empty());
        }
    }

    #[test]
    fn two_cell_records_fill_and_wrap() {
        let q = BoundedInject::new(4);
        // One cell, then a two-cell record, then a two-cell record that does not fit.
        q.push(2u64).unwrap();
        q.push(3).unwrap();
        assert_eq!(q.push(5), Err(5), "two cells needed, one free");
        q.push(4).unwrap();
        assert_eq!(q.push(6), Err(6), "full");
        assert_eq!(take(&q), Some(2));
        // Positions 4.. : a two-cell record at position 4 would need cell 0 (free) and 1
        // (still holding the record 3): refused until 3 is taken.
        assert_eq!(q.push(7), Err(7));
        assert_eq!(take(&q), Some(3));
        // Now at position 4 (cell 0) and 5 (cell 1): fits.
        q.push(7).unwrap();
        assert_eq!(take(&q), Some(4));
        // Position 6 is cell 2 and 7 is cell 3; then 8 wraps: a record at 7 spans cells 3 and 0.
        q.push(8).unwrap();
        assert_eq!(take(&q), Some(7));
        q.push(9).unwrap();
        assert_eq!(take(&q), Some(8));
        assert_eq!(take(&q), Some(9));
        assert_eq!(take(&q), None);
        for lap in 0..20u64 {
            let v = 2 * lap + 1;
            q.push(v).unwrap();
            q.push(v + 1).unwrap();
            assert_eq!(take(&q), Some(v));
            assert_eq!(take(&q), Some(v + 1));
        }
        assert!(q.is_empty());
    }

    /// A record that owns an `Arc`, to count drops.
    struct Counted(Arc<()>);

    impl LaneRecord for Counted {
        fn meta(&self) -> usize {
            0
        }
        fn cells(_meta: usize) -> usize {
            1
        }
        fn write(self, first: &mut CellWords, _second: Option<&mut CellWords>) {
            first.write([Arc::into_raw(self.0) as u64; CELL_WORDS]);
        }
        unsafe fn read(_meta: usize, first: &CellWords, _second: Option<&CellWords>) -> Self {
            // SAFETY: `write` stored a pointer from `Arc::into_raw`, read once.
            Counted(unsafe { Arc::from_raw(first.assume_init_ref()[0] as *const ()) })
        }
    }

    /// Pushes `first` as an open run.
    fn push_run(q: &BoundedInject<Run>, first: u64) -> Option<OpenRecord> {
        q.push_open(|words| Run::write_at(words, 0, first)).ok()
    }

    /// Appends `value` to `record`; false if it was taken.
    fn append(q: &BoundedInject<Run>, record: &mut OpenRecord, value: u64) -> bool {
        q.append(record, CELL_WORDS, |words, i| {
            Run::write_at(words, i, value)
        })
        .is_ok()
    }

    #[test]
    fn open_records_take_appends_until_the_consumer_takes_them() {
        let q = BoundedInject::<Run>::new(4);
        let mut record = push_run(&q, 10).unwrap();
        assert!(append(&q, &mut record, 11));
        assert!(append(&q, &mut record, 12));
        assert_eq!(record.count(), 3);
        q.push(Run(vec![20])).unwrap();
        let mut seen = Vec::new();
        // SAFETY: this test's thread is the only consumer.
        assert_eq!(unsafe { q.pop_with(|v| seen.push(v)) }, 3, "three values");
        assert_eq!(seen, vec![Run(vec![10, 11, 12])]);
        assert!(!append(&q, &mut record, 13), "taken: the record is sealed");
        assert_eq!(record.count(), 3, "a refused append changes nothing");
        assert_eq!(take(&q), Some(Run(vec![20])), "a plain record after it");
        assert!(q.is_empty());
    }

    #[test]
    fn the_append_that_fills_a_record_closes_it() {
        let q = BoundedInject::<Run>::new(4);
        let mut record = push_run(&q, 1).unwrap();
        assert!(
            q.append(&mut record, 2, |w, i| Run::write_at(w, i, 2))
                .is_ok()
        );
        assert!(
            q.append(&mut record, 3, |w, i| Run::write_at(w, i, 3))
                .is_err(),
            "the record was closed when it held two"
        );
        assert_eq!(take(&q), Some(Run(vec![1, 2])));
    }

    #[test]
    fn an_append_never_reaches_a_later_lap_of_its_cell() {
        let q = BoundedInject::<Run>::new(2);
        let mut stale = push_run(&q, 1).unwrap();
        assert_eq!(take(&q), Some(Run(vec![1])));
        q.push(Run(vec![2])).unwrap();
        // The same cell, one lap later, open again with the same count.
        let mut fresh = push_run(&q, 3).unwrap();
        assert_eq!(fresh.count(), stale.count());
        assert!(
            !append(&q, &mut stale, 99),
            "the stale record's tag differs"
        );
        assert!(append(&q, &mut fresh, 4));
        assert_eq!(take(&q), Some(Run(vec![2])));
        assert_eq!(take(&q), Some(Run(vec![3, 4])));
    }

    #[test]
    fn a_full_lane_gives_the_open_write_back_uncalled() {
        let q = BoundedInject::<Run>::new(2);
        push_run(&q, 1).unwrap();
        push_run(&q, 2).unwrap();
        let mut called = false;
        assert!(
            q.push_open(|words| {
                called = true;
                Run::write_at(words, 0, 3);
            })
            .is_err()
        );
        assert!(!called);
    }

    /// A pusher appends while the consumer takes records: every value arrives once, in order.
    #[test]
    fn appends_race_the_consumer_without_loss_or_reordering() {
        const N: u64 = 200_000;
        let q = Arc::new(BoundedInject::<Run>::new(64));
        let pusher = {
            let q = Arc::clone(&q);
            std::thread::Builder::new()
                .spawn(move || {
                    let mut record: Option<OpenRecord> = None;
                    let mut v = 0;
                    while v < N {
                        if let Some(r) = record.as_mut()
                            && r.count() < CELL_WORDS
                            && append(&q, r, v)
                        {
                            v += 1;
                            continue;
                        }
                        record = push_run(&q, v);
                        if record.is_some() {
                            v += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                })
                .expect("spawn pusher")
        };
        let mut next = 0;
        while next < N {
            let mut run = Run(Vec::new());
            // SAFETY: this thread is the only consumer.
            let took = unsafe { q.pop_with(|r| run = r) };
            assert_eq!(run.0.len(), took, "a record's count is what it holds");
            for v in run.0 {
                assert_eq!(v, next, "in order, once");
                next += 1;
            }
            if took == 0 {
                std::thread::yield_now();
            }
        }
        pusher.join().unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn bounded_drops_what_is_left() {
        let counter = Arc::new(());
        let q = BoundedInject::new(8);
        for _ in 0..5 {
            assert!(q.push(Counted(Arc::clone(&counter))).is_ok());
        }
        drop(take(&q));
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
            match take(&q) {
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
