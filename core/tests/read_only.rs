//! `Store::open_read_only`: a store on disk read without writing to it.

use hyper_core::{Error, Store};

#[test]
fn a_read_only_store_reads_everything_and_refuses_every_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = {
        let store = Store::open(dir.path()).expect("open");
        let core = store.named("log").expect("named");
        core.append_batch(&[b"a".as_slice(), b"bc"])
            .expect("append");
        core.key()
    };
    let before = std::fs::read(dir.path().join("store.redb")).expect("read file");
    let store = Store::open_read_only(dir.path()).expect("open read-only");
    // Two readers at once.
    let second = Store::open_read_only(dir.path()).expect("a second reader");
    let core = store.core(&key).expect("core");
    assert_eq!(core.get(1).expect("block"), b"bc");
    assert_eq!(core.info().expect("info").length, 2);
    assert_eq!(
        store.by_name("log").expect("name").map(|c| c.key()),
        Some(key)
    );
    assert_eq!(second.list().expect("list").len(), 1);
    assert!(matches!(core.append(b"d"), Err(Error::ReadOnlyStore)));
    assert!(matches!(store.create_core(), Err(Error::ReadOnlyStore)));
    assert!(matches!(
        store.replica(&"ab".repeat(32).parse().expect("key")),
        Err(Error::ReadOnlyStore)
    ));
    drop((core, store, second));
    assert_eq!(
        std::fs::read(dir.path().join("store.redb")).expect("read file"),
        before,
        "the file was written"
    );
    // A directory without a store is an error, not a new store.
    let empty = tempfile::tempdir().expect("empty");
    assert!(Store::open_read_only(empty.path()).is_err());
    assert!(!empty.path().join("store.redb").exists());
}
