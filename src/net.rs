//! TCP on the shard reactor: a listener that accepts on readiness and a buffered connection,
//! both plain non-blocking [`std::net`] sockets registered through
//! [`Context::register_io`]. No async runtime, no futures: readiness arrives as the actor's own
//! messages and the actor calls these helpers from its handler.
//!
//! This module uses only the public actor API; anything it does, an application can do itself.
//!
//! # The two helpers
//!
//! * [`TcpAcceptor`] wraps a non-blocking [`TcpListener`]. [`register`](TcpAcceptor::register)
//!   asks for edge-triggered readiness and [`accept_ready`](TcpAcceptor::accept_ready) then
//!   accepts until `WouldBlock`. To spread connections over shards, give each shard's acceptor
//!   its own [`try_clone`](TcpAcceptor::try_clone) of one listener and register it with
//!   [`register_shared`](TcpAcceptor::register_shared): level-triggered, at most `per_event`
//!   accepts per message, so every shard polling the listener takes its turn and whichever
//!   shard is least busy takes the most.
//! * [`TcpConn`] wraps a non-blocking [`TcpStream`] with a bounded input buffer and an output
//!   queue. [`read_ready`](TcpConn::read_ready) reads until `WouldBlock`, end of stream, or the
//!   input limit; the actor parses [`input`](TcpConn::input) and [`consume`](TcpConn::consume)s
//!   what it used. [`write`](TcpConn::write) queues bytes and [`flush`](TcpConn::flush) writes
//!   until `WouldBlock`, asking for `WRITABLE` readiness only while output is pending.
//!
//! # Protocol of a connection actor
//!
//! The registration is edge-triggered, so a readiness message means "something changed" and the
//! helper must be driven until it reports it is blocked:
//!
//! 1. on a readiness message with `writable`, call [`flush`](TcpConn::flush);
//! 2. on `readable`, `hangup` or `error`, call [`read_ready`](TcpConn::read_ready), then handle
//!    and consume the input, queue replies, and [`flush`](TcpConn::flush);
//! 3. if `read_ready` answered [`ReadOutcome::Full`], the kernel may still hold data but no new
//!    edge will announce it: call `read_ready` again once input has been consumed (for example
//!    after the replies the input was waiting for have been written). Not reading is how a
//!    connection applies backpressure to its peer: the peer's writes block once the socket
//!    buffers fill.
//!
//! An error from any call means the connection is unusable; stop the actor (its registration is
//! removed automatically, before the socket closes).
//!
//! # Examples
//!
//! An echo server: one acceptor actor, one actor per connection on the acceptor's shard.
//!
//! ```
//! use coreactor::io::Readiness;
//! use coreactor::net::{ReadOutcome, TcpAcceptor, TcpConn};
//! use coreactor::{Actor, Context, Runtime};
//! use std::io::{Read, Write};
//!
//! struct Acceptor(TcpAcceptor);
//! impl Actor for Acceptor {
//!     type Msg = Readiness;
//!     fn started(&mut self, ctx: &mut Context<'_, Self>) {
//!         self.0.register(ctx, |r| r).unwrap();
//!     }
//!     fn handle(&mut self, _ready: Readiness, ctx: &mut Context<'_, Self>) {
//!         let mut accepted = Vec::new();
//!         let _ = self.0.accept_ready(|stream, _peer| accepted.push(stream));
//!         for stream in accepted {
//!             let _ = ctx.spawn(Echo(TcpConn::new(stream).unwrap()));
//!         }
//!     }
//! }
//!
//! struct Echo(TcpConn);
//! impl Actor for Echo {
//!     type Msg = Readiness;
//!     fn started(&mut self, ctx: &mut Context<'_, Self>) {
//!         self.0.register(ctx, |r| r).unwrap();
//!     }
//!     fn handle(&mut self, r: Readiness, ctx: &mut Context<'_, Self>) {
//!         let read = self.0.read_ready();
//!         let data = self.0.input().to_vec();
//!         self.0.consume(data.len());
//!         self.0.write(&data);
//!         if self.0.flush(ctx).is_err() || !matches!(read, Ok(ReadOutcome::WouldBlock)) {
//!             ctx.stop(); // end of stream or an error (a sketch: `Full` cannot happen here)
//!         }
//!         let _ = r;
//!     }
//! }
//!
//! let rt = Runtime::builder().shards(1).build()?;
//! let acceptor = TcpAcceptor::bind("127.0.0.1:0")?;
//! let addr = acceptor.local_addr()?;
//! rt.spawn_on(0, Acceptor(acceptor))?;
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut back = [0u8; 5];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"hello");
//! rt.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]

use crate::io::{Interest, IoToken, Readiness};
use crate::{Actor, Context};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

/// Default bound of a [`TcpConn`]'s unconsumed input: 1 MiB.
pub const DEFAULT_READ_LIMIT: usize = 1 << 20;

/// Bytes a [`TcpConn`] asks the kernel for per `read` call (at most): 16 KiB.
pub const READ_CHUNK: usize = 16 * 1024;

/// Output that [`TcpConn::flush`] keeps in place before compacting its queue: 64 KiB.
const COMPACT_AT: usize = 64 * 1024;

/// A non-blocking TCP listener whose readiness arrives as messages of the actor that
/// [registered](TcpAcceptor::register) it. See the [module docs](self).
#[derive(Debug)]
pub struct TcpAcceptor {
    listener: TcpListener,
    token: Option<IoToken>,
    /// Accepts per [`accept_ready`](Self::accept_ready) call: `usize::MAX` when edge-triggered.
    per_event: usize,
}

impl TcpAcceptor {
    /// Binds a listener (std's backlog, `SO_REUSEADDR` as std sets it) and makes it non-blocking.
    ///
    /// # Errors
    ///
    /// The `bind`/`listen` error, or the `fcntl` error of making it non-blocking.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::from_std(TcpListener::bind(addr)?)
    }

    /// Wraps an existing listener, making it non-blocking.
    ///
    /// # Errors
    ///
    /// The `fcntl` error of making it non-blocking.
    pub fn from_std(listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            token: None,
            per_event: usize::MAX,
        })
    }

    /// Another handle to the same listening socket, not registered anywhere. Register each
    /// clone on a different shard with [`register_shared`](Self::register_shared) to accept on
    /// several shards from one port.
    ///
    /// # Errors
    ///
    /// The `dup` error.
    pub fn try_clone(&self) -> io::Result<Self> {
        Self::from_std(self.listener.try_clone()?)
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The underlying listener.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Registers the listener with the shard of the actor `ctx` belongs to, edge-triggered:
    /// every change becomes the message `on_ready` makes, and
    /// [`accept_ready`](Self::accept_ready) then accepts until `WouldBlock`.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if this acceptor is registered already, or the
    /// [`Context::register_io`] error.
    pub fn register<A: Actor>(
        &mut self,
        ctx: &mut Context<'_, A>,
        on_ready: impl FnMut(Readiness) -> A::Msg + 'static,
    ) -> io::Result<IoToken> {
        self.register_with(
            ctx,
            Interest::READABLE.edge_triggered(),
            usize::MAX,
            on_ready,
        )
    }

    /// Registers the listener level-triggered, for a socket shared by acceptors on several
    /// shards ([`try_clone`](Self::try_clone)): each readiness message lets
    /// [`accept_ready`](Self::accept_ready) accept at most `per_event` connections (at least
    /// one), and the shard is told again at its next poll while connections are waiting. Every
    /// registered shard is woken by a new connection; those that lose the race see
    /// `WouldBlock`.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub fn register_shared<A: Actor>(
        &mut self,
        ctx: &mut Context<'_, A>,
        per_event: usize,
        on_ready: impl FnMut(Readiness) -> A::Msg + 'static,
    ) -> io::Result<IoToken> {
        self.register_with(ctx, Interest::READABLE, per_event.max(1), on_ready)
    }

    fn register_with<A: Actor>(
        &mut self,
        ctx: &mut Context<'_, A>,
        interest: Interest,
        per_event: usize,
        on_ready: impl FnMut(Readiness) -> A::Msg + 'static,
    ) -> io::Result<IoToken> {
        if self.token.is_some() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        let token = ctx.register_io(&self.listener, interest, on_ready)?;
        self.token = Some(token);
        self.per_event = per_event;
        Ok(token)
    }

    /// Stops readiness messages for this listener (the socket stays open and keeps queueing
    /// connections in its backlog). A no-op if it is not registered.
    ///
    /// # Errors
    ///
    /// The [`Context::deregister_io`] error.
    pub fn deregister<A: Actor>(&mut self, ctx: &mut Context<'_, A>) -> io::Result<()> {
        match self.token.take() {
            Some(token) => ctx.deregister_io(token),
            None => Ok(()),
        }
    }

    /// Accepts waiting connections and hands each, already non-blocking, to `on_accept`: until
    /// `WouldBlock` when registered with [`register`](Self::register), at most `per_event` when
    /// registered with [`register_shared`](Self::register_shared). Returns how many it
    /// accepted. Connections that failed between the peer's `connect` and this `accept`
    /// (`ECONNABORTED`) and interrupted calls are skipped.
    ///
    /// # Errors
    ///
    /// Any other `accept` error, such as `EMFILE` (no file descriptor left). Connections
    /// accepted before it were handed out. Under edge triggering the connections still waiting
    /// will not be announced again: call `accept_ready` later (for example from a timer).
    pub fn accept_ready(
        &mut self,
        mut on_accept: impl FnMut(TcpStream, SocketAddr),
    ) -> io::Result<usize> {
        let mut accepted = 0;
        while accepted < self.per_event {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    // A socket that cannot be made non-blocking would stall the shard: drop it
                    // (the peer sees the connection closed).
                    if stream.set_nonblocking(true).is_ok() {
                        accepted += 1;
                        on_accept(stream, peer);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(accepted)
    }
}

/// What [`TcpConn::read_ready`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ReadOutcome {
    /// The socket has nothing more for now; a readiness message will announce more.
    WouldBlock,
    /// The input buffer reached its limit; the socket may hold more, and no readiness message
    /// will announce it: consume input, then call [`TcpConn::read_ready`] again.
    Full,
    /// The peer closed its writing half (or the whole connection): no more input will come.
    /// What was read before is still in [`TcpConn::input`].
    Eof,
}

/// What [`TcpConn::flush`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum FlushOutcome {
    /// Every queued byte was handed to the kernel.
    Done,
    /// The socket buffer is full; the rest is written on the next `writable` readiness message.
    Pending,
}

/// A non-blocking TCP connection with a bounded input buffer and an output queue, driven by
/// the readiness messages of the actor that [registered](TcpConn::register) it. See the
/// [module docs](self) for the protocol.
///
/// Invariants: `start <= end <= input.len()`, and the unconsumed input `input[start..end]` is
/// at most `read_limit` bytes; `written <= output.len()`, the queued output being
/// `output[written..]`; `WRITABLE` interest is registered exactly when `want_write`.
#[derive(Debug)]
pub struct TcpConn {
    stream: TcpStream,
    token: Option<IoToken>,
    input: Vec<u8>,
    start: usize,
    end: usize,
    read_limit: usize,
    output: Vec<u8>,
    written: usize,
    want_write: bool,
    eof: bool,
}

impl TcpConn {
    /// Wraps a connected stream, making it non-blocking, with [`DEFAULT_READ_LIMIT`].
    ///
    /// # Errors
    ///
    /// The `fcntl` error of making it non-blocking.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            token: None,
            input: Vec::new(),
            start: 0,
            end: 0,
            read_limit: DEFAULT_READ_LIMIT,
            output: Vec::new(),
            written: 0,
            want_write: false,
            eof: false,
        })
    }

    /// Sets the most unconsumed input the connection buffers (at least 1 byte).
    #[must_use]
    pub fn with_read_limit(mut self, limit: usize) -> Self {
        self.read_limit = limit.max(1);
        self
    }

    /// The underlying stream (for socket options such as `set_nodelay`).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Registers the connection with the shard of the actor `ctx` belongs to, readable and
    /// edge-triggered; `WRITABLE` is added by [`flush`](Self::flush) only while output waits.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if it is registered already, or the [`Context::register_io`] error.
    pub fn register<A: Actor>(
        &mut self,
        ctx: &mut Context<'_, A>,
        on_ready: impl FnMut(Readiness) -> A::Msg + 'static,
    ) -> io::Result<IoToken> {
        if self.token.is_some() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        let token = ctx.register_io(&self.stream, Self::interest(false), on_ready)?;
        self.token = Some(token);
        self.want_write = false;
        Ok(token)
    }

    /// Stops readiness messages for this connection (the socket stays open). A no-op if it is
    /// not registered.
    ///
    /// # Errors
    ///
    /// The [`Context::deregister_io`] error.
    pub fn deregister<A: Actor>(&mut self, ctx: &mut Context<'_, A>) -> io::Result<()> {
        match self.token.take() {
            Some(token) => ctx.deregister_io(token),
            None => Ok(()),
        }
    }

    fn interest(write: bool) -> Interest {
        let base = if write {
            Interest::READ_WRITE
        } else {
            Interest::READABLE
        };
        base.edge_triggered()
    }

    /// Reads until the socket would block, the peer closed, or the unconsumed input reached the
    /// read limit. Once end of stream was seen it answers [`ReadOutcome::Eof`] without reading.
    ///
    /// # Errors
    ///
    /// The `read` error (for example `ECONNRESET`); the connection is unusable then.
    pub fn read_ready(&mut self) -> io::Result<ReadOutcome> {
        if self.eof {
            return Ok(ReadOutcome::Eof);
        }
        loop {
            let room = self.read_limit - (self.end - self.start);
            if room == 0 {
                return Ok(ReadOutcome::Full);
            }
            self.make_room(room.min(READ_CHUNK));
            let want = room.min(self.input.len() - self.end);
            match self.stream.read(&mut self.input[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(ReadOutcome::Eof);
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Ensures at least `want` bytes of buffer after `end`: compacts first, then grows.
    fn make_room(&mut self, want: usize) {
        if self.input.len() - self.end >= want {
            return;
        }
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.input.len() - self.end >= want {
                return;
            }
        }
        let needed = self.end + want;
        let grown = needed.max(self.input.len().saturating_mul(2)).min(
            // Never more than the limit plus one chunk of slack.
            self.read_limit.saturating_add(READ_CHUNK).max(needed),
        );
        self.input.resize(grown, 0);
    }

    /// The input read and not yet consumed.
    pub fn input(&self) -> &[u8] {
        &self.input[self.start..self.end]
    }

    /// Drops the first `n` bytes of [`input`](Self::input).
    ///
    /// # Panics
    ///
    /// If `n` is larger than the input.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "consumed more than the input");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// True once the peer closed its writing half ([`ReadOutcome::Eof`] was returned).
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Queues `bytes` for [`flush`](Self::flush). Nothing is written before it.
    pub fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// The output queue's buffer, for encoding replies in place. Append only: bytes already in
    /// it are queued (some may be written already) and must not be changed or removed.
    pub fn output_buf(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Bytes queued and not yet handed to the kernel.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.written
    }

    /// Writes queued output until it is all written or the socket would block. While output
    /// remains, the registration asks for `WRITABLE` readiness too; once it is all written it
    /// asks for `READABLE` only again. Call it after queueing output and on every readiness
    /// message with `writable`.
    ///
    /// # Errors
    ///
    /// The `write` error (`EPIPE`, `ECONNRESET`, ...), `WriteZero`, or the
    /// [`Context::reregister_io`] error; the connection is unusable then.
    pub fn flush<A: Actor>(&mut self, ctx: &mut Context<'_, A>) -> io::Result<FlushOutcome> {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let pending = self.written < self.output.len();
        if !pending {
            self.output.clear();
            self.written = 0;
        } else if self.written >= COMPACT_AT && self.written * 2 >= self.output.len() {
            self.output.drain(..self.written);
            self.written = 0;
        }
        if pending != self.want_write
            && let Some(token) = self.token
        {
            ctx.reregister_io(token, Self::interest(pending))?;
            self.want_write = pending;
        }
        Ok(if pending {
            FlushOutcome::Pending
        } else {
            FlushOutcome::Done
        })
    }
}
