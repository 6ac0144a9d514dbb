#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs, rust_2018_idioms)]

pub(crate) mod sync;

mod actor;
pub mod config;
mod error;
#[cfg(not(coreactor_loom))]
pub mod io;
mod mailbox;
#[cfg(not(coreactor_loom))]
pub mod net;
pub mod plugins;
pub mod pool;
pub mod registry;
mod runtime;
mod shard;
pub mod stats;
pub mod supervisor;
pub mod testkit;
mod timer;

pub use actor::lifecycle;
pub use actor::{Actor, ActorRef, Addr, AskFuture, Context, Reply, StopReason, TimerId};
pub use config::{Config, ConfigError, Placement};
pub use error::{AskError, LinkError, RegistryError, SendError, SpawnError};
pub use runtime::{Builder, Runtime, ShardInfo, ShutdownError, StartError};
pub use shard::{DeadLetter, DeadLetterReason};
pub use stats::{ActorStats, ShardStats};

/// Internals exposed to the loom models in `loom-tests/` only (`--cfg coreactor_loom`).
#[cfg(coreactor_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::actor::slot::{Poll as SlotPoll, ReplySlot};
    pub use crate::mailbox::inject::{BoundedInject, OpenRecord, Run};
    pub use crate::mailbox::ring::{Consumer, Producer, ring};
    pub use crate::shard::close::ClosableQueue;
    pub use crate::shard::doorbell::{Doorbell, INJECT, SLEEPING, Wake, peer_bit};
    pub use crate::shard::wakefd::LoomWake;
    pub use crate::testkit::model::{ModelLocal, ModelRuntime, ModelShard, ModelStopper};
}
