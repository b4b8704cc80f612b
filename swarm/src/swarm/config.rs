//! How a swarm runs and what it does for a topic.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
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
    /// DHT nodes to start from, of either family: the IPv4 ones bootstrap
    /// the swarm's IPv4 DHT node, the IPv6 ones its IPv6 node (an
    /// IPv4-mapped IPv6 address counts as IPv4). A family with none runs
    /// no DHT node.
    pub bootstrap: Vec<SocketAddr>,
    /// Run a DHT node on IPv4 (if [`SwarmConfig::bootstrap`] names an IPv4
    /// node). On by default; off restricts the DHT to IPv6.
    pub ipv4: bool,
    /// Run a DHT node on IPv6 (if [`SwarmConfig::bootstrap`] names an IPv6
    /// node and this host can bind an IPv6 socket). On by default; off
    /// restricts the DHT to IPv4.
    pub ipv6: bool,
    /// Where the IPv4 DHT socket binds (`0.0.0.0:0` by default).
    pub listen_v4: SocketAddrV4,
    /// Where the IPv6 DHT socket binds (`[::]:0` by default; IPv6 only).
    pub listen_v6: SocketAddrV6,
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
    /// Defaults around `keypair`: both address families (a DHT node on a
    /// random port for each family `bootstrap` names), 64 peers, no
    /// firewall, the DHT and local discovery both on.
    pub fn new(keypair: KeyPair, bootstrap: Vec<SocketAddr>) -> Self {
        SwarmConfig {
            keypair,
            bootstrap,
            ipv4: true,
            ipv6: true,
            listen_v4: super::families::any_v4(),
            listen_v6: super::families::any_v6(),
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
