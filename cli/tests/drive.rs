//! `hyper-cli drive …` as a real process: files, listings, ranges,
//! versions, mirrors to and from folders (killed with SIGKILL and run
//! again), and sparse reads from a seeding process over TCP that move one
//! file's blocks and nothing else.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cli, ok};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
}

/// A `hyper-cli drive seed` process, killed on drop.
struct DriveSeeder {
    child: Child,
    addr: String,
}

impl Drop for DriveSeeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drive_seed(store: &Path, drive: &str) -> DriveSeeder {
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .args(["drive", "seed", drive, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("an address").expect("utf-8");
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.to_string();
        }
    };
    DriveSeeder { child, addr }
}

/// The stdout bytes of a command that must have succeeded.
fn ok_bytes(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json_num(line: &str, key: &str) -> u64 {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[at + key.len() + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

fn json_str(line: &str, key: &str) -> String {
    let at = line
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[at + key.len() + 4..]
        .chars()
        .take_while(|&c| c != '"')
        .collect()
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
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

/// A `hyper-cli drive serve` process, killed on drop, and its address.
fn drive_serve(store: &Path, args: &[&str]) -> DriveSeeder {
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .args([&["drive", "serve"][..], args, &["--listen", "127.0.0.1:0"]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next().expect("an address").expect("utf-8");
    let addr = line
        .strip_prefix("serving on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    DriveSeeder { child, addr }
}

/// One HTTP/1.1 GET: (status code, lower-cased headers, body).
fn get(addr: &str, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let code = head[9..12].parse().expect("a status");
    (code, head, raw[split + 4..].to_vec())
}

fn site(store: &Path) -> String {
    let key = ok(cli(store, &["drive", "create", "--name", "site"], None))
        .trim()
        .to_string();
    let page = br#"<!doctype html><h1 id="t">not run</h1><img id="i" src="img/dot.svg"><p id="r">no range</p><script src="app.js"></script>"#;
    let script = br#"const i = document.getElementById('i');
i.decode().then(() => { document.getElementById('t').textContent = 'ran, image ' + i.naturalWidth; });
fetch('/media/big.bin', { headers: { Range: 'bytes=1000-1009' } }).then(async (r) => {
  const b = new Uint8Array(await r.arrayBuffer());
  document.getElementById('r').textContent = r.status + ' ' + r.headers.get('content-range') + ' ' + b.length;
});"#;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="7" height="7"><rect width="7" height="7"/></svg>"#;
    for (path, bytes) in [
        ("/index.html", &page[..]),
        ("/app.js", &script[..]),
        ("/img/dot.svg", &svg[..]),
        ("/media/big.bin", &random(2_000_000, 5)[..]),
    ] {
        ok(cli(
            store,
            &["drive", "put", "site", path, "-"],
            Some(bytes),
        ));
    }
    key
}

#[test]
fn a_drive_served_over_http_with_types_ranges_listings_and_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let key = site(&w);
    let server = drive_serve(&w, &["site"]);
    let (code, head, body) = get(&server.addr, "/", "");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.starts_with(b"<!doctype html>"));
    assert!(
        get(&server.addr, "/app.js", "")
            .1
            .contains("content-type: text/javascript")
    );
    assert!(
        get(&server.addr, "/img/dot.svg", "")
            .1
            .contains("content-type: image/svg+xml")
    );
    let (code, head, body) = get(
        &server.addr,
        "/media/big.bin",
        "Range: bytes=1000000-1000099\r\n",
    );
    assert_eq!(code, 206);
    assert!(
        head.contains("content-range: bytes 1000000-1000099/2000000"),
        "{head}"
    );
    assert!(body == random(2_000_000, 5)[1_000_000..1_000_100]);
    assert_eq!(
        get(&server.addr, "/media/big.bin", "Range: bytes=2000000-\r\n").0,
        416
    );
    let (code, head, _) = get(&server.addr, "/img", "");
    assert_eq!(code, 301);
    assert!(head.contains("location: /img/"));
    let (_, _, listing) = get(&server.addr, "/img/", "");
    assert!(String::from_utf8_lossy(&listing).contains(r#"<a href="dot.svg">dot.svg</a>"#));
    assert_eq!(get(&server.addr, "/nope", "").0, 404);
    assert_eq!(get(&server.addr, "/a/../../x", "").0, 400);
    // A replica served from a seeding peer fetches only what is asked for
    // (one process holds a store at a time).
    drop(server);
    let seeder = drive_seed(&w, "site");
    let remote = drive_serve(&r, &[&key, "--connect", &seeder.addr]);
    let (code, _, body) = get(&remote.addr, "/media/big.bin", "Range: bytes=10-19\r\n");
    assert_eq!((code, body), (206, random(2_000_000, 5)[10..20].to_vec()));
    drop((remote, seeder));
    let info = ok(cli(&w, &["drive", "info", "site", "--json"], None));
    let blobs = json_str(&info, "blobs_key");
    let stored = json_num(
        &ok(cli(&r, &["core", "info", &blobs, "--json"], None)),
        "blocks_stored",
    );
    assert_eq!(stored, 1, "one block of one file moved");
}

/// The headless Chromium binary, installed with apt-get when missing.
fn chromium() -> std::path::PathBuf {
    let find = || {
        ["chromium", "chromium-browser"].iter().find_map(|b| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (!path.is_empty()).then(|| std::path::PathBuf::from(path))
        })
    };
    if let Some(p) = find() {
        return p;
    }
    let install =
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium";
    let status = Command::new("sh")
        .arg("-c")
        .arg(install)
        .status()
        .expect("run apt-get");
    assert!(
        status.success(),
        "installing Debian's chromium package failed"
    );
    find().expect("chromium after installing it")
}

#[test]
fn a_page_from_a_replicated_drive_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let key = site(&w);
    let seeder = drive_seed(&w, "site");
    let server = drive_serve(&r, &[&key, "--connect", &seeder.addr]);
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("http://{}/", server.addr))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("ran, image 7"),
        "the script ran and the image decoded: {dom}"
    );
    assert!(
        dom.contains("206 bytes 1000-1009/2000000 10"),
        "a byte range from the page: {dom}"
    );
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
