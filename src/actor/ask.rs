//! Request/response: the [`Reply`] handle, the [`AskFuture`], and the continuation of an ask
//! made by an actor.

use super::Actor;
use super::cell::ActorCell;
use super::slot::{Poll as SlotPoll, ReplySlot};
use crate::error::AskError;
use crate::mailbox::erased::ErasedMsg;
use crate::shard::{Envelope, PendingAsk, REPLY_VT, RtShared, ShardLocal, ShardShared, route};
use crate::sync::Arc;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

enum ReplyTo<T> {
    /// An outside thread or a future waits on a slot.
    Slot(Arc<ReplySlot<T>>),
    /// An actor waits for a continuation on its shard's pending-ask table.
    Actor {
        shard: Arc<ShardShared>,
        index: u32,
        generation: u32,
    },
}

/// The handle through which an actor answers one ask.
///
/// Put it in the request message; the handler calls [`send`](Self::send) once. Dropping it
/// unanswered (or the actor stopping, panicking, or the runtime shutting down with the request
/// still queued) answers the asker with [`AskError::Dropped`] or [`AskError::Shutdown`]: an
/// asker always gets a reply or an error.
#[must_use = "dropping a Reply answers the asker with AskError::Dropped"]
pub struct Reply<T: Send + 'static> {
    to: Option<ReplyTo<T>>,
}

impl<T: Send + 'static> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply<")?;
        f.write_str(std::any::type_name::<T>())?;
        f.write_str(">")
    }
}

impl<T: Send + 'static> Reply<T> {
    pub(crate) fn for_thread(rt: &Arc<RtShared>) -> (Reply<T>, Arc<ReplySlot<T>>) {
        let slot = Arc::new(ReplySlot::new(
            Some(crate::sync::thread::current()),
            rt.late_replies.clone(),
        ));
        (
            Reply {
                to: Some(ReplyTo::Slot(slot.clone())),
            },
            slot,
        )
    }

    pub(crate) fn for_future(rt: &Arc<RtShared>) -> (Reply<T>, Arc<ReplySlot<T>>) {
        let slot = Arc::new(ReplySlot::new(None, rt.late_replies.clone()));
        (
            Reply {
                to: Some(ReplyTo::Slot(slot.clone())),
            },
            slot,
        )
    }

    pub(crate) fn for_actor(shard: Arc<ShardShared>, index: u32, generation: u32) -> Reply<T> {
        Reply {
            to: Some(ReplyTo::Actor {
                shard,
                index,
                generation,
            }),
        }
    }

    /// Answers the asker. A reply to an asker that already timed out is dropped and counted in
    /// the runtime's late replies.
    pub fn send(mut self, value: T) {
        self.complete(Ok(value));
    }

    /// Answers the asker with an error of the replier's choosing.
    pub fn fail(mut self, error: AskError) {
        self.complete(Err(error));
    }

    fn complete(&mut self, result: Result<T, AskError>) {
        match self.to.take() {
            Some(ReplyTo::Slot(slot)) => slot.fulfil(result),
            Some(ReplyTo::Actor {
                shard,
                index,
                generation,
            }) => {
                if shard.rt.is_stopping() {
                    return;
                }
                route(
                    &shard,
                    Envelope {
                        slot: index,
                        generation,
                        stamp: 0,
                        msg: ErasedMsg::new(result),
                        vt: &REPLY_VT,
                    },
                );
            }
            None => {}
        }
    }
}

impl<T: Send + 'static> Drop for Reply<T> {
    fn drop(&mut self) {
        if self.to.is_some() {
            let stopping = match &self.to {
                Some(ReplyTo::Actor { shard, .. }) => shard.rt.is_shutting_down(),
                _ => crate::shard::with_current(|c| {
                    c.is_some_and(|s| s.is_stopping() || s.rt.is_shutting_down())
                }),
            };
            let err = if stopping {
                AskError::Shutdown
            } else {
                AskError::Dropped
            };
            self.complete(Err(err));
        }
    }
}

/// The future of an [`Addr::ask_async`](crate::Addr::ask_async).
///
/// Dropping it before completion abandons the ask; the reply, if it still comes, is counted as
/// late.
#[must_use = "futures do nothing unless polled"]
pub struct AskFuture<T> {
    slot: Option<Arc<ReplySlot<T>>>,
    failed: Option<AskError>,
    timeout: Duration,
}

impl<T> AskFuture<T> {
    pub(crate) fn pending(slot: Arc<ReplySlot<T>>, timeout: Duration) -> Self {
        AskFuture {
            slot: Some(slot),
            failed: None,
            timeout,
        }
    }

    pub(crate) fn failed(error: AskError) -> Self {
        AskFuture {
            slot: None,
            failed: Some(error),
            timeout: Duration::ZERO,
        }
    }
}

impl<T> Unpin for AskFuture<T> {}

impl<T> Future for AskFuture<T> {
    type Output = Result<T, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Err(e));
        }
        let Some(slot) = self.slot.as_ref() else {
            return Poll::Ready(Err(AskError::Dropped));
        };
        let ready = |slot: &ReplySlot<T>, timeout| match slot.poll() {
            SlotPoll::Ready(r) => Some(r),
            SlotPoll::TimedOut => Some(Err(AskError::Timeout(timeout))),
            SlotPoll::Pending => None,
        };
        if let Some(r) = ready(slot, self.timeout) {
            self.slot = None;
            return Poll::Ready(r);
        }
        slot.register(cx.waker());
        if let Some(r) = ready(slot, self.timeout) {
            self.slot = None;
            return Poll::Ready(r);
        }
        Poll::Pending
    }
}

impl<T> Drop for AskFuture<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.cancel();
        }
    }
}

/// A pending ask of actor `A` expecting a `T`, completed by turning the result into one of
/// `A`'s own messages.
pub(crate) struct Pending<A: Actor, T, F> {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) timeout: Duration,
    pub(crate) then: F,
    pub(crate) _types: PhantomData<fn(A, T)>,
}

impl<A, T, F> PendingAsk for Pending<A, T, F>
where
    A: Actor,
    T: Send + 'static,
    F: FnOnce(Result<T, AskError>) -> A::Msg + 'static,
{
    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn complete(self: Box<Self>, shard: &ShardLocal, reply: Result<ErasedMsg, AskError>) {
        let result: Result<T, AskError> = match reply {
            // SAFETY: reply envelopes for this pending entry come only from the `Reply<T>` made
            // with its key in `Context::ask`, which erased a `Result<T, AskError>`.
            Ok(msg) => unsafe { msg.take::<Result<T, AskError>>() },
            Err(e) => Err(e),
        };
        let Pending {
            slot,
            generation,
            then,
            ..
        } = *self;
        let alive = shard
            .shared
            .table
            .get(slot)
            .is_some_and(|m| m.is_open(generation));
        if !alive {
            return;
        }
        let Ok(msg) = catch_unwind(AssertUnwindSafe(|| then(result))) else {
            shard.shared.counters.bump_panics();
            return;
        };
        let pushed = shard
            .with_typed_cell(slot, generation, |c: &ActorCell<A>| {
                c.unpin();
                if !c.accepting() {
                    return false;
                }
                c.meta(shard).add_forced(1);
                c.push(msg, shard.now_ns());
                true
            })
            .unwrap_or(false);
        if pushed {
            shard.schedule(slot);
        }
    }
}
