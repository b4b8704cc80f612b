//! What a [`Replicator`] can tell about its state without changing it:
//! counts, what peers hold and want, whether a core is up to date.

use std::ops::Range;

use hyper_core::CoreKey;

use super::core_access::CoreAccess;
use super::remote::Transfer;
use super::{PeerId, Replicator};

impl<C: CoreAccess> Replicator<C> {
    /// The ranges of `key` that `peer` asked to hear about (`Want` minus
    /// `Unwant`): what this side tells it of as blocks arrive.
    pub fn peer_wants(&self, peer: PeerId, key: &CoreKey) -> Vec<Range<u64>> {
        self.peers
            .get(&peer)
            .and_then(|p| p.remotes.get(key))
            .map(|r| r.wants.iter().collect())
            .unwrap_or_default()
    }

    /// A human-readable dump of the replication state of `key` (requests,
    /// downloads, what each peer claims), for debugging.
    pub fn describe(&self, key: &CoreKey) -> String {
        let Some(local) = self.cores.get(key) else {
            return "not replicated".into();
        };
        let mut out = format!(
            "status {:?} upgrade {:?} requested {:?} retry {:?} storing {} received {} downloads {:?}\n",
            local.status(),
            local.upgrade,
            local.requested,
            local.retry,
            local.storing.is_some(),
            local.received.values().map(Vec::len).sum::<usize>(),
            local
                .downloads
                .values()
                .map(|d| (d.start, d.end, d.live, d.cursor, d.complete))
                .collect::<Vec<_>>(),
        );
        for (id, p) in &self.peers {
            if let Some(r) = p.remotes.get(key) {
                out += &format!(
                    "  peer {id:?}: paired {} synced {} fork {} length {} up {} refused {:?} stalled {:?} inflight {:?} have {:?}\n",
                    r.paired,
                    r.synced,
                    r.fork,
                    r.length,
                    r.uploading,
                    r.upgrade_refused,
                    r.stalled_until,
                    r.inflight,
                    r.have.iter().collect::<Vec<_>>()
                );
            }
        }
        out
    }

    /// Whether `peer`'s send budget is used up ([`Replicator::set_send_budget`]):
    /// what it asked for and announcements to it wait until the driver says
    /// there is room again.
    pub fn congested(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.budget == 0)
    }

    /// Requests this side has in flight to peers, all together (at most
    /// [`Config::max_inflight_per_peer`](super::Config::max_inflight_per_peer)
    /// per peer), and the most to one peer.
    pub fn inflight_requests(&self) -> (usize, usize) {
        let counts = self
            .peers
            .values()
            .map(|p| p.inflight.load(std::sync::atomic::Ordering::Relaxed));
        (counts.clone().sum(), counts.max().unwrap_or(0))
    }

    /// Requests and `Want`s queued to serve, all peers together.
    pub fn queued_requests(&self) -> usize {
        self.peers
            .values()
            .map(|p| p.serve_queue.len() + p.want_queue.len())
            .sum()
    }

    /// `Open`s held for cores not opened here, all peers together.
    pub fn held_opens(&self) -> usize {
        self.peers
            .values()
            .map(|p| p.channels.pending_opens())
            .sum()
    }

    /// The discovery keys of the `Open`s held for cores not opened here,
    /// all peers together (each once).
    pub fn held_discovery_keys(&self) -> Vec<hyper_core::DiscoveryKey> {
        let held: std::collections::BTreeSet<_> = self
            .peers
            .values()
            .flat_map(|p| p.channels.held())
            .copied()
            .collect();
        held.into_iter().collect()
    }

    /// What moved with each peer for `key` and what each peer says it
    /// holds: (peer, transfer, signed length, contiguous length), for peers
    /// that told their state.
    pub fn peer_stats(&self, key: &CoreKey) -> Vec<(PeerId, Transfer, u64, u64)> {
        self.peers
            .iter()
            .filter_map(|(id, p)| p.remotes.get(key).map(|r| (*id, r)))
            .filter(|(_, r)| r.synced)
            .map(|(id, r)| (id, r.transfer, r.length, r.contiguous_length()))
            .collect()
    }

    /// Whether `key` is as long here as the connected peers know of: some
    /// peer told its state, none is ahead, and no upgrade is in flight.
    pub fn up_to_date(&self, key: &CoreKey) -> bool {
        let Some(local) = self.cores.get(key) else {
            return false;
        };
        let status = local.status();
        let mut synced = self
            .peers
            .values()
            .filter_map(|p| p.remotes.get(key))
            .filter(|r| r.paired && r.synced)
            .peekable();
        synced.peek().is_some()
            && local.upgrade.is_none()
            && synced.all(|r| !r.ahead_of(status.fork, status.length))
    }

    /// How many peers have `key`'s channel open and have told their state.
    pub fn synced_peers(&self, key: &CoreKey) -> usize {
        self.peers
            .values()
            .filter_map(|p| p.remotes.get(key))
            .filter(|r| r.paired && r.synced)
            .count()
    }

    /// Whether `peer` has any channel paired (proved a core key).
    pub fn any_paired(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.channels.any_paired())
    }
}
