//! One store, several commands: while `seed` holds a store, other
//! `hyper-cli` processes read it, append to it and ask its status through
//! the socket in the store folder.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{cli, ok};

#[test]
fn commands_on_a_store_work_while_seed_holds_it() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = ok(cli(a.path(), &["core", "create", "--name", "d"], None));
    let key = key.trim().to_string();
    ok(cli(
        a.path(),
        &["core", "append", "d", "one\n", "two\n"],
        None,
    ));
    // Nobody holds it yet.
    let out = cli(a.path(), &["status"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process holds the store"));
    let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
    let socket = a.path().join("hyper-cli.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");

    // Reads, through the seeder.
    assert_eq!(ok(cli(a.path(), &["core", "cat", "d"], None)), "one\ntwo\n");
    let list = ok(cli(a.path(), &["core", "list", "--json"], None));
    let entry: serde_json::Value = serde_json::from_str(list.trim()).expect("JSON");
    assert_eq!(entry["key"], key);
    assert_eq!(entry["blocks_stored"], 2);
    let info: serde_json::Value =
        serde_json::from_str(&ok(cli(a.path(), &["core", "info", "d", "--json"], None)))
            .expect("JSON");
    assert_eq!(info["length"], 2);
    let err =
        String::from_utf8_lossy(&cli(a.path(), &["core", "info", "nope"], None).stderr).to_string();
    assert!(err.contains("no core with key or name 'nope'"), "{err}");

    // A live clone connects; an append through the seeder reaches it.
    let mut clone = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(b.path())
        .args([
            "clone",
            &key,
            "--connect",
            &seeder.addr,
            "--live",
            "--progress",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("clone");
    let mut progress = BufReader::new(clone.stderr.take().expect("stderr")).lines();
    let wait_for = |lines: &mut std::io::Lines<BufReader<std::process::ChildStderr>>,
                    want: &str| {
        for line in lines.by_ref() {
            if line.expect("utf-8").starts_with(want) {
                return;
            }
        }
        panic!("no {want:?}");
    };
    wait_for(&mut progress, "progress: 2/2 blocks");
    let out = ok(cli(a.path(), &["core", "append", "d"], Some(b"three\n")));
    assert_eq!(out, "appended 1 blocks: length 3, 14 bytes\n");
    wait_for(&mut progress, "progress: 3/3 blocks");

    // Status shows the holder, its TCP peer and the core.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status: serde_json::Value =
            serde_json::from_str(&ok(cli(a.path(), &["status", "--json"], None))).expect("JSON");
        // The peer, once it has had all 3 blocks.
        if status["peers"][0]["blocks_up"] == 3 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["command"], "seed");
    assert_eq!(status["listening"], seeder.addr.as_str());
    assert_eq!(
        status["peers"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    // The clone's path and what moved with it: 3 blocks, 14 bytes up.
    let peer = &status["peers"][0];
    assert_eq!(peer["transport"], "tcp", "{status}");
    assert_eq!(peer["path"], "direct", "{status}");
    assert!(
        peer["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:") && a != seeder.addr),
        "{status}"
    );
    assert_eq!(
        peer["identity"].as_str().map(str::len),
        Some(64),
        "{status}"
    );
    assert_eq!(
        (&peer["blocks_up"], &peer["bytes_up"]),
        (&3.into(), &14.into())
    );
    assert_eq!(
        (&peer["blocks_down"], &peer["bytes_down"]),
        (&0.into(), &0.into())
    );
    assert_eq!(status["cores"][0][0], key);
    assert_eq!(status["cores"][0][1], 3);
    let text = ok(cli(a.path(), &["status"], None));
    let identity = peer["identity"].as_str().unwrap_or_default();
    let address = peer["address"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!(
            "1 peers\npeer {identity} at {address} (tcp direct): 14 bytes up in 3 blocks, 0 bytes down in 0 blocks\n"
        )),
        "{text}"
    );
    assert!(text.contains("3 of 3 blocks stored"), "{text}");
    // The live clone holds its store, and serves reads of it too.
    assert_eq!(
        ok(cli(b.path(), &["core", "cat", &key], None)),
        "one\ntwo\nthree\n"
    );
    let status = ok(cli(b.path(), &["status"], None));
    assert!(status.contains("(clone --live)"), "{status}");
    let _ = clone.kill();
    let _ = clone.wait();
    drop(seeder);
    // Held by nobody again: the store opens directly.
    assert_eq!(
        ok(cli(a.path(), &["core", "cat", "d"], None)),
        "one\ntwo\nthree\n"
    );
}

/// `core cat --follow` of `store`'s core `d`, and a reader of its lines.
fn follow(
    store: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(store)
        .args(["core", "cat", "d", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cat --follow");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

#[test]
fn cat_follow_tails_a_live_core_held_here_or_by_a_seeder() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(cli(dir.path(), &["core", "create", "--name", "d"], None));
    ok(cli(dir.path(), &["core", "append", "d", "one\n"], None));
    // Held by the follower itself: appends from others reach it.
    let (mut child, mut lines) = follow(dir.path());
    let mut next = || lines.next().expect("a line").expect("utf-8");
    assert_eq!(next(), "one");
    ok(cli(dir.path(), &["core", "append", "d", "two\n"], None));
    assert_eq!(next(), "two");
    let _ = child.kill();
    let _ = child.wait();
    // Held by a seeder: the follower goes through it.
    let _seeder = common::seed(dir.path(), &["d", "--listen", "127.0.0.1:0"]);
    let (mut child, mut lines) = follow(dir.path());
    let mut next = || lines.next().expect("a line").expect("utf-8");
    assert_eq!((next(), next()), ("one".to_string(), "two".to_string()));
    ok(cli(dir.path(), &["core", "append", "d", "three\n"], None));
    assert_eq!(next(), "three");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_store_socket_answers_garbage_with_an_error_and_keeps_serving() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().expect("tempdir");
    ok(cli(dir.path(), &["core", "create", "--name", "d"], None));
    ok(cli(dir.path(), &["core", "append", "d", "x"], None));
    let _seeder = common::seed(dir.path(), &["d", "--listen", "127.0.0.1:0"]);
    let socket = dir.path().join("hyper-cli.sock");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let good = br#"{"op":"cat","key":"d","start":0,"end":1}"#;
    for round in 0..200 {
        let mut line: Vec<u8> = if round % 2 == 0 {
            good.to_vec()
        } else {
            (0..next() % 64).map(|_| next() as u8).collect()
        };
        for _ in 0..(next() % 3) {
            if !line.is_empty() {
                let i = (next() as usize) % line.len();
                line[i] = next() as u8;
            }
        }
        line.retain(|&b| b != b'\n');
        line.push(b'\n');
        let mut stream = UnixStream::connect(&socket).expect("connect");
        stream.write_all(&line).expect("write");
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .expect("an answer");
        assert!(!answer.is_empty(), "no answer to {line:?}");
    }
    // Cats past the end and of unknown cores are errors, not hangs.
    for bad in [
        r#"{"op":"cat","key":"d","start":5,"end":9}"#,
        r#"{"op":"info","key":"nope"}"#,
        r#"{"op":"append","key":"d","blocks":["!!"],"force":false}"#,
    ] {
        let mut stream = UnixStream::connect(&socket).expect("connect");
        writeln!(stream, "{bad}").expect("write");
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .expect("an answer");
        // A bad block is a usage error (exit status 2 for the client).
        let kind = if bad.contains("!!") { "usage" } else { "error" };
        assert!(
            answer.starts_with(&format!("{{\"{kind}\"")),
            "{bad}: {answer}"
        );
    }
    assert_eq!(ok(cli(dir.path(), &["core", "cat", "d"], None)), "x");
}

#[test]
fn bee_commands_work_while_seed_holds_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path();
    ok(cli(a, &["bee", "put", "db", "a", "1"], None));
    let _seeder = common::seed(a, &["db", "--listen", "127.0.0.1:0"]);
    // A put, then a get that sees it, through the seeder.
    ok(cli(a, &["bee", "put", "db", "b", "2"], None));
    assert_eq!(ok(cli(a, &["bee", "get", "db", "b"], None)), "2");
    // Puts at once from several processes: none is lost.
    let puts: Vec<_> = (0..6)
        .map(|i| {
            let a = a.to_path_buf();
            std::thread::spawn(move || {
                ok(cli(
                    &a,
                    &["bee", "put", "db", &format!("k{i}"), &format!("v{i}")],
                    None,
                ))
            })
        })
        .collect();
    for put in puts {
        put.join().expect("put");
    }
    for i in 0..6 {
        assert_eq!(
            ok(cli(a, &["bee", "get", "db", &format!("k{i}"), "-n"], None)),
            format!("v{i}\n")
        );
    }
    // Import (stdin goes along), ls, del, history and a missing key.
    let out = ok(cli(a, &["bee", "import", "db"], Some(b"x 10\ny 20\n")));
    assert!(out.starts_with("imported 2 entries: version "), "{out}");
    ok(cli(a, &["bee", "del", "db", "a"], None));
    let ls = ok(cli(a, &["bee", "ls", "db"], None));
    assert_eq!(
        ls,
        "b 2\nk0 v0\nk1 v1\nk2 v2\nk3 v3\nk4 v4\nk5 v5\nx 10\ny 20\n"
    );
    let json = ok(cli(a, &["bee", "ls", "db", "--json", "--limit", "1"], None));
    assert_eq!(json, "{\"key\":\"b\",\"value\":\"2\"}\n");
    let history = ok(cli(a, &["bee", "history", "db"], None));
    assert_eq!(history.lines().count(), 11, "{history}");
    assert!(history.ends_with(" del a\n"), "{history}");
    // A bad argument found by the holder is a usage error here too.
    let bad = cli(a, &["bee", "put", "db", "zz", "v", "--hex"], None);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("KEY"),
        "{bad:?}"
    );
    let missing = cli(a, &["bee", "get", "db", "a"], None);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("'a'"), "{err}");
    // Still held: nothing opened the store beside the seeder.
    let status = ok(cli(a, &["status"], None));
    assert!(status.contains("(seed)"), "{status}");
}

#[test]
fn drive_commands_work_while_seed_holds_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path();
    ok(cli(
        a,
        &["drive", "put", "site", "/hello.txt"],
        Some(b"hello"),
    ));
    let _seeder = common::seed(a, &["site", "--listen", "127.0.0.1:0"]);
    // A FILE relative to this process's folder, which the holder's is not.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::write(elsewhere.path().join("a.txt"), b"file a").expect("write");
    let put_file = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(a)
        .args(["drive", "put", "site", "/docs/a.txt", "a.txt"])
        .current_dir(elsewhere.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    ok(put_file);
    // Bytes that are not UTF-8 through stdin, and back through cat.
    let binary: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    ok(cli(a, &["drive", "put", "site", "/b.bin"], Some(&binary)));
    let cat = cli(a, &["drive", "cat", "site", "/b.bin"], None);
    assert!(cat.status.success());
    assert_eq!(cat.stdout, binary);
    // Puts at once from several processes: none is lost.
    let puts: Vec<_> = (0..4)
        .map(|i| {
            let a = a.to_path_buf();
            std::thread::spawn(move || {
                let path = format!("/many/{i}.txt");
                ok(cli(&a, &["drive", "put", "site", &path], Some(b"x")))
            })
        })
        .collect();
    for put in puts {
        put.join().expect("put");
    }
    let ls = ok(cli(a, &["drive", "ls", "site", "-r"], None));
    let paths: Vec<&str> = ls
        .lines()
        .map(|l| l.split("  ").next().unwrap_or(l))
        .collect();
    assert_eq!(
        paths,
        [
            "/b.bin",
            "/docs/a.txt",
            "/hello.txt",
            "/many/0.txt",
            "/many/1.txt",
            "/many/2.txt",
            "/many/3.txt"
        ],
        "{ls}"
    );
    assert_eq!(
        ok(cli(a, &["drive", "cat", "site", "/docs/a.txt"], None)),
        "file a"
    );
    ok(cli(a, &["drive", "rm", "site", "/hello.txt"], None));
    let info = ok(cli(a, &["drive", "info", "site", "--json"], None));
    let info: serde_json::Value = serde_json::from_str(&info).expect("json");
    assert_eq!(info["files"], 6, "{info}");
    let diff = ok(cli(a, &["drive", "diff", "site", "3"], None));
    assert!(diff.contains("remove /hello.txt"), "{diff}");
    assert!(diff.contains("add /docs/a.txt"), "{diff}");
    // An error from the holder names its subject and fails here.
    let missing = cli(a, &["drive", "cat", "site", "/nope"], None);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nope"), "{err}");
    let status = ok(cli(a, &["status"], None));
    assert!(status.contains("(seed)"), "{status}");
}

#[test]
fn status_of_a_live_clone_shows_the_peer_it_connected_to() {
    let (src, dst) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    ok(cli(src.path(), &["core", "create", "--name", "d"], None));
    ok(cli(src.path(), &["core", "append", "d", "a", "b"], None));
    let key = ok(cli(src.path(), &["core", "info", "d", "--json"], None));
    let key: serde_json::Value = serde_json::from_str(&key).expect("json");
    let key = key["key"].as_str().expect("key").to_string();
    let seeder = common::seed(src.path(), &["d", "--listen", "127.0.0.1:0"]);
    let mut clone = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(dst.path())
        .args([
            "clone",
            &key,
            "--live",
            "--quiet",
            "--connect",
            &seeder.addr,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("clone --live");
    let started = Instant::now();
    let mut last = String::new();
    let peer = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no peer: {last}"
        );
        let out = cli(dst.path(), &["status", "--json"], None);
        if out.status.success() {
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            let status: serde_json::Value = serde_json::from_str(&last).expect("json");
            if let Some(peer) = status["peers"].as_array().and_then(|p| p.first()) {
                assert_eq!(status["command"], "clone --live", "{last}");
                assert_eq!(
                    status["identity"].as_str().map(str::len),
                    Some(64),
                    "{last}"
                );
                break peer.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = clone.kill();
    let _ = clone.wait();
    assert_eq!(peer["address"], seeder.addr.as_str(), "{last}");
    assert!(
        last.contains("\"swarm\":null"),
        "no swarm with --connect: {last}"
    );
    assert_eq!(
        (&peer["transport"], &peer["path"]),
        (&"tcp".into(), &"direct".into())
    );
    assert_eq!(peer["identity"].as_str().map(str::len), Some(64), "{last}");
}
