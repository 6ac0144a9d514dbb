//! A panic fails only its actor: in a handler, in `started`, or in a `spawn_with` factory, the
//! actor's address becomes `Closed`, its pending asks get `Dropped`, its queued messages become
//! dead letters, `stopped` sees `Panicked(message)`, the shard counts the panic, and the other
//! actors of the shard keep answering.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use common::{block_shard, for_each_shard_count, join, wait_until};
use coreactor::{Actor, Addr, AskError, Context, Reply, Runtime, SendError, StopReason};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ASK: Duration = Duration::from_secs(30);

type Stops = Arc<Mutex<Vec<StopReason>>>;

#[derive(Default)]
struct Fragile {
    stops: Stops,
    panic_in_started: Option<&'static str>,
    held: Vec<Reply<u64>>,
}

enum FragileMsg {
    Panic(&'static str),
    Hold(Reply<u64>),
    Held(Reply<usize>),
    Echo(u64, Reply<u64>),
    Data(u64),
}

impl Actor for Fragile {
    type Msg = FragileMsg;
    fn handle(&mut self, msg: FragileMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            FragileMsg::Panic(m) => panic!("{m}"),
            FragileMsg::Hold(r) => self.held.push(r),
            FragileMsg::Held(r) => r.send(self.held.len()),
            FragileMsg::Echo(x, r) => r.send(x),
            FragileMsg::Data(_) => {}
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        if let Some(m) = self.panic_in_started {
            panic!("{m}");
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        self.stops.lock().unwrap().push(reason.clone());
    }
}

fn fragile(stops: &Stops) -> Fragile {
    Fragile {
        stops: stops.clone(),
        ..Fragile::default()
    }
}

fn assert_closed(a: &Addr<Fragile>) {
    assert!(!a.is_alive());
    assert!(matches!(
        a.try_tell(FragileMsg::Data(7)),
        Err(SendError::Closed(FragileMsg::Data(7)))
    ));
    assert_eq!(
        a.ask(|r| FragileMsg::Echo(1, r), ASK),
        Err(AskError::Closed)
    );
}

/// Every shard answers through a steady actor of its own.
fn assert_shards_answer(steady: &[Addr<Fragile>]) {
    for (s, a) in steady.iter().enumerate() {
        assert_eq!(
            a.ask(|r| FragileMsg::Echo(s as u64, r), ASK),
            Ok(s as u64),
            "steady actor on shard {s}"
        );
    }
}

fn panics(rt: &Runtime) -> Vec<u64> {
    rt.shard_stats().iter().map(|s| s.panics).collect()
}

fn one_panic_on(n: usize, s: usize) -> Vec<u64> {
    (0..n).map(|i| u64::from(i == s)).collect()
}

// A panicking handler stops its actor only: held and queued asks get Dropped, queued messages
// become dead letters, `stopped` sees Panicked(msg), the shard counts one panic and keeps going.
#[test]
fn handler_panic_fails_only_its_actor() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let s = n - 1;
        let stops = Stops::default();
        let steady: Vec<_> = (0..n)
            .map(|i| rt.spawn_on(i, fragile(&Stops::default())).unwrap())
            .collect();
        let f = rt.spawn_on(s, fragile(&stops)).unwrap();
        let held = {
            let f = f.clone();
            std::thread::spawn(move || f.ask(FragileMsg::Hold, ASK))
        };
        wait_until("the reply to be held", || {
            f.ask(FragileMsg::Held, ASK).unwrap() == 1
        });
        let (_gate, guard, _blocker) = block_shard(&rt, s);
        f.tell(FragileMsg::Panic("boom in handler")).unwrap();
        let queued = {
            let f = f.clone();
            std::thread::spawn(move || f.ask(|r| FragileMsg::Echo(9, r), ASK))
        };
        wait_until("the ask to queue behind the panic", || f.mailbox_len() == 2);
        drop(guard);
        assert_eq!(join("held ask", held), Err(AskError::Dropped));
        assert_eq!(join("queued ask", queued), Err(AskError::Dropped));
        wait_until("the actor to fail", || !f.is_alive());
        assert_closed(&f);
        assert_shards_answer(&steady);
        wait_until("the stopped hook", || !stops.lock().unwrap().is_empty());
        assert_eq!(
            *stops.lock().unwrap(),
            [StopReason::Panicked("boom in handler".to_string())]
        );
        assert_eq!(panics(&rt), one_panic_on(n, s));
        assert_eq!(rt.dead_letters(), 1, "the queued ask");
        rt.shutdown().expect("clean shutdown");
    });
}

// A panic in `started` fails the actor before its first message: `stopped` sees Panicked(msg),
// its address is Closed, the shard counts it and keeps answering.
#[test]
fn started_panic_is_contained() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let s = n - 1;
        let stops = Stops::default();
        let steady: Vec<_> = (0..n)
            .map(|i| rt.spawn_on(i, fragile(&Stops::default())).unwrap())
            .collect();
        let f = rt
            .spawn_on(
                s,
                Fragile {
                    panic_in_started: Some("boom in started"),
                    ..fragile(&stops)
                },
            )
            .unwrap();
        wait_until("the actor to fail in started", || !f.is_alive());
        assert_closed(&f);
        assert_shards_answer(&steady);
        wait_until("the stopped hook", || !stops.lock().unwrap().is_empty());
        assert_eq!(
            *stops.lock().unwrap(),
            [StopReason::Panicked("boom in started".to_string())]
        );
        assert_eq!(panics(&rt), one_panic_on(n, s));
        rt.shutdown().expect("clean shutdown");
    });
}

// A panicking `spawn_with` factory leaves a Closed address; messages sent before the factory ran
// become dead letters (an ask among them gets Dropped); the shard counts it and keeps answering.
#[test]
fn factory_panic_is_contained() {
    for_each_shard_count(|n| {
        let rt = common::runtime(n);
        let s = n - 1;
        let steady: Vec<_> = (0..n)
            .map(|i| rt.spawn_on(i, fragile(&Stops::default())).unwrap())
            .collect();
        let (_gate, guard, _blocker) = block_shard(&rt, s);
        let f: Addr<Fragile> = rt
            .spawn_with(s, || panic!("boom in factory"))
            .expect("the address comes back at once");
        assert!(f.is_alive(), "reserved until the factory runs");
        let early = {
            let f = f.clone();
            std::thread::spawn(move || f.ask(|r| FragileMsg::Echo(3, r), ASK))
        };
        wait_until("the early ask to be accepted", || f.mailbox_len() == 1);
        drop(guard);
        assert_eq!(join("early ask", early), Err(AskError::Dropped));
        wait_until("the address to close", || !f.is_alive());
        assert_closed(&f);
        assert_shards_answer(&steady);
        assert_eq!(panics(&rt), one_panic_on(n, s));
        assert_eq!(rt.dead_letters(), 1, "the early ask");
        rt.shutdown().expect("clean shutdown");
    });
}
