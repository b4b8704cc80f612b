//! A lying peer answers with a valid proof plus an unrequested pair of
//! siblings whose sizes it split differently (same sum). Before store format
//! 4 a parent hash committed only the sum, so the reader stored the forged
//! sizes as trusted and from then on failed every honest peer's proof.

mod common;

use hyper_core::{Error, HashProof, NodeRequest, ProofRequest, VerifyError};

/// The honest proof of node 1 (blocks 0 and 1) with its sibling node 5,
/// anchored to the root node 3 of a 4-block log, with sizes moved by
/// `shift` from node 1 to node 5 (wrapping).
fn forged_pair(shift: u64) {
    let (_w, writer) = common::writer(&[b"a", b"bb", b"ccc", b"dddd"]);
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");

    let mut proof = common::honest_upgrade(&writer, &replica);
    let honest_hash = writer
        .proof(&ProofRequest {
            hash: Some(NodeRequest { index: 1, nodes: 1 }),
            ..Default::default()
        })
        .expect("hash proof")
        .hash
        .expect("hash part");
    let mut node = honest_hash.node;
    let mut sibling = honest_hash.nodes[0];
    assert_eq!((node.index, sibling.index), (1, 5));
    node.size = node.size.wrapping_add(shift);
    sibling.size = sibling.size.wrapping_sub(shift);
    proof.hash = Some(HashProof {
        node,
        nodes: vec![sibling],
    });

    let err = replica.apply(&[proof]).expect_err("forged sizes accepted");
    assert!(
        matches!(
            err,
            Error::Verify(VerifyError::HashMismatch { index: 3 } | VerifyError::Malformed(_))
        ),
        "{err:?}"
    );
    // Nothing of the lying proof was stored, and an honest peer's proof of
    // every block still verifies.
    assert_eq!(replica.info().expect("info").length, 0);
    for i in 0..4 {
        replica
            .apply(&[common::honest_block(&writer, &replica, i)])
            .expect("honest proof verifies");
        assert_eq!(replica.get(i).expect("get"), writer.get(i).expect("get"));
    }
    assert_eq!(replica.seek(6).expect("seek"), (3, 0));
}

#[test]
fn sibling_sizes_split_differently_are_rejected() {
    forged_pair(1);
}

#[test]
fn sibling_sizes_split_across_u64_wrap_are_rejected() {
    forged_pair(1 << 63);
    forged_pair(u64::MAX);
}
