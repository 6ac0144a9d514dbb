//! Actors shared by the link and monitor tests: a configurable [`Node`] (client and/or server
//! of links), and an event log recording what the nodes saw, in order.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use coreactor::plugins::link::LinkOptions;
use coreactor::{Actor, ActorRef, Context, LinkError, Reply, StopReason};
use std::sync::{Arc, Mutex};

/// Something a node saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `started` ran.
    Started(&'static str),
    /// `stopped` ran with this reason.
    Stopped(&'static str, StopReason),
    /// A `link_then` callback fired.
    Linked(&'static str, Result<(), LinkError>),
    /// `on_unlink` was called by this server.
    UnlinkAsked(&'static str),
}

/// The shared, ordered event log (`Send`, so nodes run on a real runtime too).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// The names of the nodes that stopped, in order.
    pub fn stop_order(&self) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Stopped(n, _) => Some(n),
                _ => None,
            })
            .collect()
    }

    /// Why `name` stopped, if it did.
    pub fn reason(&self, name: &str) -> Option<StopReason> {
        self.events().into_iter().find_map(|e| match e {
            Event::Stopped(n, r) if n == name => Some(r),
            _ => None,
        })
    }

    /// The names of the nodes that started, in order.
    pub fn start_order(&self) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    /// The `link_then` outcomes seen by `name`.
    pub fn link_results(&self, name: &str) -> Vec<Result<(), LinkError>> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Linked(n, r) if n == name => Some(r),
                _ => None,
            })
            .collect()
    }
}

/// The reason an init fails with when a link fails.
pub fn link_failed(e: LinkError) -> StopReason {
    StopReason::InitFailed(Arc::new(StopReason::LinkFailed(e)))
}

/// `UnlinkRequested(cause)`.
pub fn unlink_requested(cause: StopReason) -> StopReason {
    StopReason::UnlinkRequested(Arc::new(cause))
}

/// Resource id a node holds its init with ([`Node::hold_init`]) or its shutdown with
/// ([`Node::hold_shutdown`]).
pub const HOLD: u32 = 1;

/// A node: links to its servers in `init`, optionally holds its init or shutdown with a
/// resource, optionally survives its servers, and logs its end.
pub struct Node {
    name: &'static str,
    log: Log,
    links: Vec<(ActorRef, LinkOptions)>,
    hold_init: bool,
    hold_shutdown: bool,
    survive_unlink: bool,
}

pub enum NodeMsg {
    /// Releases the hold (init or shutdown).
    Release,
    /// Links with `link_then` (the outcome is logged).
    LinkThen(ActorRef, LinkOptions),
    /// Links with plain `link`.
    Link(ActorRef),
    LinkDone(Result<(), LinkError>),
    Unlink(ActorRef, Reply<bool>),
    Servers(Reply<Vec<ActorRef>>),
    Clients(Reply<Vec<ActorRef>>),
}

impl Node {
    pub fn new(name: &'static str, log: &Log) -> Node {
        Node {
            name,
            log: log.clone(),
            links: Vec::new(),
            hold_init: false,
            hold_shutdown: false,
            survive_unlink: false,
        }
    }

    /// Links to `server` in `init` (operational only).
    pub fn link(self, server: &ActorRef) -> Node {
        self.link_with(server, LinkOptions::default())
    }

    pub fn link_with(mut self, server: &ActorRef, opts: LinkOptions) -> Node {
        self.links.push((server.clone(), opts));
        self
    }

    /// Holds the I-phase until [`NodeMsg::Release`].
    pub fn hold_init(mut self) -> Node {
        self.hold_init = true;
        self
    }

    /// Holds the S-phase (from `stopping`) until [`NodeMsg::Release`].
    pub fn hold_shutdown(mut self) -> Node {
        self.hold_shutdown = true;
        self
    }

    /// `on_unlink` answers false.
    pub fn survive_unlink(mut self) -> Node {
        self.survive_unlink = true;
        self
    }
}

impl Actor for Node {
    type Msg = NodeMsg;

    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        for (server, opts) in &self.links {
            ctx.link_with(server, *opts);
        }
        if self.hold_init {
            ctx.acquire(HOLD);
        }
    }

    fn handle(&mut self, msg: NodeMsg, ctx: &mut Context<'_, Self>) {
        match msg {
            NodeMsg::Release => {
                ctx.release(HOLD);
            }
            NodeMsg::LinkThen(server, opts) => ctx.link_then(&server, opts, NodeMsg::LinkDone),
            NodeMsg::Link(server) => ctx.link(&server),
            NodeMsg::LinkDone(r) => self.log.push(Event::Linked(self.name, r)),
            NodeMsg::Unlink(server, reply) => reply.send(ctx.unlink(&server)),
            NodeMsg::Servers(reply) => reply.send(ctx.linked_servers()),
            NodeMsg::Clients(reply) => reply.send(ctx.link_clients()),
        }
    }

    fn started(&mut self, _ctx: &mut Context<'_, Self>) {
        self.log.push(Event::Started(self.name));
    }

    fn stopping(&mut self, _reason: &StopReason, ctx: &mut Context<'_, Self>) {
        if self.hold_shutdown {
            ctx.acquire(HOLD);
        }
    }

    fn stopped(&mut self, reason: &StopReason, _ctx: &mut Context<'_, Self>) {
        self.log.push(Event::Stopped(self.name, reason.clone()));
    }

    fn on_unlink(
        &mut self,
        _server: &ActorRef,
        _reason: &StopReason,
        _ctx: &mut Context<'_, Self>,
    ) -> bool {
        self.log.push(Event::UnlinkAsked(self.name));
        !self.survive_unlink
    }
}
