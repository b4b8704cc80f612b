//! `hyper-cli drive serve` as a real process: content types, byte ranges,
//! listings and index.html over HTTP, and pages, images, scripts and a
//! video that seeks in real headless Chromium, from a replica that reads
//! sparsely from a seeding process.

mod common;
mod drive_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{cli, ok};
use drive_support::{DriveSeeder, bin, drive_seed, json_num, json_str, random};

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

/// A 4 s, 64x64 VP8 WebM with a key frame every 0.5 s and cues
/// (fixtures/README.md says how it was made).
const VIDEO: &[u8] = include_bytes!("fixtures/seek.webm");
const VIDEO_PAGE: &[u8] = br#"<!doctype html><p id="v">not seeked</p><video id="m" src="media/seek.webm" preload="auto" muted></video><script src="video.js"></script>"#;
/// Seeks to 3 s once the metadata is in (it may be in before this script
/// runs: the two are fetched side by side), then reports where it landed, the
/// duration, the seekable end (0 unless the server answers ranges) and
/// whether a frame is there (readyState >= 2): into the page, and as the
/// body of a POST to the port named by the page's `?report=` query.
const VIDEO_SCRIPT: &[u8] = br#"const m = document.getElementById('m');
const out = document.getElementById('v');
const report = (text) => {
  out.textContent = text;
  const port = new URLSearchParams(location.search).get('report');
  if (port) fetch('http://127.0.0.1:' + port + '/', { method: 'POST', body: text, mode: 'no-cors' });
};
m.addEventListener('error', () => { report('media error ' + (m.error && m.error.code)); });
const seek = () => {
  m.addEventListener('seeked', () => {
    const end = m.seekable.length ? m.seekable.end(m.seekable.length - 1) : 0;
    report('seeked to ' + m.currentTime.toFixed(1) + ' of ' + m.duration.toFixed(1)
      + ', seekable to ' + end.toFixed(1) + ', frame ' + (m.readyState >= 2));
  }, { once: true });
  m.currentTime = 3;
};
if (m.readyState >= 1) seek(); else m.addEventListener('loadedmetadata', seek, { once: true });"#;

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
        ("/video.html", VIDEO_PAGE),
        ("/video.js", VIDEO_SCRIPT),
        ("/media/seek.webm", VIDEO),
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

/// The DOM of `url` after headless Chromium ran its scripts (a profile
/// under `dir`).
fn dump_dom(dir: &Path, url: &str) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens `url` (plus `?report=PORT`) in headless Chromium (a profile under
/// `dir`) and returns the body of the first POST its scripts send to PORT.
///
/// This waits in real time, up to two minutes, where `--dump-dom` stops on
/// Chromium's virtual clock: that clock does not wait for the media
/// pipeline, so on a loaded machine a video may not have seeked yet when
/// the budget runs out.
fn page_report(dir: &Path, url: &str) -> String {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a report port");
    let port = listener.local_addr().expect("its address").port();
    let browser = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("{url}?report={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("run chromium");
    /// Kills Chromium's whole process group however the test ends.
    struct Browser(std::process::Child);
    impl Drop for Browser {
        fn drop(&mut self) {
            let group = -(self.0.id() as i32);
            // SAFETY: kill(2) with a negative pid signals that group only.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
    let _browser = Browser(browser);
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{url} sent no report in 120 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("accept a report: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The request is small: read until its declared body is in.
    loop {
        let n = stream.read(&mut buf).expect("read the report");
        assert!(n > 0, "the report ended early: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("a length"))
            .unwrap_or(0);
        if raw.len() >= end + 4 + length {
            return String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).into_owned();
        }
    }
}

#[test]
fn a_page_a_listing_and_a_404_from_a_replicated_drive_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let key = site(&w);
    let seeder = drive_seed(&w, "site");
    let server = drive_serve(&r, &[&key, "--connect", &seeder.addr]);
    let dom = dump_dom(dir.path(), &format!("http://{}/", server.addr));
    assert!(
        dom.contains("ran, image 7"),
        "the script ran and the image decoded: {dom}"
    );
    assert!(
        dom.contains("206 bytes 1000-1009/2000000 10"),
        "a byte range from the page: {dom}"
    );
    // A folder without index.html (asked for without its slash: the
    // redirect is followed) lists its children; a missing path says so.
    let listing = dump_dom(dir.path(), &format!("http://{}/img", server.addr));
    assert!(
        listing.contains("<h1>/img</h1>") && listing.contains(r#"<a href="dot.svg">dot.svg</a>"#),
        "a listing: {listing}"
    );
    let missing = dump_dom(dir.path(), &format!("http://{}/nope.html", server.addr));
    assert!(
        missing.contains("/nope.html is not in this drive"),
        "a 404 page: {missing}"
    );
}

#[test]
fn a_video_from_a_replicated_drive_seeks_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let key = site(&w);
    let info = ok(cli(&w, &["drive", "info", "site", "--json"], None));
    let blobs = json_str(&info, "blobs_key");
    let total = json_num(
        &ok(cli(&w, &["core", "info", &blobs, "--json"], None)),
        "blocks_stored",
    );
    let seeder = drive_seed(&w, "site");
    let server = drive_serve(&r, &[&key, "--connect", &seeder.addr]);
    let report = page_report(dir.path(), &format!("http://{}/video.html", server.addr));
    assert_eq!(
        report, "seeked to 3.0 of 4.0, seekable to 4.0, frame true",
        "the video seeked"
    );
    drop((server, seeder));
    let stored = json_num(
        &ok(cli(&r, &["core", "info", &blobs, "--json"], None)),
        "blocks_stored",
    );
    assert!(
        stored < total,
        "only the page's files moved, not the 2 MB file: {stored} of {total} blocks"
    );
}

#[test]
fn an_open_ended_range_from_a_replica_is_fetched_as_it_is_read() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("w"), dir.path().join("r"));
    let key = ok(cli(&w, &["drive", "create", "--name", "v"], None))
        .trim()
        .to_string();
    let movie = random(32_000_000, 21);
    ok(cli(
        &w,
        &["drive", "put", "v", "/movie.webm", "-"],
        Some(&movie),
    ));
    let info = ok(cli(&w, &["drive", "info", "v", "--json"], None));
    let blobs = json_str(&info, "blobs_key");
    let total = json_num(&info, "blocks");
    let seeder = drive_seed(&w, "v");
    let server = drive_serve(&r, &[&key, "--connect", &seeder.addr]);
    // A player seeking near the start asks for everything from there on,
    // reads a little, then stops reading (and later hangs up).
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    write!(
        s,
        "GET /movie.webm HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-\r\n\r\n"
    )
    .expect("send");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut first = vec![0; 64 * 1024];
    let n = s.read(&mut first).expect("the answer starts");
    let head = String::from_utf8_lossy(&first[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(
        head.contains("content-range: bytes 100000-31999999/32000000"),
        "{head}"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(s);
    drop((server, seeder));
    let stored = json_num(
        &ok(cli(&r, &["core", "info", &blobs, "--json"], None)),
        "blocks_stored",
    );
    // What the socket buffers took (a few MB) and a window ahead: far
    // from the whole file.
    assert!(
        stored * 3 < total,
        "a reader that stopped cost {stored} of {total} blocks"
    );
}
