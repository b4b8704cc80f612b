//! The crate's one error type.

use crate::node::RequestError;
use crate::quic::QuicError;

/// What went wrong finding or reaching a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The QUIC connection failed or the peer did not prove its key.
    #[error("QUIC: {0}")]
    Quic(#[from] QuicError),
    /// A DHT request went unanswered or was refused.
    #[error("DHT request: {0}")]
    Request(#[from] RequestError),
    /// The DHT node's task is gone (the swarm was dropped).
    #[error("the DHT node has stopped")]
    Stopped,
    /// No DHT node answered, so this host's public address is unknown:
    /// check the bootstrap addresses.
    #[error("no DHT node answered: check the bootstrap addresses")]
    NoObservers,
    /// This process is already running as many hole punches as it allows
    /// (`MAX_PUNCHES`); try again when one ends.
    #[error("too many hole punches at once")]
    TooManyPunches,
    /// Neither hole punching nor a relay got a path to the peer in time.
    #[error("no path to the peer: hole punching timed out and no relay was offered")]
    Unreachable,
    /// Both peers' NATs map ports per destination and no DHT node offers
    /// relaying: run a node with `--relay`.
    #[error("both peers are behind symmetric NATs and no relay is known")]
    NoRelay,
    /// The peer was refused by the firewall callback, or refused us.
    #[error("refused by a firewall")]
    Firewalled,
    /// The peer answered for a different key than the one announced.
    #[error("the peer proved a different key than it announced")]
    WrongPeer,
    /// The QUIC connection yielded no keying material to bind the
    /// replication's capabilities to.
    #[error("the QUIC connection gave no keying material for the capabilities")]
    NoBinding,
    /// A connect request or answer was not signed by the key it names
    /// over this attempt's ephemeral keys (a node on the way altered it,
    /// or the peer speaks an older protocol).
    #[error("connect handshake with {0} not signed for this attempt")]
    BadHandshake(hyper_core::PublicKey),
    /// The peer announcement was malformed.
    #[error("malformed answer from the peer")]
    BadAnswer,
    /// No live connection to this peer.
    #[error("not connected to peer {0}")]
    NotConnected(hyper_core::PublicKey),
    /// Local discovery (multicast DNS) could not start or failed.
    #[error("local discovery: {0}")]
    Local(String),
    /// The replication protocol failed on a swarm connection.
    #[error("replication: {0}")]
    Replication(#[from] hyper_wire::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
