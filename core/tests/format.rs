//! The store format: a store written in another format (format 3 hashed
//! parents over the sum of their children's sizes) is refused with an error
//! that names the file and both versions.

use hyper_core::{Error, Store};

fn set_format(dir: &std::path::Path, format: u32) {
    let db = redb::Database::create(dir.join("store.redb")).expect("redb");
    let txn = db.begin_write().expect("txn");
    txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
        .expect("meta")
        .insert("format", format.to_le_bytes().as_slice())
        .expect("insert");
    txn.commit().expect("commit");
}

#[test]
fn a_format_3_store_is_refused_naming_the_file_and_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("create"));
    set_format(dir.path(), 3);
    let err = Store::open(dir.path()).err().expect("format 3 refused");
    let file = dir.path().join("store.redb");
    assert!(
        matches!(&err, Error::Format { path, found: 3, supported: 4 } if *path == file),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(
        text.contains("format 3") && text.contains("format 4"),
        "{text}"
    );
    // The file is left as it was: setting the format back opens it.
    set_format(dir.path(), 4);
    Store::open(dir.path()).expect("format 4 opens");
}
