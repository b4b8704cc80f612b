//! Room for requests on a peer: the per-peer bound on requests in flight
//! ([`Config::max_inflight_per_peer`](super::Config::max_inflight_per_peer))
//! and the line of cores waiting for room, served first come, first served
//! as answers free it.
//!
//! The invariant that keeps a waiting core from waiting for good: a core
//! waits in a peer's line only while that peer has requests in flight (no
//! room), and every call that frees room serves the line
//! ([`Replicator::drain_starved`]); one that takes no time sets
//! [`Replicator::poll_timeout`] due at once, and the timeout serves it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper_core::CoreKey;

use super::{Peer, PeerId, Replicator};
use crate::replicator::core_access::CoreAccess;

impl Peer {
    /// Requests that may still be sent to it before the per-peer bound.
    pub(super) fn room(&self, max: usize) -> usize {
        max.saturating_sub(self.inflight.load(Ordering::Relaxed))
    }

    /// Room for `key`'s requests now: none while other cores wait in line
    /// ahead of it (`draining` is the core being served from the line).
    pub(super) fn room_for(&self, max: usize, key: &CoreKey, draining: Option<CoreKey>) -> usize {
        if !self.starved.is_empty() && draining.as_ref() != Some(key) {
            return 0;
        }
        self.room(max)
    }

    /// Puts `key` in line for room (if not in it already).
    pub(super) fn starve(&mut self, key: CoreKey) {
        if self.starved_set.insert(key) {
            self.starved.push_back(key);
        }
    }

    /// Whether cores in line should be served now: enough room for a
    /// useful batch of requests (while less is free, answers to the
    /// requests in flight are still to come and free more).
    pub(super) fn starved_due(&self, max: usize) -> bool {
        !self.starved.is_empty() && self.room(max) >= drain_chunk(max)
    }
}

/// Room on a peer for which cores waiting in line get served: a sixteenth
/// of the bound (at most 64), so that requests go out in batches (one
/// read of the local tree per batch), not one per answer.
fn drain_chunk(max: usize) -> usize {
    (max / 16).clamp(1, 64)
}

impl<C: CoreAccess> Replicator<C> {
    /// Serves the lines of cores waiting for room, on every peer that has
    /// room for a batch: each core in turn is scheduled, ahead of the
    /// others; one that still finds too little room goes back in line.
    pub(super) fn drain_starved(&mut self, now: Instant) {
        let max = self.config.max_inflight_per_peer;
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.starved_due(max))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            while let Some(p) = self.peers.get_mut(&id).filter(|p| p.starved_due(max)) {
                let Some(key) = p.starved.pop_front() else {
                    break;
                };
                p.starved_set.remove(&key);
                self.draining = Some(key);
                self.schedule(now, key);
                self.draining = None;
            }
        }
    }

    /// Whether some peer's line of waiting cores has room to be served.
    pub(super) fn starved_due(&self) -> bool {
        let max = self.config.max_inflight_per_peer;
        self.peers.values().any(|p| p.starved_due(max))
    }
}
