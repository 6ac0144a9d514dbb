//! How the engine is put together, in one place so it can move to supervisors later.
//!
//! Start order:
//!
//! 1. build the runtime (one shard per partition);
//! 2. spawn a [`Store`] on every shard (it opens and replays its log in `started`, on its own
//!    thread);
//! 3. ask every store [`StoreMsg::Replayed`]: the engine serves nothing until every partition
//!    is back, and a store that could not open its log fails the start;
//! 4. bind the listener and spawn an [`Acceptor`] on every shard with its own clone of it and
//!    the addresses of all stores;
//! 5. ask every acceptor [`AcceptorMsg::Start`]: only now are connections accepted.
//!
//! Stop order ([`Engine::shutdown`]): pause the acceptors, ask every store to
//! [`StoreMsg::Flush`] (write out and sync its log), then shut the runtime down, which stops
//! the connections and the stores.
//!
//! When the runtime grows supervisors, a registry and resources, step 2–3 become "a supervisor
//! per shard starts `Store`, which registers `kv.shard.N` and holds its init until replayed"
//! and step 4–5 "the acceptor discovers and links to the stores and starts when they are all
//! operational"; nothing outside this module changes.

use super::conn::{Acceptor, AcceptorMsg, ConnConfig};
use super::storage::Fsync;
use super::store::{Store, StoreConfig, StoreMsg, StoreStats};
use coreactor::net::TcpAcceptor;
use coreactor::{Addr, Runtime, ShardStats};
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a start or stop step may wait for an actor's answer.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// File in the data directory that records the partition count.
const SHARDS_FILE: &str = "SHARDS";

/// Everything needed to start an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Shards (partitions); `None`: as recorded in `dir`, else the runtime's default (one per
    /// CPU).
    pub shards: Option<usize>,
    /// The log sync policy.
    pub fsync: Fsync,
    /// Connection settings and request limits.
    pub conn: ConnConfig,
}

/// A running engine.
pub struct Engine {
    rt: Runtime,
    stores: Arc<[Addr<Store>]>,
    acceptors: Vec<Addr<Acceptor>>,
    addr: SocketAddr,
    recovered: Vec<StoreStats>,
}

/// The partition count recorded in `dir`, or `wanted` (else `default`) recorded there.
fn partition_count(
    dir: &Path,
    wanted: Option<usize>,
    default: usize,
) -> Result<usize, Box<dyn Error>> {
    let file = dir.join(SHARDS_FILE);
    match std::fs::read_to_string(&file) {
        Ok(s) => {
            let n: usize = s
                .trim()
                .parse()
                .map_err(|_| format!("corrupt {}", file.display()))?;
            if let Some(w) = wanted.filter(|&w| w != n) {
                return Err(format!(
                    "{} holds {n} partitions; it cannot be served with --shards {w}",
                    dir.display()
                )
                .into());
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let n = wanted.unwrap_or(default).max(1);
            std::fs::write(&file, format!("{n}\n"))?;
            Ok(n)
        }
        Err(e) => Err(e.into()),
    }
}

impl Engine {
    /// Starts an engine; returns once it accepts connections.
    ///
    /// # Errors
    ///
    /// A data directory that cannot be used, a log that cannot be opened, a listener that
    /// cannot be bound, or a runtime that cannot start.
    pub fn start(cfg: EngineConfig) -> Result<Engine, Box<dyn Error>> {
        std::fs::create_dir_all(&cfg.dir)?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = partition_count(&cfg.dir, cfg.shards, cpus)?;
        let rt = Runtime::builder()
            .shards(shards)
            .mailbox_capacity(16 * 1024)
            .build()?;

        // Steps 2-3: stores, each replayed before anything is served.
        let store_cfg = StoreConfig {
            dir: cfg.dir.clone(),
            fsync: cfg.fsync,
            limits: cfg.conn.limits,
        };
        let mut stores = Vec::with_capacity(shards);
        for shard in 0..shards {
            let sc = store_cfg.clone();
            stores.push(rt.spawn_with(shard, move || Store::new(shard, sc))?);
        }
        let mut recovered = Vec::with_capacity(shards);
        for s in &stores {
            s.ask(StoreMsg::Replayed, STEP_TIMEOUT)?
                .map_err(|e| format!("shard {}: {e}", s.shard()))?;
            recovered.push(s.ask(StoreMsg::Stats, STEP_TIMEOUT)?);
        }
        let stores: Arc<[Addr<Store>]> = stores.into();

        // Steps 4-5: acceptors sharing one listener, started once every store is up.
        let listener = TcpAcceptor::bind(cfg.listen)?;
        let addr = listener.local_addr()?;
        let conn_cfg = Arc::new(cfg.conn.clone());
        let mut acceptors = Vec::with_capacity(shards);
        for shard in 0..shards {
            let l = listener.try_clone()?;
            let (st, cc) = (stores.clone(), conn_cfg.clone());
            acceptors.push(rt.spawn_with(shard, move || Acceptor::new(l, st, cc))?);
        }
        drop(listener);
        for a in &acceptors {
            a.ask(AcceptorMsg::Start, STEP_TIMEOUT)?
                .map_err(|e| format!("acceptor on shard {}: {e}", a.shard()))?;
        }
        Ok(Engine {
            rt,
            stores,
            acceptors,
            addr,
            recovered,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store counters as they were right after replay.
    pub fn recovered(&self) -> &[StoreStats] {
        &self.recovered
    }

    /// Current store counters, one per shard (`None` for a store that did not answer).
    pub fn store_stats(&self) -> Vec<Option<StoreStats>> {
        self.stores
            .iter()
            .map(|s| s.ask(StoreMsg::Stats, STEP_TIMEOUT).ok())
            .collect()
    }

    /// Connections accepted per shard.
    pub fn accepted(&self) -> Vec<u64> {
        self.acceptors
            .iter()
            .map(|a| a.ask(AcceptorMsg::Accepted, STEP_TIMEOUT).unwrap_or(0))
            .collect()
    }

    /// The runtime's per-shard counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.rt.shard_stats()
    }

    /// Stops accepting, flushes and syncs every log, and shuts the runtime down.
    ///
    /// # Errors
    ///
    /// The first flush failure or the runtime's shutdown error (every step is attempted).
    pub fn shutdown(self) -> Result<(), Box<dyn Error>> {
        for a in &self.acceptors {
            let _ = a.ask(AcceptorMsg::Pause, STEP_TIMEOUT);
        }
        let mut first: Option<Box<dyn Error>> = None;
        for s in self.stores.iter() {
            let r = s.ask(StoreMsg::Flush, STEP_TIMEOUT);
            let r = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("shard {}: {e}", s.shard()),
                Err(e) => format!("shard {}: {e}", s.shard()),
            };
            first.get_or_insert_with(|| r.into());
        }
        let shut = self.rt.shutdown();
        match (first, shut) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(e.into()),
            (None, Ok(())) => Ok(()),
        }
    }
}
