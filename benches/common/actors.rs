//! Actors shared by the benches: the tell ping-pong pair and a send that must succeed.

use coreactor::{Actor, Addr, Context, Reply, SendError};

/// Sends `msg` or panics: benches size their traffic below every mailbox bound, so a refused
/// send is a bug in the bench, not backpressure to handle.
pub fn must_tell<A: Actor>(to: &Addr<A>, msg: A::Msg) {
    match to.try_tell(msg) {
        Ok(()) => {}
        Err(SendError::Full(_)) => panic!("{to:?}: mailbox full (the bench stays below it)"),
        Err(SendError::Closed(_)) => panic!("{to:?}: closed during the bench"),
    }
}

/// Round trips with the [`Ponger`], `tell` both ways (8-byte messages).
pub struct Pinger {
    pub ponger: Addr<Ponger>,
    pub left: u64,
    pub done: Option<Reply<u64>>,
}

pub enum PingMsg {
    Start(u64, Reply<u64>),
    Pong,
}

impl Actor for Pinger {
    type Msg = PingMsg;
    fn handle(&mut self, msg: PingMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            PingMsg::Start(n, reply) => {
                self.left = n;
                self.done = Some(reply);
            }
            PingMsg::Pong => self.left -= 1,
        }
        if self.left == 0 {
            if let Some(r) = self.done.take() {
                r.send(0);
            }
        } else {
            must_tell(&self.ponger, PongMsg::Ping);
        }
    }
}

/// Answers each ping of the [`Pinger`] it is attached to.
pub struct Ponger {
    pub pinger: Option<Addr<Pinger>>,
}

pub enum PongMsg {
    Attach(Addr<Pinger>),
    Ping,
}

impl Actor for Ponger {
    type Msg = PongMsg;
    fn handle(&mut self, msg: PongMsg, _ctx: &mut Context<'_, Self>) {
        match msg {
            PongMsg::Attach(p) => self.pinger = Some(p),
            PongMsg::Ping => must_tell(self.pinger.as_ref().expect("attached"), PingMsg::Pong),
        }
    }
}

/// Answers every request with its payload.
pub struct Responder;

pub enum RespMsg {
    Req(u64, Reply<u64>),
}

impl Actor for Responder {
    type Msg = RespMsg;
    fn handle(&mut self, RespMsg::Req(x, reply): RespMsg, _ctx: &mut Context<'_, Self>) {
        reply.send(x);
    }
}
