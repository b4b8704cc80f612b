//! `hyper-cli base signer` / `base join`: three stores set up a base with
//! three indexers from the CLI alone (real processes, TCP on loopback),
//! write from each, and the quorum-signed length (2 of 3) advances.

mod common;

use common::base::{field, info, sync};
use common::{cli, ok};

#[test]
fn three_stores_make_a_three_indexer_base_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
    // b and c make their writer cores first and hand a their signing keys.
    let mut signers = Vec::new();
    let mut writers = Vec::new();
    for store in [&b, &c] {
        let out = ok(cli(store, &["base", "signer"], None));
        signers.push(field(&out, "signer").to_string());
        writers.push(field(&out, "writer").to_string());
        // Asking again shows the same core.
        assert_eq!(ok(cli(store, &["base", "signer"], None)), out);
    }
    assert_ne!(signers[0], signers[1]);
    let created = ok(cli(
        &a,
        &[
            "base",
            "create",
            "--name",
            "trio",
            "--indexer",
            &signers[0],
            "--indexer",
            &signers[1],
        ],
        None,
    ));
    let base = field(&created, "base").to_string();
    let a_writer = field(&created, "writer").to_string();
    // Joining before the base's first block is here writes nothing.
    let early = cli(&b, &["base", "join", &base], None);
    assert!(!early.status.success());
    for (store, writer) in [&b, &c].into_iter().zip(&writers) {
        sync(&a, store, &base);
        let joined = ok(cli(store, &["base", "join", &base], None));
        assert_eq!(field(&joined, "writer"), writer, "{joined}");
        assert!(joined.contains("indexer"), "{joined}");
        let out = ok(cli(store, &["base", "signer"], None));
        assert_eq!(field(&out, "joined"), base, "{out}");
    }
    // The three are indexers and writers without any add-writer.
    let mut expected = vec![a_writer.clone(), writers[0].clone(), writers[1].clone()];
    expected.sort();
    for store in [&a, &b, &c] {
        let i = info(store, &base);
        let indexers: Vec<String> = serde_json::from_value(i["indexers"].clone()).expect("keys");
        assert_eq!(indexers, expected, "{i}");
        assert_eq!(i["writers"].as_array().map(Vec::len), Some(3), "{i}");
    }
    ok(cli(&a, &["base", "append", "trio", "from a"], None));
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    ok(cli(&c, &["base", "append", &base, "from c"], None));
    // Alone, no indexer reaches a quorum: nothing is signed anywhere.
    for store in [&a, &b, &c] {
        let i = info(store, &base);
        assert_eq!(i["signed_length"], 0, "{i}");
    }
    // Rounds of syncs in pairs; each indexer acks what it received and
    // ships its signature in its next node. Two signatures of the same
    // length make it signed.
    let mut rounds = 0;
    let infos = loop {
        rounds += 1;
        sync(&b, &a, &base);
        sync(&c, &a, &base);
        sync(&a, &b, &base);
        sync(&a, &c, &base);
        let infos: Vec<serde_json::Value> = [&a, &b, &c].iter().map(|s| info(s, &base)).collect();
        if infos.iter().all(|i| i["signed_length"] == 3) || rounds == 6 {
            break infos;
        }
    };
    for i in &infos {
        assert_eq!(i["length"], 3, "{i}");
        assert_eq!(i["indexed_length"], 3, "{i}");
        assert_eq!(i["signed_length"], 3, "after {rounds} rounds: {i}");
        assert_eq!(i["hash"], infos[0]["hash"], "{i}");
    }
    let view = ok(cli(&c, &["base", "view", &base], None));
    let mut lines: Vec<&str> = view.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["from a", "from b", "from c"]);

    // With c offline, a and b (2 of 3) still sign new writes.
    ok(cli(&a, &["base", "append", "trio", "a again"], None));
    ok(cli(&b, &["base", "append", &base, "b again"], None));
    // Each round moves a signature one hop; the bound only stops a test
    // that would otherwise never end.
    for _ in 0..6 {
        sync(&b, &a, &base);
        sync(&a, &b, &base);
        if [&a, &b]
            .iter()
            .all(|s| info(s, &base)["signed_length"] == 5)
        {
            break;
        }
    }
    for store in [&a, &b] {
        let i = info(store, &base);
        assert_eq!(i["length"], 5, "{i}");
        assert_eq!(i["signed_length"], 5, "{i}");
    }
}

#[test]
fn signer_and_join_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b] = ["a", "b"].map(|n| dir.path().join(n));
    let base = field(&ok(cli(&a, &["base", "create"], None)), "base").to_string();
    sync(&a, &b, &base);
    let out = cli(&b, &["base", "join", &base, "--signer", "nosuch"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no base signer 'nosuch'"), "{err}");
    // An indexer is named by the signer key `base signer` prints.
    let out = cli(
        &a,
        &["base", "create", "--name", "x", "--indexer", "abc"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'abc' is not a signer key"), "{err}");
    // A signer the base does not name as an indexer joins as a candidate
    // writer, which a writer adds.
    let made = ok(cli(&b, &["base", "signer", "--name", "spare"], None));
    let joined = ok(cli(&b, &["base", "join", &base, "--signer", "spare"], None));
    assert_eq!(field(&joined, "writer"), field(&made, "writer"));
    assert!(!joined.contains("indexer"), "{joined}");
    // A used signer cannot join a second base.
    let other = field(
        &ok(cli(&a, &["base", "create", "--name", "other"], None)),
        "base",
    )
    .to_string();
    sync(&a, &b, &other);
    let out = cli(&b, &["base", "join", &other, "--signer", "spare"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already writes for base"), "{err}");
    ok(cli(
        &a,
        &["base", "add-writer", "base", field(&made, "writer")],
        None,
    ));
    sync(&a, &b, &base);
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    sync(&b, &a, &base);
    let view = ok(cli(&a, &["base", "view", "base"], None));
    assert_eq!(view, "from b\n");
}

#[test]
fn an_indexer_added_later_takes_over_from_the_creator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
    let created = ok(cli(&a, &["base", "create", "--name", "room"], None));
    let base = field(&created, "base").to_string();
    let a_writer = field(&created, "writer").to_string();
    sync(&a, &b, &base);
    let b_writer = field(&ok(cli(&b, &["base", "join", &base], None)), "writer").to_string();
    // The only indexer cannot leave, nor stop being one.
    for args in [
        vec!["base", "remove-writer", "room", a_writer.as_str()],
        vec!["base", "add-writer", "room", a_writer.as_str()],
    ] {
        let out = cli(&a, &args, None);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("only indexer"), "{err}");
    }
    ok(cli(&a, &["base", "append", "room", "from a"], None));
    ok(cli(
        &a,
        &["base", "add-writer", "room", &b_writer, "--indexer"],
        None,
    ));
    sync(&a, &b, &base);
    // Now that b is one too, a leaves the base.
    ok(cli(&a, &["base", "remove-writer", "room", &a_writer], None));
    ok(cli(&a, &["base", "append", "room", "a, removed"], None));
    // b applies a's removal once its order holds it; a's later value is
    // never applied. b, alone an indexer now, indexes and signs by itself.
    let mut rounds = 0;
    let i = loop {
        rounds += 1;
        sync(&a, &b, &base);
        ok(cli(
            &b,
            &["base", "append", &base, &format!("from b {rounds}")],
            None,
        ));
        sync(&b, &a, &base);
        let i = info(&b, &base);
        if i["indexers"] == serde_json::json!([b_writer]) || rounds == 12 {
            break i;
        }
    };
    assert_eq!(i["indexers"], serde_json::json!([b_writer]), "{i}");
    assert_eq!(i["writers"], serde_json::json!([b_writer]), "{i}");
    ok(cli(&b, &["base", "append", &base, "b alone"], None));
    let i = info(&b, &base);
    assert_eq!(i["indexed_length"], i["length"], "{i}");
    assert_eq!(i["signed_length"], i["length"], "{i}");
    let view = ok(cli(&b, &["base", "view", &base], None));
    assert!(
        view.starts_with("from a\n") && view.ends_with("b alone\n"),
        "{view}"
    );
    assert!(!view.contains("a, removed"), "{view}");

    // A store that never joined follows the signed entries from the
    // creator's epoch to b's and reads the same signed view.
    sync(&b, &c, &base);
    let late = info(&c, &base);
    assert_eq!(late["indexers"], i["indexers"], "{late}");
    assert_eq!(late["signed_length"], i["signed_length"], "{late}");
    assert_eq!(late["hash"], i["hash"], "{late}");
    assert_eq!(ok(cli(&c, &["base", "view", &base], None)), view);
}
