//! Pending asks of a shard's actors: keyed by index and generation, each with its timeout
//! timer; completed exactly once by the reply, the timeout, or a failed send.

use super::ShardLocal;
use crate::error::AskError;
use crate::mailbox::erased::ErasedMsg;
use crate::shard::{Envelope, EnvelopeKind, EnvelopeVTable};
use crate::sync::atomic::Ordering;
use crate::timer::TimerKey;
use std::time::Duration;

use super::timers::TimerAction;

/// A pending ask of an actor of this shard: completes exactly once, with the reply or an error.
pub(crate) trait PendingAsk: 'static {
    /// The timeout the ask was made with.
    fn timeout(&self) -> Duration;
    /// Completes the ask. `reply` holds the `Result<T, AskError>` the replier sent.
    fn complete(self: Box<Self>, shard: &ShardLocal, reply: Result<ErasedMsg, AskError>);
}

struct AskEntry {
    generation: u32,
    pending: Option<Box<dyn PendingAsk>>,
    timer: Option<TimerKey>,
    /// The error to report when the request could not be sent (its `Reply` comes back dropped).
    send_failed: Option<AskError>,
}

/// Pending asks of this shard's actors, keyed by `(index, generation)`.
#[derive(Default)]
pub(crate) struct AskTable {
    entries: Vec<AskEntry>,
    free: Vec<u32>,
}

impl AskTable {
    fn insert(&mut self, pending: Box<dyn PendingAsk>) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(AskEntry {
                    generation: 0,
                    pending: None,
                    timer: None,
                    send_failed: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        e.generation = e.generation.wrapping_add(1);
        e.pending = Some(pending);
        (index, e.generation)
    }

    fn entry(&mut self, index: u32, generation: u32) -> Option<&mut AskEntry> {
        self.entries
            .get_mut(index as usize)
            .filter(|e| e.generation == generation && e.pending.is_some())
    }

    fn take(&mut self, index: u32, generation: u32) -> Option<AskEntry> {
        let e = self.entry(index, generation)?;
        let taken = AskEntry {
            generation,
            pending: e.pending.take(),
            timer: e.timer.take(),
            send_failed: e.send_failed.take(),
        };
        self.free.push(index);
        Some(taken)
    }

    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

impl ShardLocal {
    /// Registers a pending ask with its timeout; returns its key.
    pub(crate) fn add_ask(&self, pending: Box<dyn PendingAsk>, timeout: Duration) -> (u32, u32) {
        let (index, generation) = self.asks.borrow_mut().insert(pending);
        let key = self.add_timer(timeout, TimerAction::AskTimeout { index, generation });
        if let Some(e) = self.asks.borrow_mut().entry(index, generation) {
            e.timer = Some(key);
        }
        (index, generation)
    }

    /// The request of a pending ask could not be sent: its reply will come back dropped, and
    /// the ask completes with `error` then.
    pub(crate) fn ask_send_failed(&self, index: u32, generation: u32, error: AskError) {
        let timer = {
            let mut asks = self.asks.borrow_mut();
            asks.entry(index, generation).and_then(|e| {
                e.send_failed = Some(error);
                e.timer.take()
            })
        };
        if let Some(t) = timer {
            self.cancel_timer(t);
        }
    }

    pub(super) fn ask_timed_out(&self, index: u32, generation: u32) {
        let taken = self.asks.borrow_mut().take(index, generation);
        if let Some(AskEntry {
            pending: Some(p), ..
        }) = taken
        {
            let timeout = p.timeout();
            p.complete(self, Err(AskError::Timeout(timeout)));
        }
    }

    /// Delivers a reply envelope to its pending ask, or counts it late.
    pub(crate) fn deliver_reply(&self, env: Envelope) {
        let taken = self.asks.borrow_mut().take(env.slot, env.generation);
        match taken {
            Some(AskEntry {
                pending: Some(p),
                timer,
                send_failed,
                ..
            }) => {
                if let Some(t) = timer {
                    self.cancel_timer(t);
                }
                match send_failed {
                    Some(err) => {
                        drop(env);
                        p.complete(self, Err(err));
                    }
                    None => p.complete(self, Ok(env.msg)),
                }
            }
            _ => {
                self.rt.late_replies.fetch_add(1, Ordering::Relaxed);
                drop(env);
            }
        }
    }

    /// Number of asks of this shard's actors that wait for a reply.
    pub(crate) fn pending_asks(&self) -> usize {
        self.asks.borrow().len()
    }
}

/// The vtable of reply envelopes (shard-level: the pending ask knows the types).
pub(crate) static REPLY_VT: EnvelopeVTable = EnvelopeVTable {
    deliver: |shard, env| shard.deliver_reply(env),
    push_in_run: None,
    split: None,
    gather: None,
    kind: EnvelopeKind::Reply,
    type_name: || "ask reply",
};
