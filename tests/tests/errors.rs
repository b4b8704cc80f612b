//! Each error path of the store and core gives its own typed error.

use hyper_core::{Error, NodeRequest, ProofRequest, Store, UpgradeRequest};

#[test]
fn a_store_open_elsewhere_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path()).expect("open");
    match Store::open(dir.path()) {
        Err(e @ Error::StoreLocked { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&*dir.path().to_string_lossy()), "{text}");
        }
        Err(e) => panic!("not StoreLocked: {e}"),
        Ok(_) => panic!("opened a store held open"),
    }
}

#[test]
fn an_unknown_store_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("create"));
    {
        let db = redb::Database::create(dir.path().join("store.redb")).expect("redb");
        let txn = db.begin_write().expect("txn");
        txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .expect("meta")
            .insert("format", 99u32.to_le_bytes().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::Format {
            found: 99,
            supported: 4,
            ..
        })
    ));
}

#[test]
fn only_a_writer_truncates_and_never_past_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let writer = store.named("w").expect("writer");
    writer.append_batch(&[b"a", b"b"]).expect("append");
    assert!(matches!(writer.truncate(3), Err(Error::InvalidArgument(_))));
    let other = tempfile::tempdir().expect("tempdir");
    let replica = Store::open(other.path())
        .expect("open")
        .replica(&writer.key())
        .expect("replica");
    assert!(matches!(replica.truncate(0), Err(Error::NotWritable(k)) if k == writer.key()));
    assert!(matches!(replica.append(b"x"), Err(Error::NotWritable(_))));
}

#[test]
fn a_sparse_holder_cannot_serve_what_it_lacks() {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let stores: Vec<Store> = dirs
        .iter()
        .map(|d| Store::open(d.path()).expect("open"))
        .collect();
    let writer = stores[0].named("w").expect("writer");
    let blocks: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i; 4]).collect();
    writer.append_batch(&blocks).expect("append");
    let sparse = stores[1].replica(&writer.key()).expect("replica");
    let ask = |index| ProofRequest {
        block: Some(NodeRequest {
            index,
            nodes: u64::MAX,
        }),
        upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
        manifest: true,
        ..Default::default()
    };
    sparse
        .apply(&[writer.proof(&ask(5)).expect("proof")])
        .expect("apply");
    // What it holds, as the wire's runs: 5 missing, 1 stored, 10 missing.
    assert_eq!(sparse.stored_runs(0..16).expect("runs"), vec![0, 5, 1, 10]);
    // It has block 5 and can serve it to a third peer ...
    let third = stores[2].replica(&writer.key()).expect("replica");
    third
        .apply(&[sparse.proof(&ask(5)).expect("serve block 5")])
        .expect("verify");
    // ... but not block 6, nor an upgrade from a length whose roots it never saw.
    assert!(matches!(
        sparse.proof(&ask(6)),
        Err(Error::NotAvailable { index: 6 })
    ));
    let from_three = ProofRequest {
        upgrade: Some(UpgradeRequest { start: 3, fork: 0 }),
        ..Default::default()
    };
    assert!(matches!(
        sparse.proof(&from_three),
        Err(Error::NodeNotAvailable { .. })
    ));
    assert!(matches!(
        sparse.get(6),
        Err(Error::NotAvailable { index: 6 })
    ));
    assert!(matches!(
        sparse.get(16),
        Err(Error::OutOfBounds {
            index: 16,
            length: 16
        })
    ));
}
