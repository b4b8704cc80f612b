//! hyper-swarm: finding and reaching peers with no server.
//!
//! - [`Node`]: one Kademlia DHT node as a pure state machine (no sockets, no
//!   clock), with the routing table ([`RoutingTable`]), iterative lookups
//!   ([`Lookup`]), records and values it stores for others, write tokens,
//!   per-source limits and the reachability check that decides whether it
//!   serves others.
//! - [`Swarm`]: join topics and get authenticated QUIC connections to the
//!   peers found. Two discovery sources hand peer candidates to one
//!   connection manager: the DHT (announce, look up, hole punching, relays)
//!   and the local link (multicast DNS-SD, on by default, off with
//!   [`SwarmConfig::local`]; no bootstrap node needed). Every candidate is
//!   only a hint: the QUIC handshake proves the key. DHT records also name
//!   a peer's LAN addresses so that two peers behind one NAT meet over the
//!   LAN. An identity per topic ([`Swarm::join_with`],
//!   [`SwarmConfig::identity_per_topic`]) keeps holders from linking a
//!   peer's topics by its key. Connect by key ([`Swarm::listen`], [`Swarm::join_peer`]), named
//!   application streams beside replication ([`Swarm::open_stream`]),
//!   lifecycle ([`Swarm::destroy`], [`Swarm::suspend`], [`Swarm::resume`],
//!   [`Swarm::flush`]) and status ([`Swarm::status`],
//!   [`Swarm::peer_status`], [`Swarm::stats`]). When this host's addresses
//!   change (polled every 2 s) or the swarm resumes, connections stranded
//!   on a lost address are closed, the DHT re-learns its public address
//!   and NAT ([`Dht::network_changed`]) and every topic announces again.
//! - The wire format of DHT datagrams is `proto/dht.proto`.

mod announced;
mod codec;
mod dht;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod id;
mod kbucket;
mod limits;
mod lookup;
pub mod messages;
mod node;
mod node_types;
mod punch;
mod query;
mod quic;
mod records;
mod relay;
mod serve;
mod signing;
pub mod sim;
mod swarm;

pub use codec::{DecodeError, MAX_PACKET};
pub use codec::{address as wire_address, encode as encode_packet, socket_addr as socket_address};
pub use dht::{Dht, IncomingConnect, Status};
pub use error::{Error, Result};
pub use handshake::{Attempt, Ephemeral, Keys};
pub use id::{Distance, NodeId};
pub use kbucket::{Contact, Insert, K, MAX_PER_PREFIX, RoutingTable};
pub use limits::Prefix;
pub use lookup::{Lookup, LookupState, PARALLELISM};
pub use messages::{Body, Holepunch, MutableValue, NatKind, PeerRecord, Reply};
pub use node::{
    Config, ConnectToken, Event, Node, QueryId, RateLimit, Reachability, RequestError, RequestId,
    Transmit,
};
pub use punch::PUNCH_TIMEOUT;
pub use query::{FoundRecord, QueryKind, QueryOutcome};
pub use quic::{QuicError, QuicStream};
pub use records::Limits;
pub use signing::{immutable_target, mutable_target, sign_mutable, sign_record, sign_unannounce};
pub use swarm::{
    AppStream, Family, FamilyCounts, Firewall, JoinOptions, Path, PathCounts, PeerConnection,
    PeerStatus, Swarm, SwarmConfig, SwarmEvent, SwarmStats, TopicStatus, peer_topic,
    topic_identity,
};
