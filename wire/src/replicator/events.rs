//! What the replicator hands its driver: [`Event`], and the
//! [`ReplicationEvent`]s an application sees.

use hyper_core::{CoreKey, DiscoveryKey, Proof};

use super::{BatchId, Handle, PeerId};
use crate::error::Error;

/// What happened in a replication, for a UI (see
/// [`Replication::events`](crate::Replication::events)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationEvent {
    /// A block from `peer` was verified and stored.
    Downloaded {
        /// The core.
        key: CoreKey,
        /// The peer that sent it.
        peer: PeerId,
        /// The block.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A block was sent to `peer`.
    Uploaded {
        /// The core.
        key: CoreKey,
        /// The peer it went to.
        peer: PeerId,
        /// The block.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A peer opened a core and told its state.
    PeerAdded {
        /// The core.
        key: CoreKey,
        /// The peer.
        peer: PeerId,
        /// Its signed length.
        length: u64,
        /// How many blocks from 0 it holds, as far as it said.
        contiguous_length: u64,
    },
    /// A peer closed a core's channel or went away.
    PeerRemoved {
        /// The core.
        key: CoreKey,
        /// The peer.
        peer: PeerId,
    },
}

/// What the replicator asks of its driver, or tells it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Verify and store these proofs (one call to `Core::apply`), then report
    /// the result with [`Replicator::stored`]. They came from `peer`.
    Store {
        /// Pass back to [`Replicator::stored`].
        batch: BatchId,
        /// The core.
        key: CoreKey,
        /// The peer that sent them.
        peer: PeerId,
        /// The proofs, in arrival order.
        proofs: Vec<Proof>,
    },
    /// A peer opened a core this replicator does not have. Call
    /// [`Replicator::add_core`] if the application has it (the held open
    /// then pairs); otherwise nothing is ever answered.
    UnknownCore {
        /// The peer.
        peer: PeerId,
        /// What it asked for.
        discovery_key: DiscoveryKey,
    },
    /// A [`Replicator::get`] finished: the block is stored locally.
    Got {
        /// The get.
        handle: Handle,
        /// The core.
        key: CoreKey,
        /// The block index.
        index: u64,
    },
    /// A [`Replicator::seek`] finished: the seek proof is verified and
    /// stored, so the local tree holds the path to the block.
    Sought {
        /// The seek.
        handle: Handle,
        /// The core.
        key: CoreKey,
        /// The block holding the byte offset.
        index: u64,
        /// The offset inside that block.
        offset: u64,
    },
    /// A [`Replicator::download`] finished: every block of its range is
    /// stored locally.
    Downloaded {
        /// The download.
        handle: Handle,
        /// The core.
        key: CoreKey,
    },
    /// A get or download ended without its blocks.
    Failed {
        /// The get or download.
        handle: Handle,
        /// The core.
        key: CoreKey,
        /// Why.
        error: Error,
    },
    /// The peer broke the protocol or sent data that failed verification:
    /// it is removed from the replicator; close its connection. A peer that
    /// brought a signed state conflicting with this node's at the same fork
    /// (the writer signed two histories) ends so too, with
    /// `Error::Verify(VerifyError::Equivocation)` carrying both states (the
    /// core kept them as evidence: `Core::equivocation`).
    PeerError {
        /// The peer.
        peer: PeerId,
        /// What it did.
        error: Error,
    },
    /// Blocks moved, peers came and went (only while
    /// [`Replicator::set_reporting`] is on).
    Report(ReplicationEvent),
    /// An extension message arrived on a core's channel.
    Extension {
        /// The peer.
        peer: PeerId,
        /// The core.
        key: CoreKey,
        /// The extension's name.
        name: String,
        /// Its payload.
        message: Vec<u8>,
    },
}

impl Event {
    /// The get, seek or download this event ends, if it ends one.
    pub(super) fn ended(&self) -> Option<Handle> {
        match self {
            Event::Got { handle, .. }
            | Event::Sought { handle, .. }
            | Event::Downloaded { handle, .. }
            | Event::Failed { handle, .. } => Some(*handle),
            _ => None,
        }
    }
}
