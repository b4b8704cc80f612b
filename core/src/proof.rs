//! Proofs: what they hold and how a holder of the tree builds them. Pure
//! logic over a [`NodeSource`]; verification lives in [`crate::verify`].
//!
//! Every proof is anchored to a signed state (fork, length, roots). Node
//! lists run bottom-up: the sibling at each level from the proven node to the
//! first node the verifier already trusts (a root, or a node it stored).

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::flat;
use crate::manifest::{Manifest, SignerSignature};
use crate::tree::Node;

/// The longest log this crate accepts: every length, block index and
/// prologue length is below 2^56. Flat-tree indexes of such a log stay
/// below 2^57, far from the `u64` edge where index arithmetic would wrap
/// and two blocks could share a leaf; a signed or stored length at or past
/// it is refused as malformed.
pub const MAX_LENGTH: u64 = 1 << 56;

/// Read access to tree nodes; storage and in-memory trees implement it.
pub trait NodeSource {
    /// The node at a flat-tree index, if present.
    fn node(&self, index: u64) -> Result<Option<Node>>;
}

/// A signed state of the log: what a proof is anchored to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedState {
    /// Fork id; it grows on every truncation.
    pub fork: u64,
    /// Number of blocks.
    pub length: u64,
    /// The roots of the tree at `length`, left to right.
    pub roots: Vec<Node>,
    /// The signatures over (key, roots hash, length, fork).
    pub signatures: Vec<SignerSignature>,
}

impl SignedState {
    /// The state of an empty log that nobody needs to sign.
    pub fn empty() -> Self {
        SignedState {
            fork: 0,
            length: 0,
            roots: Vec::new(),
            signatures: Vec::new(),
        }
    }

    /// Total byte length of the blocks.
    pub fn byte_length(&self) -> u64 {
        crate::tree::byte_length(&self.roots)
    }

    /// The root whose subtree holds the node at `index`, if any.
    pub fn root_over(&self, index: u64) -> Option<&Node> {
        let (first, last) = flat::block_span(index);
        self.roots.iter().find(|r| {
            let (rf, rl) = flat::block_span(r.index);
            rf <= first && last <= rl
        })
    }
}

/// A request for a proof; any combination of parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProofRequest {
    /// A block with its proof.
    pub block: Option<NodeRequest>,
    /// A tree node (no data) with its proof.
    pub hash: Option<NodeRequest>,
    /// The block that holds a byte offset.
    pub seek: Option<u64>,
    /// An upgrade from the requester's length.
    pub upgrade: Option<UpgradeRequest>,
    /// Include the manifest (the requester does not know it yet).
    pub manifest: bool,
}

/// Which node and how many sibling levels the requester lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRequest {
    /// Block index (for `block`) or flat-tree index (for `hash`).
    pub index: u64,
    /// Sibling levels wanted above the node (the server stops at a root).
    pub nodes: u64,
}

/// An upgrade from the length the requester holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The requester's signed length, in the requester's fork.
    pub start: u64,
    /// The requester's fork; on another fork the upgrade starts from 0.
    pub fork: u64,
}

/// A proof answering a [`ProofRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The fork of the state the proof is anchored to.
    pub fork: u64,
    /// The manifest, when asked for.
    pub manifest: Option<Manifest>,
    /// A block and its sibling path.
    pub block: Option<BlockProof>,
    /// A tree node and its sibling path.
    pub hash: Option<HashProof>,
    /// The leaf holding a byte offset and its full path to a root.
    pub seek: Option<SeekProof>,
    /// A newer signed state and the nodes tying the old one to it.
    pub upgrade: Option<UpgradeProof>,
}

/// A block's bytes and its sibling path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockProof {
    /// Block index.
    pub index: u64,
    /// The block's bytes.
    pub value: Vec<u8>,
    /// Sibling nodes, bottom-up.
    pub nodes: Vec<Node>,
}

/// A tree node and its sibling path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashProof {
    /// The proven node.
    pub node: Node,
    /// Sibling nodes, bottom-up.
    pub nodes: Vec<Node>,
}

/// The leaf holding byte `bytes`, with its sibling path all the way to a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekProof {
    /// The byte offset sought.
    pub bytes: u64,
    /// The leaf of the block that holds it.
    pub leaf: Node,
    /// Sibling nodes, bottom-up, up to a root.
    pub nodes: Vec<Node>,
}

/// A newer signed state, and the nodes that prove the verifier's roots are
/// inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeProof {
    /// The length the verifier held (0 across a fork).
    pub start: u64,
    /// The new length.
    pub length: u64,
    /// The roots at `length`.
    pub roots: Vec<Node>,
    /// Siblings tying the roots at `start` to the new roots, in the order
    /// [`consistency_walk`] visits them.
    pub nodes: Vec<Node>,
    /// Signatures over the new state.
    pub signatures: Vec<SignerSignature>,
}

fn need(source: &impl NodeSource, index: u64) -> Result<Node> {
    source.node(index)?.ok_or(Error::NodeNotAvailable { index })
}

/// Siblings from `index` upward: at most `levels` of them, stopping below a
/// root of `state`.
pub fn sibling_path(
    source: &impl NodeSource,
    state: &SignedState,
    index: u64,
    levels: u64,
) -> Result<Vec<Node>> {
    let root = state
        .root_over(index)
        .ok_or(Error::InvalidArgument("node is outside the signed tree"))?
        .index;
    let mut out = Vec::new();
    let mut cur = index;
    while cur != root && (out.len() as u64) < levels {
        out.push(need(source, flat::sibling(cur))?);
        cur = flat::parent(cur);
    }
    Ok(out)
}

/// The walk that ties old roots to new roots, shared by builder and
/// verifier: old roots right to left, each walked up to a new root unless an
/// earlier walk covered it; at each step the sibling is either known (an old
/// root or computed on the way) or the next node of the proof. Calls
/// `step(current, sibling_index, sibling_known)` and expects the joined
/// parent back.
pub fn consistency_walk<E>(
    old_roots: &[u64],
    new_roots: &[u64],
    mut step: impl FnMut(u64, u64, bool) -> Result<u64, E>,
    malformed: impl Fn() -> E,
) -> Result<(), E> {
    let mut known: HashSet<u64> = old_roots.iter().copied().collect();
    for &start in old_roots.iter().rev() {
        if new_roots.contains(&start) || known_ancestor(&known, start) {
            continue;
        }
        let mut cur = start;
        while !new_roots.contains(&cur) {
            if flat::depth(cur) >= 62 {
                return Err(malformed());
            }
            let sib = flat::sibling(cur);
            cur = step(cur, sib, known.contains(&sib))?;
            known.insert(cur);
        }
    }
    Ok(())
}

fn known_ancestor(known: &HashSet<u64>, index: u64) -> bool {
    let mut cur = index;
    for _ in 0..62 {
        cur = flat::parent(cur);
        if known.contains(&cur) {
            return true;
        }
    }
    false
}

/// The length of the prefix a requester at (`fork`, `length`) provably
/// shares with a holder whose log went through `truncations` (each the
/// fork it started and the length it cut to): its length, cut by every
/// truncation into a later fork.
pub fn common_length(truncations: &[(u64, u64)], fork: u64, length: u64) -> u64 {
    truncations
        .iter()
        .filter(|(f, _)| *f > fork)
        .fold(length, |keep, (_, cut)| keep.min(*cut))
}

/// The fork path sent in an upgrade across forks: the leaf of block
/// `common - 1` (the last block the requester shares with this tree, from
/// [`common_length`]) and its siblings bottom-up to its root. Both
/// children of every node on the way down to the fork point are in it, so
/// the requester finds where its old tree stops agreeing with the new one
/// (see [`fork_point`]) and keeps every block before. Empty for 0, and
/// when this tree lacks a node of the path (a sparse holder): the requester
/// then keeps whole matching roots only.
pub fn fork_path(source: &impl NodeSource, state: &SignedState, common: u64) -> Result<Vec<Node>> {
    let Some(last) = common.min(state.length).checked_sub(1) else {
        return Ok(Vec::new());
    };
    let Some(leaf) = source.node(flat::leaf(last))? else {
        return Ok(Vec::new());
    };
    let mut path = vec![leaf];
    match sibling_path(source, state, leaf.index, u64::MAX) {
        Ok(siblings) => path.extend(siblings),
        Err(Error::NodeNotAvailable { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    Ok(path)
}

/// The number of leading blocks that a local tree (`local`, the old fork)
/// shares with a new tree given by its `roots` and some of its verified
/// nodes (`new`): whole roots that match, then a descent into the first
/// root that differs, going right past every left child that matches and
/// left into one that does not, until the nodes run out. Every block
/// before the result sits under a node equal in both trees.
pub fn fork_point(
    local: &impl NodeSource,
    roots: &[Node],
    new: &std::collections::HashMap<u64, Node>,
) -> Result<u64> {
    let end = |n: &Node| flat::block_span(n.index).1 + 1;
    let mut keep = 0;
    for root in roots {
        if local.node(root.index)? == Some(*root) {
            keep = end(root);
            continue;
        }
        let mut cur = *root;
        while let Some((l, r)) = flat::children(cur.index) {
            let (Some(left), Some(right)) = (new.get(&l), new.get(&r)) else {
                break;
            };
            if local.node(l)? == Some(*left) {
                keep = end(left);
                cur = *right;
            } else {
                cur = *left;
            }
        }
        break;
    }
    Ok(keep)
}

/// Whether two states of the same fork cannot both be part of one
/// history, judged from the states alone (so a relaying peer cannot fake
/// it): the same length with other roots, a root index both have holding
/// different nodes, or a shorter state holding more bytes than a longer
/// one. States of different forks never conflict (a truncation).
pub fn conflicting(a: &SignedState, b: &SignedState) -> bool {
    if a.fork != b.fork {
        return false;
    }
    let (short, long) = if a.length <= b.length { (a, b) } else { (b, a) };
    if short.length == long.length {
        return short.roots != long.roots;
    }
    let shared_differs = short
        .roots
        .iter()
        .any(|r| long.roots.iter().any(|l| l.index == r.index && l != r));
    shared_differs || short.byte_length() > long.byte_length()
}

/// Builds an upgrade proof from `start` (0 across a fork) to `state`.
pub fn upgrade_proof(
    source: &impl NodeSource,
    state: &SignedState,
    start: u64,
) -> Result<UpgradeProof> {
    if start > state.length {
        return Err(Error::InvalidArgument("upgrade start is past the length"));
    }
    let new_roots: Vec<u64> = state.roots.iter().map(|r| r.index).collect();
    let mut nodes = Vec::new();
    consistency_walk(
        &flat::roots(start),
        &new_roots,
        |cur, sib, known| {
            if !known {
                nodes.push(need(source, sib)?);
            }
            Ok(flat::parent(cur))
        },
        || Error::InvalidArgument("upgrade start is not inside the tree"),
    )?;
    Ok(UpgradeProof {
        start,
        length: state.length,
        roots: state.roots.clone(),
        nodes,
        signatures: state.signatures.clone(),
    })
}

/// Builds the proof for `request` from a holder's tree, anchored at
/// `state`. `block_value` must be the requested block's bytes when a block
/// is asked for. Across forks (`upgrade.fork != state.fork`), the upgrade
/// starts from 0 and node paths run to the roots.
pub fn build(
    source: &impl NodeSource,
    state: &SignedState,
    manifest: &Manifest,
    request: &ProofRequest,
    block_value: Option<Vec<u8>>,
) -> Result<Proof> {
    let upgrade = match request.upgrade {
        Some(u) if u.fork == state.fork && u.start >= state.length => None,
        Some(u) => {
            let start = if u.fork == state.fork { u.start } else { 0 };
            let mut proof = upgrade_proof(source, state, start)?;
            proof
                .nodes
                .extend(prologue_part(source, state, manifest, start)?);
            Some(proof)
        }
        None => None,
    };
    let forked = request.upgrade.is_some_and(|u| u.fork != state.fork);
    let levels = |n: u64| if forked { u64::MAX } else { n };
    let block = match request.block {
        Some(b) => {
            if b.index >= state.length {
                return Err(Error::OutOfBounds {
                    index: b.index,
                    length: state.length,
                });
            }
            let value = block_value.ok_or(Error::NotAvailable { index: b.index })?;
            let nodes = sibling_path(source, state, flat::leaf(b.index), levels(b.nodes))?;
            Some(BlockProof {
                index: b.index,
                value,
                nodes,
            })
        }
        None => None,
    };
    let hash = match request.hash {
        Some(h) => {
            let node = need(source, h.index)?;
            let nodes = sibling_path(source, state, h.index, levels(h.nodes))?;
            Some(HashProof { node, nodes })
        }
        None => None,
    };
    let seek = match request.seek {
        Some(bytes) => {
            let (leaf, _) = seek_leaf(source, state, bytes)?;
            let nodes = sibling_path(source, state, leaf.index, u64::MAX)?;
            Some(SeekProof { bytes, leaf, nodes })
        }
        None => None,
    };
    Ok(Proof {
        fork: state.fork,
        manifest: request.manifest.then(|| manifest.clone()),
        block,
        hash,
        seek,
        upgrade,
    })
}

/// What an upgrade from `start` to `state` carries after its consistency
/// nodes when the manifest has a prologue that `start` does not reach and
/// `state` goes past: the prologue's roots, then the consistency nodes from
/// them to `state`'s roots, so the requester checks the longer state
/// extends the prologue. Empty otherwise.
fn prologue_part(
    source: &impl NodeSource,
    state: &SignedState,
    manifest: &Manifest,
    start: u64,
) -> Result<Vec<Node>> {
    let Some(p) = manifest.prologue else {
        return Ok(Vec::new());
    };
    if start >= p.length || state.length <= p.length {
        return Ok(Vec::new());
    }
    let mut nodes = flat::roots(p.length)
        .into_iter()
        .map(|i| need(source, i))
        .collect::<Result<Vec<_>>>()?;
    nodes.extend(upgrade_proof(source, state, p.length)?.nodes);
    Ok(nodes)
}

/// The leaf node holding byte `bytes` and the offset of that byte inside
/// it, found by walking down from the roots.
pub fn seek_leaf(source: &impl NodeSource, state: &SignedState, bytes: u64) -> Result<(Node, u64)> {
    let mut rest = bytes;
    for root in &state.roots {
        if rest >= root.size {
            rest -= root.size;
            continue;
        }
        let mut cur = *root;
        while let Some((l, r)) = flat::children(cur.index) {
            let left = need(source, l)?;
            if rest < left.size {
                cur = left;
            } else {
                rest -= left.size;
                cur = need(source, r)?;
            }
        }
        return Ok((cur, rest));
    }
    Err(Error::InvalidArgument(
        "byte offset is past the byte length",
    ))
}
