#![cfg(not(coreactor_loom))]
//! I/O readiness: fds registered by actors deliver readiness as messages on the actor's shard,
//! also while the shard is busy, and are deregistered when the actor stops.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use coreactor::io::{Interest, IoToken, Readiness};
use coreactor::{Actor, Context, Reply, Runtime};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Reads its socket; answers `WaitFor(n)` once it read n bytes in total.
struct Reader {
    sock: UnixStream,
    token: Option<IoToken>,
    got: Vec<u8>,
    events: u64,
    waiting: Option<(usize, Reply<Vec<u8>>)>,
}

enum RMsg {
    Ready(Readiness),
    WaitFor(usize, Reply<Vec<u8>>),
    Events(Reply<u64>),
    Deregister(Reply<bool>),
}

impl Actor for Reader {
    type Msg = RMsg;
    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        self.sock.set_nonblocking(true).unwrap();
        let interest = Interest::READABLE.edge_triggered();
        self.token = Some(ctx.register_io(&self.sock, interest, RMsg::Ready).unwrap());
    }
    fn handle(&mut self, msg: RMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            RMsg::Ready(r) => {
                assert!(r.readable || r.hangup);
                self.events += 1;
                let mut buf = [0u8; 256];
                loop {
                    match self.sock.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => self.got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
            RMsg::WaitFor(n, reply) => self.waiting = Some((n, reply)),
            RMsg::Events(reply) => reply.send(self.events),
            RMsg::Deregister(reply) => {
                let t = self.token.take().unwrap();
                reply.send(ctx.deregister_io(t).is_ok());
            }
        }
        if let Some((n, _)) = &self.waiting
            && self.got.len() >= *n
        {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send(self.got.clone());
        }
    }
}

fn reader(sock: UnixStream) -> Reader {
    Reader {
        sock,
        token: None,
        got: Vec::new(),
        events: 0,
        waiting: None,
    }
}

// Data written by another thread arrives as readiness messages on the reader's shard.
#[test]
fn readiness_becomes_messages() {
    for shards in [1, 2, 4] {
        let rt = Runtime::builder().shards(shards).build().unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let r = rt.spawn_on(shards - 1, reader(ours)).unwrap();
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let chunk = [i; 100];
            theirs.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        let got = r.ask(|rep| RMsg::WaitFor(expected.len(), rep), T).unwrap();
        assert_eq!(got, expected);
        rt.shutdown().unwrap();
    }
}

/// Keeps its shard busy: every message sends itself another until told to stop.
struct Spinner {
    left: u64,
    done: Option<Reply<()>>,
}

enum SMsg {
    Spin,
    Start(u64, Reply<()>),
}

impl Actor for Spinner {
    type Msg = SMsg;
    fn handle(&mut self, msg: SMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            SMsg::Start(n, r) => {
                self.left = n;
                self.done = Some(r);
            }
            SMsg::Spin => self.left = self.left.saturating_sub(1),
        }
        if self.left > 0 {
            ctx.addr().try_tell(SMsg::Spin).unwrap();
        } else if let Some(r) = self.done.take() {
            r.send(());
        }
    }
}

// A shard that never idles still serves its registered fds (polled every few iterations).
#[test]
fn busy_shard_still_polls_io() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let r = rt.spawn_on(0, reader(ours)).unwrap();
    let spinner = rt
        .spawn_on(
            0,
            Spinner {
                left: 0,
                done: None,
            },
        )
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = spinner.clone();
    let busy = std::thread::spawn(move || {
        tx.send(s2.ask(|rep| SMsg::Start(2_000_000, rep), T))
            .unwrap();
    });
    theirs.write_all(b"while busy").unwrap();
    let got = r.ask(|rep| RMsg::WaitFor(10, rep), T).unwrap();
    assert_eq!(got, b"while busy");
    rx.recv_timeout(T).unwrap().unwrap();
    busy.join().unwrap();
    rt.shutdown().unwrap();
}

// Deregistering stops events; a stopped actor's fds are deregistered, and a new actor can
// register a duplicate of the same socket and receive its data.
#[test]
fn deregistration_explicit_and_on_stop() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let keep = ours.try_clone().unwrap();
    let r = rt.spawn_on(0, reader(ours)).unwrap();
    theirs.write_all(b"a").unwrap();
    r.ask(|rep| RMsg::WaitFor(1, rep), T).unwrap();
    assert!(r.ask(RMsg::Deregister, T).unwrap());
    let before = r.ask(RMsg::Events, T).unwrap();
    theirs.write_all(b"b").unwrap();
    // A registered fd would now produce an event; ask twice to let the shard poll in between.
    let _ = r.ask(RMsg::Events, T).unwrap();
    assert_eq!(
        r.ask(RMsg::Events, T).unwrap(),
        before,
        "no event after deregistration"
    );

    // A stopped actor's registration is removed before its fd closes: epoll keys registrations
    // by open file description, so without that a duplicate fd (`try_clone`) kept open
    // elsewhere would keep the dead registration alive. A new actor registers the duplicate
    // and receives its data.
    let (ours2, mut theirs2) = UnixStream::pair().unwrap();
    let dup = ours2.try_clone().unwrap();
    let first = rt.spawn_on(0, reader(ours2)).unwrap();
    theirs2.write_all(b"x").unwrap();
    first.ask(|rep| RMsg::WaitFor(1, rep), T).unwrap();
    first.stop().unwrap();
    let second = rt.spawn_on(0, reader(dup)).unwrap();
    theirs2.write_all(b"yz").unwrap();
    assert_eq!(second.ask(|rep| RMsg::WaitFor(2, rep), T).unwrap(), b"yz");
    drop(keep);
    rt.shutdown().unwrap();
}
