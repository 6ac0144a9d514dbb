//! A counting global allocator for the comparison binary, switched on only around the
//! allocation windows, so that the throughput and latency runs pay a single relaxed load per
//! allocation (no shared counter line bouncing between the two cores).
//!
//! It counts every thread's `alloc`, `alloc_zeroed` and `realloc` calls and bytes while
//! [`enable`] is in force. The allocation workload reads the counters around a window of `K`
//! messages and around an empty window, and reports the difference per message (the method of
//! `benches/alloc.rs`, which counts always and by size; this one is a smaller, gated copy since
//! a bench binary can have only one global allocator).

// The library reaches atomics only through its loom shim (`src/sync`); a bench binary's global
// allocator needs plain static counters.
#![allow(clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Starts or stops counting. SeqCst on both sides, so that a window's reads (also SeqCst)
/// see every count made between the `enable(true)` and the read.
pub fn enable(on: bool) {
    ON.store(on, Ordering::SeqCst);
}

/// `(calls, bytes)` counted so far.
pub fn read() -> (u64, u64) {
    (CALLS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

#[inline]
fn count(bytes: usize) {
    if ON.load(Ordering::Relaxed) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The system allocator, counting while enabled.
pub struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded contract of `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded contract of `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded contract of `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}
