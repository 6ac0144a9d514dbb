//! kv durability across process death: with `fsync=always` (and, since a reply is sent only
//! after its records reached the kernel, with `never` too) every SET acknowledged before a
//! `kill -9` of the server is there after a restart; SIGTERM flushes and exits cleanly.
//!
//! The server is this test binary re-run as a child (`kv_child_server`), so the test needs no
//! separately built example binary.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod kv_common;

use kv_common::resp::{self, Reply};
use kv_common::storage::Fsync;
use kv_common::{ChildServer, Client, DEADLINE, TempDir, bulk, ok, start};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Not a test of its own: the child-process server of this binary (see `kv_common`).
#[test]
fn kv_child_server() {
    kv_common::child_server_entry();
}

const WRITERS: u64 = 4;
const WINDOW: u64 = 32;

/// Writes `w{id}:{i}` = `{i}` in pipelined windows until the connection dies; returns how many
/// were acknowledged (replies come in order, so keys `0..n` are the acknowledged ones).
fn writer(addr: SocketAddr, id: u64, acked_total: &AtomicU64) -> u64 {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut acked = 0;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut out = Vec::new();
        for i in acked..acked + WINDOW {
            let (k, v) = (format!("w{id}:{i}"), i.to_string());
            resp::command(&mut out, &[b"SET", k.as_bytes(), v.as_bytes()]);
        }
        if sock.write_all(&out).is_err() {
            return acked;
        }
        let mut got = 0;
        while got < WINDOW {
            match resp::parse_reply(&buf).expect("valid reply") {
                Some((r, used)) => {
                    buf.drain(..used);
                    assert_eq!(r, ok(), "SET answered {r:?}");
                    acked += 1;
                    got += 1;
                    acked_total.fetch_add(1, Ordering::Relaxed);
                }
                None => match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => return acked,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
            }
        }
    }
}

#[test]
fn acknowledged_sets_survive_kill_9() {
    for fsync in ["always", "never"] {
        let dir = TempDir::new("kill9");
        let server = ChildServer::start(&dir.0, fsync);
        let total = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                let (addr, total) = (server.addr, total.clone());
                std::thread::spawn(move || writer(addr, id, &total))
            })
            .collect();
        // Kill while every writer is mid-stream.
        let deadline = Instant::now() + DEADLINE;
        while total.load(Ordering::Relaxed) < 4000 {
            assert!(Instant::now() < deadline, "writers made no progress");
            std::thread::yield_now();
        }
        server.kill9();
        let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();

        let engine = start(&dir.0, 2, Fsync::Never);
        let mut c = Client::connect(engine.addr());
        for (id, &n) in acked.iter().enumerate() {
            assert!(n > 0, "writer {id} got acknowledgements");
            // Check in MGET batches: every acknowledged key has its value.
            for start_at in (0..n).step_by(500) {
                let keys: Vec<String> = (start_at..n.min(start_at + 500))
                    .map(|i| format!("w{id}:{i}"))
                    .collect();
                let mut args = vec!["MGET"];
                args.extend(keys.iter().map(String::as_str));
                let Reply::Array(Some(values)) = c.cmd(&args) else {
                    panic!("MGET failed")
                };
                for (i, v) in (start_at..).zip(values) {
                    assert_eq!(
                        v,
                        bulk(&i.to_string()),
                        "fsync={fsync}: acknowledged w{id}:{i} lost"
                    );
                }
            }
        }
        drop(c);
        engine.shutdown().unwrap();
    }
}

#[test]
fn sigterm_flushes_and_exits_cleanly() {
    let dir = TempDir::new("term");
    let server = ChildServer::start(&dir.0, "never");
    let mut c = Client::connect(server.addr);
    let mut out = Vec::new();
    for i in 0..1000 {
        resp::command(&mut out, &[b"SET", format!("t{i}").as_bytes(), b"x"]);
    }
    c.send(&out);
    for _ in 0..1000 {
        assert_eq!(c.reply(), ok());
    }
    assert!(server.terminate(), "the server exits 0 after SIGTERM");
    assert!(c.closed(), "connections are closed at shutdown");
    let engine = start(&dir.0, 2, Fsync::Never);
    assert_eq!(
        Client::connect(engine.addr()).cmd(&["DBSIZE"]),
        Reply::Int(1000)
    );
    engine.shutdown().unwrap();
}
