//! The one door to concurrency primitives.
//!
//! Every atomic, `UnsafeCell`, spin hint, thread spawn and blocking wait that the runtime uses
//! comes from this module. Under `--cfg coreactor_loom` it re-exports [loom]'s model-checked
//! versions instead of the standard library's, so the loom models in `loom-tests/` and in the
//! `#[cfg(all(test, coreactor_loom))]` modules check the production code itself, not a copy.
//!
//! The std side is given loom's API (`UnsafeCell::with` / `with_mut`) so that callers compile
//! unchanged under both configurations. `.clippy.toml` forbids the std types everywhere else.
//!
//! [loom]: https://docs.rs/loom

#![allow(clippy::disallowed_types, clippy::disallowed_methods, unused_imports)]

#[cfg(not(coreactor_loom))]
mod imp {
    pub(crate) mod atomic {
        // Aliases, not `use` re-exports: clippy's `disallowed_types` sees through a re-export
        // and would flag every use of `crate::sync::atomic::*` outside this module, while an
        // alias lets `.clippy.toml` ban the std types everywhere else.
        pub(crate) use std::sync::atomic::{Ordering, fence};
        pub(crate) type AtomicBool = std::sync::atomic::AtomicBool;
        pub(crate) type AtomicU8 = std::sync::atomic::AtomicU8;
        pub(crate) type AtomicU32 = std::sync::atomic::AtomicU32;
        pub(crate) type AtomicU64 = std::sync::atomic::AtomicU64;
        pub(crate) type AtomicUsize = std::sync::atomic::AtomicUsize;
    }

    pub(crate) use std::sync::Arc;
    // Used by the loom stand-ins; the std build keeps the names for symmetry.
    #[allow(dead_code)]
    pub(crate) type Mutex<T> = std::sync::Mutex<T>;
    #[allow(dead_code)]
    pub(crate) type Condvar = std::sync::Condvar;

    pub(crate) mod thread {
        pub(crate) use std::thread::{
            Builder, JoinHandle, Thread, current, park, park_timeout, yield_now,
        };
    }

    /// Spin-wait hint (`pause` on x86).
    #[inline]
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }

    /// The start of every 64-byte cache line that the `T` at `p` covers (at least one).
    #[inline]
    fn lines<T>(p: *const T) -> impl Iterator<Item = *const u8> {
        let first = p.cast::<u8>();
        // A type aligned to a line starts one: the count is then a constant (the hot callers).
        let skip = if core::mem::align_of::<T>() >= 64 {
            0
        } else {
            first.addr() % 64
        };
        let count = (skip + core::mem::size_of::<T>().max(1)).div_ceil(64);
        (0..count).map(move |i| first.wrapping_sub(skip).wrapping_add(i * 64))
    }

    /// True if the CPU has `prefetchw` (CPUID leaf 0x8000_0001, ECX bit 8, "PRFCHW"). CPUID is
    /// asked on the first call; after it, one relaxed load and a compare (a `OnceLock` had cost
    /// a call per outside send). Racing first calls all store the same answer.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn has_prefetchw() -> bool {
        use std::sync::atomic::{AtomicU8, Ordering};
        /// 0: not asked yet; 1: no; 2: yes.
        static HAS: AtomicU8 = AtomicU8::new(0);
        #[cold]
        fn ask() -> bool {
            use core::arch::x86_64::__cpuid;
            let has =
                __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0;
            HAS.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
        match HAS.load(Ordering::Relaxed) {
            0 => ask(),
            known => known == 2,
        }
    }

    /// Hint that the `T` at `p` will be written soon: `prefetchw` of every line it covers on
    /// x86_64 CPUs that have it (fetches the lines in exclusive state, so the writes and a
    /// fence after them do not wait for another core to give them up), nothing elsewhere. Not
    /// a memory access.
    #[inline]
    pub(crate) fn prefetch_write<T>(p: *const T) {
        #[cfg(target_arch = "x86_64")]
        if has_prefetchw() {
            for line in lines(p) {
                // SAFETY: `prefetchw` is a cache hint with no architectural effect: it does
                // not fault on any address, writes nothing and is not an access in the memory
                // model; it runs only where CPUID reports it (elsewhere its opcode may be
                // undefined).
                unsafe {
                    core::arch::asm!(
                        "prefetchw [{0}]",
                        in(reg) line,
                        options(nostack, preserves_flags, readonly)
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// Hint that the `T` at `p` will be read soon: `prefetcht0` of every line it covers on
    /// x86_64, nothing elsewhere. Not a memory access.
    #[inline]
    pub(crate) fn prefetch_read<T>(p: *const T) {
        #[cfg(target_arch = "x86_64")]
        for line in lines(p) {
            // SAFETY: `prefetcht0` (SSE, present on every x86_64 CPU) is a cache hint with no
            // architectural effect: it does not fault on any address, writes nothing and is
            // not an access in the memory model.
            unsafe {
                core::arch::asm!(
                    "prefetcht0 [{0}]",
                    in(reg) line,
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    #[cfg(test)]
    mod prefetch_tests {
        use super::lines;

        #[test]
        fn lines_cover_the_value_wherever_it_starts() {
            #[repr(C, align(64))]
            struct Buf([u8; 256]);
            let buf = Buf([0; 256]);
            let at = |off: usize| buf.0.as_ptr().wrapping_add(off);
            let starts = |p: *const u8, n: usize| -> Vec<usize> {
                lines(p.cast::<[u8; 96]>())
                    .take(n + 1)
                    .map(|l| l.addr() - at(0).addr())
                    .collect()
            };
            assert_eq!(starts(at(0), 2), vec![0, 64], "96 bytes from a line start");
            assert_eq!(starts(at(32), 2), vec![0, 64], "96 bytes from mid-line");
            assert_eq!(
                starts(at(48), 3),
                vec![0, 64, 128],
                "96 bytes over three lines"
            );
            let one: Vec<_> = lines(at(10).cast::<()>()).collect();
            assert_eq!(one, vec![at(0)], "a zero-sized value still names its line");
        }
    }

    /// A cell whose contents the owner mutates through raw pointers, with loom's API.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared raw pointer to the contents.
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with an exclusive raw pointer to the contents.
        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(coreactor_loom)]
mod imp {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }

    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::{Arc, Condvar, Mutex};

    pub(crate) mod thread {
        pub(crate) use loom::thread::{JoinHandle, Thread, current, park, yield_now};
        /// Shard threads are never started inside a loom model; the runtime keeps compiling.
        pub(crate) use std::thread::Builder;

        /// loom has no timed park: a timed wait is modelled as an untimed one, which is the
        /// stricter case (the timeout never rescues a lost wake-up).
        pub(crate) fn park_timeout(_dur: std::time::Duration) {
            park();
        }
    }

    /// Under loom a spin is a yield point, so spin loops terminate in the model.
    #[inline]
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }

    /// A cache hint: nothing to model.
    #[inline]
    pub(crate) fn prefetch_write<T>(_p: *const T) {}

    /// A cache hint: nothing to model.
    #[inline]
    pub(crate) fn prefetch_read<T>(_p: *const T) {}
}

pub(crate) use imp::*;

/// How a thread outside the runtime waits for room (a full mailbox, a full injection lane)
/// between two attempts: it spins for 64 attempts, then yields its CPU for up to 200 µs (a yield
/// returns at once when nothing else wants the CPU, so a shard that frees room within that time
/// is seen within a microsecond), then naps 50 µs at a time.
///
/// Napping sooner cost throughput: with a bounded mailbox refilled every ~100 µs, a sender that
/// napped after 128 attempts slept through most of each refill (outside tell into a 4 096-message
/// mailbox: 7.5 M msgs/s in two runs of three, 16 M in the third; `docs/benchmarks.md`).
pub(crate) struct Backoff {
    attempts: u32,
    yielding_since: Option<std::time::Instant>,
}

impl Backoff {
    const SPINS: u32 = 64;
    const YIELD_FOR: std::time::Duration = std::time::Duration::from_micros(200);
    const NAP: std::time::Duration = std::time::Duration::from_micros(50);

    /// A fresh backoff (starts with spinning).
    pub(crate) const fn new() -> Self {
        Backoff {
            attempts: 0,
            yielding_since: None,
        }
    }

    /// Waits before the next attempt.
    pub(crate) fn snooze(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts < Self::SPINS || cfg!(coreactor_loom) {
            // Under loom a spin is a yield, and time is not modelled.
            spin_loop();
            return;
        }
        let since = *self
            .yielding_since
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < Self::YIELD_FOR {
            thread::yield_now();
        } else {
            thread::park_timeout(Self::NAP);
        }
    }
}

/// A statistics counter (shard and actor counters): written by its shard thread (or bumped by
/// senders), read as a `Relaxed` snapshot by others. No protocol relies on its value, so it is
/// the std atomic under loom too: a modelled access would be one more point where loom explores
/// a preemption, and the reactor-loop models (`loom-tests/steal.rs`) bump dozens per run.
pub(crate) type StatU64 = std::sync::atomic::AtomicU64;

/// Declares a thread-local `Cell<$ty>` (`static NAME: Cell<T> = init;`).
///
/// On std it is a `const`-initialised `thread_local!` (no lazy-init check on access); under
/// loom it is `loom::thread_local!`, because loom runs every model thread on one OS thread: a
/// std thread-local would be shared by all of them, and a shard's "current shard" pointer
/// would leak into the other model threads.
#[cfg(not(coreactor_loom))]
macro_rules! thread_local_cell {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        std::thread_local! {
            $(#[$attr])*
            static $name: std::cell::Cell<$ty> = const { std::cell::Cell::new($init) };
        }
    };
}

#[cfg(coreactor_loom)]
macro_rules! thread_local_cell {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        loom::thread_local! {
            $(#[$attr])*
            static $name: std::cell::Cell<$ty> = std::cell::Cell::new($init);
        }
    };
}

pub(crate) use thread_local_cell;
