//! One shard's partition of the key space: an in-memory map plus the append-only log that makes
//! it durable, and the replay that rebuilds the map from the log at start.
//!
//! # Log format
//!
//! The log is a sequence of records, each
//!
//! ```text
//! +---------------+---------------+-------------------------------------------------+
//! | len: u32 LE   | crc: u32 LE   | payload (len bytes)                             |
//! +---------------+---------------+-------------------------------------------------+
//! payload = op: u8 | key_len: u32 LE | key | [val_len: u32 LE | value]   (value: SET only)
//! op      = 1 SET, 2 DEL, 3 FLUSHALL (no key: key_len 0)
//! ```
//!
//! `crc` is CRC-32 (IEEE) of the payload. `INCR` is logged as the `SET` of its result, so replay
//! never re-executes arithmetic. Replay applies records in order and stops at the first record
//! that is incomplete (a write torn by a crash) or fails its checksum; the file is truncated
//! there, so later appends never follow garbage. A record is acknowledged to a client only after
//! it was handed to the kernel (and, with [`Fsync::Always`], synced), so a torn tail is always
//! unacknowledged.

use super::resp::Limits;
use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When the log is synced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// `fdatasync` before acknowledging any write (group commit: one sync per batch of
    /// queued requests).
    Always,
    /// `fdatasync` at most every this long while there are unsynced writes. Acknowledged
    /// writes survive a process crash, and an OS crash loses at most about this window.
    Every(Duration),
    /// Never sync (the OS writes back when it likes). Acknowledged writes survive a process
    /// crash, not an OS crash.
    Never,
}

impl Fsync {
    /// Parses `always`, `never`, `everysec` or `<N>ms`.
    ///
    /// # Errors
    ///
    /// A message naming the accepted forms.
    pub fn parse(s: &str) -> Result<Fsync, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            "everysec" => Ok(Fsync::Every(Duration::from_secs(1))),
            _ => s
                .strip_suffix("ms")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|&n| n > 0)
                .map(|n| Fsync::Every(Duration::from_millis(n)))
                .ok_or_else(|| {
                    format!("bad fsync policy {s:?}: use always, never, everysec or <N>ms")
                }),
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsync::Always => f.write_str("always"),
            Fsync::Never => f.write_str("never"),
            Fsync::Every(d) if *d == Duration::from_secs(1) => f.write_str("everysec"),
            Fsync::Every(d) => write!(f, "{}ms", d.as_millis()),
        }
    }
}

/// One operation on a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The value of a key.
    Get(Vec<u8>),
    /// Sets a key.
    Set(Vec<u8>, Vec<u8>),
    /// Removes a key; answers 1 if it existed.
    Del(Vec<u8>),
    /// Adds one to the integer value of a key (missing: 0).
    Incr(Vec<u8>),
    /// 1 if the key exists.
    Exists(Vec<u8>),
    /// The number of keys.
    DbSize,
    /// Removes every key.
    FlushAll,
}

impl Op {
    /// True if the operation may change the partition (and so must be logged).
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Set(..) | Op::Del(_) | Op::Incr(_) | Op::FlushAll)
    }
}

/// The result of an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A value or none (`GET`).
    Value(Option<Vec<u8>>),
    /// An integer (`DEL`, `INCR`, `EXISTS`, `DBSIZE`).
    Int(i64),
    /// Done (`SET`, `FLUSHALL`).
    Ok,
    /// An error reply, without the leading `-`.
    Err(&'static str),
}

const OP_SET: u8 = 1;
const OP_DEL: u8 = 2;
const OP_FLUSH: u8 = 3;

/// What replay found in a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records applied.
    pub records: u64,
    /// Bytes of valid log.
    pub bytes: u64,
    /// Bytes cut off the end (a torn or corrupt tail).
    pub truncated: u64,
    /// Keys in the partition after replay.
    pub keys: u64,
}

/// An append-only log file with a user-space buffer: [`append`](Log::append) encodes into the
/// buffer, [`write_out`](Log::write_out) hands it to the kernel, [`sync`](Log::sync) makes it
/// durable.
#[derive(Debug)]
pub struct Log {
    file: File,
    buf: Vec<u8>,
    /// Bytes in the file (written out).
    len: u64,
    /// Written out but not synced.
    unsynced: bool,
}

/// A replay in progress: the log is read and applied in chunks, so a store can hand its shard
/// back between chunks (see `store.rs`). [`Log::open`] runs one to the end at once.
#[derive(Debug)]
pub struct Replay {
    reader: BufReader<File>,
    /// The file's length when the replay began.
    total: u64,
    /// Records longer than this count as corrupt.
    max: u64,
    payload: Vec<u8>,
    rec: Recovery,
    /// A torn or corrupt record (or the end) was reached.
    done: bool,
}

impl Replay {
    /// Opens (creating if missing) the log at `path` for replay. Records larger than
    /// `limits.max_request` count as corrupt.
    ///
    /// # Errors
    ///
    /// The I/O error of opening the file.
    pub fn start(path: &Path, limits: &Limits) -> io::Result<Replay> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let total = file.metadata()?.len();
        Ok(Replay {
            reader: BufReader::with_capacity(1 << 16, file),
            total,
            max: limits.max_request as u64 + 16,
            payload: Vec::new(),
            rec: Recovery::default(),
            done: false,
        })
    }

    /// Applies records to `part` until about `budget` bytes were read or the valid log ends;
    /// returns true once it has ended (call [`finish`](Self::finish) then).
    ///
    /// # Errors
    ///
    /// The I/O error of reading the file.
    pub fn step(&mut self, part: &mut Partition, budget: u64) -> io::Result<bool> {
        let until = self.rec.bytes.saturating_add(budget.max(1));
        while !self.done && self.rec.bytes < until {
            let mut head = [0u8; 8];
            if !read_full(&mut self.reader, &mut head)? {
                self.done = true;
                break;
            }
            let len = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
            let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
            if len > self.max {
                self.done = true;
                break;
            }
            self.payload.resize(len as usize, 0);
            if !read_full(&mut self.reader, &mut self.payload)?
                || crc32(&self.payload) != crc
                || !part.replay(&self.payload)
            {
                self.done = true;
                break;
            }
            self.rec.records += 1;
            self.rec.bytes += 8 + len;
        }
        Ok(self.done)
    }

    /// Cuts a torn or corrupt tail off the file and returns the log, positioned at its end,
    /// and what the replay found.
    ///
    /// # Errors
    ///
    /// The I/O error of truncating or seeking the file.
    pub fn finish(self, part: &Partition) -> io::Result<(Log, Recovery)> {
        debug_assert!(self.done, "finish before the replay ended");
        let mut rec = self.rec;
        let mut file = self.reader.into_inner();
        if rec.bytes < self.total {
            rec.truncated = self.total - rec.bytes;
            file.set_len(rec.bytes)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        rec.keys = part.len() as u64;
        Ok((
            Log {
                file,
                buf: Vec::with_capacity(1 << 16),
                len: rec.bytes,
                unsynced: false,
            },
            rec,
        ))
    }
}

impl Log {
    /// Opens (creating if missing) the log at `path`, replays it into `part` in one go, and
    /// truncates a torn or corrupt tail. Records larger than `limits.max_request` count as
    /// corrupt.
    ///
    /// # Errors
    ///
    /// The I/O error of opening, reading or truncating the file.
    // The store replays in steps; the one-shot form serves the tests (`tests/kv_resp.rs`).
    #[allow(dead_code)]
    pub fn open(path: &Path, part: &mut Partition, limits: &Limits) -> io::Result<(Log, Recovery)> {
        let mut replay = Replay::start(path, limits)?;
        while !replay.step(part, u64::MAX)? {}
        replay.finish(part)
    }

    /// Bytes in the file plus bytes buffered.
    pub fn len(&self) -> u64 {
        self.len + self.buf.len() as u64
    }

    /// True if records are buffered and not yet written out.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Appends one record (`value` only for `SET`) to the buffer.
    fn append(&mut self, op: u8, key: &[u8], value: Option<&[u8]>) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 8]);
        self.buf.push(op);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        if let Some(v) = value {
            self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(v);
        }
        let payload = &self.buf[at + 8..];
        let len = payload.len() as u32;
        let crc = crc32(payload);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Hands the buffered records to the kernel.
    ///
    /// # Errors
    ///
    /// The `write` error; the buffer is kept (nothing may be acknowledged then).
    pub fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Syncs written-out records (`fdatasync`). Returns true if there was anything to sync.
    ///
    /// # Errors
    ///
    /// The `fdatasync` error.
    pub fn sync(&mut self) -> io::Result<bool> {
        if !self.unsynced {
            return Ok(false);
        }
        self.file.sync_data()?;
        self.unsynced = false;
        Ok(true)
    }
}

/// Reads exactly `buf.len()` bytes; false at a clean or torn end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// One shard's keys and values.
#[derive(Debug, Default)]
pub struct Partition {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl Partition {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Applies `op`, logging what it changed to `log`'s buffer.
    pub fn apply(&mut self, op: Op, log: &mut Log) -> OpResult {
        match op {
            Op::Get(k) => OpResult::Value(self.map.get(&k).cloned()),
            Op::Exists(k) => OpResult::Int(i64::from(self.map.contains_key(&k))),
            Op::DbSize => OpResult::Int(self.map.len() as i64),
            Op::Set(k, v) => {
                log.append(OP_SET, &k, Some(&v));
                self.map.insert(k, v);
                OpResult::Ok
            }
            Op::Del(k) => {
                if self.map.remove(&k).is_some() {
                    log.append(OP_DEL, &k, None);
                    OpResult::Int(1)
                } else {
                    OpResult::Int(0)
                }
            }
            Op::Incr(k) => {
                let current = match self.map.get(&k) {
                    None => 0,
                    Some(v) => match super::resp::parse_i64(v) {
                        Some(n) => n,
                        None => {
                            return OpResult::Err("ERR value is not an integer or out of range");
                        }
                    },
                };
                let Some(next) = current.checked_add(1) else {
                    return OpResult::Err("ERR increment or decrement would overflow");
                };
                let v = next.to_string().into_bytes();
                log.append(OP_SET, &k, Some(&v));
                self.map.insert(k, v);
                OpResult::Int(next)
            }
            Op::FlushAll => {
                log.append(OP_FLUSH, &[], None);
                self.map.clear();
                OpResult::Ok
            }
        }
    }

    /// Applies one logged payload; false if it does not decode.
    fn replay(&mut self, p: &[u8]) -> bool {
        let Some((&op, rest)) = p.split_first() else {
            return false;
        };
        let Some((key, rest)) = take_field(rest) else {
            return false;
        };
        match op {
            OP_SET => match take_field(rest) {
                Some((value, [])) => {
                    self.map.insert(key.to_vec(), value.to_vec());
                    true
                }
                _ => false,
            },
            OP_DEL if rest.is_empty() => {
                self.map.remove(key);
                true
            }
            OP_FLUSH if rest.is_empty() && key.is_empty() => {
                self.map.clear();
                true
            }
            _ => false,
        }
    }
}

/// Splits a `len: u32 LE | bytes` field off the front of `p`.
fn take_field(p: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = p.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// CRC-32 (IEEE 802.3, reflected, polynomial `0xEDB88320`), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The log file of shard `shard` in `dir`.
pub fn log_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard}.log"))
}

/// Which of `shards` partitions owns `key`: FNV-1a 64 of the key, mixed by the MurmurHash3
/// 64-bit finaliser, reduced by multiply-shift. Fixed and seedless, so a key stays on its shard
/// across restarts. (FNV-1a alone leaves keys that differ only in their last bytes, such as
/// `key:1`, `key:2`, in a few high-bit buckets: 4 shards got 2.5 %, 35 %, 22 % and 40 % of
/// `key:0..4000`.)
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    ((u128::from(h) * shards as u128) >> 64) as usize
}
