//! Progress and logs of real `hyper-cli` processes: a bar with percentage
//! and rate only on a terminal (a pty made by `script`), never glued to an
//! error; honest rates; `--quiet`; logs with `-v` and `$RUST_LOG`.

use std::path::Path;
use std::process::Command;

mod common;

use common::{cli, ok};

/// A store with core `d` of `n` lines; its key.
fn writer(store: &Path, n: usize) -> String {
    let key = ok(cli(store, &["core", "create", "--name", "d"], None));
    let lines: String = (0..n)
        .map(|i| format!("line {i:06} {}\n", "x".repeat(100)))
        .collect();
    ok(cli(store, &["core", "append", "d"], Some(lines.as_bytes())));
    key.trim().to_string()
}

/// Runs `hyper-cli ARGS...` on a terminal (through `script`); what the
/// terminal showed, or none where `script` is missing.
fn on_a_terminal(store: &Path, args: &[&str]) -> Option<String> {
    let mut line = format!(
        "{} --store {}",
        env!("CARGO_BIN_EXE_hyper-cli"),
        store.display()
    );
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The text a terminal line shows at its end: after the last carriage
/// return, without escape sequences.
fn shown(line: &str) -> String {
    let last = line
        .rsplit('\r')
        .find(|part| !strip(part).trim().is_empty());
    strip(last.unwrap_or(""))
}

fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_terminal_shows_a_bar_and_an_error_on_a_line_of_its_own() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let key = writer(a.path(), 200);
    {
        let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
        ok(cli(
            b.path(),
            &[
                "core",
                "cat",
                &key,
                "--end",
                "20",
                "--connect",
                &seeder.addr,
            ],
            None,
        ));
    }
    let seeder = common::seed(b.path(), &[&key, "--listen", "127.0.0.1:0"]);
    let Some(screen) = on_a_terminal(
        c.path(),
        &["clone", &key, "--connect", &seeder.addr, "--retry-for", "2"],
    ) else {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    };
    let plain = strip(&screen);
    assert!(plain.contains("20/200 blocks"), "no bar: {screen:?}");
    assert!(plain.contains('%') && plain.contains("ETA"), "{screen:?}");
    let error = screen
        .lines()
        .find(|l| l.contains("hyper-cli:"))
        .unwrap_or_else(|| panic!("no error: {screen:?}"));
    assert!(
        shown(error).starts_with("hyper-cli: core"),
        "the error shares a line with the bar: {error:?}"
    );
    // Not a terminal: no bar at all.
    let out = cli(
        c.path(),
        &["clone", &key, "--connect", &seeder.addr, "--retry-for", "1"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn rates_count_only_what_moved_and_quiet_is_quiet() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 3000);
    let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
    let first = cli(
        b.path(),
        &["clone", &key, "--connect", &seeder.addr, "--progress"],
        None,
    );
    let err = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{err}");
    assert!(err.lines().all(|l| l.starts_with("progress: ")), "{err}");
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        out.contains("(3000 fetched, 0 already here)") && out.contains("iB/s"),
        "{out}"
    );
    // Cloning the complete core again moves nothing and claims no speed.
    let again = ok(cli(
        b.path(),
        &["clone", &key, "--connect", &seeder.addr],
        None,
    ));
    assert!(
        again.contains("(0 fetched, 3000 already here)") && again.ends_with("nothing fetched\n"),
        "{again}"
    );
    let json = ok(cli(
        b.path(),
        &["clone", &key, "--connect", &seeder.addr, "--json"],
        None,
    ));
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["fetched"], 0);
    assert_eq!(json["fetched_bytes"], 0);
    // --quiet: nothing on stderr even on a terminal; --progress and
    // --quiet contradict each other.
    if let Some(screen) = on_a_terminal(
        b.path(),
        &["--quiet", "clone", &key, "--connect", &seeder.addr],
    ) {
        assert!(!strip(&screen).contains('%'), "{screen:?}");
    }
    let out = cli(
        b.path(),
        &[
            "--quiet",
            "clone",
            &key,
            "--connect",
            &seeder.addr,
            "--progress",
        ],
        None,
    );
    assert!(!out.status.success());
}

#[test]
fn logs_show_with_verbose_or_rust_log_and_not_otherwise() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = writer(a.path(), 10);
    let seeder = common::seed(a.path(), &["d", "--listen", "127.0.0.1:0"]);
    let args = ["core", "get", &key, "3", "--connect", &seeder.addr];
    let quiet = cli(b.path(), &args, None);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    // Another block: one not fetched yet, so it connects again.
    let verbose = ["-v", "core", "get", &key, "5", "--connect", &seeder.addr];
    let out = cli(b.path(), &verbose, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        err.contains("DEBUG") && err.contains("connect_to") && err.contains("connected"),
        "{err}"
    );
    assert!(
        out.stdout.starts_with(b"line 000005"),
        "logs stay off stdout"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(b.path())
        .args(["core", "get", &key, "4", "--connect", &seeder.addr])
        .env("RUST_LOG", "hyper_cli=debug")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting"));
}

#[test]
fn a_drive_mirror_shows_a_bar_on_a_terminal_and_nothing_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, src) = (dir.path().join("s"), dir.path().join("src"));
    std::fs::create_dir(&src).expect("mkdir");
    for i in 0..8u8 {
        let bytes: Vec<u8> = (0..1 << 20).map(|j: u32| (j as u8) ^ i).collect();
        std::fs::write(src.join(format!("f{i}")), bytes).expect("write");
    }
    ok(cli(&store, &["drive", "create", "--name", "d"], None));
    let src = format!("{}/", src.display());
    // Not a terminal: the ops and the summary, and nothing on stderr.
    let out = cli(&store, &["drive", "mirror", &src, "d", "--dry-run"], None);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 added"));
    let Some(screen) = on_a_terminal(&store, &["drive", "mirror", &src, "d"]) else {
        return;
    };
    // The bar drew (percent, bytes of the 8 MiB), the ops and summary too.
    let text = strip(&screen);
    assert!(text.contains('%') && text.contains("MiB"), "{screen:?}");
    assert!(text.contains("add /f7"), "{text}");
    assert!(text.contains("8 added, 0 changed"), "{text}");
    let info = ok(cli(&store, &["drive", "info", "d", "--json"], None));
    assert!(info.contains("\"files\":8"), "{info}");
}
