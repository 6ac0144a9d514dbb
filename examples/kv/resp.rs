//! RESP2, the Redis serialisation protocol: a bounded request parser for the server, reply
//! encoders, and a reply parser for clients (the load generator and the tests).
//!
//! # Requests
//!
//! A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what redis-cli
//! and redis-benchmark send) or an inline line (`GET k\r\n`, what a person types into telnet).
//! [`parse_command`] looks at the start of the connection's input and answers one of: a whole
//! command and the bytes it used, "incomplete" (wait for more input: frames may be split across
//! reads anywhere), or a [`ProtocolError`], after which the stream cannot be resynchronised and
//! the connection must be closed.
//!
//! The parser keeps no state between calls: an incomplete frame is parsed again from its start
//! when more input arrives. That costs O(arguments) per call, never O(bytes) (bulk bodies are
//! skipped by their declared length), and the [`Limits`] bound the arguments.
//!
//! # Bounds
//!
//! Every size is checked as soon as it is declared, before its bytes are waited for: a bulk
//! longer than [`Limits::max_bulk`], an array longer than [`Limits::max_args`], a command whose
//! declared size exceeds [`Limits::max_request`], a header line longer than [`MAX_HEADER_LINE`]
//! or an inline line longer than [`Limits::max_inline`] is an error at once. So a connection
//! never needs more than `max_request` bytes of input to make progress.

use std::fmt;

/// Longest `*<n>\r\n` / `$<n>\r\n` header line accepted (a sign, 19 digits, CRLF, slack).
pub const MAX_HEADER_LINE: usize = 32;

/// Default [`Limits::max_bulk`]: 512 KiB.
pub const DEFAULT_MAX_BULK: usize = 512 * 1024;
/// Default [`Limits::max_args`]: 65 536.
pub const DEFAULT_MAX_ARGS: usize = 65_536;
/// Default [`Limits::max_inline`]: 64 KiB.
pub const DEFAULT_MAX_INLINE: usize = 64 * 1024;
/// Default [`Limits::max_request`]: 4 MiB.
pub const DEFAULT_MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Size limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string (a key or a value).
    pub max_bulk: usize,
    /// Most elements of a request array.
    pub max_args: usize,
    /// Longest inline request line.
    pub max_inline: usize,
    /// Most bytes of one whole request, headers included.
    pub max_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk: DEFAULT_MAX_BULK,
            max_args: DEFAULT_MAX_ARGS,
            max_inline: DEFAULT_MAX_INLINE,
            max_request: DEFAULT_MAX_REQUEST,
        }
    }
}

/// Why a request stream cannot be parsed. The connection is closed after reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*` not followed by a valid count, or more than `max_args`.
    MultibulkLength,
    /// `$` not followed by a valid length, or more than `max_bulk`.
    BulkLength,
    /// An array element that does not start with `$`.
    ExpectedBulk(u8),
    /// A header line without CRLF within [`MAX_HEADER_LINE`] bytes, or a bulk not followed by
    /// CRLF.
    ExpectedCrlf,
    /// An inline line longer than `max_inline`.
    InlineTooBig,
    /// A request whose declared size exceeds `max_request`.
    RequestTooBig,
    /// A reply type byte the client parser does not know.
    UnknownType(u8),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultibulkLength => f.write_str("Protocol error: invalid multibulk length"),
            Self::BulkLength => f.write_str("Protocol error: invalid bulk length"),
            Self::ExpectedBulk(b) => {
                write!(
                    f,
                    "Protocol error: expected '$', got '{}'",
                    b.escape_ascii()
                )
            }
            Self::ExpectedCrlf => f.write_str("Protocol error: expected CRLF"),
            Self::InlineTooBig => f.write_str("Protocol error: too big inline request"),
            Self::RequestTooBig => f.write_str("Protocol error: request too big"),
            Self::UnknownType(b) => {
                write!(
                    f,
                    "Protocol error: unknown reply type '{}'",
                    b.escape_ascii()
                )
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// One parsed request: its arguments (empty for an empty array or a blank inline line, which
/// the server ignores) and how many input bytes it used.
pub type Parsed = (Vec<Vec<u8>>, usize);

/// Parses one request from the start of `buf`. `Ok(None)` means the request is not complete
/// yet. See the [module docs](self).
///
/// # Errors
///
/// A [`ProtocolError`] when the input can never become a valid request.
pub fn parse_command(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Reads the integer header line starting at `buf[at]` (after its type byte). Returns the value
/// and the index after its CRLF, `None` if the line is incomplete.
fn header_int(
    buf: &[u8],
    at: usize,
    bad: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = &buf[at..];
    let window = &rest[..rest.len().min(MAX_HEADER_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if rest.len() >= MAX_HEADER_LINE {
            Err(ProtocolError::ExpectedCrlf)
        } else {
            Ok(None)
        };
    };
    match rest.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(ProtocolError::ExpectedCrlf),
    }
    let n = parse_i64(&rest[..cr]).ok_or(bad)?;
    Ok(Some((n, at + cr + 2)))
}

/// Parses a decimal `i64` (optional `-`, at least one digit, nothing else).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

fn parse_multibulk(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, ProtocolError> {
    let Some((count, mut pos)) = header_int(buf, 1, ProtocolError::MultibulkLength)? else {
        return Ok(None);
    };
    if count <= 0 {
        // `*0` and `*-1`: an empty request, ignored (as Redis does).
        return Ok(Some((Vec::new(), pos)));
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::MultibulkLength)?;
    if count > limits.max_args {
        return Err(ProtocolError::MultibulkLength);
    }
    // Validate the whole frame before allocating anything for it.
    let mut spans = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        if kind != b'$' {
            return Err(ProtocolError::ExpectedBulk(kind));
        }
        let Some((len, body)) = header_int(buf, pos + 1, ProtocolError::BulkLength)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| ProtocolError::BulkLength)?;
        if len > limits.max_bulk {
            return Err(ProtocolError::BulkLength);
        }
        let end = body + len;
        if end + 2 > limits.max_request {
            return Err(ProtocolError::RequestTooBig);
        }
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::ExpectedCrlf);
        }
        spans.push((body, end));
        pos = end + 2;
    }
    let args = spans.into_iter().map(|(a, b)| buf[a..b].to_vec()).collect();
    Ok(Some((args, pos)))
}

fn parse_inline(buf: &[u8], limits: &Limits) -> Result<Option<Parsed>, ProtocolError> {
    let window = &buf[..buf.len().min(limits.max_inline.saturating_add(1))];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_inline {
            Err(ProtocolError::InlineTooBig)
        } else {
            Ok(None)
        };
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let args = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Some((args, nl + 1)))
}

/// Appends a simple string reply (`+OK\r\n`).
pub fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends an error reply (`-ERR ...\r\n`); CR and LF in `msg` become spaces.
pub fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend(
        msg.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends an integer reply (`:42\r\n`).
pub fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string reply, or the null bulk (`$-1\r\n`) for `None`.
pub fn bulk(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.extend_from_slice(b"$-1\r\n"),
        Some(v) => {
            out.push(b'$');
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends an array header (`*3\r\n`); the elements follow.
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a request: an array of bulk strings.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    array_header(out, args.len());
    for a in args {
        bulk(out, Some(a));
    }
}

/// A reply, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Int(i64),
    /// `$...`; `None` is the null bulk.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` is the null array.
    Array(Option<Vec<Reply>>),
}

/// Parses one reply from the start of `buf` (client side, not bounded: for trusted servers).
/// `Ok(None)` means incomplete.
///
/// # Errors
///
/// A [`ProtocolError`] for bytes that are not a reply.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let line_end = |from: usize| {
        buf[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    match kind {
        b'+' | b'-' => {
            let Some(end) = line_end(1) else {
                return Ok(None);
            };
            let text = String::from_utf8_lossy(&buf[1..end]).into_owned();
            let reply = if kind == b'+' {
                Reply::Simple(text)
            } else {
                Reply::Error(text)
            };
            Ok(Some((reply, end + 2)))
        }
        b':' => {
            let Some(end) = line_end(1) else {
                return Ok(None);
            };
            let n = parse_i64(&buf[1..end]).ok_or(ProtocolError::ExpectedCrlf)?;
            Ok(Some((Reply::Int(n), end + 2)))
        }
        b'$' => {
            let Some(end) = line_end(1) else {
                return Ok(None);
            };
            let n = parse_i64(&buf[1..end]).ok_or(ProtocolError::BulkLength)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), end + 2)));
            }
            let body = end + 2;
            let stop = body + usize::try_from(n).map_err(|_| ProtocolError::BulkLength)?;
            if buf.len() < stop + 2 {
                return Ok(None);
            }
            Ok(Some((
                Reply::Bulk(Some(buf[body..stop].to_vec())),
                stop + 2,
            )))
        }
        b'*' => {
            let Some(end) = line_end(1) else {
                return Ok(None);
            };
            let n = parse_i64(&buf[1..end]).ok_or(ProtocolError::MultibulkLength)?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), end + 2)));
            }
            let mut pos = end + 2;
            let mut items = Vec::new();
            for _ in 0..n {
                let Some((item, used)) = parse_reply(&buf[pos..])? else {
                    return Ok(None);
                };
                items.push(item);
                pos += used;
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(ProtocolError::UnknownType(other)),
    }
}
