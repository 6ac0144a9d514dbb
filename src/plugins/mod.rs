//! The built-in lifecycle plugins (rotor's): links, registry client, resources. Each is an
//! ordinary [`Plugin`](crate::lifecycle::Plugin) written against the public actor API; an
//! actor gets one the first time it uses it (a [`Context`] method, or an
//! incoming link request), so actors that use none pay nothing.
//!
//! I-phase order (the S-phase runs in reverse): monitors (target side, then watcher side; no
//! phase work), link server, link client, registry, resources, then the actor's own plugins
//! ([`Actor::plugins`]). `docs/lifecycle.md` has the table.

pub mod link;
pub mod monitor;
pub mod registry;
pub mod resources;

use crate::actor::lifecycle::SystemMsg;
use crate::{Actor, Context};

/// Rank of the target side of monitors ([`monitor::Monitored`]): the lowest, so it is polled
/// last in the S-phase and its `finished` (the DOWN notifications) runs last.
pub(crate) const MONITORED_RANK: u32 = 5;
/// Rank of the watcher side of monitors ([`monitor::Monitors`]; it holds no phase).
pub(crate) const MONITORS_RANK: u32 = 6;
/// Rank of the link server plugin.
pub(crate) const LINK_SERVER_RANK: u32 = 10;
/// Rank of the link client plugin.
pub(crate) const LINK_CLIENT_RANK: u32 = 20;
/// Rank of the registry client plugin.
pub(crate) const REGISTRY_RANK: u32 = 30;
/// Rank of the resources plugin.
pub(crate) const RESOURCES_RANK: u32 = 40;

/// A protocol message no plugin of the actor took: the built-in protocols an actor takes part
/// in without having asked (it is the server of a link) install their plugin and take it.
/// Anything else comes back (a late answer to something already settled).
pub(crate) fn unclaimed<A: Actor>(
    msg: SystemMsg,
    actor: &mut A,
    ctx: &mut Context<'_, A>,
) -> Option<SystemMsg> {
    let _ = actor;
    let msg = link::unclaimed(msg, ctx)?;
    monitor::unclaimed(msg, ctx)
}
