//! The shard's wake-up signal: an eventfd that producers write and the shard's `epoll_wait`
//! watches (`WakeFd`), or under `--cfg coreactor_loom` a mutex-and-condvar stand-in the loom
//! models can block on (`LoomWake`).
//!
//! Both are *sticky*: a wake-up issued before the consumer blocks is remembered (the eventfd
//! counter, `LoomWake`'s count) and ends the next block at once. The [doorbell](super::doorbell)
//! relies on that: it guarantees a wake-up is *sent* after the consumer announced that it
//! sleeps, not that it arrives after the consumer has actually blocked.
//!
//! # Invariants (`WakeFd`)
//!
//! * The descriptor is an eventfd opened by `WakeFd::new` with `EFD_NONBLOCK | EFD_CLOEXEC`,
//!   owned by the `WakeFd` (through an `OwnedFd`) and closed exactly once, when it is dropped.
//! * Its counter is non-zero iff a wake-up was sent and not yet drained; epoll reports it
//!   readable exactly then.

#[cfg(not(coreactor_loom))]
pub use self::eventfd::WakeFd;
#[cfg(coreactor_loom)]
pub use self::model::LoomWake;

#[cfg(not(coreactor_loom))]
mod eventfd {
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

    use crate::shard::doorbell::Wake;

    /// A non-blocking, close-on-exec eventfd used to wake a shard parked in `epoll_wait`.
    ///
    /// Register [`fd`](Self::fd) for readability with the shard's poller; [`Wake::wake`] adds 1
    /// to the counter (making it readable) and [`drain`](Self::drain) resets it.
    #[derive(Debug)]
    pub struct WakeFd {
        /// The eventfd, as a `File` so reads and writes need no `unsafe`. Owned: closed on drop.
        file: File,
    }

    impl WakeFd {
        /// Opens a new eventfd with counter 0, `EFD_NONBLOCK | EFD_CLOEXEC`.
        ///
        /// # Errors
        ///
        /// The OS error of `eventfd(2)`: typically `EMFILE`/`ENFILE` (descriptor limits) or
        /// `ENOMEM`.
        pub fn new() -> io::Result<Self> {
            // SAFETY: `eventfd` takes no pointers and has no memory-safety preconditions; its
            // flags are valid constants.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is non-negative, so it is a descriptor `eventfd` just opened for us;
            // nothing else owns it, so the `OwnedFd` becomes its only owner and closes it once.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Self {
                file: File::from(owned),
            })
        }

        /// The raw descriptor, to register with the poller. It stays valid while `self` lives.
        #[inline]
        #[must_use]
        pub fn fd(&self) -> RawFd {
            self.file.as_raw_fd()
        }

        /// Reads the counter until the eventfd is empty (`EAGAIN`), so epoll stops reporting it
        /// readable. Returns the number of wake-ups drained (the sum of the counters read).
        ///
        /// Call it after `epoll_wait` reported the eventfd's token, before the next
        /// `prepare_park`; a wake-up that lands in between stays counted for the next park.
        pub fn drain(&self) -> u64 {
            let mut total = 0_u64;
            let mut buf = [0_u8; 8];
            loop {
                match (&self.file).read(&mut buf) {
                    // An eventfd read always transfers exactly 8 bytes.
                    Ok(8) => total = total.saturating_add(u64::from_ne_bytes(buf)),
                    Ok(n) => {
                        debug_assert!(false, "eventfd read returned {n} bytes");
                        return total;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                    Err(e) => {
                        // Impossible for an owned eventfd and an 8-byte buffer.
                        debug_assert!(false, "eventfd read failed: {e}");
                        return total;
                    }
                }
            }
        }
    }

    impl Wake for WakeFd {
        /// Adds 1 to the eventfd counter, making the consumer's `epoll_wait` return.
        ///
        /// `EAGAIN` means the counter is saturated, i.e. the fd is already signalled: that is
        /// as good as a successful write.
        fn wake(&self) {
            let one = 1_u64.to_ne_bytes();
            loop {
                match (&self.file).write(&one) {
                    Ok(_) => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) => {
                        // Impossible for an owned eventfd, an 8-byte buffer and the value 1.
                        debug_assert!(false, "eventfd write failed: {e}");
                        return;
                    }
                }
            }
        }
    }

    impl AsFd for WakeFd {
        #[inline]
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.file.as_fd()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn cloexec_and_nonblock(fd: RawFd) -> (bool, bool) {
            // SAFETY: `F_GETFD`/`F_GETFL` take no pointer argument and only read descriptor
            // flags; `fd` is open for the duration of the call (the caller borrows its owner).
            let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            // SAFETY: as above.
            let fl_flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            assert!(fd_flags >= 0 && fl_flags >= 0);
            (
                fd_flags & libc::FD_CLOEXEC != 0,
                fl_flags & libc::O_NONBLOCK != 0,
            )
        }

        #[test]
        fn flags() {
            let w = WakeFd::new().unwrap();
            assert_eq!(cloexec_and_nonblock(w.fd()), (true, true));
        }

        #[test]
        fn drain_empty_is_zero() {
            let w = WakeFd::new().unwrap();
            assert_eq!(w.drain(), 0);
        }

        #[test]
        fn wake_then_drain_counts() {
            let w = WakeFd::new().unwrap();
            w.wake();
            w.wake();
            w.wake();
            assert_eq!(w.drain(), 3);
            assert_eq!(w.drain(), 0);
        }

        #[test]
        fn saturated_counter_is_still_signalled() {
            let w = WakeFd::new().unwrap();
            // Push the counter to its maximum, 0xffff_ffff_ffff_fffe.
            let max = (u64::MAX - 1).to_ne_bytes();
            assert_eq!((&w.file).write(&max).unwrap(), 8);
            w.wake(); // EAGAIN: must neither block nor panic
            assert_eq!(w.drain(), u64::MAX - 1);
        }
    }
}

#[cfg(coreactor_loom)]
mod model {
    use std::sync::PoisonError;

    use crate::shard::doorbell::Wake;
    use crate::sync::{Condvar, Mutex};

    /// Loom stand-in for the eventfd: a wake-up count behind a loom `Mutex`, and a `Condvar` a
    /// model's consumer blocks on in [`wait`](Self::wait). Loom reports a deadlock when the
    /// consumer waits and no producer is left to wake it, which is how a lost wake-up shows.
    #[derive(Debug)]
    pub struct LoomWake {
        /// Wake-ups sent and not yet consumed by `wait` (the eventfd counter).
        count: Mutex<u64>,
        /// Signalled on every wake-up.
        cond: Condvar,
    }

    impl LoomWake {
        /// A stand-in with no pending wake-up.
        #[must_use]
        pub fn new() -> Self {
            Self {
                count: Mutex::new(0),
                cond: Condvar::new(),
            }
        }

        /// Blocks until at least one wake-up is pending, then consumes all of them (like an
        /// `epoll_wait` on the eventfd followed by a drain). Returns the number consumed.
        pub fn wait(&self) -> u64 {
            let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
            while *count == 0 {
                count = self
                    .cond
                    .wait(count)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            core::mem::take(&mut *count)
        }
    }

    impl Default for LoomWake {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Wake for LoomWake {
        fn wake(&self) {
            let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
            *count = count.saturating_add(1);
            self.cond.notify_one();
        }
    }
}
