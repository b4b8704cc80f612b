//! [`CoreAccess`]: what the replicator reads of a local core.

use std::ops::Range;

use hyper_core::{Core, CoreKey, Proof, ProofRequest};

/// A local core's signed state, as the replicator sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStatus {
    /// Fork id.
    pub fork: u64,
    /// Signed length.
    pub length: u64,
    /// Whether the manifest is known (a fresh replica learns it from the
    /// first upgrade).
    pub has_manifest: bool,
    /// Whether this side is the writer.
    pub writable: bool,
}

/// Read access to a local core: its state, which blocks it holds, and the
/// proofs it serves. Implemented for [`hyper_core::Core`]; reads only (the
/// replicator hands writes to its driver as events).
pub trait CoreAccess {
    /// The core key.
    fn key(&self) -> CoreKey;
    /// The signed state.
    fn status(&self) -> hyper_core::Result<CoreStatus>;
    /// Whether block `index` is stored locally.
    fn has(&self, index: u64) -> bool;
    /// The first block of `range` not stored locally.
    fn next_missing(&self, range: Range<u64>) -> Option<u64>;
    /// The stored and missing blocks of `range` as alternating run lengths,
    /// stored first.
    fn stored_runs(&self, range: Range<u64>) -> Vec<u64>;
    /// Sibling levels to ask for with each of `blocks` (index, at most
    /// this many; see [`Core::missing_nodes_within`]).
    fn missing_nodes(&self, blocks: &[(u64, u64)]) -> hyper_core::Result<Vec<u64>>;
    /// The proofs answering `requests`, one result each, built from one
    /// read view (see [`Core::proofs`]).
    fn proofs(
        &self,
        requests: &[ProofRequest],
    ) -> hyper_core::Result<Vec<hyper_core::Result<Proof>>>;
}

impl CoreAccess for Core {
    fn key(&self) -> CoreKey {
        Core::key(self)
    }

    fn status(&self) -> hyper_core::Result<CoreStatus> {
        let state = self.signed_state()?;
        Ok(CoreStatus {
            fork: state.fork,
            length: state.length,
            has_manifest: self.manifest()?.is_some(),
            writable: self.writable()?,
        })
    }

    fn has(&self, index: u64) -> bool {
        Core::has(self, index).unwrap_or(false)
    }

    fn next_missing(&self, range: Range<u64>) -> Option<u64> {
        Core::next_missing(self, range).ok().flatten()
    }

    fn stored_runs(&self, range: Range<u64>) -> Vec<u64> {
        Core::stored_runs(self, range).unwrap_or_default()
    }

    fn missing_nodes(&self, blocks: &[(u64, u64)]) -> hyper_core::Result<Vec<u64>> {
        Core::missing_nodes_within(self, blocks)
    }

    fn proofs(
        &self,
        requests: &[ProofRequest],
    ) -> hyper_core::Result<Vec<hyper_core::Result<Proof>>> {
        Core::proofs(self, requests)
    }
}
