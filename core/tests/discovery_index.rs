//! The store's index from discovery key to core, on real stores: kept with
//! core creation and deletion, read by `Store::by_discovery_key` with one
//! point lookup (no listing), and built once for a store made without it.

use hyper_core::{DiscoveryKey, Store};
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

const INDEX: TableDefinition<&[u8; 32], &[u8; 32]> = TableDefinition::new("discovery_keys");

#[test]
fn cores_are_found_by_discovery_key_until_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let writable = store.create_core().expect("core");
    let named = store.named("n").expect("named");
    let other = Store::open(tempfile::tempdir().expect("tempdir").path())
        .expect("store")
        .create_core()
        .expect("core");
    let replica = store.replica(&other.key()).expect("replica");
    for core in [&writable, &named, &replica] {
        let found = store
            .by_discovery_key(&core.discovery_key())
            .expect("lookup")
            .expect("found");
        assert_eq!(found.key(), core.key());
    }
    let unknown = DiscoveryKey([9; 32]);
    assert!(store.by_discovery_key(&unknown).expect("lookup").is_none());
    store.delete(&named.key()).expect("delete");
    assert!(
        store
            .by_discovery_key(&named.discovery_key())
            .expect("lookup")
            .is_none()
    );
    let stats = store.stats();
    assert_eq!((stats.lists, stats.discovery_lookups), (0, 5));
    // Reopened: the index was committed with the cores.
    drop((writable, named, replica, store));
    let store = Store::open(dir.path()).expect("reopen");
    assert!(
        store
            .by_discovery_key(&other.discovery_key())
            .expect("lookup")
            .is_some()
    );
}

#[test]
fn a_store_made_without_the_index_gets_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store.redb");
    let keys: Vec<_> = {
        let store = Store::open(dir.path()).expect("store");
        (0..3)
            .map(|_| store.create_core().expect("core").key())
            .collect()
    };
    // What a store of the version before the index looks like.
    {
        let db = redb::Database::create(&file).expect("db");
        let txn = db.begin_write().expect("write");
        assert!(txn.delete_table(INDEX).expect("delete"));
        txn.commit().expect("commit");
    }
    // Read-only, it cannot be built: the cores are still found.
    {
        let store = Store::open_read_only(dir.path()).expect("read-only");
        for key in &keys {
            let found = store
                .by_discovery_key(&key.discovery_key())
                .expect("lookup");
            assert_eq!(found.map(|c| c.key()), Some(*key));
        }
        assert!(
            store
                .by_discovery_key(&DiscoveryKey([1; 32]))
                .expect("lookup")
                .is_none()
        );
    }
    // Opened for writing, the index is built from the cores.
    drop(Store::open(dir.path()).expect("open"));
    let db = redb::Database::create(&file).expect("db");
    let txn = db.begin_read().expect("read");
    let index = txn.open_table(INDEX).expect("the index was built");
    assert_eq!(index.len().expect("len"), 3);
    for key in &keys {
        let core = index.get(&key.discovery_key().0).expect("get");
        assert_eq!(core.map(|v| *v.value()), Some(key.0));
    }
}
