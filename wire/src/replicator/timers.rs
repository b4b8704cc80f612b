//! The replicator's timers: one min-heap of the instants at which something
//! may fall due, so that [`Replicator::poll_timeout`] is a peek and
//! [`Replicator::handle_timeout`] visits only what is due, not every remote
//! of every peer and every core (with 10,000 cores on a connection, those
//! scans on every wake-up of the driver were most of its work).
//!
//! An entry may be early or stale (the remote answered since, the get
//! ended, the peer went away): the heap promises only that whatever falls
//! due has an entry at or before its time. A due entry is checked against
//! the state it names and, for a remote still waiting, pushed again at its
//! new time.
//!
//! - A remote's stall deadline ([`Remote::stall_deadline`]) and backoff
//!   (`stalled_until`): pushed when its requests in flight go from none to
//!   some (while any stay in flight the deadline only moves later: each
//!   answer moves it on) and when its backoff starts. At most one entry
//!   per remote is live ([`Remote::timer`]).
//! - A core's gets and seeks: one entry for each at its deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use hyper_core::CoreKey;

use super::core_access::CoreAccess;
use super::remote::Remote;
use super::{Event, PeerId, Replicator};
use crate::error::Error;
use crate::messages::{Body, Cancel, Message};

/// What a timer entry may find due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The remote of a peer for a core: its stall deadline or the end of
    /// its backoff.
    Remote(PeerId, CoreKey),
    /// A get or seek of a core past its deadline.
    Asks(CoreKey),
}

/// The timer entries, earliest first.
#[derive(Default)]
pub(super) struct Timers(BinaryHeap<Reverse<(Instant, Timer)>>);

impl Timers {
    /// Adds an entry at `at`.
    pub fn push(&mut self, at: Instant, timer: Timer) {
        self.0.push(Reverse((at, timer)));
    }

    /// The earliest entry's time.
    pub fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next()? > now {
            return None;
        }
        self.0.pop().map(|Reverse((_, timer))| timer)
    }
}

impl Remote {
    /// Puts this remote (of `peer` for `key`) on `timers` at `at`, unless
    /// it has an entry there already (which is no later than its due time:
    /// see the module doc).
    pub(super) fn arm(&mut self, timers: &mut Timers, at: Instant, peer: PeerId, key: CoreKey) {
        if !std::mem::replace(&mut self.timer, true) {
            timers.push(at, Timer::Remote(peer, key));
        }
    }
}

impl<C: CoreAccess> Replicator<C> {
    /// When [`Replicator::handle_timeout`] should next be called: at once
    /// (the latest time passed in) if cores waiting for room on a peer
    /// have it. It may be early (nothing is due then); it is never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(clock) = self.clock
            && self.starved_due()
        {
            return Some(clock);
        }
        self.timers.next()
    }

    /// Runs what is due at `now`: stalled peers lose their requests, gets
    /// past their timeout fail. Visits only the timers due, however many
    /// cores and peers there are.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = Some(now);
        let mut touched = Vec::new();
        let mut dropped = Vec::new();
        let mut ended = Vec::new();
        let mut expired = Vec::new();
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Remote(peer, key) => {
                    if self.remote_due(now, peer, key, &mut dropped) {
                        touched.push(key);
                    }
                }
                Timer::Asks(key) => {
                    let Some(local) = self.cores.get_mut(&key) else {
                        continue;
                    };
                    for (handle, asked) in local.expire_gets(now) {
                        self.events.push_back(Event::Failed {
                            handle,
                            key,
                            error: Error::Timeout,
                        });
                        ended.extend(asked.map(|range| (key, range)));
                        expired.push(key);
                    }
                }
            }
        }
        for (peer, key, request) in dropped {
            // Received proofs built on a cancelled request cannot verify.
            if let Some(local) = self.cores.get_mut(&key) {
                let mut failed = local.drop_received_dependents(peer, request);
                while let Some(d) = failed.pop() {
                    failed.extend(local.drop_received_dependents(peer, d));
                }
            }
        }
        for (key, range) in ended {
            self.unwant(key, range);
        }
        touched.extend(self.withdraw_ended_seeks(expired));
        for key in touched {
            self.schedule(now, key);
        }
        self.drain_starved(now);
    }

    /// `peer`'s remote for `key` has a timer due at `now`: its backoff
    /// ends, or it stalled (its requests are cancelled, to be asked of
    /// others, and it backs off; the cancelled ones go to `dropped`). Arms
    /// its next timer. Whether the core is to be scheduled.
    fn remote_due(
        &mut self,
        now: Instant,
        peer: PeerId,
        key: CoreKey,
        dropped: &mut Vec<(PeerId, CoreKey, u64)>,
    ) -> bool {
        let (timeout, backoff) = (self.config.stall_timeout, self.config.stall_backoff);
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let answered = p.last_answer;
        let Some(remote) = p.remotes.get_mut(&key) else {
            return false;
        };
        remote.timer = false;
        let mut touched = false;
        if remote.stalled_until.is_some_and(|t| t <= now) {
            remote.stalled_until = None;
            touched = true;
        }
        if remote
            .stall_deadline(timeout, answered)
            .is_some_and(|d| d <= now)
        {
            let mut moved = Vec::new();
            remote.provides.clear();
            for (request, kind) in remote.inflight.drain() {
                moved.push(kind);
                dropped.push((peer, key, request));
                self.transmits.push_back((
                    peer,
                    Message {
                        channel: remote.local_channel,
                        body: Some(Body::Cancel(Cancel { request })),
                    },
                ));
            }
            remote.stalled_until = Some(now + backoff);
            if let Some(local) = self.cores.get_mut(&key) {
                local.requeue_inflight(moved);
            }
            touched = true;
        }
        let next = remote.stalled_until.into_iter();
        if let Some(at) = next.chain(remote.stall_deadline(timeout, answered)).min() {
            remote.arm(&mut self.timers, at, peer, key);
        }
        touched
    }
}
