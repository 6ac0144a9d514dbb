//! The injection queue: how threads outside the runtime hand work to a shard.
//!
//! A lock-free unbounded MPSC queue (`crossbeam_queue::SegQueue`, which is MPMC; the shard is
//! the only regular consumer, and at shutdown a late producer may drain it too, see
//! `shard::ShardShared::inject`). Crossbeam's atomics are invisible to loom, so under
//! `--cfg coreactor_loom` the queue is a loom `Mutex<VecDeque>` stand-in with the same API: the
//! models check the protocol around the queue (doorbell, park/wake, the shutdown handshake of
//! `shard::close`), not crossbeam's own algorithm, which crossbeam tests itself. `docs/loom.md`
//! records this gap.
//!
//! The stand-in must not be *stronger* than `SegQueue` where a protocol relies on the queue. A
//! bare mutex would be: its lock order would make a push and a later pop that finds the queue
//! empty synchronize, which would hide a missing fence in the shutdown handshake. So `pop`
//! first reads a length hint without the lock, like `SegQueue::pop` reads the tail index, and
//! answers `None` if the hint is zero: a pop may miss a push that does not happen before it.

#[cfg(not(coreactor_loom))]
mod imp {
    use crossbeam_queue::SegQueue;

    /// Unbounded lock-free multi-producer queue.
    pub(crate) struct InjectQueue<T>(SegQueue<T>);

    impl<T> InjectQueue<T> {
        pub(crate) fn new() -> Self {
            InjectQueue(SegQueue::new())
        }

        /// Appends `value`; never blocks, never fails.
        pub(crate) fn push(&self, value: T) {
            self.0.push(value);
        }

        /// Removes the oldest value.
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }

        /// True if no value is queued (a snapshot).
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(coreactor_loom)]
mod imp {
    use crate::sync::Mutex;
    use crate::sync::atomic::{AtomicUsize, Ordering};
    use std::collections::VecDeque;

    /// loom-visible stand-in: a mutex around a deque, with a lock-free emptiness check (see the
    /// module docs).
    pub(crate) struct InjectQueue<T> {
        queue: Mutex<VecDeque<T>>,
        /// The deque's length, written under the lock, read without it by `pop`.
        len: AtomicUsize,
    }

    impl<T> InjectQueue<T> {
        pub(crate) fn new() -> Self {
            InjectQueue {
                queue: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }

        pub(crate) fn push(&self, value: T) {
            let mut queue = self.queue.lock().unwrap();
            queue.push_back(value);
            // Relaxed: the lock orders the deque; the hint promises nothing more (a pop that
            // must see this push has to be ordered after it by the caller's protocol).
            self.len.store(queue.len(), Ordering::Relaxed);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            // Relaxed, without the lock: may read a stale zero and miss a concurrent push,
            // as `SegQueue::pop` may (see the module docs).
            if self.len.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut queue = self.queue.lock().unwrap();
            let value = queue.pop_front();
            self.len.store(queue.len(), Ordering::Relaxed);
            value
        }

        #[allow(dead_code)]
        pub(crate) fn is_empty(&self) -> bool {
            self.queue.lock().unwrap().is_empty()
        }
    }
}

pub(crate) use imp::InjectQueue;

#[cfg(all(test, not(coreactor_loom)))]
mod tests {
    use super::InjectQueue;

    #[test]
    fn smoke_fifo() {
        let q = InjectQueue::new();
        assert!(q.is_empty());
        for i in 0..10 {
            q.push(i);
        }
        for i in 0..10 {
            assert_eq!(q.pop(), Some(i));
        }
        assert_eq!(q.pop(), None);
    }
}
