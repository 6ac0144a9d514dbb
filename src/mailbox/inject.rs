//! The injection queue: how threads outside the runtime hand work to a shard.
//!
//! A lock-free unbounded MPSC queue (`crossbeam_queue::SegQueue`, which is MPMC; the shard is
//! the only regular consumer, and at shutdown a late producer may drain it too, see
//! `shard::ShardShared::inject`). Crossbeam's atomics are invisible to loom, so under
//! `--cfg coreactor_loom` the queue is a loom `Mutex<VecDeque>` stand-in with the same API: the
//! models check the protocol around the queue (doorbell, park/wake), not crossbeam's own
//! algorithm, which crossbeam tests itself. `docs/loom.md` records this gap.

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
    use std::collections::VecDeque;

    /// loom-visible stand-in: a mutex around a deque (see the module docs).
    pub(crate) struct InjectQueue<T>(Mutex<VecDeque<T>>);

    impl<T> InjectQueue<T> {
        pub(crate) fn new() -> Self {
            InjectQueue(Mutex::new(VecDeque::new()))
        }

        pub(crate) fn push(&self, value: T) {
            self.0.lock().unwrap().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.0.lock().unwrap().pop_front()
        }

        #[allow(dead_code)]
        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().unwrap().is_empty()
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
