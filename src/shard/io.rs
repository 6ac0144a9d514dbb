//! I/O readiness: file descriptors that actors registered with their shard's epoll instance.
//!
//! An actor registers a fd with an interest set and a function that turns a [`Readiness`] into
//! one of its own messages. The shard polls its epoll instance when it parks (so mailboxes,
//! timers and I/O share one wake-up mechanism) and, while busy, every few loop iterations; each
//! event becomes a message on the actor's own shard, bypassing the mailbox bound like a timer
//! message. Registrations are level-triggered unless the interest asks for edge triggering:
//! level-triggered, a message comes at every poll while the fd stays ready; edge-triggered
//! (`Interest::edge_triggered`), one per change, and the actor reads or writes until
//! `WouldBlock` before waiting again. When an actor stops, every fd it registered is
//! deregistered automatically, before the actor (and the fds it owns) is dropped.

#![deny(unsafe_code)]

use super::Envelope;
use std::collections::HashMap;
use std::os::fd::RawFd;

/// What an I/O event reported for a registered fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Data can be read (or the peer closed: a read returns 0).
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer hung up or shut down its writing half.
    pub hangup: bool,
    /// An error is pending on the fd.
    pub error: bool,
}

/// Identifies one registration of one actor; returned by `Context::register_io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoToken {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl IoToken {
    /// The epoll token: generation in the high half, index in the low half. The shard's own
    /// wake-up token is `u64::MAX`, which no registration uses (indices stay below `u32::MAX`).
    pub(crate) fn to_epoll(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub(crate) fn from_epoll(token: u64) -> IoToken {
        IoToken {
            index: token as u32,
            generation: (token >> 32) as u32,
        }
    }
}

/// Turns a readiness into an envelope for the registering actor.
pub(crate) type MakeIoMessage = Box<dyn FnMut(Readiness) -> Envelope>;

struct IoEntry {
    generation: u32,
    slot: u32,
    actor_generation: u32,
    fd: RawFd,
    make: Option<MakeIoMessage>,
    live: bool,
}

/// A registration found for an event.
pub(crate) struct Registered {
    pub(crate) slot: u32,
    pub(crate) actor_generation: u32,
    pub(crate) fd: RawFd,
}

/// The shard's registrations, keyed by [`IoToken`].
#[derive(Default)]
pub(crate) struct IoTable {
    entries: Vec<IoEntry>,
    free: Vec<u32>,
    by_slot: HashMap<u32, Vec<IoToken>>,
    live: usize,
}

impl IoTable {
    /// Number of live registrations.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Records a registration (the caller registers `fd` with epoll under the returned token).
    pub(crate) fn insert(
        &mut self,
        slot: u32,
        actor_generation: u32,
        fd: RawFd,
        make: MakeIoMessage,
    ) -> IoToken {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(IoEntry {
                    generation: 0,
                    slot: 0,
                    actor_generation: 0,
                    fd: -1,
                    make: None,
                    live: false,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        e.generation = e.generation.wrapping_add(1);
        e.slot = slot;
        e.actor_generation = actor_generation;
        e.fd = fd;
        e.make = Some(make);
        e.live = true;
        self.live += 1;
        let token = IoToken {
            index,
            generation: e.generation,
        };
        self.by_slot.entry(slot).or_default().push(token);
        token
    }

    fn entry(&self, token: IoToken) -> Option<&IoEntry> {
        self.entries
            .get(token.index as usize)
            .filter(|e| e.live && e.generation == token.generation)
    }

    /// The registration behind `token`, if it is live.
    pub(crate) fn get(&self, token: IoToken) -> Option<Registered> {
        self.entry(token).map(|e| Registered {
            slot: e.slot,
            actor_generation: e.actor_generation,
            fd: e.fd,
        })
    }

    /// Removes a registration; returns its fd (the caller deregisters it from epoll).
    pub(crate) fn remove(&mut self, token: IoToken) -> Option<(RawFd, Option<MakeIoMessage>)> {
        self.entry(token)?;
        let e = &mut self.entries[token.index as usize];
        e.live = false;
        let fd = e.fd;
        let make = e.make.take();
        self.live -= 1;
        self.free.push(token.index);
        if let Some(list) = self.by_slot.get_mut(&e.slot) {
            list.retain(|t| *t != token);
            if list.is_empty() {
                self.by_slot.remove(&e.slot);
            }
        }
        Some((fd, make))
    }

    /// Every token an actor slot registered.
    pub(crate) fn tokens_of(&self, slot: u32) -> Vec<IoToken> {
        self.by_slot.get(&slot).cloned().unwrap_or_default()
    }

    /// Takes the message maker out while it runs (it is user code).
    pub(crate) fn take_make(&mut self, token: IoToken) -> Option<MakeIoMessage> {
        self.entry(token)?;
        self.entries[token.index as usize].make.take()
    }

    /// Puts the message maker back if the registration is still live.
    pub(crate) fn restore_make(&mut self, token: IoToken, make: MakeIoMessage) {
        if self.entry(token).is_some() {
            self.entries[token.index as usize].make = Some(make);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_collide_with_the_wake_token() {
        let t = IoToken {
            index: 7,
            generation: 3,
        };
        assert_eq!(IoToken::from_epoll(t.to_epoll()), t);
        assert_ne!(t.to_epoll(), u64::MAX);
    }
}
