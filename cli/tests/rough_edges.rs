//! The rough edges a new user hit, each with the real binary: reads never
//! create stores, errors name their subject, a closed stdout is not an
//! error, sparse replicas say how to fetch, failed clones leave nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{cli, ok};

/// The stderr of a command that must have failed.
fn fails(out: Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("hyper-cli: "), "{err}");
    err
}

/// A store with core `d` of `n` lines; its key.
fn writer(store: &Path, n: usize) -> String {
    let key = ok(cli(store, &["core", "create", "--name", "d"], None));
    let lines: String = (0..n).map(|i| format!("line {i}\n")).collect();
    ok(cli(store, &["core", "append", "d"], Some(lines.as_bytes())));
    key.trim().to_string()
}

#[test]
fn reads_never_create_a_store_and_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("mistyped/path");
    for args in [
        &["core", "list"][..],
        &["core", "info", "x"][..],
        &["core", "cat", "x"][..],
        &["bee", "get", "x", "k"][..],
        &["bee", "ls", "x"][..],
        &["seed"][..],
    ] {
        let err = fails(cli(&missing, args, None));
        assert!(
            err.contains(&format!("no store at {}", missing.display())),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created the store");
    }
    // A file where the store should be.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let err = fails(cli(&file, &["core", "create"], None));
    assert!(
        err.contains(&format!("--store {} is not a directory", file.display())),
        "{err}"
    );
    // A range past the end is an error, not an empty success.
    let store = dir.path().join("s");
    writer(&store, 2);
    let err = fails(cli(&store, &["core", "cat", "d", "--end", "5"], None));
    assert!(err.contains("block 4 is out of bounds (length 2)"), "{err}");
    // No HOME and no other hint: refused, never ./hyper-cli.
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["core", "create"])
        .current_dir(dir.path())
        .env_remove("HOME")
        .env_remove("HYPER_STORE")
        .env_remove("XDG_DATA_HOME")
        .output()
        .expect("run");
    let err = fails(out);
    assert!(err.contains("pass --store"), "{err}");
    assert!(!dir.path().join("hyper-cli").exists());
}

#[test]
fn names_are_checked_and_bee_del_of_a_missing_key_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = fails(cli(d, &["core", "create", "--name", ""], None));
    assert!(err.contains("it is empty"), "{err}");
    let key = "ab".repeat(32);
    let err = fails(cli(d, &["core", "create", "--name", &key], None));
    assert!(err.contains("it is a core key"), "{err}");
    ok(cli(d, &["bee", "put", "db", "k", "v"], None));
    let err = fails(cli(d, &["bee", "del", "db", "nope"], None));
    assert!(err.contains("no key 'nope'"), "{err}");
    ok(cli(d, &["bee", "del", "db", "k"], None));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    writer(dir.path(), 200_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(dir.path())
        .args(["core", "cat", "d"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    // The reader is gone (dropped), as with `| head -1`.
    assert_eq!(first, "line 0\n");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", out.status);
    assert_eq!(err, "");
}

#[test]
fn remote_reads_say_why_they_failed_and_sparse_replicas_say_how_to_fetch() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 100);
    let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
    let addr = seeder.addr.clone();
    // Past the peer's length: said at once, with the length.
    let err = fails(cli(
        b.path(),
        &[
            "core",
            "get",
            &key,
            "500",
            "--connect",
            &addr,
            "--timeout",
            "3",
        ],
        None,
    ));
    assert!(
        err.contains("block 500 is past the end") && err.contains("has 100 blocks"),
        "{err}"
    );
    // A core the peer does not serve.
    let other = "cd".repeat(32);
    let err = fails(cli(
        b.path(),
        &[
            "core",
            "get",
            &other,
            "0",
            "--connect",
            &addr,
            "--timeout",
            "2",
        ],
        None,
    ));
    assert!(err.contains("does not seem to serve it"), "{err}");
    // ... and that failure left no empty entry behind.
    let list = ok(cli(b.path(), &["core", "list"], None));
    assert!(!list.contains(&other), "{list}");
    // A sparse replica: one block fetched, the rest not stored here.
    assert_eq!(
        ok(cli(
            b.path(),
            &["core", "get", &key, "7", "--connect", &addr],
            None
        )),
        "line 7\n"
    );
    let list = ok(cli(b.path(), &["core", "list"], None));
    assert!(
        list.contains("100 blocks") && list.contains("1 stored"),
        "{list}"
    );
    let err = fails(cli(b.path(), &["core", "cat", &key], None));
    assert!(
        err.contains("block 0 of core") && err.contains("--connect"),
        "{err}"
    );
    // `core cat --connect` fetches what is missing.
    let cat = ok(cli(
        b.path(),
        &[
            "core",
            "cat",
            &key,
            "--start",
            "5",
            "--end",
            "10",
            "--connect",
            &addr,
        ],
        None,
    ));
    assert_eq!(cat, "line 5\nline 6\nline 7\nline 8\nline 9\n");
    let all = ok(cli(
        b.path(),
        &["core", "cat", &key, "--connect", &addr],
        None,
    ));
    assert_eq!(all.lines().count(), 100);
    // A port in use is named.
    let c = tempfile::tempdir().expect("c");
    writer(c.path(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(c.path())
        .args(["seed", "d", "--listen", &addr])
        .output()
        .expect("seed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn a_sparse_bee_says_how_to_fetch() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let lines: String = (0..3000).map(|i| format!("k{i:05} v{i}\n")).collect();
    ok(cli(
        a.path(),
        &["bee", "import", "db"],
        Some(lines.as_bytes()),
    ));
    let key = ok(cli(a.path(), &["core", "create", "--name", "db"], None));
    let key = key.trim();
    let seeder = common::seed(a.path(), &["db", "--listen", "127.0.0.1:0"]);
    let get = ok(cli(
        b.path(),
        &["bee", "get", key, "k00010", "--connect", &seeder.addr],
        None,
    ));
    assert_eq!(get, "v10");
    let err = fails(cli(b.path(), &["bee", "get", key, "k02999"], None));
    assert!(
        err.contains("is not stored here") && err.contains("--connect"),
        "{err}"
    );
}

#[test]
fn seed_of_an_empty_store_and_dht_commands_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(cli(dir.path(), &["core", "create", "--name", "x"], None));
    // --store on dht node is refused; dht node --listen takes one address
    // per family.
    let err = fails(cli(dir.path(), &["dht", "node"], None));
    assert!(err.contains("--store does not apply"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["dht", "node", "--listen", "127.0.0.1:0,127.0.0.1:1"])
        .output()
        .expect("run");
    let err = fails(out);
    assert!(
        err.contains("one address per family") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    // Bootstrap nodes that never answer: lookup says so and fails.
    let started = Instant::now();
    let err = fails(cli(
        dir.path(),
        &[
            "dht",
            "lookup",
            "x",
            "--bootstrap",
            "127.0.0.1:9",
            "--timeout",
            "2",
        ],
        None,
    ));
    assert!(
        err.contains("did not answer") && err.contains("127.0.0.1:9"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // dht lookup takes a core name (from the store).
    let err = fails(cli(dir.path(), &["dht", "lookup", "nosuch"], None));
    assert!(err.contains("no core with key or name 'nosuch'"), "{err}");
    // dht node with unreachable bootstrap nodes says so.
    let mut node = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .args([
            "dht",
            "node",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            "127.0.0.1:9",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(node.stderr.take().expect("stderr")).lines();
    let line = lines.next().expect("a line").expect("utf-8");
    let _ = node.kill();
    let _ = node.wait();
    assert!(
        line.contains("no bootstrap node answered") && line.contains("127.0.0.1:9"),
        "{line}"
    );
}

#[test]
fn seed_with_no_cores_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A clone that fails leaves the store it made, but no empty entry:
    // then there is nothing to seed.
    let key = "ab".repeat(32);
    let err = fails(cli(
        dir.path(),
        &[
            "clone",
            &key,
            "--connect",
            "127.0.0.1:1",
            "--retry-for",
            "1",
        ],
        None,
    ));
    assert!(err.contains("cannot reach 127.0.0.1:1"), "{err}");
    assert_eq!(ok(cli(dir.path(), &["core", "list"], None)), "");
    let err = fails(cli(dir.path(), &["seed", "--listen", "127.0.0.1:0"], None));
    assert!(err.contains("has no cores to seed"), "{err}");
}

#[test]
fn a_store_this_user_cannot_write_is_read_read_only() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run the reader as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("s");
    let key = writer(&store, 3);
    for (path, mode) in [(dir.path().to_path_buf(), 0o755), (store.clone(), 0o755)] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let file = store.join("store.redb");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = std::fs::read(&file).expect("read");
    // As `nobody`: may read the store, not write it.
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
        command.arg("--store").arg(&store).args(args);
        // SAFETY: setgid/setuid between fork and exec, async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.output().expect("run as nobody")
    };
    assert_eq!(
        ok(as_nobody(&["core", "cat", "d"])),
        "line 0\nline 1\nline 2\n"
    );
    assert!(ok(as_nobody(&["core", "list"])).contains(&key));
    assert!(ok(as_nobody(&["core", "info", &key])).contains("length:            3"));
    let err = fails(as_nobody(&["core", "append", "d", "x"]));
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read(&file).expect("read"),
        before,
        "the file changed"
    );
}
