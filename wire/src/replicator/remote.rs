//! [`Remote`]: what this side knows of one peer for one core.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Handle;
use crate::ranges::RangeSet;

/// What a request in flight asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inflight {
    /// A block and its proof, asked for on this side's fork.
    Block {
        /// The block.
        index: u64,
        /// The fork the request named.
        fork: u64,
        /// Sibling levels asked for: the proof may carry no more.
        nodes: u64,
        /// The earlier request to the same peer whose proof supplies the
        /// node this one's proof stops at (see [`Remote::provides`]).
        depends_on: Option<u64>,
    },
    /// An upgrade to the peer's signed length.
    Upgrade {
        /// The manifest was asked for too: the proof may carry it.
        manifest: bool,
    },
    /// The leaf holding a byte offset with its path to a root, and an
    /// upgrade to the peer's signed length if it is longer (the seek is
    /// anchored to its state, which this side must then trust).
    Seek {
        /// The seek it answers.
        handle: Handle,
        /// The byte offset.
        bytes: u64,
        /// The manifest was asked for too.
        manifest: bool,
    },
}

/// Requests in flight to one peer for one core, by id, counted as well in
/// the total of all the peer's cores (`Peer::inflight`, bounded by
/// [`Config::max_inflight_per_peer`](super::Config::max_inflight_per_peer)).
/// Every way in or out goes through here, dropping the map included, so the
/// total cannot drift from the maps.
#[derive(Debug)]
pub(super) struct InflightMap {
    map: HashMap<u64, Inflight>,
    total: Arc<AtomicUsize>,
}

impl InflightMap {
    /// An empty map counting into `total`.
    pub fn new(total: Arc<AtomicUsize>) -> Self {
        InflightMap {
            map: HashMap::new(),
            total,
        }
    }

    pub fn insert(&mut self, id: u64, kind: Inflight) {
        if self.map.insert(id, kind).is_none() {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn remove(&mut self, id: &u64) -> Option<Inflight> {
        let kind = self.map.remove(id);
        if kind.is_some() {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        kind
    }

    /// Takes every request out.
    pub fn drain(&mut self) -> Vec<(u64, Inflight)> {
        self.total.fetch_sub(self.map.len(), Ordering::Relaxed);
        self.map.drain().collect()
    }

    pub fn get(&self, id: &u64) -> Option<&Inflight> {
        self.map.get(id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &u64> + '_ {
        self.map.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Inflight)> + '_ {
        self.map.iter()
    }
}

impl Drop for InflightMap {
    fn drop(&mut self) {
        self.total.fetch_sub(self.map.len(), Ordering::Relaxed);
    }
}

/// Blocks and bytes that moved between this side and one peer for one
/// core (block bytes only, proofs aside).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Blocks sent to the peer.
    pub blocks_up: u64,
    /// Their bytes.
    pub bytes_up: u64,
    /// Blocks received from the peer, verified and stored.
    pub blocks_down: u64,
    /// Their bytes.
    pub bytes_down: u64,
}

impl std::ops::AddAssign for Transfer {
    fn add_assign(&mut self, other: Transfer) {
        self.blocks_up += other.blocks_up;
        self.bytes_up += other.bytes_up;
        self.blocks_down += other.blocks_down;
        self.bytes_down += other.bytes_down;
    }
}

/// One peer's state for one core, on one connection.
pub(super) struct Remote {
    /// This side's channel number for the core.
    pub local_channel: u32,
    /// Both sides have the channel open.
    pub paired: bool,
    /// A `Sync` has arrived.
    pub synced: bool,
    pub fork: u64,
    pub length: u64,
    pub can_upgrade: bool,
    pub uploading: bool,
    /// Blocks the peer said it holds.
    pub have: RangeSet,
    /// Ranges the peer asked to hear about (`Want`).
    pub wants: RangeSet,
    /// Requests in flight, by id.
    pub inflight: InflightMap,
    /// Tree nodes that block proofs requested from this peer (in flight or
    /// received, not yet stored) will establish, with the request that
    /// brings each. A later request to the same peer may stop its proof at
    /// such a node: the peer answers in order and its proofs are stored in
    /// order, so the node is known by then. If the earlier request fails,
    /// the later ones are dropped with it (`Replicator::fail_requests`).
    pub provides: HashMap<u64, u64>,
    /// The last answer (or the first request after a quiet spell).
    pub last_progress: Option<Instant>,
    /// No new requests until then.
    pub stalled_until: Option<Instant>,
    /// The peer answered an upgrade request at this (fork, length) with
    /// `NoData`: do not ask again until it announces something newer.
    pub upgrade_refused: Option<(u64, u64)>,
    /// Announcements were left out while the peer did not read: send its
    /// state afresh once it does (the core is in `Peer::missed` then).
    pub missed: bool,
    /// It has an entry on the replicator's timer heap (see
    /// [`super::timers`]).
    pub timer: bool,
    /// What moved with this peer for this core.
    pub transfer: Transfer,
    /// It was reported as added (`Event::PeerAdded`).
    pub added: bool,
    /// A seek asked of it ended (timed out) unanswered, and it has answered
    /// nothing since: other peers are asked seeks first.
    pub seek_withdrawn: bool,
}

impl Remote {
    /// A remote on this side's channel `local_channel`, its requests in
    /// flight counted into the peer's `inflight` total.
    pub fn new(local_channel: u32, max_ranges: usize, inflight: Arc<AtomicUsize>) -> Self {
        Remote {
            local_channel,
            paired: false,
            synced: false,
            fork: 0,
            length: 0,
            can_upgrade: false,
            uploading: false,
            have: RangeSet::new(max_ranges),
            wants: RangeSet::new(max_ranges),
            inflight: InflightMap::new(inflight),
            provides: HashMap::new(),
            last_progress: None,
            stalled_until: None,
            upgrade_refused: None,
            missed: false,
            timer: false,
            transfer: Transfer::default(),
            added: false,
            seek_withdrawn: false,
        }
    }

    /// The peer may be sent new requests at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        self.paired && self.synced && self.uploading && self.stalled_until.is_none_or(|t| now >= t)
    }

    /// The peer can upgrade a local state of (`fork`, `length`).
    pub fn ahead_of(&self, fork: u64, length: u64) -> bool {
        self.synced
            && self.can_upgrade
            && (self.fork > fork || (self.fork == fork && self.length > length))
            && self.upgrade_refused != Some((self.fork, self.length))
    }

    /// How many blocks from 0 on the peer says it holds.
    pub fn contiguous_length(&self) -> u64 {
        self.have
            .iter()
            .next()
            .filter(|r| r.start == 0)
            .map_or(0, |r| r.end)
    }

    /// The request an in-flight block request depends on.
    pub fn dependency(&self, id: u64) -> Option<u64> {
        match self.inflight.get(&id) {
            Some(Inflight::Block { depends_on, .. }) => *depends_on,
            _ => None,
        }
    }

    /// When the peer counts as stalled for this core, if it has requests
    /// in flight: `timeout` after the later of this core's last answer (or
    /// first request after a quiet spell) and `peer_answer`, the peer's last
    /// answer on any core. An honest peer answers in order, so with many
    /// cores' requests queued on it an answer for this core may be long in
    /// coming while it answers the others: that is not a stall.
    pub fn stall_deadline(
        &self,
        timeout: Duration,
        peer_answer: Option<Instant>,
    ) -> Option<Instant> {
        if self.inflight.is_empty() {
            return None;
        }
        self.last_progress.max(peer_answer).map(|t| t + timeout)
    }
}
