//! The shard loop's real clock: the CPU's time-stamp counter, anchored on the monotonic clock.
//!
//! A shard reads the clock once per actor turn (processing-time statistics, the cached clock
//! that timers and mailbox-wait stamps use). `Instant::now` costs ~28 ns on the reference
//! machine (vDSO `clock_gettime`, then the `Timespec` arithmetic), a quarter of a whole
//! same-shard hop of the thread-ring benchmark; `rdtsc` costs ~11 ns. So on x86-64 CPUs whose
//! counter ticks at a constant rate in every power state (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`) the shard extrapolates from the counter:
//!
//! * once per process, [`calibration`] measures nanoseconds per tick against `Instant` over
//!   ~2 ms (two samples 2 ms apart, each bracketed by counter reads; a sample whose bracket is
//!   wider than a few microseconds, because the thread was preempted, is taken again);
//! * each shard keeps an *anchor*, a pair (counter, `Instant` nanoseconds) read together, and
//!   answers `anchor_ns + (counter - anchor_counter) * ns_per_tick`;
//! * the anchor is renewed from `Instant` once the counter has moved by about 1 ms since the
//!   last one, or when it moved backwards (a thread moved to a CPU whose counter lags), so the
//!   error of the rate never accumulates beyond what 1 ms of extrapolation makes of it
//!   (~30 ppm of 1 ms: tens of nanoseconds).
//!
//! Elsewhere (other architectures, a counter without those flags, a calibration that gives an
//! implausible rate) every read is `Instant`. The shard keeps its cached clock monotonic itself
//! (`ShardLocal::refresh_clock` takes the maximum), so a renewed anchor that lands a few
//! nanoseconds below the extrapolated value never makes time run backwards.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the counter is extrapolated before the anchor is renewed from `Instant`.
const REANCHOR_NS: u64 = 1_000_000;

/// Nanoseconds per counter tick in 32.32 fixed point, and the ticks in [`REANCHOR_NS`].
#[derive(Clone, Copy, Debug)]
struct Rate {
    ns_per_tick_q32: u64,
    reanchor_ticks: u64,
}

/// The process-wide counter rate, or `None` where the counter must not be used.
fn calibration() -> Option<Rate> {
    static RATE: OnceLock<Option<Rate>> = OnceLock::new();
    *RATE.get_or_init(calibrate)
}

#[cfg(all(target_arch = "x86_64", not(coreactor_loom)))]
#[inline]
fn counter() -> u64 {
    // `rdtsc` is not serialising: it may read the counter a few cycles early or late relative
    // to neighbouring instructions, far below the nanosecond resolution needed here.
    // SAFETY: `rdtsc` exists on every x86-64 CPU, touches no memory and has no preconditions;
    // the one way it can fault, a process that made it trap with `prctl(PR_SET_TSC,
    // PR_TSC_SIGSEGV)`, is ruled out before any read: `calibrate` checks `PR_GET_TSC` and
    // leaves the counter unused unless it is enabled (a later switch by the same process is
    // not supported).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(all(target_arch = "x86_64", not(coreactor_loom))))]
#[inline]
fn counter() -> u64 {
    0
}

#[cfg(all(target_arch = "x86_64", not(coreactor_loom)))]
fn counter_is_invariant() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else {
        return false;
    };
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        return false;
    }
    let mut state: libc::c_int = 0;
    // SAFETY: PR_GET_TSC stores the process's TSC mode into the `c_int` its second argument
    // points to; `state` is such an int, alive for the call.
    let ok = unsafe { libc::prctl(libc::PR_GET_TSC, &raw mut state) } == 0;
    ok && state == libc::PR_TSC_ENABLE
}

#[cfg(not(all(target_arch = "x86_64", not(coreactor_loom))))]
fn counter_is_invariant() -> bool {
    false
}

/// One (counter, instant) pair read together: the counter is read before and after the
/// instant, and the pair is taken again while the two reads are more than 10 000 ticks apart
/// (about 3 µs at 3 GHz: the thread was preempted or interrupted between them).
fn sample_pair() -> Option<(u64, Instant)> {
    for _ in 0..100 {
        let before = counter();
        let now = Instant::now();
        let after = counter();
        if after >= before && after - before < 10_000 {
            return Some((before + (after - before) / 2, now));
        }
    }
    None
}

fn calibrate() -> Option<Rate> {
    if std::env::var_os("COREACTOR_NO_TSC").is_some() || !counter_is_invariant() {
        return None;
    }
    let (c0, t0) = sample_pair()?;
    std::thread::sleep(Duration::from_millis(2));
    let (c1, t1) = sample_pair()?;
    let ticks = c1.checked_sub(c0)?;
    let ns = u64::try_from(t1.duration_since(t0).as_nanos()).ok()?;
    // A plausible counter runs between 100 MHz and 20 GHz.
    if ns == 0 || ticks < ns / 10 || ticks > ns.saturating_mul(20) {
        return None;
    }
    let ns_per_tick_q32 = u64::try_from((u128::from(ns) << 32) / u128::from(ticks)).ok()?;
    let reanchor_ticks =
        u64::try_from((u128::from(REANCHOR_NS) << 32) / u128::from(ns_per_tick_q32)).ok()?;
    Some(Rate {
        ns_per_tick_q32,
        reanchor_ticks,
    })
}

/// A shard's real clock: nanoseconds since `epoch`, from the counter where it can be trusted.
/// Owned by one shard thread (`Cell`s, not `Sync`).
pub(crate) struct ShardClock {
    epoch: Instant,
    rate: Option<Rate>,
    anchor_counter: Cell<u64>,
    anchor_ns: Cell<u64>,
}

impl ShardClock {
    /// A clock counting from `epoch` (the runtime's start).
    pub(crate) fn new(epoch: Instant) -> Self {
        let clock = ShardClock {
            epoch,
            rate: calibration(),
            anchor_counter: Cell::new(0),
            anchor_ns: Cell::new(0),
        };
        if clock.rate.is_some() {
            clock.reanchor();
        }
        clock
    }

    /// True if reads extrapolate from the time-stamp counter.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn uses_counter(&self) -> bool {
        self.rate.is_some()
    }

    fn instant_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn reanchor(&self) -> u64 {
        let Some((c, t)) = sample_pair() else {
            return self.instant_ns();
        };
        let ns = u64::try_from(t.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.anchor_counter.set(c);
        self.anchor_ns.set(ns);
        ns
    }

    /// Nanoseconds since the epoch. Not monotonic across a renewed anchor by a few
    /// nanoseconds; the caller keeps its cached clock monotonic.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        let Some(rate) = self.rate else {
            return self.instant_ns();
        };
        let ticks = counter().wrapping_sub(self.anchor_counter.get());
        // Also true when the counter went backwards (huge wrapped difference).
        if ticks >= rate.reanchor_ticks {
            return self.reanchor();
        }
        let ns = (u128::from(ticks) * u128::from(rate.ns_per_tick_q32)) >> 32;
        self.anchor_ns.get() + ns as u64
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_monotonic_clock() {
        let epoch = Instant::now();
        let clock = ShardClock::new(epoch);
        // Where the counter can be trusted (the CI machine) it is what this test exercises.
        if std::env::var_os("COREACTOR_NO_TSC").is_none() {
            assert_eq!(clock.uses_counter(), counter_is_invariant());
        }
        // Over 30 ms of reads the clock stays within 200 µs of `Instant` (it is extrapolated at
        // most ~1 ms at a time; the bound is loose so a preempted test thread cannot fail it).
        let start = Instant::now();
        let mut last = 0;
        let mut reads = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            let before = u64::try_from(epoch.elapsed().as_nanos()).unwrap();
            let ns = clock.now_ns();
            let after = u64::try_from(epoch.elapsed().as_nanos()).unwrap();
            assert!(ns + 200_000 >= before, "{ns} far below {before}");
            assert!(ns <= after + 200_000, "{ns} far above {after}");
            last = last.max(ns);
            reads += 1;
        }
        assert!(reads > 1000);
        // One more read, after the loop saw 30 ms pass since `start` (itself after `epoch`):
        // the clock advanced at least that far. (Not `last`: the loop's final read may come
        // well before 30 ms if the thread is preempted before the loop's own check.)
        let end = clock.now_ns().max(last);
        assert!(
            end + 200_000 >= 30_000_000,
            "clock advanced only {end} ns in 30 ms"
        );
    }

    #[test]
    fn the_rate_is_plausible_when_used() {
        if let Some(rate) = calibration() {
            // 100 MHz .. 20 GHz, as calibrate() checks.
            assert!(rate.ns_per_tick_q32 <= 10 << 32);
            assert!(rate.ns_per_tick_q32 >= (1 << 32) / 20);
            assert!(rate.reanchor_ticks > 0);
        }
    }
}
