//! The kv example's RESP parser and encoders, and its log format: partial frames at every split
//! point, every limit, malformed input, replay with torn and corrupt tails.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod kv_common;

use kv_common::resp::{self, Limits, ProtocolError, Reply, parse_command, parse_reply};
use kv_common::storage::{Log, Op, OpResult, Partition, crc32, shard_of};
use kv_common::{TempDir, storage};

fn args(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn parses_multibulk_and_inline() {
    let l = Limits::default();
    let frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    assert_eq!(
        parse_command(frame, &l).unwrap(),
        Some((args(&["SET", "k", "hello"]), frame.len()))
    );
    assert_eq!(
        parse_command(b"GET  k\r\nrest", &l).unwrap(),
        Some((args(&["GET", "k"]), 8))
    );
    assert_eq!(
        parse_command(b"PING\n", &l).unwrap(),
        Some((args(&["PING"]), 5))
    );
    // Empty requests are consumed and ignored.
    assert_eq!(parse_command(b"*0\r\n", &l).unwrap(), Some((vec![], 4)));
    assert_eq!(parse_command(b"\r\n", &l).unwrap(), Some((vec![], 2)));
    // Binary-safe bulk: CRLF inside a value.
    let bin = b"*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n";
    assert_eq!(
        parse_command(bin, &l).unwrap().unwrap().0[1],
        b"a\r\nb".to_vec()
    );
}

// A frame split anywhere is "incomplete" until its last byte, then whole; two pipelined frames
// parse one after the other.
#[test]
fn partial_frames_at_every_split_point() {
    let l = Limits::default();
    let mut pipeline = Vec::new();
    resp::command(&mut pipeline, &[b"SET", b"key:1", &[7u8; 300]]);
    let first = pipeline.len();
    resp::command(&mut pipeline, &[b"MGET", b"a", b"b", b"c"]);
    for cut in 0..first {
        assert_eq!(
            parse_command(&pipeline[..cut], &l).unwrap(),
            None,
            "cut {cut}"
        );
    }
    let (a, used) = parse_command(&pipeline, &l).unwrap().unwrap();
    assert_eq!((a.len(), used), (3, first));
    let (b, used2) = parse_command(&pipeline[used..], &l).unwrap().unwrap();
    assert_eq!(b, args(&["MGET", "a", "b", "c"]));
    assert_eq!(used + used2, pipeline.len());
}

#[test]
fn limits_are_enforced_before_the_bytes_arrive() {
    let l = Limits {
        max_bulk: 10,
        max_args: 3,
        max_inline: 16,
        max_request: 50,
    };
    // Only the header of an oversized bulk has arrived: rejected already.
    assert_eq!(
        parse_command(b"*2\r\n$3\r\nGET\r\n$11\r\n", &l),
        Err(ProtocolError::BulkLength)
    );
    assert_eq!(
        parse_command(b"*4\r\n", &l),
        Err(ProtocolError::MultibulkLength)
    );
    assert_eq!(
        parse_command(b"*3\r\n$10\r\n", &l).unwrap(),
        None,
        "at the limit is fine"
    );
    assert_eq!(
        parse_command(
            b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n",
            &l
        ),
        Err(ProtocolError::RequestTooBig)
    );
    assert_eq!(
        parse_command(&[b'x'; 17], &l),
        Err(ProtocolError::InlineTooBig)
    );
    assert_eq!(parse_command(&[b'x'; 16], &l).unwrap(), None);
    // A header line that never ends.
    let mut endless = b"*".to_vec();
    endless.extend_from_slice(&[b'1'; 40]);
    assert_eq!(
        parse_command(&endless, &l),
        Err(ProtocolError::ExpectedCrlf)
    );
}

#[test]
fn malformed_frames_are_errors() {
    let l = Limits::default();
    for (bad, want) in [
        (&b"*x\r\n"[..], ProtocolError::MultibulkLength),
        (b"*1\r\n:5\r\n", ProtocolError::ExpectedBulk(b':')),
        (b"*1\r\n$-1\r\n", ProtocolError::BulkLength),
        (b"*1\r\n$2\r\nabXY", ProtocolError::ExpectedCrlf),
        (b"*1\r\n$2\rX", ProtocolError::ExpectedCrlf),
        (b"*99999999999999999999\r\n", ProtocolError::MultibulkLength),
    ] {
        assert_eq!(parse_command(bad, &l), Err(want), "{}", bad.escape_ascii());
    }
}

#[test]
fn replies_round_trip() {
    let mut out = Vec::new();
    resp::simple(&mut out, "OK");
    resp::error(&mut out, "ERR bad\r\nthing");
    resp::int(&mut out, -42);
    resp::bulk(&mut out, Some(b"v"));
    resp::bulk(&mut out, None);
    resp::array_header(&mut out, 2);
    resp::bulk(&mut out, Some(b""));
    resp::int(&mut out, 7);
    let want = [
        Reply::Simple("OK".into()),
        Reply::Error("ERR bad  thing".into()),
        Reply::Int(-42),
        Reply::Bulk(Some(b"v".to_vec())),
        Reply::Bulk(None),
        Reply::Array(Some(vec![Reply::Bulk(Some(vec![])), Reply::Int(7)])),
    ];
    let mut pos = 0;
    for w in want {
        // Incomplete until the last byte of the reply.
        let (r, used) = parse_reply(&out[pos..]).unwrap().unwrap();
        assert_eq!(parse_reply(&out[pos..pos + used - 1]).unwrap(), None);
        assert_eq!(r, w);
        pos += used;
    }
    assert_eq!(pos, out.len());
}

#[test]
fn parse_i64_bounds() {
    assert_eq!(resp::parse_i64(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(resp::parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(resp::parse_i64(b"9223372036854775808"), None);
    for bad in [&b""[..], b"-", b"1a", b"+1", b" 1"] {
        assert_eq!(resp::parse_i64(bad), None);
    }
}

#[test]
fn crc32_and_key_placement_are_fixed() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    // Seedless: the same key maps to the same shard in every process.
    assert_eq!(shard_of(b"", 4), shard_of(b"", 4));
    let mut counts = [0usize; 4];
    for i in 0..4000 {
        counts[shard_of(format!("key:{i}").as_bytes(), 4)] += 1;
    }
    assert!(counts.iter().all(|&c| c > 700), "spread: {counts:?}");
}

fn open(path: &std::path::Path) -> (Partition, Log, storage::Recovery) {
    let mut p = Partition::default();
    let (log, rec) = Log::open(path, &mut p, &Limits::default()).unwrap();
    (p, log, rec)
}

// Replay rebuilds SET/DEL/INCR/FLUSHALL; a torn tail and a corrupt record are cut off and the
// log keeps working after them.
#[test]
fn log_replay_truncates_torn_and_corrupt_tails() {
    let dir = TempDir::new("log");
    let path = dir.0.join("shard-0.log");
    {
        let (mut p, mut log, rec) = open(&path);
        assert_eq!(rec.records, 0);
        p.apply(Op::Set(b"a".to_vec(), b"1".to_vec()), &mut log);
        p.apply(Op::Set(b"gone".to_vec(), b"x".to_vec()), &mut log);
        p.apply(Op::FlushAll, &mut log);
        p.apply(Op::Set(b"b".to_vec(), b"2".to_vec()), &mut log);
        assert_eq!(p.apply(Op::Incr(b"b".to_vec()), &mut log), OpResult::Int(3));
        p.apply(Op::Set(b"c".to_vec(), b"3".to_vec()), &mut log);
        assert_eq!(p.apply(Op::Del(b"c".to_vec()), &mut log), OpResult::Int(1));
        assert_eq!(p.apply(Op::Del(b"c".to_vec()), &mut log), OpResult::Int(0));
        log.write_out().unwrap();
        log.sync().unwrap();
    }
    let good = std::fs::metadata(&path).unwrap().len();
    {
        let (mut p, mut log, rec) = open(&path);
        assert_eq!((rec.records, rec.truncated, rec.keys), (7, 0, 1));
        assert_eq!(
            p.apply(Op::Get(b"b".to_vec()), &mut log),
            OpResult::Value(Some(b"3".to_vec()))
        );
    }
    // A torn record: half a header and some payload.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let (_, _, rec) = open(&path);
    assert_eq!((rec.records, rec.truncated), (7, 6));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    // A record whose checksum fails, followed by a valid-looking one: both cut.
    {
        let (mut p, mut log, _) = open(&path);
        p.apply(Op::Set(b"d".to_vec(), b"4".to_vec()), &mut log);
        p.apply(Op::Set(b"e".to_vec(), b"5".to_vec()), &mut log);
        log.write_out().unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let flip = good as usize + 10;
    bytes[flip] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let (mut p, mut log, rec) = open(&path);
    assert_eq!(rec.records, 7);
    assert!(rec.truncated > 0);
    // Appends after the cut are replayed next time.
    p.apply(Op::Set(b"f".to_vec(), b"6".to_vec()), &mut log);
    log.write_out().unwrap();
    drop((p, log));
    let (_, _, rec) = open(&path);
    assert_eq!((rec.records, rec.truncated, rec.keys), (8, 0, 2));
}

#[test]
fn incr_errors_do_not_log() {
    let dir = TempDir::new("incr");
    let (mut p, mut log, _) = open(&dir.0.join("l"));
    p.apply(Op::Set(b"s".to_vec(), b"abc".to_vec()), &mut log);
    p.apply(
        Op::Set(b"m".to_vec(), i64::MAX.to_string().into_bytes()),
        &mut log,
    );
    let before = log.len();
    assert!(matches!(
        p.apply(Op::Incr(b"s".to_vec()), &mut log),
        OpResult::Err(_)
    ));
    assert!(matches!(
        p.apply(Op::Incr(b"m".to_vec()), &mut log),
        OpResult::Err(_)
    ));
    assert_eq!(log.len(), before);
    assert_eq!(
        p.apply(Op::Incr(b"new".to_vec()), &mut log),
        OpResult::Int(1)
    );
}

#[test]
fn fsync_policies_parse() {
    use kv_common::storage::Fsync;
    use std::time::Duration;
    assert_eq!(Fsync::parse("always"), Ok(Fsync::Always));
    assert_eq!(Fsync::parse("never"), Ok(Fsync::Never));
    assert_eq!(
        Fsync::parse("everysec"),
        Ok(Fsync::Every(Duration::from_secs(1)))
    );
    assert_eq!(
        Fsync::parse("5ms"),
        Ok(Fsync::Every(Duration::from_millis(5)))
    );
    assert!(Fsync::parse("0ms").is_err() && Fsync::parse("sometimes").is_err());
}
