//! The built-in load: client threads outside the runtime, each driving several connections in
//! lock step. A round writes one pipeline of `pipeline` mixed GET/SET commands to each of the
//! thread's connections, then reads every reply; a command's latency is from the write of its
//! pipeline to the read that completed its reply. Keys are uniform over `keys`; a SET writes
//! a value that names its key, and every GET hit is checked to carry its own key's value.

use super::resp::{self, Reply};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the load does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub addr: SocketAddr,
    /// How long to run.
    pub duration: Duration,
    /// Connections in total.
    pub clients: usize,
    /// Client threads (the connections are split between them).
    pub threads: usize,
    /// Commands per pipeline.
    pub pipeline: usize,
    /// Distinct keys.
    pub keys: u64,
    /// Percentage of SETs (the rest are GETs).
    pub set_percent: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// RNG seed.
    pub seed: u64,
}

/// What the load measured.
pub struct LoadReport {
    /// Commands answered.
    pub ops: u64,
    /// GETs and SETs among them.
    pub gets: u64,
    /// SETs among them.
    pub sets: u64,
    /// GETs that found a value.
    pub hits: u64,
    /// Error replies.
    pub errors: u64,
    /// Replies that were not what the command expects (should be 0).
    pub wrong: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency per command, nanoseconds.
    pub latency: Histogram<u64>,
}

/// The counter a progress printer reads while the load runs.
#[derive(Default)]
pub struct Progress {
    /// Commands answered so far.
    pub ops: AtomicU64,
    /// Set when the load should stop early.
    pub stop: AtomicBool,
}

struct Client {
    sock: TcpStream,
    inbuf: Vec<u8>,
    /// Key of each outstanding command, and whether it is a GET.
    expect: VecDeque<(bool, u64)>,
    sent_at: Instant,
}

/// The key name of key number `k`.
pub fn key_name(k: u64) -> Vec<u8> {
    format!("key:{k:012}").into_bytes()
}

/// The value a SET of key `k` writes: it starts with the key number.
fn value_for(k: u64, size: usize) -> Vec<u8> {
    let mut v = format!("v{k:012}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

/// Runs the load; `progress` is updated as it goes.
///
/// # Errors
///
/// A connection or I/O error of any client.
pub fn run(cfg: &LoadConfig, progress: &Arc<Progress>) -> io::Result<LoadReport> {
    let threads = cfg.threads.clamp(1, cfg.clients.max(1));
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut handles = Vec::new();
    for t in 0..threads {
        let n = cfg.clients / threads + usize::from(t < cfg.clients % threads);
        let cfg = cfg.clone();
        let progress = progress.clone();
        let seed = cfg.seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        handles.push(std::thread::spawn(move || {
            thread_main(&cfg, n, seed, deadline, &progress)
        }));
    }
    let mut total: Option<LoadReport> = None;
    let mut first_err = None;
    for h in handles {
        match h.join().expect("load thread panicked") {
            Ok(r) => match &mut total {
                None => total = Some(r),
                Some(t) => {
                    t.ops += r.ops;
                    t.gets += r.gets;
                    t.sets += r.sets;
                    t.hits += r.hits;
                    t.errors += r.errors;
                    t.wrong += r.wrong;
                    t.latency.add(&r.latency).expect("same bounds");
                }
            },
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let mut total = total.expect("at least one thread");
    total.elapsed = start.elapsed();
    Ok(total)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds")
}

fn thread_main(
    cfg: &LoadConfig,
    conns: usize,
    mut seed: u64,
    deadline: Instant,
    progress: &Progress,
) -> io::Result<LoadReport> {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        let sock = TcpStream::connect(cfg.addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        clients.push(Client {
            sock,
            inbuf: Vec::with_capacity(64 * 1024),
            expect: VecDeque::new(),
            sent_at: Instant::now(),
        });
    }
    let mut rep = LoadReport {
        ops: 0,
        gets: 0,
        sets: 0,
        hits: 0,
        errors: 0,
        wrong: 0,
        elapsed: Duration::ZERO,
        latency: new_histogram(),
    };
    let mut out = Vec::with_capacity(cfg.pipeline * (cfg.value_size + 64));
    let mut chunk = vec![0u8; 64 * 1024];
    let mut next = move || {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    while Instant::now() < deadline && !progress.stop.load(Ordering::Relaxed) {
        for c in &mut clients {
            out.clear();
            for _ in 0..cfg.pipeline {
                let k = next() % cfg.keys.max(1);
                let key = key_name(k);
                if next() % 100 < cfg.set_percent {
                    resp::command(&mut out, &[b"SET", &key, &value_for(k, cfg.value_size)]);
                    c.expect.push_back((false, k));
                } else {
                    resp::command(&mut out, &[b"GET", &key]);
                    c.expect.push_back((true, k));
                }
            }
            c.sent_at = Instant::now();
            c.sock.write_all(&out)?;
        }
        let mut round_ops = 0;
        for c in &mut clients {
            while !c.expect.is_empty() {
                let n = c.sock.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let now = Instant::now();
                let lat = u64::try_from((now - c.sent_at).as_nanos()).unwrap_or(u64::MAX);
                c.inbuf.extend_from_slice(&chunk[..n]);
                let mut used = 0;
                while let Some((reply, len)) = resp::parse_reply(&c.inbuf[used..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                {
                    used += len;
                    let (is_get, k) = c.expect.pop_front().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "unexpected reply")
                    })?;
                    rep.ops += 1;
                    round_ops += 1;
                    rep.latency.saturating_record(lat.max(1_000));
                    match (is_get, reply) {
                        (_, Reply::Error(_)) => rep.errors += 1,
                        (true, Reply::Bulk(None)) => rep.gets += 1,
                        (true, Reply::Bulk(Some(v))) => {
                            rep.gets += 1;
                            rep.hits += 1;
                            if !v.starts_with(&value_for(k, 0)) {
                                rep.wrong += 1;
                            }
                        }
                        (false, Reply::Simple(s)) if s == "OK" => rep.sets += 1,
                        _ => rep.wrong += 1,
                    }
                }
                c.inbuf.drain(..used);
            }
        }
        progress.ops.fetch_add(round_ops, Ordering::Relaxed);
    }
    Ok(rep)
}
