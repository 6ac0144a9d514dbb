#![cfg(coreactor_loom)]
//! Loom models of the bounded injection lane (`BoundedInject` in `src/mailbox/inject.rs`), the
//! queue outside threads push into: the production code, through the `crate::sync` shim.
//!
//! Properties, in every explored execution: each value is taken exactly once, each pusher's
//! values come out in the order it pushed them, a push into a full queue gives its value back,
//! and nothing is left behind.
//!
//! Values are records of one or two 64-byte cells (`LaneRecord`; in these models an odd value
//! takes two cells, written to both and checked on the way out), so every model also checks
//! that a record's second cell is published with its first.
//!
//! The lane has one consumer at a time (`BoundedInject::pop` is `unsafe`); after shutdown the
//! role moves from the shard to late pushers through a token (`src/shard/close.rs`, modelled
//! in `loom-tests/inject_close.rs`).
//!
//! Models: (a) two pushers, two values each (one of them a two-cell record), one consumer;
//! (a') one pusher, three values, two cells (the pusher retries while full); (b) one pusher,
//! and the consumer's role handed from one thread to another with a Release/Acquire flag, as
//! the token does (the head is read and written `Relaxed`); (c) the deliberately broken push
//! whose `seq` store is `Relaxed` (`--cfg coreactor_loom_bug="inject_bounded"`): loom must
//! report the unsynchronised read of the slot; (d) open records: a pusher appends to the record
//! it pushed while the consumer takes it, so each append lands before the consumer's seal or is
//! refused, and a refused value is pushed again: every value once, in order; (e) the append
//! whose commit is `Relaxed` (`--cfg coreactor_loom_bug="inject_append"`): loom must report the
//! unsynchronised read of the appended value.
//!
//! ```text
//! RUSTFLAGS="--cfg coreactor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_inject_bounded
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coreactor::__loom::{BoundedInject, Run};
use loom::thread;

/// Pushes into a full queue, over every execution of a model (std atomics: bookkeeping of the
/// test, outside the model; each model asserts it reached the case it is about).
static FULL_PUSHES: AtomicUsize = AtomicUsize::new(0);
/// Values the second consumer of model (b) took, over every execution.
#[cfg_attr(coreactor_loom_bug = "inject_bounded", allow(dead_code))]
static SECOND_CONSUMER_TOOK: AtomicUsize = AtomicUsize::new(0);

/// Pops as the queue's consumer.
fn take(queue: &BoundedInject<usize>) -> Option<usize> {
    // SAFETY: in every model one thread at a time pops, and each hands the role on with a
    // Release/Acquire pair (model (b)) or a join.
    unsafe { queue.pop() }
}

/// Pushes `values` in order, yielding while the queue is full.
fn push_all(queue: &BoundedInject<usize>, values: &[usize]) {
    for &v in values {
        let mut v = v;
        while let Err(back) = queue.push(v) {
            assert_eq!(back, v, "a full queue gives the value back");
            FULL_PUSHES.fetch_add(1, Ordering::Relaxed);
            v = back;
            thread::yield_now();
        }
    }
}

/// Takes `n` values, yielding while none is there.
#[cfg_attr(coreactor_loom_bug = "inject_bounded", allow(dead_code))]
fn pop_n(queue: &BoundedInject<usize>, n: usize) -> Vec<usize> {
    let mut got = Vec::new();
    while got.len() < n {
        match take(queue) {
            Some(v) => got.push(v),
            None => thread::yield_now(),
        }
    }
    got
}

/// (a) Two pushers race for the slots of one consumer: per-pusher order, exactly once.
#[test]
#[cfg(not(coreactor_loom_bug = "inject_bounded"))]
fn two_pushers_keep_their_order() {
    loom::model(|| {
        // Six cells of records, eight cells: nobody waits for room (see (a')).
        let queue = Arc::new(BoundedInject::new(8));
        let pushers: Vec<_> = [[10, 11], [20, 21]]
            .into_iter()
            .map(|values| {
                let q = Arc::clone(&queue);
                thread::spawn(move || push_all(&q, &values))
            })
            .collect();
        let mut got = pop_n(&queue, 4);
        for p in pushers {
            p.join().unwrap();
        }
        assert_eq!(take(&queue), None, "a value was left in the queue");
        for first in [10, 20] {
            let a = got
                .iter()
                .position(|&v| v == first)
                .expect("first value taken");
            let b = got
                .iter()
                .position(|&v| v == first + 1)
                .expect("second value taken");
            assert!(a < b, "pusher {first} out of order: {got:?}");
        }
        got.sort_unstable();
        assert_eq!(got, [10, 11, 20, 21]);
    });
}

/// (a') One pusher, three values, two cells: the first and the last value take both cells (the
/// last one wrapping from the second cell to the first), so the pusher meets a full queue (and
/// gets its value back) in some interleavings, the consumer an empty one; order and count hold. (With
/// two pushers and a consumer all waiting on each other loom's paths grow without bound, so
/// the full queue is modelled with one pusher.)
#[test]
#[cfg(not(coreactor_loom_bug = "inject_bounded"))]
fn a_full_queue_gives_the_value_back() {
    loom::model(|| {
        let queue = Arc::new(BoundedInject::new(2));
        let q = Arc::clone(&queue);
        let pusher = thread::spawn(move || push_all(&q, &[1, 2, 3]));
        let got = pop_n(&queue, 3);
        pusher.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(take(&queue), None);
    });
    assert!(
        FULL_PUSHES.load(Ordering::Relaxed) > 0,
        "no execution met a full queue"
    );
}

/// (b) The consumer's role moves from one thread to another mid-stream, handed on with a
/// Release store and an Acquire load of a flag, as `ClosableQueue`'s token does: each value is
/// taken once, in order.
#[test]
#[cfg(not(coreactor_loom_bug = "inject_bounded"))]
fn the_consumer_role_moves_between_threads() {
    loom::model(|| {
        // Room for every value (five cells).
        let queue = Arc::new(BoundedInject::new(8));
        // 0 while the first consumer holds the role; then 1 + how many values it took.
        let handed = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let q = Arc::clone(&queue);
        let pusher = thread::spawn(move || push_all(&q, &[1, 2, 3]));
        let (q, h) = (Arc::clone(&queue), Arc::clone(&handed));
        let second = thread::spawn(move || {
            let mut took_before = h.load(Ordering::Acquire);
            while took_before == 0 {
                thread::yield_now();
                took_before = h.load(Ordering::Acquire);
            }
            pop_n(&q, 3 - (took_before - 1))
        });
        let mut first = Vec::new();
        while let Some(v) = take(&queue) {
            first.push(v);
        }
        handed.store(1 + first.len(), Ordering::Release);
        let mut theirs = second.join().unwrap();
        pusher.join().unwrap();
        SECOND_CONSUMER_TOOK.fetch_add(theirs.len(), Ordering::Relaxed);
        first.append(&mut theirs);
        assert_eq!(first, [1, 2, 3], "each value once, in order");
    });
    assert!(
        SECOND_CONSUMER_TOOK.load(Ordering::Relaxed) > 0,
        "no execution handed values to the second consumer"
    );
}

/// (c) With the `seq` store `Relaxed`, the consumer may read the slot before the pusher's
/// write is visible: loom reports the causality violation.
#[test]
#[cfg(coreactor_loom_bug = "inject_bounded")]
#[should_panic(expected = "Causality violation")]
fn relaxed_publish_is_caught() {
    loom::model(|| {
        let queue = Arc::new(BoundedInject::new(2));
        let q = Arc::clone(&queue);
        let pusher = thread::spawn(move || push_all(&q, &[7]));
        loop {
            if take(&queue).is_some() {
                break;
            }
            thread::yield_now();
        }
        pusher.join().unwrap();
    });
}

/// Pushes `values` as open runs, appending each to the run pushed last while the consumer has
/// not taken it; yields while the lane is full.
#[cfg(not(any(
    coreactor_loom_bug = "inject_bounded",
    coreactor_loom_bug = "inject_append"
)))]
fn push_appending(queue: &BoundedInject<Run>, values: &[u64]) {
    let mut last: Option<coreactor::__loom::OpenRecord> = None;
    for &v in values {
        if let Some(record) = last.as_mut()
            && queue
                .append(record, 2, |words, i| Run::write_at(words, i, v))
                .is_ok()
        {
            continue;
        }
        loop {
            match queue.push_open(|words| Run::write_at(words, 0, v)) {
                Ok(record) => {
                    last = Some(record);
                    break;
                }
                Err(_) => thread::yield_now(),
            }
        }
    }
}

/// Takes runs until `n` values came, flattened in order.
#[cfg(not(any(
    coreactor_loom_bug = "inject_bounded",
    coreactor_loom_bug = "inject_append"
)))]
fn take_runs(queue: &BoundedInject<Run>, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        let mut run = Run(Vec::new());
        // SAFETY: this model's one consumer.
        let took = unsafe { queue.pop_with(|r| run = r) };
        assert_eq!(run.0.len(), took, "a record's count is what it holds");
        got.extend(run.0);
        if took == 0 {
            thread::yield_now();
        }
    }
    got
}

/// (d) One pusher appends to its open records of two values while the consumer takes them: each
/// append lands before the seal (and is taken with its record) or is refused (and the value
/// goes into a new record); an append that fills a record closes it, and the consumer takes it
/// without sealing. Every value once, in order; nothing left.
#[test]
#[cfg(not(any(
    coreactor_loom_bug = "inject_bounded",
    coreactor_loom_bug = "inject_append"
)))]
fn appends_race_the_seal() {
    loom::model(|| {
        let queue = Arc::new(BoundedInject::new(2));
        let q = Arc::clone(&queue);
        let pusher = thread::spawn(move || push_appending(&q, &[1, 2, 3]));
        let got = take_runs(&queue, 3);
        pusher.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
        // SAFETY: the consumer, as above.
        assert!(unsafe { queue.pop() }.is_none(), "a value was left");
    });
}

/// (e) With the append's commit `Relaxed`, the consumer's seal may count an appended value
/// whose write it does not see: loom reports the causality violation. The consumer takes one
/// record, and only after its push (a Release/Acquire flag), so that a bug in the push's own
/// publication (model (c), in the same build) cannot be what loom finds.
#[test]
#[cfg(coreactor_loom_bug = "inject_append")]
#[should_panic(expected = "Causality violation")]
fn relaxed_append_commit_is_caught() {
    loom::model(|| {
        let queue = Arc::new(BoundedInject::<Run>::new(2));
        let pushed = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (q, p) = (Arc::clone(&queue), Arc::clone(&pushed));
        let pusher = thread::spawn(move || {
            let mut record = q
                .push_open(|words| Run::write_at(words, 0, 1))
                .unwrap_or_else(|_| unreachable!("an empty lane"));
            p.store(true, Ordering::Release);
            // Refused if the consumer took the record first: then nothing was appended.
            let _ = q.append(&mut record, 2, |words, i| Run::write_at(words, i, 2));
        });
        while !pushed.load(Ordering::Acquire) {
            thread::yield_now();
        }
        let mut got = Vec::new();
        // SAFETY: this model's one consumer.
        while unsafe { queue.pop_with(|run| got = run.0) } == 0 {
            thread::yield_now();
        }
        pusher.join().unwrap();
        assert_eq!(got[0], 1);
    });
}
