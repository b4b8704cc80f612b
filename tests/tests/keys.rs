//! Namespaces of names, and moving a writer to a new machine (export and
//! import of the store seed and of a core's key pair), on real stores.

mod common;

use common::{fetch_all, stores};
use hyper_core::{Error, KeyPair, Store, StoreOptions, StoreSeed};

#[test]
fn namespaces_never_collide_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (keys, root_slash) = {
        let store = Store::open(dir.path()).expect("open");
        let a = store.namespace("a").named("bc").expect("a/bc");
        let b = store.namespace("ab").named("c").expect("ab/c");
        let nested = store
            .namespace("a")
            .namespace("b")
            .named("c")
            .expect("a/b/c");
        let app = store.namespace("app").named("db").expect("app/db");
        let root = store.named("db").expect("root db");
        // A root name spelled like a namespaced one is still another core.
        let root_slash = store.named("app/db").expect("root app/db");
        let keys = [a.key(), b.key(), nested.key(), app.key(), root.key()];
        let mut all = keys.to_vec();
        all.push(root_slash.key());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 6, "two names share a key");
        app.append(b"app data").expect("append");
        assert!(app.writable().expect("writable"));
        (keys, root_slash.key())
    };
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.namespace("a").named("bc").expect("a/bc").key(),
        keys[0]
    );
    let app = store.namespace("app").by_name("db").expect("by_name");
    assert_eq!(app.as_ref().map(|c| c.key()), Some(keys[3]));
    assert_eq!(app.expect("app").get(0).expect("get"), b"app data");
    assert!(
        store
            .namespace("app")
            .by_name("nope")
            .expect("by_name")
            .is_none()
    );
    assert!(
        store
            .namespace("other")
            .by_name("db")
            .expect("by_name")
            .is_none()
    );
    let listed: Vec<_> = store
        .list()
        .expect("list")
        .into_iter()
        .filter_map(|e| e.name)
        .collect();
    assert!(listed.contains(&"a/b/c".to_string()), "{listed:?}");

    // Deleting the root "app/db" leaves the namespaced one alone, and the
    // other way round.
    store.delete(&root_slash).expect("delete root");
    assert!(store.by_name("app/db").expect("by_name").is_none());
    assert!(
        store
            .namespace("app")
            .by_name("db")
            .expect("by_name")
            .is_some()
    );
    store.delete(&keys[3]).expect("delete namespaced");
    assert!(
        store
            .namespace("app")
            .by_name("db")
            .expect("by_name")
            .is_none()
    );
    let again = store.namespace("app").named("db").expect("recreate");
    assert_eq!(again.key(), keys[3]);
    assert_eq!(again.info().expect("info").length, 0);
}

#[test]
fn a_writer_moves_with_its_store_seed() {
    let (_d, s) = stores(2);
    let old = s[0].named("log").expect("log");
    let first: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
    old.append_batch(&first).expect("append");
    let seed = s[0].export_seed();
    assert_eq!(format!("{seed:?}"), "StoreSeed(..)");
    let hex = seed.to_hex();
    assert_eq!(hex.len(), 64);

    // The new machine: a store made from the seed, which first clones the
    // core, then opens the name and carries on writing.
    let new_dir = tempfile::tempdir().expect("tempdir");
    let seed: StoreSeed = hex.parse().expect("parse");
    let moved = Store::from_seed(new_dir.path(), &seed, StoreOptions::default()).expect("store");
    let replica = moved.replica(&old.key()).expect("replica");
    fetch_all(&old, &replica).expect("clone");
    assert!(!replica.writable().expect("writable"));
    let log = moved.named("log").expect("named");
    assert_eq!(log.key(), old.key());
    assert!(replica.writable().expect("the replica became writable"));
    assert_eq!(
        log.append(b"from the new machine").expect("append").length,
        11
    );
    // Everything, old and new, verifies for a reader fed by the new machine.
    let reader = s[1].replica(&old.key()).expect("reader");
    fetch_all(&log, &reader).expect("reader clones");
    assert_eq!(reader.get(10).expect("get"), b"from the new machine");
    assert_eq!(reader.get(3).expect("get"), first[3]);
    drop((log, replica, moved));
    // Reopening with the seed works; with another seed it is refused.
    Store::from_seed(new_dir.path(), &seed, StoreOptions::default()).expect("same seed");
    let other = StoreSeed::generate().expect("seed");
    assert!(matches!(
        Store::from_seed(new_dir.path(), &other, StoreOptions::default()),
        Err(Error::SeedMismatch { path }) if path == new_dir.path().join("store.redb")
    ));
}

#[test]
fn a_writer_moves_with_its_key_pair() {
    let (_d, s) = stores(3);
    let old = s[0].create_core().expect("core");
    old.append_batch(&[b"one", b"two"]).expect("append");
    let pairs = old.export_key_pairs().expect("export");
    assert_eq!(pairs.len(), 1);
    let secret: String = pairs[0].seed().iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !format!("{:?}", pairs[0]).contains(&secret),
        "Debug shows the secret"
    );

    let replica = s[1].replica(&old.key()).expect("replica");
    fetch_all(&old, &replica).expect("clone");
    let imported = s[1]
        .import_key_pair(KeyPair::from_seed(pairs[0].seed()))
        .expect("import");
    assert_eq!(imported.key(), old.key());
    assert_eq!(imported.info().expect("info").length, 2);
    imported.append(b"three").expect("append after import");
    let reader = s[2].replica(&old.key()).expect("reader");
    fetch_all(&imported, &reader).expect("reader clones");
    assert_eq!(reader.get(2).expect("get"), b"three");
    assert_eq!(reader.get(0).expect("get"), b"one");

    // add_signer refuses a pair that does not sign the core.
    let stranger = KeyPair::generate().expect("pair");
    assert!(matches!(
        reader.add_signer(stranger),
        Err(Error::InvalidArgument(_))
    ));
    assert!(!reader.writable().expect("writable"));
    reader
        .add_signer(KeyPair::from_seed(pairs[0].seed()))
        .expect("add");
    assert!(reader.writable().expect("writable"));
}
