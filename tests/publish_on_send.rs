//! A lone message to another shard leaves when it is sent, not when the sender's turn ends.
//!
//! A handler sends one message (or answers one ask) across shards and then, still inside its
//! turn, waits for the other side to have handled it. Only a message published at the send can
//! be seen before the turn ends; one published at the turn's end would make the handler wait
//! until its bounded wait gives up, and the test fail.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::wait_until;
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How long a handler waits for the other shard before it records a miss.
const IN_TURN_WAIT: Duration = Duration::from_secs(10);
const NOT_YET: u8 = 0;
const SEEN: u8 = 1;
const MISSED: u8 = 2;

/// Spins (yielding) until `flag` is set or [`IN_TURN_WAIT`] passes.
fn wait_in_turn(flag: &AtomicBool) -> u8 {
    let until = Instant::now() + IN_TURN_WAIT;
    while Instant::now() < until {
        if flag.load(Ordering::Acquire) {
            return SEEN;
        }
        std::thread::yield_now();
    }
    MISSED
}

/// What the two actors share: a flag per direction and the outcome of each wait.
#[derive(Default)]
struct Flags {
    /// The receiver handled the note.
    noted: AtomicBool,
    /// The sender took the answer to its ask.
    answered: AtomicBool,
    /// How the sender's wait for `noted` ended.
    tell_outcome: AtomicU8,
    /// How the receiver's wait for `answered` ended.
    reply_outcome: AtomicU8,
}

/// Takes notes; answers asks, then waits in the same turn for the asker to have the answer.
struct Receiver {
    flags: Arc<Flags>,
}

enum ReceiverMsg {
    Note,
    Echo(u64, Reply<u64>),
}

impl Actor for Receiver {
    type Msg = ReceiverMsg;
    fn handle(&mut self, msg: ReceiverMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            ReceiverMsg::Note => self.flags.noted.store(true, Ordering::Release),
            ReceiverMsg::Echo(v, reply) => {
                reply.send(v);
                let outcome = wait_in_turn(&self.flags.answered);
                self.flags.reply_outcome.store(outcome, Ordering::Release);
            }
        }
    }
}

/// Tells a [`Receiver`] on another shard and waits in the same turn; asks it.
struct Sender {
    peer: Addr<Receiver>,
    flags: Arc<Flags>,
}

enum SenderMsg {
    /// Tell the peer, then wait for it to have handled the note.
    TellAndWait,
    /// Ask the peer (which waits for this actor to have taken the answer).
    Ask,
    Answer(Result<u64, AskError>),
}

impl Actor for Sender {
    type Msg = SenderMsg;
    fn handle(&mut self, msg: SenderMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            SenderMsg::TellAndWait => {
                self.peer.tell(ReceiverMsg::Note).unwrap();
                let outcome = wait_in_turn(&self.flags.noted);
                self.flags.tell_outcome.store(outcome, Ordering::Release);
            }
            SenderMsg::Ask => ctx.ask(
                &self.peer,
                |r| ReceiverMsg::Echo(7, r),
                Duration::from_secs(60),
                SenderMsg::Answer,
            ),
            SenderMsg::Answer(a) => {
                assert_eq!(a, Ok(7));
                self.flags.answered.store(true, Ordering::Release);
            }
        }
    }
}

/// The pair on shards 0 and 1 of a runtime with `shards` shards.
fn pair(shards: usize) -> (Runtime, Addr<Sender>, Arc<Flags>) {
    let rt = Runtime::builder().shards(shards).build().unwrap();
    let flags = Arc::new(Flags::default());
    let peer = rt
        .spawn_on(
            1,
            Receiver {
                flags: flags.clone(),
            },
        )
        .unwrap();
    let sender = rt
        .spawn_on(
            0,
            Sender {
                peer,
                flags: flags.clone(),
            },
        )
        .unwrap();
    (rt, sender, flags)
}

/// Starts the pair with `start` and checks that the in-turn wait read by `outcome` saw the
/// other side (with 2 and 4 shards); `what` names the message that had to leave early.
fn check_seen_in_turn(start: fn() -> SenderMsg, outcome: fn(&Flags) -> &AtomicU8, what: &str) {
    for shards in [2, 4] {
        let (rt, sender, flags) = pair(shards);
        sender.tell(start()).unwrap();
        let outcome = outcome(&flags);
        wait_until("the in-turn wait to end", || {
            outcome.load(Ordering::Acquire) != NOT_YET
        });
        assert_eq!(
            outcome.load(Ordering::Acquire),
            SEEN,
            "{shards} shards: the {what} was not taken while its sender's turn lasted"
        );
        rt.shutdown().unwrap();
    }
}

#[test]
fn a_tell_to_another_shard_leaves_before_the_turn_ends() {
    check_seen_in_turn(|| SenderMsg::TellAndWait, |f| &f.tell_outcome, "note");
}

#[test]
fn an_answer_to_another_shard_leaves_before_the_turn_ends() {
    check_seen_in_turn(|| SenderMsg::Ask, |f| &f.reply_outcome, "answer");
}
