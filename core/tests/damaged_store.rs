//! A store file that is empty or foreign is refused with an error naming
//! the file, never initialised as a new store.

use hyper_core::{Error, Store};

#[test]
fn an_empty_store_file_is_refused_not_initialised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store.redb");
    std::fs::write(&file, b"").expect("write");
    match Store::open(dir.path()) {
        Err(e @ Error::NotAStore { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&file.display().to_string()), "{text}");
            assert!(text.contains("empty"), "{text}");
        }
        other => panic!("expected NotAStore, got {:?}", other.map(|_| ())),
    }
    // Untouched: still empty, no store was made in its place.
    assert_eq!(std::fs::metadata(&file).expect("meta").len(), 0);
}

#[test]
fn a_foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&file).expect("foreign db");
        let txn = db.begin_write().expect("txn");
        let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("theirs");
        txn.open_table(table)
            .expect("table")
            .insert("x", 1)
            .expect("insert");
        txn.commit().expect("commit");
    }
    match Store::open(dir.path()) {
        Err(Error::NotAStore { path, .. }) => assert_eq!(path, file),
        other => panic!("expected NotAStore, got {:?}", other.map(|_| ())),
    }
    // Its data is as it was and no store tables were written into it.
    let db = redb::Database::create(&file).expect("reopen foreign db");
    let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
    let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("theirs");
    let value = txn.open_table(table).expect("table").get("x").expect("get");
    assert_eq!(value.map(|v| v.value()), Some(1));
    let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    assert!(txn.open_table(meta).is_err(), "store tables were created");
}

#[test]
fn a_new_store_keeps_its_seed_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Store::open(dir.path())
        .and_then(|s| s.named("n"))
        .expect("named")
        .key();
    let again = Store::open(dir.path())
        .and_then(|s| s.named("n"))
        .expect("named");
    assert_eq!(again.key(), key);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("store.redb")]);
}
