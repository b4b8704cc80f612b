//! Peer candidates: what a discovery source (the DHT, the local link)
//! hands to connection management. A candidate is only a hint where a key
//! might be reached; the QUIC handshake proves the key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper_core::PublicKey;

use crate::query::FoundRecord;

/// A peer some source says can be reached for a topic.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The key the peer is expected to prove.
    pub(crate) public_key: PublicKey,
    /// The topic it was found under.
    pub(crate) topic: [u8; 32],
    /// How to reach it; which source found it.
    pub(crate) hint: Hint,
}

/// Where a candidate came from and what it says about reaching the peer.
#[derive(Debug, Clone)]
pub(crate) enum Hint {
    /// A signed record found on the DHT: connect through the node holding
    /// it (hole punching, or a relay), on the family of that node; if that
    /// fails, through `others` (records of the same key the other
    /// family's lookup found meanwhile).
    Dht {
        /// The record found first.
        found: FoundRecord,
        /// Records of the same key found later on another family.
        others: Others,
    },
    /// An announcement heard on the local link: dial these addresses
    /// straight from the listening endpoint.
    Local(Vec<SocketAddr>),
}

impl Candidate {
    /// A candidate from a record the DHT found.
    pub(crate) fn from_dht(found: FoundRecord) -> Candidate {
        Candidate {
            public_key: found.public_key,
            topic: found.topic,
            hint: Hint::Dht {
                found,
                others: Others::default(),
            },
        }
    }
}

/// Further records of a candidate's key, filled while it is dialled.
pub(crate) type Others = Arc<Mutex<Vec<FoundRecord>>>;
