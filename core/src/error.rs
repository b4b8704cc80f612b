//! The one error type of `hyper-core`.

use crate::keys::CoreKey;

/// Everything that can go wrong in `hyper-core`. Input from disk or from a
/// peer never panics: it ends in one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O failure outside the database (creating the store directory).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The database reported a failure; after an I/O failure it refuses
    /// further writes until the store is reopened.
    #[error("database error: {0}")]
    Storage(#[source] Box<redb::Error>),
    /// The store's file exists but is not a hyper-core store (an empty
    /// file, or another program's redb database); it is left untouched.
    #[error("{} is not a hyper-core store: {reason}; move it away or open another directory", path.display())]
    NotAStore {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store exists with another seed than the one given to
    /// [`Store::from_seed`](crate::Store::from_seed).
    #[error("{} holds a store with another seed", path.display())]
    SeedMismatch {
        /// The store file.
        path: std::path::PathBuf,
    },
    /// A write to a store opened with [`Store::open_read_only`](crate::Store::open_read_only).
    #[error("the store is open read-only")]
    ReadOnlyStore,
    /// Another process holds the store open.
    #[error("the store {} is open in another process", path.display())]
    StoreLocked {
        /// The store file.
        path: std::path::PathBuf,
    },
    /// The store file was written in another store format than this build
    /// reads (format 3 stores hashed parents differently; they cannot be
    /// read or upgraded in place: replicate the cores into a new store).
    #[error("store {path} has format {found}; this build reads format {supported} only")]
    Format {
        /// The database file.
        path: std::path::PathBuf,
        /// The format recorded in the file.
        found: u32,
        /// The one format this build reads and writes.
        supported: u32,
    },
    /// Data on disk does not have the shape or the hash it must have.
    #[error("corrupt store: {0}")]
    Corrupt(Corruption),
    /// A proof, block or signature from elsewhere failed verification.
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// A block index at or past the end of the log.
    #[error("block {index} is out of bounds (length {length})")]
    OutOfBounds {
        /// The requested index.
        index: u64,
        /// The length of the log.
        length: u64,
    },
    /// The block is part of the log but not stored locally.
    #[error("block {index} is not stored locally")]
    NotAvailable {
        /// The requested index.
        index: u64,
    },
    /// A tree node needed to build a proof is not stored locally.
    #[error("tree node {index} is not stored locally")]
    NodeNotAvailable {
        /// Flat-tree index of the missing node.
        index: u64,
    },
    /// The core has no (or not enough) signing keys to append.
    #[error("core {0} is not writable here")]
    NotWritable(CoreKey),
    /// No core with this key is in the store (or it was deleted).
    #[error("no core {0} in this store")]
    UnknownCore(CoreKey),
    /// The snapshot's blocks were removed by a later truncation.
    #[error("snapshot at length {length} (fork {fork}) was invalidated by a truncation")]
    SnapshotInvalidated {
        /// Length the snapshot was frozen at.
        length: u64,
        /// Fork the snapshot was frozen at.
        fork: u64,
    },
    /// A block does not decrypt with the encryption key given: the key is
    /// wrong, or the core is not encrypted.
    #[error(
        "block {index} of core {core} does not decrypt with this encryption key (wrong key, or the core is not encrypted)"
    )]
    Decrypt {
        /// The core.
        core: CoreKey,
        /// The block index.
        index: u64,
    },
    /// The encryption key given is not the one this store's encrypted core
    /// was created with.
    #[error("wrong encryption key for core {0}")]
    WrongEncryptionKey(CoreKey),
    /// The core is encrypted here: reads and appends need a handle from
    /// [`Core::with_encryption`](crate::Core::with_encryption).
    #[error("core {0} is encrypted: give its encryption key")]
    EncryptionKeyRequired(CoreKey),
    /// A block is larger than [`MAX_BLOCK_SIZE`](crate::MAX_BLOCK_SIZE)
    /// (counting the encryption framing of an encrypted core).
    #[error("block {index} of the batch is {size} bytes, more than the maximum {max}")]
    BlockTooLarge {
        /// Position of the block in the batch.
        index: usize,
        /// Its size as it would be stored.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The caller passed something that cannot be done.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A [`BlockSource`](crate::BlockSource) with peers behind it could not
    /// fetch a block (no peer had it within the timeout, the replication
    /// stopped).
    #[error("fetching block {index} from peers failed: {source}")]
    Fetch {
        /// The block.
        index: u64,
        /// Why (the replication's error).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A [`BlockSource`](crate::BlockSource) with peers behind it could not
    /// find the block holding a byte offset (no peer answered the seek
    /// within the timeout, the replication stopped).
    #[error("seeking byte {bytes} through peers failed: {source}")]
    SeekFetch {
        /// The byte offset.
        bytes: u64,
        /// Why (the replication's error).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What was found corrupt on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A stored block does not hash to its leaf in the Merkle tree.
    #[error("block {index} does not match its tree hash")]
    BlockHash {
        /// The block index.
        index: u64,
    },
    /// A tree node the log's state requires is missing.
    #[error("tree node {index} is missing")]
    MissingNode {
        /// Flat-tree index of the node.
        index: u64,
    },
    /// A stored tree node disagrees with the signed roots (its own path up
    /// to them does not hash to them): the local copy is damaged, whatever
    /// the peer that brought this to light sent.
    #[error("tree node {index} of core {core} does not match its signed root")]
    TreeNode {
        /// The core whose tree is damaged.
        core: CoreKey,
        /// Flat-tree index of the stored node that disagrees.
        index: u64,
    },
    /// A record does not decode.
    #[error("record in table {table} does not decode")]
    Record {
        /// The table the record was read from.
        table: &'static str,
    },
    /// The database file itself is damaged (checksum, header or page).
    #[error("database file is damaged: {0}")]
    Database(String),
    /// The store was written by an unknown format version.
    #[error("unknown store format version {0}")]
    Version(u32),
}

/// Why a proof, block or signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The manifest does not hash to the core key.
    #[error("manifest does not match the core key")]
    ManifestMismatch,
    /// The manifest is not known yet and the proof did not carry it.
    #[error("the manifest is unknown and the proof does not include it")]
    ManifestMissing,
    /// Too few valid signatures from distinct signers of the manifest.
    #[error("signature does not verify ({valid} valid of quorum {quorum})")]
    Signature {
        /// Valid signatures found.
        valid: usize,
        /// Signatures needed.
        quorum: usize,
    },
    /// More signatures than the manifest has signers: refused before any
    /// is checked, so padding costs the sender, not the verifier.
    #[error("{count} signatures for {signers} signers")]
    TooManySignatures {
        /// Signatures sent.
        count: usize,
        /// Signers in the manifest.
        signers: usize,
    },
    /// The proof carries a validly signed state that conflicts with the
    /// trusted one at the same fork: the writer signed two histories. The
    /// peer may be honest (it relays what the writer signed); the evidence
    /// is stored by [`Core::apply`](crate::Core::apply).
    #[error(
        "equivocation: the writer signed two conflicting states at fork {} (lengths {} and {})",
        .0.local.fork, .0.local.length, .0.remote.length
    )]
    Equivocation(Box<crate::verify::Equivocation>),
    /// A hash computed from the proof does not match the trusted one.
    #[error("hash of node {index} does not match")]
    HashMismatch {
        /// Flat-tree index where the mismatch was found.
        index: u64,
    },
    /// The proof does not connect to a node the verifier trusts.
    #[error("proof for node {index} does not reach a trusted node")]
    Unanchored {
        /// Flat-tree index where the chain of hashes stopped.
        index: u64,
    },
    /// The proof's nodes are not the ones its shape requires.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The proof is for another fork than the verifier's and carries no upgrade.
    #[error("proof is for fork {proof}, local fork is {local}")]
    ForkMismatch {
        /// Fork the proof claims.
        proof: u64,
        /// Fork of the local state.
        local: u64,
    },
    /// The block is past the length the proof is anchored to.
    #[error("block {index} is past the signed length {length}")]
    OutOfBounds {
        /// The block index.
        index: u64,
        /// The signed length.
        length: u64,
    },
    /// The byte offset of a seek proof does not fall in the proven block.
    #[error("seek proof does not cover byte {bytes}")]
    SeekMismatch {
        /// The byte offset sought.
        bytes: u64,
    },
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::from(redb::Error::from(e))
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
    redb::SetDurabilityError
);

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(msg) => Error::Corrupt(Corruption::Database(msg)),
            redb::Error::UpgradeRequired(v) => Error::Corrupt(Corruption::Version(u32::from(v))),
            other => Error::Storage(Box::new(other)),
        }
    }
}

impl From<Corruption> for Error {
    fn from(c: Corruption) -> Self {
        Error::Corrupt(c)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
