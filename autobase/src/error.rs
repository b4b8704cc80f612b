//! The one error type of `hyper-autobase`.

/// What can go wrong in a base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A writer core's block is not a valid node.
    #[error("malformed node: {0}")]
    Malformed(&'static str),
    /// A writer's node breaks the DAG's rules (a head of a writer that is
    /// not in the base, a head that does not end a batch, a batch that
    /// does not continue the previous one).
    #[error("writer {writer} node at length {length}: {reason}")]
    BadNode {
        /// The writer's core key (hex).
        writer: String,
        /// The writer core's length just after the node.
        length: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The core failed (storage, verification).
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
