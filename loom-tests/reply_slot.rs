#![cfg(coreactor_loom)]
//! Loom models of the one-shot reply slot of asks made from outside the runtime
//! (`src/actor/slot.rs`: `ReplySlot` and its `AtomicWaker`).
//!
//! Property of every model: each reply is delivered to the asker exactly once, or reported
//! through the late-reply counter, never both and never neither (except `cancel_quietly`,
//! whose reply is neither delivered nor counted); and the value is dropped exactly once,
//! whoever drops it (asker, replier, or the last owner of the slot).
//!
//! Models:
//!
//! * (a) `reply_vs_timeout`: a blocking asker whose deadline has passed polls, then times out,
//!   racing the replier; `blocking_ask_is_unparked`: a blocking asker parks until the reply
//!   unparks it (a lost unpark shows as a loom deadlock).
//! * (b) `reply_vs_timer_vs_poll`: an async asker (the executor: a thread polling the way
//!   `AskFuture::poll` does and parking until its waker fires), the replier and the shard's
//!   ask timer (`time_out`) all race. A lost wake-up leaves the executor parked forever, which
//!   loom reports as a deadlock.
//! * (c) `cancel_vs_reply`: the future is polled once and dropped (`cancel`) while the reply
//!   arrives: a reply that finds the ask cancelled is counted late exactly once.
//! * (d) `cancel_quietly_vs_reply`: a request that was never sent settles its slot quietly:
//!   the reply is dropped and never counted.
//!
//! The asker (the executor) runs on a thread of its own, which creates the slot and spawns its
//! partners, and never blocks in `join`: the replier may unpark the asker after the asker has
//! its answer (in the runtime that is a harmless spurious wake-up), and loom turns an unpark
//! of a thread blocked in `join` into a failed assertion of its own.
//!
//! ```text
//! RUSTFLAGS="--cfg coreactor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_reply_slot
//! ```
//!
//! No deliberate bug concerns the slot, so the models are ignored in the bug build.

use std::task::{Wake, Waker};

use coreactor::__loom::{ReplySlot, SlotPoll};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::thread;

/// A reply value that counts its drops.
#[derive(Debug)]
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the asker got.
#[derive(Debug)]
enum Outcome {
    Value(Token),
    TimedOut,
}

/// The shared state of one model: the slot, its late-reply counter and the value's drop count.
struct Setup {
    slot: Arc<ReplySlot<Token>>,
    late: Arc<AtomicU64>,
    drops: Arc<AtomicUsize>,
}

impl Setup {
    /// A slot whose asker is this thread (`blocking`) or a future.
    fn new(blocking: bool) -> Self {
        let late = Arc::new(AtomicU64::new(0));
        let asker = blocking.then(thread::current);
        Setup {
            slot: Arc::new(ReplySlot::new(asker, Arc::clone(&late))),
            late,
            drops: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Spawns the replier: it sends one `Token` and drops its share of the slot, as a `Reply`
    /// does.
    fn replier(&self) -> thread::JoinHandle<()> {
        let slot = Arc::clone(&self.slot);
        let token = Token(Arc::clone(&self.drops));
        thread::spawn(move || slot.fulfil(Ok(token)))
    }

    /// Once every other thread has finished: the outcome and the late counter agree, and after
    /// the asker drops its share of the slot the value has been dropped exactly once.
    fn check(self, outcome: Outcome) {
        let late = self.late.load(Ordering::Relaxed);
        match outcome {
            Outcome::Value(token) => {
                assert_eq!(late, 0, "a delivered reply was also counted late");
                drop(token);
            }
            Outcome::TimedOut => assert_eq!(late, 1, "a timed-out ask's reply was not counted"),
        }
        drop(self.slot);
        assert_eq!(self.drops.load(Ordering::Relaxed), 1, "value dropped once");
    }
}

/// The slot as `Addr::ask` and `AskFuture::poll` read it.
fn ready(slot: &ReplySlot<Token>) -> Option<Outcome> {
    match slot.poll() {
        SlotPoll::Ready(r) => Some(Outcome::Value(r.expect("the replier sends Ok"))),
        SlotPoll::TimedOut => Some(Outcome::TimedOut),
        SlotPoll::Pending => None,
    }
}

/// `Addr::ask`'s wait loop (src/actor/addr.rs). loom has no clock: the first `parks` waits
/// happen before the deadline (an untimed park, which only the reply's unpark ends); after
/// them the deadline has passed and the asker times out.
fn blocking_ask(slot: &ReplySlot<Token>, mut parks: usize) -> Outcome {
    loop {
        if let Some(outcome) = ready(slot) {
            return outcome;
        }
        if parks == 0 {
            if slot.time_out() {
                return Outcome::TimedOut;
            }
            continue;
        }
        parks -= 1;
        thread::park();
    }
}

/// A task waker that sets a loom-visible flag and unparks the executor's thread.
struct Flag {
    woken: AtomicBool,
    executor: thread::Thread,
}

impl Flag {
    /// Blocks the executor until the waker fires (consuming the wake-up).
    fn wait(&self) {
        // Acquire pairs with the Release swap in `wake_by_ref`.
        while !self.woken.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        // An RMW, not a store: loom orders a plain store only after the stores its thread has
        // seen, so a later `swap` in `wait` could still read the executor's own older `false`
        // (a false deadlock). Release pairs with the Acquire swap in `wait`.
        self.woken.swap(true, Ordering::Release);
        self.executor.unpark();
    }
}

/// `AskFuture::poll` (src/actor/ask.rs) on the slot: look, register the waker, look again.
fn poll_future(slot: &ReplySlot<Token>, waker: &Waker) -> Option<Outcome> {
    if let Some(outcome) = ready(slot) {
        return Some(outcome);
    }
    slot.register(waker);
    ready(slot)
}

/// A waker for this thread (the executor). `std::sync::Arc` because `std::task::Wake` needs
/// it; the flag inside is loom's.
fn executor_waker() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag {
        woken: AtomicBool::new(false),
        executor: thread::current(),
    });
    let waker = Waker::from(std::sync::Arc::clone(&flag));
    (flag, waker)
}

/// (a) The reply races a blocking asker's timeout.
#[test]
#[cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "inject"
    ),
    ignore = "bug build: only the deliberate bugs' models run"
)]
fn reply_vs_timeout() {
    loom::model(|| {
        let asker = thread::spawn(|| {
            let setup = Setup::new(true);
            let replier = setup.replier();
            let outcome = blocking_ask(&setup.slot, 0);
            (setup, outcome, replier)
        });
        let (setup, outcome, replier) = asker.join().unwrap();
        replier.join().unwrap();
        setup.check(outcome);
    });
}

/// (a) A blocking asker parks before its deadline; only the reply's unpark can end the park,
/// so a lost unpark is a deadlock.
#[test]
#[cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "inject"
    ),
    ignore = "bug build: only the deliberate bugs' models run"
)]
fn blocking_ask_is_unparked() {
    loom::model(|| {
        let asker = thread::spawn(|| {
            let setup = Setup::new(true);
            let replier = setup.replier();
            let outcome = blocking_ask(&setup.slot, 1);
            (setup, outcome, replier)
        });
        let (setup, outcome, replier) = asker.join().unwrap();
        assert!(
            matches!(outcome, Outcome::Value(_)),
            "no timeout before the deadline"
        );
        replier.join().unwrap();
        setup.check(outcome);
    });
}

/// (b) The reply, the shard's ask timer and the executor polling the future all race. The
/// executor blocks between polls until woken: a lost wake-up is a deadlock.
#[test]
#[cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "inject"
    ),
    ignore = "bug build: only the deliberate bugs' models run"
)]
fn reply_vs_timer_vs_poll() {
    loom::model(|| {
        let executor = thread::spawn(|| {
            let setup = Setup::new(false);
            let replier = setup.replier();
            let timer = {
                let slot = Arc::clone(&setup.slot);
                thread::spawn(move || {
                    slot.time_out();
                })
            };
            let (flag, waker) = executor_waker();
            let outcome = loop {
                if let Some(outcome) = poll_future(&setup.slot, &waker) {
                    break outcome;
                }
                flag.wait();
            };
            (setup, outcome, [replier, timer])
        });
        let (setup, outcome, others) = executor.join().unwrap();
        for other in others {
            other.join().unwrap();
        }
        setup.check(outcome);
    });
}

/// (c) The future is polled once and, still pending, dropped (`AskFuture`'s `Drop` cancels)
/// while the reply arrives. Either the future got the value; or the cancel won and the replier
/// counted its reply late and dropped it; or the reply landed between the poll and the cancel
/// and stays in the slot until the slot is dropped, not counted (it was not late).
#[test]
#[cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "inject"
    ),
    ignore = "bug build: only the deliberate bugs' models run"
)]
fn cancel_vs_reply() {
    loom::model(|| {
        let executor = thread::spawn(|| {
            let setup = Setup::new(false);
            let replier = setup.replier();
            let (_flag, waker) = executor_waker();
            let polled = poll_future(&setup.slot, &waker);
            if polled.is_none() {
                setup.slot.cancel();
            }
            (setup, polled, replier)
        });
        let (setup, polled, replier) = executor.join().unwrap();
        replier.join().unwrap();
        match polled {
            Some(outcome) => setup.check(outcome),
            None => {
                let late = setup.late.load(Ordering::Relaxed);
                let dropped = setup.drops.load(Ordering::Relaxed);
                assert!(late <= 1, "counted late {late} times");
                // Counted late if and only if the replier dropped it.
                assert_eq!(late, dropped as u64, "late {late}, dropped {dropped}");
                drop(setup.slot);
                assert_eq!(setup.drops.load(Ordering::Relaxed), 1, "value dropped once");
            }
        }
    });
}

/// (d) A request that was never sent settles its slot with `cancel_quietly` while its `Reply`
/// (dropped with the request) answers: the reply is dropped once and never counted late. The
/// asker lets go of the slot at once, so the replier may be its last owner.
#[test]
#[cfg_attr(
    any(
        coreactor_loom_bug = "ring",
        coreactor_loom_bug = "doorbell",
        coreactor_loom_bug = "inject"
    ),
    ignore = "bug build: only the deliberate bugs' models run"
)]
fn cancel_quietly_vs_reply() {
    loom::model(|| {
        let setup = Setup::new(false);
        let replier = setup.replier();
        setup.slot.cancel_quietly();
        let Setup { slot, late, drops } = setup;
        drop(slot);
        replier.join().unwrap();
        assert_eq!(late.load(Ordering::Relaxed), 0, "a quiet reply was counted");
        assert_eq!(drops.load(Ordering::Relaxed), 1, "value dropped once");
    });
}
