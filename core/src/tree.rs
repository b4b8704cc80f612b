//! Pure Merkle tree logic: nodes, appends, roots. No I/O.

use crate::flat;
use crate::hash;
use crate::keys::Hash;

/// A node of the Merkle tree: its flat-tree index, the number of block bytes
/// under it, and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Flat-tree index.
    pub index: u64,
    /// Total byte length of the blocks under this node.
    pub size: u64,
    /// Leaf or parent hash.
    pub hash: Hash,
}

impl Node {
    /// The leaf node of block `block` holding `data`.
    pub fn leaf(block: u64, data: &[u8]) -> Self {
        Node {
            index: flat::leaf(block),
            size: data.len() as u64,
            hash: hash::leaf(data),
        }
    }

    /// The parent of two sibling nodes, `left` being the left one.
    pub fn parent(left: &Node, right: &Node) -> Self {
        Node {
            index: flat::parent(left.index),
            size: left.size.wrapping_add(right.size),
            hash: hash::parent(left, right),
        }
    }

    /// The parent of this node and its sibling, in whichever order they sit.
    pub fn join(&self, sibling: &Node) -> Self {
        if flat::is_left(self.index) {
            Node::parent(self, sibling)
        } else {
            Node::parent(sibling, self)
        }
    }

    /// [`Node::join`] for nodes from a peer: `None` when the two sizes
    /// overflow `u64` (no honest tree holds that many bytes), so a forged
    /// size can never wrap around to a trusted one.
    pub fn checked_join(&self, sibling: &Node) -> Option<Self> {
        self.size.checked_add(sibling.size)?;
        Some(self.join(sibling))
    }

    /// Fixed 40-byte encoding: hash, then size as little-endian `u64`.
    pub fn encode_value(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..32].copy_from_slice(&self.hash.0);
        out[32..].copy_from_slice(&self.size.to_le_bytes());
        out
    }

    /// Decodes [`Node::encode_value`] for the node at `index`.
    pub fn decode_value(index: u64, value: &[u8; 40]) -> Self {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&value[..32]);
        let mut size = [0u8; 8];
        size.copy_from_slice(&value[32..]);
        Node {
            index,
            size: u64::from_le_bytes(size),
            hash: Hash(hash),
        }
    }
}

/// Appends leaves to a tree given by its roots. Returns every node created
/// (leaves and parents, in creation order); `roots` becomes the new roots.
pub fn append(roots: &mut Vec<Node>, leaves: impl IntoIterator<Item = Node>) -> Vec<Node> {
    let mut created = Vec::new();
    for leaf in leaves {
        created.push(leaf);
        let mut top = leaf;
        while let Some(left) = roots.pop_if(|last| last.index == flat::sibling(top.index)) {
            top = Node::parent(&left, &top);
            created.push(top);
        }
        roots.push(top);
    }
    created
}

/// Total byte length of a tree given by its roots.
pub fn byte_length(roots: &[Node]) -> u64 {
    roots.iter().fold(0, |acc, r| acc.wrapping_add(r.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(blocks: &[Vec<u8>]) -> (Vec<Node>, Vec<Node>) {
        let mut roots = Vec::new();
        let created = append(
            &mut roots,
            blocks
                .iter()
                .enumerate()
                .map(|(i, b)| Node::leaf(i as u64, b)),
        );
        (roots, created)
    }

    proptest! {
        #[test]
        fn batches_equal_one_by_one(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..70), split in 0usize..70) {
            let (all_roots, _) = build(&blocks);
            let split = split.min(blocks.len());
            let mut roots = Vec::new();
            append(&mut roots, blocks[..split].iter().enumerate().map(|(i, b)| Node::leaf(i as u64, b)));
            append(&mut roots, blocks[split..].iter().enumerate().map(|(i, b)| Node::leaf((split + i) as u64, b)));
            prop_assert_eq!(&roots, &all_roots);
            let idx: Vec<u64> = roots.iter().map(|r| r.index).collect();
            prop_assert_eq!(idx, flat::roots(blocks.len() as u64));
            prop_assert_eq!(byte_length(&roots), blocks.iter().map(|b| b.len() as u64).sum::<u64>());
        }
    }

    #[test]
    fn creates_every_node_once() {
        let blocks: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i]).collect();
        let (_, created) = build(&blocks);
        let mut idx: Vec<u64> = created.iter().map(|n| n.index).collect();
        idx.sort_unstable();
        idx.dedup();
        // 13 leaves, 6 + 3 + 1 parents
        assert_eq!(idx.len(), 13 + 6 + 3 + 1);
    }
}
