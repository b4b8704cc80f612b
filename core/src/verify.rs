//! Verification of proofs from an untrusted peer. Pure logic: the trusted
//! nodes come from a [`NodeSource`] (the local tree) plus what this verifier
//! has already accepted.

use std::collections::HashMap;

use crate::error::{Corruption, Error, Result, VerifyError};
use crate::flat;
use crate::hash;
use crate::keys::CoreKey;
use crate::manifest::Manifest;
use crate::proof::{MAX_LENGTH, NodeSource, Proof, SignedState, UpgradeProof, consistency_walk};
use crate::tree::Node;

/// Sizes or offsets from a peer that do not fit in `u64`: refused, never
/// wrapped.
const OVERFLOW: VerifyError = VerifyError::Malformed("sizes or offsets overflow u64");

/// Two signed states of one core at one fork that cannot both be part of
/// one history: the writer (or a quorum of signers) equivocated. Both are
/// kept as evidence ([`Core::equivocation`](crate::Core::equivocation)); each
/// verifies on its own against the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The state this reader trusted.
    pub local: SignedState,
    /// The conflicting state a peer brought.
    pub remote: SignedState,
}

/// What a proof established, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The manifest, when this proof taught it.
    pub manifest: Option<Manifest>,
    /// The new signed state, when the proof upgraded it.
    pub upgrade: Option<SignedState>,
    /// Whether the upgrade moved to another fork (local data must be pruned).
    pub fork_changed: bool,
    /// The index of the verified block (its bytes are the proof's).
    pub block: Option<u64>,
    /// A verified tree node.
    pub hash: Option<Node>,
    /// A verified seek: block index and offset inside that block.
    pub seek: Option<(u64, u64)>,
    /// Every node now trusted that the local tree may not hold yet.
    pub nodes: Vec<Node>,
}

/// Checks proofs against a trusted state. One verifier may check several
/// proofs in a row; each builds on what the previous ones established.
pub struct Verifier<S> {
    key: CoreKey,
    manifest: Option<Manifest>,
    state: SignedState,
    source: Option<S>,
    accepted: HashMap<u64, Node>,
}

impl<S: NodeSource> Verifier<S> {
    /// A verifier for the core `key`, trusting `state` and the nodes of
    /// `source`. `manifest` is `None` while the reader has not learned it.
    pub fn new(key: CoreKey, manifest: Option<Manifest>, state: SignedState, source: S) -> Self {
        Verifier {
            key,
            manifest,
            state,
            source: Some(source),
            accepted: HashMap::new(),
        }
    }

    /// The trusted state after the proofs verified so far.
    pub fn state(&self) -> &SignedState {
        &self.state
    }

    /// Verifies one proof. On error nothing of this proof is accepted.
    pub fn verify(&mut self, proof: &Proof) -> Result<Verified> {
        let learned = self.check_manifest(proof)?;
        let manifest = learned
            .clone()
            .or_else(|| self.manifest.clone())
            .ok_or(VerifyError::ManifestMissing)?;
        let mut out = Verified {
            manifest: learned,
            upgrade: None,
            fork_changed: false,
            block: None,
            hash: None,
            seek: None,
            nodes: Vec::new(),
        };
        let mut next = self.state.clone();
        let mut staged: HashMap<u64, Node> = HashMap::new();
        let mut forked = false;
        match &proof.upgrade {
            Some(u) if proof.fork != self.state.fork || u.length > self.state.length => {
                forked = proof.fork != self.state.fork;
                if forked && proof.fork < self.state.fork {
                    return Err(VerifyError::ForkMismatch {
                        proof: proof.fork,
                        local: self.state.fork,
                    }
                    .into());
                }
                next = self.check_upgrade(&manifest, proof.fork, u, forked, &mut staged)?;
                out.fork_changed = forked;
                out.upgrade = Some(next.clone());
            }
            // Not newer: still evidence if the writer signed it and it
            // conflicts with the trusted state.
            Some(u) if proof.fork == self.state.fork && self.state.length > 0 => {
                if let (remote, true) = self.signed_state(&manifest, proof.fork, u)? {
                    self.check_conflict(&remote)?;
                }
            }
            _ if proof.fork != self.state.fork => {
                return Err(VerifyError::ForkMismatch {
                    proof: proof.fork,
                    local: self.state.fork,
                }
                .into());
            }
            _ => {}
        }
        let view = View {
            verifier: self,
            state: &next,
            staged: &staged,
            forked,
        };
        let mut path = Vec::new();
        if let Some(b) = &proof.block {
            if b.index >= next.length {
                return Err(VerifyError::OutOfBounds {
                    index: b.index,
                    length: next.length,
                }
                .into());
            }
            path.extend(view.anchor(Node::leaf(b.index, &b.value), &b.nodes)?);
            out.block = Some(b.index);
        }
        if let Some(h) = &proof.hash {
            path.extend(view.anchor(h.node, &h.nodes)?);
            out.hash = Some(h.node);
        }
        if let Some(s) = &proof.seek {
            out.seek = Some(view.check_seek(s.bytes, s.leaf, &s.nodes)?);
            path.extend(view.anchor(s.leaf, &s.nodes)?);
        }
        // Everything checked: accept.
        if forked {
            self.accepted.clear();
            self.source = None;
        }
        // check_manifest only returns a manifest the verifier did not know.
        if out.manifest.is_some() {
            self.manifest = out.manifest.clone();
        }
        for n in staged.into_values().chain(path) {
            if self.accepted.insert(n.index, n).is_none() {
                out.nodes.push(n);
            }
        }
        self.state = next;
        Ok(out)
    }

    fn check_manifest(&self, proof: &Proof) -> Result<Option<Manifest>, VerifyError> {
        match &proof.manifest {
            Some(m) if m.key() != self.key => Err(VerifyError::ManifestMismatch),
            Some(m) if self.manifest.is_none() => {
                m.validate()?;
                Ok(Some(m.clone()))
            }
            _ => Ok(None),
        }
    }

    fn check_upgrade(
        &self,
        manifest: &Manifest,
        fork: u64,
        u: &UpgradeProof,
        forked: bool,
        staged: &mut HashMap<u64, Node>,
    ) -> Result<SignedState, VerifyError> {
        let (remote, signed) = self.signed_state(manifest, fork, u)?;
        let expected_start = if forked { 0 } else { self.state.length };
        if u.start != expected_start {
            return Err(VerifyError::Malformed(
                "upgrade start is not the local length",
            ));
        }
        if signed && !forked {
            self.check_conflict(&remote)?;
        }
        let old: &[Node] = if forked { &[] } else { &self.state.roots };
        let mut extra = u.nodes.iter();
        walk_to_roots(old, &u.roots, &mut extra, staged)?;
        if let Some(p) = manifest.prologue
            && u.length > p.length
            && (forked || self.state.length < p.length)
        {
            // The new state must hold the prologue's tree: its roots, then
            // the walk from them to the new roots.
            let count = flat::roots(p.length).len();
            let prologue: Vec<Node> = extra.by_ref().take(count).copied().collect();
            let fits = prologue.iter().map(|n| n.index).eq(flat::roots(p.length));
            if !fits || hash::roots(&prologue) != p.hash {
                return Err(VerifyError::Malformed(
                    "upgrade does not extend the manifest's prologue",
                ));
            }
            for n in &prologue {
                staged.insert(n.index, *n);
            }
            walk_to_roots(&prologue, &u.roots, &mut extra, staged)?;
        }
        let rest: Vec<Node> = extra.copied().collect();
        if forked {
            check_fork_path(&rest, &u.roots, staged)?;
        } else if !rest.is_empty() {
            return Err(VerifyError::Malformed("upgrade has extra nodes"));
        }
        for r in &u.roots {
            staged.insert(r.index, *r);
        }
        if u.roots
            .iter()
            .try_fold(0u64, |acc, r| acc.checked_add(r.size))
            .is_none()
        {
            return Err(OVERFLOW);
        }
        Ok(remote)
    }

    /// The state an upgrade claims, checked on its own: a length below
    /// [`MAX_LENGTH`], roots that fit it, and a quorum of signatures (or
    /// the manifest's prologue). The flag says whether it was signed.
    fn signed_state(
        &self,
        manifest: &Manifest,
        fork: u64,
        u: &UpgradeProof,
    ) -> Result<(SignedState, bool), VerifyError> {
        if u.length >= MAX_LENGTH {
            return Err(VerifyError::Malformed("upgrade length is not below 2^56"));
        }
        if !u.roots.iter().map(|r| r.index).eq(flat::roots(u.length)) {
            return Err(VerifyError::Malformed(
                "upgrade roots do not fit its length",
            ));
        }
        let roots_hash = hash::roots(&u.roots);
        let in_prologue = manifest
            .prologue
            .is_some_and(|p| p.length == u.length && p.hash == roots_hash);
        if !in_prologue {
            let message = hash::signable(&self.key, &roots_hash, u.length, fork);
            manifest.verify(&message, &u.signatures)?;
        }
        let state = SignedState {
            fork,
            length: u.length,
            roots: u.roots.clone(),
            signatures: u.signatures.clone(),
        };
        Ok((state, !in_prologue))
    }

    /// Refuses a signed state that cannot belong to the same history as
    /// the trusted one (see [`proof::conflicting`](crate::proof::conflicting)):
    /// the writer signed both, which is evidence of equivocation.
    fn check_conflict(&self, remote: &SignedState) -> Result<(), VerifyError> {
        if crate::proof::conflicting(&self.state, remote) {
            return Err(VerifyError::Equivocation(Box::new(Equivocation {
                local: self.state.clone(),
                remote: remote.clone(),
            })));
        }
        Ok(())
    }
}

/// The consistency walk (see [`consistency_walk`]) from trusted `old`
/// roots to the new `roots`, taking the siblings it lacks from `extra`:
/// every parent it computes on the way must equal a new root where it
/// meets one. Stages the nodes it took and computed.
fn walk_to_roots(
    old: &[Node],
    roots: &[Node],
    extra: &mut std::slice::Iter<'_, Node>,
    staged: &mut HashMap<u64, Node>,
) -> Result<(), VerifyError> {
    let mut values: HashMap<u64, Node> = old.iter().map(|n| (n.index, *n)).collect();
    let old_idx: Vec<u64> = old.iter().map(|n| n.index).collect();
    let new_idx: Vec<u64> = roots.iter().map(|n| n.index).collect();
    // An old root that is also a new root must be the same node.
    if let Some(o) = old
        .iter()
        .find(|o| roots.iter().any(|r| r.index == o.index && r != *o))
    {
        return Err(VerifyError::HashMismatch { index: o.index });
    }
    consistency_walk(
        &old_idx,
        &new_idx,
        |cur, sib, known| {
            let here = *values.get(&cur).ok_or(VerifyError::Malformed("walk"))?;
            let other = if known {
                *values.get(&sib).ok_or(VerifyError::Malformed("walk"))?
            } else {
                let n = *extra
                    .next()
                    .ok_or(VerifyError::Malformed("upgrade nodes missing"))?;
                if n.index != sib {
                    return Err(VerifyError::Malformed("upgrade node out of place"));
                }
                staged.insert(n.index, n);
                n
            };
            let up = here.checked_join(&other).ok_or(OVERFLOW)?;
            if let Some(root) = roots.iter().find(|r| r.index == up.index)
                && *root != up
            {
                return Err(VerifyError::HashMismatch { index: up.index });
            }
            values.insert(up.index, up);
            staged.insert(up.index, up);
            Ok(up.index)
        },
        || VerifyError::Malformed("upgrade walk does not reach a root"),
    )
}

/// Checks the fork path of an upgrade across forks (see
/// [`proof::fork_path`](crate::proof::fork_path)): a leaf and its siblings
/// bottom-up, hashing exactly to one of the new `roots`. Stages every node
/// of the path, so the reader can find how far its old tree agrees.
fn check_fork_path(
    path: &[Node],
    roots: &[Node],
    staged: &mut HashMap<u64, Node>,
) -> Result<(), VerifyError> {
    let Some((leaf, siblings)) = path.split_first() else {
        return Ok(());
    };
    if flat::depth(leaf.index) != 0 {
        return Err(VerifyError::Malformed("fork path does not start at a leaf"));
    }
    let mut found = Vec::with_capacity(2 * path.len());
    found.push(*leaf);
    let mut cur = *leaf;
    for sib in siblings {
        if roots.iter().any(|r| r.index == cur.index) || sib.index != flat::sibling(cur.index) {
            return Err(VerifyError::Malformed("fork path node out of place"));
        }
        cur = cur.checked_join(sib).ok_or(OVERFLOW)?;
        found.extend([*sib, cur]);
    }
    match roots.iter().find(|r| r.index == cur.index) {
        Some(root) if *root == cur => {
            staged.extend(found.into_iter().map(|n| (n.index, n)));
            Ok(())
        }
        Some(_) => Err(VerifyError::HashMismatch { index: cur.index }),
        None => Err(VerifyError::Malformed("fork path does not reach a root")),
    }
}

/// The trusted nodes as seen while one proof is checked.
struct View<'a, S> {
    verifier: &'a Verifier<S>,
    state: &'a SignedState,
    staged: &'a HashMap<u64, Node>,
    forked: bool,
}

impl<S: NodeSource> View<'_, S> {
    fn trusted(&self, index: u64) -> Result<Option<Node>> {
        if let Some(n) = self.staged.get(&index) {
            return Ok(Some(*n));
        }
        if let Some(r) = self.state.roots.iter().find(|r| r.index == index) {
            return Ok(Some(*r));
        }
        if self.forked {
            return Ok(None);
        }
        if let Some(n) = self.verifier.accepted.get(&index) {
            return Ok(Some(*n));
        }
        match &self.verifier.source {
            Some(s) => s.node(index),
            None => Ok(None),
        }
    }

    /// The error for a path from a peer that disagrees with the trusted
    /// node `local`. Nodes of this proof, the signed roots and nodes
    /// accepted earlier are verified, so the peer is at fault; a node read
    /// from the local tree is first checked against the signed roots (its
    /// stored path up to them): if that fails the local copy is damaged
    /// ([`Corruption::TreeNode`]), not the peer's proof.
    fn disagreement(&self, local: Node) -> Error {
        let peer_fault = VerifyError::HashMismatch { index: local.index }.into();
        let verified = self.staged.contains_key(&local.index)
            || self.state.roots.iter().any(|r| r.index == local.index)
            || self.verifier.accepted.contains_key(&local.index);
        if verified {
            return peer_fault;
        }
        match self.local_matches_roots(local) {
            Ok(false) => Corruption::TreeNode {
                core: self.verifier.key,
                index: local.index,
            }
            .into(),
            Ok(true) => peer_fault,
            Err(e) => e,
        }
    }

    /// Whether `node` hashes, with the trusted siblings on its way, to the
    /// signed root above it and agrees with every trusted ancestor. A path
    /// that stops at a node nobody holds cannot be decided and counts as a
    /// match (the peer is blamed, as before).
    fn local_matches_roots(&self, node: Node) -> Result<bool> {
        let mut cur = node;
        for _ in 0..64 {
            if let Some(root) = self.state.roots.iter().find(|r| r.index == cur.index) {
                return Ok(*root == cur);
            }
            let Some(sib) = self.trusted(flat::sibling(cur.index))? else {
                return Ok(true);
            };
            let Some(up) = cur.checked_join(&sib) else {
                return Ok(false);
            };
            if self.trusted(up.index)?.is_some_and(|t| t != up) {
                return Ok(false);
            }
            cur = up;
        }
        Ok(false)
    }

    /// Walks `start` up through `siblings`, checking against every trusted
    /// node on the way; the walk must end on a trusted node. Returns the
    /// nodes of the path that are not trusted yet (the anchor, already held,
    /// is left out so it is not written again).
    fn anchor(&self, start: Node, siblings: &[Node]) -> Result<Vec<Node>> {
        let root = self
            .state
            .root_over(start.index)
            .ok_or(VerifyError::Malformed("node is outside the signed tree"))?
            .index;
        let mut path = vec![start];
        let mut cur = start;
        let mut it = siblings.iter();
        loop {
            let trusted = self.trusted(cur.index)?;
            if let Some(t) = trusted
                && t != cur
            {
                return Err(self.disagreement(t));
            }
            let Some(sib) = it.next() else {
                return match trusted {
                    Some(_) => {
                        path.pop();
                        Ok(path)
                    }
                    None => Err(VerifyError::Unanchored { index: cur.index }.into()),
                };
            };
            if cur.index == root || sib.index != flat::sibling(cur.index) {
                return Err(VerifyError::Malformed("sibling out of place").into());
            }
            cur = cur.checked_join(sib).ok_or(OVERFLOW)?;
            path.push(*sib);
            path.push(cur);
        }
    }

    /// Checks that the leaf holds byte `bytes`, from the sizes of the left
    /// siblings on a full path to the root and the roots to its left.
    fn check_seek(&self, bytes: u64, leaf: Node, siblings: &[Node]) -> Result<(u64, u64)> {
        if flat::depth(leaf.index) != 0 {
            return Err(VerifyError::Malformed("seek proof is not a leaf").into());
        }
        let root = self
            .state
            .root_over(leaf.index)
            .ok_or(VerifyError::Malformed("node is outside the signed tree"))?
            .index;
        let mut start = self
            .state
            .roots
            .iter()
            .take_while(|r| r.index != root)
            .try_fold(0u64, |acc, r| acc.checked_add(r.size))
            .ok_or(OVERFLOW)?;
        let mut cur = leaf.index;
        for sib in siblings {
            if !flat::is_left(cur) {
                start = start.checked_add(sib.size).ok_or(OVERFLOW)?;
            }
            cur = flat::parent(cur);
        }
        if cur != root {
            return Err(VerifyError::Malformed("seek proof does not reach a root").into());
        }
        if bytes < start || bytes - start >= leaf.size {
            return Err(VerifyError::SeekMismatch { bytes }.into());
        }
        Ok((leaf.index / 2, bytes - start))
    }
}
