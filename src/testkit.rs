//! A deterministic test kit: every shard of a runtime stepped by hand on the calling thread,
//! with a virtual clock.
//!
//! The shards, rings, mailboxes, timers and asks are the real ones — only the threads and the
//! clock are replaced. Nothing runs unless the test steps it, and timers fire only when the test
//! advances the clock, so tests of actor systems need no sleeps and no timing luck.
//!
//! # Examples
//!
//! ```
//! use coreactor::testkit::TestKit;
//! use coreactor::{Actor, Context, Reply};
//! use std::time::Duration;
//!
//! struct Echo;
//! impl Actor for Echo {
//!     type Msg = (u32, Reply<u32>);
//!     fn handle(&mut self, (n, reply): (u32, Reply<u32>), _ctx: &mut Context<'_, Self>) {
//!         reply.send(n + 1);
//!     }
//! }
//!
//! let kit = TestKit::new(2);
//! let echo = kit.spawn_on(1, Echo);
//! assert_eq!(kit.ask(&echo, |r| (41, r)), Ok(42));
//! ```

#[cfg(coreactor_loom)]
pub(crate) mod model;

use crate::actor::{Actor, Addr, Reply, install_remote};
use crate::error::AskError;
use crate::mailbox::ring::{Consumer, Producer, ring};
use crate::shard::{
    Clock, CurrentGuard, Envelope, RtShared, ShardLocal, ShardParams, ShardShared, new_waker,
};
use crate::sync::Arc;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Upper bound on loop iterations of [`TestKit::run_until_idle`]: a system that never becomes
/// idle (an actor that keeps sending to itself) is reported instead of hanging the test.
pub const MAX_STEPS: usize = 1_000_000;

/// Installs `actor`, unsupervised, in the reserved `(slot, generation)` of `shard` at once
/// (it runs its `started` hook at the shard's next step); a `packer` makes it migratable.
fn install_now<A: Actor>(
    shard: &ShardLocal,
    slot: u32,
    generation: u32,
    actor: A,
    packer: Option<crate::actor::cell::Packer<A>>,
) {
    install_remote(
        shard,
        slot,
        generation,
        move || actor,
        crate::actor::cell::Supervision::none(),
        packer,
    );
}

/// The shared halves of `shards` shards and the ring endpoints between every pair:
/// `producers[i][j]` / `consumers[j][i]` are the two ends of the ring from shard `i` to `j`.
struct Wiring {
    shared: Vec<Arc<ShardShared>>,
    producers: Vec<Vec<Option<Producer<Envelope>>>>,
    consumers: Vec<Vec<Option<Consumer<Envelope>>>>,
}

impl Wiring {
    fn new(
        rt: &Arc<RtShared>,
        shards: usize,
        ring_capacity: usize,
        mailbox_capacity: usize,
        bounded_outside: bool,
    ) -> Wiring {
        let shared: Vec<Arc<ShardShared>> = (0..shards)
            .map(|i| {
                Arc::new(ShardShared::new(
                    i,
                    rt.clone(),
                    new_waker().expect("eventfd"),
                    crate::config::DEFAULT_MAX_ACTORS,
                    mailbox_capacity,
                    bounded_outside.then_some(crate::shard::close::DEFAULT_BOUNDED_LANE),
                ))
            })
            .collect();
        let mut producers: Vec<Vec<Option<Producer<Envelope>>>> = (0..shards)
            .map(|_| (0..shards).map(|_| None).collect())
            .collect();
        let mut consumers: Vec<Vec<Option<Consumer<Envelope>>>> = (0..shards)
            .map(|_| (0..shards).map(|_| None).collect())
            .collect();
        for i in 0..shards {
            for j in 0..shards {
                if i != j {
                    let (p, c) = ring(ring_capacity);
                    producers[i][j] = Some(p);
                    consumers[j][i] = Some(c);
                }
            }
        }
        Wiring {
            shared,
            producers,
            consumers,
        }
    }
}

/// Shards stepped by hand with a virtual clock. See the [module docs](self).
pub struct TestKit {
    shards: Vec<Rc<ShardLocal>>,
    shared: Vec<Arc<ShardShared>>,
    clock: Rc<Cell<u64>>,
    rt: Arc<RtShared>,
    errors: Arc<crate::sync::Mutex<Vec<String>>>,
}

impl TestKit {
    /// The lifecycle state of the actor at `addr`.
    pub fn state<A: Actor>(&self, addr: &Addr<A>) -> crate::lifecycle::State {
        addr.state()
    }

    /// Lifecycle contract violations reported so far (shutdown timeouts, failed plugins), as
    /// text, in order. Under the kit they are recorded here instead of printed.
    pub fn lifecycle_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A kit with `shards` shards, default knobs and a 1 ms timer tick.
    ///
    /// # Panics
    ///
    /// If `shards` is zero or the OS refuses an eventfd or epoll instance.
    pub fn new(shards: usize) -> TestKit {
        TestKit::with_params(shards, 64, 16, 1024, Duration::from_millis(1))
    }

    /// A kit with explicit ring capacity, mailbox capacity, batch budget and timer tick.
    ///
    /// # Panics
    ///
    /// If `shards` is zero, `ring_capacity` is not a power of two of at least 2, or the OS
    /// refuses an eventfd or epoll instance.
    pub fn with_params(
        shards: usize,
        batch_budget: usize,
        ring_capacity: usize,
        mailbox_capacity: usize,
        timer_tick: Duration,
    ) -> TestKit {
        TestKit::build(
            shards,
            batch_budget,
            ring_capacity,
            mailbox_capacity,
            timer_tick,
            crate::config::StealConfig::default(),
        )
    }

    /// A kit with default knobs and the given work-stealing configuration on every shard.
    /// Steals happen only when the test calls [`steal`](Self::steal), so their timing is the
    /// test's choice.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new).
    pub fn with_steal(shards: usize, steal: crate::config::StealConfig) -> TestKit {
        TestKit::build(shards, 64, 16, 1024, Duration::from_millis(1), steal)
    }

    fn build(
        shards: usize,
        batch_budget: usize,
        ring_capacity: usize,
        mailbox_capacity: usize,
        timer_tick: Duration,
        steal: crate::config::StealConfig,
    ) -> TestKit {
        assert!(shards > 0, "a test kit needs at least one shard");
        let mut rt = RtShared::new(shards, None);
        let errors: Arc<crate::sync::Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        let hook: crate::actor::lifecycle::LifecycleHook = Box::new(move |e| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(e.to_string());
        });
        rt.lifecycle_hook = Some(Box::new(hook));
        let rt = Arc::new(rt);
        let Wiring {
            shared,
            mut producers,
            mut consumers,
        } = Wiring::new(&rt, shards, ring_capacity, mailbox_capacity, false);
        let clock = Rc::new(Cell::new(0));
        let peers: Box<[Arc<ShardShared>]> = shared.clone().into();
        let locals = (0..shards)
            .map(|i| {
                let params = ShardParams {
                    steal,
                    peer_distance: Vec::new(),
                    batch_budget,
                    spin_before_park: Duration::ZERO,
                    spin_before_yield: Duration::ZERO,
                    inject_pacing_ns: 0,
                    tick_ns: (timer_tick.as_nanos() as u64).max(1),
                    io_events: 64,
                };
                Rc::new(
                    ShardLocal::new(
                        shared[i].clone(),
                        peers.clone(),
                        params,
                        std::mem::take(&mut producers[i]),
                        std::mem::take(&mut consumers[i]),
                        Clock::Manual(clock.clone()),
                    )
                    .expect("epoll"),
                )
            })
            .collect();
        TestKit {
            shards: locals,
            shared,
            clock,
            rt,
            errors,
        }
    }

    /// A kit with `shards` shards (as [`new`](Self::new)) and a name
    /// [`Registry`](crate::registry::Registry) on shard 0.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new).
    pub fn with_registry(shards: usize) -> TestKit {
        let kit = TestKit::new(shards);
        kit.start_registry(0);
        kit
    }

    /// Starts the kit's name [`Registry`](crate::registry::Registry) on `shard` and returns its
    /// address.
    ///
    /// # Panics
    ///
    /// If `shard` does not exist or the kit has a registry already.
    pub fn start_registry(&self, shard: usize) -> Addr<crate::registry::Registry> {
        let registry = self.spawn_on(shard, crate::registry::Registry::new());
        assert!(
            crate::registry::publish(&self.rt, &registry),
            "the kit has a registry already"
        );
        registry
    }

    /// The kit's name registry, if one was started.
    pub fn registry(&self) -> Option<Addr<crate::registry::Registry>> {
        crate::registry::lookup(&self.shared).and_then(|r| r.downcast())
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Spawns `actor` on `shard` at once (it need not be `Send`); it runs its `started` hook at
    /// its first step.
    ///
    /// # Panics
    ///
    /// If `shard` does not exist or is full.
    pub fn spawn_on<A: Actor>(&self, shard: usize, actor: A) -> Addr<A> {
        let target = &self.shared[shard];
        let (slot, generation) = target.table.reserve().expect("shard full");
        let _guard = CurrentGuard::enter(self.shards[shard].clone());
        install_now(&self.shards[shard], slot, generation, actor, None);
        Addr::new(target.clone(), slot, generation)
    }

    /// Spawns a migratable actor on `shard` (see
    /// [`Runtime::spawn_migratable`](crate::Runtime::spawn_migratable)).
    ///
    /// # Panics
    ///
    /// If `shard` does not exist or is full.
    pub fn spawn_migratable_on<A: Actor + Send>(&self, shard: usize, actor: A) -> Addr<A> {
        let target = &self.shared[shard];
        let (slot, generation) = target.table.reserve().expect("shard full");
        let _guard = CurrentGuard::enter(self.shards[shard].clone());
        install_now(
            &self.shards[shard],
            slot,
            generation,
            actor,
            Some(crate::actor::cell::pack_cell::<A>),
        );
        Addr::new(target.clone(), slot, generation)
    }

    /// Lets shard `thief` try to steal, as it would when idle: if a peer advertises ready
    /// migratable work (after its last step), a request leaves; nothing else runs. Returns
    /// whether a request left. Step the shards (or [`run_until_idle`](Self::run_until_idle))
    /// to carry it out.
    pub fn steal(&self, thief: usize) -> bool {
        let _guard = CurrentGuard::enter(self.shards[thief].clone());
        self.shards[thief].try_steal()
    }

    /// Runs one loop iteration of `shard`; true if it did any work.
    pub fn step(&self, shard: usize) -> bool {
        let _guard = CurrentGuard::enter(self.shards[shard].clone());
        self.shards[shard].run_once()
    }

    /// Steps every shard in turn until none has work; returns the number of iterations that
    /// did work.
    ///
    /// # Panics
    ///
    /// After [`MAX_STEPS`] busy iterations (a system that never becomes idle).
    pub fn run_until_idle(&self) -> usize {
        let mut busy = 0;
        loop {
            let mut any = false;
            for s in 0..self.shards.len() {
                if self.step(s) {
                    any = true;
                    busy += 1;
                }
            }
            if !any {
                return busy;
            }
            assert!(busy < MAX_STEPS, "the actor system never became idle");
        }
    }

    /// The virtual time since the kit was created.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.clock.get())
    }

    /// Moves the virtual clock forward by `by` and runs until idle (timers due by then fire).
    pub fn advance(&self, by: Duration) {
        let by = by.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.clock.set(self.clock.get().saturating_add(by));
        self.run_until_idle();
    }

    /// Asks `addr` and steps the shards until the answer comes (no virtual time passes).
    ///
    /// # Errors
    ///
    /// As [`Addr::ask`]; [`AskError::Timeout`] (with a zero duration) if the system became
    /// idle without answering.
    pub fn ask<A: Actor, T: Send + 'static>(
        &self,
        addr: &Addr<A>,
        make: impl FnOnce(Reply<T>) -> A::Msg,
    ) -> Result<T, AskError> {
        let (reply, slot) = Reply::for_future(&self.shared[0].rt);
        if let Err(e) = addr.try_tell(make(reply)) {
            slot.cancel_quietly();
            return Err(addr.ask_send_error(e));
        }
        self.run_until_idle();
        match slot.poll() {
            crate::actor::slot::Poll::Ready(r) => r,
            _ => {
                slot.cancel();
                Err(AskError::Timeout(Duration::ZERO))
            }
        }
    }

    /// Live actors on `shard`.
    pub fn actor_count(&self, shard: usize) -> usize {
        self.shards[shard].actor_count()
    }

    /// Asks of `shard`'s actors still waiting for a reply.
    pub fn pending_asks(&self, shard: usize) -> usize {
        self.shards[shard].pending_asks()
    }

    /// A snapshot of `shard`'s counters.
    pub fn shard_stats(&self, shard: usize) -> crate::stats::ShardStats {
        self.shared[shard].counters.snapshot(shard)
    }
}

impl Drop for TestKit {
    fn drop(&mut self) {
        self.rt.state.store(
            crate::shard::STOPPING,
            crate::sync::atomic::Ordering::Release,
        );
        for s in &self.shards {
            let _g = CurrentGuard::enter(s.clone());
            s.stop_all_actors();
        }
        for s in &self.shards {
            let _g = CurrentGuard::enter(s.clone());
            s.drain_discarding();
            // SAFETY: the test kit drives every shard from this thread, its queues' only
            // consumer, and closes each once, here, as the kit goes.
            unsafe { s.shared.close_inject() };
        }
    }
}
