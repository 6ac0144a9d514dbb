//! The hierarchical timer wheel: slab, slot lists, bitmaps, advance and cascade.
//!
//! See the [module documentation](super) for the structure and its invariants.

#![deny(unsafe_code)]

use std::fmt;

/// Bits of the tick count consumed by one level.
const LEVEL_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Mask of the slot index within one level.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Levels of the wheel.
const LEVELS: usize = 6;
/// Ticks spanned by the whole wheel are `2^WHEEL_BITS`.
const WHEEL_BITS: u32 = LEVEL_BITS * LEVELS as u32;
/// List index of the timers whose deadline had passed when they were inserted.
const EXPIRED: usize = LEVELS * SLOTS;
/// List index of the timers beyond the current `2^WHEEL_BITS` block.
const OVERFLOW: usize = EXPIRED + 1;
/// Number of lists: the wheel slots, then `EXPIRED`, then `OVERFLOW`.
const LISTS: usize = OVERFLOW + 1;
/// "No entry" in the slab links; also the bound on the slab's length.
const NIL: u32 = u32::MAX;
/// `Entry::list` of an entry that is in no list (free, or detached while being re-placed).
const NO_LIST: u16 = u16::MAX;

// `Entry::list` stores a list index in a `u16`.
const _: () = assert!(LISTS < NO_LIST as usize);

/// Handle to a timer in a [`TimerWheel`]: a slab index and the generation of that slab entry.
///
/// A key stays valid until its timer fires or is cancelled; afterwards [`TimerWheel::cancel`]
/// returns `None` for it and [`TimerWheel::contains`] returns `false`, even once the slab entry
/// is reused by another timer (the generation differs). Generations are 32 bits and wrap, so a
/// key held across `2^32` reuses of the same entry could alias a newer timer; the shard never
/// keeps a key that long.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    /// Slab index of the entry.
    index: u32,
    /// Generation of the entry when the timer was inserted.
    generation: u32,
}

/// One slab entry: a pending timer or a free entry.
struct Entry<T> {
    /// The timer's payload; `None` iff the entry is free.
    value: Option<T>,
    /// The timer's deadline (meaningless when free).
    deadline: u64,
    /// Bumped each time the entry is freed.
    generation: u32,
    /// Index of the list holding the entry, or `NO_LIST`.
    list: u16,
    /// Previous entry in the list, or `NIL`.
    prev: u32,
    /// Next entry in the list, or the next free entry when free; `NIL` at the end.
    next: u32,
}

/// Head, tail and deadline lower bound of one intrusive list.
#[derive(Clone, Copy)]
struct List {
    /// First entry, `NIL` when empty.
    head: u32,
    /// Last entry, `NIL` when empty.
    tail: u32,
    /// Least deadline pushed since the list was last empty (invariant 3); `u64::MAX` when empty.
    min: u64,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        min: u64::MAX,
    };
}

/// A wheel slot whose start is the next time the wheel has work to do.
struct Event {
    /// The tick at which the slot starts.
    at: u64,
    /// The list to re-place at `at`: a wheel slot or `OVERFLOW`.
    list: usize,
}

/// A hierarchical timer wheel holding timers with payloads of type `T`.
///
/// Time is a tick count that only moves forward through [`advance`](Self::advance). Insert and
/// cancel are O(1); `advance` costs O(levels) per non-empty slot it reaches plus O(1) per timer
/// moved or fired, however far time jumps. See the [module documentation](super) for the design.
///
/// # Examples
///
/// ```ignore
/// let mut wheel = TimerWheel::new(0);
/// let key = wheel.insert(10, "ask timeout");
/// let mut fired = Vec::new();
/// wheel.advance(9, &mut fired);
/// assert!(fired.is_empty());
/// wheel.advance(10, &mut fired);
/// assert_eq!(fired, vec![(key, "ask timeout")]);
/// ```
pub(crate) struct TimerWheel<T> {
    /// Current time in ticks.
    now: u64,
    /// Slab of entries.
    entries: Vec<Entry<T>>,
    /// First free entry, `NIL` when none.
    free_head: u32,
    /// Number of pending timers.
    len: usize,
    /// `LISTS` lists: level `L` slot `s` at `L * SLOTS + s`, then `EXPIRED`, then `OVERFLOW`.
    lists: Box<[List]>,
    /// Per level, bit `s` set iff slot `s` is non-empty (invariant 4).
    occupied: [u64; LEVELS],
    /// Reused buffer to sort the expired list: `(deadline, position in list, slab index)`.
    scratch: Vec<(u64, u32, u32)>,
}

impl<T> TimerWheel<T> {
    /// Creates an empty wheel whose clock reads `now`.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            now,
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            lists: vec![List::EMPTY; LISTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            scratch: Vec::new(),
        }
    }

    /// The current time: the largest `now` passed to [`new`](Self::new) or
    /// [`advance`](Self::advance).
    #[cfg_attr(not(test), allow(dead_code))] // used by tests
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Number of pending timers.
    #[cfg_attr(not(test), allow(dead_code))] // used by tests
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    #[cfg_attr(not(test), allow(dead_code))] // used by tests
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `value` to fire at `deadline` and returns its key. O(1); it allocates only when
    /// the slab grows past its largest size so far.
    ///
    /// A deadline at or before [`now`](Self::now) fires at the next [`advance`](Self::advance),
    /// whatever time that call is given.
    ///
    /// # Panics
    ///
    /// If `u32::MAX` timers are already pending.
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let index = self.alloc(deadline, value);
        let list = if deadline <= self.now {
            EXPIRED
        } else {
            list_for(self.now, deadline)
        };
        self.push_back(list, index);
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Cancels the timer of `key` and returns its value. O(1).
    ///
    /// Returns `None`, and changes nothing, if the timer already fired or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        if !self.contains(key) {
            return None;
        }
        self.unlink(key.index);
        let value = self.entries[key.index as usize].value.take();
        self.free(key.index);
        value
    }

    /// Whether the timer of `key` is still pending.
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.entries
            .get(key.index as usize)
            .is_some_and(|e| e.generation == key.generation && e.value.is_some())
    }

    /// A lower bound of the earliest pending deadline, `None` when no timer is pending. O(levels).
    ///
    /// The result is never later than the true earliest deadline. It is exact when the earliest
    /// timer is due within the current 64-tick window (or overdue) and no timer sharing its list
    /// was cancelled; otherwise it may be earlier: the least deadline ever pushed into the list
    /// holding the earliest timer since that list was last empty. Advancing to the returned
    /// value always makes progress (it fires the timer, or moves it to a lower level, where the
    /// bound is tighter), so `advance(next_deadline())` repeated reaches the earliest timer in at
    /// most 7 steps. An overdue timer (inserted with `deadline <= now()`) yields a value
    /// `<= now()`.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.lists[EXPIRED].head != NIL {
            return Some(self.lists[EXPIRED].min);
        }
        // Invariant 1: the lowest non-empty level holds the earliest timers, and within a level
        // the lowest non-empty slot does.
        for (level, &bits) in self.occupied.iter().enumerate() {
            if bits != 0 {
                let slot = bits.trailing_zeros() as usize;
                return Some(self.lists[level * SLOTS + slot].min);
            }
        }
        let overflow = &self.lists[OVERFLOW];
        (overflow.head != NIL).then_some(overflow.min)
    }

    /// Moves time forward to `now` and appends every timer with `deadline <= now` to `fired`,
    /// in non-decreasing deadline order, timers with equal deadlines in insertion order.
    ///
    /// Time never moves backward: a `now` earlier than [`now()`](Self::now) is treated as
    /// `now()`, so such a call only fires the timers inserted with an overdue deadline. `fired`
    /// is appended to, not cleared. The cost is O(levels) per non-empty slot reached plus O(1)
    /// per timer moved or fired; empty stretches of time cost nothing, however long.
    pub(crate) fn advance(&mut self, now: u64, fired: &mut Vec<(TimerKey, T)>) {
        let target = now.max(self.now);
        self.fire_expired(fired);
        while let Some(event) = self.next_event() {
            if event.at > target {
                break;
            }
            self.now = event.at;
            self.replace_list(event.list, fired);
        }
        // Invariant 1 holds at `target`: no non-empty slot starts in `(now, target]`.
        self.now = target;
    }

    /// The next time the wheel has work to do, or `None` when it holds no timer in a slot or in
    /// the overflow list. The result is always later than `self.now`.
    fn next_event(&self) -> Option<Event> {
        for (level, &bits) in self.occupied.iter().enumerate() {
            if bits != 0 {
                let slot = bits.trailing_zeros();
                let shift = level as u32 * LEVEL_BITS;
                // The level's slots cover the aligned block of `64^(level+1)` ticks holding now.
                let block = self.now & !((1u64 << (shift + LEVEL_BITS)) - 1);
                let at = block + (u64::from(slot) << shift);
                debug_assert!(at > self.now, "slot at or behind the level's position");
                return Some(Event {
                    at,
                    list: level * SLOTS + slot as usize,
                });
            }
        }
        let overflow = &self.lists[OVERFLOW];
        (overflow.head != NIL).then(|| {
            // Nothing in the overflow list belongs in the wheel before the block holding the
            // least deadline; a stale (too early) bound only makes the event early, not late.
            let at = (overflow.min >> WHEEL_BITS) << WHEEL_BITS;
            debug_assert!(at > self.now, "overflow bound in the current block");
            Event { at, list: OVERFLOW }
        })
    }

    /// Fires the expired list, sorted by deadline, ties in insertion (list) order.
    fn fire_expired(&mut self, fired: &mut Vec<(TimerKey, T)>) {
        let mut cur = self.take_list(EXPIRED);
        if cur == NIL {
            return;
        }
        let mut order = std::mem::take(&mut self.scratch);
        order.clear();
        let mut position = 0u32;
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            order.push((entry.deadline, position, cur));
            position += 1;
            cur = entry.next;
        }
        // The positions are distinct, so the unstable sort is deterministic and keeps ties in
        // insertion order without the allocation a stable sort may make.
        order.sort_unstable();
        for &(_, _, index) in &order {
            self.fire(index, fired);
        }
        self.scratch = order;
    }

    /// Empties `list` (a wheel slot or `OVERFLOW`) and re-places its timers relative to
    /// `self.now`, in list order: the due ones fire, the others go to their list (invariant 1).
    fn replace_list(&mut self, list: usize, fired: &mut Vec<(TimerKey, T)>) {
        let mut cur = self.take_list(list);
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            let (next, deadline) = (entry.next, entry.deadline);
            if deadline <= self.now {
                self.fire(cur, fired);
            } else {
                self.push_back(list_for(self.now, deadline), cur);
            }
            cur = next;
        }
    }

    /// Frees the detached entry `index` and appends its key and value to `fired`.
    fn fire(&mut self, index: u32, fired: &mut Vec<(TimerKey, T)>) {
        let entry = &mut self.entries[index as usize];
        let key = TimerKey {
            index,
            generation: entry.generation,
        };
        let value = entry.value.take().expect("a listed entry is occupied");
        self.free(index);
        fired.push((key, value));
    }

    /// Takes a slab entry for a new timer, reusing a free one when there is one.
    fn alloc(&mut self, deadline: u64, value: T) -> u32 {
        self.len += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            debug_assert!(entry.value.is_none(), "free entry is occupied");
            self.free_head = entry.next;
            entry.value = Some(value);
            entry.deadline = deadline;
            return index;
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("more than u32::MAX - 1 pending timers");
        self.entries.push(Entry {
            value: Some(value),
            deadline,
            generation: 0,
            list: NO_LIST,
            prev: NIL,
            next: NIL,
        });
        index
    }

    /// Returns the detached, emptied entry `index` to the free list; its keys become stale.
    fn free(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        debug_assert!(entry.value.is_none(), "freeing an occupied entry");
        entry.generation = entry.generation.wrapping_add(1);
        entry.list = NO_LIST;
        entry.prev = NIL;
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
    }

    /// Appends the detached entry `index` to `list`, updating its bound and the bitmap.
    fn push_back(&mut self, list: usize, index: u32) {
        let tail = self.lists[list].tail;
        let entry = &mut self.entries[index as usize];
        debug_assert_eq!(entry.list, NO_LIST, "pushing an entry that is in a list");
        entry.list = list as u16;
        entry.prev = tail;
        entry.next = NIL;
        let deadline = entry.deadline;
        if tail == NIL {
            self.lists[list].head = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        let l = &mut self.lists[list];
        l.tail = index;
        l.min = l.min.min(deadline);
        if list < EXPIRED {
            self.occupied[list / SLOTS] |= 1 << (list % SLOTS);
        }
    }

    /// Removes the entry `index` from its list, updating the list and the bitmap.
    fn unlink(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        let (list, prev, next) = (entry.list as usize, entry.prev, entry.next);
        debug_assert!(list < LISTS, "unlinking an entry that is in no list");
        entry.list = NO_LIST;
        entry.prev = NIL;
        entry.next = NIL;
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL {
            self.lists[list] = List::EMPTY;
            if list < EXPIRED {
                self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
            }
        }
    }

    /// Empties `list` and returns its former head; the caller walks the chain through `next`
    /// and must push or free every entry of it.
    fn take_list(&mut self, list: usize) -> u32 {
        let head = self.lists[list].head;
        self.lists[list] = List::EMPTY;
        if list < EXPIRED {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        let mut cur = head;
        while cur != NIL {
            let entry = &mut self.entries[cur as usize];
            entry.list = NO_LIST;
            cur = entry.next;
        }
        head
    }
}

impl<T> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.now)
            .field("len", &self.len)
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

/// The list a timer due at `deadline` belongs in when the clock reads `now` (invariant 1).
fn list_for(now: u64, deadline: u64) -> usize {
    debug_assert!(
        deadline > now,
        "an overdue timer belongs in the expired list"
    );
    let differing = now ^ deadline;
    if differing >> WHEEL_BITS != 0 {
        return OVERFLOW;
    }
    // Index of the highest differing bit, counting the lowest group as differing.
    let high_bit = u64::BITS - 1 - (differing | SLOT_MASK).leading_zeros();
    let level = high_bit / LEVEL_BITS;
    let slot = (deadline >> (level * LEVEL_BITS)) & SLOT_MASK;
    level as usize * SLOTS + slot as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::rc::Rc;

    /// Deadlines on each side of every level boundary, and one beyond the wheel.
    const BOUNDARIES: [u64; 8] = [63, 64, 4095, 4096, 262_143, 262_144, 1 << 30, (1 << 36) + 5];

    /// Seeded xorshift64* generator: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Advances `wheel` to `now` and returns what fired.
    fn advance<T>(wheel: &mut TimerWheel<T>, now: u64) -> Vec<(TimerKey, T)> {
        let mut fired = Vec::new();
        wheel.advance(now, &mut fired);
        check(wheel);
        fired
    }

    /// The payloads of `fired`, in order.
    fn values<T: Copy>(fired: &[(TimerKey, T)]) -> Vec<T> {
        fired.iter().map(|&(_, v)| v).collect()
    }

    /// Walks the whole structure and asserts the invariants of the module documentation.
    fn check<T>(wheel: &TimerWheel<T>) {
        let mut listed = 0;
        for (list, l) in wheel.lists.iter().enumerate() {
            if list < EXPIRED {
                let bit = wheel.occupied[list / SLOTS] >> (list % SLOTS) & 1 == 1;
                assert_eq!(bit, l.head != NIL, "bitmap of list {list}");
            }
            if l.head == NIL {
                assert_eq!(l.tail, NIL, "tail of empty list {list}");
                assert_eq!(l.min, u64::MAX, "bound of empty list {list}");
                continue;
            }
            let (mut prev, mut cur, mut least) = (NIL, l.head, u64::MAX);
            while cur != NIL {
                let e = &wheel.entries[cur as usize];
                assert!(e.value.is_some(), "free entry {cur} in list {list}");
                assert_eq!(e.list as usize, list, "list field of entry {cur}");
                assert_eq!(e.prev, prev, "prev link of entry {cur}");
                if list == EXPIRED {
                    assert!(e.deadline <= wheel.now, "future timer in the expired list");
                } else {
                    assert!(e.deadline > wheel.now, "overdue timer in list {list}");
                    assert_eq!(list_for(wheel.now, e.deadline), list, "misplaced {cur}");
                }
                if list < SLOTS {
                    assert_eq!(l.min, e.deadline, "level-0 bound is exact");
                }
                least = least.min(e.deadline);
                listed += 1;
                prev = cur;
                cur = e.next;
            }
            assert_eq!(l.tail, prev, "tail of list {list}");
            assert!(
                l.min <= least,
                "bound of list {list} above its least deadline"
            );
        }
        assert_eq!(listed, wheel.len, "listed entries vs len");
        let mut free = 0;
        let mut cur = wheel.free_head;
        while cur != NIL {
            let e = &wheel.entries[cur as usize];
            assert!(
                e.value.is_none() && e.list == NO_LIST,
                "free entry {cur} in use"
            );
            free += 1;
            cur = e.next;
        }
        assert_eq!(free + wheel.len, wheel.entries.len(), "free list vs slab");
    }

    #[test]
    fn smoke() {
        let mut wheel = TimerWheel::new(0);
        let key = wheel.insert(10, "a");
        assert!(wheel.contains(key));
        assert_eq!(wheel.next_deadline(), Some(10));
        assert!(advance(&mut wheel, 9).is_empty());
        assert_eq!(advance(&mut wheel, 10), vec![(key, "a")]);
        assert!(!wheel.contains(key));
        assert_eq!(wheel.next_deadline(), None);
        assert_eq!(wheel.now(), 10);
    }

    #[test]
    fn len() {
        let mut wheel = TimerWheel::new(0);
        assert!(wheel.is_empty());
        assert_eq!(wheel.len(), 0);
        let a = wheel.insert(5, 0);
        let b = wheel.insert(1 << 40, 1);
        let _c = wheel.insert(0, 2);
        assert_eq!(wheel.len(), 3);
        assert!(!wheel.is_empty());
        assert_eq!(wheel.cancel(b), Some(1));
        assert_eq!(wheel.cancel(b), None);
        assert_eq!(wheel.len(), 2);
        assert_eq!(advance(&mut wheel, 4).len(), 1);
        assert_eq!(wheel.len(), 1);
        assert!(wheel.contains(a));
        assert_eq!(advance(&mut wheel, 5).len(), 1);
        assert!(wheel.is_empty());
        check(&wheel);
    }

    #[test]
    fn fires_exactly_at_deadline() {
        for deadline in [1, 2, 63, 64, 65, 1000, 4096, 100_000] {
            let mut wheel = TimerWheel::new(0);
            wheel.insert(deadline, ());
            // Step one tick at a time up to the deadline for small ones, in one jump otherwise.
            if deadline <= 1000 {
                for now in 0..deadline {
                    assert!(advance(&mut wheel, now).is_empty(), "fired at {now}");
                }
            } else {
                assert!(advance(&mut wheel, deadline - 1).is_empty());
            }
            assert_eq!(advance(&mut wheel, deadline).len(), 1);
        }
    }

    #[test]
    fn overdue_deadline_fires_on_next_advance() {
        let mut wheel = TimerWheel::new(100);
        let keys = [
            wheel.insert(50, 'a'),
            wheel.insert(20, 'b'),
            wheel.insert(100, 'c'),
            wheel.insert(20, 'd'),
            wheel.insert(0, 'e'),
        ];
        check(&wheel);
        assert_eq!(wheel.next_deadline(), Some(0));
        // An earlier `now` does not move time backward but still fires the overdue timers,
        // sorted by deadline, ties in insertion order.
        let fired = advance(&mut wheel, 7);
        assert_eq!(values(&fired), ['e', 'b', 'd', 'a', 'c']);
        assert_eq!(fired[0].0, keys[4]);
        assert_eq!(wheel.now(), 100);
        assert!(wheel.is_empty());

        let key = wheel.insert(100, 'f');
        assert_eq!(wheel.next_deadline(), Some(100));
        assert_eq!(advance(&mut wheel, 100), vec![(key, 'f')]);
    }

    #[test]
    fn overdue_fire_before_due_ones() {
        let mut wheel = TimerWheel::new(10);
        wheel.insert(11, 2);
        wheel.insert(3, 1);
        wheel.insert(12, 3);
        assert_eq!(values(&advance(&mut wheel, 20)), [1, 2, 3]);
    }

    #[test]
    fn order_by_deadline_ties_by_insertion() {
        let mut rng = Rng(0x5eed);
        let mut wheel = TimerWheel::new(0);
        let mut expected = Vec::new();
        for i in 0..2000u64 {
            // Few distinct deadlines spread over every level, so ties are frequent.
            let deadline = match rng.below(4) {
                0 => rng.below(8),
                1 => rng.below(8) << 10,
                2 => rng.below(8) << 25,
                _ => rng.below(8) << 37,
            };
            wheel.insert(deadline, i);
            expected.push((deadline, i));
        }
        expected.sort();
        let fired = advance(&mut wheel, u64::MAX);
        let expected: Vec<u64> = expected.into_iter().map(|(_, i)| i).collect();
        assert_eq!(values(&fired), expected);
    }

    #[test]
    fn ties_keep_insertion_order_across_cascades() {
        // `a` waits in level 1 and cascades into the level-0 slot that `b` is inserted into
        // directly; `c` waits in overflow and `d` in level 5 for the same deadline.
        let mut wheel = TimerWheel::new(0);
        let a = wheel.insert(100, 'a');
        advance(&mut wheel, 70);
        let b = wheel.insert(100, 'b');
        assert_eq!(advance(&mut wheel, 100), vec![(a, 'a'), (b, 'b')]);

        let far = (1 << 36) + (1 << 31) + 7;
        wheel.insert(far, 'c');
        advance(&mut wheel, 1 << 36);
        wheel.insert(far, 'd');
        advance(&mut wheel, far - 1);
        wheel.insert(far, 'e');
        assert_eq!(values(&advance(&mut wheel, far)), ['c', 'd', 'e']);
    }

    #[test]
    fn cancel_before_fire() {
        let mut wheel = TimerWheel::new(0);
        let keep = wheel.insert(64, 1);
        let gone = wheel.insert(64, 2);
        let far = wheel.insert(1 << 40, 3);
        let overdue = wheel.insert(0, 4);
        assert_eq!(wheel.cancel(gone), Some(2));
        assert_eq!(wheel.cancel(far), Some(3));
        assert_eq!(wheel.cancel(overdue), Some(4));
        assert!(!wheel.contains(gone));
        check(&wheel);
        assert_eq!(advance(&mut wheel, u64::MAX), vec![(keep, 1)]);
    }

    #[test]
    fn cancel_after_fire_returns_none() {
        let mut wheel = TimerWheel::new(0);
        let key = wheel.insert(3, "x");
        assert_eq!(advance(&mut wheel, 3).len(), 1);
        assert_eq!(wheel.cancel(key), None);
        assert!(!wheel.contains(key));
        check(&wheel);
    }

    #[test]
    fn stale_key_after_slot_reuse() {
        let mut wheel = TimerWheel::new(0);
        let old = wheel.insert(10, 1);
        assert_eq!(wheel.cancel(old), Some(1));
        let new = wheel.insert(10, 2);
        assert_eq!(new.index, old.index, "the slab entry is reused");
        assert_ne!(new, old);
        assert!(!wheel.contains(old));
        assert_eq!(wheel.cancel(old), None);
        assert!(wheel.contains(new));
        assert_eq!(advance(&mut wheel, 10), vec![(new, 2)]);
        // Reuse after firing too.
        let newer = wheel.insert(20, 3);
        assert_eq!(newer.index, old.index);
        assert_eq!(wheel.cancel(new), None);
        assert_eq!(wheel.cancel(newer), Some(3));
    }

    #[test]
    fn slab_is_reused() {
        let mut wheel = TimerWheel::new(0);
        let mut fired = Vec::new();
        for round in 0..100u64 {
            let keys: Vec<_> = (0..16).map(|i| wheel.insert(round * 100 + i, i)).collect();
            for key in keys.iter().step_by(2) {
                wheel.cancel(*key);
            }
            fired.clear();
            wheel.advance(round * 100 + 99, &mut fired);
            assert_eq!(fired.len(), 8);
        }
        assert_eq!(wheel.entries.len(), 16);
    }

    #[test]
    fn cascade_across_every_level_boundary() {
        for start in [
            0,
            1,
            63,
            64,
            4095,
            12_345,
            (1 << 36) - 1,
            1 << 36,
            u64::MAX - (1 << 37),
        ] {
            for offset in BOUNDARIES {
                let deadline = start + offset;
                let mut wheel = TimerWheel::new(start);
                let key = wheel.insert(deadline, offset);
                check(&wheel);
                assert!(wheel.next_deadline().unwrap() <= deadline);
                assert!(
                    advance(&mut wheel, deadline - 1).is_empty(),
                    "{start}+{offset}"
                );
                assert_eq!(wheel.next_deadline(), Some(deadline), "exact once close");
                assert_eq!(advance(&mut wheel, deadline), vec![(key, offset)]);
            }
            // All of them in one wheel: each fires exactly at its deadline.
            let mut wheel = TimerWheel::new(start);
            for offset in BOUNDARIES {
                wheel.insert(start + offset, offset);
            }
            for offset in BOUNDARIES {
                assert!(advance(&mut wheel, start + offset - 1).is_empty());
                assert_eq!(values(&advance(&mut wheel, start + offset)), [offset]);
            }
            // And in one jump, in order.
            let mut wheel = TimerWheel::new(start);
            for offset in BOUNDARIES.iter().rev() {
                wheel.insert(start + offset, *offset);
            }
            assert_eq!(values(&advance(&mut wheel, start + (1 << 37))), BOUNDARIES);
        }
    }

    #[test]
    fn next_deadline_steps_reach_every_timer() {
        // Jumping to `next_deadline()` never overshoots a timer and reaches each one within
        // 7 jumps (one per level plus the overflow list).
        let mut wheel = TimerWheel::new(0);
        let mut deadlines: Vec<u64> = BOUNDARIES.to_vec();
        deadlines.extend([1 << 50, u64::MAX]);
        for &deadline in &deadlines {
            wheel.insert(deadline, deadline);
        }
        for &deadline in &deadlines {
            let mut jumps = 0;
            loop {
                let bound = wheel.next_deadline().unwrap();
                assert!(bound <= deadline && bound > wheel.now());
                let fired = advance(&mut wheel, bound);
                jumps += 1;
                if !fired.is_empty() {
                    assert_eq!(values(&fired), [deadline]);
                    assert_eq!(wheel.now(), deadline);
                    break;
                }
                assert!(jumps < 7, "no progress towards {deadline}");
            }
        }
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn long_jump_advance() {
        let mut wheel = TimerWheel::new(0);
        for deadline in [5, 999_999, 1_000_000, 1_000_001] {
            wheel.insert(deadline, deadline);
        }
        assert_eq!(
            values(&advance(&mut wheel, 1_000_000)),
            [5, 999_999, 1_000_000]
        );
        assert_eq!(wheel.now(), 1_000_000);
        assert_eq!(wheel.len(), 1);
        // A per-tick loop would never finish these.
        wheel.insert(1 << 62, 1 << 62);
        wheel.insert(u64::MAX, u64::MAX);
        assert!(advance(&mut wheel, (1 << 62) - 1).len() == 1);
        assert_eq!(values(&advance(&mut wheel, u64::MAX)), [1 << 62, u64::MAX]);
        assert_eq!(wheel.now(), u64::MAX);
        // At the end of time, everything is overdue.
        wheel.insert(u64::MAX, 0);
        assert_eq!(values(&advance(&mut wheel, u64::MAX)), [0]);
    }

    #[test]
    fn destructors() {
        let token = Rc::new(());
        let mut wheel = TimerWheel::new(0);
        let cancelled = wheel.insert(5, Rc::clone(&token));
        wheel.insert(10, Rc::clone(&token));
        wheel.insert(1 << 20, Rc::clone(&token));
        wheel.insert(1 << 40, Rc::clone(&token));
        wheel.insert(0, Rc::clone(&token));
        assert_eq!(Rc::strong_count(&token), 6);
        drop(wheel.cancel(cancelled));
        assert_eq!(Rc::strong_count(&token), 5);
        drop(advance(&mut wheel, 10));
        assert_eq!(Rc::strong_count(&token), 3);
        drop(wheel);
        assert_eq!(Rc::strong_count(&token), 1);
    }

    /// A random deadline around `now`: overdue, near, far, beyond the wheel, on a boundary, or
    /// equal to a pending one.
    fn random_deadline(rng: &mut Rng, now: u64, model: &BTreeMap<(u64, u64), TimerKey>) -> u64 {
        match rng.below(20) {
            0 | 1 => now.saturating_sub(rng.below(1000)),
            2..=7 => now.saturating_add(rng.below(64)),
            8..=11 => now.saturating_add(rng.below(1 << 14)),
            12..=14 => now.saturating_add(rng.below(1 << 26)),
            15 | 16 => now.saturating_add(rng.below(1 << 40)),
            17 => {
                let width = 1u64 << (LEVEL_BITS * (1 + rng.below(6) as u32));
                (now | (width - 1)).saturating_add(rng.below(3))
            }
            _ if model.is_empty() => now.saturating_add(1),
            _ => {
                let n = rng.below(model.len() as u64) as usize;
                model.keys().nth(n).unwrap().0
            }
        }
    }

    /// Random inserts, cancels and advances against a `BTreeMap` model keyed by
    /// `(deadline, insertion number)`: the fired sequences, `len`, `contains` and `now` must
    /// match exactly, and `next_deadline` must never be later than the true earliest deadline.
    #[test]
    fn matches_reference_model() {
        let starts = [0, (1 << 36) - 7, 0x1234_5678_9abc, u64::MAX - (1 << 44)];
        for (seed, start) in starts.into_iter().enumerate() {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed as u64);
            let mut wheel = TimerWheel::new(start);
            let mut model: BTreeMap<(u64, u64), TimerKey> = BTreeMap::new();
            let mut ids: HashMap<TimerKey, (u64, u64)> = HashMap::new();
            let mut dead: Vec<TimerKey> = Vec::new();
            let mut now = start;
            let mut fired = Vec::new();
            for seq in 0..10_000u64 {
                match rng.below(100) {
                    0..=47 => {
                        let deadline = random_deadline(&mut rng, now, &model);
                        let key = wheel.insert(deadline, seq * 100);
                        assert!(
                            ids.insert(key, (deadline, seq * 100)).is_none(),
                            "key reused"
                        );
                        model.insert((deadline, seq * 100), key);
                    }
                    48..=49 => {
                        // A burst, so that slots hold many timers at once.
                        for i in 0..64 {
                            let value = seq * 100 + i;
                            let deadline = random_deadline(&mut rng, now, &model);
                            let key = wheel.insert(deadline, value);
                            assert!(ids.insert(key, (deadline, value)).is_none(), "key reused");
                            model.insert((deadline, value), key);
                        }
                    }
                    50..=69 => {
                        if !model.is_empty() && rng.below(5) != 0 {
                            let n = rng.below(model.len() as u64) as usize;
                            let (&id, &key) = model.iter().nth(n).unwrap();
                            model.remove(&id);
                            ids.remove(&key);
                            assert_eq!(wheel.cancel(key), Some(id.1));
                            dead.push(key);
                        } else if !dead.is_empty() {
                            let key = dead[rng.below(dead.len() as u64) as usize];
                            assert!(!wheel.contains(key));
                            assert_eq!(wheel.cancel(key), None);
                        }
                    }
                    70..=94 => {
                        // Mostly short steps, so that many timers are pending at once.
                        let to = match rng.below(40) {
                            0 => now.saturating_sub(rng.below(100)),
                            1..=24 => now.saturating_add(rng.below(64)),
                            25..=32 => now.saturating_add(rng.below(1 << 14)),
                            33..=35 => now.saturating_add(rng.below(1 << 24)),
                            36 => now.saturating_add(rng.below(1 << 40)),
                            _ => wheel.next_deadline().unwrap_or(now),
                        };
                        now = now.max(to);
                        fired.clear();
                        wheel.advance(to, &mut fired);
                        let mut expected = Vec::new();
                        while let Some(entry) = model.first_entry() {
                            if entry.key().0 > now {
                                break;
                            }
                            let ((_, value), key) = entry.remove_entry();
                            ids.remove(&key);
                            dead.push(key);
                            expected.push((key, value));
                        }
                        assert_eq!(fired, expected, "seed {seed} op {seq} advance to {to}");
                        assert_eq!(wheel.now(), now);
                    }
                    _ => {
                        for (&(_, value), &key) in model.iter().take(8) {
                            assert!(wheel.contains(key), "pending timer {value} missing");
                        }
                    }
                }
                check(&wheel);
                assert_eq!(wheel.len(), model.len());
                match (wheel.next_deadline(), model.keys().next()) {
                    (None, None) => {}
                    (Some(bound), Some(&(earliest, _))) => {
                        assert!(bound <= earliest, "bound {bound} after earliest {earliest}");
                        if earliest > now {
                            assert!(bound > now, "bound {bound} not after now {now}");
                        }
                    }
                    (bound, earliest) => panic!("next_deadline {bound:?} vs model {earliest:?}"),
                }
            }
        }
    }
}
