//! The real `hyper-cli` binary on a temporary store.

use std::io::Write;

mod common;

use common::{cli, ok};

#[test]
fn create_append_stdin_and_cat_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ok(cli(dir.path(), &["core", "create", "--name", "logs"], None));
    let key = key.trim();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    // The same name gives the same key.
    assert_eq!(
        ok(cli(dir.path(), &["core", "create", "--name", "logs"], None)).trim(),
        key
    );

    let mut input = Vec::new();
    for i in 0..2500 {
        writeln!(input, "line {i} with some text").expect("write");
    }
    input.extend_from_slice(b"last line without newline");
    ok(cli(dir.path(), &["core", "append", key], Some(&input)));
    assert_eq!(
        ok(cli(dir.path(), &["core", "cat", key], None)).as_bytes(),
        input.as_slice()
    );
    assert_eq!(
        ok(cli(dir.path(), &["core", "get", "logs", "2"], None)),
        "line 2 with some text\n"
    );
    assert_eq!(
        ok(cli(
            dir.path(),
            &["core", "cat", "logs", "--start", "1", "--end", "3"],
            None
        )),
        "line 1 with some text\nline 2 with some text\n"
    );

    ok(cli(dir.path(), &["core", "append", key, "x", "yz"], None));
    let info = ok(cli(dir.path(), &["core", "info", key, "--json"], None));
    for field in [
        "\"length\":2503",
        "\"fork\":0",
        "\"contiguous_length\":2503",
        "\"blocks_stored\":2503",
        "\"writable\":true",
        "\"bytes_on_disk\":",
        "\"byte_length\":",
    ] {
        assert!(info.contains(field), "{field} missing in {info}");
    }
    let list = ok(cli(dir.path(), &["core", "list", "--json"], None));
    assert!(
        list.contains(key) && list.contains("\"name\":\"logs\""),
        "{list}"
    );
    let anon = ok(cli(dir.path(), &["core", "create"], None));
    assert_ne!(anon.trim(), key);
    assert_eq!(
        ok(cli(dir.path(), &["core", "list"], None)).lines().count(),
        2
    );
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(cli(dir.path(), &["core", "create", "--name", "a"], None));
    ok(cli(dir.path(), &["core", "append", "a", "one"], None));
    for args in [
        &["core", "get", "a", "5"][..],
        &["core", "get", "missing", "0"][..],
        &["core", "info", &"ab".repeat(32)][..],
    ] {
        let out = cli(dir.path(), args, None);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("hyper-cli: "), "{err}");
    }
    // A file that is not a database is a clear error, too.
    std::fs::write(dir.path().join("store.redb"), b"not a database").expect("write");
    let out = cli(dir.path(), &["core", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hyper-cli: "));
}
