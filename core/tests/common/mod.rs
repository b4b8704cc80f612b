//! Shared parts of the hostile-peer tests: real stores in temporary
//! directories, and a lying peer that builds honest proofs from a writer's
//! core and then alters them.

#![allow(dead_code)]

use hyper_core::{Core, NodeRequest, Proof, ProofRequest, Store, UpgradeRequest};

/// A store in its own temporary directory (kept alive with it).
pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

/// Opens a fresh store in a new temporary directory.
pub fn store() -> TempStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    TempStore { dir, store }
}

/// A writer store with one named core holding `blocks`.
pub fn writer(blocks: &[&[u8]]) -> (TempStore, Core) {
    let s = store();
    let core = s.store.named("log").expect("named core");
    if !blocks.is_empty() {
        core.append_batch(blocks).expect("append");
    }
    (s, core)
}

/// An honest proof of block `index` for `replica`, with an upgrade from its
/// length and the manifest.
pub fn honest_block(writer: &Core, replica: &Core, index: u64) -> Proof {
    let info = replica.info().expect("info");
    writer
        .proof(&ProofRequest {
            block: Some(NodeRequest {
                index,
                nodes: replica.missing_nodes(index).expect("missing"),
            }),
            upgrade: Some(UpgradeRequest {
                start: info.length,
                fork: info.fork,
            }),
            manifest: true,
            ..Default::default()
        })
        .expect("honest proof")
}

/// An honest upgrade (with the manifest) from the replica's state.
pub fn honest_upgrade(writer: &Core, replica: &Core) -> Proof {
    let info = replica.info().expect("info");
    writer
        .proof(&ProofRequest {
            upgrade: Some(UpgradeRequest {
                start: info.length,
                fork: info.fork,
            }),
            manifest: true,
            ..Default::default()
        })
        .expect("honest upgrade")
}

use hyper_core::{CoreKey, KeyPair, Manifest, Node, SignerSignature, UpgradeProof};

/// A writer that lies: it holds the core's signing key and signs whatever
/// tree it likes, so only the verifier's own checks stand between its
/// proofs and a reader's store.
pub struct LyingWriter {
    pub pair: KeyPair,
    pub manifest: Manifest,
}

impl LyingWriter {
    /// A lying writer with a fixed key.
    pub fn new() -> Self {
        let pair = KeyPair::from_seed([77; 32]);
        LyingWriter {
            manifest: Manifest::single(pair.public_key()),
            pair,
        }
    }

    /// The core key.
    pub fn key(&self) -> CoreKey {
        self.manifest.key()
    }

    /// Valid signatures over (`roots`, `length`, `fork`).
    pub fn sign(&self, roots: &[Node], length: u64, fork: u64) -> Vec<SignerSignature> {
        let message = hyper_core::signable_message(&self.key(), roots, length, fork);
        self.manifest
            .sign(&message, std::slice::from_ref(&self.pair))
    }

    /// A signed upgrade from 0 to `length` with these roots.
    pub fn upgrade(&self, roots: Vec<Node>, length: u64, fork: u64) -> UpgradeProof {
        UpgradeProof {
            start: 0,
            length,
            signatures: self.sign(&roots, length, fork),
            roots,
            nodes: Vec::new(),
        }
    }

    /// A proof carrying only the manifest and `upgrade`.
    pub fn proof(&self, fork: u64, upgrade: UpgradeProof) -> Proof {
        upgrade_only(&self.manifest, fork, upgrade)
    }
}

/// A proof carrying only `manifest` and `upgrade`.
pub fn upgrade_only(manifest: &Manifest, fork: u64, upgrade: UpgradeProof) -> Proof {
    Proof {
        fork,
        manifest: Some(manifest.clone()),
        block: None,
        hash: None,
        seek: None,
        upgrade: Some(upgrade),
    }
}
