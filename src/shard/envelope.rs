//! The envelope: what travels through rings and the injection queue.
//!
//! An envelope is a type-erased message plus the monomorphised function that knows how to
//! deliver it on the destination shard. The function pointer and the erased payload are created
//! together by one generic constructor, which is what makes taking the payload back out sound.

use super::ShardLocal;
use crate::mailbox::erased::ErasedMsg;

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

/// Per-type constant description of an envelope.
pub(crate) struct EnvelopeVTable {
    /// Delivers the envelope on its destination shard (the owner thread).
    pub(crate) deliver: fn(&ShardLocal, Envelope),
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
    use super::Envelope;

    /// The ring memory the configuration budgets for (`config::default_ring_capacity`) is the
    /// real slot size of a release build (debug builds add the payload's `TypeId`).
    #[test]
    fn ring_slot_size_is_what_the_config_budgets() {
        let debug_extra = if cfg!(debug_assertions) {
            std::mem::size_of::<std::any::TypeId>()
        } else {
            0
        };
        assert_eq!(
            crate::mailbox::ring::slot_bytes::<Envelope>(),
            crate::config::RING_SLOT_BYTES + debug_extra
        );
    }
}
