//! Open records: how a thread outside the runtime that floods one actor shares lane lines.
//!
//! An outside send takes one 64-byte cell of the shard's bounded injection lane
//! (`mailbox::inject`). A thread that sends faster than the shard takes its messages, one
//! actor's flood of small messages, then moves one line between the cores per message, where a
//! channel of 8-byte slots moves one per eight (`docs/benchmarks.md`, session 15). So a small
//! message (at most 16 bytes, or zero-sized: `Vt::APPENDABLE`) may be pushed as an *open*
//! record, to which the same thread's next messages to the same actor are appended, in order,
//! for as long as the shard has not taken it: two 16-byte messages share a line, four `u64`s,
//! up to 65 535 zero-sized ones. The shard takes the record as one envelope of a batch
//! (`mailbox::batch`).
//!
//! It batches exactly when batching pays: the shard seals a record when it takes it, so an
//! append succeeds only if the shard is behind. When it keeps up, an append fails, and both
//! sides would pay for nothing: the failed compare-and-swap moves the record's line back to the
//! sender, and the shard's seal is a read-modify-write on every open record (but a full one,
//! which the append that filled it closed). So each thread keeps a small [`Probe`] state:
//! after an append failed (or its next message went to another actor, which no append can
//! serve, or another push of its own superseded the record before anything joined it), its
//! next sends take plain records for a while (1, 2, 4, ... up to [`MAX_SKIP`] sends) before it
//! opens one again; a successful append makes it open every record again. A thread that never
//! finds the shard behind pays one failed append and one seal per `MAX_SKIP + 1` messages. [`plan`] makes the choice from two thread-local words, so that a
//! plain push costs a sender a few instructions more than before open records existed.
//!
//! Order: a thread's messages to an actor stay in order because a thread appends only to the
//! record it pushed *last*, into any lane: every other push from the thread forgets it
//! ([`superseded`], called by every plain bounded-lane push of an outside thread: a spawn's
//! task, a message sent as a record of its own).
//!
//! The record remembered is named by the lane's id, not its address: an address may be reused
//! by a later runtime's lane after this one is freed, an id never is.

use crate::mailbox::inject::OpenRecord;
use std::any::TypeId;
use std::cell::Cell;

/// The most plain records a thread pushes between two open ones while appends keep failing.
const MAX_SKIP: u8 = 64;

/// Whom the open record this thread pushed last is for (valid while [`LAST_LANE`] is not 0).
#[derive(Clone, Copy)]
struct LastFor {
    /// `slot | generation << 32`: the actor.
    dest: u64,
    /// The type of the record's messages. The actor names its message type; checked anyway,
    /// since an append of another type would be read as this one. (Not the vtable's address:
    /// a `const` vtable referenced from two places may have two addresses, and in a release
    /// build the check then never matched, session 15.)
    msg_type: Option<TypeId>,
}

/// When this thread opens its next record.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Probe {
    /// Plain records to push before the next open one.
    skip: u8,
    /// The `skip` to take after the next failed append.
    backoff: u8,
}

impl Probe {
    /// Every record open, every failed append a surprise.
    const EAGER: Probe = Probe {
        skip: 0,
        backoff: 0,
    };
}

crate::sync::thread_local_cell! {
    /// The id of the lane ([`ShardShared::lane_id`](super::ShardShared)) of the open record in
    /// [`LAST_RECORD`], if the last record this thread pushed is that one; 0 otherwise (ids
    /// start at 1). A word of its own, so that forgetting (every plain push) is one store.
    static LAST_LANE: u64 = 0;
}

crate::sync::thread_local_cell! {
    static LAST_FOR: LastFor = LastFor {
        dest: 0,
        msg_type: None,
    };
}

crate::sync::thread_local_cell! {
    /// The record, as this thread last saw it (only it appends, so its count is exact).
    static LAST_RECORD: OpenRecord = OpenRecord::NONE;
}

crate::sync::thread_local_cell! {
    static PROBE: Probe = Probe::EAGER;
}

/// How this thread sends its next message of an appendable type ([`plan`]).
pub(crate) enum Plan {
    /// Try to append it to this record, the last one the thread pushed, open, for the same
    /// actor; after a successful append the caller hands it back with [`joined`], after a
    /// failed one it calls [`refused`].
    Join(OpenRecord),
    /// Push it as an open record.
    Open,
    /// Push it as a record of its own.
    Plain,
}

/// `slot | generation << 32`.
#[inline]
fn dest(slot: u32, generation: u32) -> u64 {
    u64::from(slot) | (u64::from(generation) << 32)
}

/// Plans this thread's send of a message of type `msg_type` to the actor `(slot, generation)`
/// on lane `lane`. An open record for another actor counts as a failed append and is
/// forgotten: a thread that sends to several actors in turn (an outside fork-join) never finds
/// one to join, and should stop opening them.
#[inline]
pub(crate) fn plan(lane: u64, slot: u32, generation: u32, msg_type: TypeId) -> Plan {
    let last_lane = LAST_LANE.with(Cell::get);
    if last_lane != 0 {
        let last = LAST_FOR.with(Cell::get);
        if last_lane == lane
            && last.dest == dest(slot, generation)
            && last.msg_type == Some(msg_type)
        {
            return Plan::Join(LAST_RECORD.with(Cell::get));
        }
        forget();
        refused();
    }
    if should_open() {
        Plan::Open
    } else {
        Plan::Plain
    }
}

/// An append to `record` succeeded: remember it (unless it is full, at `capacity` messages)
/// and open every record again.
#[inline]
pub(crate) fn joined(record: OpenRecord, capacity: usize) {
    if record.count() < capacity {
        LAST_RECORD.with(|l| l.set(record));
    } else {
        forget();
    }
    PROBE.with(|p| {
        if p.get() != Probe::EAGER {
            p.set(Probe::EAGER);
        }
    });
}

/// An append failed (the shard had taken the record), or could not be tried (the record is for
/// another actor): push plain records for a while.
#[inline]
pub(crate) fn refused() {
    PROBE.with(|p| {
        let backoff = p.get().backoff;
        p.set(Probe {
            skip: backoff,
            backoff: backoff.saturating_mul(2).clamp(1, MAX_SKIP),
        });
    });
}

/// Whether this thread's next record should be open; counts a plain one otherwise.
#[inline]
pub(crate) fn should_open() -> bool {
    PROBE.with(|p| {
        let probe = p.get();
        if probe.skip == 0 {
            return true;
        }
        p.set(Probe {
            skip: probe.skip - 1,
            ..probe
        });
        false
    })
}

/// This thread pushed `record`, open, holding messages of type `msg_type` for the actor
/// `(slot, generation)` on lane `lane`: its next message to that actor may join it.
#[inline]
pub(crate) fn opened(lane: u64, slot: u32, generation: u32, msg_type: TypeId, record: OpenRecord) {
    debug_assert_ne!(lane, 0, "lane ids start at 1");
    LAST_LANE.with(|l| l.set(lane));
    LAST_FOR.with(|l| {
        l.set(LastFor {
            dest: dest(slot, generation),
            msg_type: Some(msg_type),
        });
    });
    LAST_RECORD.with(|l| l.set(record));
}

/// This thread pushes a plain record (a task, a message that cannot append): the record it
/// pushed last, if it remembers one, may no longer be appended to. If nothing joined that
/// record, opening it did not pay, so it counts like a refused append: a thread that
/// alternates plain pushes with single sends (spawn, then tell) backs off to opening one
/// record in `MAX_SKIP + 1` instead of one per send.
#[inline]
pub(crate) fn superseded() {
    if LAST_LANE.with(Cell::get) != 0 {
        forget();
        if LAST_RECORD.with(Cell::get).count() <= 1 {
            refused();
        }
    }
}

/// This thread pushes another record: the last one may no longer be appended to.
#[inline]
pub(crate) fn forget() {
    LAST_LANE.with(|l| l.set(0));
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::{MAX_SKIP, Plan, forget, opened, plan, refused, should_open, superseded};
    use crate::mailbox::inject::OpenRecord;
    use std::any::TypeId;

    /// A thread's next message joins the record it opened only if it goes to the same actor
    /// (lane, slot, generation) with the same message type, and only until it pushes anything
    /// else.
    #[test]
    fn only_the_same_actor_and_type_join_the_last_record() {
        let ty = TypeId::of::<u64>();
        opened(7, 1, 2, ty, OpenRecord::NONE);
        assert!(matches!(plan(7, 1, 2, ty), Plan::Join(_)));
        for (lane, slot, generation, t) in [
            (8, 1, 2, ty),
            (7, 9, 2, ty),
            (7, 1, 9, ty),
            (7, 1, 2, TypeId::of::<u32>()),
        ] {
            opened(7, 1, 2, ty, OpenRecord::NONE);
            assert!(
                !matches!(plan(lane, slot, generation, t), Plan::Join(_)),
                "({lane}, {slot}, {generation}) joined"
            );
            assert!(
                !matches!(plan(7, 1, 2, ty), Plan::Join(_)),
                "a mismatch forgets the record"
            );
        }
        opened(7, 1, 2, ty, OpenRecord::NONE);
        forget();
        assert!(!matches!(plan(7, 1, 2, ty), Plan::Join(_)), "forgotten");
    }

    /// A thread that alternates plain pushes with single sends backs off as after failed
    /// appends; one whose record took appends does not.
    #[test]
    fn plain_pushes_after_unjoined_records_back_off_like_refusals() {
        // Spawn, then tell, over and over: each record the tell opens is superseded by the
        // next spawn's task before anything joined it.
        let ty = TypeId::of::<()>();
        forget();
        super::PROBE.with(|p| p.set(super::Probe::EAGER));
        let mut opened_at = Vec::new();
        for send in 0..400u32 {
            superseded();
            if matches!(plan(7, send, 1, ty), Plan::Open) {
                opened_at.push(send);
                opened(7, send, 1, ty, OpenRecord::holding(1));
            }
        }
        let gaps: Vec<_> = opened_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(&gaps[..8], &[1, 2, 3, 5, 9, 17, 33, 65]);
        assert!(gaps[8..].iter().all(|&g| g == u32::from(MAX_SKIP) + 1));
        // A record that took appends paid: superseding it does not back off.
        super::PROBE.with(|p| p.set(super::Probe::EAGER));
        opened(7, 1, 1, ty, OpenRecord::holding(1));
        super::joined(OpenRecord::holding(2), 8);
        superseded();
        assert!(super::PROBE.with(std::cell::Cell::get) == super::Probe::EAGER);
        // Nothing remembered: a plain push changes nothing.
        forget();
        let before = super::PROBE.with(std::cell::Cell::get);
        superseded();
        assert!(before == super::PROBE.with(std::cell::Cell::get));
    }

    /// After failed appends, a thread opens records ever more rarely, up to one in
    /// `MAX_SKIP + 1`; a success (`joined`) would reset it.
    #[test]
    fn failed_appends_back_off_to_one_probe_in_max_skip_plus_one() {
        let mut opened_at = Vec::new();
        for send in 0..400 {
            if should_open() {
                opened_at.push(send);
                // Every probe fails: the shard keeps up.
                refused();
            }
        }
        let gaps: Vec<_> = opened_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(&gaps[..8], &[1, 2, 3, 5, 9, 17, 33, 65]);
        assert!(gaps[8..].iter().all(|&g| g == usize::from(MAX_SKIP) + 1));
    }
}
