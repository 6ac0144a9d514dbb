//! Ctrl-C and SIGTERM as a byte on a socket: the self-pipe trick. The signal handler only calls
//! `write(2)` (async-signal-safe) on a descriptor that stays open for the life of the process;
//! [`Signals::wait`] blocks on the other end. This works whatever threads exist and whatever
//! their signal masks are (the test harness's threads included).

use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

/// The write end the handler writes to; -1 until [`install`] runs.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Relaxed: the descriptor was stored before the handler was installed (program order on
    // the installing thread, and `sigaction` is a syscall), and it is never closed.
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `write` is async-signal-safe; `fd` is a descriptor `install` leaked, so it is
        // open for the rest of the process and never reused; the buffer is a live local of one
        // byte. A full or failing write is fine: one pending byte is enough to wake `wait`.
        let _ = unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
}

/// The receiving end of SIGINT/SIGTERM notifications.
pub struct Signals {
    rx: UnixStream,
}

/// Routes SIGINT and SIGTERM to the returned [`Signals`] instead of terminating the process.
/// Calling it again re-routes them to the new [`Signals`].
///
/// # Errors
///
/// The error of creating the socket pair or of `sigaction`.
pub fn install() -> io::Result<Signals> {
    let (rx, tx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    // Leaked on purpose: the handler may run at any time until the process exits.
    WAKE_FD.store(tx.into_raw_fd(), Ordering::Relaxed);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid value
        // (empty mask, no flags, no restorer); the fields that matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action` is a valid, initialised struct and the old-action pointer is null
        // (allowed); the handler only does async-signal-safe work.
        if unsafe { libc::sigaction(signal, &raw const action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Signals { rx })
}

impl Signals {
    /// Blocks until SIGINT or SIGTERM arrives.
    ///
    /// # Errors
    ///
    /// The read error of the notification socket.
    pub fn wait(&mut self) -> io::Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match self.rx.read(&mut byte) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
