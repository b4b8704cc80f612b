//! A writer that signs two histories under one key (two stores holding the
//! same key pair append different blocks): a reader that replicates from
//! both keeps both signed states as evidence and the connection to the
//! second history ends with the equivocation as its error.

use std::time::Duration;

use hyper_core::{Core, KeyPair, Manifest, Store, VerifyError};
use hyper_wire::{DownloadRange, Error, connect_memory};

mod common;

fn same_writer(blocks: &[&[u8]]) -> (tempfile::TempDir, Store, Core) {
    let (dir, store) = common::eventual_store();
    let pair = KeyPair::from_seed([33; 32]);
    let core = store
        .create_with_manifest(Manifest::single(pair.public_key()), vec![pair])
        .expect("writer");
    core.append_batch(blocks).expect("append");
    (dir, store, core)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_meeting_two_histories_keeps_the_evidence() {
    let (_ad, a_store, a) = same_writer(&[b"0", b"1", b"2", b"3"]);
    let (_bd, b_store, b) = same_writer(&[b"0", b"one", b"2", b"3", b"4", b"5"]);
    let (_rd, r_store) = common::eventual_store();
    let (ra, rb, rr) = (
        common::all_cores(&a_store),
        common::all_cores(&b_store),
        common::all_cores(&r_store),
    );
    let replica = r_store.replica(&a.key()).expect("replica");
    let _from_a = connect_memory(&rr, &ra).await.expect("connect A");
    tokio::time::timeout(
        Duration::from_secs(30),
        rr.download(&replica, DownloadRange::all()),
    )
    .await
    .expect("in time")
    .expect("download from A");
    assert_eq!(replica.equivocation().expect("evidence"), None);

    let (to_b, _b_side) = connect_memory(&rr, &rb).await.expect("connect B");
    let follow = rr.clone();
    let live = replica.clone();
    let _download =
        tokio::spawn(async move { follow.download(&live, DownloadRange::live()).await });
    let closed = tokio::time::timeout(Duration::from_secs(30), to_b.closed())
        .await
        .expect("the connection to B ends");
    match closed {
        Err(Error::Verify(VerifyError::Equivocation(e))) => {
            assert_eq!(e.local, a.signed_state().expect("a"));
            assert_eq!(e.remote, b.signed_state().expect("b"));
        }
        other => panic!("not an equivocation: {other:?}"),
    }
    let evidence = replica.equivocation().expect("read").expect("kept");
    assert_eq!(evidence.remote, b.signed_state().expect("b"));
    // The reader keeps its own history.
    assert_eq!(replica.info().expect("info").length, 4);
    assert_eq!(replica.get(1).expect("block"), b"1");
}
