//! Pool shutdown: stop every member, then confirm each one is gone *and* its `stopped` hook has
//! returned.
//!
//! # Why a probe per shard
//!
//! [`Addr::is_alive`] turns false when the runtime closes the member's address, which happens at
//! the start of its stop, before its queued messages are discarded and before
//! [`Actor::stopped`] runs. The public API has no "stopped hook finished" signal, so the pool
//! keeps one tiny [`Probe`] actor on each of its shards. A shard thread runs one thing at a
//! time, so once a member's address is seen closed, the member's stop is under way on its shard
//! thread, and a probe message sent *after* that observation is handled only after the stop
//! (hook included) has returned. The probe's reply then carries the happens-before edge back to
//! the waiting thread (the reply slot's release/acquire).
//!
//! # Steps
//!
//! 1. Mark the pool stopping (the first caller only) and send every member
//!    [`Addr::stop`] — the control lane, never blocked by a full mailbox and handled before
//!    queued messages, which become dead letters (their `Reply`s answer
//!    [`AskError::Dropped`](crate::AskError::Dropped)).
//! 2. On a shard thread of the pool's runtime, stop there: waiting would stall the shard.
//! 3. Wait, bounded by the shutdown timeout, until no member's address is alive.
//! 4. Ask each shard's probe, within what is left of the timeout: its reply means every member
//!    of that shard has finished stopping.
//! 5. Stop the probes and mark the pool shut down; later calls return at once.

use super::probe::{Probe, ProbeMsg};
use super::{Inner, PoolShutdownError};
use crate::sync::atomic::Ordering;
use crate::{Actor, Addr, AskError};
use std::time::{Duration, Instant};

/// Pool state: members running.
pub(crate) const OPEN: u8 = 0;
/// Pool state: stops requested, not yet confirmed.
pub(crate) const STOPPING: u8 = 1;
/// Pool state: every member confirmed stopped.
pub(crate) const DONE: u8 = 2;

impl<A: Actor> Inner<A> {
    /// Step 1: requests every member's stop (once). Never blocks.
    pub(crate) fn request_stop(&self) {
        // Relaxed: the state only decides who sends the stops and whether to wait; the
        // members' addresses and the probes' replies carry the real synchronisation.
        if self
            .state
            .compare_exchange(OPEN, STOPPING, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            for m in self.members.iter() {
                // `Closed`: already gone (a failed factory, a panicked handler). Nothing to do.
                let _ = m.stop();
            }
        }
    }

    /// Steps 1 to 5.
    pub(crate) fn shutdown(&self) -> Result<(), PoolShutdownError> {
        // Acquire: pairs with the Release store of `DONE` below, made after the probes confirmed
        // every hook returned, so an early return also sees the hooks' effects.
        if self.state.load(Ordering::Acquire) == DONE {
            return Ok(());
        }
        self.request_stop();
        let me = std::thread::current().id();
        if self.shard_threads.contains(&me) {
            return Err(PoolShutdownError::OnShardThread);
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        let alive = |i: &usize| self.members[*i].is_alive();
        let all: Vec<usize> = (0..self.members.len()).collect();
        if !wait_until(deadline, || !all.iter().any(alive)) {
            let pending = all.into_iter().filter(alive).collect();
            return Err(PoolShutdownError::Timeout { pending });
        }
        for probe in self.probes.iter() {
            let left = deadline.saturating_duration_since(Instant::now());
            match probe.ask(ProbeMsg::Ping, left) {
                Ok(()) => {}
                Err(AskError::Shutdown | AskError::Closed) => {
                    return Err(PoolShutdownError::RuntimeShutDown);
                }
                Err(_) => {
                    let pending = self.members_on(probe);
                    return Err(PoolShutdownError::Timeout { pending });
                }
            }
        }
        for probe in self.probes.iter() {
            let _ = probe.stop();
        }
        // Release: pairs with the Acquire load at the top (see there).
        self.state.store(DONE, Ordering::Release);
        Ok(())
    }

    /// The members that live on `probe`'s shard.
    fn members_on(&self, probe: &Addr<Probe>) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].shard() == probe.shard())
            .collect()
    }
}

/// Polls `cond` until it holds (true) or `deadline` passes (false): a few yields, then short
/// parks, like a blocked `Addr::tell`.
pub(crate) fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    let mut tries = 0u32;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tries = tries.saturating_add(1);
        if tries < 64 {
            crate::sync::thread::yield_now();
        } else {
            crate::sync::thread::park_timeout(Duration::from_micros(50));
        }
    }
}
