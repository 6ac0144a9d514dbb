//! `kv`: a sharded key-value storage engine on coreactor, speaking a subset of RESP2 (PING,
//! ECHO, GET, SET, DEL, INCR, MGET, EXISTS, DBSIZE, FLUSHALL, QUIT, pipelining), so redis-cli
//! and redis-benchmark work against it. Design: `docs/kv.md`.
//!
//! ```text
//! cargo run --release --example kv                      # embedded demo: engine + 10 s of load
//! cargo run --release --example kv -- --secs 3          # shorter
//! cargo run --release --example kv -- --serve 127.0.0.1:6380 --dir /tmp/kv   # real clients
//! ```
//!
//! Options: `--secs N` (load duration), `--clients N`, `--threads N`, `--pipeline N`,
//! `--keys N`, `--set-percent N`, `--value-size N`, `--shards N`, `--fsync
//! always|everysec|never|<N>ms`, `--max-bulk BYTES`, `--serve ADDR`, `--dir PATH`.

// An application, not the runtime: it uses std's threads and atomics directly (the crate's own
// code reaches them only through its sync shim, which `.clippy.toml` enforces).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod conn;
mod load;
mod resp;
mod serve;
mod signal;
mod storage;
mod store;
mod wiring;

use conn::ConnConfig;
use load::{LoadConfig, Progress};
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use storage::Fsync;
use wiring::{Engine, EngineConfig};

struct Options {
    serve: Option<SocketAddr>,
    dir: Option<PathBuf>,
    shards: Option<usize>,
    fsync: Fsync,
    max_bulk: usize,
    secs: u64,
    clients: usize,
    threads: usize,
    pipeline: usize,
    keys: u64,
    set_percent: u64,
    value_size: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        serve: None,
        dir: None,
        shards: None,
        fsync: Fsync::Every(Duration::from_secs(1)),
        max_bulk: resp::DEFAULT_MAX_BULK,
        secs: 10,
        clients: 64,
        threads: 2,
        pipeline: 16,
        keys: 100_000,
        set_percent: 20,
        value_size: 32,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--serve" => o.serve = Some(value.parse().map_err(|e| format!("--serve: {e}"))?),
            "--dir" => o.dir = Some(PathBuf::from(value)),
            "--shards" => o.shards = Some(num(&value)?.max(1) as usize),
            "--fsync" => o.fsync = Fsync::parse(&value)?,
            "--max-bulk" => o.max_bulk = num(&value)? as usize,
            "--secs" => o.secs = num(&value)?,
            "--clients" => o.clients = num(&value)?.max(1) as usize,
            "--threads" => o.threads = num(&value)?.max(1) as usize,
            "--pipeline" => o.pipeline = num(&value)?.max(1) as usize,
            "--keys" => o.keys = num(&value)?.max(1),
            "--set-percent" => o.set_percent = num(&value)?.min(100),
            "--value-size" => o.value_size = num(&value)? as usize,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

const USAGE: &str = "usage: kv [--secs N] [--clients N] [--threads N] [--pipeline N] [--keys N] \
[--set-percent N] [--value-size N] [--shards N] [--fsync always|everysec|never|<N>ms] \
[--max-bulk BYTES] [--serve ADDR --dir PATH]";

fn engine_config(o: &Options, dir: PathBuf, listen: SocketAddr) -> EngineConfig {
    let mut conn = ConnConfig::default();
    conn.limits.max_bulk = o.max_bulk;
    conn.limits.max_request = conn
        .limits
        .max_request
        .max(o.max_bulk.saturating_mul(2) + 4096);
    EngineConfig {
        dir,
        listen,
        shards: o.shards,
        fsync: o.fsync,
        conn,
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let result = match opts.serve {
        Some(listen) => match &opts.dir {
            Some(dir) => serve::serve(engine_config(&opts, dir.clone(), listen), |addr| {
                println!(
                    "kv: serving on {addr} (fsync {}); Ctrl-C to stop",
                    opts.fsync
                );
            }),
            None => Err("--serve needs --dir PATH".into()),
        },
        None => embedded(&opts),
    };
    if let Err(e) = result {
        eprintln!("kv: {e}");
        std::process::exit(1);
    }
}

/// The default run: an engine in a temporary directory and the built-in load against it.
fn embedded(o: &Options) -> Result<(), Box<dyn Error>> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = match &o.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("coreactor-kv-{}-{nanos}", std::process::id())),
    };
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let t0 = Instant::now();
    let engine = Engine::start(engine_config(o, dir.clone(), listen))?;
    let shards = engine.recovered().len();
    println!(
        "kv: {shards} shards serving on {} (data in {}, fsync {}), started in {:.1?}",
        engine.addr(),
        dir.display(),
        o.fsync,
        t0.elapsed()
    );
    println!(
        "load: {} connections on {} threads, pipeline {}, {} keys, {}% SET, {}-byte values, {} s",
        o.clients, o.threads, o.pipeline, o.keys, o.set_percent, o.value_size, o.secs
    );
    let cfg = LoadConfig {
        addr: engine.addr(),
        duration: Duration::from_secs(o.secs),
        clients: o.clients,
        threads: o.threads,
        pipeline: o.pipeline,
        keys: o.keys,
        set_percent: o.set_percent,
        value_size: o.value_size,
        seed: 0x5EED_CAFE,
    };
    let progress = Arc::new(Progress::default());
    let runner = {
        let (cfg, progress) = (cfg.clone(), progress.clone());
        std::thread::spawn(move || load::run(&cfg, &progress))
    };
    // The progress line: once a second (a display, not synchronisation).
    let mut last = 0;
    let mut tick = 0u64;
    while !runner.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        let secs = t0.elapsed().as_secs();
        if secs > tick && !runner.is_finished() {
            tick = secs;
            let ops = progress.ops.load(Ordering::Relaxed);
            println!(
                "  [{:>3} s] {:>9.0} ops/s   {:>11} ops total",
                tick,
                (ops - last) as f64,
                ops
            );
            last = ops;
        }
    }
    let report = runner.join().map_err(|_| "load thread panicked")??;

    let secs = report.elapsed.as_secs_f64();
    let h = &report.latency;
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "\nresult: {} commands in {secs:.2} s = {:.0} ops/s",
        report.ops,
        report.ops as f64 / secs
    );
    println!(
        "  GET {} (hits {}), SET {}, errors {}, wrong replies {}",
        report.gets, report.hits, report.sets, report.errors, report.wrong
    );
    println!(
        "  latency per command (pipeline of {}): p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        o.pipeline,
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0
    );
    let accepted = engine.accepted();
    let runtime = engine.shard_stats();
    println!("\nper shard:");
    println!(
        "  shard  conns      ops   writes  batches  commits  syncs     keys   log MiB  sent_remote"
    );
    for (i, s) in engine.store_stats().into_iter().enumerate() {
        let Some(s) = s else { continue };
        println!(
            "  {:>5} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>9.1} {:>12}",
            i,
            accepted.get(i).copied().unwrap_or(0),
            s.ops,
            s.writes,
            s.batches,
            s.commits,
            s.syncs,
            s.keys,
            s.log_bytes as f64 / (1024.0 * 1024.0),
            runtime.get(i).map_or(0, |r| r.sent_remote)
        );
    }
    let t = Instant::now();
    engine.shutdown()?;
    println!("\nclean shutdown in {:.1?}", t.elapsed());
    if o.dir.is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    if report.wrong > 0 {
        return Err(format!("{} wrong replies", report.wrong).into());
    }
    Ok(())
}
