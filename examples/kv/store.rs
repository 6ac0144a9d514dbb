//! The storage actor: one per shard, owner of that shard's [`Partition`] and [`Log`].
//!
//! # Group commit
//!
//! A [`StoreMsg::Batch`] is applied to the map at once and its records are encoded into the
//! log's buffer, but its reply is held back. The first held reply makes the store send itself a
//! [`StoreMsg::Commit`]; the mailbox is FIFO, so every batch queued before that `Commit` is
//! applied first and the `Commit` then writes all their records with one `write` (and, with
//! [`Fsync::Always`], one `fdatasync`) before releasing all their replies. A reply therefore
//! means "logged" (with `Always`: "on stable storage"), and the more clients write at once the
//! larger the commits get.
//!
//! Read-only batches are answered at once unless replies are being held; then they wait too,
//! so no client reads a value whose write could still be lost.
//!
//! With [`Fsync::Every`] an interval timer syncs the log when it has unsynced records. Syncs
//! run on the shard's thread: while one runs, that shard serves nothing else.
//!
//! # Lifecycle
//!
//! * **I-phase.** `init` registers `kv.shard.N` in the runtime's registry and acquires the
//!   [`REPLAY`] resource; the log is replayed in chunks of [`REPLAY_CHUNK`] bytes, one
//!   [`StoreMsg::ReplayStep`] each (sent to itself with `notify`, so the shard serves its
//!   other actors between chunks), and the resource is released when the replay is done. The
//!   store becomes operational (and its name usable by clients that link "operational only")
//!   only then. A log that cannot be opened or read fails the init.
//! * **S-phase.** `stopping` acquires the [`FLUSH`] resource and sends itself
//!   [`StoreMsg::FinalFlush`]; that message (behind every batch already queued) commits, syncs,
//!   reports the outcome as [`EngineEvent::Flushed`] and releases the resource, which lets the
//!   S-phase go on (names unregistered, then the linked acceptors are waited for). Batches that
//!   still arrive are served as usual; `stopped` writes out and syncs whatever they logged.

use super::resp::Limits;
use super::storage::{Fsync, Log, Op, OpResult, Partition, Recovery, Replay, log_path};
use super::wiring::{EngineEvent, Events};
use coreactor::plugins::resources::ResourceId;
use coreactor::{Actor, Context, Reply, StopReason};
use std::path::PathBuf;

/// The resource that holds the I-phase while the log is replayed.
pub const REPLAY: ResourceId = 1;
/// The resource that holds the S-phase until the final flush is done.
pub const FLUSH: ResourceId = 2;
/// Log bytes replayed per [`StoreMsg::ReplayStep`].
pub const REPLAY_CHUNK: u64 = 4 << 20;

/// The registry name of shard `shard`'s store.
pub fn store_name(shard: usize) -> String {
    format!("kv.shard.{shard}")
}

/// One request inside a batch: `tag` is the caller's, handed back with the result.
#[derive(Debug)]
pub struct Item {
    /// The caller's tag (a connection's command sequence number and part index).
    pub tag: Tag,
    /// What to do.
    pub op: Op,
}

/// Identifies one part of one command of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The command's sequence number on its connection.
    pub seq: u64,
    /// Which part of the command (the key index for multi-key commands).
    pub part: u32,
}

/// Results of a batch, in the batch's order.
pub type Results = Vec<(Tag, OpResult)>;

/// Per-store counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// The shard.
    pub shard: usize,
    /// Operations applied.
    pub ops: u64,
    /// Of which could write.
    pub writes: u64,
    /// Batches received.
    pub batches: u64,
    /// Commits (one `write` each).
    pub commits: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Keys now.
    pub keys: u64,
    /// Log bytes (written and buffered).
    pub log_bytes: u64,
    /// What the replay at start found.
    pub recovery: Recovery,
}

/// Messages of the [`Store`].
pub enum StoreMsg {
    /// Apply these operations; answer their results (after they are committed if any wrote).
    Batch(Vec<Item>, Reply<Results>),
    /// Write out (and with `Always`, sync) buffered records and release held replies.
    Commit,
    /// The periodic sync of [`Fsync::Every`].
    Tick,
    /// Replay the next chunk of the log (I-phase; sent by the store to itself).
    ReplayStep,
    /// A snapshot of the counters.
    Stats(Reply<StoreStats>),
    /// Write out and sync everything, then release [`FLUSH`] (S-phase; sent by the store to
    /// itself).
    FinalFlush,
}

/// Where a store keeps its log and how it syncs it.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory.
    pub dir: PathBuf,
    /// The sync policy.
    pub fsync: Fsync,
    /// Request limits (also bound log records at replay).
    pub limits: Limits,
    /// Where replay outcomes and final flushes are reported.
    pub events: Events,
}

/// Where a store is in its life.
enum Phase {
    /// Not initialized yet.
    New,
    /// Replaying its log into the partition (the I-phase).
    Replaying(Partition, Replay),
    /// Serving.
    Ready(Partition, Log),
    /// Refusing everything: why.
    Failed(String),
}

/// The storage actor of one shard. See the [module docs](self).
pub struct Store {
    shard: usize,
    cfg: StoreConfig,
    state: Phase,
    held: Vec<(Reply<Results>, Results)>,
    commit_queued: bool,
    stats: StoreStats,
}

impl Store {
    /// A store for shard `shard`; it opens and replays its log in its I-phase, on its shard.
    pub fn new(shard: usize, cfg: StoreConfig) -> Store {
        Store {
            shard,
            cfg,
            state: Phase::New,
            held: Vec::new(),
            commit_queued: false,
            stats: StoreStats {
                shard,
                ..StoreStats::default()
            },
        }
    }

    fn batch(&mut self, items: Vec<Item>, reply: Reply<Results>, ctx: &mut Context<'_, Self>) {
        self.stats.batches += 1;
        let Phase::Ready(part, log) = &mut self.state else {
            let res = items
                .into_iter()
                .map(|i| (i.tag, OpResult::Err("ERR storage unavailable")))
                .collect();
            reply.send(res);
            return;
        };
        let mut wrote = false;
        let mut res = Vec::with_capacity(items.len());
        for Item { tag, op } in items {
            self.stats.ops += 1;
            if op.is_write() {
                self.stats.writes += 1;
                wrote = true;
            }
            res.push((tag, part.apply(op, log)));
        }
        if !wrote && self.held.is_empty() {
            reply.send(res);
            return;
        }
        self.held.push((reply, res));
        if !self.commit_queued {
            self.commit_queued = true;
            // Behind every batch already queued: they join this commit. A full mailbox cannot
            // refuse a timer message, so fall back to one (it fires at the next tick).
            if let Err(e) = ctx.addr().try_tell(StoreMsg::Commit) {
                drop(e);
                ctx.send_after(std::time::Duration::ZERO, StoreMsg::Commit);
            }
        }
    }

    fn commit(&mut self) {
        self.commit_queued = false;
        let outcome = match &mut self.state {
            Phase::Ready(_, log) => {
                let had = log.has_buffered();
                let r = log.write_out().and_then(|()| {
                    if self.cfg.fsync == Fsync::Always {
                        log.sync()
                    } else {
                        Ok(false)
                    }
                });
                match r {
                    Ok(synced) => {
                        self.stats.commits += u64::from(had);
                        self.stats.syncs += u64::from(synced);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => {
                for (reply, res) in self.held.drain(..) {
                    reply.send(res);
                }
            }
            Err(e) => {
                // The map already holds writes the log does not: refuse to serve from now on
                // rather than acknowledge anything that could be lost.
                eprintln!("kv: shard {} log write failed: {e}", self.shard);
                self.state = Phase::Failed(format!("log write failed: {e}"));
                for (reply, res) in self.held.drain(..) {
                    reply.send(
                        res.into_iter()
                            .map(|(t, _)| (t, OpResult::Err("ERR storage failure")))
                            .collect(),
                    );
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        self.commit();
        match &mut self.state {
            Phase::Ready(_, log) => match log.sync() {
                Ok(synced) => {
                    self.stats.syncs += u64::from(synced);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            Phase::Failed(e) => Err(e.clone()),
            Phase::New | Phase::Replaying(..) => Err("stopped before its log was replayed".into()),
        }
    }

    /// The init failed: report it and stop (the I-phase fails with this reason).
    fn fail_init(&mut self, why: String, ctx: &mut Context<'_, Self>) {
        let why = format!("shard {}: {why}", self.shard);
        let _ = self.cfg.events.send(EngineEvent::Failed(why.clone()));
        self.state = Phase::Failed(why.clone());
        ctx.stop_with(StopReason::Failed(why));
    }

    /// One chunk of the replay; releases [`REPLAY`] when the log is all read.
    fn replay_step(&mut self, ctx: &mut Context<'_, Self>) {
        let Phase::Replaying(part, replay) = &mut self.state else {
            return;
        };
        let path = log_path(&self.cfg.dir, self.shard);
        match replay.step(part, REPLAY_CHUNK) {
            Ok(false) => ctx.notify(StoreMsg::ReplayStep),
            Ok(true) => {
                let Phase::Replaying(part, replay) = std::mem::replace(&mut self.state, Phase::New)
                else {
                    unreachable!("matched above");
                };
                match replay.finish(&part) {
                    Ok((log, rec)) => {
                        self.stats.recovery = rec;
                        self.state = Phase::Ready(part, log);
                        let _ = self.cfg.events.send(EngineEvent::Replayed(self.snapshot()));
                        ctx.release(REPLAY);
                    }
                    Err(e) => {
                        self.fail_init(format!("cannot truncate {}: {e}", path.display()), ctx)
                    }
                }
            }
            Err(e) => self.fail_init(format!("cannot read {}: {e}", path.display()), ctx),
        }
    }

    fn snapshot(&self) -> StoreStats {
        let mut s = self.stats;
        if let Phase::Ready(part, log) = &self.state {
            s.keys = part.len() as u64;
            s.log_bytes = log.len();
        }
        s
    }
}

impl Actor for Store {
    type Msg = StoreMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        // Both hold the I-phase: the registration until the registry confirms, the resource
        // until the replay is done.
        ctx.register_name(store_name(self.shard));
        let path = log_path(&self.cfg.dir, self.shard);
        match Replay::start(&path, &self.cfg.limits) {
            Ok(replay) => {
                self.state = Phase::Replaying(Partition::default(), replay);
                ctx.acquire(REPLAY);
                ctx.notify(StoreMsg::ReplayStep);
            }
            Err(e) => self.fail_init(format!("cannot open {}: {e}", path.display()), ctx),
        }
    }

    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        if let Fsync::Every(period) = self.cfg.fsync {
            ctx.interval(period, || StoreMsg::Tick);
        }
    }

    fn handle(&mut self, msg: StoreMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            StoreMsg::Batch(items, reply) => self.batch(items, reply, ctx),
            StoreMsg::Commit => self.commit(),
            StoreMsg::Tick => {
                if let Phase::Ready(_, log) = &mut self.state {
                    match log.sync() {
                        Ok(synced) => self.stats.syncs += u64::from(synced),
                        Err(e) => eprintln!("kv: shard {} fdatasync failed: {e}", self.shard),
                    }
                }
            }
            StoreMsg::ReplayStep => self.replay_step(ctx),
            StoreMsg::Stats(reply) => reply.send(self.snapshot()),
            StoreMsg::FinalFlush => {
                let outcome = self.flush();
                if let Err(e) = &outcome {
                    eprintln!("kv: shard {} final flush failed: {e}", self.shard);
                }
                let _ = self
                    .cfg
                    .events
                    .send(EngineEvent::Flushed(self.shard, outcome));
                ctx.release(FLUSH);
            }
        }
    }

    fn stopping(&mut self, _reason: &StopReason, ctx: &mut Context<'_, Self>) {
        // Only a store that served has anything to flush; a failed init does not wait.
        if matches!(self.state, Phase::Ready(..)) {
            ctx.acquire(FLUSH);
            ctx.notify(StoreMsg::FinalFlush);
        }
    }

    fn stopped(&mut self, _reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        // Batches handled after the final flush were written out by their commits; sync them
        // too. Held replies are dropped (their askers see an error: not acknowledged, though
        // the records may well be durable).
        if let Phase::Ready(_, log) = &mut self.state
            && let Err(e) = log.write_out().and_then(|()| log.sync().map(drop))
        {
            eprintln!("kv: shard {} last sync failed: {e}", self.shard);
            let _ = self
                .cfg
                .events
                .send(EngineEvent::Flushed(self.shard, Err(e.to_string())));
        }
    }
}
