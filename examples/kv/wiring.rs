//! How the engine is put together: the supervision tree, who holds which lifecycle phase, and
//! the start and stop order. The only place that knows how the actors find each other.
//!
//! ```text
//! root Supervisor (shard 0, one-for-one)            registry (shard 0)
//!  ├─ "shard-0" Supervisor (shard 0, one-for-one)      ▲ kv.shard.0 … kv.shard.N-1
//!  │   ├─ "store"    Store    (shard 0) ── registers kv.shard.0, holds its I-phase (REPLAY)
//!  │   └─ "acceptor" Acceptor (shard 0) ── discovers + links to every kv.shard.*
//!  │                  └─ Conn… (shard 0, linked to their acceptor)
//!  ├─ "shard-1" Supervisor (shard 1) …
//!  …
//! ```
//!
//! Start ([`Engine::start`]):
//!
//! 1. build the runtime with the registry (one shard per partition) and bind the listener;
//! 2. spawn the root supervisor (no children: it is operational at once) and add one shard
//!    supervisor per shard with `StartChild`, so the shards' I-phases are bounded by
//!    [`INIT_TIMEOUT`] (a root actor's own init timeout is the runtime's 5 s default, too
//!    short for a long replay);
//! 3. each store registers `kv.shard.N` and replays its log in its I-phase, holding the
//!    `REPLAY` resource; each acceptor discovers every store (waiting for names not yet
//!    registered) and links to it, "operational only", so its I-phase ends when every store
//!    has replayed; it registers the listener in `started` and reports
//!    [`EngineEvent::Accepting`];
//! 4. `start` returns once every shard accepts, or fails at the first [`EngineEvent::Failed`].
//!
//! Stop ([`Engine::shutdown`]) is the runtime's graceful shutdown: the root supervisor stops
//! the shard supervisors, which stop their store and acceptor; acceptors deregister the
//! listener at once, links make connections stop before their acceptor and acceptors before
//! the stores they use; each store's S-phase holds the `FLUSH` resource until its final write
//! and `fdatasync` are done, and reports [`EngineEvent::Flushed`], which `shutdown` checks
//! for every shard.

use super::conn::{Acceptor, AcceptorMsg, ConnConfig};
use super::storage::Fsync;
use super::store::{Store, StoreConfig, StoreMsg, StoreStats};
use coreactor::net::TcpAcceptor;
use coreactor::supervisor::{ChildSpec, Supervisor, SupervisorMsg};
use coreactor::{Actor, Addr, Runtime, ShardStats};
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long an ask of the engine (stats, a supervisor's children) may wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The I-phase timeout of shard supervisors, stores and acceptors: bounds a log replay.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(600);

/// The S-phase timeout of a store (final flush, then waiting for its acceptors to unlink).
const STORE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The S-phase timeout of an acceptor (waiting for its connections) and of a shard
/// supervisor (waiting for both children): each above what it waits for.
const ACCEPTOR_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
const SHARD_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(40);

/// The runtime's graceful shutdown phase: above every S-phase timeout.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// File in the data directory that records the partition count.
const SHARDS_FILE: &str = "SHARDS";

/// What the engine's actors report to the thread that started it.
#[derive(Debug)]
pub enum EngineEvent {
    /// A store finished its replay (its counters then).
    Replayed(StoreStats),
    /// The acceptor of this shard accepts connections.
    Accepting(usize),
    /// A store or acceptor could not initialize: why.
    Failed(String),
    /// A store's final flush (or its last sync after it): the outcome.
    Flushed(usize, Result<(), String>),
}

/// Where actors send [`EngineEvent`]s.
pub type Events = mpsc::Sender<EngineEvent>;

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
    root: Addr<Supervisor>,
    addr: SocketAddr,
    recovered: Vec<StoreStats>,
    events: mpsc::Receiver<EngineEvent>,
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

/// The name of shard `shard`'s supervisor under the root.
fn shard_sup_name(shard: usize) -> String {
    format!("shard-{shard}")
}

/// Shard `shard`'s supervisor: its store, then its acceptor (one-for-one, permanent).
fn shard_spec(
    shard: usize,
    shards: usize,
    store: StoreConfig,
    listener: Arc<TcpAcceptor>,
    conn: Arc<ConnConfig>,
    events: Events,
) -> ChildSpec {
    let store = ChildSpec::new("store", move || Store::new(shard, store.clone()))
        .on_shard(shard)
        .init_timeout(INIT_TIMEOUT)
        .shutdown_timeout(STORE_SHUTDOWN_TIMEOUT);
    let acceptor = ChildSpec::new("acceptor", move || {
        Acceptor::new(listener.try_clone(), shards, conn.clone(), events.clone())
    })
    .on_shard(shard)
    .init_timeout(INIT_TIMEOUT)
    .shutdown_timeout(ACCEPTOR_SHUTDOWN_TIMEOUT);
    ChildSpec::new(shard_sup_name(shard), move || {
        Supervisor::builder()
            .child(store.clone())
            .child(acceptor.clone())
            .build()
    })
    .on_shard(shard)
    .init_timeout(INIT_TIMEOUT + Duration::from_secs(1))
    .shutdown_timeout(SHARD_SHUTDOWN_TIMEOUT)
}

impl Engine {
    /// Starts an engine; returns once every shard accepts connections (every log replayed).
    ///
    /// # Errors
    ///
    /// A data directory that cannot be used, a log that cannot be opened or read, a listener
    /// that cannot be bound, a runtime that cannot start, or a tree that did not come up
    /// within [`INIT_TIMEOUT`].
    pub fn start(cfg: EngineConfig) -> Result<Engine, Box<dyn Error>> {
        std::fs::create_dir_all(&cfg.dir)?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = partition_count(&cfg.dir, cfg.shards, cpus)?;
        let rt = Runtime::builder()
            .shards(shards)
            .mailbox_capacity(16 * 1024)
            .shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT)
            .with_registry()
            .build()?;
        let listener = Arc::new(TcpAcceptor::bind(cfg.listen)?);
        let addr = listener.local_addr()?;
        let (tx, events) = mpsc::channel();
        let store_cfg = StoreConfig {
            dir: cfg.dir.clone(),
            fsync: cfg.fsync,
            limits: cfg.conn.limits,
            events: tx.clone(),
        };
        let conn_cfg = Arc::new(cfg.conn.clone());

        let root = rt.spawn_on(0, Supervisor::builder().build())?;
        for shard in 0..shards {
            let spec = shard_spec(
                shard,
                shards,
                store_cfg.clone(),
                listener.clone(),
                conn_cfg.clone(),
                tx.clone(),
            );
            root.ask(|r| SupervisorMsg::StartChild(spec, r), STEP_TIMEOUT)?
                .map_err(|e| format!("shard {shard}: {e}"))?;
        }
        drop((tx, store_cfg, listener));

        // Every shard accepting (so every store replayed), or the first failure.
        let deadline = Instant::now() + INIT_TIMEOUT + STEP_TIMEOUT;
        let mut recovered: Vec<Option<StoreStats>> = vec![None; shards];
        let mut accepting = vec![false; shards];
        while !(accepting.iter().all(|&a| a) && recovered.iter().all(Option::is_some)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let failure = match events.recv_timeout(left) {
                Ok(EngineEvent::Replayed(s)) => {
                    recovered[s.shard] = Some(s);
                    continue;
                }
                Ok(EngineEvent::Accepting(shard)) => {
                    accepting[shard] = true;
                    continue;
                }
                Ok(EngineEvent::Flushed(..)) => continue,
                Ok(EngineEvent::Failed(why)) => why,
                Err(_) => format!("the engine did not start within {left:?}"),
            };
            let _ = rt.shutdown();
            return Err(failure.into());
        }
        Ok(Engine {
            rt,
            root,
            addr,
            recovered: recovered.into_iter().flatten().collect(),
            events,
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

    /// The current incarnation of child `name` (`"store"`, `"acceptor"`) of shard `shard`'s
    /// supervisor, looked up through the tree (a restarted child has a new address).
    fn child<B: Actor>(&self, shard: usize, name: &str) -> Option<Addr<B>> {
        let sup = self
            .root
            .ask(
                |r| SupervisorMsg::Which(shard_sup_name(shard), r),
                STEP_TIMEOUT,
            )
            .ok()??
            .downcast::<Supervisor>()?;
        sup.ask(|r| SupervisorMsg::Which(name.into(), r), STEP_TIMEOUT)
            .ok()??
            .downcast::<B>()
    }

    /// Current store counters, one per shard (`None` for a store that did not answer).
    pub fn store_stats(&self) -> Vec<Option<StoreStats>> {
        (0..self.recovered.len())
            .map(|shard| {
                self.child::<Store>(shard, "store")?
                    .ask(StoreMsg::Stats, STEP_TIMEOUT)
                    .ok()
            })
            .collect()
    }

    /// Connections accepted per shard (by the current acceptor incarnations).
    pub fn accepted(&self) -> Vec<u64> {
        (0..self.recovered.len())
            .map(|shard| {
                self.child::<Acceptor>(shard, "acceptor")
                    .and_then(|a| a.ask(AcceptorMsg::Accepted, STEP_TIMEOUT).ok())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The runtime's per-shard counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.rt.shard_stats()
    }

    /// Shuts the runtime down gracefully, which takes the tree down in link order (see the
    /// [module docs](self)): every store flushes and syncs its log in its S-phase.
    ///
    /// # Errors
    ///
    /// A store whose final flush failed or did not run, else the runtime's shutdown error.
    pub fn shutdown(self) -> Result<(), Box<dyn Error>> {
        let shards = self.recovered.len();
        let shut = self.rt.shutdown();
        // Every thread is joined: every event the stores sent is in the channel. The last
        // report of a shard wins (a restarted store reports again; a failed last sync after
        // a good flush overrides it).
        let mut flushed: Vec<Option<Result<(), String>>> = vec![None; shards];
        for ev in self.events.try_iter() {
            if let EngineEvent::Flushed(shard, r) = ev
                && let Some(slot) = flushed.get_mut(shard)
            {
                *slot = Some(r);
            }
        }
        for (shard, f) in flushed.into_iter().enumerate() {
            match f {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(format!("shard {shard}: final flush: {e}").into()),
                None => return Err(format!("shard {shard}: the final flush did not run").into()),
            }
        }
        shut.map_err(Into::into)
    }
}
