//! The one error type of `hyper-bee`.

/// What can go wrong with a bee.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core failed (storage, verification).
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
    /// The core is not a bee: block 0 is not a bee header.
    #[error("not a bee: {0}")]
    NotABee(&'static str),
    /// A bee of a block format this version cannot read.
    #[error("bee block format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
    /// A block does not decode, or points where it cannot (a child past
    /// the block, a key pointer to a deletion).
    #[error("corrupt bee block {block}: {reason}")]
    Corrupt {
        /// The block.
        block: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The block is not stored locally (a sparse replica): fetch it from a
    /// peer, then retry the operation.
    #[error("block {0} is not stored locally")]
    Missing(u64),
    /// Fetching a missing block from peers failed.
    #[error("fetching a block failed: {0}")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The bee is not writable here, or the view is read-only (a checkout).
    #[error("this bee is read-only here")]
    ReadOnly,
    /// A version past the core's length.
    #[error("version {version} is past the length {length}")]
    NoSuchVersion {
        /// The version asked for.
        version: u64,
        /// The core's length.
        length: u64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
