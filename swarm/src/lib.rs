//! hyper-swarm: finding and reaching peers with no server.
//!
//! - [`Node`]: one Kademlia DHT node as a pure state machine (no sockets, no
//!   clock), with the routing table ([`RoutingTable`]), iterative lookups
//!   ([`Lookup`]), records and values it stores for others, write tokens,
//!   per-source limits and the reachability check that decides whether it
//!   serves others.
//! - The wire format of DHT datagrams is `proto/dht.proto`.

mod announced;
mod codec;
mod dht;
mod error;
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
pub use id::{Distance, NodeId};
pub use kbucket::{Contact, Insert, K, MAX_PER_PREFIX, RoutingTable};
pub use limits::Prefix;
pub use lookup::{Lookup, LookupState, PARALLELISM};
pub use messages::{Body, Holepunch, MutableValue, NatKind, PeerRecord, Reply};
pub use node::{
    Config, ConnectToken, Event, Node, QueryId, RateLimit, Reachability, RequestError, RequestId,
    Transmit,
};
pub use query::{FoundRecord, QueryKind, QueryOutcome};
pub use quic::{QuicError, QuicStream};
pub use records::Limits;
pub use signing::{immutable_target, mutable_target, sign_mutable, sign_record, sign_unannounce};
pub use swarm::{Firewall, JoinOptions, Path, PeerConnection, Swarm, SwarmConfig, SwarmEvent};
