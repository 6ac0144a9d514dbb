//! A run of small messages of one type that travels as one envelope's payload.
//!
//! A flood from one actor to another sends message after message to the same address within
//! one turn. Each one in an envelope of its own costs a ring slot (104 bytes) for a payload
//! that may be a few bytes; in a [`Batch`] they share one: the sending shard appends a message
//! to the previous unpublished envelope for the same actor instead of taking a new slot (see
//! `ShardLocal::send_remote_batched`). Fewer bytes per message cross between the cores, which
//! is what bounds a flood when crossing is dear (`docs/benchmarks.md`, session 14). The
//! messages of a batch share its envelope's stamp, the first one's send time, from which their
//! mailbox wait is counted.
//!
//! A batch is exactly one inline payload ([`INLINE_BYTES`]): a header word, then the messages
//! back to back. It holds `(INLINE_BYTES − 8) / size_of::<M>()` of them (for zero-sized
//! messages, [`MAX_ZST`]); types for which that is fewer than two are never batched.
//!
//! Invariant: the messages at indices `next..len` are initialised and owned by the batch;
//! those below `next` were taken out. [`Drop`] drops the owned ones.

use super::erased::INLINE_BYTES;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};

/// Words after the header.
const WORDS: usize = INLINE_BYTES / 8 - 1;

/// How many zero-sized messages a batch counts at most.
const MAX_ZST: usize = u16::MAX as usize;

/// Messages of type `M`, in order, in one inline payload.
#[repr(C)]
pub(crate) struct Batch<M> {
    /// Messages written.
    len: u16,
    /// Messages already taken out (the next one to take).
    next: u16,
    /// The messages, `size_of::<M>()` bytes apart from the start.
    words: [MaybeUninit<u64>; WORDS],
    _msg: PhantomData<M>,
}

const _: () = assert!(mem::size_of::<Batch<u64>>() == INLINE_BYTES);

impl<M> Batch<M> {
    /// How many messages of type `M` a batch holds.
    pub(crate) const CAPACITY: usize = if mem::size_of::<M>() == 0 {
        MAX_ZST
    } else if mem::align_of::<M>() > 8 {
        0
    } else {
        WORDS * 8 / mem::size_of::<M>()
    };

    /// True if batching `M` is worthwhile: at least two fit.
    pub(crate) const WORTHWHILE: bool = Self::CAPACITY >= 2;

    /// A batch of `first` alone, which later messages may join.
    #[inline]
    pub(crate) fn one(first: M) -> Self {
        debug_assert!(Self::WORTHWHILE);
        let mut b = Batch {
            len: 0,
            next: 0,
            words: [MaybeUninit::uninit(); WORDS],
            _msg: PhantomData,
        };
        // Capacity >= 2 (the callers check `WORTHWHILE`): the first push is never refused.
        let _ = b.push(first);
        b
    }

    /// Where message `i` lives.
    #[inline]
    fn at(&mut self, i: usize) -> *mut M {
        // `i * size_of::<M>()` stays inside `words` for `i < CAPACITY` (and is 0 for a
        // zero-sized `M`); every message starts at a multiple of its size from an 8-aligned
        // base, hence aligned for `align_of::<M>() <= 8`.
        self.words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(i * mem::size_of::<M>())
            .cast::<M>()
    }

    /// Appends `msg`, or gives it back if the batch is full.
    #[inline]
    pub(crate) fn push(&mut self, msg: M) -> Result<(), M> {
        let len = usize::from(self.len);
        if len >= Self::CAPACITY {
            return Err(msg);
        }
        // SAFETY: `len < CAPACITY`, so the slot is inside `words` and aligned (`at`), and not
        // initialised (indices `>= len` never were, or were taken out).
        unsafe { self.at(len).write(msg) };
        self.len += 1;
        Ok(())
    }

    /// Takes the oldest message not yet taken.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<M> {
        let next = usize::from(self.next);
        if next >= usize::from(self.len) {
            return None;
        }
        self.next += 1;
        // SAFETY: `next < len`: initialised and owned (module invariant); `next` was advanced
        // first, so the batch no longer owns it.
        Some(unsafe { self.at(next).read() })
    }

    /// Puts back the message [`pop`](Self::pop) just returned, as the oldest again.
    #[inline]
    pub(crate) fn unpop(&mut self, msg: M) {
        debug_assert!(self.next > 0, "unpop without pop");
        self.next -= 1;
        // SAFETY: index `next` was taken by the `pop` this undoes: inside `words`, aligned,
        // and not initialised now.
        unsafe { self.at(usize::from(self.next)).write(msg) };
    }

    /// Messages still in the batch.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len - self.next)
    }
}

impl<M> Drop for Batch<M> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::Batch;
    use std::sync::Arc;

    #[test]
    fn capacity_follows_the_size() {
        assert_eq!(Batch::<u64>::CAPACITY, 7);
        assert_eq!(Batch::<[u64; 3]>::CAPACITY, 2);
        assert_eq!(Batch::<u8>::CAPACITY, 56);
        assert_eq!(Batch::<()>::CAPACITY, u16::MAX as usize);
        const { assert!(!Batch::<[u64; 4]>::WORTHWHILE) };
        #[repr(align(16))]
        struct Wide(#[allow(dead_code)] u8);
        const { assert!(!Batch::<Wide>::WORTHWHILE) };
    }

    #[test]
    fn keeps_order_refuses_when_full_and_drops_what_is_left_once() {
        let counter = Arc::new(());
        let mut b = Batch::one((0u32, Arc::clone(&counter)));
        let mut i = 1;
        loop {
            match b.push((i, Arc::clone(&counter))) {
                Ok(()) => i += 1,
                Err(back) => {
                    assert_eq!(back.0, i);
                    break;
                }
            }
        }
        assert_eq!(i as usize, Batch::<(u32, Arc<()>)>::CAPACITY);
        assert_eq!(b.len(), i as usize);
        let first = b.pop().unwrap();
        assert_eq!(first.0, 0);
        b.unpop(first);
        assert_eq!(b.pop().unwrap().0, 0);
        assert_eq!(b.pop().unwrap().0, 1);
        assert_eq!(b.len(), i as usize - 2);
        drop(b);
        assert_eq!(Arc::strong_count(&counter), 1, "each message dropped once");
    }

    #[test]
    fn zero_sized_messages_are_counted() {
        let mut b = Batch::one(());
        for _ in 0..1001 {
            b.push(()).unwrap();
        }
        assert_eq!(b.len(), 1002);
        while b.pop().is_some() {}
        assert_eq!(b.len(), 0);
    }
}
