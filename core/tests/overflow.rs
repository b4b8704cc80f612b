//! Sizes and offsets from a peer that overflow `u64` are refused as
//! malformed, never wrapped. The peer here is the writer itself, lying: it
//! signs a tree whose parent sizes only add up modulo 2^64.

mod common;

use hyper_core::{BlockProof, Error, Hash, Node, VerifyError};

#[test]
fn a_signed_tree_whose_sizes_wrap_is_refused() {
    let liar = common::LyingWriter::new();
    let leaf0 = Node::leaf(0, b"a");
    // A sibling whose size makes the parent's size wrap to 0.
    let leaf2 = Node {
        index: 2,
        size: u64::MAX,
        hash: Hash([5; 32]),
    };
    let root = Node::parent(&leaf0, &leaf2);
    assert_eq!(root.size, 0, "the wrapped size the liar signs");
    let mut proof = liar.proof(0, liar.upgrade(vec![root], 2, 0));
    proof.block = Some(BlockProof {
        index: 0,
        value: b"a".to_vec(),
        nodes: vec![leaf2],
    });

    let reader = common::store();
    let replica = reader.store.replica(&liar.key()).expect("replica");
    let err = replica
        .apply(std::slice::from_ref(&proof))
        .expect_err("wrapped sizes accepted");
    assert!(
        matches!(err, Error::Verify(VerifyError::Malformed(m)) if m.contains("overflow")),
        "{err:?}"
    );
    assert_eq!(replica.info().expect("info").length, 0, "nothing stored");
    assert!(!replica.has(0).expect("has"));

    // Without the block, the signed state itself is consistent (sizes are
    // the writer's to choose) and is accepted; the wrapped path still is not.
    proof.block = None;
    replica.apply(&[proof]).expect("upgrade alone");
    let block_only = hyper_core::Proof {
        fork: 0,
        manifest: None,
        block: Some(BlockProof {
            index: 0,
            value: b"a".to_vec(),
            nodes: vec![leaf2],
        }),
        hash: None,
        seek: None,
        upgrade: None,
    };
    let err = replica
        .apply(&[block_only])
        .expect_err("wrapped join accepted");
    assert!(
        matches!(err, Error::Verify(VerifyError::Malformed(_))),
        "{err:?}"
    );
    assert!(!replica.has(0).expect("has"));
}

#[test]
fn an_upgrade_whose_roots_overflow_is_refused() {
    let liar = common::LyingWriter::new();
    // Length 3: a root over blocks 0-1 and a leaf, sizes adding past u64.
    let roots = vec![
        Node {
            index: 1,
            size: u64::MAX,
            hash: Hash([1; 32]),
        },
        Node {
            index: 4,
            size: 2,
            hash: Hash([2; 32]),
        },
    ];
    let reader = common::store();
    let replica = reader.store.replica(&liar.key()).expect("replica");
    let err = replica
        .apply(&[liar.proof(0, liar.upgrade(roots, 3, 0))])
        .expect_err("overflowing byte length accepted");
    assert!(
        matches!(err, Error::Verify(VerifyError::Malformed(_))),
        "{err:?}"
    );
}
