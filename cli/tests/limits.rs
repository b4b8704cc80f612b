//! Every waiting command ends within its own limit (a peer that accepts
//! and never speaks, a peer that holds only part of a core), and raw
//! appends do not break a bee.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{cli, ok};

/// A TCP peer that accepts connections and never sends a byte (one of
/// them answers with a plausible frame length, then nothing).
fn silent_peer() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(40);
        while Instant::now() < until {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if held.len() % 2 == 1 {
                        let _ = stream.write_all(&[0x40]);
                    }
                    held.push(stream);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, handle)
}

/// Runs `args` on `store` and checks it failed within `limit`; its stderr.
fn fails_within(store: &Path, args: &[&str], limit: Duration) -> String {
    let started = Instant::now();
    let out = cli(store, args, None);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(took < limit, "{args:?} took {took:?}: {err}");
    assert!(
        err.starts_with("hyper-cli: ") && err.lines().count() == 1,
        "{err}"
    );
    err
}

#[test]
fn a_peer_that_never_speaks_cannot_hold_a_command_past_its_limit() {
    let (addr, _peer) = silent_peer();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "ab".repeat(32);
    let limit = Duration::from_secs(8);
    for args in [
        vec!["clone", &key, "--connect", &addr, "--retry-for", "2"],
        vec![
            "core",
            "get",
            &key,
            "0",
            "--connect",
            &addr,
            "--timeout",
            "2",
        ],
        vec!["core", "cat", &key, "--connect", &addr, "--timeout", "2"],
        vec![
            "bee",
            "get",
            &key,
            "k",
            "--connect",
            &addr,
            "--timeout",
            "2",
        ],
        vec!["bee", "ls", &key, "--connect", &addr, "--timeout", "2"],
    ] {
        let err = fails_within(dir.path(), &args, limit);
        assert!(err.contains(&addr), "{args:?}: {err}");
    }
    // Nothing was left behind by the failed reads.
    assert_eq!(ok(cli(dir.path(), &["core", "list"], None)), "");
}

#[test]
fn a_clone_from_a_partial_peer_takes_what_it_has_and_says_what_is_missing() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let key = ok(cli(a.path(), &["core", "create", "--name", "d"], None));
    let key = key.trim();
    let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
    ok(cli(
        a.path(),
        &["core", "append", "d"],
        Some(lines.as_bytes()),
    ));
    // B fetches blocks 0..5 only, then A goes away.
    {
        let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
        ok(cli(
            b.path(),
            &["core", "cat", key, "--end", "5", "--connect", &seeder.addr],
            None,
        ));
    }
    // B seeds its part and says how much of the core it holds.
    let mut seeder = std::process::Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(b.path())
        .args(["seed", key, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("seed");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        seeder.stdout.take().expect("stdout"),
    ));
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.contains("5 of 100 blocks stored here"), "{first}");
    let addr = lines
        .find_map(|l| l.ok()?.strip_prefix("listening on ").map(String::from))
        .expect("address");
    let err = fails_within(
        c.path(),
        &["clone", key, "--connect", &addr, "--retry-for", "2"],
        Duration::from_secs(15),
    );
    let _ = seeder.kill();
    let _ = seeder.wait();
    assert!(
        err.contains("5 of 100 blocks stored, 95 missing (first missing: block 5)"),
        "{err}"
    );
    // What the peer had was kept.
    let cat = ok(cli(c.path(), &["core", "cat", key, "--end", "5"], None));
    assert_eq!(cat, "line 0\nline 1\nline 2\nline 3\nline 4\n");
}

#[test]
fn raw_appends_to_a_bee_are_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(cli(d, &["bee", "put", "db", "k", "v"], None));
    let out = cli(d, &["core", "append", "db", "oops"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds a bee") && err.contains("--force"),
        "{err}"
    );
    let out = cli(
        d,
        &["seed", "db", "--listen", "127.0.0.1:0", "--append"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds a bee"));
    // The bee is intact; --force does append.
    assert_eq!(ok(cli(d, &["bee", "get", "db", "k"], None)), "v");
    ok(cli(d, &["core", "append", "db", "forced", "--force"], None));
    // A core of plain lines takes raw appends as before.
    ok(cli(d, &["core", "create", "--name", "plain"], None));
    ok(cli(d, &["core", "append", "plain", "x"], None));
}
