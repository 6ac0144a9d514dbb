//! Per-shard timers: a hierarchical timer wheel.
//!
//! Each shard owns one [`TimerWheel`]. It drives ask timeouts, init/shutdown timeouts,
//! `send_after` and intervals. The wheel knows nothing of real time: time is a `u64` tick count
//! that the owner moves forward with [`TimerWheel::advance`] (the shard from its clock, the test
//! kit from a virtual clock), so every behaviour here is deterministic.
//!
//! The wheel is owned by one shard thread and is never shared: it uses no atomics, no locks and
//! no `unsafe` code.
//!
//! # Structure
//!
//! * **Slab.** Every pending timer is an entry in a `Vec` with a free list. A [`TimerKey`] is the
//!   entry's index plus a generation that is bumped each time the entry is freed, so a key whose
//!   timer already fired or was cancelled is recognised as stale, even after the entry is reused.
//!   Freed entries are reused, so in the steady state `insert` does not allocate.
//! * **Levels.** 6 levels of 64 slots. A slot of level `L` spans `64^L` ticks, so level 0 has
//!   one-tick slots and the wheel as a whole spans `2^36` ticks. Each slot is an intrusive doubly
//!   linked list threaded through slab indices, so `insert` and `cancel` are O(1).
//! * **Occupancy bitmaps.** One `u64` per level, bit `s` set iff slot `s` is non-empty. Finding
//!   the next slot to process is a `trailing_zeros`, so advancing across an idle gap of any
//!   length costs O(levels) per non-empty slot met, never one step per tick.
//! * **Expired list.** A timer inserted with `deadline <= now()` waits in a separate list and
//!   fires at the next `advance`, sorted by deadline (then insertion order) among themselves.
//! * **Overflow list.** A timer whose deadline lies outside the current aligned `2^36`-tick
//!   block waits in an overflow list. When time reaches the block that holds the earliest
//!   overflow deadline, the list is re-examined: timers of that block move into the wheel, the
//!   others stay.
//!
//! # Invariants
//!
//! Let `now` be [`TimerWheel::now`] between two calls. Write `level(now, d)` for the index of the
//! highest 6-bit group in which `now` and `d` differ (0 when they agree on all groups but the
//! lowest; 6 or more when they differ above bit 35).
//!
//! 1. A pending timer with `d <= now` is in the expired list; every other pending timer sits in
//!    slot `(d >> 6L) & 63` of level `L = level(now, d)`, or in the overflow list when
//!    `L >= 6`. Hence every wheel slot at or below the current position of its level is empty,
//!    all timers of level `L - 1` are earlier than all timers of level `L`, and all timers with
//!    the same deadline are in the same list.
//! 2. Lists are in insertion order, and moving a list down a level (cascading) keeps its order,
//!    so timers with equal deadlines fire in insertion order.
//! 3. Each list records a lower bound of its deadlines: the least deadline pushed since it was
//!    last empty. It is exact for a level-0 slot (all its timers share one deadline) and may be
//!    stale (too early) for other lists after a cancellation; it resets when the list empties.
//! 4. Bit `s` of level `L`'s bitmap is set iff slot `s` of level `L` is non-empty.
//!
//! # Advancing
//!
//! `advance(t)` first fires the expired list, then repeats: find the next event, the start of
//! the first non-empty slot of the lowest non-empty level (or, with an empty wheel, the start of
//! the block holding the earliest overflow deadline); stop if it is later than `t`; otherwise
//! move `now` to it and re-place every timer of that slot relative to the new `now`. A timer
//! whose deadline equals the new `now` fires; the others land in a lower level (or back in the
//! overflow list). Level-0 slots hold only timers due at their start, so processing one fires
//! it whole. Events are processed in time order, hence timers fire in deadline order. Finally
//! `now` becomes `t`, which keeps invariant 1 because no slot starts in between.

#![deny(unsafe_code)]

pub(crate) mod wheel;

pub(crate) use wheel::{TimerKey, TimerWheel};
