//! `hyper-cli drive …` as a real process: files, listings, ranges,
//! versions, mirrors to and from folders (killed with SIGKILL and run
//! again), and sparse reads from a seeding process over TCP that move one
//! file's blocks and nothing else. drive_serve.rs serves drives over HTTP.

mod common;
mod drive_support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{cli, ok};
use drive_support::{bin, drive_seed, json_num, json_str, random};

/// The stdout bytes of a command that must have succeeded.
fn ok_bytes(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn files_listings_ranges_versions() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = dir.path().join("store");
    let key = ok(cli(&s, &["drive", "create", "--name", "site"], None));
    assert_eq!(key.trim().len(), 64);
    ok(cli(
        &s,
        &["drive", "put", "site", "/docs/a.txt", "-"],
        Some(b"hello drive"),
    ));
    let local = dir.path().join("tool.sh");
    fs::write(&local, b"#!/bin/sh\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&local, fs::Permissions::from_mode(0o755)).expect("chmod");
    ok(cli(
        &s,
        &[
            "drive",
            "put",
            "site",
            "/bin/tool.sh",
            local.to_str().expect("utf-8"),
        ],
        None,
    ));
    assert_eq!(
        ok(cli(&s, &["drive", "cat", "site", "/docs/a.txt"], None)),
        "hello drive"
    );
    assert_eq!(
        ok(cli(
            &s,
            &[
                "drive",
                "cat",
                key.trim(),
                "/docs/a.txt",
                "--start",
                "6",
                "--end",
                "9"
            ],
            None
        )),
        "dri"
    );
    assert_eq!(
        ok(cli(&s, &["drive", "ls", "site"], None)),
        "/bin/\n/docs/\n"
    );
    let json = ok(cli(&s, &["drive", "ls", "site", "-r", "--json"], None));
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(json_str(lines[0], "path"), "/bin/tool.sh");
    assert_eq!(json_num(lines[0], "mode"), 0o755);
    assert_eq!(
        json_str(lines[1], "hash"),
        blake3::hash(b"hello drive").to_hex().to_string()
    );
    let info = ok(cli(&s, &["drive", "info", "site", "--json"], None));
    assert_eq!(
        (json_num(&info, "files"), json_num(&info, "bytes")),
        (2, 21)
    );
    let v = json_num(&info, "version");
    ok(cli(
        &s,
        &["drive", "put", "site", "/docs/a.txt"],
        Some(b"changed"),
    ));
    assert_eq!(
        ok(cli(
            &s,
            &[
                "drive",
                "cat",
                "site",
                "/docs/a.txt",
                "--version",
                &v.to_string()
            ],
            None
        )),
        "hello drive"
    );
    assert_eq!(
        ok(cli(&s, &["drive", "diff", "site", &v.to_string()], None)),
        "change /docs/a.txt\n"
    );
    // rm of a folder needs -r; errors name what is wrong.
    let refused = cli(&s, &["drive", "rm", "site", "/docs"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("/docs is a folder"));
    ok(cli(&s, &["drive", "rm", "site", "/docs", "-r"], None));
    assert_eq!(
        ok(cli(&s, &["drive", "ls", "site", "-r"], None)),
        "/bin/tool.sh  10  755\n"
    );
    for (args, says) in [
        (
            vec!["drive", "cat", "site", "/nope"],
            "no such file or folder: /nope",
        ),
        (
            vec![
                "drive",
                "cat",
                "site",
                "/bin/tool.sh",
                "--start",
                "5",
                "--end",
                "99",
            ],
            "outside /bin/tool.sh",
        ),
        (
            vec!["drive", "put", "site", "/../x", "-"],
            "'..' goes above the root",
        ),
        (
            vec!["drive", "ls", "nosuch"],
            "no core with key or name 'nosuch'",
        ),
    ] {
        let out = cli(&s, &args, Some(b""));
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

fn make_tree(root: &Path, files: usize, size: usize) {
    for i in 0..files {
        let p = root.join(format!("dir{}/file{i}.bin", i % 10));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, random(size, i as u64)).expect("write");
    }
}

fn same_tree(a: &Path, b: &Path) {
    let list = |r: &Path| {
        let mut v: Vec<_> = walk(r)
            .into_iter()
            .map(|p| p.strip_prefix(r).expect("in").to_path_buf())
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb);
    for p in la {
        assert_eq!(
            fs::read(a.join(&p)).expect("a"),
            fs::read(b.join(&p)).expect("b"),
            "{}",
            p.display()
        );
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn mirrors_with_dry_run_prune_ignore_and_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = dir.path().join("store");
    let src = dir.path().join("src");
    make_tree(&src, 30, 3000);
    fs::write(src.join("skip.log"), b"log").expect("write");
    ok(cli(&s, &["drive", "create", "--name", "d"], None));
    let src_arg = src.to_str().expect("utf-8");
    let dry = ok(cli(
        &s,
        &[
            "drive",
            "mirror",
            src_arg,
            "d",
            "--dry-run",
            "--ignore",
            "*.log",
            "--json",
        ],
        None,
    ));
    assert_eq!(dry.lines().count(), 31);
    let summary = dry.lines().last().expect("summary");
    assert_eq!(
        (json_num(summary, "add"), json_num(summary, "bytes_added")),
        (30, 90_000)
    );
    assert_eq!(
        ok(cli(&s, &["drive", "ls", "d", "-r"], None)),
        "",
        "a dry run writes nothing"
    );
    ok(cli(
        &s,
        &["drive", "mirror", src_arg, "d", "--ignore", "*.log"],
        None,
    ));
    let out = dir.path().join("out");
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(out.join("extra.txt"), b"gone soon").expect("write");
    let out_arg = out.to_str().expect("utf-8");
    let text = ok(cli(&s, &["drive", "mirror", "d", out_arg, "--prune"], None));
    assert!(text.starts_with("remove /extra.txt\n"), "{text}");
    fs::remove_file(src.join("skip.log")).expect("rm");
    same_tree(&src, &out);
    // A second mirror moves nothing; a changed file moves alone.
    fs::write(src.join("dir3/file3.bin"), b"new content").expect("write");
    let again = ok(cli(&s, &["drive", "mirror", src_arg, "d", "--json"], None));
    let summary = again.lines().last().expect("summary");
    assert_eq!(
        (
            json_num(summary, "change"),
            json_num(summary, "equal"),
            json_num(summary, "bytes_added")
        ),
        (1, 29, 11)
    );
}

/// Rewrites `file` with `bytes`, then puts its modification time back.
fn edit_in_place(file: &Path, bytes: &[u8], mtime: std::time::SystemTime) {
    fs::write(file, bytes).expect("edit");
    fs::File::options()
        .write(true)
        .open(file)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
}

#[test]
fn checksum_mirrors_find_an_edit_in_place_that_kept_size_and_mtime() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = dir.path().join("store");
    let src = dir.path().join("src");
    make_tree(&src, 5, 2000);
    ok(cli(&s, &["drive", "create", "--name", "d"], None));
    let src_arg = src.to_str().expect("utf-8");
    ok(cli(&s, &["drive", "mirror", src_arg, "d"], None));
    let out = dir.path().join("out");
    let out_arg = out.to_str().expect("utf-8");
    ok(cli(&s, &["drive", "mirror", "d", out_arg], None));
    // Edit one mirrored file in place: same size, its mtime put back.
    let file = out.join("dir2/file2.bin");
    let mtime = fs::metadata(&file)
        .expect("stat")
        .modified()
        .expect("mtime");
    edit_in_place(&file, &random(2000, 999), mtime);
    let summary = |args: &[&str]| {
        let out = ok(cli(
            &s,
            &[&["drive", "mirror", "d", out_arg, "--json"], args].concat(),
            None,
        ));
        let last = out.lines().last().expect("summary").to_string();
        (
            json_num(&last, "change"),
            json_num(&last, "equal"),
            json_num(&last, "bytes_added"),
            out,
        )
    };
    let (change, equal, _, _) = summary(&["--dry-run"]);
    assert_eq!(
        (change, equal),
        (0, 5),
        "size and mtime alone call it equal"
    );
    let (change, equal, bytes, lines) = summary(&["--checksum"]);
    assert_eq!((change, equal, bytes), (1, 4, 2000));
    assert!(
        lines.contains(
            r#"{"bytes_added":2000,"bytes_removed":2000,"op":"change","path":"/dir2/file2.bin"}"#
        ),
        "{lines}"
    );
    same_tree(&src, &out);
    let (change, equal, _, _) = summary(&["-c"]);
    assert_eq!((change, equal), (0, 5), "nothing left to copy");
    let help = ok(cli(&s, &["drive", "mirror", "--help"], None));
    assert!(help.contains("-c, --checksum"), "{help}");
    // From a seeding peer: the bytes compared are fetched first.
    let key = ok(cli(&s, &["drive", "info", "d", "--json"], None));
    let key = json_str(&key, "key");
    edit_in_place(&file, &random(2000, 998), mtime);
    let seeder = drive_seed(&s, "d");
    let r = dir.path().join("replica");
    let remote = |args: &[&str]| {
        let connect = ["--connect", seeder.addr.as_str()];
        let out = ok(cli(
            &r,
            &[
                &["drive", "mirror", &key, out_arg, "--json"],
                args,
                &connect,
            ]
            .concat(),
            None,
        ));
        let last = out.lines().last().expect("summary").to_string();
        (json_num(&last, "change"), json_num(&last, "equal"))
    };
    assert_eq!(remote(&["--dry-run"]), (0, 5));
    assert_eq!(remote(&["--checksum"]), (1, 4));
    same_tree(&src, &out);
}

/// `hyper-cli --store STORE ARGS` run so that a mode of 000 denies it: as
/// root (who reads any file through CAP_DAC_OVERRIDE and
/// CAP_DAC_READ_SEARCH) with those two capabilities dropped by util-linux's
/// `setpriv`, else as the user it is.
fn cli_without_dac_override(store: &Path, args: &[&str]) -> std::process::Output {
    let root = fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let mut cmd = if root {
        let drop = "-dac_override,-dac_read_search";
        let mut c = std::process::Command::new("setpriv");
        c.arg(format!("--inh-caps={drop}"))
            .arg(format!("--bounding-set={drop}"))
            .arg(env!("CARGO_BIN_EXE_hyper-cli"));
        c
    } else {
        bin()
    };
    cmd.arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hyper-cli (setpriv comes with util-linux)")
}

#[test]
fn an_unreadable_file_or_folder_in_a_mirror_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let s = dir.path().join("store");
    ok(cli(&s, &["drive", "create", "--name", "d"], None));
    let src = dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(src.join("a-readable.txt"), b"fine").expect("write");
    let secret = src.join("secret.txt");
    fs::write(&secret, b"hidden").expect("write");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    let src_arg = src.to_str().expect("utf-8");
    let out = dir.path().join("out");
    let out_arg = out.to_str().expect("utf-8");
    for dst in ["d", out_arg] {
        let run = cli_without_dac_override(&s, &["drive", "mirror", src_arg, dst]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            !run.status.success(),
            "mirrored an unreadable file into {dst}"
        );
        assert!(
            err.contains(&format!("{}: Permission denied", secret.display())),
            "{dst}: {err}"
        );
    }
    let listed = ok(cli(&s, &["drive", "ls", "d", "-r"], None));
    assert!(!listed.contains("secret"), "stored: {listed}");
    assert!(!out.join("secret.txt").exists());
    // A folder the walk cannot list is named too.
    fs::remove_file(&secret).expect("rm");
    let locked = src.join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("inside.txt"), b"x").expect("write");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    let run = cli_without_dac_override(&s, &["drive", "mirror", src_arg, "d"]);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "mirrored past an unreadable folder");
    assert!(err.contains(locked.to_str().expect("utf-8")), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn a_killed_mirror_run_again_finishes_and_never_points_at_missing_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = dir.path().join("store");
    let src = dir.path().join("src");
    make_tree(&src, 120, 400_000);
    ok(cli(&s, &["drive", "create", "--name", "d"], None));
    let src_arg = src.to_str().expect("utf-8");
    let mut killed_early = false;
    for delay in [150u64, 400] {
        let mut child = bin()
            .arg("--store")
            .arg(&s)
            .args(["drive", "mirror", src_arg, "d"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        killed_early |= child.try_wait().expect("wait").is_none();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Whatever the kill left, every entry reads back whole.
        let listed = ok(cli(&s, &["drive", "ls", "d", "-r", "--json"], None));
        for line in listed.lines() {
            let path = json_str(line, "path");
            let bytes = cli(&s, &["drive", "cat", "d", &path], None);
            assert!(
                bytes.status.success(),
                "{path}: {}",
                String::from_utf8_lossy(&bytes.stderr)
            );
            assert_eq!(
                blake3::hash(&bytes.stdout).to_hex().to_string(),
                json_str(line, "hash")
            );
        }
    }
    assert!(killed_early, "the mirror finished before any kill");
    ok(cli(&s, &["drive", "mirror", src_arg, "d"], None));
    let out = dir.path().join("out");
    let out_arg = out.to_str().expect("utf-8");
    // Mirror out, killed half way too, then finished.
    let mut child = bin()
        .arg("--store")
        .arg(&s)
        .args(["drive", "mirror", "d", out_arg])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    ok(cli(&s, &["drive", "mirror", "d", out_arg], None));
    // Temp files of the killed run are overwritten by the rerun and renamed.
    same_tree(&src, &out);
}

#[test]
fn replicas_read_sparsely_from_a_seeding_process() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("writer"), dir.path().join("reader"));
    let src = dir.path().join("src");
    make_tree(&src, 300, 20_000);
    fs::write(src.join("big.bin"), random(3_000_000, 77)).expect("write");
    let key = ok(cli(&w, &["drive", "create", "--name", "d"], None))
        .trim()
        .to_string();
    ok(cli(
        &w,
        &["drive", "mirror", src.to_str().expect("utf-8"), "d"],
        None,
    ));
    let info = ok(cli(&w, &["drive", "info", "d", "--json"], None));
    let (blobs, meta_len) = (json_str(&info, "blobs_key"), json_num(&info, "version"));
    let seeder = drive_seed(&w, "d");
    let connect = ["--connect", seeder.addr.as_str()];
    let started = Instant::now();
    let one = cli(
        &r,
        &[&["drive", "cat", &key, "/dir3/file133.bin"][..], &connect].concat(),
        None,
    );
    assert!(
        ok_bytes(one) == random(20_000, 133),
        "the file read back differs"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Only that file's bee path and its one block moved.
    let core = |k: &str| ok(cli(&r, &["core", "info", k, "--json"], None));
    assert_eq!(json_num(&core(&blobs), "blocks_stored"), 1);
    let meta_stored = json_num(&core(&key), "blocks_stored");
    assert!(
        meta_stored <= 12,
        "{meta_stored} of {meta_len} metadata blocks"
    );
    // A byte range of a big file moves the blocks under it only.
    let range = ok_bytes(cli(
        &r,
        &[
            &[
                "drive", "cat", &key, "/big.bin", "--start", "1000000", "--end", "1100000",
            ][..],
            &connect,
        ]
        .concat(),
        None,
    ));
    assert!(
        range == random(3_000_000, 77)[1_000_000..1_100_000],
        "the range read back differs"
    );
    let blocks = json_num(&core(&blobs), "blocks_stored");
    assert!(
        (2..=4).contains(&blocks),
        "{blocks} blocks after a 100 kB range"
    );
    // Listing and a full mirror out from the peer.
    let ls = ok(cli(
        &r,
        &[&["drive", "ls", &key][..], &connect].concat(),
        None,
    ));
    assert!(ls.starts_with("/big.bin  3000000  644\n/dir0/\n"), "{ls}");
    let out = dir.path().join("out");
    ok(cli(
        &r,
        &[
            &["drive", "mirror", &key, out.to_str().expect("utf-8")][..],
            &connect,
        ]
        .concat(),
        None,
    ));
    same_tree(&src, &out);
}

#[test]
fn a_live_mirror_follows_the_source_folder_until_stopped() {
    let dir = tempfile::tempdir().expect("tmp");
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(src.join("first.txt"), b"one").expect("write");
    let mut child = bin()
        .arg("--store")
        .arg(dir.path().join("store"))
        .args([
            "drive",
            "mirror",
            src.to_str().expect("utf-8"),
            out.to_str().expect("utf-8"),
            "--live",
            "--prune",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // A watchdog: a live mirror that stops reporting ends the test, not CI.
    // It holds the Child, so it never signals a reaped (reused) pid.
    let stdout = child.stdout.take().expect("stdout");
    let child = std::sync::Arc::new(std::sync::Mutex::new(child));
    let watched = child.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let mut c = watched.lock().unwrap_or_else(|e| e.into_inner());
        if c.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = c.kill();
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || {
        lines
            .next()
            .expect("a line before the watchdog")
            .expect("utf-8")
    };
    assert_eq!(next(), "add /first.txt");
    assert!(next().starts_with("1 added"));
    fs::create_dir_all(src.join("sub")).expect("mkdir");
    fs::write(src.join("sub/second.txt"), b"two").expect("write");
    assert_eq!(next(), "add /sub/second.txt");
    next();
    fs::remove_file(src.join("first.txt")).expect("rm");
    assert_eq!(next(), "remove /first.txt");
    {
        let mut c = child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(
        fs::read(out.join("sub/second.txt")).expect("mirrored"),
        b"two"
    );
    assert!(!out.join("first.txt").exists());
    // Only a folder can be watched.
    let err = cli(
        &dir.path().join("store2"),
        &["drive", "create", "--name", "d"],
        None,
    );
    assert!(err.status.success());
    let refused = cli(
        &dir.path().join("store2"),
        &[
            "drive",
            "mirror",
            "d",
            out.to_str().expect("utf-8"),
            "--live",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--live watches a local folder"));
}

/// The stderr of a command that must have failed: one `hyper-cli:` line.
fn fails(out: std::process::Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("hyper-cli: "), "{err}");
    err
}

#[test]
fn drive_reads_never_create_a_store_and_a_held_store_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("mistyped");
    let out = dir.path().join("out");
    let out = out.to_str().expect("utf-8");
    for args in [
        &["drive", "ls", "d"][..],
        &["drive", "cat", "d", "/a"][..],
        &["drive", "info", "d"][..],
        &["drive", "diff", "d", "0"][..],
        &["drive", "seed", "d"][..],
        &["drive", "mirror", "d", out][..],
    ] {
        let err = fails(cli(&missing, args, None));
        assert!(
            err.contains(&format!("no store at {}", missing.display())),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created the store");
    }
    // A folder-to-folder mirror needs no store, and makes none.
    let src = dir.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("a"), b"folder").expect("write");
    let src = src.to_str().expect("utf-8");
    ok(cli(&missing, &["drive", "mirror", src, out], None));
    assert_eq!(
        fs::read(Path::new(out).join("a")).expect("copied"),
        b"folder"
    );
    assert!(!missing.exists(), "a folder mirror created the store");
    // While `drive seed` holds the store, the holder runs put and ls
    // (store_socket.rs tests them all); a mirror into the drive or an HTTP
    // server of it would need the store here, and the error names it.
    let s = dir.path().join("s");
    ok(cli(&s, &["drive", "create", "--name", "d"], None));
    let _seeder = drive_seed(&s, "d");
    ok(cli(&s, &["drive", "put", "d", "/a", "-"], Some(b"x")));
    assert_eq!(ok(cli(&s, &["drive", "ls", "d"], None)), "/a  1  644\n");
    for args in [
        &["drive", "mirror", src, "d"][..],
        &["drive", "serve", "d", "--listen", "127.0.0.1:0"][..],
    ] {
        let err = fails(cli(&s, args, Some(b"x")));
        assert!(
            err.contains(&format!(
                "the store at {} is open in another process",
                s.display()
            )),
            "{args:?}: {err}"
        );
    }
}
