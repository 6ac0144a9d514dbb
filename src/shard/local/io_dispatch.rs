//! I/O dispatch of a shard: its epoll instance turned into messages for the actors that
//! registered file descriptors (the registrations themselves live in `shard::io`).

use super::{ShardLocal, WAKE_TOKEN};
use std::time::Duration;

impl ShardLocal {
    /// Waits for I/O events at most `timeout` (`Some(ZERO)`: just look) and turns them into
    /// messages; the wake-up eventfd is drained.
    #[cfg(not(coreactor_loom))]
    pub(super) fn poll_io(&self, timeout: Option<Duration>) -> bool {
        // A reused buffer: events are copied out before user code runs (no allocation per park).
        let mut tokens = std::mem::take(&mut *self.io_scratch.borrow_mut());
        tokens.clear();
        {
            let mut events = self.events.borrow_mut();
            if self.poller.wait(&mut events, timeout).is_err() {
                *self.io_scratch.borrow_mut() = tokens;
                return false;
            }
            tokens.extend(events.iter().map(|ev| {
                (
                    ev.token,
                    crate::shard::io::Readiness {
                        readable: ev.readable,
                        writable: ev.writable,
                        hangup: ev.hangup,
                        error: ev.error,
                    },
                )
            }));
        }
        let mut any = false;
        for &(token, readiness) in &tokens {
            if token == WAKE_TOKEN {
                self.shared.doorbell.waker().drain();
            } else {
                any = true;
                self.io_ready(crate::shard::io::IoToken::from_epoll(token), readiness);
            }
        }
        *self.io_scratch.borrow_mut() = tokens;
        any
    }

    #[cfg(not(coreactor_loom))]
    pub(super) fn io_ready(
        &self,
        token: crate::shard::io::IoToken,
        readiness: crate::shard::io::Readiness,
    ) {
        let Some(reg) = self.io.borrow().get(token) else {
            return;
        };
        let alive = self
            .shared
            .table
            .get(reg.slot)
            .is_some_and(|m| m.is_open(reg.actor_generation));
        if !alive {
            let _ = self.deregister_io(token);
            return;
        }
        let make = self.io.borrow_mut().take_make(token);
        let Some(mut make) = make else { return };
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(readiness)));
        self.io.borrow_mut().restore_make(token, make);
        match made {
            Ok(env) => self.deliver_timer_message(env),
            Err(_) => self.shared.counters.bump_panics(),
        }
    }

    /// Registers `fd` for the actor at `(slot, actor_generation)`; each event becomes the
    /// envelope made by `make`.
    #[cfg(not(coreactor_loom))]
    pub(crate) fn register_io(
        &self,
        fd: std::os::fd::RawFd,
        interest: crate::shard::poller::Interest,
        slot: u32,
        actor_generation: u32,
        make: crate::shard::io::MakeIoMessage,
    ) -> std::io::Result<crate::shard::io::IoToken> {
        let token = self
            .io
            .borrow_mut()
            .insert(slot, actor_generation, fd, make);
        if let Err(e) = self.poller.register(fd, token.to_epoll(), interest) {
            let removed = self.io.borrow_mut().remove(token);
            drop(removed);
            return Err(e);
        }
        Ok(token)
    }

    /// Changes the interest set of a registration.
    #[cfg(not(coreactor_loom))]
    pub(crate) fn reregister_io(
        &self,
        token: crate::shard::io::IoToken,
        interest: crate::shard::poller::Interest,
    ) -> std::io::Result<()> {
        let reg = self.io.borrow().get(token);
        let reg = reg.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        self.poller.modify(reg.fd, token.to_epoll(), interest)
    }

    /// Removes a registration from the table and from epoll.
    #[cfg(not(coreactor_loom))]
    pub(crate) fn deregister_io(&self, token: crate::shard::io::IoToken) -> std::io::Result<()> {
        let removed = self.io.borrow_mut().remove(token);
        let (fd, make) =
            removed.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        drop(make);
        // The fd may already be closed (then epoll forgot it by itself).
        match self.poller.deregister(fd) {
            Err(e)
                if e.raw_os_error() != Some(libc::EBADF)
                    && e.raw_os_error() != Some(libc::ENOENT) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}
