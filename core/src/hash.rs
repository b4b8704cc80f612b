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
//! | parent    | left hash, right hash, left size, right size        |
//! | roots     | for each root left to right: hash, index, size      |
//! | signable  | core key, roots hash, length, fork                  |
//! | manifest  | the manifest's encoding                             |
//! | discovery | the core key                                        |
//!
//! A parent commits both children's sizes, not only their sum (store format
//! 4; format 3 hashed `left size + right size`). With the sum alone a peer
//! could pass off a valid pair of siblings with their sizes split another
//! way (the sum unchanged, even across `u64` wrap-around), and a reader
//! would store the forged sizes as trusted.

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

/// The hash of a parent node from its two children: both hashes and both
/// sizes, so neither child's size can be changed without changing it.
pub fn parent(left: &Node, right: &Node) -> Hash {
    let mut input = [0u8; 80];
    input[..32].copy_from_slice(&left.hash.0);
    input[32..64].copy_from_slice(&right.hash.0);
    input[64..72].copy_from_slice(&left.size.to_le_bytes());
    input[72..].copy_from_slice(&right.size.to_le_bytes());
    Hash(*blake3::keyed_hash(&PARENT, &input).as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn parent_hash_commits_each_size() {
        let left = Node {
            index: 0,
            size: 3,
            hash: Hash([1; 32]),
        };
        let right = Node {
            index: 2,
            size: 5,
            hash: Hash([2; 32]),
        };
        let p = parent(&left, &right);
        // The same sum split another way, even across u64 wrap-around,
        // hashes differently.
        for (l, r) in [(4, 4), (2, 6), (3 + (1 << 63), 5 + (1 << 63))] {
            let moved = parent(&Node { size: l, ..left }, &Node { size: r, ..right });
            assert_ne!(moved, p, "split {l}/{r}");
        }
        // Snapshot of the format-4 parent hash, so a change cannot pass
        // unnoticed.
        let mut input = [0u8; 80];
        input[..32].fill(1);
        input[32..64].fill(2);
        input[64] = 3;
        input[72] = 5;
        assert_eq!(
            p.0,
            *blake3::keyed_hash(&domain("hyper-core 2026 parent"), &input).as_bytes()
        );
        assert_eq!(
            hex(&p.0),
            "419e73591dac584a925dcb96bc967be40a99ed4fb7a7ef83df961aa7ce2be658"
        );
    }
}
