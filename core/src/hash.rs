//! Domain-separated BLAKE3 hashing of the Merkle tree and the signed state.
//!
//! Each kind of hash is a BLAKE3 keyed hash whose key is derived (BLAKE3
//! derive-key) from its own context string, so no hash of one kind can be
//! passed off as another. Variable data comes first in every input, so a
//! block's bytes stay aligned to BLAKE3's 1 KiB chunks; fixed-width fields
//! (little-endian `u64`) follow it.
//!
//! | kind      | input                                               |
//! |-----------|-----------------------------------------------------|
//! | leaf      | block bytes, block length                           |
//! | parent    | left hash, right hash, total byte size              |
//! | roots     | for each root left to right: hash, index, size      |
//! | signable  | core key, roots hash, length, fork                  |
//! | manifest  | the manifest's encoding                             |
//! | discovery | the core key                                        |

use std::sync::LazyLock;

use crate::keys::{CoreKey, Hash};
use crate::tree::Node;

fn domain(context: &str) -> [u8; 32] {
    blake3::derive_key(context, b"")
}

static LEAF: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 leaf"));
static PARENT: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 parent"));
static ROOTS: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 roots"));
static SIGNABLE: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 signable"));
static MANIFEST: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 manifest"));
static DISCOVERY: LazyLock<[u8; 32]> = LazyLock::new(|| domain("hyper-core 2026 discovery"));

/// The leaf hash of a block.
pub fn leaf(block: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&LEAF);
    h.update(block);
    h.update(&(block.len() as u64).to_le_bytes());
    Hash(*h.finalize().as_bytes())
}

/// The hash of a parent node from its two children.
pub fn parent(left: &Node, right: &Node) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&PARENT);
    h.update(&left.hash.0);
    h.update(&right.hash.0);
    h.update(&left.size.wrapping_add(right.size).to_le_bytes());
    Hash(*h.finalize().as_bytes())
}

/// The hash of a tree's root set, which the writer signs.
pub fn roots(roots: &[Node]) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&ROOTS);
    for r in roots {
        h.update(&r.hash.0);
        h.update(&r.index.to_le_bytes());
        h.update(&r.size.to_le_bytes());
    }
    Hash(*h.finalize().as_bytes())
}

/// The message the signers sign for a state of the log.
pub fn signable(key: &CoreKey, roots_hash: &Hash, length: u64, fork: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(&SIGNABLE);
    h.update(&key.0);
    h.update(&roots_hash.0);
    h.update(&length.to_le_bytes());
    h.update(&fork.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The core key for an encoded manifest.
pub fn manifest(encoded: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&MANIFEST, encoded).as_bytes()
}

/// The discovery key of a core key.
pub fn discovery(key: &CoreKey) -> [u8; 32] {
    *blake3::keyed_hash(&DISCOVERY, &key.0).as_bytes()
}
