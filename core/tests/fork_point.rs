//! When the writer truncates and rewrites, a replica finds the real fork
//! point by descending into the first root that differs, and keeps every
//! block before it. Before, it kept only whole matching roots: rewriting
//! one block at a power-of-two length (one root) discarded the replica.

mod common;

use hyper_core::{Core, Error, VerifyError};

fn full_replica(writer: &Core, reader: &common::TempStore) -> Core {
    let replica = reader.store.replica(&writer.key()).expect("replica");
    let length = writer.info().expect("info").length;
    for i in 0..length {
        replica
            .apply(&[common::honest_block(writer, &replica, i)])
            .expect("download");
    }
    replica
}

fn blocks(n: u32) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("block {i}").into_bytes()).collect()
}

/// Rewrites blocks `from..` of a `length`-block log and checks the replica
/// keeps exactly `0..from` after the fork upgrade.
fn rewrite(length: u32, from: u64) {
    let data = blocks(length);
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let reader = common::store();
    let replica = full_replica(&writer, &reader);
    writer.truncate(from).expect("truncate");
    let rewritten: Vec<Vec<u8>> = (from..u64::from(length))
        .map(|i| format!("rewritten {i}").into_bytes())
        .collect();
    writer.append_batch(&rewritten).expect("append");

    replica
        .apply(&[common::honest_upgrade(&writer, &replica)])
        .expect("fork upgrade");
    let info = replica.info().expect("info");
    assert_eq!((info.fork, info.length), (1, u64::from(length)));
    assert_eq!(
        info.blocks_stored, from,
        "length {length}, rewritten from {from}"
    );
    assert_eq!(info.contiguous_length, from);
    for i in 0..from {
        assert_eq!(replica.get(i).expect("kept"), data[i as usize]);
    }
    assert!(matches!(replica.get(from), Err(Error::NotAvailable { .. })));
    // The kept tree still verifies the new fork's blocks.
    for i in from..u64::from(length) {
        replica
            .apply(&[common::honest_block(&writer, &replica, i)])
            .expect("new block");
        assert_eq!(replica.get(i).expect("get"), rewritten[(i - from) as usize]);
    }
}

#[test]
fn rewriting_the_last_block_at_a_power_of_two_keeps_the_rest() {
    rewrite(8, 7);
    rewrite(64, 63);
}

#[test]
fn rewriting_from_any_block_keeps_every_block_before_it() {
    for from in [0, 1, 4, 5, 13, 31] {
        rewrite(32, from);
    }
    rewrite(300, 250);
}

#[test]
fn a_forged_fork_path_is_refused_and_the_replica_keeps_its_data() {
    let data = blocks(16);
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let reader = common::store();
    let replica = full_replica(&writer, &reader);
    writer.truncate(15).expect("truncate");
    writer.append(b"other").expect("append");
    let honest = common::honest_upgrade(&writer, &replica);
    assert!(!honest.upgrade.as_ref().expect("upgrade").nodes.is_empty());

    let mut bad = honest.clone();
    bad.upgrade.as_mut().expect("upgrade").nodes[1].hash.0[0] ^= 1;
    let err = replica.apply(&[bad]).expect_err("forged fork path");
    assert!(
        matches!(err, Error::Verify(VerifyError::HashMismatch { .. })),
        "{err:?}"
    );
    let mut misplaced = honest.clone();
    misplaced
        .upgrade
        .as_mut()
        .expect("upgrade")
        .nodes
        .swap(1, 2);
    assert!(replica.apply(&[misplaced]).is_err());
    let info = replica.info().expect("info");
    assert_eq!((info.fork, info.blocks_stored), (0, 16));

    replica.apply(&[honest]).expect("honest fork");
    assert_eq!(replica.info().expect("info").blocks_stored, 15);
}

#[test]
fn a_fork_path_with_no_local_match_keeps_nothing_wrong() {
    // A sparse replica holding only block 3 of 8: the descent has no local
    // nodes to compare beyond what it fetched, and keeps only what matches.
    let data = blocks(8);
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");
    replica
        .apply(&[common::honest_block(&writer, &replica, 3)])
        .expect("block 3");
    writer.truncate(6).expect("truncate");
    writer.append_batch(&[b"x", b"y"]).expect("append");
    replica
        .apply(&[common::honest_upgrade(&writer, &replica)])
        .expect("fork upgrade");
    assert_eq!(replica.get(3).expect("kept"), data[3]);
    assert_eq!(replica.info().expect("info").blocks_stored, 1);
}

#[test]
fn a_sparse_holder_still_serves_a_fork_upgrade() {
    let data = blocks(8);
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let (rb, rc) = (common::store(), common::store());
    let c = full_replica(&writer, &rc);
    // B holds only block 1; after the fork it keeps blocks 0-3 of the tree
    // but not the leaf of block 3.
    let b = rb.store.replica(&writer.key()).expect("replica");
    b.apply(&[common::honest_block(&writer, &b, 1)])
        .expect("block 1");
    writer.truncate(6).expect("truncate");
    writer.append_batch(&[b"x", b"y"]).expect("append");
    b.apply(&[common::honest_upgrade(&writer, &b)])
        .expect("B follows the fork");
    assert_eq!(b.get(1).expect("kept"), data[1]);
    // C, at the old fork, follows it through B.
    c.apply(&[common::honest_upgrade(&b, &c)])
        .expect("C follows through B");
    assert_eq!(c.info().expect("info").fork, 1);
    c.apply(&[common::honest_upgrade(&writer, &c)])
        .expect("nothing newer");
    for i in 6..8 {
        c.apply(&[common::honest_block(&writer, &c, i)])
            .expect("new block");
    }
    assert_eq!(c.get(7).expect("get"), b"y");
}
