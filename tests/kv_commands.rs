//! The kv engine over loopback: every command, pipelining, keys owned by other shards, bad
//! input that fails one client only, a client that disconnects mid-pipeline, and recovery
//! after a restart.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod kv_common;

use kv_common::resp::{self, Reply};
use kv_common::storage::{Fsync, shard_of};
use kv_common::{Client, TempDir, bulk, ok, start};

#[test]
fn every_command() {
    let dir = TempDir::new("cmds");
    let engine = start(&dir.0, 3, Fsync::Never);
    let mut c = Client::connect(engine.addr());
    assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
    assert_eq!(c.cmd(&["ping", "hi"]), bulk("hi"));
    assert_eq!(c.cmd(&["ECHO", "x y"]), bulk("x y"));
    assert_eq!(c.cmd(&["GET", "a"]), Reply::Bulk(None));
    assert_eq!(c.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(c.cmd(&["set", "b", "two"]), ok());
    assert_eq!(c.cmd(&["GET", "a"]), bulk("1"));
    assert_eq!(c.cmd(&["INCR", "a"]), Reply::Int(2));
    assert_eq!(c.cmd(&["INCR", "n"]), Reply::Int(1));
    assert!(matches!(c.cmd(&["INCR", "b"]), Reply::Error(e) if e.contains("not an integer")));
    assert_eq!(
        c.cmd(&["MGET", "a", "nope", "b"]),
        Reply::Array(Some(vec![bulk("2"), Reply::Bulk(None), bulk("two")]))
    );
    assert_eq!(c.cmd(&["EXISTS", "a", "b", "nope", "a"]), Reply::Int(3));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(3));
    assert_eq!(c.cmd(&["DEL", "a", "nope", "n"]), Reply::Int(2));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(1));
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
    assert!(matches!(c.cmd(&["GET"]), Reply::Error(e) if e.contains("wrong number of arguments")));
    assert!(matches!(
        c.cmd(&["SET", "k", "v", "EX", "1"]),
        Reply::Error(_)
    ));
    assert!(
        matches!(c.cmd(&["HSET", "h", "f", "v"]), Reply::Error(e) if e.contains("unknown command"))
    );
    // Inline commands, as typed into telnet.
    c.send(b"SET inline yes\r\nGET inline\r\n");
    assert_eq!(c.reply(), ok());
    assert_eq!(c.reply(), bulk("yes"));
    assert_eq!(c.cmd(&["QUIT"]), ok());
    assert!(c.closed());
    engine.shutdown().unwrap();
}

// Thousands of pipelined commands in one write, over keys of every shard, come back in order;
// replies of a connection see its own earlier writes.
#[test]
fn pipelining_keeps_order_across_shards() {
    let dir = TempDir::new("pipe");
    let shards = 4;
    let engine = start(&dir.0, shards, Fsync::Never);
    let keys: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
    let owners: std::collections::HashSet<usize> = keys
        .iter()
        .map(|k| shard_of(k.as_bytes(), shards))
        .collect();
    assert_eq!(owners.len(), shards, "the keys cover every shard");
    let mut c = Client::connect(engine.addr());
    let mut out = Vec::new();
    let rounds = 50;
    for r in 0..rounds {
        for k in &keys {
            let v = format!("{k}={r}");
            resp::command(&mut out, &[b"SET", k.as_bytes(), v.as_bytes()]);
            resp::command(&mut out, &[b"GET", k.as_bytes()]);
            resp::command(&mut out, &[b"INCR", format!("n{k}").as_bytes()]);
        }
    }
    let all: Vec<&[u8]> = std::iter::once(&b"MGET"[..])
        .chain(keys.iter().map(|k| k.as_bytes()))
        .collect();
    resp::command(&mut out, &all);
    c.send(&out);
    for r in 0..rounds {
        for k in &keys {
            assert_eq!(c.reply(), ok());
            assert_eq!(c.reply(), bulk(&format!("{k}={r}")));
            assert_eq!(c.reply(), Reply::Int(r + 1));
        }
    }
    let last: Vec<Reply> = keys
        .iter()
        .map(|k| bulk(&format!("{k}={}", rounds - 1)))
        .collect();
    assert_eq!(c.reply(), Reply::Array(Some(last)));
    // The batches crossed the rings: every store saw operations.
    let stats = engine.store_stats();
    assert!(
        stats.iter().all(|s| s.is_some_and(|s| s.ops > 0)),
        "{stats:?}"
    );
    assert!(
        engine
            .shard_stats()
            .iter()
            .map(|s| s.sent_remote)
            .sum::<u64>()
            > 0
    );
    engine.shutdown().unwrap();
}

// Malformed RESP, an oversized bulk, and an unknown command: an error for that client (and a
// close for the protocol errors); another client in the middle of its own work is unaffected,
// and what was acknowledged stays.
#[test]
fn bad_input_fails_only_its_client() {
    let dir = TempDir::new("bad");
    let mut cfg = kv_common::config(&dir.0, 2, Fsync::Never);
    cfg.conn.limits.max_bulk = 1024;
    let engine = kv_common::wiring::Engine::start(cfg).unwrap();
    let mut good = Client::connect(engine.addr());
    assert_eq!(good.cmd(&["SET", "stay", "here"]), ok());
    // Half a pipeline from the good client is pending while the others misbehave.
    good.send(b"*3\r\n$3\r\nSET\r\n$4\r\nlate\r\n$1");

    let cases: [(&[u8], &str); 4] = [
        (b"*2\r\n$3\r\nGET\r\n:12\r\n", "expected '$'"),
        (b"*1\r\n$5000\r\n", "invalid bulk length"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*1\r\n$4\r\nPINGxx", "expected CRLF"),
    ];
    for (bytes, want) in cases {
        let mut bad = Client::connect(engine.addr());
        // A valid command first: its reply comes before the error.
        bad.send(b"*3\r\n$3\r\nSET\r\n$6\r\nbefore\r\n$1\r\n1\r\n");
        bad.send(bytes);
        assert_eq!(bad.reply(), ok());
        match bad.reply() {
            Reply::Error(e) => assert!(e.contains(want), "{e:?} should contain {want:?}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(bad.closed(), "a protocol error closes the connection");
    }
    // An oversized value sent in full is refused at its header; nothing of it is stored.
    let mut big = Client::connect(engine.addr());
    let mut out = Vec::new();
    resp::command(&mut out, &[b"SET", b"big", &[b'x'; 4096]]);
    let _ = std::io::Write::write_all(&mut big.sock, &out);
    match big.try_reply() {
        Some(Reply::Error(e)) => assert!(e.contains("bulk length"), "{e}"),
        // The close may overtake the error reply if part of the value was still unread.
        None => {}
        Some(other) => panic!("expected an error, got {other:?}"),
    }

    let mut unknown = Client::connect(engine.addr());
    assert!(matches!(unknown.cmd(&["NOPE"]), Reply::Error(_)));
    assert_eq!(
        unknown.cmd(&["GET", "stay"]),
        bulk("here"),
        "unknown commands keep the connection"
    );

    good.send(b"\r\nv\r\n");
    assert_eq!(good.reply(), ok());
    assert_eq!(
        good.cmd(&["MGET", "stay", "late", "big", "before"]),
        Reply::Array(Some(vec![
            bulk("here"),
            bulk("v"),
            Reply::Bulk(None),
            bulk("1")
        ]))
    );
    engine.shutdown().unwrap();
}

// A client that sends a pipeline and disconnects before reading: its complete commands run,
// its partial last command does not, and the engine serves others.
#[test]
fn disconnect_mid_pipeline() {
    let dir = TempDir::new("disc");
    let engine = start(&dir.0, 2, Fsync::Never);
    for round in 0..20 {
        let mut c = Client::connect(engine.addr());
        let mut out = Vec::new();
        for i in 0..200 {
            resp::command(
                &mut out,
                &[b"SET", format!("d{round}:{i}").as_bytes(), b"v"],
            );
        }
        out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$7\r\npartial\r\n$1");
        c.send(&out);
        if round % 2 == 0 {
            // Both directions at once: the server's replies find nobody to read them.
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        drop(c);
    }
    let mut c = Client::connect(engine.addr());
    // Each connection's complete SETs all landed (its actor finished them before stopping).
    kv_common::wait_for_dbsize(&mut c, 20 * 200);
    assert_eq!(c.cmd(&["EXISTS", "partial"]), Reply::Int(0));
    engine.shutdown().unwrap();
}

// Everything written is there after a clean restart, with each policy.
#[test]
fn recovery_after_restart() {
    for fsync in [Fsync::Always, Fsync::Never, Fsync::parse("5ms").unwrap()] {
        let dir = TempDir::new("restart");
        let engine = start(&dir.0, 2, fsync);
        let mut c = Client::connect(engine.addr());
        let mut out = Vec::new();
        for i in 0..500 {
            resp::command(
                &mut out,
                &[
                    b"SET",
                    format!("r{i}").as_bytes(),
                    format!("{i}").as_bytes(),
                ],
            );
        }
        resp::command(&mut out, &[b"DEL", b"r7", b"r8"]);
        resp::command(&mut out, &[b"INCR", b"r9"]);
        c.send(&out);
        for _ in 0..500 {
            assert_eq!(c.reply(), ok());
        }
        assert_eq!(c.reply(), Reply::Int(2));
        assert_eq!(c.reply(), Reply::Int(10));
        drop(c);
        engine.shutdown().unwrap();

        let engine = start(&dir.0, 2, fsync);
        let recovered: u64 = engine.recovered().iter().map(|s| s.recovery.keys).sum();
        assert_eq!(recovered, 498, "{fsync}");
        let mut c = Client::connect(engine.addr());
        assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(498));
        assert_eq!(c.cmd(&["GET", "r9"]), bulk("10"));
        assert_eq!(c.cmd(&["GET", "r499"]), bulk("499"));
        assert_eq!(c.cmd(&["EXISTS", "r7", "r8"]), Reply::Int(0));
        engine.shutdown().unwrap();

        // The partition count is fixed by the directory.
        let mut cfg = kv_common::config(&dir.0, 3, fsync);
        cfg.shards = Some(3);
        let err = kv_common::wiring::Engine::start(cfg)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("2 partitions"), "{err}");
    }
}
