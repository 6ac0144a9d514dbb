//! The TCP front end: an acceptor per shard and one connection actor per client, pinned to the
//! shard that accepted it.
//!
//! # A connection
//!
//! Each readiness message reads what the socket holds (bounded by
//! [`Limits::max_request`]), parses every complete command and turns it into operations for the
//! stores that own its keys: one [`StoreMsg::Batch`] per store per read, so a pipeline of 16
//! commands costs at most one message per shard, and a key owned by another shard crosses the
//! ring in that batch and its result comes back as a reply. Commands complete out of order
//! (different shards, commits) but their replies are written in command order: each command
//! has a slot in a queue and only the completed head of the queue is encoded.
//!
//! Requests from one connection to one store travel in one FIFO lane, so a connection always
//! reads its own writes.
//!
//! # Limits and failure
//!
//! * At most [`ConnConfig::max_inflight`] commands and [`ConnConfig::max_batches`] batches wait
//!   for stores, and parsing pauses while more than [`ConnConfig::max_output`] bytes wait to be
//!   written; input then stays in the socket, so a client that does not read its replies is
//!   slowed down, not buffered without bound.
//! * An unknown command or a wrong argument count is an error reply; the connection goes on.
//! * A protocol error (malformed frame, oversized bulk) is an error reply, then the connection
//!   closes once the replies before it are written: the stream cannot be resynchronised.
//! * A client that disconnects: commands it sent completely are still executed (they may be
//!   writes), their replies are discarded if the socket is gone, and the actor stops.
//! * Any of these touches this connection only.
//!
//! # Lifecycle
//!
//! An [`Acceptor`] discovers every store by name (`kv.shard.N`, waiting for names not
//! registered yet) and links to each in its I-phase; links are "operational only", so the
//! acceptor is initialized only once every store has replayed its log, and it registers the
//! listener in `started`. A [`Conn`] links to its acceptor. Links make shutdown run clients
//! first: connections, then acceptors, then stores; and a store that goes down takes the
//! acceptors (and through them the connections) down with it, to be restarted by their
//! supervisors once it is back.

use super::resp::{self, Limits, ProtocolError};
use super::storage::{Op, OpResult, shard_of};
use super::store::{Item, Results, Store, StoreMsg, Tag, store_name};
use super::wiring::{EngineEvent, Events};
use coreactor::io::Readiness;
use coreactor::net::{ReadOutcome, TcpAcceptor, TcpConn};
use coreactor::{Actor, ActorRef, Addr, AskError, Context, RegistryError, Reply, StopReason};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Settings shared by every connection.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Request size limits.
    pub limits: Limits,
    /// Most commands waiting for their reply per connection.
    pub max_inflight: usize,
    /// Most batches waiting for a store per connection.
    pub max_batches: usize,
    /// Output bytes above which parsing pauses.
    pub max_output: usize,
    /// How long a batch may wait for its store before its commands fail.
    pub store_timeout: Duration,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_inflight: 1024,
            max_batches: 16,
            max_output: 1 << 20,
            store_timeout: Duration::from_secs(10),
        }
    }
}

/// How a command's part results become its reply.
enum Kind {
    /// Already encoded (PING, errors, ...).
    Done(Vec<u8>),
    /// One operation; its result is the reply.
    One,
    /// `MGET`: an array of the values, in key order.
    Values,
    /// `DEL`/`EXISTS`/`DBSIZE`: the sum of the integers.
    Sum,
    /// `FLUSHALL`: OK once every shard answered.
    AllOk,
}

/// One command waiting for its results.
struct Slot {
    kind: Kind,
    results: Vec<Option<OpResult>>,
    left: usize,
}

/// Why the connection is winding down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The client sent QUIT or a malformed request: reply to what came before, then close.
    AfterReplies,
    /// The socket failed: stop now.
    Now,
}

/// Messages of a [`Conn`].
pub enum ConnMsg {
    /// Socket readiness.
    Io(Readiness),
    /// A store answered a batch (or the batch failed: the tags say which commands).
    Done(Result<Results, AskError>, Vec<Tag>),
}

/// A client connection. See the [module docs](self).
pub struct Conn {
    io: TcpConn,
    /// The acceptor that spawned it: linked to in `init`.
    acceptor: ActorRef,
    stores: Arc<[Addr<Store>]>,
    cfg: Arc<ConnConfig>,
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    base: u64,
    batches: usize,
    need_read: bool,
    closing: Option<Closing>,
    /// Parsing stopped at a limit with complete commands possibly left in the input.
    stalled: bool,
}

impl Conn {
    /// A connection actor for an accepted stream.
    ///
    /// # Errors
    ///
    /// The error of making the socket non-blocking.
    pub fn new(
        stream: std::net::TcpStream,
        acceptor: ActorRef,
        stores: Arc<[Addr<Store>]>,
        cfg: Arc<ConnConfig>,
    ) -> std::io::Result<Conn> {
        let _ = stream.set_nodelay(true);
        let io = TcpConn::new(stream)?.with_read_limit(cfg.limits.max_request);
        Ok(Conn {
            io,
            acceptor,
            stores,
            cfg,
            slots: VecDeque::new(),
            base: 0,
            batches: 0,
            need_read: true,
            closing: None,
            stalled: false,
        })
    }

    fn blocked(&self) -> bool {
        self.slots.len() >= self.cfg.max_inflight
            || self.batches >= self.cfg.max_batches
            || self.io.pending_output() >= self.cfg.max_output
    }

    /// Reads, parses and dispatches as far as the limits allow, writes completed replies, and
    /// stops the actor when it is done.
    fn pump(&mut self, ctx: &mut Context<'_, Self>) {
        while self.closing.is_none() {
            // Completed replies leave the in-flight window first: otherwise a window full of
            // completed slots blocks `dispatch`, the last completion leaves nothing in flight,
            // and the buffered input is never parsed again (a stall).
            self.emit();
            if self.need_read && !self.blocked() {
                match self.io.read_ready() {
                    Ok(ReadOutcome::WouldBlock | ReadOutcome::Eof) => self.need_read = false,
                    Ok(ReadOutcome::Full) => {}
                    Err(_) => self.closing = Some(Closing::Now),
                }
            }
            let before = self.io.input().len();
            self.dispatch(ctx);
            let consumed = before - self.io.input().len();
            if !(self.need_read && consumed > 0 && !self.blocked()) {
                break;
            }
        }
        self.emit();
        if self.closing == Some(Closing::Now) || self.io.flush(ctx).is_err() {
            ctx.stop();
            return;
        }
        let finished = match self.closing {
            Some(_) => true,
            None => self.io.is_eof() && !self.stalled,
        };
        if finished && self.slots.is_empty() && self.io.pending_output() == 0 {
            ctx.stop();
        }
    }

    /// Parses complete commands while the limits allow and sends their operations, one batch
    /// per store.
    fn dispatch(&mut self, ctx: &mut Context<'_, Self>) {
        let shards = self.stores.len();
        let mut batches: Vec<Vec<Item>> = (0..shards).map(|_| Vec::new()).collect();
        self.stalled = false;
        while self.closing.is_none() {
            if self.blocked() {
                self.stalled = true;
                break;
            }
            let parsed = resp::parse_command(self.io.input(), &self.cfg.limits);
            match parsed {
                Ok(None) => break,
                Ok(Some((args, used))) => {
                    self.io.consume(used);
                    if !args.is_empty() {
                        self.command(args, &mut batches);
                    }
                }
                Err(e) => {
                    self.protocol_error(e);
                    break;
                }
            }
        }
        for (shard, items) in batches.into_iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            self.batches += 1;
            let tags: Vec<Tag> = items.iter().map(|i| i.tag).collect();
            ctx.ask(
                &self.stores[shard],
                |r: Reply<Results>| StoreMsg::Batch(items, r),
                self.cfg.store_timeout,
                move |res| ConnMsg::Done(res, tags),
            );
        }
    }

    fn protocol_error(&mut self, e: ProtocolError) {
        let mut out = Vec::new();
        resp::error(&mut out, &format!("ERR {e}"));
        self.push(Kind::Done(out), 0);
        self.closing = Some(Closing::AfterReplies);
    }

    /// Queues a slot and returns its sequence number.
    fn push(&mut self, kind: Kind, parts: usize) -> u64 {
        let seq = self.base + self.slots.len() as u64;
        self.slots.push_back(Slot {
            kind,
            results: vec![None; parts],
            left: parts,
        });
        seq
    }

    fn done(&mut self, reply: impl FnOnce(&mut Vec<u8>)) {
        let mut out = Vec::new();
        reply(&mut out);
        self.push(Kind::Done(out), 0);
    }

    /// Plans one command: an immediate reply, or operations added to `batches`.
    fn command(&mut self, mut args: Vec<Vec<u8>>, batches: &mut [Vec<Item>]) {
        let name = args[0].to_ascii_uppercase();
        let argc = args.len();
        let arity_ok = match name.as_slice() {
            b"PING" => argc <= 2,
            b"ECHO" | b"GET" | b"INCR" => argc == 2,
            b"SET" => argc == 3,
            b"DEL" | b"EXISTS" | b"MGET" => argc >= 2,
            b"DBSIZE" | b"QUIT" => argc == 1,
            b"FLUSHALL" => argc <= 2,
            _ => {
                let shown = String::from_utf8_lossy(&args[0])
                    .chars()
                    .take(64)
                    .collect::<String>();
                return self.done(|o| resp::error(o, &format!("ERR unknown command '{shown}'")));
            }
        };
        if !arity_ok {
            let lower = String::from_utf8_lossy(&name).to_lowercase();
            return self.done(|o| {
                resp::error(
                    o,
                    &format!("ERR wrong number of arguments for '{lower}' command"),
                );
            });
        }
        let shards = batches.len();
        let mut send = |seq: u64, part: usize, key_shard: usize, op: Op| {
            let tag = Tag {
                seq,
                part: part as u32,
            };
            batches[key_shard].push(Item { tag, op });
        };
        match name.as_slice() {
            b"PING" => match args.pop().filter(|_| argc == 2) {
                Some(msg) => self.done(|o| resp::bulk(o, Some(&msg))),
                None => self.done(|o| resp::simple(o, "PONG")),
            },
            b"ECHO" => {
                let msg = args.pop().expect("arity checked");
                self.done(|o| resp::bulk(o, Some(&msg)));
            }
            b"QUIT" => {
                self.done(|o| resp::simple(o, "OK"));
                self.closing = Some(Closing::AfterReplies);
            }
            b"GET" | b"INCR" => {
                let key = args.pop().expect("arity checked");
                let seq = self.push(Kind::One, 1);
                let s = shard_of(&key, shards);
                let op = if name == b"GET" {
                    Op::Get(key)
                } else {
                    Op::Incr(key)
                };
                send(seq, 0, s, op);
            }
            b"SET" => {
                let value = args.pop().expect("arity checked");
                let key = args.pop().expect("arity checked");
                let seq = self.push(Kind::One, 1);
                send(seq, 0, shard_of(&key, shards), Op::Set(key, value));
            }
            b"DEL" | b"EXISTS" | b"MGET" => {
                let kind = if name == b"MGET" {
                    Kind::Values
                } else {
                    Kind::Sum
                };
                let seq = self.push(kind, argc - 1);
                for (part, key) in args.into_iter().skip(1).enumerate() {
                    let s = shard_of(&key, shards);
                    let op = match name.as_slice() {
                        b"DEL" => Op::Del(key),
                        b"EXISTS" => Op::Exists(key),
                        _ => Op::Get(key),
                    };
                    send(seq, part, s, op);
                }
            }
            b"DBSIZE" | b"FLUSHALL" => {
                let (kind, op) = if name == b"DBSIZE" {
                    (Kind::Sum, Op::DbSize)
                } else {
                    (Kind::AllOk, Op::FlushAll)
                };
                let seq = self.push(kind, shards);
                for s in 0..shards {
                    send(seq, s, s, op.clone());
                }
            }
            _ => unreachable!("every command with a checked arity is handled"),
        }
    }

    /// Records the results of a batch.
    fn complete(&mut self, res: Result<Results, AskError>, tags: Vec<Tag>) {
        self.batches -= 1;
        let results = match res {
            Ok(r) => r,
            Err(e) => {
                let msg = match e {
                    AskError::Full => "BUSY store overloaded, try again",
                    AskError::Timeout(_) => "ERR store timed out (the command may have run)",
                    _ => "ERR store unavailable (the command may have run)",
                };
                tags.into_iter().map(|t| (t, OpResult::Err(msg))).collect()
            }
        };
        for (tag, r) in results {
            let Some(slot) = tag
                .seq
                .checked_sub(self.base)
                .and_then(|i| self.slots.get_mut(i as usize))
            else {
                continue;
            };
            let part = &mut slot.results[tag.part as usize];
            if part.is_none() {
                slot.left -= 1;
            }
            *part = Some(r);
        }
    }

    /// Encodes the replies of the completed commands at the head of the queue.
    fn emit(&mut self) {
        while self.slots.front().is_some_and(|s| s.left == 0) {
            let slot = self.slots.pop_front().expect("checked");
            self.base += 1;
            encode(slot, self.io.output_buf());
        }
    }
}

fn encode(slot: Slot, out: &mut Vec<u8>) {
    let mut results = slot.results.into_iter().map(|r| r.expect("complete slot"));
    let first_err = |rs: &[OpResult]| {
        rs.iter().find_map(|r| match r {
            OpResult::Err(e) => Some(*e),
            _ => None,
        })
    };
    match slot.kind {
        Kind::Done(bytes) => out.extend_from_slice(&bytes),
        Kind::One => match results.next().expect("one part") {
            OpResult::Value(v) => resp::bulk(out, v.as_deref()),
            OpResult::Int(n) => resp::int(out, n),
            OpResult::Ok => resp::simple(out, "OK"),
            OpResult::Err(e) => resp::error(out, e),
        },
        Kind::Values => {
            let rs: Vec<OpResult> = results.collect();
            if let Some(e) = first_err(&rs) {
                return resp::error(out, e);
            }
            resp::array_header(out, rs.len());
            for r in rs {
                match r {
                    OpResult::Value(v) => resp::bulk(out, v.as_deref()),
                    _ => resp::bulk(out, None),
                }
            }
        }
        Kind::Sum => {
            let rs: Vec<OpResult> = results.collect();
            if let Some(e) = first_err(&rs) {
                return resp::error(out, e);
            }
            let sum = rs
                .iter()
                .map(|r| if let OpResult::Int(n) = r { *n } else { 0 })
                .sum();
            resp::int(out, sum);
        }
        Kind::AllOk => {
            let rs: Vec<OpResult> = results.collect();
            match first_err(&rs) {
                Some(e) => resp::error(out, e),
                None => resp::simple(out, "OK"),
            }
        }
    }
}

impl Actor for Conn {
    type Msg = ConnMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        // The acceptor outlives its connections: its shutdown (or restart) closes them first.
        ctx.link(&self.acceptor);
    }

    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        if self.io.register(ctx, ConnMsg::Io).is_err() {
            ctx.stop();
            return;
        }
        // The client may have written while the link was being confirmed: read what is there
        // now rather than rely on an edge for data that arrived before the registration.
        self.pump(ctx);
    }

    fn handle(&mut self, msg: ConnMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ConnMsg::Io(r) => {
                if r.readable || r.hangup || r.error {
                    self.need_read = true;
                }
            }
            ConnMsg::Done(res, tags) => self.complete(res, tags),
        }
        self.pump(ctx);
    }
}

/// Messages of an [`Acceptor`].
pub enum AcceptorMsg {
    /// The store of shard `.0` was discovered (and is being linked to).
    Found(usize, Result<Addr<Store>, RegistryError>),
    /// The listener has connections waiting.
    Ready,
    /// Connections accepted so far.
    Accepted(Reply<u64>),
    /// Accept again after an `accept` error paused the acceptor.
    Resume,
}

/// Accepts connections on its shard and spawns a [`Conn`] for each, on the same shard. See the
/// [module docs](self) for its lifecycle.
pub struct Acceptor {
    /// Its own clone of the shared listener, or why it could not be made.
    listener: Result<TcpAcceptor, String>,
    /// The stores, by shard, as they are discovered.
    found: Vec<Option<Addr<Store>>>,
    stores: Arc<[Addr<Store>]>,
    cfg: Arc<ConnConfig>,
    events: Events,
    accepted: u64,
    /// Shutting down: stays deregistered.
    closing: bool,
}

impl Acceptor {
    /// An acceptor for `listener` (its own clone of the shared one, or the error of making
    /// it, which fails the init) serving a store per shard of `shards`.
    pub fn new(
        listener: std::io::Result<TcpAcceptor>,
        shards: usize,
        cfg: Arc<ConnConfig>,
        events: Events,
    ) -> Self {
        Acceptor {
            listener: listener.map_err(|e| format!("cannot clone the listener: {e}")),
            found: vec![None; shards],
            stores: Arc::new([]),
            cfg,
            events,
            accepted: 0,
            closing: false,
        }
    }

    fn listen(&mut self, ctx: &mut Context<'_, Self>) -> std::io::Result<()> {
        match &mut self.listener {
            // Level-triggered, one accept per poll: every shard's acceptor shares the listener,
            // so connections spread over the shards that poll it.
            Ok(l) => l.register_shared(ctx, 1, |_| AcceptorMsg::Ready).map(drop),
            Err(e) => Err(std::io::Error::other(e.clone())),
        }
    }
}

impl Actor for Acceptor {
    type Msg = AcceptorMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        if let Err(e) = &self.listener {
            let why = format!("acceptor on shard {}: {e}", ctx.shard_id());
            let _ = self.events.send(EngineEvent::Failed(why.clone()));
            ctx.stop_with(StopReason::Failed(why));
            return;
        }
        // Each discovery (delayed: a store may not have registered yet) and each link holds
        // the I-phase; a link waits until its store is operational, i.e. replayed.
        for shard in 0..self.found.len() {
            ctx.discover_and_link::<Store>(store_name(shard), true, move |r| {
                AcceptorMsg::Found(shard, r)
            });
        }
    }

    fn started(&mut self, ctx: &mut Context<'_, Self>) {
        let stores: Option<Vec<Addr<Store>>> = self.found.iter().cloned().collect();
        let Some(stores) = stores else {
            ctx.stop_with(StopReason::Failed("a store was not discovered".into()));
            return;
        };
        self.stores = stores.into();
        match self.listen(ctx) {
            Ok(()) => {
                let _ = self.events.send(EngineEvent::Accepting(ctx.shard_id()));
            }
            Err(e) => {
                let why = format!("acceptor on shard {}: {e}", ctx.shard_id());
                let _ = self.events.send(EngineEvent::Failed(why.clone()));
                ctx.stop_with(StopReason::Failed(why));
            }
        }
    }

    fn stopping(&mut self, _reason: &StopReason, ctx: &mut Context<'_, Self>) {
        // Stop accepting at once; the linked connections are asked to unlink (and stop).
        self.closing = true;
        if let Ok(l) = &mut self.listener {
            let _ = l.deregister(ctx);
        }
    }

    fn handle(&mut self, msg: AcceptorMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            AcceptorMsg::Found(shard, found) => {
                // A failed discovery fails the I-phase before this message is made.
                if let (Ok(store), Some(slot)) = (found, self.found.get_mut(shard)) {
                    *slot = Some(store);
                }
            }
            AcceptorMsg::Ready if self.closing => {}
            AcceptorMsg::Ready => {
                let Ok(listener) = &mut self.listener else {
                    return;
                };
                let mut streams = Vec::new();
                if let Err(e) = listener.accept_ready(|s, _| streams.push(s)) {
                    // Out of descriptors, typically: the listener would be reported again at
                    // every poll, so look away for a while instead of spinning on it.
                    eprintln!(
                        "kv: accept on shard {}: {e}; pausing 100 ms",
                        ctx.shard_id()
                    );
                    let _ = listener.deregister(ctx);
                    ctx.send_after(Duration::from_millis(100), AcceptorMsg::Resume);
                }
                let me = ctx.actor_ref();
                for stream in streams {
                    let conn = Conn::new(stream, me.clone(), self.stores.clone(), self.cfg.clone());
                    if let Ok(conn) = conn
                        && ctx.spawn(conn).is_ok()
                    {
                        self.accepted += 1;
                    }
                }
            }
            AcceptorMsg::Accepted(reply) => reply.send(self.accepted),
            AcceptorMsg::Resume if self.closing => {}
            AcceptorMsg::Resume => {
                if let Err(e) = self.listen(ctx) {
                    eprintln!("kv: acceptor on shard {}: {e}", ctx.shard_id());
                }
            }
        }
    }
}
