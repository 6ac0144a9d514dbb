//! The results of a comparison run and how they are written: `results.csv` (one row per
//! workload, peer and metric: median, min, max over the repetitions) and `results.md` (the
//! same as markdown tables, peers side by side, plus coreactor's ratio to each reference peer
//! repetition by repetition), and the sanity checks of CI mode.

use crate::common::Percentiles;
use crate::workload::{Latency, Throughput};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The rates (units/s) of one throughput workload on one peer, one per repetition; empty if
/// the peer does not run the workload.
pub struct ThroughputResult {
    pub workload: Throughput,
    pub peer: &'static str,
    pub rates: Vec<f64>,
    /// The floor probe's round trips/s just before each of those steps (`floor.rs`).
    pub floors: Vec<f64>,
}

/// Floors further apart than this factor put two steps in different modes of the host.
const MODE_CHANGE: f64 = 2.0;

/// True if two floor probes differ by more than [`MODE_CHANGE`] (false if either was not run).
fn modes_differ(a: f64, b: f64) -> bool {
    a.max(b) > MODE_CHANGE * a.min(b)
}

/// The percentiles of one latency workload on one peer, one set per repetition.
pub struct LatencyResult {
    pub workload: Latency,
    pub peer: &'static str,
    pub reps: Vec<Percentiles>,
}

/// Heap allocations per message (tell) and per ask of one peer, medians over the windows.
pub struct AllocResult {
    pub peer: &'static str,
    pub tell_calls: f64,
    pub tell_bytes: f64,
    pub ask_calls: f64,
    pub ask_bytes: f64,
}

/// Everything one run produced.
pub struct Results {
    pub peers: Vec<&'static str>,
    pub throughput: Vec<ThroughputResult>,
    pub latency: Vec<LatencyResult>,
    pub alloc: Vec<AllocResult>,
}

/// `(median, min, max)` of `v` (the upper median for an even count); `None` if empty.
pub fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some((s[s.len() / 2], s[0], s[s.len() - 1]))
}

/// Reads one percentile (ns) out of a [`Percentiles`].
pub type Pick = fn(&Percentiles) -> u64;

/// The five percentiles reported (label, accessor), in order.
pub const PERCENTILES: [(&str, Pick); 5] = [
    ("p50", |p| p.p50),
    ("p90", |p| p.p90),
    ("p99", |p| p.p99),
    ("p99.9", |p| p.p999),
    ("max", |p| p.max),
];

impl LatencyResult {
    /// `(median, min, max)` over the repetitions of the percentile read by `f`, in ns.
    pub fn percentile(&self, f: Pick) -> (f64, f64, f64) {
        let v: Vec<f64> = self.reps.iter().map(|p| f(p) as f64).collect();
        stats(&v).expect("at least one repetition")
    }
}

impl Results {
    /// The throughput result of `(w, peer)`.
    pub fn tp(&self, w: Throughput, peer: &str) -> Option<&ThroughputResult> {
        self.throughput
            .iter()
            .find(|r| r.workload == w && r.peer == peer)
    }

    /// The latency result of `(w, peer)`.
    pub fn lat(&self, w: Latency, peer: &str) -> Option<&LatencyResult> {
        self.latency
            .iter()
            .find(|r| r.workload == w && r.peer == peer)
    }

    /// The CI smoke checks: every workload ran on every peer that supports it, every rate is
    /// positive and finite, every latency set is sane (non-zero, ordered), every allocation
    /// count is finite. Never a timing assertion.
    pub fn assert_sane(&self) {
        for r in &self.throughput {
            assert_eq!(r.rates.len(), r.floors.len(), "a floor per step");
            // A floor is NaN when the probe was switched off (`COMPARE_FLOOR=0`).
            let floors = r.floors.iter().filter(|f| !f.is_nan());
            for &x in r.rates.iter().chain(floors) {
                assert!(
                    x.is_finite() && x > 0.0,
                    "{} / {}: rate {x}",
                    r.workload.name(),
                    r.peer
                );
            }
        }
        for w in Throughput::ALL {
            let ran = self
                .throughput
                .iter()
                .filter(|r| r.workload == w && !r.rates.is_empty());
            assert!(ran.count() > 0, "{}: no peer ran it", w.name());
        }
        for r in &self.latency {
            assert!(
                !r.reps.is_empty(),
                "{} / {}: not run",
                r.workload.name(),
                r.peer
            );
            r.reps.iter().for_each(Percentiles::assert_sane);
        }
        for a in &self.alloc {
            for x in [a.tell_calls, a.tell_bytes, a.ask_calls, a.ask_bytes] {
                assert!(x.is_finite(), "{}: allocation count {x}", a.peer);
            }
        }
    }

    /// One row per workload, peer and metric.
    pub fn csv(&self) -> String {
        let mut s = String::from("workload,peer,metric,unit,median,min,max,reps\n");
        for r in &self.throughput {
            if let Some((med, min, max)) = stats(&r.rates) {
                let _ = writeln!(
                    s,
                    "{},{},rate,{},{med:.0},{min:.0},{max:.0},{}",
                    r.workload.name(),
                    r.peer,
                    r.workload.unit(),
                    r.rates.len()
                );
            }
            let floors: Vec<f64> = r.floors.iter().copied().filter(|f| !f.is_nan()).collect();
            if let Some((med, min, max)) = stats(&floors) {
                let _ = writeln!(
                    s,
                    "{},{},floor_before,round trips/s,{med:.0},{min:.0},{max:.0},{}",
                    r.workload.name(),
                    r.peer,
                    r.floors.len()
                );
            }
        }
        for r in &self.latency {
            for (label, f) in PERCENTILES {
                let (med, min, max) = r.percentile(f);
                let _ = writeln!(
                    s,
                    "{},{},{label},ns,{med:.0},{min:.0},{max:.0},{}",
                    r.workload.name(),
                    r.peer,
                    r.reps.len()
                );
            }
        }
        for a in &self.alloc {
            for (metric, unit, v) in [
                ("tell_allocs", "allocs/msg", a.tell_calls),
                ("tell_bytes", "bytes/msg", a.tell_bytes),
                ("ask_allocs", "allocs/ask", a.ask_calls),
                ("ask_bytes", "bytes/ask", a.ask_bytes),
            ] {
                let _ = writeln!(s, "allocations,{},{metric},{unit},{v:.3},,,", a.peer);
            }
        }
        s
    }

    /// The three markdown tables (throughput, latency, allocations).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let header = |s: &mut String, first: &str| {
            let _ = write!(s, "| {first} |");
            for p in &self.peers {
                let _ = write!(s, " {p} |");
            }
            s.push_str("\n|---|");
            s.push_str(&"---:|".repeat(self.peers.len()));
            s.push('\n');
        };

        s.push_str("### Throughput (median of the repetitions; min–max in brackets)\n\n");
        header(&mut s, "workload (unit)");
        for w in Throughput::ALL {
            let _ = write!(s, "| {} ({}) |", w.name(), w.unit());
            for p in &self.peers {
                match self.tp(w, p).and_then(|r| stats(&r.rates)) {
                    Some((med, min, max)) => {
                        let _ = write!(s, " **{}** ({}–{}) |", si(med), si(min), si(max));
                    }
                    None => s.push_str(" n/a |"),
                }
            }
            s.push('\n');
        }

        s.push_str("\n### Ask latency (µs; median over the repetitions of each percentile)\n\n");
        s.push_str("| workload | peer | p50 | p90 | p99 | p99.9 | max | asks per rep |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for w in Latency::ALL {
            for p in &self.peers {
                let Some(r) = self.lat(w, p) else { continue };
                let _ = write!(s, "| {} | {p} |", w.name());
                for (_, f) in PERCENTILES {
                    let _ = write!(s, " {:.1} |", r.percentile(f).0 / 1e3);
                }
                let _ = writeln!(s, " {} |", r.reps[0].n);
            }
        }

        s.push_str(&self.ratio_table());
        s.push_str(&self.floor_table());

        s.push_str("\n### Heap allocations in steady state\n\n");
        s.push_str(
            "| peer | allocs per tell | bytes per tell | allocs per ask | bytes per ask |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|\n");
        for a in &self.alloc {
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.0} | {:.2} | {:.0} |",
                a.peer, a.tell_calls, a.tell_bytes, a.ask_calls, a.ask_bytes
            );
        }
        s
    }
}

/// The actor frameworks of issue #7's targets (tokio and threads+crossbeam are the other
/// references).
const FRAMEWORKS: [&str; 3] = ["actix", "ractor", "kameo"];

impl Results {
    /// coreactor's rate divided by a reference's, repetition by repetition (the two ran in the
    /// same repetition, minutes apart at most), with the median of those ratios: the targets
    /// are ratios, and a median of ratios is not the ratio of the medians when the machine's
    /// speed changes during a run. Empty if coreactor did not run.
    fn ratio_table(&self) -> String {
        if !self.peers.contains(&"coreactor") {
            return String::new();
        }
        let refs: Vec<(&str, Vec<&str>)> = [
            ("threads+crossbeam", vec!["threads+crossbeam"]),
            ("tokio", vec!["tokio"]),
            ("best of actix, ractor, kameo", FRAMEWORKS.to_vec()),
        ]
        .into_iter()
        .filter(|(_, peers)| peers.iter().any(|p| self.peers.contains(p)))
        .collect();
        let mut s = String::from(
            "\n### coreactor ÷ reference, per repetition (median of the ratios first)\n\n| workload |",
        );
        for (name, _) in &refs {
            let _ = write!(s, " {name} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(refs.len()));
        s.push('\n');
        let mut any_mode_change = false;
        for w in Throughput::ALL {
            let Some(ours) = self.tp(w, "coreactor").filter(|r| !r.rates.is_empty()) else {
                continue;
            };
            let _ = write!(s, "| {} |", w.name());
            for (_, peers) in &refs {
                // (ratio, whether the two steps ran in different modes of the host)
                let ratios: Vec<(f64, bool)> = (0..ours.rates.len())
                    .filter_map(|rep| {
                        let (best, floor) = peers
                            .iter()
                            .filter_map(|p| {
                                let r = self.tp(w, p)?;
                                Some((*r.rates.get(rep)?, *r.floors.get(rep)?))
                            })
                            .reduce(|a, b| if b.0 > a.0 { b } else { a })?;
                        (best > 0.0).then(|| {
                            (
                                ours.rates[rep] / best,
                                modes_differ(ours.floors[rep], floor),
                            )
                        })
                    })
                    .collect();
                any_mode_change |= ratios.iter().any(|r| r.1);
                let values: Vec<f64> = ratios.iter().map(|r| r.0).collect();
                match stats(&values) {
                    Some((median, _, _)) => {
                        let each: Vec<String> = ratios
                            .iter()
                            .map(|&(r, differ)| format!("{r:.2}{}", if differ { "†" } else { "" }))
                            .collect();
                        let _ = write!(s, " **{median:.2}x** ({}) |", each.join(", "));
                    }
                    None => s.push_str(" n/a |"),
                }
            }
            s.push('\n');
        }
        if any_mode_change {
            let _ = writeln!(
                s,
                "\n† the floor probe before coreactor's step and before the reference's differed by \
             more than {MODE_CHANGE}x: the host's cost of a cross-core transfer changed between \
             the two steps (see the floor table below)."
            );
        }
        s
    }

    /// The floor probe before each step: coreactor's steps repetition by repetition, and the
    /// range over every peer's steps of the workload.
    fn floor_table(&self) -> String {
        let probed = self
            .throughput
            .iter()
            .any(|r| r.floors.iter().any(|f| !f.is_nan()));
        if !probed {
            return String::new();
        }
        let mut s = String::from(
            "\n### Host floor probe before each step (cache-line round trips/s between CPUs 0 \
             and 1)\n\n| workload | before coreactor's steps, per repetition | before any \
             peer's step (min–max) |\n|---|---|---|\n",
        );
        for w in Throughput::ALL {
            let all: Vec<f64> = self
                .throughput
                .iter()
                .filter(|r| r.workload == w)
                .flat_map(|r| r.floors.iter().copied())
                .filter(|f| !f.is_nan())
                .collect();
            let Some((_, min, max)) = stats(&all) else {
                continue;
            };
            let ours = self
                .tp(w, "coreactor")
                .map(|r| {
                    r.floors
                        .iter()
                        .map(|&f| si(f))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "n/a".into());
            let _ = writeln!(s, "| {} | {ours} | {}–{} |", w.name(), si(min), si(max));
        }
        s
    }
}

/// `v` with an SI suffix and 3 significant digits: `12.3M`, `456k`, `7.89`.
pub fn si(v: f64) -> String {
    let (x, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{suffix}")
}

/// Where the outputs go: `COMPARE_OUT` if set (relative paths are relative to the package
/// root, where `cargo bench` runs the binary), else `target/compare/` (honouring
/// `CARGO_TARGET_DIR`). Created if needed.
pub fn out_dir() -> PathBuf {
    let dir = match std::env::var_os("COMPARE_OUT").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("compare"),
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}
