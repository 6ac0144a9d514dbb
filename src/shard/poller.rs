//! A thin safe wrapper over Linux `epoll`: where a shard parks and learns which of its fds
//! (actor I/O, its wake-up eventfd) are ready.
//!
//! Std only: the loom models never poll the OS (they park on `wakefd::LoomWake` instead).
//!
//! # Invariants
//!
//! * `Poller` owns its epoll descriptor (an [`OwnedFd`], opened with `EPOLL_CLOEXEC`) and
//!   closes it exactly once, on drop.
//! * `Events` holds `capacity` initialised `epoll_event`s; only the first `len` came from the
//!   last [`Poller::wait`], and `1 <= capacity <= MAX_EVENTS` so the capacity always fits the
//!   `c_int` that `epoll_wait` takes.
//! * The poller never owns the fds registered with it. Closing an fd removes it from the epoll
//!   set once no duplicate of it remains open, so deregister before closing (a stale
//!   registration is an OS error or stray events, never memory unsafety).
//!
//! Registrations are level-triggered unless [`Interest::edge_triggered`] is asked for, and a
//! readable interest also asks for `EPOLLRDHUP` (peer closed its writing half), which is
//! reported as [`Event::hangup`].

#![cfg(not(coreactor_loom))]

use core::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Largest event buffer: `epoll_wait` takes its capacity as a positive `c_int`.
pub const MAX_EVENTS: usize = i32::MAX as usize;

/// Which readiness a registration asks for, and how it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// Report the fd readable (`EPOLLIN`) and its peer's write-side shutdown (`EPOLLRDHUP`).
    pub readable: bool,
    /// Report the fd writable (`EPOLLOUT`).
    pub writable: bool,
    /// Edge-triggered (`EPOLLET`): report a readiness change once, not while it lasts. The
    /// owner must then read or write until `EAGAIN` before it waits again.
    pub edge: bool,
}

impl Interest {
    /// Readable (with `EPOLLRDHUP`), level-triggered.
    pub const READABLE: Self = Self {
        readable: true,
        writable: false,
        edge: false,
    };
    /// Writable, level-triggered.
    #[cfg_attr(not(test), allow(dead_code))] // for actors registering their own fds
    pub const WRITABLE: Self = Self {
        readable: false,
        writable: true,
        edge: false,
    };
    /// Readable (with `EPOLLRDHUP`) and writable, level-triggered.
    #[cfg_attr(not(test), allow(dead_code))] // for actors registering their own fds
    pub const READ_WRITE: Self = Self {
        readable: true,
        writable: true,
        edge: false,
    };

    /// The same interest, edge-triggered (`EPOLLET`).
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))] // for actors registering their own fds
    pub const fn edge_triggered(self) -> Self {
        Self { edge: true, ..self }
    }

    /// The `epoll_event.events` mask. `EPOLLERR` and `EPOLLHUP` are always reported by the
    /// kernel and need not be asked for.
    const fn to_epoll(self) -> u32 {
        let mut bits = 0;
        if self.readable {
            bits |= libc::EPOLLIN | libc::EPOLLRDHUP;
        }
        if self.writable {
            bits |= libc::EPOLLOUT;
        }
        if self.edge {
            bits |= libc::EPOLLET;
        }
        // The EPOLL* constants are non-negative `c_int` flags except EPOLLET (1 << 31), whose
        // bit pattern is what the `u32` field expects.
        bits as u32
    }
}

/// One readiness report from [`Poller::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    /// Data can be read (`EPOLLIN` or `EPOLLPRI`).
    pub readable: bool,
    /// Data can be written (`EPOLLOUT`).
    pub writable: bool,
    /// The peer hung up (`EPOLLHUP`) or shut down its writing half (`EPOLLRDHUP`).
    pub hangup: bool,
    /// An error is pending on the fd (`EPOLLERR`); read it with `SO_ERROR` or the next I/O call.
    pub error: bool,
}

impl Event {
    fn from_epoll(raw: libc::epoll_event) -> Self {
        // Copy the fields out: `epoll_event` is `repr(packed)` on x86-64, so no references.
        let bits = raw.events;
        let token = raw.u64;
        let has = |flag: libc::c_int| bits & flag as u32 != 0;
        Self {
            token,
            readable: has(libc::EPOLLIN) || has(libc::EPOLLPRI),
            writable: has(libc::EPOLLOUT),
            hangup: has(libc::EPOLLHUP) || has(libc::EPOLLRDHUP),
            error: has(libc::EPOLLERR),
        }
    }
}

/// A reusable buffer that [`Poller::wait`] fills; iterate it for the [`Event`]s.
pub struct Events {
    /// Always initialised (zeroed), so the kernel only ever overwrites valid values and no
    /// `set_len` is needed. `1 <= buf.len() <= MAX_EVENTS`.
    buf: Box<[libc::epoll_event]>,
    /// Entries filled by the last `wait`; `len <= buf.len()`.
    len: usize,
}

impl Events {
    /// A buffer for up to `capacity` events per [`Poller::wait`]; `capacity` is clamped to
    /// `1..=MAX_EVENTS`. Events beyond the capacity stay queued in the kernel for the next wait.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_EVENTS);
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Self {
            buf: vec![empty; capacity].into_boxed_slice(),
            len: 0,
        }
    }

    /// How many events one wait can return.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// How many events the last wait returned.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last wait returned no event.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the events of the last wait.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The events of the last wait, in the kernel's order.
    #[inline]
    pub fn iter(&self) -> EventsIter<'_> {
        EventsIter {
            inner: self.buf[..self.len].iter(),
        }
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = Event;
    type IntoIter = EventsIter<'a>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the [`Event`]s of the last [`Poller::wait`]; see [`Events::iter`].
#[derive(Debug)]
pub struct EventsIter<'a> {
    /// The filled part of the buffer.
    inner: core::slice::Iter<'a, libc::epoll_event>,
}

impl Iterator for EventsIter<'_> {
    type Item = Event;

    #[inline]
    fn next(&mut self) -> Option<Event> {
        self.inner.next().map(|raw| Event::from_epoll(*raw))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for EventsIter<'_> {}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("capacity", &self.capacity())
            .field("events", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

/// An epoll instance. Safe to share between threads (the kernel serialises its operations),
/// though a shard uses its own from its own thread.
#[derive(Debug)]
pub struct Poller {
    /// The epoll descriptor; owned, closed on drop.
    epfd: OwnedFd,
}

impl Poller {
    /// Opens a new epoll instance (`EPOLL_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_create1(2)`: typically `EMFILE`/`ENFILE` or `ENOMEM`.
    pub fn new() -> io::Result<Self> {
        // SAFETY: `epoll_create1` takes no pointers and has no memory-safety preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is non-negative, so it is a descriptor `epoll_create1` just opened for
        // us; nothing else owns it, so the `OwnedFd` becomes its only owner and closes it once.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { epfd })
    }

    /// Starts watching `fd` for `interest`; its events carry `token`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl(EPOLL_CTL_ADD)`: `EEXIST` if `fd` is already registered,
    /// `EBADF` if it is not open, `EPERM` if it does not support polling (a regular file).
    pub fn register(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, Some((token, interest)))
    }

    /// Changes the token and interest of a registered `fd`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl(EPOLL_CTL_MOD)`: `ENOENT` if `fd` is not registered.
    #[cfg_attr(not(test), allow(dead_code))] // for actors registering their own fds
    pub fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, Some((token, interest)))
    }

    /// Stops watching `fd`. Do it before closing `fd` (see the module docs).
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl(EPOLL_CTL_DEL)`: `ENOENT` if `fd` is not registered.
    #[cfg_attr(not(test), allow(dead_code))] // for actors registering their own fds
    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, None)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, what: Option<(u64, Interest)>) -> io::Result<()> {
        let mut event = match what {
            Some((token, interest)) => libc::epoll_event {
                events: interest.to_epoll(),
                u64: token,
            },
            // Ignored by EPOLL_CTL_DEL; non-null for kernels before 2.6.9.
            None => libc::epoll_event { events: 0, u64: 0 },
        };
        // SAFETY: `self.epfd` is an open epoll descriptor for as long as `self` lives; `event`
        // is a valid, initialised `epoll_event` on our stack that outlives the call, and the
        // kernel only reads it. `fd` may be any integer: an invalid one is reported as EBADF.
        let rc = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &raw mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until at least one registered fd is ready or `timeout` elapses, fills `events`
    /// (replacing its previous contents) and returns how many it holds.
    ///
    /// `timeout`: `None` waits without limit; `Some(Duration::ZERO)` polls and returns at once.
    /// Other durations are kept to the nanosecond with `epoll_pwait2(2)` (Linux 5.11, glibc
    /// targets), so a park until a timer due in 300 µs lasts 300 µs (plus the kernel's timer
    /// slack). Where that call is missing, the duration is rounded **up** to whole milliseconds
    /// for `epoll_wait(2)`, so a sub-millisecond timeout sleeps 1 ms rather than spinning
    /// through zero-length waits (durations beyond `i32::MAX` ms are clamped). A wait
    /// interrupted by a signal returns `Ok(0)`.
    ///
    /// # Errors
    ///
    /// The OS error of the wait other than `EINTR` (none is expected for a valid poller).
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        debug_assert!((1..=MAX_EVENTS).contains(&events.buf.len()));
        // The invariant of `Events` bounds its length by `MAX_EVENTS == i32::MAX`.
        let max_events = libc::c_int::try_from(events.buf.len()).unwrap_or(libc::c_int::MAX);
        let n = match self.wait_precise(events, max_events, timeout) {
            Some(n) => n,
            // SAFETY: `self.epfd` is an open epoll descriptor for as long as `self` lives. The
            // kernel writes at most `max_events` entries starting at `events.buf.as_mut_ptr()`,
            // and `max_events <= events.buf.len()`, the number of initialised, exclusively
            // borrowed entries there; every bit pattern is a valid `epoll_event`.
            None => unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.buf.as_mut_ptr(),
                    max_events,
                    timeout_ms(timeout),
                )
            },
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        // `n` is non-negative here and at most `max_events`.
        let n = usize::try_from(n).unwrap_or(0).min(events.buf.len());
        events.len = n;
        Ok(n)
    }
}

impl Poller {
    /// `epoll_pwait2` with a nanosecond timeout; `None` where the kernel or the C library lacks
    /// it (then never tried again in this process), and the caller falls back to `epoll_wait`.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn wait_precise(
        &self,
        events: &mut Events,
        max_events: libc::c_int,
        timeout: Option<Duration>,
    ) -> Option<libc::c_int> {
        static MISSING: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        if MISSING.get().is_some() {
            return None;
        }
        let spec = timeout.map(|d| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits every `c_long`.
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let spec_ptr = spec
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: as for `epoll_wait` in `wait` (open descriptor; at most `max_events` entries
        // written into the exclusively borrowed buffer); `spec_ptr` is null or points to a
        // timespec that outlives the call, and a null signal mask leaves the mask unchanged.
        let n = unsafe {
            libc::epoll_pwait2(
                self.epfd.as_raw_fd(),
                events.buf.as_mut_ptr(),
                max_events,
                spec_ptr,
                std::ptr::null(),
            )
        };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            let _ = MISSING.set(());
            return None;
        }
        Some(n)
    }

    /// Without glibc's `epoll_pwait2`, always the millisecond `epoll_wait`.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn wait_precise(
        &self,
        _events: &mut Events,
        _max_events: libc::c_int,
        _timeout: Option<Duration>,
    ) -> Option<libc::c_int> {
        None
    }
}

/// The `epoll_wait` timeout for `timeout`: -1 for `None`, 0 for zero, otherwise the duration
/// rounded up to whole milliseconds and clamped to `c_int::MAX`.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::doorbell::Wake;
    use crate::shard::wakefd::WakeFd;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A bound on waits that expect an event: returns as soon as the event is there.
    const BOUND: Option<Duration> = Some(Duration::from_secs(5));
    const POLL: Option<Duration> = Some(Duration::ZERO);

    /// A non-blocking, close-on-exec pipe: (read end, write end) as files.
    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid, writable array of two `c_int`s that outlives the call.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
        // SAFETY: on success both descriptors were just opened by `pipe2` and nothing else owns
        // them; each `OwnedFd` becomes the only owner of one of them.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        (r.into(), w.into())
    }

    fn tokens(events: &Events) -> Vec<u64> {
        events.iter().map(|e| e.token).collect()
    }

    #[test]
    fn sub_millisecond_timeout_waits_at_least_that_long() {
        let p = Poller::new().unwrap();
        let mut events = Events::with_capacity(8);
        let t = std::time::Instant::now();
        assert_eq!(
            p.wait(&mut events, Some(Duration::from_micros(300)))
                .unwrap(),
            0
        );
        assert!(
            t.elapsed() >= Duration::from_micros(300),
            "{:?}",
            t.elapsed()
        );
        assert!(events.is_empty());
    }

    #[test]
    fn timeout_rounding() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(999))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(3))), 3000);
        assert_eq!(timeout_ms(Some(Duration::MAX)), libc::c_int::MAX);
    }

    #[test]
    fn interest_bits() {
        let r = Interest::READABLE.to_epoll();
        assert_eq!(r, (libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert_eq!(Interest::WRITABLE.to_epoll(), libc::EPOLLOUT as u32);
        let et = Interest::READ_WRITE.edge_triggered();
        assert!(et.edge && et.readable && et.writable);
        assert_ne!(et.to_epoll() & libc::EPOLLET as u32, 0);
    }

    #[test]
    fn events_capacity_is_clamped() {
        assert_eq!(Events::with_capacity(0).capacity(), 1);
        let e = Events::with_capacity(16);
        assert_eq!(e.capacity(), 16);
        assert!(e.is_empty());
        assert_eq!(e.iter().len(), 0);
    }

    #[test]
    fn timeout_returns_no_event() {
        let p = Poller::new().unwrap();
        let mut events = Events::with_capacity(8);
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);
        // A sub-millisecond timeout is a real (1 ms) wait that ends empty.
        assert_eq!(
            p.wait(&mut events, Some(Duration::from_micros(10)))
                .unwrap(),
            0
        );
        assert_eq!(
            p.wait(&mut events, Some(Duration::from_millis(5))).unwrap(),
            0
        );
        assert!(events.is_empty());
    }

    #[test]
    fn eventfd_wake_returns_its_token() {
        let p = Poller::new().unwrap();
        let w = WakeFd::new().unwrap();
        p.register(w.fd(), 42, Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(8);
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);

        w.wake();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        let ev = events.iter().next().unwrap();
        assert_eq!(
            ev,
            Event {
                token: 42,
                readable: true,
                writable: false,
                hangup: false,
                error: false
            }
        );
        // Level-triggered: still reported until drained.
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 1);
        assert_eq!(w.drain(), 1);
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);
    }

    #[test]
    fn wake_from_another_thread_ends_an_infinite_wait() {
        let p = Poller::new().unwrap();
        let w = crate::sync::Arc::new(WakeFd::new().unwrap());
        p.register(w.fd(), 9, Interest::READABLE).unwrap();
        let waker = crate::sync::Arc::clone(&w);
        let h = crate::sync::thread::Builder::new()
            .spawn(move || waker.wake())
            .unwrap();
        let mut events = Events::with_capacity(1);
        // Wakes whether the write lands before or during the wait (the counter is sticky).
        assert_eq!(p.wait(&mut events, None).unwrap(), 1);
        assert_eq!(tokens(&events), [9]);
        h.join().unwrap();
    }

    #[test]
    fn pipe_readability() {
        let p = Poller::new().unwrap();
        let (mut r, mut w) = pipe();
        p.register(r.as_raw_fd(), 1, Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(8);
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);

        w.write_all(b"hi").unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        let ev = events.iter().next().unwrap();
        assert!(ev.readable && !ev.writable && !ev.hangup && !ev.error);
        assert_eq!(ev.token, 1);

        let mut buf = [0; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);

        // Closing the write end is a hangup.
        drop(w);
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        assert!(events.iter().next().unwrap().hangup);
    }

    #[test]
    fn deregister_stops_events() {
        let p = Poller::new().unwrap();
        let w = WakeFd::new().unwrap();
        p.register(w.fd(), 5, Interest::READABLE).unwrap();
        w.wake();
        p.deregister(w.fd()).unwrap();
        let mut events = Events::with_capacity(8);
        assert_eq!(
            p.wait(&mut events, Some(Duration::from_millis(1))).unwrap(),
            0
        );
        assert_eq!(
            p.deregister(w.fd()).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }

    #[test]
    fn register_errors_are_reported() {
        let p = Poller::new().unwrap();
        let w = WakeFd::new().unwrap();
        p.register(w.fd(), 1, Interest::READABLE).unwrap();
        let again = p.register(w.fd(), 2, Interest::READABLE).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
        let bad = p.register(-1, 3, Interest::READABLE).unwrap_err();
        assert_eq!(bad.raw_os_error(), Some(libc::EBADF));
        let missing = WakeFd::new().unwrap();
        let unknown = p.modify(missing.fd(), 4, Interest::READABLE).unwrap_err();
        assert_eq!(unknown.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn modify_changes_interest_and_token() {
        let p = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        p.register(a.as_raw_fd(), 1, Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(8);
        // Nothing to read yet, and writability was not asked for.
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);

        p.modify(a.as_raw_fd(), 2, Interest::READ_WRITE).unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        let ev = events.iter().next().unwrap();
        assert_eq!((ev.token, ev.readable, ev.writable), (2, false, true));

        b.write_all(b"x").unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        let ev = events.iter().next().unwrap();
        assert!(ev.readable && ev.writable && !ev.hangup);

        // Peer shuts down its writing half: EPOLLRDHUP.
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        assert!(events.iter().next().unwrap().hangup);
    }

    #[test]
    fn edge_triggered_reports_once() {
        let p = Poller::new().unwrap();
        let (r, mut w) = pipe();
        p.register(r.as_raw_fd(), 7, Interest::READABLE.edge_triggered())
            .unwrap();
        let mut events = Events::with_capacity(8);
        w.write_all(b"a").unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        // Not read: level-triggered would report it again, edge-triggered does not.
        assert_eq!(p.wait(&mut events, POLL).unwrap(), 0);
        // A new edge: more data.
        w.write_all(b"b").unwrap();
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        assert_eq!(tokens(&events), [7]);
    }

    #[test]
    fn capacity_bounds_one_wait_and_keeps_the_rest() {
        let p = Poller::new().unwrap();
        let fds: Vec<WakeFd> = (0..3).map(|_| WakeFd::new().unwrap()).collect();
        for (token, w) in (10..).zip(&fds) {
            p.register(w.fd(), token, Interest::READABLE).unwrap();
            w.wake();
        }
        let mut events = Events::with_capacity(2);
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 2);
        assert_eq!(events.len(), 2);
        let mut seen = tokens(&events);
        for ev in &events {
            fds[usize::try_from(ev.token - 10).unwrap()].drain();
        }
        assert_eq!(p.wait(&mut events, BOUND).unwrap(), 1);
        seen.extend(tokens(&events));
        seen.sort_unstable();
        assert_eq!(seen, [10, 11, 12]);
    }
}
