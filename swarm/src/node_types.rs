//! A node's configuration and what goes in and out of it: the settings
//! ([`Config`]), datagrams to send ([`Transmit`]), names of queries and
//! requests, and the events it reports ([`Event`]).

use std::net::SocketAddr;
use std::time::Duration;

use crate::id::NodeId;
use crate::messages::{ErrorCode, Holepunch, Reply};
use crate::query::QueryOutcome;
use crate::records::Limits;

/// Whether this node serves as a DHT node for others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// Find out: claim a node id only after an unsolicited ping arrives
    /// (not behind a NAT or firewall that drops them).
    Auto,
    /// Reachable at the observed address (a bootstrap node): claim an id
    /// as soon as the address is known.
    Public,
    /// Never claim an id: only a client of the DHT.
    Ephemeral,
}

/// Requests from one source IP answered per second, with a burst.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// How a node behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Nodes to start from.
    pub bootstrap: Vec<SocketAddr>,
    /// Whether to serve others (see [`Reachability`]).
    pub reachability: Reachability,
    /// The address others reach this node at, if known up front.
    pub public_address: Option<SocketAddr>,
    /// Whether this node relays for others (tells them in every packet).
    pub relay: bool,
    /// How long to wait for an answer before resending.
    pub request_timeout: Duration,
    /// Resends before a request fails.
    pub retries: u8,
    /// How often to walk toward the own id and a random id to keep the
    /// table fresh.
    pub refresh_interval: Duration,
    /// Storage bounds.
    pub limits: Limits,
    /// Per-source request rate.
    pub rate_limit: RateLimit,
    /// A second port of this node that answers pings (the driver binds
    /// it); told in every ping answer.
    pub observer_port: Option<u16>,
    /// Bytes of answers sent per second at most, to all sources together
    /// (a second's worth may go at once).
    pub answer_bytes_per_second: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootstrap: Vec::new(),
            reachability: Reachability::Auto,
            public_address: None,
            relay: false,
            request_timeout: Duration::from_millis(1000),
            retries: 1,
            refresh_interval: Duration::from_secs(5 * 60),
            limits: Limits::default(),
            rate_limit: RateLimit {
                per_second: 200,
                burst: 400,
            },
            observer_port: None,
            answer_bytes_per_second: 4 << 20,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The whole datagram, kind byte included.
    pub bytes: Vec<u8>,
}

/// Names a query started with [`Node::query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// Names a single request started with [`Node::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Names a forwarded connect request to answer with [`Node::answer_connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectToken {
    pub(crate) holder: SocketAddr,
    pub(crate) tid: u32,
}

impl ConnectToken {
    pub(crate) fn new(holder: SocketAddr, tid: u32) -> Self {
        ConnectToken { holder, tid }
    }
}

/// Why a single request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer after every resend.
    #[error("no answer")]
    Timeout,
    /// The node refused.
    #[error("refused: {0:?}")]
    Refused(ErrorCode),
}

/// What happened.
#[derive(Debug)]
pub enum Event {
    /// A query finished.
    QueryDone {
        /// Which.
        id: QueryId,
        /// What it found and did.
        outcome: QueryOutcome,
    },
    /// A lookup found a record (reported as soon as it arrives).
    Found {
        /// Which query.
        id: QueryId,
        /// The record.
        record: crate::query::FoundRecord,
    },
    /// A single request was answered or failed.
    Response {
        /// Which.
        id: RequestId,
        /// The answer.
        result: Result<Reply, RequestError>,
    },
    /// A client wants to connect (passed on by the node holding this
    /// node's announcement): answer with [`Node::answer_connect`].
    ConnectRequest {
        /// To answer with.
        token: ConnectToken,
        /// The topic the client found this node under.
        topic: [u8; 32],
        /// The client's address as the holder saw it.
        from: Option<SocketAddr>,
        /// The client's details.
        holepunch: Holepunch,
    },
    /// This node proved it can be reached and now serves as a DHT node.
    Reachable {
        /// The id it claimed.
        id: NodeId,
        /// The address it is reached at.
        address: SocketAddr,
    },
}
