//! The fetching side: handling what peers send on a channel, choosing which
//! requests go to which peer, and noticing when gets and downloads are done.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use hyper_core::{CoreKey, NodeRequest, ProofRequest, UpgradeRequest, flat};

use super::core_access::CoreAccess;
use super::local::{Local, Received};
use super::remote::Inflight;
use super::{BatchId, Event, PeerId, ReplicationEvent, Replicator, remote_of};
use crate::convert::{proof_from_data, request_to_wire};
use crate::error::{Error, Result};
use crate::messages::{self, Body};

/// Whether `data` answers what `kind` asked and nothing else: the block
/// asked for with at most the sibling levels asked for, the upgrade, or
/// the seek of the byte offset asked for (with an upgrade or not); the
/// manifest only if asked for; no other part. A part nobody asked for
/// would be verified and stored on the peer's word for what it proves, so
/// it is refused before any of it is looked at.
fn answers(data: &messages::Data, kind: Inflight) -> bool {
    let unasked = data.hash.is_some() || data.seek.is_some();
    match kind {
        Inflight::Seek {
            bytes, manifest, ..
        } => {
            data.hash.is_none()
                && data.block.is_none()
                && data.seek.as_ref().is_some_and(|s| s.bytes == bytes)
                && (manifest || data.manifest.is_empty())
        }
        Inflight::Block { index, nodes, .. } => {
            !unasked
                && data.upgrade.is_none()
                && data.manifest.is_empty()
                && data.block.as_ref().is_some_and(|b| {
                    b.index == index && u64::try_from(b.path_sizes.len()).is_ok_and(|n| n <= nodes)
                })
        }
        Inflight::Upgrade { manifest } => {
            !unasked
                && data.block.is_none()
                && data.upgrade.is_some()
                && (manifest || data.manifest.is_empty())
        }
    }
}

/// The proof a `Data` carries, checked to answer what `kind` asked.
fn received(data: messages::Data, kind: Inflight) -> Result<Received> {
    if !answers(&data, kind) {
        return Err(Error::Malformed(
            "data does not answer its request or carries parts it did not ask for",
        ));
    }
    let id = data.request;
    let proof = proof_from_data(data)?;
    let (block, depends_on, upgrade, seek) = match kind {
        Inflight::Block {
            index, depends_on, ..
        } => (Some(index), depends_on, false, None),
        Inflight::Upgrade { .. } => (None, None, true, None),
        // It held the upgrade slot, whether it upgrades or not.
        Inflight::Seek { handle, .. } => (None, None, true, Some(handle)),
    };
    Ok(Received {
        id,
        depends_on,
        proof,
        block,
        upgrade,
        seek,
    })
}

fn checked_range(start: u64, length: u64) -> Result<std::ops::Range<u64>> {
    let end = start
        .checked_add(length)
        .ok_or(Error::Malformed("range overflows"))?;
    Ok(start..end)
}

impl<C: CoreAccess> Replicator<C> {
    /// A message on a paired channel.
    pub(super) fn on_channel_message(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: u32,
        key: CoreKey,
        body: Body,
    ) -> Result<()> {
        let max_queued = self.config.max_queued_requests;
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        let Some(remote) = p.remotes.get_mut(&key) else {
            return Err(Error::Malformed("channel table out of step"));
        };
        match body {
            Body::Sync(sync) => {
                if sync.fork < remote.fork {
                    return Ok(()); // older news
                }
                if sync.fork > remote.fork {
                    remote.have.clear();
                    remote.length = 0;
                }
                remote.fork = sync.fork;
                remote.length = remote.length.max(sync.length);
                remote.can_upgrade = sync.can_upgrade;
                remote.uploading = sync.uploading;
                remote.synced = true;
                // With blocks, the `Bitfield` that follows tells what it
                // holds: the peer is added then.
                if remote.length == 0 {
                    self.peer_added(peer, key);
                }
            }
            Body::Request(request) => {
                if p.serve_queue.len() + p.want_queue.len() >= max_queued {
                    return Err(Error::TooManyRequests);
                }
                p.serve_queue.push_back((channel, request));
                return Ok(());
            }
            Body::Cancel(cancel) => {
                p.serve_queue
                    .retain(|(c, r)| !(*c == channel && r.id == cancel.request));
                return Ok(());
            }
            Body::Data(data) => {
                let Some(kind) = remote.inflight.remove(&data.request) else {
                    return Ok(()); // cancelled or timed out: late, harmless
                };
                p.last_answer = Some(now);
                remote.last_progress = Some(now);
                remote.seek_withdrawn = false;
                let received = match received(data, kind) {
                    Ok(r) => r,
                    Err(e) => {
                        // The request left `inflight` already: ask again
                        // before the peer is dropped, or its block would
                        // stay "requested" for good.
                        if let Some(local) = self.cores.get_mut(&key) {
                            local.requeue_inflight([kind]);
                        }
                        return Err(e);
                    }
                };
                let stale = self
                    .cores
                    .get_mut(&key)
                    .and_then(|local| local.receive(peer, received));
                match stale {
                    Some(id) => self.fail_requests(peer, key, vec![id]),
                    None => {
                        self.to_flush.insert(key);
                    }
                }
            }
            Body::NoData(no) => {
                let Some(kind) = remote.inflight.remove(&no.request) else {
                    return Ok(());
                };
                p.last_answer = Some(now);
                remote.last_progress = Some(now);
                remote.seek_withdrawn = false;
                match kind {
                    Inflight::Block { index, fork, .. } => {
                        // Refused on the fork it was asked on: the peer
                        // lacks it. (Refused because the peer has moved to
                        // a newer fork says nothing about the block.)
                        if fork == remote.fork {
                            remote.have.remove_coarse(index..index.saturating_add(1));
                        }
                    }
                    Inflight::Upgrade { .. } => {
                        remote.upgrade_refused = Some((remote.fork, remote.length));
                    }
                    Inflight::Seek { .. } => {}
                }
                if let Some(local) = self.cores.get_mut(&key) {
                    if let Inflight::Seek { handle, .. } = kind
                        && let Some(seek) = local.seeks.get_mut(&handle)
                    {
                        // Past its byte length, another fork: not asked again.
                        seek.refused.insert(peer);
                    }
                    local.requeue_inflight([kind]);
                }
                self.fail_requests(peer, key, vec![no.request]);
            }
            Body::Want(want) => {
                let range = checked_range(want.start, want.length)?;
                // Past the bound the peer hears less; it can still ask.
                remote.wants.insert_or_skip(range.clone());
                // Answered (a `Bitfield` of the range) when served, like a
                // request: not while the peer does not read.
                if p.serve_queue.len() + p.want_queue.len() >= max_queued {
                    return Err(Error::TooManyRequests);
                }
                p.want_queue.push_back((channel, range));
                return Ok(());
            }
            Body::Unwant(unwant) => {
                remote
                    .wants
                    .remove_coarse(checked_range(unwant.start, unwant.length)?);
                return Ok(());
            }
            Body::Bitfield(bitfield) => {
                if bitfield.runs.len() > super::serve::RUNS_PER_MESSAGE {
                    return Err(Error::Malformed("bitfield of more than 16,384 runs"));
                }
                let total = bitfield
                    .runs
                    .iter()
                    .try_fold(0u64, |a, r| a.checked_add(*r))
                    .ok_or(Error::Malformed("bitfield overflows"))?;
                let covered = checked_range(bitfield.start, total)?;
                let present = hyper_core::bitfield::Bitfield::set_ranges_of_runs(
                    bitfield.start,
                    &bitfield.runs,
                )
                .ok_or(Error::Malformed("bitfield overflows"))?;
                remote.have.remove_coarse(covered);
                for range in present {
                    // Past the bound, believe less of what the peer holds.
                    remote.have.insert_or_skip(range);
                }
                if remote.synced {
                    self.peer_added(peer, key);
                }
            }
            Body::Range(range) => {
                let r = checked_range(range.start, range.length)?;
                if range.drop {
                    remote.have.remove_coarse(r);
                } else {
                    remote.have.insert_or_skip(r);
                }
            }
            Body::Extension(ext) => {
                self.events.push_back(Event::Extension {
                    peer,
                    key,
                    name: ext.name,
                    message: ext.message,
                });
                return Ok(());
            }
            Body::Open(_) | Body::Close(_) => {}
        }
        self.schedule(now, key);
        self.check_done(key);
        Ok(())
    }

    /// Reports `peer` as added for `key` (once per pairing), with what it
    /// said it holds.
    fn peer_added(&mut self, peer: PeerId, key: CoreKey) {
        let reporting = self.reporting;
        let Some(remote) = remote_of(&mut self.peers, peer, &key) else {
            return;
        };
        if std::mem::replace(&mut remote.added, true) || !reporting {
            return;
        }
        self.events
            .push_back(Event::Report(ReplicationEvent::PeerAdded {
                key,
                peer,
                length: remote.length,
                contiguous_length: remote.contiguous_length(),
            }));
    }

    /// The request for the core's one upgrade slot, if it is free: a
    /// waiting seek (answered from a peer's state as long as this side's or
    /// longer, with the upgrade to that state), else an upgrade from the
    /// peer furthest ahead. The slot is taken.
    fn slot_request(
        &mut self,
        now: Instant,
        key: CoreKey,
    ) -> Option<(PeerId, ProofRequest, Inflight)> {
        let local = self.cores.get_mut(&key)?;
        if local.upgrade.is_some() {
            return None;
        }
        let status = local.status();
        let (max, draining) = (self.config.max_inflight_per_peer, self.draining);
        let remotes = || {
            self.peers
                .iter()
                .filter(|(_, p)| p.room_for(max, &key, draining) > 0)
                .filter_map(|(id, p)| p.remotes.get(&key).map(|r| (*id, r)))
                .filter(|(_, r)| r.usable(now))
        };
        let upgrade = Some(UpgradeRequest {
            start: status.length,
            fork: status.fork,
        });
        let manifest = !status.has_manifest;
        let seek = local.next_seek().and_then(|(handle, bytes, refused)| {
            remotes()
                .filter(|(id, r)| {
                    r.fork == status.fork && r.length >= status.length && !refused.contains(id)
                })
                // A peer that left a seek unanswered comes last.
                .max_by_key(|(_, r)| (!r.seek_withdrawn, r.length))
                .map(|(id, _)| (id, handle, bytes))
        });
        let (id, request, kind) = match seek {
            Some((id, handle, bytes)) => {
                if let Some(s) = local.seeks.get_mut(&handle) {
                    s.asked = true;
                }
                let request = ProofRequest {
                    seek: Some(bytes),
                    upgrade,
                    manifest,
                    ..ProofRequest::default()
                };
                let kind = Inflight::Seek {
                    handle,
                    bytes,
                    manifest,
                };
                (id, request, kind)
            }
            None => {
                let (id, _) = remotes()
                    .filter(|(_, r)| r.ahead_of(status.fork, status.length))
                    .max_by_key(|(_, r)| (r.fork, r.length))?;
                let request = ProofRequest {
                    upgrade,
                    manifest,
                    ..ProofRequest::default()
                };
                (id, request, Inflight::Upgrade { manifest })
            }
        };
        local.upgrade = Some(id);
        Some((id, request, kind))
    }

    /// Sends `request` to `peer` for `key` as a new request in flight.
    fn send_request(
        &mut self,
        now: Instant,
        peer: PeerId,
        key: CoreKey,
        fork: u64,
        request: &ProofRequest,
        kind: Inflight,
    ) {
        self.next_request += 1;
        let request_id = self.next_request;
        let Some(remote) = remote_of(&mut self.peers, peer, &key) else {
            return;
        };
        if remote.inflight.is_empty() {
            remote.last_progress = Some(now);
            let stall = now + self.config.stall_timeout;
            remote.arm(&mut self.timers, stall, peer, key);
        }
        remote.inflight.insert(request_id, kind);
        let channel = remote.local_channel;
        self.transmits.push_back((
            peer,
            messages::Message {
                channel,
                body: Some(Body::Request(request_to_wire(request_id, fork, request))),
            },
        ));
    }

    /// Sends what requests `key` can use now: a seek or an upgrade (see
    /// [`Replicator::slot_request`]), then blocks to peers that have them,
    /// least loaded peer first, up to the in-flight bound per peer.
    pub(super) fn schedule(&mut self, now: Instant, key: CoreKey) {
        self.clock = Some(now);
        let max_inflight = self.config.max_inflight;
        let max_per_peer = self.config.max_inflight_per_peer;
        let stall_timeout = self.config.stall_timeout;
        let draining = self.draining;
        let Some(status) = self.cores.get(&key).map(Local::status) else {
            return;
        };
        match self.slot_request(now, key) {
            Some((peer, request, kind)) => {
                self.send_request(now, peer, key, status.fork, &request, kind);
            }
            None => self.starve_slot(now, key),
        }
        let Some(local) = self.cores.get_mut(&key) else {
            return;
        };
        if !status.has_manifest || !local.has_demand() {
            return;
        }
        let mut order: Vec<(usize, PeerId)> = self
            .peers
            .iter()
            .filter_map(|(id, p)| p.remotes.get(&key).map(|r| (r, *id)))
            .filter(|(r, _)| r.usable(now) && r.fork == status.fork)
            .map(|(r, id)| (r.inflight.len(), id))
            .collect();
        order.sort_unstable();
        for (_, id) in order {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let room = peer.room_for(max_per_peer, &key, draining);
            let Some(remote) = peer.remotes.get_mut(&key) else {
                continue;
            };
            let mut picks = Vec::new();
            while remote.inflight.len() + picks.len() < max_inflight && picks.len() < room {
                let Some(index) = local.pick(&remote.have) else {
                    break;
                };
                // Counted as requested now so the next pick skips it.
                local.requested.insert(index, id);
                picks.push(index);
            }
            if picks.len() == room && remote.inflight.len() + picks.len() < max_inflight {
                // Out of room on the peer, not of blocks to ask for (as far
                // as is known): wait in line for answers to free room.
                peer.starve(key);
            }
            let Some(remote) = peer.remotes.get_mut(&key) else {
                continue;
            };
            if picks.is_empty() {
                continue;
            }
            // Where a node an earlier request to this peer brings stops each
            // path: the tree walk need not look above it.
            let bounded: Vec<(u64, u64)> = picks
                .iter()
                .map(|&index| (index, provided_level(&remote.provides, index)))
                .collect();
            let Ok(stored_levels) = local.core.missing_nodes(&bounded) else {
                for index in picks {
                    local.requested.remove(&index);
                    local.retry.insert(index);
                }
                continue;
            };
            if remote.inflight.is_empty() {
                remote.last_progress = Some(now);
                remote.arm(&mut self.timers, now + stall_timeout, id, key);
            }
            for (index, levels) in picks.into_iter().zip(stored_levels) {
                self.next_request += 1;
                let request_id = self.next_request;
                // Stop at a node an earlier request to this peer brings, if
                // that is lower than the nearest stored node or root. Walked
                // again here (not taken from the bound above): the picks
                // before this one in the batch added to `provides`.
                let mut cur = flat::leaf(index);
                let mut nodes = 0;
                let mut depends_on = None;
                while nodes < levels {
                    if let Some(&provider) = remote.provides.get(&cur) {
                        depends_on = Some(provider);
                        break;
                    }
                    cur = flat::parent(cur);
                    nodes += 1;
                }
                // What this proof establishes: the path below the stop and
                // the siblings along it.
                let mut at = flat::leaf(index);
                for _ in 0..nodes {
                    remote.provides.entry(at).or_insert(request_id);
                    remote
                        .provides
                        .entry(flat::sibling(at))
                        .or_insert(request_id);
                    at = flat::parent(at);
                }
                let request = ProofRequest {
                    block: Some(NodeRequest { index, nodes }),
                    ..ProofRequest::default()
                };
                remote.inflight.insert(
                    request_id,
                    Inflight::Block {
                        index,
                        fork: status.fork,
                        nodes,
                        depends_on,
                    },
                );
                self.transmits.push_back((
                    id,
                    messages::Message {
                        channel: remote.local_channel,
                        body: Some(Body::Request(request_to_wire(
                            request_id,
                            status.fork,
                            &request,
                        ))),
                    },
                ));
            }
        }
        self.ask_for_gets(key);
    }

    /// The core's upgrade slot is free and wanted (a seek waits, or a
    /// peer is ahead) but only peers without room could take it: `key`
    /// waits in their lines.
    fn starve_slot(&mut self, now: Instant, key: CoreKey) {
        let max = self.config.max_inflight_per_peer;
        let draining = self.draining;
        let Some(local) = self.cores.get(&key) else {
            return;
        };
        if local.upgrade.is_some() {
            return;
        }
        let status = local.status();
        let seeking = local.next_seek().is_some();
        for p in self.peers.values_mut() {
            if p.room_for(max, &key, draining) > 0 {
                continue;
            }
            let wanted = p.remotes.get(&key).is_some_and(|r| {
                r.usable(now)
                    && ((seeking && r.fork == status.fork && r.length >= status.length)
                        || r.ahead_of(status.fork, status.length))
            });
            if wanted {
                p.starve(key);
            }
        }
    }

    /// A get whose block no connected peer claims: ask every peer to say
    /// whether it has it (`Want` of that block; the answer is a `Bitfield`).
    fn ask_for_gets(&mut self, key: CoreKey) {
        let Some(local) = self.cores.get_mut(&key) else {
            return;
        };
        let mut ask = Vec::new();
        for get in local.gets.values_mut() {
            if get.asked || local.requested.contains_key(&get.index) {
                continue;
            }
            let claimed = self
                .peers
                .values()
                .filter_map(|p| p.remotes.get(&key))
                .any(|r| r.have.contains(get.index));
            if !claimed {
                get.asked = true;
                ask.push(get.index);
            }
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for index in ask {
            for &id in &ids {
                self.send(
                    id,
                    &key,
                    Body::Want(messages::Want {
                        start: index,
                        length: 1,
                    }),
                );
            }
        }
    }

    /// Yields `Got` and `Downloaded` for what is complete.
    pub(super) fn check_done(&mut self, key: CoreKey) {
        let Some(local) = self.cores.get_mut(&key) else {
            return;
        };
        let status = local.status();
        let got: Vec<_> = local
            .gets
            .iter()
            .filter(|(_, g)| local.core.has(g.index))
            .map(|(h, g)| (*h, g.index))
            .collect();
        let mut asked = Vec::new();
        for (handle, index) in got {
            asked.extend(local.cancel(handle));
            self.events.push_back(Event::Got { handle, key, index });
        }
        let remotes: Vec<_> = self
            .peers
            .values()
            .filter_map(|p| p.remotes.get(&key))
            .filter(|r| r.paired && r.synced)
            .collect();
        let any_synced = !remotes.is_empty();
        let ahead = remotes
            .iter()
            .any(|r| r.ahead_of(status.fork, status.length));
        let handles: Vec<_> = local.downloads.keys().copied().collect();
        let mut done = Vec::new();
        for handle in handles {
            if local.download_done(handle, ahead, any_synced)
                && let Some(d) = local.cancel(handle)
            {
                done.push((handle, d));
            }
        }
        for (handle, range) in done {
            self.events.push_back(Event::Downloaded { handle, key });
            asked.push(range);
        }
        for range in asked {
            self.unwant(key, range);
        }
    }

    /// Hands out the next store batch of each core that has received
    /// proofs and no batch outstanding (the cores in `to_flush`, not
    /// every core). A core whose batch is outstanding leaves the set until
    /// it is stored; one that still holds proofs without a batch (all of
    /// one sender's were stale) stays for the next call.
    pub(super) fn flush_batches(&mut self) {
        let max = self.config.max_batch;
        let mut stale = Vec::new();
        let mut kept = BTreeSet::new();
        for key in std::mem::take(&mut self.to_flush) {
            let Some(local) = self.cores.get_mut(&key) else {
                continue;
            };
            let id = BatchId(self.next_batch + 1);
            let mut dropped = Vec::new();
            if let Some((peer, proofs)) = local.next_batch(id, max, &mut dropped) {
                self.next_batch += 1;
                self.batches.insert(id, key);
                self.events.push_back(Event::Store {
                    batch: id,
                    key,
                    peer,
                    proofs,
                });
            } else if local.storing.is_none() && !local.received.is_empty() {
                kept.insert(key);
            }
            stale.extend(dropped.into_iter().map(|(peer, id)| (key, peer, id)));
        }
        self.to_flush = kept;
        for (key, peer, id) in stale {
            self.fail_requests(peer, key, vec![id]);
        }
    }

    /// Requests to `peer` for `key` that will never be stored (refused,
    /// stale, cancelled): the requests whose proofs build on theirs cannot
    /// verify, so they are dropped too (cancelled if in flight, discarded
    /// if received) and their blocks asked for again, transitively.
    pub(super) fn fail_requests(&mut self, peer: PeerId, key: CoreKey, mut failed: Vec<u64>) {
        let Some(local) = self.cores.get_mut(&key) else {
            return;
        };
        let Some(remote) = remote_of(&mut self.peers, peer, &key) else {
            return;
        };
        while let Some(id) = failed.pop() {
            remote.provides.retain(|_, provider| *provider != id);
            let dependents: Vec<u64> = remote
                .inflight
                .keys()
                .copied()
                .filter(|d| remote.dependency(*d) == Some(id))
                .collect();
            for d in dependents {
                if let Some(kind) = remote.inflight.remove(&d) {
                    local.requeue_inflight([kind]);
                    self.transmits.push_back((
                        peer,
                        messages::Message {
                            channel: remote.local_channel,
                            body: Some(Body::Cancel(messages::Cancel { request: d })),
                        },
                    ));
                    failed.push(d);
                }
            }
            failed.extend(local.drop_received_dependents(peer, id));
        }
    }

    /// A batch was stored: the nodes its requests promised are in the tree.
    pub(super) fn forget_provided(&mut self, peer: PeerId, key: CoreKey, ids: &[u64]) {
        if let Some(remote) = remote_of(&mut self.peers, peer, &key) {
            let ids: std::collections::HashSet<u64> = ids.iter().copied().collect();
            remote
                .provides
                .retain(|_, provider| !ids.contains(provider));
        }
    }
}

/// One more than the level of the lowest node on block `index`'s path
/// that an earlier request brings (`provides`), the bound of the stored
/// tree walk that decides how many nodes to ask for; `u64::MAX` when no
/// request brings one.
fn provided_level(provides: &HashMap<u64, u64>, index: u64) -> u64 {
    let mut cur = flat::leaf(index);
    for level in 0..62 {
        if provides.contains_key(&cur) {
            return level + 1;
        }
        cur = flat::parent(cur);
    }
    u64::MAX
}
