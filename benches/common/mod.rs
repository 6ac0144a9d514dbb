//! Harness pieces shared by the benchmarks: CI mode, CPU pinning, persistent pinned threads for
//! the baselines, the work item of the "busy" loads, and percentile tables.
//!
//! Each bench binary includes this file with `mod common;` and uses a different subset of it.

#![allow(dead_code)] // each bench binary uses a subset

pub mod actors;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// True when the `CI` environment variable is set (to anything but an empty string): benches
/// then make a short smoke run that checks the numbers are sane, never their values.
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Pins the calling thread to `cpu`; false if the OS refused (or the CPU does not exist).
pub fn pin_current(cpu: usize) -> bool {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == cpu))
        .is_some_and(core_affinity::set_for_current)
}

/// Number of CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Spawns a named thread pinned to `cpu` (best effort) running `f`.
pub fn spawn_pinned<T, F>(name: &str, cpu: usize, f: F) -> std::thread::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            pin_current(cpu);
            f()
        })
        .expect("spawn a bench thread")
}

/// Runs `f` on a fresh thread pinned to `cpu` and returns its result (so that the "outside
/// thread" of a measurement sits on a known CPU, not wherever the bench's main thread is).
pub fn run_pinned<T, F>(cpu: usize, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_pinned("bench-outside", cpu, f)
        .join()
        .expect("bench thread panicked")
}

/// Iterations of the multiply-add chain in one work item of the background load (the latency
/// bench prints what one item costs on the machine it runs on).
pub const WORK_ITERS: u64 = 16;

/// One small work item of the background load: a dependent multiply-add chain the optimiser
/// can neither remove nor fold (the multiplier is opaque to it; with a constant multiplier LLVM
/// folds the whole chain into one multiply-add).
#[inline(never)]
pub fn work_item(acc: &mut u64) {
    let m = std::hint::black_box(6_364_136_223_846_793_005u64);
    let mut x = std::hint::black_box(*acc);
    for i in 0..WORK_ITERS {
        x = x.wrapping_mul(m).wrapping_add(i | 1);
    }
    *acc = std::hint::black_box(x);
}

/// Percentiles of one latency measurement, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Percentiles {
    pub bench: &'static str,
    pub implementation: String,
    pub n: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    /// Reads the percentiles of `h` (values in ns).
    pub fn from_hist(
        bench: &'static str,
        implementation: impl Into<String>,
        h: &hdrhistogram::Histogram<u64>,
    ) -> Self {
        Percentiles {
            bench,
            implementation: implementation.into(),
            n: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// The smoke checks of CI mode: something was measured, and the percentiles are ordered.
    pub fn assert_sane(&self) {
        let what = format!("{} / {}", self.bench, self.implementation);
        assert!(self.n > 0, "{what}: no samples");
        assert!(self.p50 > 0, "{what}: p50 is zero");
        assert!(self.p50 <= self.p90, "{what}: p50 > p90");
        assert!(self.p90 <= self.p99, "{what}: p90 > p99");
        assert!(self.p99 <= self.p999, "{what}: p99 > p99.9");
        assert!(self.p999 <= self.max, "{what}: p99.9 > max");
    }
}

/// A histogram for latencies from 1 ns to 60 s with 3 significant digits.
pub fn new_hist() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Records `d` in `h` (at least 1 ns, clamped to the histogram's range).
#[inline]
pub fn record(h: &mut hdrhistogram::Histogram<u64>, d: Duration) {
    let ns = (d.as_nanos() as u64).clamp(1, 60_000_000_000);
    h.record(ns).expect("value within bounds");
}

/// The percentile rows as a markdown table.
pub fn markdown_table(rows: &[Percentiles]) -> String {
    let mut s = String::new();
    s.push_str("| bench | implementation | n | p50 ns | p90 ns | p99 ns | p99.9 ns | max ns |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.bench, r.implementation, r.n, r.p50, r.p90, r.p99, r.p999, r.max
        );
    }
    s
}

/// The percentile rows as CSV (header included; the implementation column is quoted).
pub fn csv(rows: &[Percentiles]) -> String {
    let mut s = String::from("bench,implementation,n,p50_ns,p90_ns,p99_ns,p999_ns,max_ns\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},\"{}\",{},{},{},{},{},{}",
            r.bench,
            r.implementation.replace('"', "'"),
            r.n,
            r.p50,
            r.p90,
            r.p99,
            r.p999,
            r.max
        );
    }
    s
}

/// `target/bench-results/` (honouring `CARGO_TARGET_DIR`), created if needed.
pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("bench-results");
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    dir
}

/// One line describing the machine, printed at the top of every bench.
pub fn machine_line() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!(
        "machine: {model}, {} CPUs available{}",
        cpus(),
        if cpus() <= 2 {
            " (2-core box: shards, baselines' threads and the outside thread share 2 cores)"
        } else {
            ""
        }
    )
}
