//! The reply slot of an ask made from outside the runtime (a blocking call or a future).
//!
//! # Protocol
//!
//! One `ReplySlot` is shared (`Arc`) by exactly one asker and exactly one [`Reply`] holder
//! (the replier). `state` moves once out of `EMPTY`:
//!
//! * the replier writes the value into `value`, then CASes `EMPTY → READY` (Release, pairs with
//!   the asker's Acquire load of `READY` before it reads `value`); if the CAS fails the asker has
//!   given up, so the replier takes its own value back (it still owns the cell: the asker never
//!   reads `value` unless it saw `READY`) and reports a late reply;
//! * the asker, on timeout, CASes `EMPTY → TIMED_OUT`; if that fails the reply won the race and
//!   is delivered after all;
//! * an async asker's timer on the target shard may also CAS `EMPTY → TIMED_OUT`;
//! * an asker that gives up without wanting an answer (a dropped future) CASes
//!   `EMPTY → CANCELLED`; a reply that finds `CANCELLED` is dropped and counted late;
//! * an asker whose request could not even be sent CASes `EMPTY → QUIET` before dropping the
//!   request; the `Reply` inside then finds `QUIET` and is dropped without being counted (the
//!   asker already got `Full` or `Closed`).
//!
//! Hence each reply is delivered exactly once or reported (late-reply counter), never both and
//! never neither. After `READY`/`TIMED_OUT`, the replier wakes the asker: by unparking its
//! thread (blocking ask) or through the [`AtomicWaker`] (future).
//!
//! [`Reply`]: crate::Reply

use crate::error::AskError;
use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use crate::sync::{Arc, thread::Thread};
use std::task::Waker;

const EMPTY: u8 = 0;
const READY: u8 = 1;
const TIMED_OUT: u8 = 2;
const CANCELLED: u8 = 3;
const TAKEN: u8 = 4;
const QUIET: u8 = 5;

/// What a poll of the slot found.
#[derive(Debug)]
pub enum Poll<T> {
    /// The reply (or the replier's error).
    Ready(Result<T, AskError>),
    /// The ask timed out.
    TimedOut,
    /// Nothing yet.
    Pending,
}

/// A one-shot lock-free slot for one reply.
pub struct ReplySlot<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<Result<T, AskError>>>,
    thread: Option<Thread>,
    waker: AtomicWaker,
    late: Arc<AtomicU64>,
}

// SAFETY: `value` is accessed by at most one thread at a time by the protocol in the module docs
// (the replier before its CAS, the asker only after observing READY); `T: Send` lets the value
// cross threads.
unsafe impl<T: Send> Sync for ReplySlot<T> {}
// SAFETY: as above; every other field is Send.
unsafe impl<T: Send> Send for ReplySlot<T> {}

impl<T> ReplySlot<T> {
    /// A slot whose asker is `thread` (unparked on completion) or a future (`None`), counting
    /// late replies in `late`.
    pub fn new(thread: Option<Thread>, late: Arc<AtomicU64>) -> Self {
        ReplySlot {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
            thread,
            waker: AtomicWaker::new(),
            late,
        }
    }

    /// Replier: delivers `result`, or reports it late if the asker gave up.
    pub fn fulfil(&self, result: Result<T, AskError>) {
        // SAFETY: the replier is the only writer, and the asker reads `value` only after it
        // observes READY, which is published by the CAS below: no concurrent access.
        self.value.with_mut(|v| unsafe { *v = Some(result) });
        // Release pairs with the asker's Acquire load in `poll`, making the value visible.
        match self
            .state
            .compare_exchange(EMPTY, READY, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => self.wake(),
            Err(actual) => {
                // SAFETY: the asker gave up (TIMED_OUT, CANCELLED or QUIET) and never reads
                // `value`; the replier still owns the cell.
                let late = self.value.with_mut(|v| unsafe { (*v).take() });
                drop(late);
                if actual != QUIET {
                    self.late.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Asker: takes the reply if it is there.
    pub fn poll(&self) -> Poll<T> {
        // Acquire pairs with the Release CAS in `fulfil`.
        match self.state.load(Ordering::Acquire) {
            READY => {
                self.state.store(TAKEN, Ordering::Relaxed);
                // SAFETY: READY was observed with Acquire, so the replier's write happened
                // before and the replier no longer touches the cell; TAKEN makes this the only
                // read.
                let v = self.value.with_mut(|v| unsafe { (*v).take() });
                Poll::Ready(v.unwrap_or(Err(AskError::Dropped)))
            }
            TIMED_OUT => Poll::TimedOut,
            _ => Poll::Pending,
        }
    }

    /// Asker (or a timer): gives up with a timeout. False if the reply arrived first (then
    /// [`poll`](Self::poll) returns it).
    pub fn time_out(&self) -> bool {
        let won = self
            .state
            .compare_exchange(EMPTY, TIMED_OUT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            self.wake();
        }
        won
    }

    /// Asker: gives up without wanting an answer; a later reply is dropped and counted late.
    pub fn cancel(&self) {
        let _ = self
            .state
            .compare_exchange(EMPTY, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Silently settles a slot whose request was never sent: a reply from the dropped request
    /// is not a late reply.
    pub fn cancel_quietly(&self) {
        let _ = self
            .state
            .compare_exchange(EMPTY, QUIET, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Registers the future's waker.
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.unpark();
        }
        self.waker.wake();
    }
}

/// A waker cell with one registering task and any number of wakers, lock-free.
///
/// `state` is `WAITING` (idle), `REGISTERING` (a register is storing the waker) or has the
/// `WAKING` bit (a wake is taking it). A register that overlaps a wake sees `WAKING` when it
/// tries to return to `WAITING`, and wakes the new waker itself, so no wake-up is lost.
pub(crate) struct AtomicWaker {
    state: AtomicU8,
    waker: UnsafeCell<Option<Waker>>,
}

const WAITING: u8 = 0;
const REGISTERING: u8 = 1;
const WAKING: u8 = 2;

// SAFETY: `waker` is only accessed by the thread that moved `state` out of WAITING (into
// REGISTERING or WAKING), so at most one thread touches it at a time.
unsafe impl Sync for AtomicWaker {}
// SAFETY: `Waker` is Send.
unsafe impl Send for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker {
            state: AtomicU8::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` to be woken by the next [`wake`](Self::wake).
    pub(crate) fn register(&self, waker: &Waker) {
        // Acquire pairs with the Release that returned the state to WAITING after a wake.
        match self.state.compare_exchange(
            WAITING,
            REGISTERING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: we moved the state out of WAITING, so we own the cell.
                self.waker.with_mut(|w| unsafe {
                    match &mut *w {
                        Some(old) if old.will_wake(waker) => {}
                        slot => *slot = Some(waker.clone()),
                    }
                });
                // Release publishes the stored waker to the next `wake`.
                match self.state.compare_exchange(
                    REGISTERING,
                    WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {}
                    Err(_) => {
                        // A wake arrived while we registered (state is REGISTERING|WAKING): it
                        // did not touch the cell, so we take the waker and wake it ourselves.
                        // SAFETY: the state still has REGISTERING, so we still own the cell.
                        let w = self.waker.with_mut(|w| unsafe { (*w).take() });
                        self.state.swap(WAITING, Ordering::AcqRel);
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                }
            }
            Err(WAKING) => waker.wake_by_ref(),
            Err(_) => {
                // Another register in progress: impossible with one registering task, but
                // waking is always safe.
                waker.wake_by_ref();
            }
        }
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        // AcqRel: Acquire pairs with the Release in `register` that stored the waker.
        if self.state.fetch_or(WAKING, Ordering::AcqRel) == WAITING {
            // SAFETY: we moved the state from WAITING to WAKING, so we own the cell.
            let w = self.waker.with_mut(|w| unsafe { (*w).take() });
            // Release pairs with the Acquire in `register`.
            self.state.fetch_and(!WAKING, Ordering::Release);
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}
