#![cfg(coreactor_loom)]
//! Loom models of the shard doorbell (`src/shard/doorbell.rs`): no wake-up is ever lost.
//!
//! The consumer is the real reactor idle loop in miniature: `take`; if nothing, `prepare_park`
//! and, if allowed, block on the `LoomWake` stand-in for the eventfd, then `finish_park`. Its
//! work queue is a loom-visible stand-in: one counter per producer, bumped with `Relaxed`
//! before ringing and read with `Relaxed` after `take`, so the only thing that makes a new item
//! visible is the Release `fetch_or` in `ring` pairing with the Acquire `take`. A lost wake-up
//! leaves the consumer blocked with no thread left to wake it, which loom reports as a
//! deadlock; a missing Acquire/Release lets the consumer read a stale count and park for good,
//! which shows the same way.
//!
//! Models: (a) one producer, two items; (b) two producers (a peer ring and the injection
//! queue), one item each; (c) model (a) against the deliberately broken `prepare_park`, which
//! must fail; (d) like (a), but the consumer's first park ends by "timeout" without a wake-up.
//! (a), (b) and (d) also check that no more wake-ups are paid than the consumer parked.
//! (e) a *polled* source, the real ring between shards: its producer rings only a sleeping
//! consumer (`ring_if_sleeping`), and the consumer polls the ring, announces, polls again and
//! only then blocks; (f) model (e) against the producer without its fence
//! (`--cfg coreactor_loom_bug="polled"`), which must fail; (g) the other polled source, the
//! injection queue's bounded lane, with two outside pushers racing for its slots (the real
//! `ClosableQueue`); (h) model (g) against the push without its fence
//! (`--cfg coreactor_loom_bug="inject"`), which must fail.
//!
//! Run (each model takes well under a second in release mode with 2 preemptions, and at most
//! a few seconds exhaustively, without `LOOM_MAX_PREEMPTIONS`):
//!
//! ```text
//! RUSTFLAGS="--cfg coreactor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_doorbell
//! RUSTFLAGS="--cfg coreactor_loom --cfg coreactor_loom_bug=\"doorbell\"" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release -p coreactor-loom-tests --test loom_doorbell
//! ```
//!
//! The second command builds the deliberately broken `prepare_park` (check, then announce);
//! only model (c) runs then, and it passes only if loom finds the lost wake-up. With
//! `coreactor_loom_bug="polled"` instead, only model (f) runs, and likewise.

// `std::sync::Arc`, not loom's, only shares the models' state: a loom `Arc` dropped while the
// deadlock panic unwinds panics again (loom issue #291) and aborts the `should_panic` model (c).
// Its reference count is not part of the protocol under test.
use std::sync::Arc;

#[cfg(any(not(coreactor_loom_bug = "doorbell"), coreactor_loom_bug = "inject"))]
use coreactor::__loom::INJECT;
use coreactor::__loom::{ClosableQueue, Consumer, Doorbell, LoomWake, SLEEPING, peer_bit, ring};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// One producer's queue as the consumer sees it: the doorbell bit it rings and its count of
/// published items.
struct Source {
    bit: u64,
    published: Arc<AtomicUsize>,
}

impl Source {
    fn new(bit: u64) -> Self {
        assert_eq!(bit & SLEEPING, 0, "a work bit never aliases SLEEPING");
        Self {
            bit,
            published: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Publishes `items` items into `published`, ringing `bit` after each. Returns how many of its
/// rings woke the consumer.
fn produce(bell: &Doorbell<LoomWake>, published: &AtomicUsize, bit: u64, items: usize) -> usize {
    let mut woke = 0;
    for _ in 0..items {
        // Relaxed on purpose: only the doorbell may make this visible (see the file docs).
        published.fetch_add(1, Ordering::Relaxed);
        woke += usize::from(bell.ring(bit));
    }
    woke
}

/// The consumer's loop until it has seen `want` items in total. The first `timeouts` parks end
/// without waiting for a wake-up, as an `epoll_wait` ended by its timeout or by I/O would.
/// Returns how many times it parked (announced sleep successfully).
fn consume(
    bell: &Doorbell<LoomWake>,
    sources: &[Source],
    want: usize,
    mut timeouts: usize,
) -> usize {
    let mut seen = vec![0_usize; sources.len()];
    let mut parks = 0;
    while seen.iter().sum::<usize>() < want {
        let bits = bell.take();
        if bits != 0 {
            for (source, seen) in sources.iter().zip(&mut seen) {
                if bits & source.bit != 0 {
                    let now = source.published.load(Ordering::Relaxed);
                    assert!(now >= *seen, "a count never goes backwards");
                    *seen = now;
                }
            }
            continue;
        }
        if bell.prepare_park() {
            parks += 1;
            if timeouts > 0 {
                timeouts -= 1;
            } else {
                bell.waker().wait();
            }
            bell.finish_park();
        }
    }
    assert_eq!(
        bell.pending() & !sources.iter().fold(0, |m, s| m | s.bit),
        0
    );
    parks
}

/// One producer pushes two items; the consumer must see both and the model must terminate.
fn one_producer_two_items() {
    let bell = Arc::new(Doorbell::new(LoomWake::new()));
    let sources = [Source::new(peer_bit(1))];

    let producer = {
        let bell = Arc::clone(&bell);
        let published = Arc::clone(&sources[0].published);
        thread::spawn(move || produce(&bell, &published, peer_bit(1), 2))
    };
    let parks = consume(&bell, &sources, 2, 0);
    let woke = producer.join().expect("producer panicked");
    assert!(woke <= parks, "{woke} wake-ups for {parks} parks");
}

/// (a) Lost wake-up: one producer, one parking consumer.
#[test]
#[cfg(not(coreactor_loom_bug = "doorbell"))]
fn lost_wakeup_one_producer() {
    loom::model(one_producer_two_items);
}

/// (b) Two producers (a peer shard and an outside thread) race one parking consumer. At most
/// one wake-up is paid per park.
#[test]
#[cfg(not(coreactor_loom_bug = "doorbell"))]
fn lost_wakeup_two_producers() {
    loom::model(|| {
        let bell = Arc::new(Doorbell::new(LoomWake::new()));
        let sources = [Source::new(peer_bit(1)), Source::new(INJECT)];

        let producers: Vec<_> = sources
            .iter()
            .map(|source| {
                let bell = Arc::clone(&bell);
                let published = Arc::clone(&source.published);
                let bit = source.bit;
                thread::spawn(move || produce(&bell, &published, bit, 1))
            })
            .collect();
        let parks = consume(&bell, &sources, 2, 0);
        let woke: usize = producers
            .into_iter()
            .map(|p| p.join().expect("producer panicked"))
            .sum();
        assert!(woke <= parks, "{woke} wake-ups for {parks} parks");
    });
}

/// (d) The consumer's first park ends by timeout or I/O, racing the producer's wake-up: the
/// `finish_park`/`fetch_and` race and a stale wake-up left in the eventfd counter must neither
/// lose a wake-up nor wake twice per park.
#[test]
#[cfg(not(coreactor_loom_bug = "doorbell"))]
fn park_ended_by_timeout() {
    loom::model(|| {
        let bell = Arc::new(Doorbell::new(LoomWake::new()));
        let sources = [Source::new(peer_bit(61))];

        let producer = {
            let bell = Arc::clone(&bell);
            let published = Arc::clone(&sources[0].published);
            thread::spawn(move || produce(&bell, &published, peer_bit(61), 2))
        };
        let parks = consume(&bell, &sources, 2, 1);
        let woke = producer.join().expect("producer panicked");
        assert!(woke <= parks, "{woke} wake-ups for {parks} parks");
    });
}

/// (c) Model (a) against the deliberately broken check-then-announce `prepare_park`: loom must
/// find the interleaving where the ring lands between the check and the announcement and the
/// consumer sleeps forever.
#[test]
#[cfg(coreactor_loom_bug = "doorbell")]
#[should_panic(expected = "deadlock")]
fn lost_wakeup_bug_is_caught() {
    loom::model(one_producer_two_items);
}

/// A shard's ring towards a consumer that polls it: the producer publishes `items` values one
/// by one and rings only if the consumer sleeps; the consumer drains by polling, and before it
/// blocks announces SLEEPING and polls once more, as `ShardLocal::park` does. The model ends
/// only if no wake-up is lost. Asserts that the values arrive in order and that no more
/// wake-ups are paid than the consumer announced sleep: a producer that sees SLEEPING between
/// the announcement and the second poll pays one although the consumer then does not block.
fn polled_ring(items: usize) {
    let bell = Arc::new(Doorbell::new(LoomWake::new()));
    let (mut tx, mut rx) = ring::<usize>(2);
    let producer = {
        let bell = Arc::clone(&bell);
        thread::spawn(move || {
            let mut woke = 0;
            for i in 0..items {
                tx.try_push(i).expect("the ring holds every item");
                assert!(tx.publish());
                woke += usize::from(bell.ring_if_sleeping(peer_bit(1)));
            }
            woke
        })
    };
    let announced = consume_polled(&bell, &mut rx, items);
    let woke = producer.join().expect("producer panicked");
    assert!(
        woke <= announced,
        "{woke} wake-ups for {announced} announcements"
    );
}

/// The consumer side of [`polled_ring`]; returns how many times it announced sleep.
fn consume_polled(bell: &Doorbell<LoomWake>, rx: &mut Consumer<usize>, want: usize) -> usize {
    let mut next = 0;
    let mut announced = 0;
    while next < want {
        // Poll the ring, as every loop iteration does.
        while let Some(v) = rx.pop() {
            assert_eq!(v, next, "values arrive in order");
            next += 1;
        }
        rx.release();
        // The bits of a sleeping period's rings are taken as usual; they name nothing new.
        if bell.take() != 0 || next == want {
            continue;
        }
        if bell.prepare_park() {
            announced += 1;
            // The second poll, after the announcement's fence.
            if !rx.is_empty() {
                bell.finish_park();
                continue;
            }
            bell.waker().wait();
            bell.finish_park();
        }
    }
    announced
}

/// (e) A polled ring: no wake-up is lost although an awake consumer is never rung.
#[test]
#[cfg(not(any(coreactor_loom_bug = "doorbell", coreactor_loom_bug = "polled")))]
fn polled_ring_loses_no_wakeup() {
    loom::model(|| polled_ring(2));
}

/// (f) Model (e) with the producer's fence dropped: loom must find the run where the producer
/// reads the word from before SLEEPING and the consumer's poll misses the publication, so the
/// consumer sleeps over a published value.
#[test]
#[cfg(coreactor_loom_bug = "polled")]
#[should_panic(expected = "deadlock")]
fn polled_ring_without_fence_is_caught() {
    loom::model(|| polled_ring(1));
}

/// The injection queue's bounded lane as a polled source: two outside threads push one value
/// each with `try_push_bounded`, whose notification rings only a sleeping shard (after the
/// push's own fence), as `ShardShared::try_inject_outside` does; the shard drains by polling
/// and, before it blocks, announces SLEEPING and polls the lane once more. Ends only if no
/// wake-up is lost; no more wake-ups are paid than the shard announced sleep.
fn polled_inject_lane() {
    let bell = Arc::new(Doorbell::new(LoomWake::new()));
    // Value 1 takes two cells (`LaneRecord` for integers): four cells hold both.
    let queue = Arc::new(ClosableQueue::<usize>::with_capacity(4));
    let pushers: Vec<_> = (0..2)
        .map(|value| {
            let bell = Arc::clone(&bell);
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut woke = 0;
                queue
                    .try_push_bounded(
                        value,
                        || woke += usize::from(bell.ring_if_sleeping_fenced(INJECT)),
                        |_| panic!("the queue is never closed in this model"),
                    )
                    .expect("the lane holds both values");
                woke
            })
        })
        .collect();
    let mut seen = [false; 2];
    let mut announced = 0;
    while !seen.iter().all(|&s| s) {
        // SAFETY: this thread is the queue's only consumer, and never closes it.
        while let Some(v) = unsafe { queue.pop() } {
            assert!(!seen[v], "value {v} taken twice");
            seen[v] = true;
        }
        if bell.take() != 0 || seen.iter().all(|&s| s) {
            continue;
        }
        if bell.prepare_park() {
            announced += 1;
            if queue.bounded_ready() {
                bell.finish_park();
                continue;
            }
            bell.waker().wait();
            bell.finish_park();
        }
    }
    let woke: usize = pushers
        .into_iter()
        .map(|p| p.join().expect("pusher panicked"))
        .sum();
    assert!(
        woke <= announced,
        "{woke} wake-ups for {announced} announcements"
    );
}

/// (g) The bounded injection lane is polled: no wake-up is lost with two racing pushers.
#[test]
#[cfg(not(any(coreactor_loom_bug = "doorbell", coreactor_loom_bug = "inject")))]
fn polled_inject_lane_loses_no_wakeup() {
    loom::model(polled_inject_lane);
}

/// (h) Model (g) with the push's fence dropped (`coreactor_loom_bug="inject"`): loom must find
/// the shard asleep over a pushed value.
#[test]
#[cfg(coreactor_loom_bug = "inject")]
#[should_panic(expected = "deadlock")]
fn polled_inject_lane_without_fence_is_caught() {
    loom::model(polled_inject_lane);
}
