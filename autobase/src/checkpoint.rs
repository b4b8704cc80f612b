//! Checkpoints, the pure part: which manifest a view's signed core (and
//! the base's system core) has, and which arriving indexer signatures wait
//! for a state this peer does not hold yet. No I/O; `signed.rs` does the
//! storage around it. The system core ([`system_manifest`]) is signed,
//! checked and trusted exactly as a view's core; below, "view" stands for
//! either.
//!
//! # How checkpoints work
//!
//! Each view `v` of a base has a *signed core* whose manifest lists the
//! base's indexers' signing keys (in the header's order) with quorum
//! `n / 2 + 1`, and a zero-length prologue whose hash is derived from the
//! base key and the view's name ([`view_manifest`]). So every peer derives
//! the same core key from block 0 of the base alone, and two views (or two
//! bases with the same indexers) never share a key.
//!
//! When the indexers change (a new *epoch*, see `linearizer.rs`), every
//! view and the system core get a new signed core whose manifest lists
//! the new indexers' signing keys (in writer key order) and binds the
//! epoch into the key. It holds the whole view again, from entry 0: the
//! new indexers' signatures cover every entry, so it needs nothing of the
//! old core to be trusted. The old core stops at the view's length at the
//! commit that changed the indexers: its indexers sign up to there. The
//! system entry of that commit (the last of the old system core, signed by
//! the old indexers) names the new indexers and their signing keys, so a
//! peer that trusts the old epoch learns the new epoch's core keys from
//! it: the chain from the header's indexers to the newest ones.
//!
//! Every peer appends to its signed core, as an unsigned tail, the view
//! entries of the indexed (final) prefix of the order. They never reorder,
//! so the signed core is never truncated and every peer holds the same tree
//! for the same indexed length. An indexer signs the state (length, roots)
//! its signed core reached and ships the signature in the checkpoint of its
//! next node; any peer adds it with `Core::add_signature`, and the signed
//! length moves once a quorum of indexers signed the same length.
//!
//! # What a peer trusts
//!
//! A signature is checked against this peer's own copy of the view: a
//! signature over other roots (a forged one, or one over a view computed
//! differently) does not verify and is refused, and so is a checkpoint in a
//! node of a writer that is not an indexer. A signature for a length this
//! peer has not indexed yet waits in [`Pending`] (a few per indexer and
//! view) until it has. Nothing a writer sends moves the signed length
//! without a quorum of indexers' valid signatures over this peer's own
//! state.
//!
//! # Liveness
//!
//! Writes and the optimistic view never wait for indexers. The indexed
//! prefix, and so the signed length, needs a majority of the indexers
//! online and acking: with fewer, `indexed_length` and `signed_length` stop
//! (the ack policy then stops acking too) and move again once a majority is
//! back.

use std::collections::BTreeMap;

use hyper_core::{CoreKey, Hash, Manifest, Prologue, PublicKey, Signature};

use crate::error::{Error, Result};

/// How many signatures for lengths not reached yet are kept per indexer and
/// view (the longest ones): enough for an indexer that signs as it goes
/// while this peer catches up, bounded against one that signs far ahead.
pub const MAX_WAITING_SIGNATURES: usize = 8;

/// The manifest of the signed core of view `name` of base `base` in
/// indexer epoch `epoch` (0: the indexers the base was created with; one
/// more after each change), whose indexers' signing keys are `signers`:
/// those signers, quorum `signers / 2 + 1`, and a zero-length prologue that
/// binds the base, the name and the epoch into the key (a prologue of
/// length 0 constrains no block).
pub fn view_manifest(
    base: &CoreKey,
    name: &str,
    signers: &[PublicKey],
    epoch: u64,
) -> Result<Manifest> {
    let (context, mut material) = epoch_material("view", base, epoch);
    material.extend_from_slice(name.as_bytes());
    signed_manifest(context, &material, signers)
}

/// The manifest of the system core of base `base` in epoch `epoch` (see
/// the module docs of `system.rs`): signed as the views' cores are, its
/// prologue derived from the base key and the epoch alone under its own
/// context, so it differs from every view's and per base.
pub fn system_manifest(base: &CoreKey, signers: &[PublicKey], epoch: u64) -> Result<Manifest> {
    let (context, material) = epoch_material("system", base, epoch);
    signed_manifest(context, &material, signers)
}

/// The key derivation context and material for a `kind` core of `base` in
/// `epoch`: epoch 0 keeps the base key alone (the keys of bases whose
/// indexers never changed); later epochs prefix it with the epoch, under
/// their own context, so no two epochs share a key.
fn epoch_material(kind: &str, base: &CoreKey, epoch: u64) -> (&'static str, Vec<u8>) {
    let context = match (kind, epoch) {
        ("view", 0) => "hyper-autobase 2026 view core",
        ("view", _) => "hyper-autobase 2026 view core of a later indexer epoch",
        (_, 0) => "hyper-autobase 2026 system core",
        _ => "hyper-autobase 2026 system core of a later indexer epoch",
    };
    let mut material = Vec::with_capacity(40);
    if epoch > 0 {
        material.extend_from_slice(&epoch.to_le_bytes());
    }
    material.extend_from_slice(&base.0);
    (context, material)
}

/// A quorum manifest of `signers` (quorum `n / 2 + 1`) whose zero-length
/// prologue's hash is `BLAKE3-derive-key(context, material)`.
fn signed_manifest(context: &str, material: &[u8], signers: &[PublicKey]) -> Result<Manifest> {
    let quorum = u8::try_from(signers.len() / 2 + 1)
        .map_err(|_| Error::Malformed("more indexers than a manifest holds"))?;
    let mut manifest = Manifest::quorum(signers.to_vec(), quorum)?;
    manifest.prologue = Some(Prologue {
        hash: Hash(blake3::derive_key(context, material)),
        length: 0,
    });
    Ok(manifest)
}

/// One arriving signature: signer `signer` (its position among the
/// indexers) over view `view` at `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    /// The view's position among the base's views.
    pub view: usize,
    /// The signer's position among the indexers.
    pub signer: usize,
    /// The view length signed.
    pub length: u64,
    /// The signature.
    pub signature: Signature,
}

/// Signatures for view lengths this peer has not reached yet, by view and
/// signer, at most [`MAX_WAITING_SIGNATURES`] each (the longest lengths).
#[derive(Debug, Default)]
pub struct Pending {
    waiting: BTreeMap<(usize, usize), Vec<(u64, Signature)>>,
}

impl Pending {
    /// Keeps `arrived` until the view reaches its length. Returns why an
    /// older signature of the same signer and view was dropped to make
    /// room, if one was.
    pub fn keep(&mut self, arrived: Arrived) -> Option<String> {
        let list = self
            .waiting
            .entry((arrived.view, arrived.signer))
            .or_default();
        if list.iter().any(|(l, _)| *l == arrived.length) {
            return None;
        }
        list.push((arrived.length, arrived.signature));
        list.sort_unstable_by_key(|(l, _)| *l);
        if list.len() > MAX_WAITING_SIGNATURES {
            let (dropped, _) = list.remove(0);
            return Some(format!(
                "signature of indexer {} for view {} at length {dropped} dropped \
                 (superseded): {MAX_WAITING_SIGNATURES} longer ones wait already",
                arrived.signer, arrived.view
            ));
        }
        None
    }

    /// Takes the signatures for `view` at lengths up to `length` (the view
    /// length this peer holds now), in length order.
    pub fn take_ready(&mut self, view: usize, length: u64) -> Vec<Arrived> {
        let mut ready = Vec::new();
        for ((v, signer), list) in self.waiting.iter_mut() {
            if *v != view {
                continue;
            }
            let keep = list.partition_point(|(l, _)| *l <= length);
            ready.extend(list.drain(..keep).map(|(length, signature)| Arrived {
                view,
                signer: *signer,
                length,
                signature,
            }));
        }
        self.waiting.retain(|_, list| !list.is_empty());
        ready.sort_unstable_by_key(|a| (a.length, a.signer));
        ready
    }

    /// How many signatures wait.
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arrived(view: usize, signer: usize, length: u64) -> Arrived {
        Arrived {
            view,
            signer,
            length,
            signature: Signature([length as u8; 64]),
        }
    }

    #[test]
    fn manifest_is_deterministic_and_per_view() -> Result<()> {
        let base = CoreKey([1; 32]);
        let signers: Vec<PublicKey> = (1..=3).map(|i| PublicKey([i; 32])).collect();
        let a = view_manifest(&base, "log", &signers, 0)?;
        assert_eq!(a.quorum, 2);
        assert_eq!(a.signers, signers);
        assert_eq!(a.key(), view_manifest(&base, "log", &signers, 0)?.key());
        assert_ne!(a.key(), view_manifest(&base, "kv", &signers, 0)?.key());
        assert_ne!(
            a.key(),
            view_manifest(&CoreKey([2; 32]), "log", &signers, 0)?.key()
        );
        assert_ne!(
            a.key(),
            view_manifest(&base, "log", &signers[..2], 0)?.key()
        );
        // The system core: its own key per base, no view's.
        let system = system_manifest(&base, &signers, 0)?;
        assert_eq!(system.quorum, 2);
        assert_eq!(system.signers, signers);
        assert_eq!(system.key(), system_manifest(&base, &signers, 0)?.key());
        assert_ne!(system.key(), a.key());
        assert_ne!(system.key(), view_manifest(&base, "", &signers, 0)?.key());
        assert_ne!(
            system.key(),
            system_manifest(&CoreKey([2; 32]), &signers, 0)?.key()
        );
        // Each epoch its own keys, for the same signers too.
        let later = view_manifest(&base, "log", &signers, 1)?;
        assert_ne!(later.key(), a.key());
        assert_ne!(later.key(), view_manifest(&base, "log", &signers, 2)?.key());
        assert_ne!(system_manifest(&base, &signers, 1)?.key(), system.key());
        assert_ne!(system_manifest(&base, &signers, 1)?.key(), later.key());
        for (n, q) in [(1, 1), (2, 2), (4, 3), (5, 3)] {
            let s: Vec<PublicKey> = (0..n).map(|i| PublicKey([i + 10; 32])).collect();
            assert_eq!(view_manifest(&base, "log", &s, 0)?.quorum, q);
        }
        Ok(())
    }

    #[test]
    fn waits_until_the_view_is_long_enough() {
        let mut p = Pending::default();
        assert_eq!(p.keep(arrived(0, 1, 5)), None);
        assert_eq!(p.keep(arrived(0, 2, 3)), None);
        assert_eq!(p.keep(arrived(1, 1, 2)), None);
        assert!(p.take_ready(0, 2).is_empty());
        assert_eq!(p.take_ready(0, 4), vec![arrived(0, 2, 3)]);
        assert_eq!(p.take_ready(0, 9), vec![arrived(0, 1, 5)]);
        assert_eq!(p.take_ready(1, 9), vec![arrived(1, 1, 2)]);
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn keeps_the_longest_few_per_signer() {
        let mut p = Pending::default();
        for l in 1..=MAX_WAITING_SIGNATURES as u64 {
            assert_eq!(p.keep(arrived(0, 0, l * 10)), None);
        }
        // The same length again is not kept twice.
        assert_eq!(p.keep(arrived(0, 0, 10)), None);
        let why = p.keep(arrived(0, 0, 1000)).expect("a signature dropped");
        assert!(why.contains("at length 10 dropped"), "{why}");
        // Another signer has its own room.
        assert_eq!(p.keep(arrived(0, 1, 1)), None);
        assert_eq!(p.waiting(), MAX_WAITING_SIGNATURES + 1);
    }

    proptest! {
        /// Whatever arrives, a signature comes out at most once, only once
        /// the view reached its length, and never more than the bound per
        /// signer waits.
        #[test]
        fn never_early_never_twice(
            ops in prop::collection::vec((0usize..2, 0usize..3, 1u64..50, any::<bool>()), 0..200),
        ) {
            let mut p = Pending::default();
            let mut reached = [0u64; 2];
            let mut out = std::collections::BTreeSet::new();
            for (view, signer, length, take) in ops {
                if take {
                    reached[view] = reached[view].max(length);
                    for a in p.take_ready(view, reached[view]) {
                        prop_assert!(a.length <= reached[view]);
                        prop_assert!(out.insert((a.view, a.signer, a.length)));
                    }
                } else if length > reached[view] {
                    p.keep(arrived(view, signer, length));
                }
                prop_assert!(p.waiting() <= 2 * 3 * MAX_WAITING_SIGNATURES);
            }
        }
    }
}
