//! Backpressure with `mailbox_capacity(4)`: while the target's shard is held at a gate, the
//! fifth send is refused with `Full` (message handed back) from threads and actors alike,
//! `tell_timeout` gives up with `Full`, asks report `Full` or wait for room within their timeout,
//! `mailbox_len` reports the real depth, and once drained, sends succeed again.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{Sink, SinkMsg, block_on, block_shard, for_each_shard_count, join, wait_until};
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime, SendError};
use std::time::{Duration, Instant};

const ASK: Duration = Duration::from_secs(30);
const CAP: usize = 4;

/// What a send from inside an actor came to: `Ok`, or `Full`/`Closed` with the value handed back.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Ok,
    Full(u64),
    Closed(u64),
}

fn sent(r: Result<(), SendError<SinkMsg>>) -> Sent {
    match r {
        Ok(()) => Sent::Ok,
        Err(SendError::Full(SinkMsg::Data(x))) => Sent::Full(x),
        Err(SendError::Closed(SinkMsg::Data(x))) => Sent::Closed(x),
        Err(_) => panic!("a Get came back from a Data send"),
    }
}

/// Sends to a sink from inside a handler, with `tell` and with `Context::ask`.
#[derive(Default)]
struct Prober {
    done: Option<Reply<Result<Vec<u64>, AskError>>>,
}

enum ProbeMsg {
    Tell(Addr<Sink>, u64, Reply<Sent>),
    Ask(Addr<Sink>, Reply<Result<Vec<u64>, AskError>>),
    Answer(Result<Vec<u64>, AskError>),
}

impl Actor for Prober {
    type Msg = ProbeMsg;
    fn handle(&mut self, msg: ProbeMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ProbeMsg::Tell(to, x, r) => r.send(sent(to.tell(SinkMsg::Data(x)))),
            ProbeMsg::Ask(to, r) => {
                self.done = Some(r);
                ctx.ask(&to, SinkMsg::Get, ASK, ProbeMsg::Answer);
            }
            ProbeMsg::Answer(a) => self.done.take().expect("asked").send(a),
        }
    }
}

fn small_mailboxes(n: usize) -> Runtime {
    Runtime::builder()
        .shards(n)
        .mailbox_capacity(CAP)
        .build()
        .unwrap()
}

// A mailbox filled before its actor even starts refuses the fifth message with Full(msg), from
// outside threads (try_tell, tell_timeout, ask, ask_async) and from actors (tell, Context::ask).
#[test]
fn full_mailbox_refuses_and_hands_message_back() {
    for_each_shard_count(|n| {
        let rt = small_mailboxes(n);
        let s = n - 1;
        let prober = (n > 1).then(|| rt.spawn_on(0, Prober::default()).unwrap());
        let (_gate, guard, _blocker) = block_shard(&rt, s);
        // The shard is held in a handler: the sink is not even installed yet.
        let sink = rt.spawn_on(s, Sink::default()).unwrap();
        for i in 0..CAP as u64 {
            sink.try_tell(SinkMsg::Data(i))
                .expect("room for the first four");
        }
        assert_eq!(sink.mailbox_len(), CAP);
        assert_eq!(sent(sink.try_tell(SinkMsg::Data(4))), Sent::Full(4));

        let timeout = Duration::from_millis(30);
        let t0 = Instant::now();
        assert_eq!(
            sent(sink.tell_timeout(SinkMsg::Data(5), timeout)),
            Sent::Full(5)
        );
        assert!(
            t0.elapsed() >= timeout,
            "tell_timeout gave up before its timeout"
        );

        assert_eq!(sink.ask(SinkMsg::Get, timeout), Err(AskError::Full));
        assert_eq!(
            block_on(sink.ask_async(SinkMsg::Get, ASK)),
            Err(AskError::Full)
        );
        if let Some(p) = &prober {
            let from_actor = p.ask(|r| ProbeMsg::Tell(sink.clone(), 6, r), ASK).unwrap();
            assert_eq!(from_actor, Sent::Full(6), "tell on a shard never waits");
            let asked = p.ask(|r| ProbeMsg::Ask(sink.clone(), r), ASK).unwrap();
            assert_eq!(asked, Err(AskError::Full), "Context::ask never waits");
        }
        assert_eq!(sink.mailbox_len(), CAP, "refused sends are not counted");
        assert_eq!(rt.dead_letters(), 0);

        // An ask with a long timeout waits for room, then is answered.
        let waiting = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.ask(SinkMsg::Get, ASK))
        };
        drop(guard);
        assert_eq!(join("waiting ask", waiting), Ok(vec![0, 1, 2, 3]));
        wait_until("the mailbox to drain", || sink.mailbox_len() == 0);

        // Drained: sends succeed again, up to the bound.
        for i in 10..10 + CAP as u64 {
            sink.try_tell(SinkMsg::Data(i)).expect("room again");
        }
        if let Some(p) = &prober {
            wait_until("the mailbox to drain again", || sink.mailbox_len() == 0);
            let from_actor = p.ask(|r| ProbeMsg::Tell(sink.clone(), 20, r), ASK).unwrap();
            assert_eq!(from_actor, Sent::Ok);
        }
        let mut expected = vec![0, 1, 2, 3, 10, 11, 12, 13];
        if prober.is_some() {
            expected.push(20);
        }
        wait_until("every accepted message to be handled", || {
            sink.ask(SinkMsg::Get, ASK).unwrap().len() == expected.len()
        });
        assert_eq!(sink.ask(SinkMsg::Get, ASK).unwrap(), expected);
        rt.shutdown().expect("clean shutdown");
    });
}

// A blocking `tell` from an outside thread waits while the mailbox is full and delivers once
// there is room, in order after the messages already queued.
#[test]
fn blocking_tell_waits_for_room() {
    for_each_shard_count(|n| {
        let rt = small_mailboxes(n);
        let s = n - 1;
        let (_gate, guard, _blocker) = block_shard(&rt, s);
        let sink = rt.spawn_on(s, Sink::default()).unwrap();
        for i in 0..CAP as u64 {
            sink.tell(SinkMsg::Data(i)).unwrap();
        }
        let teller = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in CAP as u64..3 * CAP as u64 {
                    sink.tell(SinkMsg::Data(i)).expect("tell waits, never Full");
                }
            })
        };
        assert_eq!(sink.mailbox_len(), CAP);
        drop(guard);
        join("blocking teller", teller);
        wait_until("all twelve messages to be handled", || {
            sink.ask(SinkMsg::Get, ASK).unwrap().len() == 3 * CAP
        });
        assert_eq!(
            sink.ask(SinkMsg::Get, ASK).unwrap(),
            (0..3 * CAP as u64).collect::<Vec<_>>()
        );
        rt.shutdown().expect("clean shutdown");
    });
}
