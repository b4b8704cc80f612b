//! [`Local`]: one local core's replication state: what the application
//! asked for (gets, downloads), which blocks are requested from which peer,
//! and the proofs waiting to be stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::time::Instant;

use hyper_core::Proof;

use super::core_access::{CoreAccess, CoreStatus};
use super::remote::{Inflight, Remote};
use super::{BatchId, Handle, PeerId};
use crate::ranges::RangeSet;

/// How far one pick scans past blocks it cannot use before giving up.
const PICK_SCAN: usize = 4096;

pub(super) struct Get {
    pub index: u64,
    pub deadline: Instant,
    /// `Want` was sent for it to peers that did not claim it.
    pub asked: bool,
}

/// A [`Replicator::seek`](super::Replicator::seek) waiting for a peer's
/// seek proof.
pub(super) struct Seek {
    pub bytes: u64,
    pub deadline: Instant,
    /// Its request is in flight (or its proof waits to be stored).
    pub asked: bool,
    /// Peers that answered it `NoData`: not asked again.
    pub refused: BTreeSet<PeerId>,
}

pub(super) struct Download {
    pub start: u64,
    pub end: Option<u64>,
    pub live: bool,
    /// Every block below it (from `start`) is stored, requested, or was
    /// skipped because the peer picking lacked it.
    pub cursor: u64,
    /// Every block of the range below it is stored.
    pub complete: u64,
}

impl Download {
    /// The range this download covers now, for a core of `length`.
    pub fn range(&self, length: u64) -> std::ops::Range<u64> {
        self.start..self.end.map_or(length, |e| e.min(length))
    }
}

/// A verified-later proof and what it answers.
pub(super) struct Received {
    /// The request it answers.
    pub id: u64,
    /// The request whose proof this one's builds on, if any.
    pub depends_on: Option<u64>,
    pub proof: Proof,
    pub block: Option<u64>,
    pub upgrade: bool,
    /// The seek it answers.
    pub seek: Option<Handle>,
}

/// What an outstanding store batch holds.
pub(super) struct Batch {
    pub peer: PeerId,
    /// The requests it answers.
    pub ids: Vec<u64>,
    pub blocks: Vec<u64>,
    /// The size of each of `blocks`, in bytes.
    pub sizes: Vec<u64>,
    pub upgrade: bool,
    /// The seeks it answers, with the position of each one's proof.
    pub seeks: Vec<(usize, Handle)>,
}

pub(super) struct Local<C> {
    pub core: C,
    status: CoreStatus,
    /// Served only to peers that open it with a valid capability; never
    /// opened first (see `Replicator::serve_core`).
    pub passive: bool,
    /// Blocks requested from a peer, in flight or waiting to be stored.
    pub requested: HashMap<u64, PeerId>,
    /// Blocks to ask for again (a peer had not got them or went away).
    pub retry: BTreeSet<u64>,
    /// The peer an upgrade is requested from (in flight or being stored).
    pub upgrade: Option<PeerId>,
    pub gets: BTreeMap<Handle, Get>,
    pub seeks: BTreeMap<Handle, Seek>,
    pub downloads: BTreeMap<Handle, Download>,
    /// Proofs waiting for a store batch, per sender.
    pub received: BTreeMap<PeerId, Vec<Received>>,
    pub storing: Option<(BatchId, Batch)>,
    /// The (fork, length) last announced to peers.
    pub announced: (u64, u64),
}

impl<C: CoreAccess> Local<C> {
    pub fn new(core: C, status: CoreStatus) -> Self {
        Local {
            core,
            status,
            passive: false,
            requested: HashMap::new(),
            retry: BTreeSet::new(),
            upgrade: None,
            gets: BTreeMap::new(),
            seeks: BTreeMap::new(),
            downloads: BTreeMap::new(),
            received: BTreeMap::new(),
            storing: None,
            announced: (status.fork, status.length),
        }
    }

    pub fn status(&self) -> CoreStatus {
        self.status
    }

    /// Re-reads the core's state; after a fork change every download scans
    /// again from its start.
    pub fn refresh_status(&mut self) {
        let Ok(fresh) = self.core.status() else {
            return;
        };
        if fresh.fork != self.status.fork {
            for d in self.downloads.values_mut() {
                d.cursor = d.start;
                d.complete = d.start;
            }
            self.retry.clear();
        }
        self.status = fresh;
    }

    /// Whether the application wants anything of this core.
    pub fn has_demand(&self) -> bool {
        !self.gets.is_empty() || !self.downloads.is_empty()
    }

    pub fn handles(&self) -> Vec<Handle> {
        self.gets
            .keys()
            .chain(self.seeks.keys())
            .chain(self.downloads.keys())
            .copied()
            .collect()
    }

    pub fn add_get(&mut self, handle: Handle, index: u64, deadline: Instant) {
        self.gets.insert(
            handle,
            Get {
                index,
                deadline,
                asked: false,
            },
        );
    }

    pub fn add_seek(&mut self, handle: Handle, bytes: u64, deadline: Instant) {
        self.seeks.insert(
            handle,
            Seek {
                bytes,
                deadline,
                asked: false,
                refused: BTreeSet::new(),
            },
        );
    }

    /// The next seek to ask a peer for: its handle, its byte offset and
    /// the peers that refused it.
    pub fn next_seek(&self) -> Option<(Handle, u64, BTreeSet<PeerId>)> {
        self.seeks
            .iter()
            .find(|(_, s)| !s.asked)
            .map(|(h, s)| (*h, s.bytes, s.refused.clone()))
    }

    /// The seek `handle` is no longer being answered: ask again.
    pub fn unask_seek(&mut self, handle: Handle) {
        if let Some(s) = self.seeks.get_mut(&handle) {
            s.asked = false;
        }
    }

    pub fn add_download(&mut self, handle: Handle, start: u64, end: Option<u64>, live: bool) {
        self.downloads.insert(
            handle,
            Download {
                start,
                end,
                live,
                cursor: start,
                complete: start,
            },
        );
    }

    /// Ends the get, seek or download `handle`; the range peers were
    /// asked to tell about for it (`Want`), if any.
    pub fn cancel(&mut self, handle: Handle) -> Option<Range<u64>> {
        if self.seeks.remove(&handle).is_some() {
            return None;
        }
        if let Some(get) = self.gets.remove(&handle) {
            return get.asked.then(|| get.index..get.index.saturating_add(1));
        }
        self.downloads
            .remove(&handle)
            .map(|d| d.start..d.end.unwrap_or(u64::MAX))
    }

    /// The parts of `range` that no remaining download or asked get wants:
    /// what peers can be told to stop reporting (`Unwant`).
    pub fn unwanted(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let still = self
            .downloads
            .values()
            .map(|d| d.start..d.end.unwrap_or(u64::MAX))
            .chain(
                self.gets
                    .values()
                    .filter(|g| g.asked)
                    .map(|g| g.index..g.index.saturating_add(1)),
            );
        let mut parts = RangeSet::new(usize::MAX);
        let mut ok = parts.insert(range).is_ok();
        for wanted in still {
            ok &= parts.remove(wanted).is_ok();
        }
        if ok {
            parts.iter().collect()
        } else {
            Vec::new()
        }
    }

    /// Requests in flight to a peer that went away or stalled: ask again.
    pub fn requeue_inflight(&mut self, inflight: impl IntoIterator<Item = Inflight>) {
        for item in inflight {
            match item {
                Inflight::Block { index, .. } => {
                    self.requested.remove(&index);
                    self.retry.insert(index);
                }
                Inflight::Upgrade { .. } => self.upgrade = None,
                Inflight::Seek { handle, .. } => {
                    // A seek holds the upgrade slot (it may upgrade).
                    self.upgrade = None;
                    self.unask_seek(handle);
                }
            }
        }
    }

    /// A peer went away: its requests move to others; what it sent and is
    /// not stored yet is dropped (unverified, and its sender is gone).
    pub fn forget_peer(&mut self, peer: PeerId, mut remote: Remote) {
        self.requeue_inflight(remote.inflight.drain().into_iter().map(|(_, kind)| kind));
        for r in self.received.remove(&peer).unwrap_or_default() {
            self.requeue_received(&r);
        }
        if self.upgrade == Some(peer) && self.storing.as_ref().is_none_or(|(_, b)| !b.upgrade) {
            self.upgrade = None;
        }
    }

    fn requeue_received(&mut self, r: &Received) {
        if let Some(index) = r.block {
            self.requested.remove(&index);
            self.retry.insert(index);
        }
        if r.upgrade {
            self.upgrade = None;
        }
        if let Some(handle) = r.seek {
            self.unask_seek(handle);
        }
    }

    /// A proof answered a request: keep it for the next store batch, unless
    /// it is for an older fork than the local one (then ask again, and
    /// return the request id so its dependents are dropped too).
    pub fn receive(&mut self, peer: PeerId, r: Received) -> Option<u64> {
        if r.proof.fork < self.status.fork {
            self.requeue_received(&r);
            return Some(r.id);
        }
        self.received.entry(peer).or_default().push(r);
        None
    }

    /// Drops the received proofs of `peer` that depend on request `id`;
    /// returns their request ids.
    pub fn drop_received_dependents(&mut self, peer: PeerId, id: u64) -> Vec<u64> {
        let Some(list) = self.received.get_mut(&peer) else {
            return Vec::new();
        };
        let (dropped, kept): (Vec<Received>, Vec<Received>) = std::mem::take(list)
            .into_iter()
            .partition(|r| r.depends_on == Some(id));
        *list = kept;
        dropped
            .iter()
            .map(|r| {
                self.requeue_received(r);
                r.id
            })
            .collect()
    }

    /// The next store batch, if none is outstanding: the proofs of one
    /// peer, at most `max`.
    /// Stale proofs (an older fork) are dropped; their ids go to `stale`.
    pub fn next_batch(
        &mut self,
        id: BatchId,
        max: usize,
        stale: &mut Vec<(PeerId, u64)>,
    ) -> Option<(PeerId, Vec<Proof>)> {
        if self.storing.is_some() {
            return None;
        }
        let fork = self.status.fork;
        let peer = *self.received.keys().next()?;
        let mut all = self.received.remove(&peer)?;
        if all.len() > max {
            let rest = all.split_off(max);
            self.received.insert(peer, rest);
        }
        let mut batch = Batch {
            peer,
            ids: Vec::with_capacity(all.len()),
            blocks: Vec::new(),
            sizes: Vec::new(),
            upgrade: false,
            seeks: Vec::new(),
        };
        let mut proofs = Vec::with_capacity(all.len());
        for r in all {
            if r.proof.fork < fork {
                self.requeue_received(&r);
                stale.push((peer, r.id));
                continue;
            }
            batch.ids.push(r.id);
            if let (Some(index), Some(b)) = (r.block, r.proof.block.as_ref()) {
                batch.blocks.push(index);
                batch.sizes.push(b.value.len() as u64);
            }
            batch.upgrade |= r.upgrade;
            if let Some(handle) = r.seek {
                batch.seeks.push((proofs.len(), handle));
            }
            proofs.push(r.proof);
        }
        if proofs.is_empty() {
            return None;
        }
        self.storing = Some((id, batch));
        Some((peer, proofs))
    }

    pub fn take_batch(&mut self, id: BatchId) -> Option<Batch> {
        match &self.storing {
            Some((b, _)) if *b == id => self.storing.take().map(|(_, batch)| batch),
            _ => None,
        }
    }

    /// A batch was stored.
    pub fn stored(&mut self, batch: &Batch) {
        for index in &batch.blocks {
            self.requested.remove(index);
        }
        if batch.upgrade {
            self.upgrade = None;
        }
    }

    /// A batch failed: ask again for what it held.
    pub fn requeue_batch(&mut self, batch: &Batch) {
        for &index in &batch.blocks {
            self.requested.remove(&index);
            self.retry.insert(index);
        }
        if batch.upgrade {
            self.upgrade = None;
        }
        for &(_, handle) in &batch.seeks {
            self.unask_seek(handle);
        }
    }

    /// Gets and seeks past their deadline, each with the range peers were
    /// asked about for it.
    pub fn expire_gets(&mut self, now: Instant) -> Vec<(Handle, Option<Range<u64>>)> {
        let expired: Vec<Handle> = self
            .gets
            .iter()
            .map(|(h, g)| (h, g.deadline))
            .chain(self.seeks.iter().map(|(h, s)| (h, s.deadline)))
            .filter(|(_, deadline)| *deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        expired.into_iter().map(|h| (h, self.cancel(h))).collect()
    }

    fn wanted(&self, index: u64, have: &RangeSet) -> bool {
        index < self.status.length
            && !self.requested.contains_key(&index)
            && have.contains(index)
            && !self.core.has(index)
    }

    /// The next block to request from a peer that holds `have`: a get
    /// first, then a block to ask again, then the downloads in order.
    pub fn pick(&mut self, have: &RangeSet) -> Option<u64> {
        if let Some(index) = self
            .gets
            .values()
            .map(|g| g.index)
            .find(|&i| self.wanted(i, have))
        {
            return Some(index);
        }
        if !self.retry.is_empty() {
            let length = self.status.length;
            let core = &self.core;
            self.retry.retain(|&i| i < length && !core.has(i));
            if let Some(index) = self.retry.iter().copied().find(|&i| self.wanted(i, have)) {
                self.retry.remove(&index);
                return Some(index);
            }
        }
        let length = self.status.length;
        let handles: Vec<Handle> = self.downloads.keys().copied().collect();
        for handle in handles {
            let Some(d) = self.downloads.get(&handle) else {
                continue;
            };
            let range = d.range(length);
            let mut at = d.cursor.max(range.start);
            let mut cursor_free = true;
            for _ in 0..PICK_SCAN {
                let Some(x) = self.core.next_missing(at..range.end) else {
                    break;
                };
                if self.requested.contains_key(&x) {
                    at = x + 1;
                } else if have.contains(x) {
                    if cursor_free && let Some(d) = self.downloads.get_mut(&handle) {
                        d.cursor = x + 1;
                    }
                    return Some(x);
                } else {
                    // This peer lacks x; others may have it: the cursor
                    // stays, the scan jumps to what the peer has.
                    if cursor_free && let Some(d) = self.downloads.get_mut(&handle) {
                        d.cursor = x;
                    }
                    cursor_free = false;
                    match have.next_present(x + 1) {
                        Some(next) if next < range.end => at = next,
                        _ => break,
                    }
                }
                if cursor_free && let Some(d) = self.downloads.get_mut(&handle) {
                    d.cursor = at;
                }
            }
        }
        None
    }

    /// Whether download `d` is complete. `peers_ahead` says whether any
    /// peer could still upgrade the local state.
    pub fn download_done(&mut self, handle: Handle, peers_ahead: bool, any_synced: bool) -> bool {
        let length = self.status.length;
        let idle = self.requested.is_empty() && self.received.is_empty() && self.retry.is_empty();
        let upgrade_idle = self.upgrade.is_none();
        let Some(d) = self.downloads.get_mut(&handle) else {
            return false;
        };
        if d.live {
            return false;
        }
        let range = d.range(length);
        let all_known = match d.end {
            Some(end) => end <= length,
            None => any_synced && !peers_ahead && upgrade_idle,
        };
        if !all_known {
            return false;
        }
        let missing = self
            .core
            .next_missing(d.complete.max(range.start)..range.end);
        if let Some(first) = missing {
            d.complete = first;
        }
        let complete = missing.is_none();
        if !complete && idle {
            // Something below the cursor went missing (cleared, or a fork
            // change raced a scan): scan again.
            d.cursor = d.start;
        }
        complete
    }
}
