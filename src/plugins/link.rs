//! Links (rotor's `link_client` / `link_server`): a client's claim that a server outlives it.
//!
//! A client asks with [`Context::link`]; while the link stands, the server's S-phase waits for
//! the client to let go, so **clients always shut down before their servers** (a set of linked
//! actors stopped together finishes in client → server order). Both sides are built-in
//! plugins: [`LinkClient`] on the client (added by `link`), [`LinkServer`] on the server
//! (added when the first link request arrives, through [`plugins::unclaimed`](super)).
//!
//! # Protocol
//!
//! Every message travels as a [`SystemMsg`] in the control lane
//! (never refused by a full mailbox, FIFO per sender → receiver pair).
//!
//! 1. **Link.** The client sends `LinkRequest{client, id}` and arms a `LinkTimeout{id}` with its
//!    own init timeout. If the server's address is dead the link fails at once with
//!    [`LinkError::NoServer`].
//! 2. **Answer.** The server answers exactly once: `NotLinkable` if it is shutting down,
//!    `AlreadyLinked` if it holds a link from that client, later (in its `start`) if the link
//!    is `operational_only` and it is not operational yet, at once otherwise. A request dropped
//!    unanswered (its server went down with the request still queued) answers `NoServer` from
//!    its destructor, so a client never waits for a server that is gone.
//! 3. **Client I-phase.** The client's init is pending while any of its links is; a failure
//!    stops it with `InitFailed(LinkFailed(e))`.
//! 4. **Server S-phase.** At `shutdown_start` the server answers its pending requests
//!    `NotLinkable` and sends `UnlinkRequest{server, reason}` to each linked client; its
//!    shutdown poll is pending until every client has answered (`UnlinkResponse`) or said it is
//!    gone (`UnlinkNotify`). The core's S-phase timeout bounds the wait (and reports a
//!    [`LifecycleError::ShutdownTimeout`](crate::lifecycle::LifecycleError) naming
//!    `link-server`).
//! 5. **Unlink request at a client.** Unless the client is already shutting down,
//!    [`Actor::on_unlink`] decides: `true` (the default) → the client stops with
//!    [`StopReason::UnlinkRequested`]`(server's reason)` and answers in its S-phase; `false` →
//!    it answers at once, forgets the server and stays as it is.
//! 6. **Clients first.** A client's S-phase poll waits until its own clients are gone (its
//!    [`LinkServer`] is empty; the link server plugin is polled after the link client in the
//!    S-phase). Then, when the actor is `ShutDown`, its `finished` sends `UnlinkResponse` to
//!    each server that asked and `UnlinkNotify` to every other server (linked or still
//!    pending). The server waits for exactly these messages — a client it cannot reach any
//!    more is not dropped early, its notification is on the way — so a server finishes after
//!    all its clients, and a forced S-phase still releases the servers. (The notification
//!    leaves the client's shard with the rest of its last turn, after `Actor::stopped`, so
//!    the `stopped` hooks also run in client → server order across shards.)
//!
//! # Races (all settle without a panic or a hang)
//!
//! * Unlink request and unlink notify crossing in flight: the server takes the notify as the
//!   answer; the request reaches a client that forgot the server (it answers `UnlinkResponse`,
//!   which the server ignores) or no longer exists (dropped).
//! * An answer to a request the client abandoned (timed out, unlinked, or shut down): the
//!   client sent `UnlinkNotify` when it abandoned it, which follows the request to the server
//!   (FIFO), so the server drops the link; the late answer is ignored.
//! * A notify or response from a client the server does not know: ignored.
//!
//! # Failure outside the I-phase
//!
//! A link asked once the actor is initialized (in `started` or a handler) holds nothing. If it
//! fails, [`Context::link_then`]'s callback receives the error; with [`Context::link`] or
//! [`Context::link_with`] (no callback) the actor **stops** with
//! [`StopReason::LinkFailed`]: a link is a dependency, and an actor that asked for one does
//! not run without it unnoticed. A link asked while the actor is itself shutting down is not
//! sent.
//!
//! # Not supported
//!
//! Cycles of links never shut down cleanly (each side waits for the other until the S-phase
//! timeout), as in rotor; a link to oneself is refused with [`LinkError::NotLinkable`].
//! `on_unlink` runs inside the link client plugin: it must not call `link` itself.

#![deny(unsafe_code)]

use super::{LINK_CLIENT_RANK, LINK_SERVER_RANK};
use crate::actor::lifecycle::{Plugin, PluginTransfer, Progress, State, SystemMsg};
use crate::{Actor, ActorRef, Context, LinkError, StopReason, TimerId};
use std::sync::Arc;

/// How a link is asked for ([`Context::link_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    /// If true (the default), the server answers only once it is operational, so the client
    /// starts after its server; if false, an initializing server accepts at once.
    pub operational_only: bool,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            operational_only: true,
        }
    }
}

// ----- protocol messages -------------------------------------------------------------------

/// Client → server: "link me". Answered exactly once (see `Drop`).
pub(crate) struct LinkRequest {
    client: ActorRef,
    server: ActorRef,
    id: u64,
    operational_only: bool,
    /// Set once answered (or cancelled): the destructor then stays silent.
    settled: bool,
}

impl LinkRequest {
    /// Sends the answer to the client (first call only).
    fn answer(&mut self, result: Result<(), LinkError>) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let _ = self.client.send_system(LinkResponse {
            server: self.server.clone(),
            id: self.id,
            result,
        });
    }

    /// Drops the request without an answer (the client cancelled it, or is told otherwise).
    fn cancel(mut self) {
        self.settled = true;
    }
}

impl Drop for LinkRequest {
    /// A request dropped unanswered never reached a live server (it was queued when the
    /// server shut down): the client learns it at once instead of at its timeout.
    fn drop(&mut self) {
        self.answer(Err(LinkError::NoServer));
    }
}

/// Server → client: the answer to the request `id`.
pub(crate) struct LinkResponse {
    server: ActorRef,
    id: u64,
    result: Result<(), LinkError>,
}

/// Client → itself (timer): request `id` got no answer within the init timeout.
pub(crate) struct LinkTimeout {
    id: u64,
}

/// Server → client: "I am shutting down, let go of me".
pub(crate) struct UnlinkRequest {
    server: ActorRef,
    reason: StopReason,
}

/// Client → server: the answer to an [`UnlinkRequest`].
pub(crate) struct UnlinkResponse {
    client: ActorRef,
}

/// Client → server: "I no longer hold you" (the client shuts down, unlinks, or abandons a
/// pending request).
pub(crate) struct UnlinkNotify {
    client: ActorRef,
}

// ----- client side -------------------------------------------------------------------------

/// What a link callback turns the outcome into.
type Then<A> = Box<dyn FnOnce(Result<(), LinkError>) -> <A as Actor>::Msg>;

enum Phase {
    /// Asked, not answered; the timer bounds the wait.
    Pending(TimerId),
    /// Accepted by the server.
    Linked,
    /// The server asked to unlink; answered when this actor is `ShutDown` (after its own
    /// clients are gone).
    UnlinkAsked,
}

struct ServerLink<A: Actor> {
    server: ActorRef,
    id: u64,
    phase: Phase,
    then: Option<Then<A>>,
}

/// The client side of links: the servers this actor is linked to (or asking). Added by
/// [`Context::link`]; holds the I-phase until every link is answered, holds the S-phase until
/// this actor's own clients are gone, and lets go of the servers when the actor is
/// `ShutDown`.
pub struct LinkClient<A: Actor> {
    next_id: u64,
    servers: Vec<ServerLink<A>>,
}

impl<A: Actor> LinkClient<A> {
    fn new() -> Self {
        LinkClient {
            next_id: 0,
            servers: Vec::new(),
        }
    }

    fn link(
        &mut self,
        server: &ActorRef,
        opts: LinkOptions,
        then: Option<Then<A>>,
        ctx: &mut Context<'_, A>,
    ) {
        if ctx.state() >= State::ShuttingDown {
            return;
        }
        let me = ctx.actor_ref();
        if *server == me {
            return fail(LinkError::NotLinkable, then, ctx);
        }
        if self.servers.iter().any(|s| s.server == *server) {
            return fail(LinkError::AlreadyLinked, then, ctx);
        }
        self.next_id += 1;
        let id = self.next_id;
        let request = LinkRequest {
            client: me,
            server: server.clone(),
            id,
            operational_only: opts.operational_only,
            settled: false,
        };
        if let Err(e) = server.send_system(request) {
            e.into_inner().cancel();
            return fail(LinkError::NoServer, then, ctx);
        }
        let timeout = ctx.options().init_timeout;
        let timer = ctx.control_after(timeout, LinkTimeout { id });
        self.servers.push(ServerLink {
            server: server.clone(),
            id,
            phase: Phase::Pending(timer),
            then,
        });
    }

    /// Forgets `server` and tells it so; false if this actor held no link to it.
    fn unlink(&mut self, server: &ActorRef, ctx: &mut Context<'_, A>) -> bool {
        let Some(i) = self.servers.iter().position(|s| s.server == *server) else {
            return false;
        };
        let link = self.servers.remove(i);
        release(link, ctx);
        true
    }

    fn on_response(&mut self, r: LinkResponse, ctx: &mut Context<'_, A>) {
        let Some(i) = self.servers.iter().position(|s| {
            s.server == r.server && s.id == r.id && matches!(s.phase, Phase::Pending(_))
        }) else {
            // An answer to a request abandoned earlier: the server had our notify after it.
            return;
        };
        if let Phase::Pending(timer) = self.servers[i].phase {
            ctx.cancel_timer(timer);
        }
        match r.result {
            Ok(()) => {
                let link = &mut self.servers[i];
                link.phase = Phase::Linked;
                if let Some(then) = link.then.take() {
                    ctx.notify(then(Ok(())));
                }
            }
            Err(e) => {
                let link = self.servers.remove(i);
                fail(e, link.then, ctx);
            }
        }
    }

    fn on_timeout(&mut self, t: LinkTimeout, ctx: &mut Context<'_, A>) {
        let Some(i) = self
            .servers
            .iter()
            .position(|s| s.id == t.id && matches!(s.phase, Phase::Pending(_)))
        else {
            return;
        };
        let link = self.servers.remove(i);
        // Cancels the request at the server if it got there (the notify follows it).
        let _ = link.server.send_system(UnlinkNotify {
            client: ctx.actor_ref(),
        });
        fail(LinkError::Timeout, link.then, ctx);
    }

    fn on_unlink_request(&mut self, r: UnlinkRequest, actor: &mut A, ctx: &mut Context<'_, A>) {
        let known = self
            .servers
            .iter()
            .position(|s| s.server == r.server && !matches!(s.phase, Phase::Pending(_)));
        let Some(i) = known else {
            // Forgotten already (unlinked, or crossing our notify): nothing holds the server.
            let _ = r.server.send_system(UnlinkResponse {
                client: ctx.actor_ref(),
            });
            return;
        };
        if ctx.state() < State::ShuttingDown && !actor.on_unlink(&r.server, &r.reason, ctx) {
            // The actor survives its server: let go now (its own clients are not affected).
            let link = self.servers.remove(i);
            let _ = link.server.send_system(UnlinkResponse {
                client: ctx.actor_ref(),
            });
            return;
        }
        self.servers[i].phase = Phase::UnlinkAsked;
        if ctx.state() < State::ShuttingDown {
            ctx.stop_with(StopReason::UnlinkRequested(Arc::new(r.reason)));
        }
    }

    /// Lets go of every server (answers or notifies), cancelling pending requests.
    fn release_all(&mut self, ctx: &mut Context<'_, A>) {
        for link in std::mem::take(&mut self.servers) {
            release(link, ctx);
        }
    }
}

/// Tells `link`'s server that this actor lets go of it (and cancels its timer).
fn release<A: Actor>(link: ServerLink<A>, ctx: &mut Context<'_, A>) {
    let client = ctx.actor_ref();
    // A server that is gone needs no answer: send errors are ignored.
    match link.phase {
        Phase::Pending(timer) => {
            ctx.cancel_timer(timer);
            let _ = link.server.send_system(UnlinkNotify { client });
        }
        Phase::Linked => {
            let _ = link.server.send_system(UnlinkNotify { client });
        }
        Phase::UnlinkAsked => {
            let _ = link.server.send_system(UnlinkResponse { client });
        }
    }
}

/// A failed link: the callback (if any) hears of it; in the I-phase the init fails; later,
/// without a callback, the actor stops.
fn fail<A: Actor>(e: LinkError, then: Option<Then<A>>, ctx: &mut Context<'_, A>) {
    let handled = then.is_some();
    if let Some(then) = then {
        ctx.notify(then(Err(e.clone())));
    }
    match ctx.state() {
        // Requested here rather than answered from `init` as `Progress::Failed` (the same
        // reason the core would build): a phase timeout queued behind this answer in the same
        // control batch must not overtake it.
        State::New | State::Initializing => {
            ctx.stop_with(StopReason::InitFailed(Arc::new(StopReason::LinkFailed(e))))
        }
        State::Initialized | State::Operational if !handled => {
            ctx.stop_with(StopReason::LinkFailed(e))
        }
        _ => {}
    }
}

impl<A: Actor> Plugin<A> for LinkClient<A> {
    fn name(&self) -> &'static str {
        "link-client"
    }

    /// Movable while every link is established and no callback waits.
    fn can_transfer(&self) -> bool {
        self.servers
            .iter()
            .all(|s| matches!(s.phase, Phase::Linked) && s.then.is_none())
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        let servers = std::mem::take(&mut self.servers)
            .into_iter()
            .map(|s| (s.server, s.id))
            .collect();
        Some(Box::new(LinkClientState {
            next_id: self.next_id,
            servers,
        }))
    }

    fn init(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        if self
            .servers
            .iter()
            .any(|s| matches!(s.phase, Phase::Pending(_)))
        {
            Progress::Pending
        } else {
            Progress::Done
        }
    }

    fn shutdown(&mut self, _actor: &mut A, ctx: &mut Context<'_, A>) -> Progress {
        // Clients first: this actor's own clients must be gone before it lets go of its
        // servers (the link server plugin is polled after this one in the S-phase).
        let own_clients = ctx
            .with_plugin(|s: &mut LinkServer, _| s.has_clients())
            .unwrap_or(false);
        Progress::done_when(!own_clients)
    }

    fn finished(&mut self, _reason: &StopReason, _actor: &mut A, ctx: &mut Context<'_, A>) {
        // At the very end, whether the S-phase finished or was forced: a server learns that
        // this client is entirely done (see the module docs, step 6).
        self.release_all(ctx);
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        actor: &mut A,
        ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        let msg = match msg.downcast::<LinkResponse>() {
            Ok(r) => {
                self.on_response(r, ctx);
                return None;
            }
            Err(m) => m,
        };
        let msg = match msg.downcast::<LinkTimeout>() {
            Ok(t) => {
                self.on_timeout(t, ctx);
                return None;
            }
            Err(m) => m,
        };
        match msg.downcast::<UnlinkRequest>() {
            Ok(r) => {
                self.on_unlink_request(r, actor, ctx);
                None
            }
            Err(m) => Some(m),
        }
    }
}

// ----- server side -------------------------------------------------------------------------

struct ClientLink {
    client: ActorRef,
    /// The request, kept until the server starts (an `operational_only` link to a server
    /// that is not operational yet).
    pending: Option<LinkRequest>,
}

/// The server side of links: the clients linked to this actor. Added when the first link
/// request arrives; in the S-phase it asks every client to unlink and waits for all of them.
pub struct LinkServer {
    clients: Vec<ClientLink>,
}

impl LinkServer {
    fn new() -> Self {
        LinkServer {
            clients: Vec::new(),
        }
    }

    /// True if a client still holds (or asks for) a link. A client that is gone is not
    /// forgotten here: its `finished` sends the notification that removes it, and waiting for
    /// it is what orders the server's `stopped` after the client's.
    fn has_clients(&self) -> bool {
        !self.clients.is_empty()
    }

    fn on_request<A: Actor>(&mut self, mut req: LinkRequest, ctx: &mut Context<'_, A>) {
        let state = ctx.state();
        if state > State::Operational {
            req.answer(Err(LinkError::NotLinkable));
        } else if self.clients.iter().any(|c| c.client == req.client) {
            req.answer(Err(LinkError::AlreadyLinked));
        } else if req.operational_only && state < State::Operational {
            self.clients.push(ClientLink {
                client: req.client.clone(),
                pending: Some(req),
            });
        } else {
            self.clients.push(ClientLink {
                client: req.client.clone(),
                pending: None,
            });
            req.answer(Ok(()));
        }
    }

    /// The client let go (unlink response or notify); unknown clients are ignored.
    fn forget(&mut self, client: &ActorRef) {
        if let Some(i) = self.clients.iter().position(|c| c.client == *client) {
            if let Some(req) = self.clients.remove(i).pending {
                req.cancel();
            }
        }
    }
}

impl<A: Actor> Plugin<A> for LinkServer {
    fn name(&self) -> &'static str {
        "link-server"
    }

    /// Movable while no request waits for this actor to start (it is operational when it
    /// moves, so none should): the clients' references travel with it.
    fn can_transfer(&self) -> bool {
        self.clients.iter().all(|c| c.pending.is_none())
    }

    fn transfer(&mut self) -> Option<Box<dyn PluginTransfer<A>>> {
        Some(Box::new(LinkServer {
            clients: std::mem::take(&mut self.clients),
        }))
    }

    fn start(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) {
        for c in &mut self.clients {
            if let Some(mut req) = c.pending.take() {
                req.answer(Ok(()));
            }
        }
    }

    fn shutdown_start(&mut self, reason: &StopReason, _actor: &mut A, ctx: &mut Context<'_, A>) {
        let me = ctx.actor_ref();
        self.clients.retain_mut(|c| {
            if let Some(mut req) = c.pending.take() {
                req.answer(Err(LinkError::NotLinkable));
                return false;
            }
            // A client that cannot be reached is shutting down: its notification is on its
            // way (sent from its `finished`), so it is kept until that arrives.
            let _ = c.client.send_system(UnlinkRequest {
                server: me.clone(),
                reason: reason.clone(),
            });
            true
        });
    }

    fn shutdown(&mut self, _actor: &mut A, _ctx: &mut Context<'_, A>) -> Progress {
        Progress::done_when(!self.has_clients())
    }

    fn control(
        &mut self,
        msg: SystemMsg,
        _actor: &mut A,
        ctx: &mut Context<'_, A>,
    ) -> Option<SystemMsg> {
        let msg = match msg.downcast::<LinkRequest>() {
            Ok(r) => {
                self.on_request(r, ctx);
                return None;
            }
            Err(m) => m,
        };
        let msg = match msg.downcast::<UnlinkNotify>() {
            Ok(n) => {
                self.forget(&n.client);
                return None;
            }
            Err(m) => m,
        };
        match msg.downcast::<UnlinkResponse>() {
            Ok(r) => {
                self.forget(&r.client);
                None
            }
            Err(m) => Some(m),
        }
    }
}

/// A link protocol message no plugin took: a link request installs the [`LinkServer`]; an
/// unlink request to an actor without links is answered at once; the rest are late answers
/// and are dropped. Anything else comes back.
pub(crate) fn unclaimed<A: Actor>(msg: SystemMsg, ctx: &mut Context<'_, A>) -> Option<SystemMsg> {
    let msg = match msg.downcast::<LinkRequest>() {
        Ok(req) => {
            ctx.ensure_plugin(LINK_SERVER_RANK, LinkServer::new);
            // `req` is answered by its destructor if the plugin cannot be reached.
            ctx.with_plugin(|s: &mut LinkServer, ctx| s.on_request(req, ctx));
            return None;
        }
        Err(m) => m,
    };
    let msg = match msg.downcast::<UnlinkRequest>() {
        Ok(r) => {
            let _ = r.server.send_system(UnlinkResponse {
                client: ctx.actor_ref(),
            });
            return None;
        }
        Err(m) => m,
    };
    if msg.is::<LinkResponse>()
        || msg.is::<LinkTimeout>()
        || msg.is::<UnlinkNotify>()
        || msg.is::<UnlinkResponse>()
    {
        return None;
    }
    Some(msg)
}

// ----- the actor's API ---------------------------------------------------------------------

impl<A: Actor> Context<'_, A> {
    /// Links this actor, as a client, to `server`: the server will not finish its shutdown
    /// before this actor lets go of it, and when the server shuts down this actor is asked to
    /// unlink ([`Actor::on_unlink`]; by default it then shuts down with
    /// [`StopReason::UnlinkRequested`]). Same as [`link_with`](Self::link_with) with
    /// [`LinkOptions::default`] (wait until the server is operational).
    ///
    /// Asked in [`Actor::init`], the link holds the I-phase: the actor becomes operational
    /// only once the server accepted. A failure — the server is gone
    /// ([`LinkError::NoServer`]), shutting down ([`LinkError::NotLinkable`]), already linked
    /// to this actor ([`LinkError::AlreadyLinked`]), or no answer within this actor's init
    /// timeout ([`LinkError::Timeout`]) — fails the init with
    /// `InitFailed(LinkFailed(e))`. After the I-phase a failure stops the actor with
    /// `LinkFailed(e)`; use [`link_then`](Self::link_then) to handle it instead. See the
    /// [module docs](crate::plugins::link) for the protocol.
    ///
    /// # Examples
    ///
    /// ```
    /// use coreactor::lifecycle::State;
    /// use coreactor::testkit::TestKit;
    /// use coreactor::{Actor, ActorRef, Context};
    ///
    /// struct Db;
    /// impl Actor for Db {
    ///     type Msg = ();
    ///     fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    /// }
    ///
    /// struct Cache { db: ActorRef }
    /// impl Actor for Cache {
    ///     type Msg = ();
    ///     fn init(&mut self, ctx: &mut Context<'_, Self>) {
    ///         ctx.link(&self.db); // operational only once the db accepted
    ///     }
    ///     fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    /// }
    ///
    /// let kit = TestKit::new(2);
    /// let db = kit.spawn_on(0, Db);
    /// let cache = kit.spawn_on(1, Cache { db: db.actor_ref() });
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&cache), State::Operational);
    ///
    /// // The db shuts down: its client goes first.
    /// db.stop().unwrap();
    /// kit.run_until_idle();
    /// assert_eq!(kit.state(&cache), State::ShutDown);
    /// assert_eq!(kit.state(&db), State::ShutDown);
    /// ```
    pub fn link(&mut self, server: &ActorRef) {
        self.link_with(server, LinkOptions::default());
    }

    /// Like [`link`](Self::link), with explicit [`LinkOptions`].
    pub fn link_with(&mut self, server: &ActorRef, opts: LinkOptions) {
        self.link_inner(server, opts, None);
    }

    /// Like [`link_with`](Self::link_with), and `then` turns the outcome into a message for
    /// this actor, delivered with [`notify`](Self::notify) (never refused by a full mailbox).
    /// After the I-phase a failure is only reported to `then` (the actor keeps running); in
    /// the I-phase it still fails the init. `then` is not called if this actor shuts down
    /// before the answer arrives, nor for a link asked during its own shutdown.
    pub fn link_then(
        &mut self,
        server: &ActorRef,
        opts: LinkOptions,
        then: impl FnOnce(Result<(), LinkError>) -> A::Msg + 'static,
    ) {
        self.link_inner(server, opts, Some(Box::new(then)));
    }

    fn link_inner(&mut self, server: &ActorRef, opts: LinkOptions, then: Option<Then<A>>) {
        self.ensure_plugin(LINK_CLIENT_RANK, LinkClient::<A>::new);
        self.with_plugin(|c: &mut LinkClient<A>, ctx| c.link(server, opts, then, ctx));
    }

    /// Lets go of `server` (linked, or still asking): the server is told and no longer waits
    /// for this actor; a pending link no longer holds the I-phase. Returns false if this actor
    /// held no link to `server`.
    pub fn unlink(&mut self, server: &ActorRef) -> bool {
        self.with_plugin(|c: &mut LinkClient<A>, ctx| c.unlink(server, ctx))
            .unwrap_or(false)
    }

    /// The servers this actor is linked to (accepted links only).
    pub fn linked_servers(&mut self) -> Vec<ActorRef> {
        self.with_plugin(|c: &mut LinkClient<A>, _| {
            c.servers
                .iter()
                .filter(|s| matches!(s.phase, Phase::Linked))
                .map(|s| s.server.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// The clients linked to this actor (accepted links only).
    pub fn link_clients(&mut self) -> Vec<ActorRef> {
        self.with_plugin(|s: &mut LinkServer, _| {
            s.clients
                .iter()
                .filter(|c| c.pending.is_none())
                .map(|c| c.client.clone())
                .collect()
        })
        .unwrap_or_default()
    }
}

impl<A: Actor> PluginTransfer<A> for LinkServer {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        self
    }
}

/// The client side's state while it travels: established links only (a pending request or a
/// callback is shard-bound).
struct LinkClientState {
    next_id: u64,
    servers: Vec<(ActorRef, u64)>,
}

impl<A: Actor> PluginTransfer<A> for LinkClientState {
    fn attach(self: Box<Self>) -> Box<dyn Plugin<A>> {
        Box::new(LinkClient::<A> {
            next_id: self.next_id,
            servers: self
                .servers
                .into_iter()
                .map(|(server, id)| ServerLink {
                    server,
                    id,
                    phase: Phase::Linked,
                    then: None,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestKit;
    use std::cell::RefCell;
    use std::rc::Rc;

    type Answers = Rc<RefCell<Vec<(u64, Result<(), LinkError>)>>>;

    /// Records the link answers this actor receives (it has no link client of its own).
    struct Capture(Answers);

    impl<A: Actor> Plugin<A> for Capture {
        fn name(&self) -> &'static str {
            "capture"
        }
        fn control(
            &mut self,
            msg: SystemMsg,
            _actor: &mut A,
            _ctx: &mut Context<'_, A>,
        ) -> Option<SystemMsg> {
            let r = msg.downcast::<LinkResponse>().ok()?;
            self.0.borrow_mut().push((r.id, r.result));
            None
        }
    }

    /// Sends raw link requests (ids 1 and 2) to the server it is told.
    struct RawClient(Answers);

    impl Actor for RawClient {
        type Msg = ActorRef;
        fn plugins(&mut self) -> Vec<Box<dyn Plugin<Self>>> {
            vec![Box::new(Capture(self.0.clone()))]
        }
        fn handle(&mut self, server: ActorRef, ctx: &mut Context<'_, Self>) {
            for id in [1, 2] {
                let req = LinkRequest {
                    client: ctx.actor_ref(),
                    server: server.clone(),
                    id,
                    operational_only: true,
                    settled: false,
                };
                assert!(server.send_system(req).is_ok());
            }
        }
    }

    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        fn handle(&mut self, _: (), _ctx: &mut Context<'_, Self>) {}
    }

    #[test]
    fn server_refuses_a_second_link_from_the_same_client() {
        let kit = TestKit::new(2);
        let answers = Answers::default();
        let server = kit.spawn_on(0, Idle);
        let client = kit.spawn_on(1, RawClient(answers.clone()));
        kit.run_until_idle();
        client.tell(server.actor_ref()).unwrap();
        kit.run_until_idle();
        assert_eq!(
            *answers.borrow(),
            vec![(1, Ok(())), (2, Err(LinkError::AlreadyLinked))]
        );
    }

    #[test]
    fn unanswered_request_answers_no_server_when_dropped() {
        let kit = TestKit::new(1);
        let answers = Answers::default();
        let client = kit.spawn_on(0, RawClient(answers.clone()));
        kit.run_until_idle();
        // Dropped unprocessed, as when its server goes down with the request queued.
        let client_ref = client.actor_ref();
        drop(LinkRequest {
            client: client_ref.clone(),
            server: client_ref,
            id: 3,
            operational_only: true,
            settled: false,
        });
        kit.run_until_idle();
        assert_eq!(*answers.borrow(), vec![(3, Err(LinkError::NoServer))]);
    }
}
