//! Property tests: every proof built from a random tree verifies, and every
//! single-bit corruption of a proof, its block or its signature is rejected.

use std::collections::HashMap;

use hyper_core::{
    KeyPair, Manifest, Node, NodeRequest, NodeSource, Proof, ProofRequest, Result, SignedState,
    UpgradeRequest, Verifier, append_nodes, build_proof, tree_byte_length,
};
use proptest::prelude::*;

/// A writer's whole tree in memory.
struct Tree {
    nodes: HashMap<u64, Node>,
    blocks: Vec<Vec<u8>>,
    pair: KeyPair,
    manifest: Manifest,
}

impl NodeSource for &Tree {
    fn node(&self, index: u64) -> Result<Option<Node>> {
        Ok(self.nodes.get(&index).copied())
    }
}

impl Tree {
    fn new(blocks: Vec<Vec<u8>>) -> Self {
        let pair = KeyPair::from_seed([42; 32]);
        let manifest = Manifest::single(pair.public_key());
        let mut roots = Vec::new();
        let created = append_nodes(
            &mut roots,
            blocks
                .iter()
                .enumerate()
                .map(|(i, b)| Node::leaf(i as u64, b)),
        );
        Tree {
            nodes: created.into_iter().map(|n| (n.index, n)).collect(),
            blocks,
            pair,
            manifest,
        }
    }

    /// The signed state at `length` (any prefix of the tree).
    fn state(&self, length: u64) -> SignedState {
        let roots: Vec<Node> = hyper_core::flat::roots(length)
            .into_iter()
            .map(|i| self.nodes[&i])
            .collect();
        let key = self.manifest.key();
        let message = signable(&key, &roots, length, 0);
        SignedState {
            fork: 0,
            length,
            signatures: self
                .manifest
                .sign(&message, std::slice::from_ref(&self.pair)),
            roots,
        }
    }

    fn proof(&self, at: u64, request: &ProofRequest) -> Proof {
        let value = request.block.map(|b| self.blocks[b.index as usize].clone());
        build_proof(&self, &self.state(at), &self.manifest, request, value).expect("builds")
    }
}

fn signable(key: &hyper_core::CoreKey, roots: &[Node], length: u64, fork: u64) -> [u8; 32] {
    hyper_core::signable_message(key, roots, length, fork)
}

/// A reader that trusts the state at `length` and holds the nodes a reader
/// has after verifying that upgrade: the roots.
struct Reader {
    nodes: HashMap<u64, Node>,
}

impl NodeSource for &Reader {
    fn node(&self, index: u64) -> Result<Option<Node>> {
        Ok(self.nodes.get(&index).copied())
    }
}

fn reader_at(tree: &Tree, length: u64) -> (Reader, SignedState) {
    let state = tree.state(length);
    let nodes = state.roots.iter().map(|r| (r.index, *r)).collect();
    (Reader { nodes }, state)
}

fn verify(
    tree: &Tree,
    reader: &Reader,
    state: &SignedState,
    proof: &Proof,
) -> Result<hyper_core::Verified> {
    let mut v = Verifier::new(
        tree.manifest.key(),
        Some(tree.manifest.clone()),
        state.clone(),
        reader,
    );
    v.verify(proof)
}

/// Whether everything a verified proof claims holds in the writer's tree.
fn proves_only_truth(tree: &Tree, proof: &Proof, v: &hyper_core::Verified) -> bool {
    let block_true = v
        .block
        .is_none_or(|i| proof.block.as_ref().map(|b| &b.value) == tree.blocks.get(i as usize));
    let upgrade_true = v.upgrade.as_ref().is_none_or(|u| {
        u.length <= tree.blocks.len() as u64 && u.roots == tree.state(u.length).roots
    });
    let nodes_true = v.nodes.iter().all(|n| tree.nodes.get(&n.index) == Some(n));
    block_true && upgrade_true && nodes_true
}

/// Every bit of the proof that matters, flipped one at a time.
fn flip(proof: &Proof, bit: usize) -> Option<Proof> {
    let mut p = proof.clone();
    let mut fields: Vec<&mut [u8]> = Vec::new();
    if let Some(b) = &mut p.block {
        fields.push(b.value.as_mut_slice());
        for n in &mut b.nodes {
            fields.push(&mut n.hash.0);
        }
    }
    if let Some(s) = &mut p.seek {
        fields.push(&mut s.leaf.hash.0);
        for n in &mut s.nodes {
            fields.push(&mut n.hash.0);
        }
    }
    if let Some(u) = &mut p.upgrade {
        for n in u.roots.iter_mut().chain(u.nodes.iter_mut()) {
            fields.push(&mut n.hash.0);
        }
        for s in &mut u.signatures {
            fields.push(&mut s.signature.0);
        }
    }
    let total: usize = fields.iter().map(|f| f.len() * 8).sum();
    if total == 0 {
        return None;
    }
    let mut bit = bit % total;
    for f in fields {
        if bit < f.len() * 8 {
            f[bit / 8] ^= 1 << (bit % 8);
            return Some(p);
        }
        bit -= f.len() * 8;
    }
    None
}

/// Flips a bit in a size or index field instead.
fn flip_number(proof: &Proof, pick: usize, bit: u32) -> Option<Proof> {
    let mut p = proof.clone();
    let mut fields: Vec<&mut u64> = Vec::new();
    if let Some(b) = &mut p.block {
        fields.push(&mut b.index);
        for n in &mut b.nodes {
            fields.push(&mut n.size);
            fields.push(&mut n.index);
        }
    }
    if let Some(u) = &mut p.upgrade {
        fields.push(&mut u.length);
        for n in u.roots.iter_mut().chain(u.nodes.iter_mut()) {
            fields.push(&mut n.size);
        }
    }
    let n = fields.len();
    if n == 0 {
        return None;
    }
    let f = fields.into_iter().nth(pick % n)?;
    *f ^= 1 << (bit % 40);
    Some(p)
}

fn blocks_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..90)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn block_and_upgrade_proofs_verify_and_reject_any_flip(
        blocks in blocks_strategy(),
        from in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        bit in any::<usize>(),
        nbit in any::<u32>(),
    ) {
        let tree = Tree::new(blocks);
        let len = tree.blocks.len() as u64;
        let start = from.index(len as usize) as u64; // reader's length, < len
        let index = pick.index(len as usize) as u64;
        let (reader, state) = reader_at(&tree, start);
        let request = ProofRequest {
            block: Some(NodeRequest { index, nodes: u64::MAX }),
            upgrade: Some(UpgradeRequest { start, fork: 0 }),
            ..Default::default()
        };
        let proof = tree.proof(len, &request);
        let ok = verify(&tree, &reader, &state, &proof).expect("an honest proof verifies");
        prop_assert_eq!(ok.block, Some(index));
        prop_assert_eq!(ok.upgrade.as_ref().map(|u| u.length), Some(len));
        prop_assert_eq!(ok.upgrade.as_ref().map(|u| tree_byte_length(&u.roots)),
            Some(tree.blocks.iter().map(|b| b.len() as u64).sum()));

        // Bytes, hashes and signatures: any flip is rejected.
        if let Some(bad) = flip(&proof, bit) {
            prop_assert!(verify(&tree, &reader, &state, &bad).is_err(), "flipped bit {} accepted", bit);
        }
        // Sizes, indexes, lengths: a flip is rejected, or what is accepted is
        // still true (a flipped upgrade length that is not newer than the
        // reader's is ignored, and the block still verifies on its own).
        if let Some(bad) = flip_number(&proof, bit, nbit)
            && let Ok(v) = verify(&tree, &reader, &state, &bad)
        {
            prop_assert!(proves_only_truth(&tree, &bad, &v), "a false claim was accepted: {:?}", bad);
        }
    }

    #[test]
    fn seek_proofs_find_the_right_block(blocks in blocks_strategy(), at in any::<prop::sample::Index>(), bit in any::<usize>()) {
        let tree = Tree::new(blocks);
        let len = tree.blocks.len() as u64;
        let total: u64 = tree.blocks.iter().map(|b| b.len() as u64).sum();
        prop_assume!(total > 0);
        let bytes = at.index(total as usize) as u64;
        let (reader, state) = reader_at(&tree, len);
        let proof = tree.proof(len, &ProofRequest { seek: Some(bytes), ..Default::default() });
        let ok = verify(&tree, &reader, &state, &proof).expect("an honest seek verifies");
        let (block, offset) = ok.seek.expect("seek result");
        let before: u64 = tree.blocks[..block as usize].iter().map(|b| b.len() as u64).sum();
        prop_assert_eq!(before + offset, bytes);
        prop_assert!(offset < tree.blocks[block as usize].len() as u64);
        if let Some(bad) = flip(&proof, bit) {
            prop_assert!(verify(&tree, &reader, &state, &bad).is_err());
        }
        // The same seek proof does not prove another offset.
        let mut other = proof.clone();
        if let Some(s) = &mut other.seek {
            s.bytes = if bytes == 0 { total } else { bytes - 1 };
        }
        if let Ok(v) = verify(&tree, &reader, &state, &other) {
            let (b2, o2) = v.seek.expect("seek result");
            let before2: u64 = tree.blocks[..b2 as usize].iter().map(|b| b.len() as u64).sum();
            prop_assert_eq!(before2 + o2, if bytes == 0 { total } else { bytes - 1 });
        }
    }

    #[test]
    fn hash_proofs_verify(blocks in blocks_strategy(), pick in any::<prop::sample::Index>()) {
        let tree = Tree::new(blocks);
        let len = tree.blocks.len() as u64;
        let mut indexes: Vec<u64> = tree.nodes.keys().copied().collect();
        indexes.sort_unstable();
        let index = indexes[pick.index(indexes.len())];
        let (reader, state) = reader_at(&tree, len);
        let proof = tree.proof(len, &ProofRequest { hash: Some(NodeRequest { index, nodes: u64::MAX }), ..Default::default() });
        let ok = verify(&tree, &reader, &state, &proof).expect("an honest hash proof verifies");
        prop_assert_eq!(ok.hash.map(|n| n.index), Some(index));
        let mut bad = proof.clone();
        if let Some(h) = &mut bad.hash {
            h.node.hash.0[0] ^= 1;
        }
        prop_assert!(verify(&tree, &reader, &state, &bad).is_err());
    }
}

#[test]
fn proof_for_another_core_is_rejected() {
    let tree = Tree::new(vec![b"a".to_vec(), b"b".to_vec()]);
    let other = Manifest::single(KeyPair::from_seed([1; 32]).public_key());
    let (reader, _) = reader_at(&tree, 0);
    let proof = tree.proof(
        2,
        &ProofRequest {
            upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
            manifest: true,
            ..Default::default()
        },
    );
    // A verifier for a different key refuses the manifest, and, told the
    // other manifest, refuses the signature.
    let mut v = Verifier::new(other.key(), None, SignedState::empty(), &reader);
    assert!(matches!(
        v.verify(&proof),
        Err(hyper_core::Error::Verify(
            hyper_core::VerifyError::ManifestMismatch
        ))
    ));
    let mut v = Verifier::new(
        other.key(),
        Some(other.clone()),
        SignedState::empty(),
        &reader,
    );
    let mut no_manifest = proof.clone();
    no_manifest.manifest = None;
    assert!(matches!(
        v.verify(&no_manifest),
        Err(hyper_core::Error::Verify(
            hyper_core::VerifyError::Signature { .. }
        ))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The descent into the first differing root never keeps a block that
    /// changed, and with the holder's hint at the true fork point it keeps
    /// exactly the common prefix.
    #[test]
    fn fork_point_finds_the_common_prefix(
        old in blocks_strategy(),
        tail in blocks_strategy(),
        cut in any::<prop::sample::Index>(),
        hint in any::<prop::sample::Index>(),
    ) {
        let common = cut.index(old.len() + 1);
        let mut new_blocks = old[..common].to_vec();
        // The first rewritten block differs from the old one.
        for (i, mut b) in tail.into_iter().enumerate() {
            if i == 0 && old.get(common) == Some(&b) {
                b.push(0xff);
            }
            new_blocks.push(b);
        }
        let old_tree = Tree::new(old);
        let new_tree = Tree::new(new_blocks);
        let new_len = new_tree.blocks.len() as u64;
        let state = new_tree.state(new_len);
        let hint = hint.index(new_tree.blocks.len() + 1) as u64;
        let path = hyper_core::fork_path(&&new_tree, &state, hint).expect("path");
        // What the verifier stages: the path, the parents it computes, the roots.
        let mut new: HashMap<u64, Node> = state.roots.iter().map(|n| (n.index, *n)).collect();
        if let Some((leaf, siblings)) = path.split_first() {
            let mut cur = *leaf;
            new.insert(cur.index, cur);
            for sib in siblings {
                new.insert(sib.index, *sib);
                cur = cur.join(sib);
                new.insert(cur.index, cur);
            }
        }
        let keep = hyper_core::fork_point(&&old_tree, &state.roots, &new).expect("fork point");
        let common = common as u64;
        prop_assert!(keep <= common, "kept {} past the fork point {}", keep, common);
        if hint <= common {
            prop_assert!(keep >= hint, "kept {} below the hint {}", keep, hint);
        }
        if hint == common {
            prop_assert_eq!(keep, common);
        }
    }
}
