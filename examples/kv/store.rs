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

use super::resp::Limits;
use super::storage::{Fsync, Log, Op, OpResult, Partition, Recovery, log_path};
use coreactor::{Actor, Context, Reply, StopReason};
use std::path::PathBuf;

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
    /// Answers once the log is replayed: what replay found, or why the store cannot serve.
    Replayed(Reply<Result<Recovery, String>>),
    /// A snapshot of the counters.
    Stats(Reply<StoreStats>),
    /// Write out and sync everything now (graceful shutdown).
    Flush(Reply<Result<(), String>>),
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
}

/// The storage actor of one shard. See the [module docs](self).
pub struct Store {
    shard: usize,
    cfg: StoreConfig,
    state: Result<(Partition, Log), String>,
    held: Vec<(Reply<Results>, Results)>,
    commit_queued: bool,
    stats: StoreStats,
}

impl Store {
    /// A store for shard `shard`; it opens and replays its log in `started`, on its shard.
    pub fn new(shard: usize, cfg: StoreConfig) -> Store {
        Store {
            shard,
            cfg,
            state: Err("not started".into()),
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
        let Ok((part, log)) = &mut self.state else {
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
            Ok((_, log)) => {
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
            Err(_) => Ok(()),
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
                self.state = Err(format!("log write failed: {e}"));
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
            Ok((_, log)) => log.sync().map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Actor for Store {
    type Msg = StoreMsg;

    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        let path = log_path(&self.cfg.dir, self.shard);
        let mut part = Partition::default();
        self.state = match Log::open(&path, &mut part, &self.cfg.limits) {
            Ok((log, rec)) => {
                self.stats.recovery = rec;
                Ok((part, log))
            }
            Err(e) => Err(format!("cannot open {}: {e}", path.display())),
        };
        if let Fsync::Every(period) = self.cfg.fsync {
            ctx.interval(period, || StoreMsg::Tick);
        }
    }

    fn handle(&mut self, msg: StoreMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            StoreMsg::Batch(items, reply) => self.batch(items, reply, ctx),
            StoreMsg::Commit => self.commit(),
            StoreMsg::Tick => {
                if let Ok((_, log)) = &mut self.state {
                    match log.sync() {
                        Ok(synced) => self.stats.syncs += u64::from(synced),
                        Err(e) => eprintln!("kv: shard {} fdatasync failed: {e}", self.shard),
                    }
                }
            }
            StoreMsg::Replayed(reply) => {
                reply.send(
                    self.state
                        .as_ref()
                        .map(|_| self.stats.recovery)
                        .map_err(Clone::clone),
                );
            }
            StoreMsg::Stats(reply) => {
                let mut s = self.stats;
                if let Ok((part, log)) = &self.state {
                    s.keys = part.len() as u64;
                    s.log_bytes = log.len();
                }
                reply.send(s);
            }
            StoreMsg::Flush(reply) => reply.send(self.flush()),
        }
    }

    fn stopped(&mut self, _reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        // Whatever was applied gets logged; held replies are dropped (their askers see an
        // error: not acknowledged, though the records may well be durable).
        if let Ok((_, log)) = &mut self.state {
            let _ = log.write_out().and_then(|()| log.sync());
        }
    }
}
