//! I/O readiness for actors: register a file descriptor (socket, pipe, eventfd) with the
//! shard's reactor and receive its readiness as messages.
//!
//! Each shard owns one epoll instance, which is also where it parks when idle, so mailboxes,
//! timers and I/O are served by one loop with one wake-up mechanism. See
//! [`Context::register_io`](crate::Context::register_io).
//!
//! # Examples
//!
//! ```
//! use coreactor::io::{Interest, Readiness};
//! use coreactor::{Actor, Context, Reply, Runtime};
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! /// Reads what arrives on its socket; answers `WaitFor5` once it has 5 bytes.
//! struct Reader {
//!     sock: UnixStream,
//!     got: Vec<u8>,
//!     waiting: Option<Reply<Vec<u8>>>,
//! }
//!
//! enum Msg {
//!     Ready(Readiness),
//!     WaitFor5(Reply<Vec<u8>>),
//! }
//!
//! impl Actor for Reader {
//!     type Msg = Msg;
//!     fn started(&mut self, ctx: &mut Context<'_, Self>) {
//!         self.sock.set_nonblocking(true).unwrap();
//!         let interest = Interest::READABLE.edge_triggered();
//!         ctx.register_io(&self.sock, interest, Msg::Ready).unwrap();
//!     }
//!     fn handle(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) {
//!         match msg {
//!             Msg::Ready(_) => {
//!                 // Edge-triggered: read until WouldBlock.
//!                 let mut buf = [0u8; 64];
//!                 while let Ok(n @ 1..) = self.sock.read(&mut buf) {
//!                     self.got.extend_from_slice(&buf[..n]);
//!                 }
//!             }
//!             Msg::WaitFor5(reply) => self.waiting = Some(reply),
//!         }
//!         if self.got.len() >= 5 {
//!             if let Some(reply) = self.waiting.take() {
//!                 reply.send(self.got.clone());
//!             }
//!         }
//!     }
//! }
//!
//! let (ours, mut theirs) = UnixStream::pair()?;
//! let rt = Runtime::builder().shards(1).build()?;
//! let reader = rt.spawn_on(0, Reader { sock: ours, got: Vec::new(), waiting: None })?;
//! theirs.write_all(b"hello")?;
//! assert_eq!(reader.ask(Msg::WaitFor5, Duration::from_secs(5))?, b"hello");
//! rt.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::shard::io::{IoToken, Readiness};
pub use crate::shard::poller::Interest;
