//! Drives across processes by key or ticket alone: `clone DRIVE` brings
//! both cores, and `drive ls/cat/mirror` read from a seeder the DHT finds
//! (through `--bootstrap` or a ticket's nodes), all as real processes.

mod common;

use std::fs;
use std::process::Command;

use common::{Running, cli, ok};

/// Starts `hyper-cli --store STORE drive seed d FLAGS...` and reads stdout
/// until `count` lines have started with `last`; the process and every
/// line up to there.
fn drive_seed(
    store: &std::path::Path,
    flags: &[&str],
    last: &str,
    count: usize,
) -> (Running, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .arg("--store")
        .arg(store)
        .args(["drive", "seed", "d"])
        .args(flags)
        .env_remove("HYPER_BOOTSTRAP");
    common::start_lines(command, last, count)
}

/// A writer store with drive `d` holding `/a.txt` and `/sub/b.bin`; the
/// drive key and the blobs key.
fn writer(store: &std::path::Path) -> (String, String) {
    let key = ok(cli(store, &["drive", "create", "--name", "d"], None))
        .trim()
        .to_string();
    ok(cli(
        store,
        &["drive", "put", "d", "/a.txt", "-"],
        Some(b"hello drive\n"),
    ));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    ok(cli(
        store,
        &["drive", "put", "d", "/sub/b.bin", "-"],
        Some(&big),
    ));
    let info: serde_json::Value =
        serde_json::from_str(&ok(cli(store, &["drive", "info", "d", "--json"], None)))
            .expect("JSON");
    let blobs = info["blobs_key"].as_str().expect("blobs key").to_string();
    (key, blobs)
}

#[test]
fn cloning_a_drive_key_clones_both_its_cores() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let (key, blobs) = writer(&w);
    let (_seeder, printed) = drive_seed(&w, &["--listen", "127.0.0.1:0"], "listening on", 1);
    let addr = printed
        .last()
        .and_then(|l| l.strip_prefix("listening on "))
        .expect("address");
    let out = ok(cli(&r, &["clone", &key, "--connect", addr, "--json"], None));
    // One object per core: the metadata, then the blobs, each complete.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["key"], key.as_str());
    assert_eq!(lines[1]["key"], blobs.as_str());
    for line in &lines {
        assert_eq!(line["blocks"], line["length"], "{line}");
    }
    drop(_seeder);
    // Every file reads offline from the clone.
    let listed = ok(cli(&r, &["drive", "ls", &key, "-r"], None));
    assert_eq!(listed, "/a.txt  12  644\n/sub/b.bin  300000  644\n");
    assert_eq!(
        ok(cli(&r, &["drive", "cat", &key, "/a.txt"], None)),
        "hello drive\n"
    );
    let b = cli(&r, &["drive", "cat", &key, "/sub/b.bin"], None);
    assert!(b.status.success() && b.stdout.len() == 300_000);
    // A key that is no drive clones one core, as before.
    let plain = ok(cli(&w, &["core", "create", "--name", "p"], None));
    ok(cli(&w, &["core", "append", "p", "x"], None));
    let seeder = common::seed(&w, &["p", "--listen", "127.0.0.1:0"]);
    let out = ok(cli(
        &r,
        &["clone", plain.trim(), "--connect", &seeder.addr, "--json"],
        None,
    ));
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn drive_reads_find_the_seeder_through_the_dht_by_ticket_or_bootstrap() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = dir.path().join("w");
    let (_node, node) = common::dht_node();
    let (key, _) = writer(&w);
    // No --listen: reachable only through what the DHT says.
    let (_seeder, printed) = drive_seed(&w, &["--bootstrap", &node], "  on the other side", 2);
    let ticket = printed
        .iter()
        .find_map(|l| l.strip_prefix("ticket "))
        .expect("the drive's ticket")
        .to_string();
    // A ticket alone: its DHT nodes find the seeder.
    let r1 = dir.path().join("r1");
    assert_eq!(
        ok(cli(&r1, &["drive", "cat", &ticket, "/a.txt"], None)),
        "hello drive\n"
    );
    // A key and --bootstrap: the same, for ls and a mirror out.
    let r2 = dir.path().join("r2");
    let ls = ok(cli(
        &r2,
        &["drive", "ls", &key, "-r", "--bootstrap", &node],
        None,
    ));
    assert_eq!(ls, "/a.txt  12  644\n/sub/b.bin  300000  644\n");
    let out = dir.path().join("out");
    ok(cli(
        &r2,
        &["drive", "mirror", &ticket, &format!("{}/", out.display())],
        None,
    ));
    assert_eq!(
        fs::read(out.join("a.txt")).expect("a.txt"),
        b"hello drive\n"
    );
    assert_eq!(
        fs::read(out.join("sub/b.bin")).expect("b.bin").len(),
        300_000
    );
    // Nobody seeds a key the DHT does not know: an error within --timeout.
    let unknown = "ab".repeat(32);
    let started = std::time::Instant::now();
    let lost = cli(
        &r2,
        &[
            "drive",
            "ls",
            &unknown,
            "--bootstrap",
            &node,
            "--timeout",
            "2",
        ],
        None,
    );
    assert!(!lost.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let err = String::from_utf8_lossy(&lost.stderr);
    assert!(err.contains(&unknown), "{err}");
}
