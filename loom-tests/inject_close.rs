#![cfg(coreactor_loom)]
//! Loom models of the injection queue's shutdown handshake (`src/shard/close.rs`, used by
//! `ShardShared::inject` and `ShardShared::close_inject`).
//!
//! Outside threads push values with `ClosableQueue::push` while the shard makes its last
//! regular drain (`pop` until empty) and then its final one (`close`). Property: every pushed
//! value is consumed by the shard or discarded by someone (the shard or a pusher), exactly
//! once, and the queue is empty once every thread has finished.
//!
//! The queue is `InjectQueue`'s loom stand-in, whose `pop` may miss a push that does not
//! happen before it (as `SegQueue::pop` may), so only the two `fence(SeqCst)` of the handshake
//! make a late push visible. `notify` (the doorbell ring in the runtime) does nothing here: the
//! final drain does not read the doorbell, so the model must not get synchronization from it.
//!
//! Models: (a) one pusher, three values; (b) two pushers, two values each, which may both
//! discard concurrently with the shard; (c) one pusher, two values, against the deliberately
//! broken `push` without its fence (`--cfg coreactor_loom_bug="inject"`): loom must find a run
//! that leaves a value queued; (d) the skipped doorbell ring; (e) model (b) on the bounded lane
//! that outside threads use (the models (a)–(d) use the unbounded lane of foreign shard
//! threads): the pushers' discards take the consumer's token (`close.rs`, "One consumer"),
//! which the shard hands back at the end of its final drain; (f) the token handed back without
//! the holder's last look (`--cfg coreactor_loom_bug="inject_token"`): loom must find a run
//! that leaves a value queued; (g) an outside pusher that appends to its open records on the
//! bounded lane (`BoundedInject::append`, which skips the handshake's steps) while the shard
//! drains and closes: an append lands before a seal, and whoever sealed the record consumes or
//! discards it, or is refused, and the value is pushed again, through the handshake.
//!
//! ```text
//! RUSTFLAGS="--cfg coreactor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_inject_close
//! RUSTFLAGS="--cfg coreactor_loom --cfg coreactor_loom_bug=\"inject\"" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_inject_close
//! RUSTFLAGS="--cfg coreactor_loom --cfg coreactor_loom_bug=\"inject_token\"" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_inject_close
//! ```

// `std::sync::Arc`, not loom's: a loom `Arc` dropped while a failed model unwinds panics again
// (loom issue #291) and would abort the `should_panic` model (c). Its count is not under test.
use std::sync::Arc;

use coreactor::__loom::ClosableQueue;
use loom::thread;

/// What one thread did with the values it handled.
#[derive(Debug, Default)]
struct Handled {
    consumed: Vec<usize>,
    discarded: Vec<usize>,
}

/// Pushes `values`, collecting what this pusher had to discard.
fn pusher(queue: Arc<ClosableQueue<usize>>, values: Vec<usize>) -> thread::JoinHandle<Handled> {
    thread::spawn(move || {
        let mut handled = Handled::default();
        for value in values {
            queue.push(value, || {}, |v| handled.discarded.push(v));
        }
        handled
    })
}

/// The shard's side: a last regular drain, then the final drain that closes the queue.
fn shard(queue: &ClosableQueue<usize>) -> Handled {
    let mut handled = Handled::default();
    // SAFETY: this thread is the queue's consumer: it pops, then closes once, and pops no more.
    while let Some(v) = unsafe { queue.pop() } {
        handled.consumed.push(v);
    }
    // SAFETY: as above.
    unsafe { queue.close(|v| handled.discarded.push(v)) };
    handled
}

/// Like [`pusher`], on the bounded lane of outside threads (two slots here), retrying while it
/// is full as `ShardShared::inject` does.
fn bounded_pusher(
    queue: Arc<ClosableQueue<usize>>,
    values: Vec<usize>,
) -> thread::JoinHandle<Handled> {
    thread::spawn(move || {
        let mut handled = Handled::default();
        for value in values {
            let mut value = value;
            while let Err(back) =
                queue.try_push_bounded(value, || {}, |v| handled.discarded.push(v))
            {
                value = back;
                thread::yield_now();
            }
        }
        handled
    })
}

/// Runs the shard against one pusher per entry of `pushers` and checks the property.
#[cfg_attr(coreactor_loom_bug = "inject_token", allow(dead_code))]
fn handshake(pushers: &[&[usize]]) {
    handshake_on(pushers, false);
}

/// [`handshake`] with the pushers on the bounded lane (`bounded`) or the unbounded one.
fn handshake_on(pushers: &[&[usize]], bounded: bool) {
    let queue = Arc::new(ClosableQueue::with_capacity(2));
    let threads: Vec<_> = pushers
        .iter()
        .map(|values| {
            if bounded {
                bounded_pusher(Arc::clone(&queue), values.to_vec())
            } else {
                pusher(Arc::clone(&queue), values.to_vec())
            }
        })
        .collect();
    let mut all = vec![shard(&queue)];
    all.extend(
        threads
            .into_iter()
            .map(|t| t.join().expect("pusher panicked")),
    );

    assert!(queue.is_empty(), "a value was left in the queue");
    let mut seen: Vec<usize> = all
        .iter()
        .flat_map(|h| h.consumed.iter().chain(&h.discarded))
        .copied()
        .collect();
    seen.sort_unstable();
    let mut pushed: Vec<usize> = pushers.iter().flat_map(|v| v.iter()).copied().collect();
    pushed.sort_unstable();
    assert_eq!(
        seen, pushed,
        "each value is consumed or discarded exactly once"
    );
}

/// (a) One outside thread pushes three values while the shard drains and closes.
#[test]
#[cfg(not(any(coreactor_loom_bug = "inject", coreactor_loom_bug = "inject_token")))]
fn one_pusher_three_values() {
    loom::model(|| handshake(&[&[0, 1, 2]]));
}

/// (b) Two outside threads push two values each: a value may be discarded by the shard or by
/// either pusher, whichever pops it, and still only once.
#[test]
#[cfg(not(any(coreactor_loom_bug = "inject", coreactor_loom_bug = "inject_token")))]
fn two_pushers() {
    loom::model(|| handshake(&[&[0, 1], &[2, 3]]));
}

/// (e) Model (b) on the bounded lane of outside threads, with two cells for four values: the
/// pushers also meet a full lane, and their discards pop next to the shard's final drain. The
/// values are even, so each is a one-cell record (`LaneRecord` for integers): with two-cell
/// records the pushers wait for room so often that loom's paths grow past its bound, and the
/// record lengths are checked by `loom-tests/inject_bounded.rs`.
#[test]
#[cfg(not(any(
    coreactor_loom_bug = "inject",
    coreactor_loom_bug = "inject_bounded",
    coreactor_loom_bug = "inject_token"
)))]
fn two_pushers_bounded_lane() {
    loom::model(|| handshake_on(&[&[0, 2], &[4, 6]], true));
}

/// (f) Without the token holder's last look at the lanes after it gives the token back
/// (`--cfg coreactor_loom_bug="inject_token"`), loom finds the pusher whose value lands while
/// the shard closes: it finds the queue closed, fails to take the token the shard still holds,
/// and leaves its value to the shard, which hands the token back without looking again.
#[test]
#[cfg(coreactor_loom_bug = "inject_token")]
#[should_panic(expected = "a value was left in the queue")]
fn handing_back_without_a_look_is_caught() {
    loom::model(|| handshake_on(&[&[0, 2]], true));
}

/// (c) Without the pusher's fence, loom finds the store-buffering interleaving: the pusher
/// reads `closed == false`, the shard's final drain finds the queue empty, and the value stays
/// queued.
#[test]
#[cfg(coreactor_loom_bug = "inject")]
#[should_panic(expected = "a value was left in the queue")]
fn missing_fence_is_caught() {
    loom::model(|| handshake(&[&[0, 1]]));
}

/// (d) The pusher skips the doorbell ring when the `INJECT` bit is still set (the runtime's
/// `ShardShared::inject`), and the shard parks when it finds no work. With the shard's
/// `drain_fence` after its `take`, no value is stranded: the shard receives both values without
/// a lost wake-up (loom reports a deadlock otherwise).
#[test]
#[cfg(not(coreactor_loom_bug = "inject"))]
fn skipped_ring_loses_nothing() {
    use coreactor::__loom::{Doorbell, INJECT, LoomWake};
    loom::model(|| {
        let queue = Arc::new(ClosableQueue::new());
        let bell = Arc::new(Doorbell::new(LoomWake::new()));
        let (q, b) = (Arc::clone(&queue), Arc::clone(&bell));
        let producer = thread::spawn(move || {
            for v in 0..2usize {
                q.push(
                    v,
                    || {
                        if b.pending() & INJECT == 0 {
                            b.ring(INJECT);
                        }
                    },
                    |_| unreachable!("the queue is never closed here"),
                );
            }
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            let bits = bell.take();
            if bits & INJECT != 0 {
                queue.drain_fence();
                // SAFETY: this thread is the queue's only consumer, and never closes it.
                while let Some(v) = unsafe { queue.pop() } {
                    got.push(v);
                }
                continue;
            }
            if bell.prepare_park() {
                bell.waker().wait();
                bell.finish_park();
            }
        }
        producer.join().expect("producer panicked");
        got.sort_unstable();
        assert_eq!(got, vec![0, 1]);
    });
}

/// (g) One outside thread sends three values, appending each to the open record it pushed last
/// while nobody has taken it, and pushing a new open record otherwise, while the shard drains
/// and closes the queue (two cells). Every value is consumed or discarded exactly once, in
/// order among the consumed, and nothing is left queued.
#[test]
#[cfg(not(any(
    coreactor_loom_bug = "inject",
    coreactor_loom_bug = "inject_bounded",
    coreactor_loom_bug = "inject_token",
    coreactor_loom_bug = "inject_append"
)))]
fn appending_pusher_against_the_final_drain() {
    loom::model(|| {
        use coreactor::__loom::Run;
        let queue = Arc::new(ClosableQueue::<Run>::with_capacity(2));
        let q = Arc::clone(&queue);
        let pusher = thread::spawn(move || {
            let mut discarded = Vec::new();
            let mut last = None;
            for v in [1u64, 2, 3] {
                if let Some(record) = last.as_mut()
                    && q.append(record, 2, |words, i| Run::write_at(words, i, v))
                        .is_ok()
                {
                    continue;
                }
                loop {
                    match q.try_push_bounded_open(
                        |words| Run::write_at(words, 0, v),
                        || {},
                        |run: Run| discarded.extend(run.0),
                    ) {
                        Ok(record) => {
                            last = Some(record);
                            break;
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
            }
            discarded
        });
        let mut consumed = Vec::new();
        // SAFETY: this thread is the queue's consumer: it pops, then closes once.
        while let Some(run) = unsafe { queue.pop() } {
            consumed.extend(run.0);
        }
        let mut discarded = Vec::new();
        // SAFETY: as above.
        unsafe { queue.close(|run| discarded.extend(run.0)) };
        discarded.extend(pusher.join().expect("pusher panicked"));
        assert!(queue.is_empty(), "a value was left in the queue");
        assert!(consumed.is_sorted(), "consumed out of order: {consumed:?}");
        let mut seen = consumed;
        seen.extend(discarded);
        seen.sort_unstable();
        assert_eq!(
            seen,
            [1, 2, 3],
            "each value consumed or discarded exactly once"
        );
    });
}
