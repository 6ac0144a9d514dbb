//! Work-stealing benches (issue #4): a skewed load with stealing on and off against the ideal,
//! the same load spread evenly (the cost of stealing when there is nothing to balance), and
//! the cost of one migration.
//!
//! # Skew and balanced
//!
//! Two shards (default placement: shard 0 on CPU 0, shard 1 on CPU 1) and **8 migratable
//! worker actors, 4 homed on each shard**. Each work message costs about 2 µs of CPU: a
//! dependent multiply-add chain whose length is calibrated once at start (never a sleep).
//! (The cost is the minimum of 21 timings, see `calibrate`, so the ideal is not inflated by
//! the box's load.) In the *skew* run 90 % of the messages go to shard 0's four workers (22.5 % each) and 10 %
//! to shard 1's (2.5 % each), so without balancing shard 0 does 0.9 of the work: 0.9 / 0.5 =
//! 1.8x the ideal. In the *balanced* run each worker gets 12.5 %.
//!
//! The messages are sent by one pinned driver actor per shard, to the workers homed on its
//! own shard (same-shard sends, ~30 ns each against 2 µs of work; after a move the home shard
//! forwards them, which is part of what is measured). A driver sends 512 messages to each of
//! its workers per turn and re-queues itself, so the first work is ready within microseconds
//! and the driver's sends interleave with the work. Mailboxes are sized to hold a worker's
//! whole share, so no send is refused.
//!
//! The clock starts just before the outside thread tells both drivers to start and stops at
//! the last worker's last message (each worker reports the `Instant` it finished). The ideal
//! is `messages x calibrated cost / 2`. Stealing *on* uses `steal_backlog_threshold(2)`: the
//! default threshold (64 ready actors) is meant for shards with many actors and is never
//! reached with 4 (with the default, stealing on behaves like off here, which the bench also
//! reports as `on (defaults)`). Stealing *off* is `may_steal(false)` on both shards. Each
//! configuration runs `RUNS` times (default 7), interleaved (skew on, skew off, balanced on,
//! balanced off, then again); the table reports medians, and every run is printed with the
//! load average of the moment and the time the shard threads spent runnable but waiting for
//! their CPU (run-queue wait from `/proc/self/task/*/schedstat`: the share of the run the
//! box's other load took). Two columns help read a run on a loaded box: the best run (a
//! timing can only be inflated by other load), and the CPU time of the busier shard thread
//! (median; from `schedstat`, insensitive to the run-queue wait): the balance stealing
//! reached, in units of the ideal, whatever the box's load.
//!
//! # Migration cost
//!
//! Shard 1 may only steal, shard 0 may only be stolen from. Per trial two fresh migratable
//! targets are spawned on shard 0; a pinned loader on shard 0 queues 1 000 messages (~0.5 µs
//! of work each) to each target in one turn, notes `t0`, and then trickles one timestamped
//! message to each target per turn (200 turns), so messages are sent before, during and after
//! the move. At the end of the loader's turn shard 0 advertises its backlog; shard 1 asks for
//! actors and receives one target with its queued messages. **Move time** is `t0` to the
//! first message the target handles on shard 1 (request, pack, transfer, install, first
//! turn) of the first target to move in a trial (the second, if it moves, moves when the
//! thief has run out of work). The table gives its percentiles over the trials, with the thief spinning
//! (`spin_before_park` 1 s) and parked (default spin, the trial starts after it slept), and the
//! number of messages that moved with the actor. The **in-flight latency** rows give the
//! send-to-handle latency of the trickled messages to the target that moved (those handled on
//! the thief: queued at the move, or forwarded by the home), beside the same messages in a
//! run without stealing. Those latencies include the FIFO wait behind the backlog.
//!
//! # CI
//!
//! With `CI` set: 20 000 messages, one run of each configuration, 3 migration trials; checks
//! that every message was handled, that stealing moved actors in the skew run, that the
//! timings are positive and the percentiles ordered; never compares timings. Well under 20 s.
//!
//! `RUNS=n` sets the number of skew/balanced runs; `STEAL_MSGS=n` the messages per run.

mod common;

use common::{Percentiles, new_hist, record};
use coreactor::config::{ShardOverride, StealOverride};
use coreactor::{Actor, Addr, Context, Reply, Runtime, ShardStats};
use crossbeam_channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const ASK_TIMEOUT: Duration = Duration::from_secs(60);

// ----- the work item --------------------------------------------------------------------------

/// One step of the calibrated work loop: a dependent multiply-add chain the optimiser cannot
/// fold (the multiplier is opaque to it).
#[inline(never)]
fn burn(iters: u64) -> u64 {
    let m = std::hint::black_box(6_364_136_223_846_793_005u64);
    let mut x = std::hint::black_box(iters);
    for i in 0..iters {
        x = x.wrapping_mul(m).wrapping_add(i | 1);
    }
    std::hint::black_box(x)
}

/// Chain length that costs about `target` on this machine, and the measured cost of one call
/// with it. Both are the **minimum** of 21 timings: on a shared box a timing can only be
/// inflated (by preemption), never deflated, so the minimum is the CPU cost.
fn calibrate(target: Duration) -> (u64, Duration) {
    let probe = 20_000u64;
    burn(probe);
    let per_iter = (0..21)
        .map(|_| {
            let t = Instant::now();
            burn(probe);
            t.elapsed().as_nanos() as f64 / probe as f64
        })
        .fold(f64::INFINITY, f64::min);
    let iters = ((target.as_nanos() as f64 / per_iter).round() as u64).max(1);
    let cost = (0..21)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..100 {
                burn(iters);
            }
            t.elapsed() / 100
        })
        .min()
        .expect("21 timings");
    (iters, cost)
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` prints them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_string())
}

/// CPU time and run-queue wait (ns, from `/proc/self/task/*/schedstat`) of each shard thread
/// of the running runtime, by thread id. The wait is time a shard was ready to run while
/// another process had its CPU: how much the box's load disturbed a run.
fn shard_sched() -> Vec<(String, u64, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("coreactor-shar") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let mut f = stat
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        out.push((t.file_name().to_string_lossy().into_owned(), run, wait));
    }
    out
}

/// Per-thread differences `after - before` of [`shard_sched`]: (total wait, largest CPU time).
fn sched_delta(before: &[(String, u64, u64)], after: &[(String, u64, u64)]) -> (u64, u64) {
    let mut wait = 0;
    let mut max_run = 0;
    for (tid, run, w) in after {
        let (r0, w0) = before
            .iter()
            .find(|b| &b.0 == tid)
            .map_or((0, 0), |b| (b.1, b.2));
        wait += w.saturating_sub(w0);
        max_run = max_run.max(run.saturating_sub(r0));
    }
    (wait, max_run)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ----- skew / balanced ------------------------------------------------------------------------

/// A migratable worker: burns `iters` per message and reports when it handled `expected`.
struct Worker {
    home: usize,
    iters: u64,
    expected: u64,
    handled: u64,
    sink: u64,
    /// When it first ran away from home (after a move), relative to nothing: an `Instant`.
    moved_at: Option<Instant>,
    done: Sender<(Instant, Option<Instant>)>,
}

enum WorkMsg {
    Work,
}

impl Actor for Worker {
    type Msg = WorkMsg;
    fn handle(&mut self, msg: WorkMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            WorkMsg::Work => {
                if self.moved_at.is_none() && ctx.shard_id() != self.home {
                    self.moved_at = Some(Instant::now());
                }
                self.sink = self.sink.wrapping_add(burn(self.iters));
                self.handled += 1;
                if self.handled == self.expected {
                    let _ = self.done.send((Instant::now(), self.moved_at));
                }
            }
        }
    }
}

/// A pinned driver: sends `left` messages to each of its workers, `CHUNK` per worker per turn.
struct Driver {
    targets: Vec<Addr<Worker>>,
    left: u64,
}

enum DriverMsg {
    Go,
}

/// Messages a driver sends to each of its workers per turn.
const CHUNK: u64 = 512;

impl Actor for Driver {
    type Msg = DriverMsg;
    fn handle(&mut self, msg: DriverMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            DriverMsg::Go => {
                let n = self.left.min(CHUNK);
                for t in &self.targets {
                    for _ in 0..n {
                        common::actors::must_tell(t, WorkMsg::Work);
                    }
                }
                self.left -= n;
                if self.left > 0 {
                    ctx.notify(DriverMsg::Go);
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Steal {
    /// Stealing on, `steal_backlog_threshold(2)`.
    On,
    /// Stealing on with every default (threshold 64 ready actors).
    OnDefaults,
    /// `may_steal(false)` on both shards.
    Off,
}

impl Steal {
    fn name(self) -> &'static str {
        match self {
            Steal::On => "on",
            Steal::OnDefaults => "on (defaults)",
            Steal::Off => "off",
        }
    }
}

/// One skew or balanced run.
struct RunResult {
    wall: Duration,
    stats: Vec<ShardStats>,
    /// Offsets from the start at which workers first ran away from home.
    moves: Vec<Duration>,
    /// Run-queue wait of the shard threads during the run (see [`shard_sched`]).
    rq_wait: Duration,
    /// CPU time of the busier shard thread during the run.
    max_cpu: Duration,
}

/// Runs `msgs` messages, a fraction `share0` of them to shard 0's four workers.
fn skew_run(steal: Steal, share0: f64, msgs: u64, iters: u64) -> RunResult {
    const PER_SHARD: u64 = 4;
    let n0 = ((msgs as f64 * share0) / PER_SHARD as f64).round() as u64;
    let n1 = ((msgs as f64 * (1.0 - share0)) / PER_SHARD as f64).round() as u64;
    let cap = n0.max(n1).next_power_of_two().max(4096) as usize;
    let mut b = Runtime::builder().shards(2).mailbox_capacity(cap);
    b = match steal {
        Steal::On => b.steal_backlog_threshold(2),
        Steal::OnDefaults => b,
        Steal::Off => b.may_steal(false),
    };
    let rt = b.build().expect("runtime");
    let (done_tx, done_rx): (Sender<(Instant, Option<Instant>)>, Receiver<_>) = unbounded();
    let mut drivers = Vec::new();
    for (shard, n) in [(0usize, n0), (1usize, n1)] {
        let targets: Vec<Addr<Worker>> = (0..PER_SHARD)
            .map(|_| {
                rt.spawn_migratable(
                    shard,
                    Worker {
                        home: shard,
                        iters,
                        expected: n,
                        handled: 0,
                        sink: 0,
                        moved_at: None,
                        done: done_tx.clone(),
                    },
                )
                .expect("spawn worker")
            })
            .collect();
        drivers.push(
            rt.spawn_on(shard, Driver { targets, left: n })
                .expect("spawn driver"),
        );
    }
    // Let the spawns (messages to the shards) land and the shards go idle before the clock
    // starts; a bench's pause, not synchronisation: the results do not depend on it.
    std::thread::sleep(Duration::from_millis(5));
    let sched0 = shard_sched();
    let start = Instant::now();
    for d in &drivers {
        d.tell(DriverMsg::Go).expect("start driver");
    }
    let mut last = start;
    let mut moves = Vec::new();
    for _ in 0..2 * PER_SHARD {
        let (t, moved) = done_rx
            .recv_timeout(ASK_TIMEOUT)
            .expect("every worker finishes");
        last = last.max(t);
        if let Some(m) = moved {
            moves.push(m.saturating_duration_since(start));
        }
    }
    moves.sort();
    let (wait, max_run) = sched_delta(&sched0, &shard_sched());
    let stats = rt.shard_stats();
    rt.shutdown().expect("shutdown");
    RunResult {
        wall: last - start,
        stats,
        moves,
        rq_wait: Duration::from_nanos(wait),
        max_cpu: Duration::from_nanos(max_run),
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// Skew and balanced runs; returns the markdown table.
fn skew_bench(ci: bool, msgs: u64, runs: usize, iters: u64, cost: Duration) -> String {
    let ideal = cost * msgs as u32 / 2;
    println!(
        "skew/balanced: {msgs} messages of {} ns each, ideal (total work / 2) = {} ms",
        cost.as_nanos(),
        fmt_ms(ideal)
    );
    let configs: [(&str, f64, Steal); 5] = [
        ("skew 90/10", 0.9, Steal::On),
        ("skew 90/10", 0.9, Steal::Off),
        ("balanced 50/50", 0.5, Steal::On),
        ("balanced 50/50", 0.5, Steal::Off),
        ("skew 90/10", 0.9, Steal::OnDefaults),
    ];
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut loads: Vec<Vec<String>> = vec![Vec::new(); configs.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for run in 0..runs {
        for (i, &(name, share0, steal)) in configs.iter().enumerate() {
            let load = load_average();
            let r = skew_run(steal, share0, msgs, iters);
            let ratio = r.wall.as_secs_f64() / ideal.as_secs_f64();
            let s: Vec<String> = r
                .stats
                .iter()
                .map(|s| {
                    format!(
                        "s{}: busy {} ms, idle {} ms, handled {}, in {} out {} steals {}/{} fwd {} parks {}",
                        s.shard,
                        s.busy_ns / 1_000_000,
                        s.idle_ns / 1_000_000,
                        s.handled,
                        s.migrated_in,
                        s.migrated_out,
                        s.steals_succeeded,
                        s.steals_attempted,
                        s.forwarded,
                        s.parks
                    )
                })
                .collect();
            let moves: Vec<String> = r.moves.iter().map(|d| fmt_ms(*d)).collect();
            println!(
                "  run {run} {name:<15} steal {:<13} {:>7} ms  {ratio:.2}x ideal  busier shard CPU {} ms  rq wait {} ms  load [{load}]  {}  moved at [{}] ms",
                steal.name(),
                fmt_ms(r.wall),
                fmt_ms(r.max_cpu),
                fmt_ms(r.rq_wait),
                s.join(", "),
                moves.join(", ")
            );
            if ci {
                assert!(r.wall > Duration::ZERO);
                let handled: u64 = r.stats.iter().map(|s| s.handled).sum();
                assert!(handled >= msgs, "every work message was handled");
                if steal == Steal::On && share0 > 0.5 {
                    assert!(
                        r.stats[1].migrated_in > 0,
                        "the skew run moved actors to shard 1: {:?}",
                        r.stats
                    );
                }
            }
            walls[i].push(r.wall.as_secs_f64());
            cpus[i].push(r.max_cpu.as_secs_f64());
            loads[i].push(format!("{load} (rq {} ms)", fmt_ms(r.rq_wait)));
        }
    }
    let runs_ms: Vec<String> = walls
        .iter()
        .map(|w| {
            w.iter()
                .map(|x| format!("{:.1}", x * 1e3))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let med: Vec<f64> = walls.iter_mut().map(|w| median(w)).collect();
    let best: Vec<f64> = walls
        .iter()
        .map(|w| w.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let cpu: Vec<f64> = cpus.iter_mut().map(|c| median(c)).collect();
    let mut t = String::from(
        "| workload | stealing | median ms | x ideal | best run x ideal | busier shard CPU x ideal | runs (ms) | load avg (shards' run-queue wait) at each run |\n|---|---|---:|---:|---:|---:|---|---|\n",
    );
    let ideal_s = ideal.as_secs_f64();
    for (i, &(name, _, steal)) in configs.iter().enumerate() {
        t.push_str(&format!(
            "| {name} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            steal.name(),
            med[i] * 1e3,
            med[i] / ideal_s,
            best[i] / ideal_s,
            cpu[i] / ideal_s,
            runs_ms[i],
            loads[i].join(" / ")
        ));
    }
    let overhead = med[2] / med[3] - 1.0;
    t.push_str(&format!(
        "\nideal = {} ms; balanced: stealing on costs {:+.1} % against off (medians)\n",
        fmt_ms(ideal),
        overhead * 100.0
    ));
    t
}

// ----- migration cost -------------------------------------------------------------------------

/// A target of the migration bench: times its messages and notes where and when it ran.
struct Target {
    iters: u64,
    sink: u64,
    handled: u64,
    handled_home: u64,
    first_away: Option<Instant>,
    /// Send-to-handle latency of the trickled messages handled away from home / at home.
    away: Histogram<u64>,
    home: Histogram<u64>,
    expected: u64,
    waiting: Option<Reply<TargetReport>>,
}

struct TargetReport {
    first_away: Option<Instant>,
    handled_away: u64,
    away: Histogram<u64>,
    home: Histogram<u64>,
}

enum TargetMsg {
    /// Bulk work (not timed).
    Bulk,
    /// Trickled work, timed from `sent`.
    Timed(Instant),
    /// Answer once `expected` messages were handled.
    Report(u64, Reply<TargetReport>),
}

impl Target {
    fn maybe_report(&mut self) {
        if self.handled >= self.expected
            && let Some(r) = self.waiting.take()
        {
            r.send(TargetReport {
                first_away: self.first_away,
                handled_away: self.handled - self.handled_home,
                away: std::mem::replace(&mut self.away, new_hist()),
                home: std::mem::replace(&mut self.home, new_hist()),
            });
        }
    }
}

impl Actor for Target {
    type Msg = TargetMsg;
    fn handle(&mut self, msg: TargetMsg, ctx: &mut Context<'_, Self>) {
        let away = ctx.shard_id() != 0;
        let sent = match msg {
            TargetMsg::Report(n, r) => {
                self.expected = n;
                self.waiting = Some(r);
                self.maybe_report();
                return;
            }
            TargetMsg::Bulk => None,
            TargetMsg::Timed(t) => Some(t),
        };
        if away && self.first_away.is_none() {
            self.first_away = Some(Instant::now());
        }
        self.sink = self.sink.wrapping_add(burn(self.iters));
        self.handled += 1;
        if !away {
            self.handled_home += 1;
        }
        if let Some(t) = sent {
            let h = if away { &mut self.away } else { &mut self.home };
            record(h, t.elapsed());
        }
        self.maybe_report();
    }
}

/// Pinned on shard 0: queues the backlog, then trickles timed messages.
struct Loader;

enum LoaderMsg {
    /// Queue `bulk` messages to each target, answer `t0`, then trickle `trickle` rounds.
    Load {
        targets: Vec<Addr<Target>>,
        bulk: u64,
        trickle: u64,
        t0: Reply<Instant>,
    },
    Trickle(Vec<Addr<Target>>, u64),
}

impl Actor for Loader {
    type Msg = LoaderMsg;
    fn handle(&mut self, msg: LoaderMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            LoaderMsg::Load {
                targets,
                bulk,
                trickle,
                t0,
            } => {
                for t in &targets {
                    for _ in 0..bulk {
                        common::actors::must_tell(t, TargetMsg::Bulk);
                    }
                }
                t0.send(Instant::now());
                ctx.notify(LoaderMsg::Trickle(targets, trickle));
            }
            LoaderMsg::Trickle(targets, left) => {
                if left == 0 {
                    return;
                }
                for t in &targets {
                    common::actors::must_tell(t, TargetMsg::Timed(Instant::now()));
                }
                ctx.notify(LoaderMsg::Trickle(targets, left - 1));
            }
        }
    }
}

/// What the migration trials of one configuration measured.
struct MoveResult {
    move_time: Histogram<u64>,
    moved_msgs: Histogram<u64>,
    in_flight: Histogram<u64>,
    at_home: Histogram<u64>,
    /// Trials in which a target moved.
    trials_moved: u64,
    /// Targets that moved, over all trials.
    targets_moved: u64,
}

fn migration_trials(steal: bool, thief_spins: bool, trials: u64, iters: u64) -> MoveResult {
    const BULK: u64 = 1000;
    const TRICKLE: u64 = 200;
    let thief = ShardOverride {
        spin_before_park: thief_spins.then_some(Duration::from_secs(1)),
        steal: StealOverride {
            may_be_stolen: Some(false),
            may_steal: Some(steal),
            ..StealOverride::default()
        },
        ..ShardOverride::default()
    };
    let victim = ShardOverride {
        steal: StealOverride {
            may_steal: Some(false),
            ..StealOverride::default()
        },
        ..ShardOverride::default()
    };
    let rt = Runtime::builder()
        .shards(2)
        .steal_backlog_threshold(2)
        .shard_override(0, victim)
        .shard_override(1, thief)
        .build()
        .expect("runtime");
    let loader = rt.spawn_on(0, Loader).expect("spawn loader");
    let mut res = MoveResult {
        move_time: new_hist(),
        moved_msgs: new_hist(),
        in_flight: new_hist(),
        at_home: new_hist(),
        trials_moved: 0,
        targets_moved: 0,
    };
    for _ in 0..trials {
        let targets: Vec<Addr<Target>> = (0..2)
            .map(|_| {
                rt.spawn_migratable(
                    0,
                    Target {
                        iters,
                        sink: 0,
                        handled: 0,
                        handled_home: 0,
                        first_away: None,
                        away: new_hist(),
                        home: new_hist(),
                        expected: u64::MAX,
                        waiting: None,
                    },
                )
                .expect("spawn target")
            })
            .collect();
        // Let the spawns land and, with the default spin, the thief park.
        std::thread::sleep(Duration::from_millis(2));
        let t0 = loader
            .ask(
                |r| LoaderMsg::Load {
                    targets: targets.clone(),
                    bulk: BULK,
                    trickle: TRICKLE,
                    t0: r,
                },
                ASK_TIMEOUT,
            )
            .expect("load");
        // The first target to move gives the move time; a second one usually moves only
        // when the thief has run out of work, long after.
        let mut first: Option<(Instant, u64)> = None;
        for t in &targets {
            let rep = t
                .ask(|r| TargetMsg::Report(BULK + TRICKLE, r), ASK_TIMEOUT)
                .expect("report");
            res.at_home.add(&rep.home).expect("merge");
            if let Some(at) = rep.first_away {
                res.targets_moved += 1;
                res.in_flight.add(&rep.away).expect("merge");
                if first.is_none_or(|(f, _)| at < f) {
                    first = Some((at, rep.handled_away));
                }
            }
        }
        if let Some((at, moved)) = first {
            res.trials_moved += 1;
            record(&mut res.move_time, at.saturating_duration_since(t0));
            res.moved_msgs.record(moved.max(1)).expect("count in range");
        }
    }
    rt.shutdown().expect("shutdown");
    res
}

fn migration_bench(ci: bool, trials: u64, iters: u64, cost: Duration) -> String {
    println!(
        "migration: {trials} trials per row, 2 targets x (1000 queued + 200 trickled) messages of {} ns",
        cost.as_nanos()
    );
    let mut rows = Vec::new();
    let mut notes = String::new();
    for (label, steal, spins) in [
        ("thief spinning", true, true),
        ("thief parked", true, false),
        ("no stealing", false, false),
    ] {
        let load = load_average();
        let r = migration_trials(steal, spins, trials, iters);
        let _ = std::fmt::Write::write_fmt(
            &mut notes,
            format_args!(
                "- {label}: a target moved in {} of {trials} trials ({} of {} targets); messages the first one handled on the thief (moved with it or forwarded): p50 {} (min {}, max {}); load avg [{load}]\n",
                r.trials_moved,
                r.targets_moved,
                2 * trials,
                r.moved_msgs.value_at_quantile(0.5),
                r.moved_msgs.min(),
                r.moved_msgs.max(),
            ),
        );
        if steal {
            if ci {
                assert!(r.trials_moved > 0, "{label}: some target moved");
            }
            if r.trials_moved > 0 {
                rows.push(Percentiles::from_hist("move_time", label, &r.move_time));
                rows.push(Percentiles::from_hist(
                    "in_flight_latency",
                    format!("{label}: handled on the thief"),
                    &r.in_flight,
                ));
            }
            if !r.at_home.is_empty() {
                rows.push(Percentiles::from_hist(
                    "in_flight_latency",
                    format!("{label}: handled at home"),
                    &r.at_home,
                ));
            }
        } else {
            rows.push(Percentiles::from_hist(
                "in_flight_latency",
                "no stealing (baseline)",
                &r.at_home,
            ));
        }
    }
    for r in &rows {
        r.assert_sane();
    }
    format!("{}\n{notes}", common::markdown_table(&rows))
}

fn main() {
    let ci = common::ci();
    println!("{}", common::machine_line());
    println!("load average at start: [{}]", load_average());
    let (iters, cost) = calibrate(Duration::from_micros(2));
    println!(
        "calibration: {iters} chain steps = {} ns per work message",
        cost.as_nanos()
    );
    let env_u64 = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let msgs = env_u64("STEAL_MSGS").unwrap_or(if ci { 20_000 } else { 250_000 });
    let runs = env_u64("RUNS").unwrap_or(if ci { 1 } else { 7 }) as usize;
    let skew = skew_bench(ci, msgs, runs.max(1), iters, cost);
    let (small_iters, small_cost) = calibrate(Duration::from_nanos(500));
    let trials = if ci { 3 } else { 100 };
    let moves = migration_bench(ci, trials, small_iters, small_cost);
    println!("\n{skew}\n{moves}");
    println!("load average at end: [{}]", load_average());
}
