//! What a UI can poll: each topic's state, each peer's connection (address,
//! path, topics, bytes moved) and the swarm's counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper_core::PublicKey;

use super::families::Family;
use super::peers::Path;
use super::{Swarm, lock};

/// One joined topic, as [`Swarm::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    /// The topic.
    pub topic: [u8; 32],
    /// Announced (and accepting) under it.
    pub server: bool,
    /// Looking it up and dialling the peers found.
    pub client: bool,
    /// Announced on the DHT and looked up there at least once since the
    /// last join or resume (always `true` with the DHT off).
    pub flushed: bool,
    /// The families whose DHT nodes hold its announcement (as the last
    /// announcement on each went; IPv4 first).
    pub announced_on: Vec<Family>,
    /// Announced on the local link now.
    pub local_announced: bool,
    /// Announcements of it heard on the local link.
    pub local_heard: usize,
    /// Peers connected through it.
    pub peers: Vec<PublicKey>,
}

/// One live connection, as [`Swarm::peer_status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The key the peer proved.
    pub public_key: PublicKey,
    /// The address the connection talks to (the relay's, if relayed);
    /// IPv4 written as such.
    pub address: SocketAddr,
    /// The family of `address`: for a peer found on the DHT, the family
    /// its record was found on.
    pub family: Family,
    /// Direct, relayed or local.
    pub path: Path,
    /// Whether this side dialled.
    pub initiator: bool,
    /// The topics it was found or accepted through (none for a peer that
    /// dialled the listening endpoint, which names no topic).
    pub topics: Vec<[u8; 32]>,
    /// UDP payload bytes sent on the connection so far.
    pub bytes_sent: u64,
    /// UDP payload bytes received on the connection so far.
    pub bytes_received: u64,
}

/// Counts per way of reaching a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCounts {
    /// Hole punched (or straight to a public peer).
    pub direct: u64,
    /// Through a relay.
    pub relay: u64,
    /// Over the local network.
    pub local: u64,
}

/// Counts per address family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Over IPv4.
    pub ipv4: u64,
    /// Over IPv6.
    pub ipv6: u64,
}

/// The swarm's counters since it started ([`Swarm::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Connection attempts this side started, by the path tried.
    pub tried: PathCounts,
    /// Connections kept (dialled or accepted), by path.
    pub made: PathCounts,
    /// Connections kept, by the family of the peer's address.
    pub made_by_family: FamilyCounts,
    /// Hole-punching rounds run (either side).
    pub punches: u64,
    /// Hole-punching rounds that got no path.
    pub punch_failures: u64,
    /// Connections accepted from peers that dialled this side.
    pub accepted: u64,
    /// Times this host's addresses changed (each made every topic
    /// announce again).
    pub address_changes: u64,
}

/// The live counters behind [`SwarmStats`].
#[derive(Default)]
pub(super) struct Counters {
    tried: [AtomicU64; 3],
    made: [AtomicU64; 3],
    made_by_family: [AtomicU64; 2],
    punches: AtomicU64,
    punch_failures: AtomicU64,
    accepted: AtomicU64,
    address_changes: AtomicU64,
}

fn slot(path: Path) -> usize {
    match path {
        Path::Direct => 0,
        Path::Relay => 1,
        Path::Local => 2,
    }
}

fn counts(array: &[AtomicU64; 3]) -> PathCounts {
    let [direct, relay, local] = array;
    PathCounts {
        direct: direct.load(Ordering::Relaxed),
        relay: relay.load(Ordering::Relaxed),
        local: local.load(Ordering::Relaxed),
    }
}

impl Counters {
    pub(super) fn tried(&self, path: Path) {
        if let Some(c) = self.tried.get(slot(path)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn made(&self, path: Path, initiator: bool, family: Family) {
        if let Some(c) = self.made.get(slot(path)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let [ipv4, ipv6] = &self.made_by_family;
        match family {
            Family::V4 => ipv4.fetch_add(1, Ordering::Relaxed),
            Family::V6 => ipv6.fetch_add(1, Ordering::Relaxed),
        };
        if !initiator {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One punching round ran; `ok` whether it got a path.
    pub(super) fn punched(&self, ok: bool) {
        self.punches.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.punch_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This host's addresses changed.
    pub(super) fn moved(&self) {
        self.address_changes.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SwarmStats {
        SwarmStats {
            tried: counts(&self.tried),
            made: counts(&self.made),
            made_by_family: {
                let [ipv4, ipv6] = &self.made_by_family;
                FamilyCounts {
                    ipv4: ipv4.load(Ordering::Relaxed),
                    ipv6: ipv6.load(Ordering::Relaxed),
                }
            },
            punches: self.punches.load(Ordering::Relaxed),
            punch_failures: self.punch_failures.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            address_changes: self.address_changes.load(Ordering::Relaxed),
        }
    }
}

impl Swarm {
    /// The topics joined now (peers joined by key included, under their
    /// [`peer_topic`](super::peer_topic)).
    pub fn topics(&self) -> Vec<[u8; 32]> {
        lock(&self.inner.topics).keys().copied().collect()
    }

    /// The state of `topic`, if joined.
    pub fn status(&self, topic: &[u8; 32]) -> Option<TopicStatus> {
        let (server, client, flushed, local_announced, announced_on) = {
            let topics = lock(&self.inner.topics);
            let t = topics.get(topic)?;
            let flushed = *t.flushed.borrow();
            (
                t.server,
                t.client,
                flushed,
                t.local_announced,
                t.announced_on.clone(),
            )
        };
        let peers = lock(&self.inner.peers)
            .iter()
            .filter(|(_, live)| live.topics.contains(topic))
            .map(|((_, remote), _)| *remote)
            .collect();
        Some(TopicStatus {
            topic: *topic,
            server,
            client,
            flushed,
            announced_on,
            local_announced,
            local_heard: self.local_heard(topic),
            peers,
        })
    }

    /// Every live connection.
    pub fn peer_status(&self) -> Vec<PeerStatus> {
        lock(&self.inner.peers)
            .iter()
            .map(|((_, remote), live)| {
                let stats = live.connection.stats();
                let address = live.address();
                PeerStatus {
                    public_key: *remote,
                    address,
                    family: Family::of(&address),
                    path: live.path,
                    initiator: live.initiator_key != *remote,
                    topics: live.topics.iter().copied().collect(),
                    bytes_sent: stats.udp_tx.bytes,
                    bytes_received: stats.udp_rx.bytes,
                }
            })
            .collect()
    }

    /// Notes which families' DHT nodes hold `topic`'s announcement now.
    pub(super) fn announced_on(&self, topic: &[u8; 32], families: Vec<Family>) {
        if let Some(t) = lock(&self.inner.topics).get_mut(topic) {
            t.announced_on = families;
        }
    }

    /// The counters since the swarm started.
    pub fn stats(&self) -> SwarmStats {
        self.inner.counters.snapshot()
    }
}
