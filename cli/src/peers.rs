//! What a seeder or a clone tells `hyper-cli status` about each peer: who it is, the
//! way it is connected (TCP from `--listen`, or QUIC through the swarm:
//! direct, relayed or local) and the blocks and bytes moved with it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper_core::{PublicKey, Store};
use hyper_swarm::Swarm;
use hyper_wire::{Replication, Transfer};
use serde::{Deserialize, Serialize};

/// One peer of the holder, as `hyper-cli status` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The identity it proved.
    pub identity: String,
    /// The address the connection talks to (the relay's, if relayed).
    pub address: String,
    /// `ipv4` or `ipv6`: the family of `address` (for a swarm peer found
    /// on the DHT, the family its record was found on).
    #[serde(default)]
    pub family: String,
    /// `tcp` (a connection to `--listen`) or `quic` (through the swarm).
    pub transport: String,
    /// `direct` (TCP; or QUIC straight to the peer, hole punched or not:
    /// the swarm does not tell those apart), `relay` or `local`.
    pub path: String,
    /// Bytes of blocks sent to it, over every core served.
    pub bytes_up: u64,
    /// Bytes of blocks received from it, verified and stored.
    pub bytes_down: u64,
    /// Blocks sent to it.
    pub blocks_up: u64,
    /// Blocks received from it.
    pub blocks_down: u64,
}

/// One topic the holder's swarm joined, as `hyper-cli status` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicJson {
    /// The topic (a core's discovery key), hex.
    pub topic: String,
    /// Announced under it (and accepting).
    pub server: bool,
    /// Looking it up and dialling who announces it.
    pub client: bool,
    /// Announced and looked up on the DHT at least once.
    pub flushed: bool,
    /// The families whose DHT nodes hold its announcement.
    #[serde(default)]
    pub announced_on: Vec<String>,
    /// Peers connected through it.
    pub peers: usize,
}

/// Connection counts by path.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathJson {
    /// Hole punched, or straight to a public peer.
    pub direct: u64,
    /// Through a relay.
    pub relay: u64,
    /// Over the local network.
    pub local: u64,
}

impl From<hyper_swarm::PathCounts> for PathJson {
    fn from(c: hyper_swarm::PathCounts) -> Self {
        PathJson {
            direct: c.direct,
            relay: c.relay,
            local: c.local,
        }
    }
}

/// Connection counts by address family.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyJson {
    /// Over IPv4.
    pub ipv4: u64,
    /// Over IPv6.
    pub ipv6: u64,
}

/// The holder's swarm: its topics and counters since it started.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SwarmJson {
    /// The address families it runs a DHT node on (`ipv4`, `ipv6`): those
    /// its bootstrap nodes name.
    #[serde(default)]
    pub families: Vec<String>,
    /// Each topic joined.
    pub topics: Vec<TopicJson>,
    /// Connection attempts started, by path.
    pub tried: PathJson,
    /// Connections kept (dialled or accepted), by path.
    pub made: PathJson,
    /// Connections kept, by the family of the peer's address.
    #[serde(default)]
    pub made_by_family: FamilyJson,
    /// Hole-punching rounds run.
    pub punches: u64,
    /// Of them, rounds that found no path.
    pub punch_failures: u64,
    /// Connections accepted from peers that dialled this side.
    pub accepted: u64,
    /// Times this host's addresses changed (each made every topic announce
    /// again).
    pub address_changes: u64,
}

impl SwarmJson {
    /// What `swarm` reports now.
    pub fn of(swarm: &Swarm) -> SwarmJson {
        let topics = swarm
            .topics()
            .iter()
            .filter_map(|t| swarm.status(t))
            .map(|t| TopicJson {
                topic: t.topic.iter().map(|b| format!("{b:02x}")).collect(),
                server: t.server,
                client: t.client,
                flushed: t.flushed,
                announced_on: t.announced_on.iter().map(|f| f.as_str().into()).collect(),
                peers: t.peers.len(),
            })
            .collect();
        let stats = swarm.stats();
        SwarmJson {
            families: swarm.families().iter().map(|f| f.as_str().into()).collect(),
            topics,
            tried: stats.tried.into(),
            made: stats.made.into(),
            made_by_family: FamilyJson {
                ipv4: stats.made_by_family.ipv4,
                ipv6: stats.made_by_family.ipv6,
            },
            punches: stats.punches,
            punch_failures: stats.punch_failures,
            accepted: stats.accepted,
            address_changes: stats.address_changes,
        }
    }
}

/// What a holder's peers and swarm are when asked.
#[derive(Debug, Clone, Default)]
pub struct LiveStatus {
    /// Its peers now.
    pub peers: Vec<PeerStatus>,
    /// Its swarm, if it runs one.
    pub swarm: Option<SwarmJson>,
}

/// The peers as they are when asked; made by the process holding the store.
pub type PeersNow = Arc<dyn Fn() -> LiveStatus + Send + Sync>;

/// The TCP peers connected to a seeder's `--listen` now: address, identity.
pub type TcpPeers = Arc<Mutex<Vec<(SocketAddr, PublicKey)>>>;

/// One connection: identity, address, transport, path.
type Link = (PublicKey, SocketAddr, &'static str, &'static str);

/// Joins the connections with what moved with each identity (a peer that
/// has not opened a core yet moved nothing); TCP peers first.
fn join(links: &[Link], moved: &HashMap<PublicKey, Transfer>) -> Vec<PeerStatus> {
    links
        .iter()
        .map(|(identity, address, transport, path)| {
            let t = moved.get(identity).copied().unwrap_or_default();
            PeerStatus {
                identity: identity.to_string(),
                address: address.to_string(),
                family: hyper_swarm::Family::of(address).as_str().into(),
                transport: (*transport).into(),
                path: (*path).into(),
                bytes_up: t.bytes_up,
                bytes_down: t.bytes_down,
                blocks_up: t.blocks_up,
                blocks_down: t.blocks_down,
            }
        })
        .collect()
}

/// What a holder's [`PeersNow`] reads, once it replicates.
#[derive(Clone)]
pub struct Serving {
    /// The runtime the replication's driver runs on.
    pub runtime: tokio::runtime::Handle,
    /// The store served (its cores are the ones counted).
    pub store: Store,
    /// The replication serving it.
    pub replication: Replication,
    /// Its swarm, if it joined one.
    pub swarm: Option<Swarm>,
}

/// The replication a holder runs now, if any: a seeder sets it once, a
/// clone for each core it clones (a drive's two, one after the other).
pub type ServingNow = Arc<Mutex<Option<Serving>>>;

/// A [`PeersNow`] for a holder (a seeder, a clone): its TCP peers, and
/// while `serving` is set, its swarm's connections and the replication's
/// counts for each core of the store, asked of the replication driver
/// (from the socket's thread).
pub fn live_status(tcp: TcpPeers, serving: ServingNow) -> PeersNow {
    Arc::new(move || {
        let mut links: Vec<Link> = tcp
            .lock()
            .map(|peers| {
                peers
                    .iter()
                    .map(|(a, k)| (*k, *a, "tcp", "direct"))
                    .collect()
            })
            .unwrap_or_default();
        let Some(serving) = serving.lock().ok().and_then(|s| s.clone()) else {
            return LiveStatus {
                peers: join(&links, &HashMap::new()),
                swarm: None,
            };
        };
        if let Some(swarm) = &serving.swarm {
            links.extend(
                swarm
                    .peer_status()
                    .iter()
                    .map(|p| (p.public_key, p.address, "quic", p.path.as_str())),
            );
        }
        let store = &serving.store;
        let cores: Vec<_> = store
            .list()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| store.core(&e.key).ok())
            .collect();
        let moved = serving.runtime.block_on(async {
            let mut moved: HashMap<PublicKey, Transfer> = HashMap::new();
            for core in &cores {
                for p in serving.replication.stats(core).await.peers {
                    *moved.entry(p.remote).or_default() += p.transfer;
                }
            }
            moved
        });
        LiveStatus {
            peers: join(&links, &moved),
            swarm: serving.swarm.as_ref().map(SwarmJson::of),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_gets_what_moved_with_its_identity() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let moved = HashMap::from([(
            b,
            Transfer {
                blocks_up: 3,
                bytes_up: 300,
                blocks_down: 1,
                bytes_down: 10,
            },
        )]);
        let peers = join(
            &[(a, addr, "tcp", "direct"), (b, addr, "quic", "relay")],
            &moved,
        );
        assert_eq!(peers.len(), 2);
        assert_eq!((peers[0].bytes_up, peers[0].blocks_down), (0, 0));
        assert_eq!(peers[1].identity, b.to_string());
        assert_eq!(
            (peers[1].transport.as_str(), peers[1].path.as_str()),
            ("quic", "relay")
        );
        assert_eq!(
            (
                peers[1].bytes_up,
                peers[1].blocks_up,
                peers[1].bytes_down,
                peers[1].blocks_down
            ),
            (300, 3, 10, 1)
        );
    }
}
