//! A manifest's prologue fixes the first blocks of a log: a longer state
//! must extend it. A lying writer that signs a longer history whose first
//! blocks differ is refused by a fresh reader; a store cannot append it.

mod common;

use hyper_core::{
    Core, Error, KeyPair, MANIFEST_VERSION, Manifest, Node, Prologue, Store, VerifyError,
};

/// The prologue of blocks `a`, `b`, and a manifest with it.
fn prologue_manifest(pair: &KeyPair) -> Manifest {
    let mut roots = Vec::new();
    hyper_core::append_nodes(&mut roots, [Node::leaf(0, b"a"), Node::leaf(1, b"b")]);
    Manifest {
        version: MANIFEST_VERSION,
        signers: vec![pair.public_key()],
        quorum: 1,
        prologue: Some(Prologue::of(2, &roots)),
    }
}

fn writer_in(store: &Store) -> Core {
    let pair = KeyPair::from_seed([60; 32]);
    store
        .create_with_manifest(prologue_manifest(&pair), vec![pair])
        .expect("core")
}

#[test]
fn a_longer_signed_history_that_breaks_the_prologue_is_refused() {
    // The liar holds the key and keeps its own tree [a, x, c].
    let liar = common::store();
    let forged = writer_in(&liar.store);
    // Its store refuses to append blocks that break the prologue ...
    assert!(matches!(
        forged.append_batch(&[b"a".as_slice(), b"x", b"c"]),
        Err(Error::InvalidArgument(_))
    ));
    // ... so it signs the state by hand.
    let pair = KeyPair::from_seed([60; 32]);
    let manifest = prologue_manifest(&pair);
    let mut roots = Vec::new();
    hyper_core::append_nodes(
        &mut roots,
        [
            Node::leaf(0, b"a"),
            Node::leaf(1, b"x"),
            Node::leaf(2, b"c"),
        ],
    );
    let message = hyper_core::signable_message(&manifest.key(), &roots, 3, 0);
    let proof = common::upgrade_only(
        &manifest,
        0,
        hyper_core::UpgradeProof {
            start: 0,
            length: 3,
            roots: roots.clone(),
            nodes: vec![],
            signatures: manifest.sign(&message, &[pair]),
        },
    );
    let reader = common::store();
    let replica = reader.store.replica(&manifest.key()).expect("replica");
    let err = replica
        .apply(std::slice::from_ref(&proof))
        .expect_err("prologue not checked");
    assert!(
        matches!(err, Error::Verify(VerifyError::Malformed(m)) if m.contains("prologue")),
        "{err:?}"
    );
    // Offering the real prologue's roots does not help: they do not walk
    // up to the forged roots.
    let mut with_part = proof;
    let mut prologue_roots = Vec::new();
    hyper_core::append_nodes(
        &mut prologue_roots,
        [Node::leaf(0, b"a"), Node::leaf(1, b"b")],
    );
    let u = with_part.upgrade.as_mut().expect("upgrade");
    u.nodes = prologue_roots;
    u.nodes.push(Node::leaf(2, b"c"));
    assert!(replica.apply(&[with_part]).is_err());
    assert_eq!(replica.info().expect("info").length, 0);
}

#[test]
fn an_honest_history_past_the_prologue_verifies_from_scratch() {
    let w = common::store();
    let writer = writer_in(&w.store);
    writer
        .append_batch(&[b"a".as_slice(), b"b", b"c", b"d", b"e"])
        .expect("extends the prologue");
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");
    replica
        .apply(&[common::honest_block(&writer, &replica, 4)])
        .expect("honest");
    assert_eq!(replica.info().expect("info").length, 5);
    assert_eq!(replica.get(4).expect("get"), b"e");
    // Across a fork too (the writer rewrites past the prologue).
    writer.truncate(3).expect("truncate");
    writer.append(b"D").expect("append");
    replica
        .apply(&[common::honest_upgrade(&writer, &replica)])
        .expect("fork upgrade");
    let info = replica.info().expect("info");
    assert_eq!((info.fork, info.length, info.blocks_stored), (1, 4, 0));
    // The prologue itself needs no signature.
    let fresh = common::store();
    let other = fresh.store.replica(&writer.key()).expect("replica");
    let mut at_prologue = writer
        .proof(&hyper_core::ProofRequest {
            upgrade: Some(hyper_core::UpgradeRequest { start: 0, fork: 1 }),
            manifest: true,
            ..Default::default()
        })
        .expect("proof");
    let u = at_prologue.upgrade.as_mut().expect("upgrade");
    let mut roots = Vec::new();
    hyper_core::append_nodes(&mut roots, [Node::leaf(0, b"a"), Node::leaf(1, b"b")]);
    u.length = 2;
    u.roots = roots;
    u.nodes.clear();
    u.signatures.clear();
    at_prologue.fork = 1;
    other
        .apply(&[at_prologue])
        .expect("prologue without signature");
    assert_eq!(other.info().expect("info").length, 2);
}
