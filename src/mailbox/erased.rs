//! A type-erased message with inline storage, so that small messages cross shards without a
//! heap allocation.
//!
//! The rings between shards carry values of one type for every actor type, so the payload is
//! erased: a value of type `M` is stored in 64 inline bytes when it fits (`size_of::<M>() <= 64`
//! and `align_of::<M>() <= 8`), otherwise as a `Box<M>` whose pointer is stored inline. Only the
//! code that created an [`ErasedMsg`] from an `M` knows `M`, and it alone takes it back out with
//! [`ErasedMsg::take`]: callers pair the two through a monomorphised function pointer (see
//! `shard::Envelope`), which is how the unsafe contract of `take` is met by construction.
//!
//! Invariant: `info` is `Some` exactly while the storage holds a live value; its `drop` drops
//! that value in place (inline) or frees the box (boxed).
//!
//! The per-type facts (how to drop the value, how many of the storage's bytes it uses, its
//! `TypeId` in debug builds) live in one static [`PayloadInfo`] per type, so a message is its
//! bytes plus one pointer, and a queue may move only the bytes in use
//! ([`ErasedMsg::into_parts`], [`ErasedMsg::from_parts`]: the injection lane's 64-byte cells).

#[cfg(debug_assertions)]
use std::any::TypeId;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr;

/// Bytes available for a message stored inline.
pub(crate) const INLINE_BYTES: usize = 64;

/// The inline storage of a message: 64 bytes, aligned to 8.
pub(crate) type Storage = MaybeUninit<[u64; INLINE_BYTES / 8]>;

/// What is known of a payload type `M` without `M`: one static per type.
pub(crate) struct PayloadInfo {
    /// Drops the value stored at the pointer (in place, or the box whose pointer is stored).
    drop: unsafe fn(*mut u8),
    /// How many bytes at the start of the storage the value occupies: `size_of::<M>()` inline,
    /// a pointer's size boxed.
    pub(crate) len: usize,
    #[cfg(debug_assertions)]
    type_id: fn() -> TypeId,
}

/// Holder of the static [`PayloadInfo`] of `M`.
struct Info<M>(PhantomData<M>);

impl<M: Send + 'static> Info<M> {
    const INFO: PayloadInfo = PayloadInfo {
        drop: if fits_inline::<M>() {
            drop_inline::<M>
        } else {
            drop_boxed::<M>
        },
        len: if fits_inline::<M>() {
            mem::size_of::<M>()
        } else {
            mem::size_of::<*mut M>()
        },
        #[cfg(debug_assertions)]
        type_id: TypeId::of::<M>,
    };
}

/// A message of some type `M` stored without its type.
pub(crate) struct ErasedMsg {
    storage: Storage,
    /// The payload's type facts; `None` once the value was taken out.
    info: Option<&'static PayloadInfo>,
}

/// True if `M` is stored inline rather than boxed.
pub(crate) const fn fits_inline<M>() -> bool {
    mem::size_of::<M>() <= INLINE_BYTES && mem::align_of::<M>() <= mem::align_of::<Storage>()
}

/// # Safety
/// `p` points to a live, properly aligned `M` that is not used afterwards.
unsafe fn drop_inline<M>(p: *mut u8) {
    // SAFETY: the caller guarantees `p` is a live, aligned `M` owned by the storage.
    unsafe { ptr::drop_in_place(p.cast::<M>()) }
}

/// # Safety
/// `p` points to a `*mut M` obtained from `Box::into_raw` and not freed since.
unsafe fn drop_boxed<M>(p: *mut u8) {
    // SAFETY: the storage holds a pointer produced by `Box::into_raw::<M>`, read once here.
    let raw = unsafe { p.cast::<*mut M>().read() };
    // SAFETY: `raw` came from `Box::into_raw` and ownership returns to a Box exactly once.
    drop(unsafe { Box::from_raw(raw) });
}

impl ErasedMsg {
    /// Erases `value`, inline if it fits, boxed otherwise.
    #[inline]
    pub(crate) fn new<M: Send + 'static>(value: M) -> Self {
        let mut storage: Storage = MaybeUninit::uninit();
        let dst = storage.as_mut_ptr().cast::<u8>();
        if fits_inline::<M>() {
            // SAFETY: `fits_inline` checked size and alignment, and `storage` is fresh.
            unsafe { dst.cast::<M>().write(value) };
        } else {
            let raw = Box::into_raw(Box::new(value));
            // SAFETY: a pointer is 8 bytes with alignment 8, which `Storage` provides.
            unsafe { dst.cast::<*mut M>().write(raw) };
        }
        ErasedMsg {
            storage,
            info: Some(&Info::<M>::INFO),
        }
    }

    /// Takes the value back out.
    ///
    /// # Safety
    /// `M` must be the type this message was created with by [`ErasedMsg::new`]. (Checked with
    /// a `TypeId` in debug builds.)
    #[inline]
    pub(crate) unsafe fn take<M: Send + 'static>(mut self) -> M {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.take_in_place() }
    }

    /// Takes the value out, leaving the message empty (its drop then does nothing): the
    /// envelope that holds it is not moved, which spares the receiving shard a copy of the
    /// whole envelope per message.
    ///
    /// # Safety
    /// As [`take`](Self::take), and the message must still hold its value (not taken before).
    /// (Both checked in debug builds.)
    #[inline]
    pub(crate) unsafe fn take_in_place<M: Send + 'static>(&mut self) -> M {
        let info = self.info.take();
        debug_assert!(info.is_some(), "ErasedMsg taken twice");
        #[cfg(debug_assertions)]
        if let Some(info) = info {
            debug_assert_eq!(
                (info.type_id)(),
                TypeId::of::<M>(),
                "ErasedMsg taken as the wrong type"
            );
        }
        let src = self.storage.as_ptr().cast::<u8>();
        if fits_inline::<M>() {
            // SAFETY: the caller guarantees the type; `new` wrote an `M` inline because it fits,
            // and clearing `info` above makes this the only read of that value.
            unsafe { src.cast::<M>().read() }
        } else {
            // SAFETY: as above, `new` stored a `Box::into_raw` pointer for this type.
            let raw = unsafe { src.cast::<*mut M>().read() };
            // SAFETY: the pointer came from `Box::into_raw` and is reclaimed exactly once.
            *unsafe { Box::from_raw(raw) }
        }
    }

    /// The message in place, for a holder that amends it (a batch taking one more message).
    ///
    /// # Safety
    ///
    /// The message is live and was created as an `M` that is stored inline (same contract as
    /// [`take`](Self::take)).
    #[inline]
    pub(crate) unsafe fn get_mut<M: Send + 'static>(&mut self) -> &mut M {
        debug_assert!(
            fits_inline::<M>(),
            "only inline messages are amended in place"
        );
        #[cfg(debug_assertions)]
        {
            let info = self
                .info
                .expect("ErasedMsg amended after its value was taken");
            assert_eq!(
                (info.type_id)(),
                TypeId::of::<M>(),
                "ErasedMsg amended as the wrong type"
            );
        }
        // SAFETY: the caller guarantees a live inline `M` at the start of the storage, which
        // is 8-aligned (`fits_inline` bounds `M`'s alignment by it).
        unsafe { &mut *self.storage.as_mut_ptr().cast::<M>() }
    }

    /// The payload's type facts, or `None` if the value was taken out.
    #[inline]
    pub(crate) fn info(&self) -> Option<&'static PayloadInfo> {
        self.info
    }

    /// Splits the message into its type facts and its storage, whose first `info.len` bytes
    /// hold the value: the value is no longer owned by a message (nothing drops it) until
    /// [`from_parts`](Self::from_parts) makes one of it again.
    ///
    /// # Panics
    ///
    /// If the value was taken out before (a bug: envelopes in transit always hold one).
    #[inline]
    pub(crate) fn into_parts(self) -> (&'static PayloadInfo, Storage) {
        // Not dropped: the value now belongs to the storage handed out (and a drop would be a
        // call per message that finds nothing to do).
        let this = std::mem::ManuallyDrop::new(self);
        let info = this
            .info
            .expect("ErasedMsg moved after its value was taken");
        (info, this.storage)
    }

    /// A message made of parts that [`into_parts`](Self::into_parts) produced.
    ///
    /// # Safety
    /// The first `info.len` bytes of `storage` are those `into_parts` gave out with `info`
    /// (moved, not copied: they are used to make one message only).
    #[inline]
    pub(crate) unsafe fn from_parts(info: &'static PayloadInfo, storage: Storage) -> Self {
        ErasedMsg {
            storage,
            info: Some(info),
        }
    }
}

impl Drop for ErasedMsg {
    fn drop(&mut self) {
        if let Some(info) = self.info.take() {
            // SAFETY: `info` is `Some` only while the storage holds the live value it describes
            // (`new`, `from_parts`), and taking it makes this the value's only drop.
            unsafe { (info.drop)(self.storage.as_mut_ptr().cast::<u8>()) }
        }
    }
}

// SAFETY: `ErasedMsg::new` requires `M: Send`, so the value it owns may move between threads.
unsafe impl Send for ErasedMsg {}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn inline_round_trip() {
        let m = ErasedMsg::new((1u64, 2u32, [7u8; 40]));
        // SAFETY: created with this exact type just above.
        let v: (u64, u32, [u8; 40]) = unsafe { m.take() };
        assert_eq!(v, (1, 2, [7; 40]));
    }

    #[test]
    fn boxed_round_trip() {
        assert!(!fits_inline::<[u8; 100]>());
        let m = ErasedMsg::new([9u8; 100]);
        // SAFETY: created with this exact type just above.
        let v: [u8; 100] = unsafe { m.take() };
        assert_eq!(v, [9; 100]);
    }

    #[test]
    fn over_aligned_is_boxed() {
        #[repr(align(32))]
        #[derive(Debug, PartialEq)]
        struct Wide(u8);
        assert!(!fits_inline::<Wide>());
        let m = ErasedMsg::new(Wide(3));
        // SAFETY: created with this exact type just above.
        assert_eq!(unsafe { m.take::<Wide>() }, Wide(3));
    }

    #[test]
    fn destructors_run_exactly_once() {
        let counter = Arc::new(());
        drop(ErasedMsg::new(counter.clone()));
        assert_eq!(Arc::strong_count(&counter), 1, "inline drop");
        drop(ErasedMsg::new((counter.clone(), [0u8; 100])));
        assert_eq!(Arc::strong_count(&counter), 1, "boxed drop");
        let m = ErasedMsg::new(counter.clone());
        // SAFETY: created with this exact type just above.
        let back: Arc<()> = unsafe { m.take() };
        assert_eq!(Arc::strong_count(&counter), 2, "take moves, does not drop");
        drop(back);
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn zero_sized() {
        let m = ErasedMsg::new(());
        // SAFETY: created with this exact type just above.
        unsafe { m.take::<()>() };
    }
}
