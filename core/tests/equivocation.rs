//! A writer that signs two histories under one key: two stores holding the
//! same key pair append different blocks. A reader that meets both keeps
//! the two signed states as evidence and reports the conflict.

mod common;

use hyper_core::{
    Core, Error, KeyPair, Manifest, ProofRequest, Store, UpgradeRequest, VerifyError,
};

fn same_writer_in(store: &Store) -> Core {
    let pair = KeyPair::from_seed([21; 32]);
    store
        .create_with_manifest(Manifest::single(pair.public_key()), vec![pair])
        .expect("writer")
}

fn full_replica(writer: &Core, replica: &Core) {
    let length = writer.info().expect("info").length;
    for i in 0..length {
        replica
            .apply(&[common::honest_block(writer, replica, i)])
            .expect("download");
    }
}

fn assert_equivocation(err: Error, local: &Core, remote: &Core) {
    let Error::Verify(VerifyError::Equivocation(e)) = err else {
        panic!("not reported as equivocation: {err:?}");
    };
    assert_eq!(e.local, local.signed_state().expect("state"));
    assert_eq!(e.remote, remote.signed_state().expect("state"));
}

#[test]
fn two_signed_states_of_one_length_are_kept_as_evidence() {
    let (sa, sb, sr) = (common::store(), common::store(), common::store());
    let (a, b) = (same_writer_in(&sa.store), same_writer_in(&sb.store));
    assert_eq!(a.key(), b.key());
    a.append_batch(&[b"a", b"b", b"c"]).expect("append");
    b.append_batch(&[b"a", b"b", b"x"]).expect("append");
    let replica = sr.store.replica(&a.key()).expect("replica");
    full_replica(&a, &replica);
    assert_eq!(replica.equivocation().expect("evidence"), None);

    // B shows its signed state of the same length.
    let proof = b
        .proof(&ProofRequest {
            upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
            ..Default::default()
        })
        .expect("proof");
    let err = replica.apply(&[proof]).expect_err("conflict accepted");
    assert_equivocation(err, &a, &b);

    // The evidence is in the store, survives a reopen, and each state
    // verifies on its own; the replica keeps serving its own history.
    let key = replica.key();
    drop(replica);
    let dir = sr.dir;
    drop(sr.store);
    let store = Store::open(dir.path()).expect("reopen");
    let replica = store.core(&key).expect("core");
    let evidence = replica
        .equivocation()
        .expect("read")
        .expect("evidence kept");
    assert_eq!(evidence.local, a.signed_state().expect("state"));
    assert_eq!(evidence.remote, b.signed_state().expect("state"));
    let manifest = a.manifest().expect("manifest").expect("known");
    for s in [&evidence.local, &evidence.remote] {
        let message = hyper_core::signable_message(&key, &s.roots, s.length, s.fork);
        assert_eq!(manifest.verify(&message, &s.signatures), Ok(()));
    }
    assert_eq!(replica.get(2).expect("own history"), b"c");
    assert_eq!(
        replica.signed_state().expect("state"),
        a.signed_state().expect("a")
    );
}

#[test]
fn a_longer_conflicting_upgrade_is_equivocation_not_a_peer_fault() {
    let (sa, sb, sr) = (common::store(), common::store(), common::store());
    let (a, b) = (same_writer_in(&sa.store), same_writer_in(&sb.store));
    a.append_batch(&[b"0", b"1", b"2", b"3"]).expect("append");
    b.append_batch(&[b"0".as_slice(), b"one", b"2", b"3", b"4", b"5"])
        .expect("append");
    let replica = sr.store.replica(&a.key()).expect("replica");
    full_replica(&a, &replica);

    // The reader asks B for block 5 and the newest length, as it would any
    // peer; B answers honestly from its own history.
    let err = replica
        .apply(&[common::honest_block(&b, &replica, 5)])
        .expect_err("conflict accepted");
    assert_equivocation(err, &a, &b);
    assert!(replica.equivocation().expect("read").is_some());
    assert_eq!(
        replica.info().expect("info").length,
        4,
        "nothing of B stored"
    );
    assert!(matches!(replica.get(5), Err(Error::OutOfBounds { .. })));
}

#[test]
fn a_consistent_writer_leaves_no_evidence() {
    let (sa, sb, sr) = (common::store(), common::store(), common::store());
    let (a, b) = (same_writer_in(&sa.store), same_writer_in(&sb.store));
    a.append_batch(&[b"0", b"1", b"2"]).expect("append");
    b.append_batch(&[b"0", b"1", b"2", b"3", b"4"])
        .expect("append");
    let replica = sr.store.replica(&a.key()).expect("replica");
    full_replica(&a, &replica);
    replica
        .apply(&[common::honest_block(&b, &replica, 4)])
        .expect("B extends A's history");
    // An old state of the same history shown again is no conflict either.
    let old = a
        .proof(&ProofRequest {
            upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
            ..Default::default()
        })
        .expect("proof");
    replica
        .apply(&[old])
        .expect("an older state of the same history");
    assert_eq!(replica.equivocation().expect("read"), None);
    assert_eq!(replica.info().expect("info").length, 5);
}
