//! `hyper-cli base`: three stores, three real processes appending offline,
//! then syncing in pairs over TCP, reach the same view and the same hash.

mod common;

use common::base::{field, info, sync, two_writers};
use common::{cli, dht_node, ok, seed};

#[test]
fn three_writers_offline_then_syncing_in_pairs_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
    let created = ok(cli(&a, &["base", "create", "--name", "team"], None));
    let base = field(&created, "base").to_string();
    let mut writers = Vec::new();
    for store in [&b, &c] {
        sync(&a, store, &base);
        let joined = ok(cli(store, &["base", "join", &base], None));
        writers.push(field(&joined, "writer").to_string());
    }
    for w in &writers {
        ok(cli(&a, &["base", "add-writer", "team", w], None));
    }
    // Everyone learns who the writers are, then appends offline.
    sync(&a, &b, &base);
    sync(&a, &c, &base);
    ok(cli(
        &a,
        &["base", "append", "team", "from a", "put colour red"],
        None,
    ));
    ok(cli(
        &b,
        &["base", "append", &base],
        Some(b"from b\nput colour blue\n"),
    ));
    ok(cli(&c, &["base", "append", &base, "from c"], None));
    // In pairs: a gets b's and c's, then b and c get everything from a.
    sync(&b, &a, &base);
    sync(&c, &a, &base);
    sync(&a, &b, &base);
    sync(&a, &c, &base);
    let views: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|s| ok(cli(s, &["base", "view", &base], None)))
        .collect();
    assert_eq!(views[0].lines().count(), 5, "{}", views[0]);
    assert_eq!(views[0], views[1]);
    assert_eq!(views[0], views[2]);
    let infos: Vec<serde_json::Value> = [&a, &b, &c].iter().map(|s| info(s, &base)).collect();
    for i in &infos {
        assert_eq!(i["hash"], infos[0]["hash"]);
        assert_eq!(i["length"], 5);
        assert_eq!(i["indexed_length"], 5, "{i}");
        // The one indexer (a) signed the indexed view in its last ack;
        // b and c added its signature to their own copies.
        assert_eq!(i["signed_length"], 5, "{i}");
        assert_eq!(i["writers"].as_array().map(Vec::len), Some(3));
    }
    // The key/value view agrees too: one of the two puts won, everywhere.
    let colours: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|s| ok(cli(s, &["base", "get", &base, "colour"], None)))
        .collect();
    assert!(
        colours[0] == "red\n" || colours[0] == "blue\n",
        "{}",
        colours[0]
    );
    assert!(colours.iter().all(|c| *c == colours[0]));
    let text = ok(cli(&c, &["base", "info", &base], None));
    assert_eq!(field(&text, "signed length:"), "5", "{text}");
    // Each JSON line names its writer and seq.
    let json = ok(cli(&b, &["base", "view", &base, "--json"], None));
    let first: serde_json::Value =
        serde_json::from_str(json.lines().next().expect("a line")).expect("json");
    assert!(first["writer"].as_str().is_some_and(|w| w.len() == 64));
    assert!(first["seq"].as_u64().is_some_and(|s| s >= 1));
}

#[test]
fn bad_base_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("s");
    ok(cli(&store, &["base", "create"], None));
    let out = cli(&store, &["base", "append", "nosuch", "x"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no base 'nosuch'"), "{err}");
    let out = cli(&store, &["base", "add-writer", "base", "zz"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("'zz' is not a writer key"));
    let key = "ab".repeat(32);
    let out = cli(
        &store,
        &["base", "add-writer", "nosuch", &key, "--indexer"],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no base 'nosuch'"));
    let out = cli(&store, &["base", "join", &key], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`base sync BASE`"), "{err}");
    // A peer that does not serve the base: sync says so and fails.
    let other = dir.path().join("other");
    ok(cli(&other, &["core", "create", "--name", "x"], None));
    let seeder = seed(&other, &["--listen", "127.0.0.1:0"]);
    let out = cli(
        &store,
        &[
            "base",
            "sync",
            &key,
            "--connect",
            &seeder.addr,
            "--timeout",
            "2",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&key) && err.contains(&seeder.addr), "{err}");
    drop(seeder);
    // A plain core given as a base: fetched, then named as not a base.
    let plain = ok(cli(&other, &["core", "create", "--name", "p"], None))
        .trim()
        .to_string();
    ok(cli(&other, &["core", "append", "p", "hello"], None));
    let seeder = seed(&other, &["--listen", "127.0.0.1:0"]);
    let out = cli(
        &store,
        &["base", "sync", &plain, "--connect", &seeder.addr],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("core {plain} is not a base")),
        "{err}"
    );
}

#[test]
fn seed_base_serves_every_core_of_the_base_a_joiners_values_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b] = ["a", "b"].map(|n| dir.path().join(n));
    let (base, _, _) = two_writers(&a, &b, "pair");
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    // b seeds the base by its key, not every core of its store: its own
    // writer core is among what it serves.
    let seeder = seed(&b, &[&base, "--listen", "127.0.0.1:0"]);
    ok(cli(
        &a,
        &["base", "sync", &base, "--connect", &seeder.addr],
        None,
    ));
    drop(seeder);
    let view = ok(cli(&a, &["base", "view", &base], None));
    assert!(view.contains("from b"), "{view}");
}

#[test]
fn base_sync_finds_the_writers_through_the_dht_with_no_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
    let (_node, node) = dht_node();
    let (base, _, _) = two_writers(&a, &b, "pair");
    ok(cli(&a, &["base", "append", "pair", "from a"], None));
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    // Each seeds its base (announced on the DHT before it prints its
    // address); c knows only the base key and the DHT node.
    let flags = ["--bootstrap", node.as_str(), "--no-local"];
    let seeders: Vec<_> = [&a, &b]
        .iter()
        .map(|s| {
            seed(
                s,
                &[
                    &base,
                    flags[0],
                    flags[1],
                    flags[2],
                    "--listen",
                    "127.0.0.1:0",
                ],
            )
        })
        .collect();
    let sync_args = [
        "base",
        "sync",
        &base,
        flags[0],
        flags[1],
        flags[2],
        "--timeout",
        "20",
    ];
    // c never joined: it reads the base.
    let synced = ok(cli(&c, &sync_args, None));
    assert!(synced.contains("2 writers, 2 entries"), "{synced}");
    drop(seeders);
    let view = ok(cli(&c, &["base", "view", &base], None));
    // a's value from a's seeder, b's from b's (a never synced from b).
    assert!(view.contains("from a") && view.contains("from b"), "{view}");
}

#[test]
fn base_sync_names_a_writer_core_no_peer_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| dir.path().join(n));
    let (base, _, b_writer) = two_writers(&a, &b, "pair");
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    sync(&b, &a, &base);
    // d holds a plain clone of the base's first core only, so it serves
    // that core and not b's (c reads the base).
    let seeder = seed(&a, &["--listen", "127.0.0.1:0"]);
    ok(cli(&d, &["clone", &base, "--connect", &seeder.addr], None));
    drop(seeder);
    let seeder = seed(&d, &[&base, "--listen", "127.0.0.1:0"]);
    let out = cli(
        &c,
        &[
            "base",
            "sync",
            &base,
            "--connect",
            &seeder.addr,
            "--timeout",
            "2",
        ],
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("1 writer cores not served"), "{stdout}");
    assert!(
        stderr.contains(&format!("no peer served writer core {b_writer}")),
        "{stderr}"
    );
}

#[test]
fn a_new_member_fast_forwards_to_the_signed_state_on_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b] = ["a", "b"].map(|n| dir.path().join(n));
    let created = ok(cli(&a, &["base", "create", "--name", "long"], None));
    let base = field(&created, "base").to_string();
    for round in 0..5 {
        let values: Vec<String> = (0..20).map(|i| format!("v{round}.{i}")).collect();
        let mut args = vec!["base", "append", "long"];
        args.extend(values.iter().map(String::as_str));
        ok(cli(&a, &args, None));
    }
    let full = info(&a, "long");
    assert_eq!(full["signed_length"], 100, "{full}");
    sync(&a, &b, &base);
    ok(cli(&b, &["base", "join", &base], None));
    let seeder = seed(&a, &["--listen", "127.0.0.1:0"]);
    let out = ok(cli(
        &b,
        &["base", "sync", &base, "--connect", &seeder.addr],
        None,
    ));
    assert!(out.contains("batches taken from the signed state"), "{out}");
    drop(seeder);
    let fresh = info(&b, &base);
    assert!(
        fresh["fast_forwarded"].as_u64().is_some_and(|n| n > 0),
        "{fresh}"
    );
    assert_eq!(fresh["hash"], full["hash"]);
    assert_eq!(
        ok(cli(&b, &["base", "view", &base], None)),
        ok(cli(&a, &["base", "view", "long"], None))
    );
}

#[test]
fn a_store_that_never_joined_reads_the_base_and_serves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b, r, m] = ["a", "b", "r", "m"].map(|n| dir.path().join(n));
    let (base, _, _) = two_writers(&a, &b, "pair");
    ok(cli(
        &a,
        &["base", "append", "pair", "from a", "put k v"],
        None,
    ));
    ok(cli(&b, &["base", "append", &base, "from b"], None));
    sync(&b, &a, &base);
    let full = info(&a, "pair");
    // r syncs with no `base join`: it reads every writer's values.
    let seeder = seed(&a, &["--listen", "127.0.0.1:0"]);
    let out = cli(
        &r,
        &["base", "sync", &base, "--connect", &seeder.addr],
        None,
    );
    drop(seeder);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("reads base {base}")), "{stderr}");
    let read = info(&r, &base);
    assert_eq!(read["writer"], serde_json::Value::Null, "{read}");
    assert_eq!(read["hash"], full["hash"], "{read} {full}");
    assert_eq!(read["writers"], full["writers"]);
    assert_eq!(ok(cli(&r, &["base", "get", &base, "k"], None)), "v\n");
    // It writes nothing: an append is refused and names the base.
    let out = cli(&r, &["base", "append", &base, "nope"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("only reads base {base}")),
        "{stderr}"
    );
    assert_eq!(info(&r, &base)["hash"], full["hash"]);
    // A reader seeds the base: m gets every writer's values from r alone.
    sync(&r, &m, &base);
    assert_eq!(info(&m, &base)["hash"], full["hash"]);
    // Joining later keeps what it read and makes it a candidate writer.
    let joined = ok(cli(&r, &["base", "join", &base], None));
    let writer = field(&joined, "writer").to_string();
    ok(cli(&a, &["base", "add-writer", "pair", &writer], None));
    sync(&a, &r, &base);
    ok(cli(&r, &["base", "append", &base, "from r"], None));
    let view = ok(cli(&r, &["base", "view", &base], None));
    assert!(
        view.ends_with("from r\n") && view.contains("from b"),
        "{view}"
    );
}
