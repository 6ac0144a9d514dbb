//! Discover-and-link in one step (rotor's `discover_name(..).link()`): the client's init waits
//! for the name and the link; the server's shutdown then takes the client down first.

mod lifecycle_common;

use coreactor::lifecycle::State;
use coreactor::testkit::TestKit;
use coreactor::{Actor, Addr, Context, RegistryError, StopReason};
use lifecycle_common::Log;

struct Server;

impl Actor for Server {
    type Msg = ();
    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.register_name("db");
    }
    fn handle(&mut self, _: (), _: &mut Context<'_, Self>) {}
}

struct Client {
    log: Log,
    delayed: bool,
}

enum ClientMsg {
    Found(Result<Addr<Server>, RegistryError>),
}

impl Actor for Client {
    type Msg = ClientMsg;
    fn init(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.discover_and_link::<Server>("db", self.delayed, ClientMsg::Found);
    }
    fn handle(&mut self, msg: ClientMsg, _: &mut Context<'_, Self>) {
        match msg {
            ClientMsg::Found(r) => self.log.push(format!("found:{}", r.is_ok())),
        }
    }
    fn stopped(&mut self, reason: &StopReason, _: &mut Context<'_, Self>) {
        self.log.push(format!("client:stopped:{reason}"));
    }
}

#[test]
fn discover_and_link_holds_the_init_and_couples_the_shutdown() {
    let kit = TestKit::with_registry(2);
    let log = Log::default();
    // The client comes first and waits for the name (delayed discovery).
    let client = kit.spawn_on(
        1,
        Client {
            log: log.clone(),
            delayed: true,
        },
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::Initializing);
    let server = kit.spawn_on(0, Server);
    kit.run_until_idle();
    assert_eq!(kit.state(&server), State::Operational);
    assert_eq!(kit.state(&client), State::Operational);
    assert_eq!(log.snapshot(), ["found:true"]);
    server.stop().unwrap();
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(kit.state(&server), State::ShutDown);
    assert_eq!(
        log.with_prefix("client:stopped"),
        ["client:stopped:linked server shut down <- stop requested"]
    );
}

#[test]
fn discover_and_link_of_an_unknown_name_fails_the_init() {
    let kit = TestKit::with_registry(1);
    let log = Log::default();
    let client = kit.spawn_on(
        0,
        Client {
            log: log.clone(),
            delayed: false,
        },
    );
    kit.run_until_idle();
    assert_eq!(kit.state(&client), State::ShutDown);
    assert_eq!(
        log.with_prefix("client:stopped"),
        ["client:stopped:init failed <- registry: no actor is registered as \"db\""]
    );
}
