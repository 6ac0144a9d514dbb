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
//! Invariant: `drop_fn` is `Some` exactly while the storage holds a live value; it drops that
//! value in place (inline) or frees the box (boxed).

#[cfg(debug_assertions)]
use std::any::TypeId;
use std::mem::{self, MaybeUninit};
use std::ptr;

/// Bytes available for a message stored inline.
pub(crate) const INLINE_BYTES: usize = 64;

type Storage = MaybeUninit<[u64; INLINE_BYTES / 8]>;

/// A message of some type `M` stored without its type.
pub(crate) struct ErasedMsg {
    storage: Storage,
    /// Drops the stored value; `None` once the value was taken out.
    drop_fn: Option<unsafe fn(*mut u8)>,
    #[cfg(debug_assertions)]
    type_id: TypeId,
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
        let drop_fn: unsafe fn(*mut u8) = if fits_inline::<M>() {
            // SAFETY: `fits_inline` checked size and alignment, and `storage` is fresh.
            unsafe { dst.cast::<M>().write(value) };
            drop_inline::<M>
        } else {
            let raw = Box::into_raw(Box::new(value));
            // SAFETY: a pointer is 8 bytes with alignment 8, which `Storage` provides.
            unsafe { dst.cast::<*mut M>().write(raw) };
            drop_boxed::<M>
        };
        ErasedMsg {
            storage,
            drop_fn: Some(drop_fn),
            #[cfg(debug_assertions)]
            type_id: TypeId::of::<M>(),
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
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            self.type_id,
            TypeId::of::<M>(),
            "ErasedMsg taken as the wrong type"
        );
        debug_assert!(self.drop_fn.is_some(), "ErasedMsg taken twice");
        self.drop_fn = None;
        let src = self.storage.as_ptr().cast::<u8>();
        if fits_inline::<M>() {
            // SAFETY: the caller guarantees the type; `new` wrote an `M` inline because it fits,
            // and clearing `drop_fn` above makes this the only read of that value.
            unsafe { src.cast::<M>().read() }
        } else {
            // SAFETY: as above, `new` stored a `Box::into_raw` pointer for this type.
            let raw = unsafe { src.cast::<*mut M>().read() };
            // SAFETY: the pointer came from `Box::into_raw` and is reclaimed exactly once.
            *unsafe { Box::from_raw(raw) }
        }
    }

    /// The `TypeId` of the stored value (debug builds only).
    #[cfg(debug_assertions)]
    #[allow(dead_code)]
    pub(crate) fn type_id(&self) -> TypeId {
        self.type_id
    }
}

impl Drop for ErasedMsg {
    fn drop(&mut self) {
        if let Some(drop_fn) = self.drop_fn.take() {
            // SAFETY: `drop_fn` is `Some` only while the storage holds the live value it was
            // created for, and taking it makes this the value's only drop.
            unsafe { drop_fn(self.storage.as_mut_ptr().cast::<u8>()) }
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
