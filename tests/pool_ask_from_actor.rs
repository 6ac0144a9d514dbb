//! Asking through the pool from inside an actor: `ask_from` and `broadcast_from` forward to
//! `Context::ask` (the reply comes back as a message, nothing blocks), routing errors are
//! returned at once, blocking calls answer `WouldBlock` on a shard thread, `tell` works from
//! actors, and a pool shut down from an actor only requests the stops.

// Tests are not the runtime: std's atomics, locks and threads are fine here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
mod pool_common;

use common::{for_each_shard_count, runtime, wait_until};
use coreactor::pool::{Pool, PoolError, PoolShutdownError, Route, key_index};
use coreactor::{Actor, AskError, Context, Reply};
use pool_common::{ASK, Conn, ConnMsg, conn_pool};

/// Serves outside askers by asking the pool.
struct Client {
    pool: Pool<Conn>,
    gathering: Rows,
    gather_reply: Option<Reply<Rows>>,
}

type Fetched = Result<(usize, u64), AskError>;
/// `(member, answer)` rows of a broadcast, as the continuations deliver them.
type Rows = Vec<(usize, Result<usize, AskError>)>;

enum ClientMsg {
    Fetch(u64, Reply<Fetched>),
    Fetched(Fetched, Reply<Fetched>),
    WhoAll(Reply<Rows>),
    Answer(usize, Result<usize, AskError>),
    BadRoute(Reply<Result<(), PoolError>>),
    Blocking(Reply<(PoolError, Vec<Result<usize, PoolError>>)>),
    TellNote(u64, Reply<bool>),
    Shutdown(Reply<Result<(), PoolShutdownError>>),
}

impl Actor for Client {
    type Msg = ClientMsg;

    fn handle(&mut self, msg: ClientMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            ClientMsg::Fetch(key, reply) => {
                self.pool
                    .ask_from(
                        ctx,
                        Route::Key(key),
                        |r| ConnMsg::Echo(key, r),
                        ASK,
                        move |res| ClientMsg::Fetched(res, reply),
                    )
                    .unwrap();
            }
            ClientMsg::Fetched(res, reply) => reply.send(res),
            ClientMsg::WhoAll(reply) => {
                self.gathering.clear();
                self.gather_reply = Some(reply);
                self.pool
                    .broadcast_from(ctx, ConnMsg::Who, ASK, ClientMsg::Answer);
            }
            ClientMsg::Answer(index, res) => {
                self.gathering.push((index, res));
                if self.gathering.len() == self.pool.size() {
                    let mut rows = std::mem::take(&mut self.gathering);
                    rows.sort_by_key(|(i, _)| *i);
                    self.gather_reply.take().unwrap().send(rows);
                }
            }
            ClientMsg::BadRoute(reply) => {
                let r = self.pool.ask_from(
                    ctx,
                    Route::Member(self.pool.size()),
                    ConnMsg::Who,
                    ASK,
                    |_| unreachable!("then is not called on a routing error"),
                );
                reply.send(r);
            }
            ClientMsg::Blocking(reply) => {
                let one = self.pool.ask(Route::Member(0), ConnMsg::Who).unwrap_err();
                let all = self.pool.broadcast(ConnMsg::Who, ASK);
                reply.send((one, all));
            }
            ClientMsg::TellNote(v, reply) => {
                reply.send(self.pool.tell(Route::Member(0), ConnMsg::Note(v)).is_ok());
            }
            ClientMsg::Shutdown(reply) => reply.send(self.pool.shutdown()),
        }
    }
}

fn client(pool: &Pool<Conn>) -> Client {
    Client {
        pool: pool.clone(),
        gathering: Vec::new(),
        gather_reply: None,
    }
}

#[test]
fn actors_ask_through_the_pool_without_blocking() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 4);
        // One client per shard: same-shard and cross-shard members alike.
        let clients: Vec<_> = (0..n)
            .map(|s| rt.spawn_on(s, client(&pool)).unwrap())
            .collect();
        for (s, c) in clients.iter().enumerate() {
            for key in 0..50u64 {
                let key = key * 31 + s as u64;
                let got = c.ask(|r| ClientMsg::Fetch(key, r), ASK).unwrap();
                assert_eq!(got, Ok((key_index(key, 4), key)), "client {s} key {key}");
            }
            let rows = c.ask(ClientMsg::WhoAll, ASK).unwrap();
            let expected: Rows = (0..4).map(|i| (i, Ok(i))).collect();
            assert_eq!(rows, expected);
        }
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn errors_reach_the_actor_as_messages_or_at_once() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, _hooks) = conn_pool(&rt, 3);
        let c = rt.spawn_on(n - 1, client(&pool)).unwrap();
        // A routing error comes back at once; nothing is sent.
        let r = c.ask(ClientMsg::BadRoute, ASK).unwrap();
        assert!(matches!(
            r,
            Err(PoolError::NoSuchMember {
                index: 3,
                size: 3,
                ..
            })
        ));
        // Blocking calls on a shard thread refuse instead of stalling the shard.
        let (one, all) = c.ask(ClientMsg::Blocking, ASK).unwrap();
        assert_eq!(one, PoolError::Ask(AskError::WouldBlock));
        assert_eq!(all.len(), 3);
        assert!(
            all.iter()
                .all(|r| *r == Err(PoolError::Ask(AskError::WouldBlock)))
        );
        // Tell works from an actor.
        assert!(c.ask(|r| ClientMsg::TellNote(5, r), ASK).unwrap());
        // (No order between the actor's send and ours: poll.)
        wait_until("the actor's note to arrive", || {
            pool.ask(Route::Member(0), ConnMsg::Notes).unwrap() == [5]
        });
        // A stopped member: the error reaches the continuation.
        pool.members()[1].stop().unwrap();
        wait_until("member 1 to stop", || !pool.members()[1].is_alive());
        let rows = c.ask(ClientMsg::WhoAll, ASK).unwrap();
        assert_eq!(rows[0], (0, Ok(0)));
        assert_eq!(rows[1], (1, Err(AskError::Closed)));
        assert_eq!(rows[2], (2, Ok(2)));
        pool.shutdown().unwrap();
        rt.shutdown().unwrap();
    });
}

#[test]
fn shutdown_from_an_actor_requests_the_stops_only() {
    for_each_shard_count(|n| {
        let rt = runtime(n);
        let (pool, hooks) = conn_pool(&rt, 4);
        let c = rt.spawn_on(0, client(&pool)).unwrap();
        let r = c.ask(ClientMsg::Shutdown, ASK).unwrap();
        assert_eq!(r, Err(PoolShutdownError::OnShardThread));
        // The stops were requested: an outside shutdown confirms them.
        pool.shutdown().unwrap();
        assert_eq!(hooks.stopped(), 4);
        rt.shutdown().unwrap();
    });
}
