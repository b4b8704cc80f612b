//! The serving side: answering requests with proofs, and telling peers what
//! this side holds (`Sync`, `Bitfield`, `Range`).

use std::collections::HashMap;

use hyper_core::{CoreKey, Proof, ProofRequest};

use super::core_access::{CoreAccess, CoreStatus};
use super::local::Local;
use super::remote::{Remote, Transfer};
use super::{Event, PeerId, ReplicationEvent, Replicator};
use crate::convert::{data_from_proof, request_from_wire};
use crate::messages::{self, Body, Message};

/// Requests served per [`Replicator::poll_transmit`] refill.
const SERVE_BATCH: usize = 64;
/// Most runs in one `Bitfield` message.
pub(super) const RUNS_PER_MESSAGE: usize = 16_384;

/// The `Sync` describing `status`.
pub(super) fn sync_body(status: &CoreStatus, remote_length: u64, downloading: bool) -> Body {
    Body::Sync(messages::Sync {
        fork: status.fork,
        length: status.length,
        remote_length,
        can_upgrade: status.has_manifest && status.length > 0,
        uploading: true,
        downloading,
    })
}

/// `Bitfield` messages describing which of blocks `range` are stored, at
/// most [`RUNS_PER_MESSAGE`] runs each.
pub(super) fn bitfield_bodies<C: CoreAccess>(core: &C, range: std::ops::Range<u64>) -> Vec<Body> {
    let mut start = range.start;
    let runs = core.stored_runs(range);
    let mut out = Vec::new();
    // Cut after an absent run, so each message starts with a present one.
    for chunk in runs.chunks(RUNS_PER_MESSAGE) {
        out.push(Body::Bitfield(messages::Bitfield {
            start,
            runs: chunk.to_vec(),
        }));
        start = start.saturating_add(chunk.iter().sum::<u64>());
    }
    out
}

/// `Want` for each of the downloads of `local` (a live or open-ended one
/// wants everything from its start).
pub(super) fn want_bodies<C: CoreAccess>(local: &Local<C>) -> Vec<Body> {
    local
        .downloads
        .values()
        .map(|d| {
            let end = d.end.unwrap_or(u64::MAX);
            Body::Want(messages::Want {
                start: d.start,
                length: end.saturating_sub(d.start),
            })
        })
        .collect()
}

/// What a side sends when a channel pairs: its state, its blocks, its wants.
pub(super) fn state_messages<C: CoreAccess>(
    local: &Local<C>,
    remote: &Remote,
    status: &CoreStatus,
) -> Vec<Body> {
    let mut out = vec![sync_body(status, remote.length, local.has_demand())];
    out.extend(bitfield_bodies(&local.core, 0..status.length));
    out.extend(want_bodies(local));
    out
}

/// The local core of this side's channel `channel`.
fn core_of<'a, C>(
    channels: &crate::channels::Channels,
    cores: &'a std::collections::BTreeMap<CoreKey, Local<C>>,
    channel: u32,
) -> Option<&'a Local<C>> {
    channels.key(channel).and_then(|key| cores.get(&key))
}

impl<C: CoreAccess> Replicator<C> {
    /// Serves up to [`SERVE_BATCH`] queued requests per peer (fewer when
    /// its send budget is low): each peer's requests for one core are
    /// answered from one read view.
    pub(super) fn serve_some(&mut self) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id).filter(|p| p.budget > 0) else {
                continue;
            };
            let mut sent = 0usize;
            let mut answers = 0usize;
            // `Want`s one by one while the budget lasts: one `Bitfield`
            // answer can be large (a fragmented core), so at most one goes
            // past the budget.
            let mut wants = 0;
            while wants < SERVE_BATCH
                && sent < peer.budget
                && let Some((channel, range)) = peer.want_queue.pop_front()
            {
                wants += 1;
                let Some(local) = core_of(&peer.channels, &self.cores, channel) else {
                    continue;
                };
                let end = range.end.min(local.status().length);
                if range.start >= end {
                    continue;
                }
                for body in bitfield_bodies(&local.core, range.start..end) {
                    let m = Message {
                        channel,
                        body: Some(body),
                    };
                    sent += prost::Message::encoded_len(&m);
                    self.transmits.push_back((id, m));
                }
            }
            let left = peer.budget.saturating_sub(sent);
            let n = match peer.answer_size {
                _ if left == 0 => 0,
                // Sizes not known yet: one answer tells.
                0 => 1,
                size => (left / size).clamp(1, SERVE_BATCH),
            };
            let n = peer.serve_queue.len().min(n);
            let mut taken: Vec<(u32, messages::Request)> = peer.serve_queue.drain(..n).collect();
            while !taken.is_empty() {
                // The longest run of requests on one channel.
                let channel = taken.first().map(|(c, _)| *c).unwrap_or_default();
                let run = taken.iter().take_while(|(c, _)| *c == channel).count();
                let rest = taken.split_off(run);
                let requests: Vec<messages::Request> = taken.into_iter().map(|(_, r)| r).collect();
                taken = rest;
                let Some(local) = core_of(&peer.channels, &self.cores, channel) else {
                    continue;
                };
                let key = local.core.key();
                let mut moved = Transfer::default();
                for body in answer(local, &requests) {
                    if let Body::Data(messages::Data { block: Some(b), .. }) = &body {
                        let bytes = b.value.len() as u64;
                        moved.blocks_up += 1;
                        moved.bytes_up += bytes;
                        if self.reporting {
                            self.events
                                .push_back(Event::Report(ReplicationEvent::Uploaded {
                                    key,
                                    peer: id,
                                    index: b.index,
                                    bytes,
                                }));
                        }
                    }
                    let m = Message {
                        channel,
                        body: Some(body),
                    };
                    sent += prost::Message::encoded_len(&m);
                    answers += 1;
                    self.transmits.push_back((id, m));
                }
                if let Some(remote) = peer.remotes.get_mut(&key) {
                    remote.transfer += moved;
                }
            }
            if let Some(size) = sent.checked_div(answers) {
                peer.answer_size = size;
            }
            peer.budget = peer.budget.saturating_sub(sent);
        }
    }

    /// Tells peers about a change of the local core: a new length or fork
    /// (`Sync`, and the whole bitfield after a fork change), blocks appended
    /// here, and `stored` blocks fetched from peers (`Range`, to peers that
    /// want them).
    pub(super) fn announce(&mut self, key: CoreKey, stored: &[u64]) {
        let Some(local) = self.cores.get_mut(&key) else {
            return;
        };
        local.refresh_status();
        let status = local.status();
        let (old_fork, old_length) = local.announced;
        let mut broadcast: Vec<Body> = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let changed = (status.fork, status.length) != (old_fork, old_length);
        if changed {
            local.announced = (status.fork, status.length);
            if status.fork != old_fork {
                broadcast.extend(bitfield_bodies(&local.core, 0..status.length));
            } else if status.length > old_length {
                let runs = local.core.stored_runs(old_length..status.length);
                let mut at = old_length;
                for (i, run) in runs.iter().enumerate() {
                    if i % 2 == 0 && *run > 0 {
                        ranges.push((at, *run));
                    }
                    at += run;
                }
            }
        }
        let mut sorted = stored.to_vec();
        sorted.sort_unstable();
        for index in sorted {
            match ranges.last_mut() {
                Some((s, l)) if *s + *l == index => *l += 1,
                Some((s, l)) if index >= *s && index < *s + *l => {}
                _ => ranges.push((index, 1)),
            }
        }
        let demand = local.has_demand();
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let congested = peer.budget == 0;
            let Some(remote) = peer.remotes.get_mut(&key) else {
                continue;
            };
            if !remote.paired {
                continue;
            }
            if congested {
                // It does not read: tell it afresh once it does.
                if changed || !ranges.is_empty() {
                    remote.missed = true;
                    peer.missed.insert(key);
                }
                continue;
            }
            let mut bodies = Vec::new();
            if changed {
                bodies.push(sync_body(&status, remote.length, demand));
            }
            bodies.extend(broadcast.iter().cloned());
            for &(start, length) in &ranges {
                if remote.wants.overlaps(start..start.saturating_add(length)) {
                    bodies.push(Body::Range(messages::Range {
                        drop: false,
                        start,
                        length,
                    }));
                }
            }
            for body in bodies {
                self.send(id, &key, body);
            }
        }
    }

    /// Tells every peer with `key` open that blocks `range` are no longer
    /// held here (`Range` with `drop`), so they ask others for them. A
    /// peer that does not read now gets the whole `Bitfield` once it does.
    pub(super) fn announce_dropped(&mut self, key: CoreKey, range: std::ops::Range<u64>) {
        if range.is_empty() {
            return;
        }
        let body = Body::Range(messages::Range {
            drop: true,
            start: range.start,
            length: range.end - range.start,
        });
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let congested = peer.budget == 0;
            let Some(remote) = peer.remotes.get_mut(&key).filter(|r| r.paired) else {
                continue;
            };
            if congested {
                remote.missed = true;
                peer.missed.insert(key);
                continue;
            }
            self.send(id, &key, body.clone());
        }
    }

    /// Sends `Want` for every download of `key` to every peer.
    pub(super) fn announce_wants(&mut self, key: CoreKey) {
        let Some(local) = self.cores.get(&key) else {
            return;
        };
        let bodies = want_bodies(local);
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            for body in &bodies {
                self.send(id, &key, body.clone());
            }
        }
    }
}

/// What this side builds to answer `request`, if it can at its state:
/// not a block, hash or seek on another fork, a block it lacks, or an
/// upgrade from a length it does not exceed. A seek comes with an upgrade
/// from the requester's length (in case this side is longer); at exactly
/// that length the seek is answered without one, and from a longer one
/// not at all (a proof from this shorter state would not verify there).
fn answerable<C: CoreAccess>(
    local: &Local<C>,
    request: &messages::Request,
) -> Option<ProofRequest> {
    let status = local.status();
    let mut wanted = request_from_wire(request);
    let needs_fork = wanted.block.is_some() || wanted.hash.is_some() || wanted.seek.is_some();
    if needs_fork && request.fork != status.fork {
        return None;
    }
    if let Some(b) = wanted.block
        && !local.core.has(b.index)
    {
        return None;
    }
    if let Some(u) = wanted.upgrade
        && u.fork == status.fork
        && u.start >= status.length
    {
        if wanted.seek.is_some() && u.start == status.length {
            wanted.upgrade = None;
        } else {
            return None;
        }
    }
    Some(wanted)
}

/// The answers to a peer's requests on one channel, in order: a proof, or
/// `NoData` when this side cannot prove it.
fn answer<C: CoreAccess>(local: &Local<C>, requests: &[messages::Request]) -> Vec<Body> {
    let (ids, wanted): (Vec<u64>, Vec<ProofRequest>) = requests
        .iter()
        .filter_map(|r| answerable(local, r).map(|w| (r.id, w)))
        .unzip();
    let mut proofs: HashMap<u64, Proof> = HashMap::new();
    if let Ok(built) = local.core.proofs(&wanted) {
        for (id, proof) in ids.into_iter().zip(built) {
            if let Ok(p) = proof {
                proofs.insert(id, p);
            }
        }
    }
    requests
        .iter()
        .map(|r| match proofs.remove(&r.id) {
            Some(proof) => Body::Data(data_from_proof(r.id, proof)),
            None => Body::NoData(messages::NoData { request: r.id }),
        })
        .collect()
}
