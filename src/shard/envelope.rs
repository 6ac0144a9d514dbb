//! The envelope: what travels through rings and the injection queue.
//!
//! An envelope is a type-erased message plus the monomorphised function that knows how to
//! deliver it on the destination shard. The function pointer and the erased payload are created
//! together by one generic constructor, which is what makes taking the payload back out sound.

use super::{DeliveryRun, ShardLocal};
use crate::mailbox::erased::{ErasedMsg, PayloadInfo, Storage};
use crate::mailbox::inject::{CELL_WORDS, CellWords, LaneRecord, open_values};

/// What an envelope carries, for accounting when it cannot be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvelopeKind {
    /// A user message for an actor (counted against its mailbox bound).
    User,
    /// A control message for an actor (stop, link, ... ): never bounded.
    Control,
    /// A reply to an ask made by an actor of the destination shard.
    Reply,
    /// Work for the shard itself (spawn, arm a timer, ...).
    Task,
}

/// Hands each message of a batch envelope to the callback in an envelope of its own.
pub(crate) type SplitFn = fn(Envelope, &mut dyn FnMut(Envelope));

/// Reads the `count` messages (`count >= 1`) of an outside thread's open lane record out of
/// its cell (see "Open records" below): an envelope of the one message, or of a batch of them.
///
/// # Safety
/// The cell holds an open record of this vtable's message type with `count` messages, written
/// by [`write_header`] and [`open_message`] writes; each is read once.
pub(crate) type GatherFn = unsafe fn(&CellWords, usize) -> Envelope;

/// Per-type constant description of an envelope.
pub(crate) struct EnvelopeVTable {
    /// Delivers the envelope on its destination shard (the owner thread).
    pub(crate) deliver: fn(&ShardLocal, Envelope),
    /// Pushes a user message into its live actor's mailbox within a drain's [`DeliveryRun`]:
    /// of consecutive messages to one actor, only the first looks the actor up. The envelope
    /// is lent and its message taken out in place; false, with the envelope untouched, if the
    /// actor is not here to take it (`deliver` then handles it). `None` for every other kind,
    /// whose delivery ends the run (see `ShardLocal::accept`).
    pub(crate) push_in_run: Option<fn(&ShardLocal, &mut Envelope, &mut DeliveryRun) -> bool>,
    /// Hands the messages of a batch envelope to the callback one by one, each in an envelope
    /// of its own, in order. `Some` only for batch envelopes: where an envelope cannot be
    /// delivered as a whole (dead letters, forwarding), a batch is split first, so that every
    /// message is accounted for.
    pub(crate) split: Option<SplitFn>,
    /// Reads an open lane record of this vtable (`Some` only for the user vtables of message
    /// types that outside threads send in open records, see [`GatherFn`]).
    pub(crate) gather: Option<GatherFn>,
    /// What the envelope carries.
    pub(crate) kind: EnvelopeKind,
    /// The payload's type name, for dead-letter reports.
    pub(crate) type_name: fn() -> &'static str,
}

/// The `stamp` of an envelope sent from a thread outside the runtime: the destination shard
/// stamps it when it takes it from the injection queue (see `ShardLocal::drain_inbound`), which
/// spares the sender a clock read (~35 ns here, a sixth of an outside send). A stamp that
/// reaches a handler unreplaced reads as no wait (`saturating_sub`).
pub(crate) const STAMP_ON_ARRIVAL: u64 = u64::MAX;

/// A message in transit to a shard.
pub(crate) struct Envelope {
    /// Destination slot (actor slot, or ask-table index for replies).
    pub(crate) slot: u32,
    /// Destination generation.
    pub(crate) generation: u32,
    /// When it was sent, in runtime nanoseconds (sender's clock), for mailbox-wait statistics;
    /// [`STAMP_ON_ARRIVAL`] from an outside thread.
    pub(crate) stamp: u64,
    /// The payload.
    pub(crate) msg: ErasedMsg,
    /// How to deliver it.
    pub(crate) vt: &'static EnvelopeVTable,
}

impl Envelope {
    /// Delivers this envelope on `shard`, its destination.
    #[inline]
    pub(crate) fn deliver(self, shard: &ShardLocal) {
        (self.vt.deliver)(shard, self)
    }

    /// What the envelope carries.
    pub(crate) fn kind(&self) -> EnvelopeKind {
        self.vt.kind
    }
}

/// Words of an envelope's first lane cell before its payload: the vtable, the destination and
/// the stamp.
const HEADER_WORDS: usize = 3;
/// Payload words an envelope's first lane cell holds.
const FIRST_PAYLOAD_WORDS: usize = CELL_WORDS - HEADER_WORDS;
/// Payload bytes an envelope's first lane cell holds: a message of at most this many bytes (or a
/// boxed one) crosses the injection lane in one 64-byte line; a larger one takes a second cell.
pub(crate) const FIRST_CELL_PAYLOAD: usize = FIRST_PAYLOAD_WORDS * 8;

/// Words of the payload storage.
const STORAGE_WORDS: usize = std::mem::size_of::<Storage>() / 8;
/// Payload words a second cell holds: the rest of the storage, which must fit in one cell.
const SECOND_PAYLOAD_WORDS: usize = STORAGE_WORDS - FIRST_PAYLOAD_WORDS;
const _: () = assert!(SECOND_PAYLOAD_WORDS <= CELL_WORDS);

/// The injection lane carries an envelope as one or two 64-byte cells (`mailbox::inject`):
/// first cell `[vtable, slot | generation << 32, stamp, payload words 0..3]`, second cell (only
/// for payloads above [`FIRST_CELL_PAYLOAD`] bytes) `[payload words 3..8]`. The meta word is
/// the payload's [`PayloadInfo`] pointer with the cell count minus one in its low bit (the
/// pointer is 8-aligned). Only the bytes the payload uses cross between the cores, which halves
/// the lines per message for small messages (a 96-byte envelope took a 128-byte slot).
impl LaneRecord for Envelope {
    #[inline]
    fn meta(&self) -> usize {
        let info = self
            .msg
            .info()
            .expect("an envelope in transit holds its message");
        let two = usize::from(info.len > FIRST_CELL_PAYLOAD);
        std::ptr::from_ref::<PayloadInfo>(info) as usize | two
    }

    #[inline]
    fn cells(meta: usize) -> usize {
        1 + (meta & 1)
    }

    #[inline]
    fn write(self, first: &mut CellWords, second: Option<&mut CellWords>) {
        let Envelope {
            slot,
            generation,
            stamp,
            msg,
            vt,
        } = self;
        let (_info, storage) = msg.into_parts();
        let payload = storage.as_ptr().cast::<u64>();
        write_header(first, vt, slot, generation);
        let first = first.as_mut_ptr().cast::<u64>();
        // SAFETY: `first` is a cell's 6 words and `payload` the 8 words of the storage; the
        // copies below stay inside both. Payload words the message does not use may be
        // uninitialised: they are copied as such, never read as values.
        unsafe {
            first.add(2).write(stamp);
            std::ptr::copy_nonoverlapping(payload, first.add(HEADER_WORDS), FIRST_PAYLOAD_WORDS);
        }
        if let Some(second) = second {
            // SAFETY: as above: the rest of the storage's words into the second cell
            // (`SECOND_PAYLOAD_WORDS <= CELL_WORDS`, checked at compile time).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    payload.add(FIRST_PAYLOAD_WORDS),
                    second.as_mut_ptr().cast::<u64>(),
                    SECOND_PAYLOAD_WORDS,
                );
            }
        }
    }

    #[inline]
    unsafe fn read(meta: usize, first: &CellWords, second: Option<&CellWords>) -> Self {
        if let Some(count) = open_values(meta) {
            // SAFETY: the caller's contract, for an open record.
            return unsafe { read_open(first, count) };
        }
        // SAFETY: the caller guarantees the cells hold what `write` wrote with `meta`, which
        // begins with `write_header`.
        let (vt, slot, generation) = unsafe { read_header(first) };
        let first = first.as_ptr().cast::<u64>();
        let mut storage: Storage = std::mem::MaybeUninit::uninit();
        let payload = storage.as_mut_ptr().cast::<u64>();
        // SAFETY: as above: the stamp and the payload words, copied back within the bounds of
        // both.
        let stamp = unsafe {
            std::ptr::copy_nonoverlapping(first.add(HEADER_WORDS), payload, FIRST_PAYLOAD_WORDS);
            first.add(2).read()
        };
        if let Some(second) = second {
            // SAFETY: as above, the rest of the payload's words from the second cell.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    second.as_ptr().cast::<u64>(),
                    payload.add(FIRST_PAYLOAD_WORDS),
                    SECOND_PAYLOAD_WORDS,
                );
            }
        }
        // SAFETY: `meta` is the `PayloadInfo` pointer `meta()` took from this envelope's
        // message (low bit masked off), and the storage now holds the bytes `into_parts` gave
        // out with it: they make one message again, once.
        let msg = unsafe { ErasedMsg::from_parts(&*((meta & !1) as *const PayloadInfo), storage) };
        Envelope {
            slot,
            generation,
            stamp,
            msg,
            vt,
        }
    }
}

/// Reads an open record of `count` messages (out of line: the drain's path for records pushed
/// whole stays as it was, and an open record's messages share the call).
///
/// # Safety
/// [`GatherFn`]'s: the cell holds an open record of `count` messages, read once.
#[inline(never)]
unsafe fn read_open(first: &CellWords, count: usize) -> Envelope {
    // SAFETY: an open record starts with `write_header`, whose vtable's `gather` reads this
    // record's message type.
    let (vt, _, _) = unsafe { read_header(first) };
    let gather = vt.gather.expect("an open record's vtable gathers");
    // SAFETY: the caller's contract is `GatherFn`'s.
    unsafe { gather(first, count) }
}

// ----- Open records -----------------------------------------------------------------------
//
// A thread outside the runtime may push a user message as an *open* one-cell lane record, to
// which its next messages to the same actor are appended while the shard has not taken it
// (`mailbox::inject`, `shard::outside`). Its words: `[vtable, slot | generation << 32,
// message 0, message 1, ...]`, the messages `size_of::<M>()` bytes apart from word 2. No stamp
// word: an outside send is stamped on arrival ([`STAMP_ON_ARRIVAL`]).

/// Words of an open record before its messages: the vtable and the destination.
const OPEN_HEADER_WORDS: usize = 2;
/// Bytes an open record holds its messages in.
pub(crate) const OPEN_PAYLOAD_BYTES: usize = (CELL_WORDS - OPEN_HEADER_WORDS) * 8;

/// Writes words 0 and 1 of an envelope's lane record, whole or open: the vtable and the
/// destination.
#[inline(always)]
pub(crate) fn write_header(
    words: &mut CellWords,
    vt: &'static EnvelopeVTable,
    slot: u32,
    generation: u32,
) {
    let words = words.as_mut_ptr().cast::<u64>();
    // SAFETY: the first two of a cell's words.
    unsafe {
        words.write(std::ptr::from_ref(vt) as u64);
        words
            .add(1)
            .write(u64::from(slot) | (u64::from(generation) << 32));
    }
}

/// The vtable and the destination `(slot, generation)` that [`write_header`] wrote.
///
/// # Safety
/// `words` begins with what `write_header` wrote.
#[inline(always)]
pub(crate) unsafe fn read_header(words: &CellWords) -> (&'static EnvelopeVTable, u32, u32) {
    let words = words.as_ptr().cast::<u64>();
    // SAFETY: the caller's contract: word 0 is the address of a `&'static EnvelopeVTable`,
    // word 1 the destination.
    unsafe {
        let dest = words.add(1).read();
        (
            &*(words.read() as usize as *const EnvelopeVTable),
            dest as u32,
            (dest >> 32) as u32,
        )
    }
}

/// Where message `i` of an open record of `M`s lives.
///
/// # Safety
/// `(i + 1) * size_of::<M>() <= OPEN_PAYLOAD_BYTES` and `align_of::<M>() <= 8`: the place is
/// inside the cell and aligned.
#[inline]
pub(crate) unsafe fn open_message<M>(words: *const CellWords, i: usize) -> *mut M {
    debug_assert!((i + 1) * std::mem::size_of::<M>() <= OPEN_PAYLOAD_BYTES);
    debug_assert!(std::mem::align_of::<M>() <= 8);
    words
        .cast::<u64>()
        .cast_mut()
        .wrapping_add(OPEN_HEADER_WORDS)
        .cast::<u8>()
        .wrapping_add(i * std::mem::size_of::<M>())
        .cast::<M>()
}

/// A closure run on the destination shard (spawns, timer arming, ...).
pub(crate) trait ShardTask: Send + 'static {
    fn run(self, shard: &ShardLocal);
}

impl<F: FnOnce(&ShardLocal) + Send + 'static> ShardTask for F {
    fn run(self, shard: &ShardLocal) {
        self(shard)
    }
}

struct TaskVt<F>(std::marker::PhantomData<F>);

impl<F: ShardTask> TaskVt<F> {
    const VT: EnvelopeVTable = EnvelopeVTable {
        deliver: Self::deliver,
        push_in_run: None,
        split: None,
        gather: None,
        kind: EnvelopeKind::Task,
        type_name: std::any::type_name::<F>,
    };

    fn deliver(shard: &ShardLocal, env: Envelope) {
        // SAFETY: this vtable is only attached by `Envelope::task::<F>`, which erased an `F`.
        let f: F = unsafe { env.msg.take::<F>() };
        f.run(shard);
    }
}

impl Envelope {
    /// An envelope that runs `f` on the destination shard.
    pub(crate) fn task<F: FnOnce(&ShardLocal) + Send + 'static>(f: F) -> Envelope {
        Envelope {
            slot: 0,
            generation: 0,
            stamp: 0,
            msg: ErasedMsg::new(f),
            vt: &TaskVt::<F>::VT,
        }
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::{Envelope, ErasedMsg, LaneRecord, ShardLocal};

    /// The ring memory the configuration budgets for (`config::default_ring_capacity`) is the
    /// real slot size (debug builds too: the payload's `TypeId` lives in its static info).
    #[test]
    fn ring_slot_size_is_what_the_config_budgets() {
        assert_eq!(
            crate::mailbox::ring::slot_bytes::<Envelope>(),
            crate::config::RING_SLOT_BYTES
        );
    }

    /// An envelope crosses the injection lane whole: small payloads in one cell, large ones in
    /// two, boxed ones in one, and what is left in the lane is dropped exactly once.
    #[test]
    fn envelopes_cross_the_lane_in_one_or_two_cells() {
        use crate::mailbox::inject::BoundedInject;
        use std::sync::Arc;
        fn cells(env: &Envelope) -> usize {
            <Envelope as LaneRecord>::cells(env.meta())
        }
        let counter = Arc::new(());
        let small = Envelope::task({
            let c = Arc::clone(&counter);
            move |_: &ShardLocal| drop(c)
        });
        assert_eq!(cells(&small), 1, "an Arc fits the first cell");
        let large_payload = (Arc::clone(&counter), [7u64; 6]);
        let large = Envelope {
            slot: 7,
            generation: 0xdead_beef,
            stamp: 42,
            msg: ErasedMsg::new(large_payload),
            vt: small.vt,
        };
        assert_eq!(cells(&large), 2, "56 bytes take the second cell");
        let boxed = Envelope {
            slot: 1,
            generation: 2,
            stamp: 3,
            msg: ErasedMsg::new((Arc::clone(&counter), [1u64; 20])),
            vt: small.vt,
        };
        assert_eq!(cells(&boxed), 1, "a boxed payload is one pointer");
        let q = BoundedInject::new(4);
        assert!(q.push(small).is_ok());
        assert!(q.push(large).is_ok());
        assert!(
            q.push(boxed).is_ok(),
            "four cells, three used, the box needs one"
        );
        let one_more = Envelope::task(|_: &ShardLocal| {});
        assert!(q.push(one_more).is_err(), "full");
        // SAFETY: this test's thread is the only consumer.
        let back = unsafe { q.pop() }.unwrap();
        assert_eq!(cells(&back), 1);
        // Not delivered: its payload (the closure holding an Arc) is dropped through its info.
        drop(back);
        // SAFETY: as above.
        let mut large = unsafe { q.pop() }.unwrap();
        assert_eq!(
            (large.slot, large.generation, large.stamp),
            (7, 0xdead_beef, 42)
        );
        // SAFETY: created above with this exact type.
        let (arc, words) = unsafe { large.msg.take_in_place::<(Arc<()>, [u64; 6])>() };
        assert_eq!(words, [7; 6]);
        drop(arc);
        assert_eq!(
            Arc::strong_count(&counter),
            2,
            "the boxed envelope is still queued"
        );
        drop(q);
        assert_eq!(
            Arc::strong_count(&counter),
            1,
            "the queue dropped what it held"
        );
    }
}
