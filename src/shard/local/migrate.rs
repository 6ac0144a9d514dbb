//! Migration of actors between shards (the mechanism under work stealing).
//!
//! # Protocol
//!
//! An actor's address always names its **home** shard. A migratable actor moves only from its
//! home, only when nothing ties it there (it is operational, has no pending ask, timer,
//! interval or plugin: `Cell::pack` checks), and only at a victim's own request handling, so
//! it is never in the middle of a turn.
//!
//! 1. A shard with `may_be_stolen` publishes its `stealable` flag while its ready queue holds
//!    at least `steal_backlog_threshold` actors, one of them a migratable actor at home
//!    (checked at the end of each loop iteration; turning the flag on rings every peer's
//!    doorbell so a parked thief wakes). An idle shard with `may_steal` (the thief) that sees
//!    a peer's flag sends it a steal request through its ring; it has at most one request in
//!    flight and sends the next only once the answer arrived and it is idle again.
//! 2. The victim packs up to `steal_batch` of its ready migratable actors, and at most half of
//!    its ready actors rounded up (`give_limit`: it answers between turns, when the actor
//!    that just ran is out of the queue, so this halves the actors with work), removes them
//!    from its slab while **keeping their slots** (their addresses stay valid), records a
//!    forward `slot → thief`, and sends the packed actors — each with its queued messages —
//!    to the thief in one envelope. If it has nothing to give it sends a refusal and
//!    withdraws its flag for 200 µs (`OFFER_QUIET_NS`), so a victim whose ready actors cannot
//!    move does not re-offer — and wake the thief — at every loop iteration.
//! 3. The thief installs each actor in a slot of its own, as a guest that remembers its home.
//! 4. Whatever reaches the victim for a moved actor afterwards — user messages, control
//!    messages, ask replies turned into messages, messages of the victim's own actors — is
//!    forwarded to the thief through the same ring, so it arrives **after** the actor and the
//!    messages that moved with it: per-sender FIFO holds across the move, and every message is
//!    delivered exactly once (the forward is the only path; the ring is exactly-once FIFO).
//! 5. When a guest shuts down, the thief frees its local slot and tells the home, which drops
//!    the forward and frees the address's slot. Messages forwarded meanwhile find no guest and
//!    become dead letters (accounted like any message to a stopped actor).
//!
//! A guest is not stolen again (only actors at home are stealable): chains of forwards never
//! form, and the home is always one hop from its actor.

use super::{Cell, ShardLocal};
use crate::shard::{DeadLetterReason, Envelope, ShardShared};
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use std::rc::Rc;

/// Where a guest's address points: its home shard and slot there.
pub(crate) struct HomeId {
    /// The home shard.
    pub(crate) shared: Arc<ShardShared>,
    /// The address's slot on the home shard.
    pub(crate) slot: u32,
    /// The address's generation.
    pub(crate) generation: u32,
}

/// A packed actor on its way to another shard.
pub(crate) trait Movable: Send {
    /// Rebuilds the cell for `(slot, generation)` of the shard installing it: as a guest, or
    /// back at home (`guest == false`, when the thief had no room for it).
    fn install(self: Box<Self>, slot: u32, generation: u32, guest: bool) -> Rc<dyn Cell>;
    /// The actor's home.
    fn home(&self) -> &HomeId;
}

/// How long a victim that had to refuse a thief stays quiet before offering again (200 µs).
const OFFER_QUIET_NS: u64 = 200_000;

/// A guest's home identity: `(home shard, slot, generation)`.
pub(super) type HomeKey = (usize, u32, u32);

/// A packed actor with its home slot and generation.
type Packed = (u32, u32, Box<dyn Movable>);

/// Ready-queue entries [`ShardLocal::publish_stealable`] looks at for a migratable actor
/// before it offers work (bounds the scan on a shard with many pinned ready actors).
const OFFER_SCAN: usize = 64;

/// How many of `ready` ready actors a victim gives to one request (before `steal_batch`):
/// half, rounded up.
///
/// A busy victim answers requests between turns (`run_ready` drains its rings after each
/// turn), when the actor whose turn just ended is not in the ready queue yet: the actors
/// with work are then `ready + 1`, and `(ready + 1) / 2` is half of those, rounded down. So
/// two workers split one and one (`ready / 2` gave nothing: the request was refused), four
/// split two and two (`ready / 2` gave one, and the thief came back for more only after it
/// ran out). A victim that answers at the start of an iteration gives at most one actor
/// more than half; with a single ready actor it hands it over and goes idle, which moves
/// the work without losing any parallelism.
fn give_limit(ready: usize) -> usize {
    ready.div_ceil(2)
}

/// The home side of a moved actor.
pub(super) struct Forward {
    generation: u32,
    to: usize,
}

/// The host side of a guest: its local slot, and its home identity.
pub(super) struct Guest {
    pub(super) home: usize,
    pub(super) home_slot: u32,
    pub(super) home_generation: u32,
}

impl ShardLocal {
    /// Called for an envelope whose actor is not in this shard's slab: if the actor moved
    /// away, forwards the envelope to where it runs and returns `None`.
    pub(crate) fn forward_moved(&self, env: Envelope) -> Option<Envelope> {
        let to = match self.forwards.borrow().get(&env.slot) {
            Some(f) if f.generation == env.generation => f.to,
            _ => return Some(env),
        };
        let home = self.id;
        self.shared.counters.bump_forwarded();
        let task = Envelope::task(move |host: &ShardLocal| host.deliver_to_guest(home, env));
        // DELIBERATELY BROKEN under `coreactor_loom_bug = "migrate"` (loom-tests/steal.rs must
        // catch it): the forward takes the host's injection queue, a different channel from
        // the ring that carries the actor, so it can arrive before the actor does.
        #[cfg(coreactor_loom_bug = "migrate")]
        self.peers[to].inject(task);
        #[cfg(not(coreactor_loom_bug = "migrate"))]
        self.send_remote(to, task);
        None
    }

    /// Delivers an envelope forwarded by `home` to the guest it is for.
    fn deliver_to_guest(&self, home: usize, mut env: Envelope) {
        let local = self
            .guest_slots
            .borrow()
            .get(&(home, env.slot, env.generation))
            .copied();
        match local {
            Some((slot, generation)) => {
                env.slot = slot;
                env.generation = generation;
                env.deliver(self);
            }
            // The guest has stopped: a message to a stopped actor.
            None => self.peers[home].discard(env, DeadLetterReason::ActorStopped),
        }
    }

    /// Publishes whether this shard has ready migratable work to offer (only on a change,
    /// so a balanced shard does not write the line every iteration).
    ///
    /// Work is offered when the ready queue holds at least `backlog_threshold` actors and
    /// one of its first [`OFFER_SCAN`] entries is a migratable actor at home (guests and
    /// pinned actors are never given away: a queue of those alone would only draw requests
    /// that end in refusals).
    pub(super) fn publish_stealable(&self) {
        let s = &self.params.steal;
        let want = s.may_be_stolen
            && self.migratable_home.get() > 0
            && self.now_ns() >= self.offer_quiet_until.get()
            && self.ready.borrow().len() >= s.backlog_threshold.max(1)
            && self.has_ready_migratable();
        if want != self.stealable_published.get() {
            self.stealable_published.set(want);
            self.shared.stealable.store(want, Ordering::Relaxed);
            if want {
                // Idle peers may be parked: wake those that may steal (a syscall only for a
                // sleeping peer, and only when the flag turns on).
                for (p, peer) in self.peers.iter().enumerate() {
                    if p != self.id {
                        peer.doorbell.ring(crate::shard::doorbell::INJECT);
                    }
                }
            }
        }
    }

    /// Withdraws the offer after a request found nothing to give, so that thieves do not
    /// retry until the next loop iteration republishes it (see [`publish_stealable`]).
    ///
    /// [`publish_stealable`]: Self::publish_stealable
    fn withdraw_offer(&self) {
        self.offer_quiet_until
            .set(self.now_ns().saturating_add(OFFER_QUIET_NS));
        if self.stealable_published.replace(false) {
            self.shared.stealable.store(false, Ordering::Relaxed);
        }
    }

    /// True if one of the first [`OFFER_SCAN`] ready actors is a migratable actor at home.
    fn has_ready_migratable(&self) -> bool {
        let ready = self.ready.borrow();
        let slab = self.slab.borrow();
        ready.iter().take(OFFER_SCAN).any(|&slot| {
            slab.get(slot as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| e.cell.migratable())
        })
    }

    /// Thief side: if stealing is allowed and no request is in flight, asks one busy peer
    /// (chosen at random among those advertising work) for actors. True if a request left.
    pub(crate) fn try_steal(&self) -> bool {
        if !self.params.steal.may_steal
            || self.steal_in_flight.get()
            || self.runtime_shutting_down()
        {
            return false;
        }
        let n = self.peers.len();
        if n < 2 {
            return false;
        }
        // Among the peers offering work, the nearest (shared caches); random among equals.
        let start = (self.next_random() % n as u64) as usize;
        let distance = |p: usize| {
            self.params
                .peer_distance
                .get(p)
                .copied()
                .unwrap_or(crate::shard::topology::SAME_PACKAGE)
        };
        let victim = (0..n)
            .map(|i| (start + i) % n)
            .filter(|&p| p != self.id && self.peers[p].stealable.load(Ordering::Relaxed))
            .min_by_key(|&p| distance(p));
        let Some(victim) = victim else { return false };
        self.steal_in_flight.set(true);
        self.shared.counters.bump_steals_attempted();
        let thief = self.id;
        self.send_remote(
            victim,
            Envelope::task(move |v: &ShardLocal| v.give_actors(thief)),
        );
        self.flush();
        true
    }

    /// Victim side: packs ready migratable actors for `thief` and sends them (or a refusal).
    fn give_actors(&self, thief: usize) {
        let mut packed: Vec<Packed> = Vec::new();
        if self.params.steal.may_be_stolen && !self.is_stopping() {
            let ready: Vec<u32> = self.ready.borrow().iter().copied().collect();
            let limit = self.params.steal.batch.min(give_limit(ready.len()));
            for slot in ready {
                if packed.len() >= limit {
                    break;
                }
                let candidate = {
                    let slab = self.slab.borrow();
                    slab.get(slot as usize)
                        .and_then(Option::as_ref)
                        .filter(|e| e.cell.migratable() && e.cell.has_work())
                        .map(|e| (e.cell.clone(), e.generation))
                };
                let Some((cell, generation)) = candidate else {
                    continue;
                };
                let Some(movable) = cell.pack(self) else {
                    continue;
                };
                drop(cell);
                self.evict(slot);
                self.forwards.borrow_mut().insert(
                    slot,
                    Forward {
                        generation,
                        to: thief,
                    },
                );
                self.shared.counters.bump_migrated_out();
                packed.push((slot, generation, movable));
            }
        }
        if packed.is_empty() {
            self.withdraw_offer();
        }
        let victim = self.id;
        self.send_remote(
            thief,
            Envelope::task(move |t: &ShardLocal| t.take_actors(victim, packed)),
        );
    }

    /// Removes a packed actor from the slab and the ready queue, keeping its slot.
    fn evict(&self, slot: u32) {
        let entry = self
            .slab
            .borrow_mut()
            .get_mut(slot as usize)
            .and_then(Option::take);
        self.ready.borrow_mut().retain(|&s| s != slot);
        if let Some(e) = entry {
            if e.counted_migratable {
                self.migratable_home.set(self.migratable_home.get() - 1);
            }
            drop(e);
        }
        self.shared.live_actor_removed();
    }

    /// Thief side: installs the actors a victim gave (possibly none).
    fn take_actors(&self, victim: usize, packed: Vec<Packed>) {
        self.steal_in_flight.set(false);
        if !packed.is_empty() {
            self.shared.counters.bump_steals_succeeded();
        }
        for (home_slot, home_generation, movable) in packed {
            debug_assert!(Arc::ptr_eq(&movable.home().shared, &self.peers[victim]));
            let Some((slot, generation)) = self.shared.table.reserve() else {
                // No room here: the actor is lost to the system only if we drop it, so send
                // it back home instead.
                let back = Envelope::task(move |home: &ShardLocal| {
                    home.return_home(home_slot, home_generation, movable)
                });
                self.send_remote(victim, back);
                continue;
            };
            let cell = movable.install(slot, generation, true);
            self.guest_slots
                .borrow_mut()
                .insert((victim, home_slot, home_generation), (slot, generation));
            self.guests.borrow_mut().insert(
                slot,
                Guest {
                    home: victim,
                    home_slot,
                    home_generation,
                },
            );
            self.shared.counters.bump_migrated_in();
            self.install(slot, generation, cell);
        }
    }

    /// Home side: a moved actor comes back (the thief had no room).
    fn return_home(&self, slot: u32, generation: u32, movable: Box<dyn Movable>) {
        self.forwards.borrow_mut().remove(&slot);
        let cell = movable.install(slot, generation, false);
        self.install(slot, generation, cell);
    }

    /// Host side: a guest's slot is being freed; tell its home to free the address.
    pub(super) fn guest_removed(&self, slot: u32) {
        let g = {
            let mut guests = self.guests.borrow_mut();
            // Most shards host no guest: no hashing on every actor removal then.
            if guests.is_empty() {
                return;
            }
            guests.remove(&slot)
        };
        let Some(g) = g else {
            return;
        };
        self.guest_slots
            .borrow_mut()
            .remove(&(g.home, g.home_slot, g.home_generation));
        let (home_slot, home_generation) = (g.home_slot, g.home_generation);
        self.send_remote(
            g.home,
            Envelope::task(move |home: &ShardLocal| home.forget_moved(home_slot, home_generation)),
        );
    }

    /// Home side: a moved actor is gone; its address's slot is freed.
    fn forget_moved(&self, slot: u32, generation: u32) {
        let removed = {
            let mut f = self.forwards.borrow_mut();
            match f.get(&slot) {
                Some(e) if e.generation == generation => f.remove(&slot).is_some(),
                _ => false,
            }
        };
        if removed {
            self.shared.table.release(slot);
        }
    }
}
