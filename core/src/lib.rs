//! hyper-core: the signed append-only log.
//!
//! A [`Store`] holds many [`Core`]s in one redb database. A core is a log of
//! blocks under a BLAKE3 Merkle tree whose roots the writer signs (ed25519)
//! after every append batch. Readers that hold only the core key verify
//! [`Proof`]s from peers with a [`Verifier`] and store what they prove with
//! [`Core::apply`]. The tree, proofs, verification and bitfield are pure
//! logic; the store and core wrap them in redb transactions.
//!
//! Beyond the log: block encryption for private data on public seeders
//! ([`Core::with_encryption`]), namespaces of names ([`Store::namespace`]),
//! typed events without an async runtime ([`Core::events`]), moving a
//! writer ([`Store::export_seed`], [`Store::import_key_pair`]), and
//! reclaiming storage ([`Core::clear`], [`Store::delete`],
//! [`Store::compact`]). Blocks are at most [`MAX_BLOCK_SIZE`].
//!
//! ```
//! use hyper_core::{NodeRequest, ProofRequest, Store, UpgradeRequest};
//! # fn main() -> hyper_core::Result<()> {
//! # let base = std::env::temp_dir().join(format!("hyper-core-doc-{}", std::process::id()));
//! let writer_store = Store::open(base.join("writer"))?;
//! let log = writer_store.named("events")?; // writable; same name, same key
//! log.append_batch(&[b"hello".as_slice(), b"world".as_slice()])?; // one transaction, one signature
//! assert_eq!(log.get(1)?, b"world"); // checked against its Merkle leaf
//!
//! // A reader that knows only the key asks for block 1 and the newest length ...
//! let reader_store = Store::open(base.join("reader"))?;
//! let replica = reader_store.replica(&log.key())?;
//! let request = ProofRequest {
//!     block: Some(NodeRequest { index: 1, nodes: replica.missing_nodes(1)? }),
//!     upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
//!     manifest: true,
//!     ..Default::default()
//! };
//! // ... the holder builds the proof, the reader verifies it and stores it.
//! let proof = log.proof(&request)?;
//! replica.apply(&[proof])?;
//! assert_eq!(replica.get(1)?, b"world");
//! assert_eq!(replica.info()?.length, 2);
//! # drop((log, replica, writer_store, reader_store));
//! # std::fs::remove_dir_all(&base)?;
//! # Ok(()) }
//! ```

mod append;
pub mod bitfield;
mod blockstore;
mod chunk;
mod codec;
mod core;
mod encrypted;
mod encryption;
mod error;
mod evidence;
pub mod flat;
#[cfg(test)]
mod fuzz;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod keys;
mod manifest;
mod namespace;
mod nodepage;
mod notify;
mod open;
mod proof;
mod quiet;
mod read;
mod replication;
mod source;
mod storage;
mod store;
mod tail;
mod transfer;
mod tree;
mod txn;
mod verify;
mod view;

pub use crate::append::{AppendOutcome, MAX_BLOCK_SIZE};
pub use crate::core::{Core, Info};
pub use crate::read::{Blocks, Snapshot};
pub use encryption::{ENCRYPTION_OVERHEAD, EncryptionKey};
pub use error::{Corruption, Error, Result, VerifyError};
pub use keys::{CoreKey, DiscoveryKey, Hash, KeyPair, PublicKey, Signature, StoreSeed};
pub use manifest::{MANIFEST_VERSION, Manifest, Prologue, SignerSignature};
pub use namespace::Namespace;
pub use notify::{Event, Events, Subscription};
pub use proof::{
    BlockProof, HashProof, MAX_LENGTH, NodeRequest, NodeSource, Proof, ProofRequest, SeekProof,
    SignedState, UpgradeProof, UpgradeRequest, build as build_proof, common_length, conflicting,
    fork_path, fork_point, seek_leaf, sibling_path, upgrade_proof,
};
pub use source::{
    BlockFuture, BlockSource, BlockWriter, ByteStream, IndexedBlock, Prefetch, ReadOptions,
    ReadStream, SeekFuture, fetch_error, seek_error,
};
pub use store::{CoreEntry, Durability, Store, StoreBatch, StoreOptions, StoreStats};
pub use tree::{Node, append as append_nodes, byte_length as tree_byte_length};
pub use verify::{Equivocation, Verified, Verifier};

/// The 32-byte message the signers of `key` sign for the state (`roots`,
/// `length`, `fork`): a domain-separated BLAKE3 hash of the key, the roots
/// hash, the length and the fork.
pub fn signable_message(key: &CoreKey, roots: &[Node], length: u64, fork: u64) -> [u8; 32] {
    hash::signable(key, &hash::roots(roots), length, fork)
}
