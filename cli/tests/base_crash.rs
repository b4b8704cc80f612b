//! A real `hyper-cli base sync` process SIGKILLed while it applies a
//! reorder: reopening its store gives the same view as the peer that never
//! crashed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::base::{info, sync, two_writers};
use common::{cli, ok, seed};

/// Values each side appends while they are apart.
const APART: usize = 200;

fn lines(prefix: &str) -> String {
    (0..APART).map(|i| format!("{prefix} {i}\n")).collect()
}

#[test]
fn sigkill_during_a_reorder_then_reopen_equals_the_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [a, b] = ["a", "b"].map(|n| dir.path().join(n));
    let (base, a_writer, _) = two_writers(&a, &b, "crash");
    sync(&a, &b, &base);
    ok(cli(&b, &["base", "append", &base, "before"], None));
    sync(&b, &a, &base);
    sync(&a, &b, &base);
    let before = info(&b, &base)["length"].as_u64().expect("length");
    assert_eq!(before, 1);

    // Apart: a (the one indexer) indexes its own values; b's stay
    // optimistic, right after the shared prefix.
    ok(cli(
        &a,
        &["base", "append", "crash"],
        Some(lines("a").as_bytes()),
    ));
    ok(cli(
        &b,
        &["base", "append", &base],
        Some(lines("b").as_bytes()),
    ));
    let b_view = ok(cli(&b, &["base", "view", &base], None));
    assert_eq!(b_view.lines().nth(1), Some("b 0"));
    // a merges b's log (a never crashes): a's indexed values come first,
    // so b must truncate its view after the prefix and apply both again.
    sync(&b, &a, &base);
    let peer_view = ok(cli(&a, &["base", "view", "crash", "--json"], None));
    let total = 1 + 2 * APART as u64;
    assert_eq!(peer_view.lines().count() as u64, total);
    let peer_text = ok(cli(&a, &["base", "view", "crash"], None));
    assert_eq!(peer_text.lines().nth(1), Some("a 0"));

    // b syncs, logging its progress; killed once it applied a's values
    // from the time apart (which only the merged order holds).
    let seeder = seed(&a, &["--listen", "127.0.0.1:0"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(&b)
        .args(["base", "sync", &base, "--connect", &seeder.addr])
        .env("RUST_LOG", "hyper_cli=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hyper-cli");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("utf-8");
        let merged = line.contains("applying the base's values")
            && line.contains(&format!("writer={a_writer}"))
            && line
                .split("seq=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|seq| seq > 50);
        seen.push(line);
        if merged {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    let stdout = std::io::read_to_string(child.stdout.take().expect("stdout")).expect("stdout");
    drop(seeder);
    assert!(
        !status.success() && !stdout.contains("synced"),
        "the sync ended before the kill: {status:?} {stdout:?} {seen:?}"
    );
    // The kill landed inside the reorder: b's working view (a plain core)
    // holds less than the merged order (an update round writes what it
    // applied in one commit at its end, so it may hold only the prefix, or
    // the rounds written before the kill).
    let view_core = format!("autobase {base} view log");
    let raw: serde_json::Value =
        serde_json::from_str(&ok(cli(&b, &["core", "info", &view_core, "--json"], None)))
            .expect("json");
    let held = raw["length"].as_u64().expect("length");
    assert!(held >= before && held < total, "{held} of {total}");

    // Reopened: the same view as a's, entry for entry, and the same hash.
    let view = ok(cli(&b, &["base", "view", &base, "--json"], None));
    assert_eq!(view, peer_view);
    let (bi, ai) = (info(&b, &base), info(&a, &base));
    assert_eq!(bi["hash"], ai["hash"], "{bi} {ai}");
    assert_eq!(bi["length"], total);
    // And it goes on: the interrupted sync completes, and both converge.
    sync(&a, &b, &base);
    sync(&b, &a, &base);
    let (bi, ai) = (info(&b, &base), info(&a, &base));
    assert_eq!(bi["hash"], ai["hash"], "{bi} {ai}");
    assert_eq!(bi["indexed_length"], total, "{bi}");
    assert_eq!(ai["signed_length"], total, "{ai}");
}
