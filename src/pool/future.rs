//! Futures of asks made through a pool, and the bounded blocking wait the pool's blocking
//! broadcast uses.

use super::PoolError;
use crate::sync::thread::{self, Thread};
use crate::{AskError, AskFuture};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The future of an ask through the pool ([`Pool::ask_async`](super::Pool::ask_async)):
/// an [`AskFuture`] whose errors are [`PoolError`]s, or a routing error ready at once.
///
/// The timeout is enforced by the member's shard, so the future completes even if nobody else
/// wakes it. Dropping it abandons the ask (a later reply is counted as late).
#[must_use = "futures do nothing unless polled"]
pub struct PoolAskFuture<T> {
    state: State<T>,
}

enum State<T> {
    Asking(AskFuture<T>),
    Failed(Option<PoolError>),
}

impl<T> PoolAskFuture<T> {
    pub(crate) fn asking(f: AskFuture<T>) -> Self {
        PoolAskFuture {
            state: State::Asking(f),
        }
    }

    pub(crate) fn failed(e: PoolError) -> Self {
        PoolAskFuture {
            state: State::Failed(Some(e)),
        }
    }
}

impl<T> fmt::Debug for PoolAskFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolAskFuture<")?;
        f.write_str(std::any::type_name::<T>())?;
        f.write_str(">")
    }
}

impl<T> Future for PoolAskFuture<T> {
    type Output = Result<T, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Asking(f) => Pin::new(f).poll(cx).map(|r| r.map_err(PoolError::Ask)),
            // Polled again after completion: answer like a completed `AskFuture` does.
            State::Failed(e) => {
                Poll::Ready(Err(e.take().unwrap_or(PoolError::Ask(AskError::Dropped))))
            }
        }
    }
}

/// The future of a broadcast ask ([`Pool::broadcast_async`](super::Pool::broadcast_async)):
/// one result per member, in member order, ready once every member has answered (or failed).
#[must_use = "futures do nothing unless polled"]
pub struct BroadcastFuture<T> {
    asks: Vec<PoolAskFuture<T>>,
    results: Vec<Option<Result<T, PoolError>>>,
    left: usize,
}

impl<T> BroadcastFuture<T> {
    pub(crate) fn new(asks: Vec<PoolAskFuture<T>>) -> Self {
        let left = asks.len();
        BroadcastFuture {
            results: asks.iter().map(|_| None).collect(),
            asks,
            left,
        }
    }

    /// Takes the results so far, reporting the members that have not answered as timed out
    /// (their asks are abandoned: late replies are counted by the runtime).
    fn finish_timed_out(&mut self, timeout: Duration) -> Vec<Result<T, PoolError>> {
        self.asks.clear();
        self.left = 0;
        std::mem::take(&mut self.results)
            .into_iter()
            .map(|r| r.unwrap_or(Err(PoolError::Ask(AskError::Timeout(timeout)))))
            .collect()
    }
}

impl<T> fmt::Debug for BroadcastFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastFuture")
            .field("members", &self.results.len())
            .field("waiting_for", &self.left)
            .finish()
    }
}

impl<T> Unpin for BroadcastFuture<T> {}

impl<T> Future for BroadcastFuture<T> {
    type Output = Vec<Result<T, PoolError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for (ask, result) in this.asks.iter_mut().zip(this.results.iter_mut()) {
            if result.is_none()
                && let Poll::Ready(r) = Pin::new(ask).poll(cx)
            {
                *result = Some(r);
                this.left -= 1;
            }
        }
        if this.left > 0 {
            return Poll::Pending;
        }
        this.asks.clear();
        Poll::Ready(
            std::mem::take(&mut this.results)
                .into_iter()
                .map(|r| r.unwrap_or(Err(PoolError::Ask(AskError::Dropped))))
                .collect(),
        )
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on the current (outside) thread, parking between wake-ups, until it is ready or
/// `timeout` has passed; then reports the members still missing as timed out.
pub(crate) fn wait_broadcast<T>(
    mut fut: BroadcastFuture<T>,
    timeout: Duration,
) -> Vec<Result<T, PoolError>> {
    // `Waker::from` takes std's `Arc` (not the shim's); it holds only the thread handle.
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
            return v;
        }
        let now = Instant::now();
        if now >= deadline {
            return fut.finish_timed_out(timeout);
        }
        thread::park_timeout(deadline - now);
    }
}
