//! Flat-tree (in-order) numbering of a binary Merkle tree.
//!
//! Leaves sit at even indexes (block `b` is node `2b`); a node at depth `d`
//! and offset `o` has index `(o << (d + 1)) | ((1 << d) - 1)`. All functions
//! are pure arithmetic and total: on indexes from a peer that overflow they
//! return wrapped values (which no proof check accepts), never panic.

/// Depth of a node: 0 for leaves, 1 for their parents, and so on.
pub fn depth(index: u64) -> u32 {
    index.trailing_ones()
}

/// Position of a node among the nodes of its depth, counted from the left.
pub fn offset(index: u64) -> u64 {
    index.checked_shr(depth(index) + 1).unwrap_or(0)
}

/// The index of the node at `depth` and `offset`.
pub fn index(depth: u32, offset: u64) -> u64 {
    offset.checked_shl(depth + 1).unwrap_or(0) | low_ones(depth)
}

/// `2^depth - 1`, saturating at all ones.
fn low_ones(depth: u32) -> u64 {
    1u64.checked_shl(depth).unwrap_or(0).wrapping_sub(1)
}

/// The parent of a node.
pub fn parent(index: u64) -> u64 {
    let d = depth(index);
    self::index(d + 1, offset(index) >> 1)
}

/// The other child of this node's parent.
pub fn sibling(index: u64) -> u64 {
    let d = depth(index);
    self::index(d, offset(index) ^ 1)
}

/// The left and right children of a parent node; `None` for a leaf.
pub fn children(index: u64) -> Option<(u64, u64)> {
    let d = depth(index);
    if d == 0 {
        return None;
    }
    let o = offset(index).wrapping_mul(2);
    Some((self::index(d - 1, o), self::index(d - 1, o.wrapping_add(1))))
}

/// The first and last block (leaf number, not node index) under a node.
pub fn block_span(index: u64) -> (u64, u64) {
    let d = depth(index);
    let first = offset(index).checked_shl(d).unwrap_or(0);
    (first, first.wrapping_add(low_ones(d)))
}

/// Whether `index` is the left child of its parent.
pub fn is_left(index: u64) -> bool {
    offset(index) & 1 == 0
}

/// The root nodes of a tree of `length` blocks, left to right: one perfect
/// subtree per set bit of `length`, largest first.
pub fn roots(length: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(length.count_ones() as usize);
    let mut start = 0u64;
    for d in (0..64u32).rev() {
        let size = 1u64 << d;
        if length & size != 0 {
            out.push(index(d, start >> d));
            start += size;
        }
    }
    out
}

/// The node index of block `block`'s leaf.
pub fn leaf(block: u64) -> u64 {
    block.wrapping_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(depth(0), 0);
        assert_eq!(depth(1), 1);
        assert_eq!(depth(3), 2);
        assert_eq!(parent(0), 1);
        assert_eq!(parent(2), 1);
        assert_eq!(parent(1), 3);
        assert_eq!(parent(5), 3);
        assert_eq!(sibling(0), 2);
        assert_eq!(sibling(1), 5);
        assert_eq!(children(3), Some((1, 5)));
        assert_eq!(children(4), None);
        assert_eq!(block_span(3), (0, 3));
        assert_eq!(block_span(9), (4, 5));
        assert_eq!(roots(0), Vec::<u64>::new());
        assert_eq!(roots(1), vec![0]);
        assert_eq!(roots(3), vec![1, 4]);
        assert_eq!(roots(7), vec![3, 9, 12]);
        assert_eq!(roots(8), vec![7]);
    }

    proptest! {
        #[test]
        fn total_on_any_input(i in any::<u64>(), d in any::<u32>()) {
            let _ = (parent(i), sibling(i), children(i), block_span(i), offset(i), index(d % 70, i), leaf(i), roots(i));
        }

        #[test]
        fn parent_child_agree(i in 0u64..(1 << 40)) {
            let p = parent(i);
            let (l, r) = children(p).expect("a parent has children");
            prop_assert!(l == i || r == i);
            prop_assert_eq!(sibling(i), if l == i { r } else { l });
            prop_assert_eq!(is_left(i), l == i);
        }

        #[test]
        fn roots_cover_exactly(length in 0u64..(1 << 30)) {
            let mut next = 0u64;
            for r in roots(length) {
                let (first, last) = block_span(r);
                prop_assert_eq!(first, next);
                next = last + 1;
            }
            prop_assert_eq!(next, length);
        }
    }
}
