//! Shards on loom model threads (`--cfg coreactor_loom` only), for `loom-tests/steal.rs`.
//!
//! The [`TestKit`](super::TestKit) steps every shard on one thread, so it cannot show a race
//! between shards. Here each shard runs the production reactor loop (`ShardLocal::run_loop`:
//! doorbell, rings, injection queue, parking, the steal policy and the migration protocol) on
//! its own loom thread, and loom explores how the shards and outside threads interleave.
//!
//! What differs from a real runtime, and why:
//! * the clock is a per-shard manual clock that never advances (timers never fire; a victim
//!   that refused a thief stays quiet for the rest of the model);
//! * the loop spins once before it parks (loom's spin hint is a yield) and parks without a
//!   timeout (the stricter case: a lost wake-up deadlocks instead of being rescued);
//! * there is no I/O poller, no pinning, and no thread naming.

use super::{Wiring, install_now};
use crate::actor::{Actor, Addr};
use crate::config::StealConfig;
use crate::mailbox::ring::{Consumer, Producer};
use crate::shard::{
    Clock, CurrentGuard, Envelope, RtShared, STOPPING, ShardLocal, ShardParams, ShardShared,
};
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use std::rc::Rc;
use std::time::Duration;

/// A runtime whose shards the model runs on threads of its own. See the [module docs](self).
pub struct ModelRuntime {
    rt: Arc<RtShared>,
    shared: Vec<Arc<ShardShared>>,
}

/// One shard's parts before its thread builds it ([`ModelShard::run`]).
pub struct ModelShard {
    shared: Arc<ShardShared>,
    peers: Box<[Arc<ShardShared>]>,
    params: ShardParams,
    producers: Vec<Option<Producer<Envelope>>>,
    consumers: Vec<Option<Consumer<Envelope>>>,
}

/// A running model shard, handed to the set-up closure of [`ModelShard::run`].
pub struct ModelLocal<'a> {
    local: &'a Rc<ShardLocal>,
}

impl ModelRuntime {
    /// `shards` shards with the given steal configuration and batch budget on each, rings of
    /// `ring_capacity` slots and mailboxes of `mailbox_capacity` messages.
    ///
    /// # Panics
    ///
    /// If `shards` is zero or `ring_capacity` is not a power of two of at least 2.
    pub fn new(
        shards: usize,
        steal: StealConfig,
        batch_budget: usize,
        ring_capacity: usize,
        mailbox_capacity: usize,
    ) -> (ModelRuntime, Vec<ModelShard>) {
        assert!(shards > 0, "a model needs at least one shard");
        // A lost message is a dead letter: the shards stop at once, so the model ends with a
        // count the test can assert instead of a deadlock (whose unwinding through loom
        // objects aborts the process, loom issue #291).
        let rt = Arc::new(RtShared::new(
            shards,
            Some(Box::new(|_letter: &crate::shard::DeadLetter| {
                crate::shard::with_current(|current| {
                    if let Some(local) = current {
                        stop(&local.rt, &local.peers);
                    }
                });
            })),
        ));
        let Wiring {
            shared,
            producers,
            consumers,
        } = Wiring::new(&rt, shards, ring_capacity, mailbox_capacity, true);
        let peers: Box<[Arc<ShardShared>]> = shared.clone().into();
        let parts = shared
            .iter()
            .zip(producers.into_iter().zip(consumers))
            .map(|(s, (producers, consumers))| ModelShard {
                shared: s.clone(),
                peers: peers.clone(),
                params: ShardParams {
                    steal,
                    peer_distance: Vec::new(),
                    batch_budget,
                    spin_before_park: Duration::ZERO,
                    spin_before_yield: Duration::ZERO,
                    inject_pacing_ns: 0,
                    tick_ns: 1_000_000,
                    io_events: 0,
                },
                producers,
                consumers,
            })
            .collect();
        (ModelRuntime { rt, shared }, parts)
    }

    /// Reserves a slot on `shard` for an actor that [`ModelLocal::install_migratable`]
    /// installs later; the address works at once (messages sent before the install wait for
    /// it, as with `Runtime::spawn`).
    ///
    /// # Panics
    ///
    /// If `shard` does not exist or is full.
    pub fn reserve<A: Actor>(&self, shard: usize) -> Addr<A> {
        let target = &self.shared[shard];
        let (slot, generation) = target.table.reserve().expect("shard full");
        Addr::new(target.clone(), slot, generation)
    }

    /// A handle that stops every shard's loop, as the forced phase of `Runtime::shutdown`
    /// does (the shards then stop their actors and drain).
    pub fn stopper(&self) -> ModelStopper {
        ModelStopper {
            rt: self.rt.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Messages accounted as dead letters so far, over every shard. The first one stops every
    /// shard (as a [`ModelStopper`] would): in a model a dead letter is a lost message.
    pub fn dead_letters(&self) -> u64 {
        self.rt.dead_letters.load(Ordering::Relaxed)
    }

    /// A snapshot of `shard`'s counters.
    pub fn shard_stats(&self, shard: usize) -> crate::stats::ShardStats {
        self.shared[shard].counters.snapshot(shard)
    }
}

/// Stops a [`ModelRuntime`]'s shards. See [`ModelRuntime::stopper`].
pub struct ModelStopper {
    rt: Arc<RtShared>,
    shared: Vec<Arc<ShardShared>>,
}

impl ModelStopper {
    /// Makes every shard leave its loop (waking the parked ones) and shut down.
    pub fn stop(&self) {
        stop(&self.rt, &self.shared);
    }
}

/// The forced phase of `Runtime::shutdown`: the state, then every doorbell.
fn stop(rt: &RtShared, shards: &[Arc<ShardShared>]) {
    rt.state.store(STOPPING, Ordering::Release);
    for s in shards {
        s.doorbell.ring(crate::shard::doorbell::INJECT);
    }
}

impl ModelShard {
    /// Builds this shard on the calling (loom) thread, makes it the thread's current shard,
    /// runs `setup` (to install actors), then the reactor loop until a [`ModelStopper`] stops
    /// it, then the shard's shutdown.
    pub fn run(self, setup: impl FnOnce(&ModelLocal<'_>)) {
        let local = Rc::new(
            ShardLocal::new(
                self.shared,
                self.peers,
                self.params,
                self.producers,
                self.consumers,
                Clock::Manual(Rc::default()),
            )
            .expect("a model shard has no OS resources to fail"),
        );
        let guard = CurrentGuard::enter(local.clone());
        setup(&ModelLocal { local: &local });
        local.run_loop();
        drop(guard);
    }
}

impl ModelLocal<'_> {
    /// Installs `actor` as a migratable actor in the slot `addr` reserved on this shard
    /// ([`ModelRuntime::reserve`]).
    ///
    /// # Panics
    ///
    /// If `addr` is not on this shard.
    pub fn install_migratable<A: Actor + Send>(&self, addr: &Addr<A>, actor: A) {
        assert_eq!(
            addr.shard(),
            self.local.id,
            "the reserved slot is on another shard"
        );
        install_now(
            self.local,
            addr.slot,
            addr.generation,
            actor,
            Some(crate::actor::cell::pack_cell::<A>),
        );
    }

    /// Spawns a pinned actor on this shard at once.
    ///
    /// # Panics
    ///
    /// If the shard is full.
    pub fn spawn<A: Actor>(&self, actor: A) -> Addr<A> {
        let shared = &self.local.shared;
        let (slot, generation) = shared.table.reserve().expect("shard full");
        install_now(self.local, slot, generation, actor, None);
        Addr::new(shared.clone(), slot, generation)
    }
}
