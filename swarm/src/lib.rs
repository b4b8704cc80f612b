//! hyper-swarm: finding and reaching peers with no server.
//!
//! Built in steps (see the swarm issue). Present now, pure and tested: the
//! Kademlia routing table ([`RoutingTable`], k-buckets over 256-bit ids) and
//! the iterative lookup as a state machine ([`Lookup`]) in the style of
//! libp2p's `ClosestPeersIter`. The UDP transport, records, hole punching
//! and QUIC come next.

mod id;
mod kbucket;
mod lookup;

pub use id::{Distance, NodeId};
pub use kbucket::{Insert, K, RoutingTable};
pub use lookup::{Lookup, LookupState, PARALLELISM};
