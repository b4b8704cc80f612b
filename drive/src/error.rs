//! The one error type of `hyper-drive`.

use std::path::PathBuf;

use hyper_core::CoreKey;

/// What can go wrong with a drive, a local folder or a mirror.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A core failed (storage, verification).
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
    /// The metadata bee failed.
    #[error(transparent)]
    Bee(hyper_bee::Error),
    /// A path that is not a valid drive path.
    #[error("invalid path '{path}': {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing is stored at the path.
    #[error("no such file or folder: {0}")]
    NotFound(String),
    /// The path is a folder where a file or symlink was expected.
    #[error("{0} is a folder")]
    IsAFolder(String),
    /// A path below a file or symlink (it cannot be a folder).
    #[error("{0} is not a folder")]
    NotAFolder(String),
    /// Resolving symlinks took more than 16 hops (a loop, or a chain too
    /// long).
    #[error("too many levels of symbolic links resolving {0} (at most 16 hops)")]
    SymlinkLoop(String),
    /// The core is not a drive's metadata core.
    #[error("core {key} is not a drive: {reason}")]
    NotADrive {
        /// The core key.
        key: CoreKey,
        /// What is wrong.
        reason: &'static str,
    },
    /// A stored entry does not decode or contradicts itself.
    #[error("corrupt drive entry at {path}: {reason}")]
    Corrupt {
        /// The path (or key) whose value is damaged.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A block is not stored locally: fetch it from a peer and retry.
    #[error("block {index} of core {core} is not stored locally")]
    Missing {
        /// The core lacking the block.
        core: CoreKey,
        /// The block.
        index: u64,
    },
    /// Fetching a missing block from peers failed.
    #[error("fetching block {index} of core {core} failed: {source}")]
    Fetch {
        /// The core.
        core: CoreKey,
        /// The block.
        index: u64,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The drive is not writable here, or the view is a checkout.
    #[error("this drive is read-only here")]
    ReadOnly,
    /// Not a version of the drive: its versions run from 2 (the header
    /// written) to its current one.
    #[error("version {version} is not a version of the drive (2 to {length})")]
    NoSuchVersion {
        /// The version asked for.
        version: u64,
        /// The drive's version.
        length: u64,
    },
    /// A byte range outside a file, or ending before it starts.
    #[error("byte range {start}..{end} is outside {path} ({size} bytes)")]
    BadRange {
        /// The file.
        path: String,
        /// First byte.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// The file's size.
        size: u64,
    },
    /// A local file or folder operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A local file changed while it was read; nothing was stored for it.
    #[error("{} changed while it was read (run again)", .0.display())]
    Changed(PathBuf),
    /// An ignore pattern that does not parse.
    #[error("bad ignore pattern '{pattern}': {reason}")]
    BadIgnore {
        /// The pattern.
        pattern: String,
        /// The parser's message.
        reason: String,
    },
}

impl From<hyper_bee::Error> for Error {
    fn from(e: hyper_bee::Error) -> Self {
        match e {
            hyper_bee::Error::Core(c) => Error::Core(c),
            other => Error::Bee(other),
        }
    }
}

impl Error {
    /// An I/O error on the local `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
