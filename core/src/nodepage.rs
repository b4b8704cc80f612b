//! Tree nodes are stored in pages of [`PAGE_NODES`] consecutive flat-tree
//! indexes, so an append batch writes a few page records instead of one
//! record per node. Pure encoding; `storage` and `txn` read and write pages.
//!
//! Page layout: a 16-byte little-endian `u128` bitmap (bit `s` set = the
//! node at slot `s` is present), then 40 bytes (hash ‖ size `u64` LE) for
//! each present node, in slot order. Only present nodes take space, so a
//! sparse reader's pages stay small.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::tree::Node;

/// Flat-tree indexes per page.
pub const PAGE_NODES: u64 = 128;
const BITMAP: usize = 16;
const NODE: usize = 40;

/// The page and the slot inside it that hold the node at `index`.
pub fn locate(index: u64) -> (u64, u32) {
    (index / PAGE_NODES, (index % PAGE_NODES) as u32)
}

fn bitmap(page: &[u8]) -> Option<u128> {
    let bits = u128::from_le_bytes(page.get(..BITMAP)?.try_into().ok()?);
    (page.len() == BITMAP + NODE * bits.count_ones() as usize).then_some(bits)
}

/// The node at `index` in an encoded page; `Err(())` if the page is malformed.
pub fn get(page: &[u8], index: u64) -> Result<Option<Node>, ()> {
    let bits = bitmap(page).ok_or(())?;
    let slot = locate(index).1;
    if bits & (1 << slot) == 0 {
        return Ok(None);
    }
    let at = BITMAP + NODE * (bits & ((1u128 << slot) - 1)).count_ones() as usize;
    let value: &[u8; 40] = page
        .get(at..at + NODE)
        .and_then(|v| v.try_into().ok())
        .ok_or(())?;
    Ok(Some(Node::decode_value(index, value)))
}

/// Every node of an encoded page; `Err(())` if the page is malformed.
pub fn nodes(page_number: u64, page: &[u8]) -> Result<Vec<Node>, ()> {
    let bits = bitmap(page).ok_or(())?;
    let base = page_number * PAGE_NODES;
    (0..PAGE_NODES as u32)
        .filter(|s| bits & (1 << s) != 0)
        .map(|s| get(page, base + u64::from(s)).and_then(|n| n.ok_or(())))
        .collect()
}

/// Encodes the nodes of one page (all in the same page, any order; a later
/// duplicate replaces an earlier one). An empty set encodes to `None`.
pub fn encode(nodes: &[Node]) -> Option<Vec<u8>> {
    let mut slots: [Option<&Node>; PAGE_NODES as usize] = [None; PAGE_NODES as usize];
    for n in nodes {
        if let Some(slot) = slots.get_mut(locate(n.index).1 as usize) {
            *slot = Some(n);
        }
    }
    let present: Vec<&Node> = slots.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    let bits = slots
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is_some())
        .fold(0u128, |b, (s, _)| b | (1 << s));
    let mut out = Vec::with_capacity(BITMAP + NODE * present.len());
    out.extend_from_slice(&bits.to_le_bytes());
    for n in present {
        out.extend_from_slice(&n.encode_value());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Hash;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn node(index: u64) -> Node {
        Node {
            index,
            size: index * 3,
            hash: Hash([(index % 251) as u8; 32]),
        }
    }

    proptest! {
        #[test]
        fn round_trips_like_a_map(page in 0u64..1000, slots in prop::collection::vec(0u64..PAGE_NODES, 0..200)) {
            let base = page * PAGE_NODES;
            let list: Vec<Node> = slots.iter().map(|s| node(base + s)).collect();
            let model: BTreeMap<u64, Node> = list.iter().map(|n| (n.index, *n)).collect();
            match encode(&list) {
                None => prop_assert!(model.is_empty()),
                Some(enc) => {
                    for s in 0..PAGE_NODES {
                        prop_assert_eq!(get(&enc, base + s), Ok(model.get(&(base + s)).copied()));
                    }
                    prop_assert_eq!(nodes(page, &enc), Ok(model.values().copied().collect::<Vec<_>>()));
                    // Any truncation or extension is malformed, never a panic.
                    for cut in 0..enc.len() {
                        prop_assert!(nodes(page, &enc[..cut]).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn snapshot_of_one_node() {
        let enc = encode(&[node(1)]).expect("one node");
        assert_eq!(enc.len(), 16 + 40);
        assert_eq!(&enc[..16], &2u128.to_le_bytes());
        assert_eq!(&enc[16..48], &[1u8; 32]);
        assert_eq!(&enc[48..], &3u64.to_le_bytes());
    }
}
