//! How a swarm runs and what it does for a topic.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_core::{KeyPair, PublicKey};

use crate::node::Reachability;

/// Refuses a peer: called with the peer's key and, when known, its address;
/// `true` refuses.
pub type Firewall = Arc<dyn Fn(&PublicKey, Option<SocketAddr>) -> bool + Send + Sync>;

/// How a swarm runs.
#[derive(Clone)]
pub struct SwarmConfig {
    /// This peer's identity: what its connections prove.
    pub keypair: KeyPair,
    /// DHT nodes to start from.
    pub bootstrap: Vec<SocketAddr>,
    /// Where the DHT socket binds.
    pub listen: SocketAddr,
    /// Connections at most; further peers are refused or not dialled.
    pub max_peers: usize,
    /// Refuses peers by key or address.
    pub firewall: Option<Firewall>,
    /// Whether the DHT node serves others (see [`Reachability`]).
    pub reachability: Reachability,
    /// Whether this node also relays for others.
    pub relay: bool,
    /// Find and be found by peers on the local link (multicast DNS-SD),
    /// with no bootstrap node. On by default.
    pub local: bool,
    /// Announce and look topics up on the DHT. On by default; off, the
    /// swarm finds peers only on the local link.
    pub dht: bool,
    /// UDP port of the listening QUIC endpoint local peers dial (0: any).
    pub listen_port: u16,
    /// Give every topic joined with [`Swarm::join`](super::Swarm::join) its
    /// own identity, derived from [`SwarmConfig::keypair`]'s seed and the
    /// topic with a keyed hash (the same across restarts): the topic's DHT
    /// announcements and the connections made for it prove that identity,
    /// so the nodes holding two topics' records cannot tell they are one
    /// peer's. Off by default. Such topics are not announced or dialled on
    /// the local link (the listening endpoint proves `keypair`).
    pub identity_per_topic: bool,
}

impl SwarmConfig {
    /// Defaults around `keypair`: a random port (IPv6 if the first
    /// bootstrap node is, else IPv4), 64 peers, no firewall, the DHT and
    /// local discovery both on.
    pub fn new(keypair: KeyPair, bootstrap: Vec<SocketAddr>) -> Self {
        let listen = match bootstrap.first() {
            Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        SwarmConfig {
            keypair,
            bootstrap,
            listen,
            max_peers: 64,
            firewall: None,
            reachability: Reachability::Auto,
            relay: false,
            local: true,
            dht: true,
            listen_port: 0,
            identity_per_topic: false,
        }
    }
}

/// What [`Swarm::join`](super::Swarm::join) does for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce this peer under the topic and accept connections.
    pub server: bool,
    /// Look the topic up and connect to the peers found.
    pub client: bool,
}
