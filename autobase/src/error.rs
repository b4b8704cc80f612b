//! The one error type of `hyper-autobase`.

/// What can go wrong in a base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A writer core's block is not a valid node.
    #[error("malformed node: {0}")]
    Malformed(&'static str),
    /// A writer's node breaks the DAG's rules (a head naming its own
    /// writer, a head that does not end a batch, a batch that
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
    /// A writer core is not a core of this base: block 0 is not an
    /// autobase header, or it names another base.
    #[error("not a writer core of this base: {0}")]
    NotABase(&'static str),
    /// A writer core of a block format this build cannot read.
    #[error("autobase block format version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
    /// Block 0 of the base's first core is not stored here yet.
    #[error(
        "block 0 of base {0} is not stored here: fetch the base's first core from a peer first (hyper-cli: `base sync BASE`, with `--connect ADDR` for a peer at a known address)"
    )]
    BaseHeaderMissing(String),
    /// An append to a base opened as a reader ([`Base::read`](crate::Base::read)).
    #[error(
        "this store only reads base {0}: it has no writer core of it (hyper-cli: `base join BASE`, then a writer runs `base add-writer BASE WRITER`)"
    )]
    NotAWriter(String),
    /// `apply` named a view the base was not opened with.
    #[error("no view named '{0}' was opened with this base")]
    NoSuchView(String),
    /// `remove_writer` or `add_writer(key, false)` named the last indexer.
    #[error("writer {0} is the base's last indexer: a base keeps at least one")]
    LastIndexer(String),
    /// `add_writer(key, true)` past [`MAX_INDEXERS`](crate::MAX_INDEXERS).
    #[error("writer {0} cannot be made an indexer: the base has MAX_INDEXERS (64) already")]
    TooManyIndexers(String),
    /// A quorum-signed system entry names a view state its signed view
    /// core does not hold: the entry is not adopted.
    #[error(
        "the quorum-signed system entry {entry} says view '{view}' has tree hash {expected} at length {length}; its signed core gives {found}: not adopted"
    )]
    SignedStateMismatch {
        /// The entry's index in the system core.
        entry: u64,
        /// The view's name.
        view: String,
        /// The view length the entry names.
        length: u64,
        /// The tree hash the entry names (hex).
        expected: String,
        /// The tree hash of the copied view at that length (hex).
        found: String,
    },
    /// The application's [`Apply`](crate::Apply) failed.
    #[error("apply failed: {0}")]
    Apply(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The core failed (storage, verification).
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
