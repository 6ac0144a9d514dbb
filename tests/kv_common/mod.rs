//! Shared by the `kv_*` tests: the example's modules compiled into the test (so the tests drive
//! the same engine code the example runs, without building the example binary), a blocking
//! RESP client, temporary directories, and a child-process server for crash tests.
//!
//! The child server is the test binary itself, re-run with `--exact kv_child_server`: a test
//! binary that uses [`ChildServer`] declares `#[test] fn kv_child_server()` calling
//! [`child_server_entry`], which serves only when the environment asks it to and returns at
//! once otherwise.

// Each test binary uses a different subset of these helpers and of the example's modules.
#![allow(dead_code, clippy::disallowed_types, clippy::disallowed_methods)]

#[path = "../../examples/kv/conn.rs"]
pub mod conn;
#[path = "../../examples/kv/load.rs"]
pub mod load;
#[path = "../../examples/kv/resp.rs"]
pub mod resp;
#[path = "../../examples/kv/serve.rs"]
pub mod serve;
#[path = "../../examples/kv/signal.rs"]
pub mod signal;
#[path = "../../examples/kv/storage.rs"]
pub mod storage;
#[path = "../../examples/kv/store.rs"]
pub mod store;
#[path = "../../examples/kv/wiring.rs"]
pub mod wiring;

use resp::Reply;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use storage::Fsync;
use wiring::{Engine, EngineConfig};

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "coreactor-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An engine configuration on a free loopback port.
pub fn config(dir: &Path, shards: usize, fsync: Fsync) -> EngineConfig {
    EngineConfig {
        dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        shards: Some(shards),
        fsync,
        conn: conn::ConnConfig::default(),
    }
}

/// Starts an in-process engine.
pub fn start(dir: &Path, shards: usize, fsync: Fsync) -> Engine {
    Engine::start(config(dir, shards, fsync)).expect("engine starts")
}

/// A blocking RESP client with a read timeout.
pub struct Client {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(DEADLINE)).expect("timeout");
        sock.set_nodelay(true).expect("nodelay");
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("write");
    }

    /// Sends one command.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        let mut out = Vec::new();
        resp::command(&mut out, args);
        self.send(&out);
    }

    /// Reads one reply; `None` if the server closed the connection first.
    pub fn try_reply(&mut self) -> Option<Reply> {
        loop {
            if let Some((r, used)) = resp::parse_reply(&self.buf).expect("valid reply") {
                self.buf.drain(..used);
                return Some(r);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read reply: {e}"),
            }
        }
    }

    /// Reads one reply.
    pub fn reply(&mut self) -> Reply {
        self.try_reply().expect("server closed the connection")
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_cmd(&bytes);
        self.reply()
    }

    /// True once the server has closed the connection (reads to end of stream).
    pub fn closed(&mut self) -> bool {
        self.try_reply().is_none()
    }
}

/// Polls `DBSIZE` until it is `n`; fails if it passes `n` or [`DEADLINE`] passes first.
pub fn wait_for_dbsize(c: &mut Client, n: i64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match c.cmd(&["DBSIZE"]) {
            Reply::Int(x) if x == n => return,
            Reply::Int(x) => {
                assert!(x < n, "DBSIZE {x}, expected {n}");
                assert!(
                    Instant::now() < deadline,
                    "DBSIZE stuck at {x}, expected {n}"
                );
            }
            other => panic!("DBSIZE answered {other:?}"),
        }
        std::thread::yield_now();
    }
}

/// `Reply::Bulk(Some(s))`.
pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// `Reply::Simple("OK")`.
pub fn ok() -> Reply {
    Reply::Simple("OK".into())
}

/// The environment variable that makes [`child_server_entry`] serve from a directory.
const CHILD_DIR: &str = "KV_TEST_CHILD_DIR";
/// Its fsync policy.
const CHILD_FSYNC: &str = "KV_TEST_CHILD_FSYNC";
/// What the child prints once it accepts connections.
const LISTENING: &str = "KV_TEST_LISTENING ";

/// The body of a test binary's `kv_child_server` test: serves `--serve`-style until SIGTERM
/// when the parent asked for it through the environment; does nothing otherwise.
pub fn child_server_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let fsync = Fsync::parse(&std::env::var(CHILD_FSYNC).expect("fsync")).expect("policy");
    let cfg = config(Path::new(&dir), 2, fsync);
    serve::serve(cfg, |addr| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{LISTENING}{addr}").expect("stdout");
        out.flush().expect("stdout");
    })
    .expect("serve");
}

/// An engine served by a child process (the test binary re-run as [`child_server_entry`]).
pub struct ChildServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ChildServer {
    /// Starts a child serving `dir` and waits until it accepts connections.
    pub fn start(dir: &Path, fsync: &str) -> ChildServer {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "kv_child_server",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir)
            .env(CHILD_FSYNC, fsync)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child server");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed `test kv_child_server ... ` on the same line.
                if let Some(at) = line.find(LISTENING) {
                    let addr = line[at + LISTENING.len()..].trim();
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("address"));
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(addr) => ChildServer { child, addr },
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child server did not start: {e}");
            }
        }
    }

    /// `kill -9`, then reap.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then wait (bounded) for the exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM failed");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "child did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
