//! A writer-signed length near 2^62 used to freeze a reader (bitfield scans
//! stepped through every absent page) and lengths past 2^63 wrapped the
//! flat-tree arithmetic. Lengths are capped below 2^56 and scans cost what
//! is stored.

mod common;

use std::time::{Duration, Instant};

use hyper_core::{Error, Hash, MAX_LENGTH, Node, VerifyError, flat};

fn roots_of(length: u64) -> Vec<Node> {
    flat::roots(length)
        .into_iter()
        .map(|index| Node {
            index,
            size: 1,
            hash: Hash([7; 32]),
        })
        .collect()
}

#[test]
fn signed_lengths_at_or_past_2_pow_56_are_refused() {
    let liar = common::LyingWriter::new();
    let reader = common::store();
    let replica = reader.store.replica(&liar.key()).expect("replica");
    for length in [MAX_LENGTH, (1 << 62) + 3, (1 << 63) + 1, u64::MAX] {
        let err = replica
            .apply(&[liar.proof(0, liar.upgrade(roots_of(length), length, 0))])
            .expect_err("huge length accepted");
        assert!(
            matches!(err, Error::Verify(VerifyError::Malformed(_))),
            "{length}: {err:?}"
        );
    }
    assert_eq!(replica.info().expect("info").length, 0);
}

#[test]
fn a_reader_with_a_huge_signed_length_does_not_freeze() {
    let liar = common::LyingWriter::new();
    let reader = common::store();
    let replica = reader.store.replica(&liar.key()).expect("replica");
    let length = MAX_LENGTH - 1;
    replica
        .apply(&[liar.proof(0, liar.upgrade(roots_of(length), length, 0))])
        .expect("a signed length below the cap");
    let started = Instant::now();
    let info = replica.info().expect("info");
    assert_eq!((info.length, info.contiguous_length), (length, 0));
    assert_eq!(replica.next_stored(0..length).expect("next stored"), None);
    assert_eq!(
        replica.next_missing(0..length).expect("next missing"),
        Some(0)
    );
    assert_eq!(
        replica.stored_runs(0..length).expect("runs"),
        vec![0, length]
    );
    assert!(!replica.has_range(0..length).expect("has range"));
    replica.clear(0..length).expect("clear");
    // Reopening reads the header and its bitfield back.
    let key = replica.key();
    drop(replica);
    let dir = reader.dir;
    drop(reader.store);
    let store = hyper_core::Store::open(dir.path()).expect("reopen");
    let replica = store.core(&key).expect("core");
    assert_eq!(replica.info().expect("info").length, length);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "scans over a huge length took {:?}",
        started.elapsed()
    );
}
