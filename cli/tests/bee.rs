//! `hyper-cli bee` on a local store and, with `--connect`, sparsely against
//! a seeding process.

use std::io::Write;

mod common;

use common::{cli, ok};

#[test]
fn put_get_ls_history_import_del_locally_and_remotely() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let dir = a.path();
    ok(cli(dir, &["bee", "put", "db", "banana", "yellow"], None));
    ok(cli(dir, &["bee", "put", "db", "apple", "red"], None));
    let mut lines = Vec::new();
    for i in 0..2500 {
        writeln!(lines, "key{i:05} value {i}").expect("write");
    }
    let out = ok(cli(dir, &["bee", "import", "db"], Some(&lines)));
    assert!(out.starts_with("imported 2500 entries"), "{out}");
    assert_eq!(ok(cli(dir, &["bee", "get", "db", "apple"], None)), "red");
    assert_eq!(
        ok(cli(
            dir,
            &["bee", "get", "db", "key01234", "--newline"],
            None
        )),
        "value 1234\n"
    );
    let ls = ok(cli(
        dir,
        &["bee", "ls", "db", "--gte", "b", "--limit", "3"],
        None,
    ));
    assert_eq!(ls, "banana yellow\nkey00000 value 0\nkey00001 value 1\n");
    let json = ok(cli(
        dir,
        &["bee", "ls", "db", "--lt", "b", "--reverse", "--json"],
        None,
    ));
    assert_eq!(json, "{\"key\":\"apple\",\"value\":\"red\"}\n");
    ok(cli(dir, &["bee", "del", "db", "apple"], None));
    let missing = cli(dir, &["bee", "get", "db", "apple"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no key 'apple'"));
    let history = ok(cli(dir, &["bee", "history", "db"], None));
    let history: Vec<&str> = history.lines().collect();
    assert_eq!(history.first(), Some(&"1 put banana yellow"));
    assert_eq!(history.last(), Some(&"2503 del apple"));
    let json = ok(cli(dir, &["bee", "history", "db", "--json"], None));
    assert!(
        json.lines()
            .last()
            .expect("a line")
            .contains("\"type\":\"del\",\"key\":\"apple\",\"value\":null")
    );

    // Remotely: a seeder serves the bee's core; a fresh store reads it
    // sparsely by key.
    let key = ok(cli(dir, &["core", "create", "--name", "db"], None));
    let key = key.trim();
    let seeder = common::seed(dir, &[key, "--listen", "127.0.0.1:0"]);
    let addr = seeder.addr.clone();
    let get = ok(cli(
        b.path(),
        &["bee", "get", key, "key02000", "--connect", &addr],
        None,
    ));
    assert_eq!(get, "value 2000");
    let ls = ok(cli(
        b.path(),
        &["bee", "ls", key, "--gt", "key02497", "--connect", &addr],
        None,
    ));
    assert_eq!(ls, "key02498 value 2498\nkey02499 value 2499\n");
    let info = ok(cli(b.path(), &["core", "info", key, "--json"], None));
    assert!(info.contains("\"length\":2504"), "{info}");
    drop(seeder);
}
