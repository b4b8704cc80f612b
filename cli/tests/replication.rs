//! Replication between real `hyper-cli` processes over TCP on loopback:
//! seed and clone, a chain of three peers, a sparse get, live following,
//! and a clone killed mid-download that resumes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
}

mod common;

use common::ok;

fn run(store: &Path, args: &[&str], stdin: &[u8]) -> Output {
    common::cli(store, args, Some(stdin))
}

fn seed(store: &Path, keys: &[&str], listen: &str) -> common::Seeder {
    let mut args = keys.to_vec();
    args.extend(["--listen", listen]);
    common::seed(store, &args)
}

/// A store with one core of `n` numbered lines; returns its key.
fn writer(store: &Path, n: usize) -> String {
    let key = ok(run(store, &["core", "create", "--name", "data"], b""));
    let key = key.trim().to_string();
    let mut input = Vec::new();
    for i in 0..n {
        writeln!(input, "block {i:08} {}", "z".repeat(i % 50)).expect("write");
    }
    ok(run(store, &["core", "append", &key], &input));
    key
}

fn cat(store: &Path, key: &str) -> String {
    ok(run(store, &["core", "cat", key], b""))
}

fn json_field(line: &str, field: &str) -> u64 {
    let start = line
        .find(&format!("\"{field}\":"))
        .unwrap_or_else(|| panic!("{field} in {line}"))
        + field.len()
        + 3;
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("number")
}

#[test]
fn seed_and_clone_between_two_processes_then_a_chain_of_three() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let key = writer(a.path(), 5000);
    let expected = cat(a.path(), &key);
    let seeder_a = seed(a.path(), &["data"], "127.0.0.1:0");
    let out = ok(run(
        b.path(),
        &["clone", &key, "--connect", &seeder_a.addr, "--json"],
        b"",
    ));
    assert_eq!(json_field(&out, "blocks"), 5000, "{out}");
    assert_eq!(json_field(&out, "length"), 5000);
    assert_eq!(cat(b.path(), &key), expected);
    // Progress output stays off when stdout is not a terminal: one line.
    assert_eq!(out.lines().count(), 1, "{out}");

    // C clones from B, which only holds what it downloaded from A; A is
    // gone by then.
    drop(seeder_a);
    let seeder_b = seed(b.path(), &[&key], "127.0.0.1:0");
    let out = ok(run(
        c.path(),
        &["clone", &key, "--connect", &seeder_b.addr],
        b"",
    ));
    assert!(
        out.starts_with(&format!("cloned {key}: 5000 blocks")),
        "{out}"
    );
    drop(seeder_b);
    assert_eq!(cat(c.path(), &key), expected);
}

#[test]
fn cloning_a_core_the_peer_does_not_serve_ends_with_a_clear_error() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    writer(a.path(), 5);
    let seeder = seed(a.path(), &[], "127.0.0.1:0");
    let other = "cd".repeat(32);
    let out = run(
        b.path(),
        &[
            "clone",
            &other,
            "--connect",
            &seeder.addr,
            "--retry-for",
            "1",
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not seem to serve it"), "{err}");
}

#[test]
fn sparse_get_fetches_one_block() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 3000);
    let seeder = seed(a.path(), &[], "127.0.0.1:0");
    let block = ok(run(
        b.path(),
        &["core", "get", &key, "2345", "--connect", &seeder.addr],
        b"",
    ));
    assert_eq!(
        block,
        format!("block {:08} {}\n", 2345, "z".repeat(2345 % 50))
    );
    let info = ok(run(b.path(), &["core", "info", &key, "--json"], b""));
    assert_eq!(json_field(&info, "length"), 3000);
    assert_eq!(json_field(&info, "blocks_stored"), 1, "{info}");
    // Unknown to the peer: a clear error, not a hang.
    let other = "ab".repeat(32);
    let out = run(
        b.path(),
        &[
            "core",
            "get",
            &other,
            "0",
            "--connect",
            &seeder.addr,
            "--timeout",
            "1",
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("sent nothing about core {other}")) && err.contains(&seeder.addr),
        "{err}"
    );
}

#[test]
fn live_clone_follows_appends() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 10);
    // The seeder stops, the writer appends, the seeder comes back on the
    // same port: the live clone reconnects and follows.
    let seeder = seed(a.path(), &[], "127.0.0.1:0");
    let addr = seeder.addr.clone();
    let (mut clone, lines) = clone_with_progress(
        b.path(),
        &["clone", &key, "--connect", &addr, "--live", "--progress"],
    );
    wait_for(&lines, |l| l.starts_with("progress: 10/10 blocks"));
    drop(seeder);
    ok(run(
        a.path(),
        &["core", "append", &key, "eleven", "twelve"],
        b"",
    ));
    let _seeder = seed(a.path(), &[], &addr);
    wait_for(&lines, |l| l.starts_with("progress: 12/12 blocks"));
    // Stored data becomes durable within a second.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = clone.kill();
    let _ = clone.wait();
    assert!(cat(b.path(), &key).ends_with("eleventwelve"));
}

#[test]
fn live_clone_follows_a_seeder_appending_stdin() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 3);
    let mut seeder = common::seed(a.path(), &[&key, "--listen", "127.0.0.1:0", "--append"]);
    let addr = seeder.addr.clone();
    let (mut clone, progress) = clone_with_progress(
        b.path(),
        &["clone", &key, "--connect", &addr, "--live", "--progress"],
    );
    wait_for(&progress, |l| l.starts_with("progress: 3/3 blocks"));
    let mut stdin = seeder.child.stdin.take().expect("stdin");
    for i in 0..5 {
        writeln!(stdin, "live {i}").expect("append a line");
        stdin.flush().expect("flush");
        let want = format!("progress: {}/{} blocks", 4 + i, 4 + i);
        wait_for(&progress, |l| l.starts_with(&want));
    }
    let _ = clone.kill();
    let _ = clone.wait();
}

#[test]
fn a_clone_killed_mid_download_resumes() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 60_000);
    let expected = cat(a.path(), &key);
    let seeder = seed(a.path(), &[], "127.0.0.1:0");
    let (mut clone, lines) = clone_with_progress(
        b.path(),
        &["clone", &key, "--connect", &seeder.addr, "--progress"],
    );
    // Past 40% (the clone makes what it stored durable every second).
    let partial = wait_for(&lines, |l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|f| f.split_once('/'))
            .and_then(|(have, total)| Some((have.parse::<u64>().ok()?, total.parse::<u64>().ok()?)))
            .is_some_and(|(have, total)| have * 5 > total * 2 && have < total)
    });
    clone.kill().expect("kill");
    let _ = clone.wait();
    let out = ok(run(
        b.path(),
        &["clone", &key, "--connect", &seeder.addr, "--json"],
        b"",
    ));
    assert_eq!(json_field(&out, "blocks"), 60_000, "{out}");
    assert!(
        json_field(&out, "fetched") < 60_000,
        "the second run resumed ({partial}): {out}"
    );
    assert_eq!(cat(b.path(), &key), expected);
}

/// `hyper-cli --store STORE ARGS...` (a clone with `--progress`) and its
/// progress lines.
fn clone_with_progress(store: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clone");
    let lines = progress_lines(&mut child);
    (child, lines)
}

fn progress_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_for(lines: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no matching line: {e}"),
        }
    }
}
