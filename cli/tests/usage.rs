//! The real `hyper-cli` binary as a careless user meets it: argument
//! errors are one line naming what is wrong (with clap's suggestions),
//! contradictory flags are refused, bad addresses fail at once, `--json`
//! output is JSON (lines), and shell completions work.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{cli, ok};

/// `hyper-cli ARGS...` with no `--store` (and no `$HYPER_STORE`).
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(args)
        .env_remove("HYPER_STORE")
        .stdin(Stdio::null())
        .output()
        .expect("run hyper-cli")
}

/// The one stderr line of a failed command.
fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("hyper-cli: "), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
    err
}

#[test]
fn argument_errors_are_one_line_with_suggestions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(cli(d, &["core", "create", "--name", "a"], None));
    for (args, want) in [
        (&["core", "lsit"][..], "a similar subcommand exists: 'list'"),
        (&["bee", "ls", "a", "--gtee", "x"][..], "'--gte'"),
        (&["core", "get", "a", "abc"][..], "invalid value 'abc'"),
        (&["core", "get", "a", "-1"][..], "'-1'"),
        (
            &["core", "get", "a", "99999999999999999999999"][..],
            "too large",
        ),
        (&["core"][..], "one of create, append"),
        (
            &["bee", "ls", "a", "--gt", "x", "--gte", "y"][..],
            "cannot be used with",
        ),
        (
            &["bee", "ls", "a", "--lt", "x", "--lte", "y"][..],
            "cannot be used with",
        ),
        (
            &["core", "append", "a", "--hex", "--base64", "00"][..],
            "cannot be used with",
        ),
    ] {
        let out = cli(d, args, None);
        let err = one_error_line(&out);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = cli(d, &["core", "cat", "a", "--start", "5", "--end", "3"], None);
    let err = one_error_line(&out);
    assert!(err.contains("--start 5 is past --end 3"), "{err}");
    assert_eq!(out.status.code(), Some(2));
    // --help still prints the whole help, to stdout, with success.
    let help = ok(cli(d, &["bee", "ls", "--help"], None));
    assert!(
        help.contains("--gte <A>") && help.contains("Only keys from A on"),
        "{help}"
    );
}

#[test]
fn bad_addresses_fail_at_once_naming_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "ab".repeat(32);
    for (args, addr, why) in [
        (
            vec!["clone", &key, "--connect", "nonsense"],
            "nonsense",
            "a port is missing",
        ),
        (
            vec!["clone", &key, "--connect", "127.0.0.1"],
            "127.0.0.1",
            "a port is missing",
        ),
        (
            vec!["core", "get", &key, "0", "--connect", "127.0.0.1"],
            "127.0.0.1",
            "a port is missing",
        ),
        (
            vec!["clone", &key, "--bootstrap", "127.0.0.1:1,oops"],
            "oops",
            "a port is missing",
        ),
        (
            vec!["seed", "--listen", "host:99999"],
            "99999",
            "is not a port",
        ),
    ] {
        let started = Instant::now();
        let out = cli(dir.path(), &args, None);
        let err = one_error_line(&out);
        assert!(err.contains(addr) && err.contains(why), "{args:?}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} was slow"
        );
    }
    // A name that does not resolve fails at once too, naming it.
    let started = Instant::now();
    let err = one_error_line(&cli(
        dir.path(),
        &["clone", &key, "--connect", "no-such-host.invalid:9000"],
        None,
    ));
    assert!(err.contains("no-such-host.invalid:9000"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A refused connection names the address.
    let err = one_error_line(&cli(
        dir.path(),
        &[
            "core",
            "get",
            &key,
            "0",
            "--connect",
            "127.0.0.1:1",
            "--timeout",
            "2",
        ],
        None,
    ));
    assert!(err.contains("cannot connect to 127.0.0.1:1"), "{err}");
}

#[test]
fn json_outputs_parse_and_hold_the_documented_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let key = ok(cli(d, &["core", "create", "--name", "logs"], None));
    let key = key.trim();
    ok(cli(d, &["core", "append", "logs", "a\"quote", "b"], None));
    let info: serde_json::Value =
        serde_json::from_str(&ok(cli(d, &["core", "info", "logs", "--json"], None)))
            .expect("core info --json is JSON");
    assert_eq!(info["key"], key);
    assert_eq!(info["name"], "logs");
    assert_eq!(info["length"], 2);
    assert_eq!(info["byte_length"], 8);
    assert_eq!(info["blocks_stored"], 2);
    assert_eq!(info["writable"], true);
    let discovery = info["discovery_key"].as_str().expect("discovery key");
    assert_eq!(discovery.len(), 64);
    assert_ne!(discovery, key);
    // The text form shows the same discovery key.
    assert!(ok(cli(d, &["core", "info", "logs"], None)).contains(discovery));

    ok(cli(d, &["bee", "put", "db", "k\"1", "v\\1"], None));
    ok(cli(d, &["bee", "put", "db", "k2", "v2"], None));
    ok(cli(d, &["bee", "del", "db", "k2"], None));
    let list = ok(cli(d, &["core", "list", "--json"], None));
    let lines: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l["name"] == "logs" && l["blocks_stored"] == 2)
    );
    let ls = ok(cli(d, &["bee", "ls", "db", "--json"], None));
    let entry: serde_json::Value = serde_json::from_str(ls.trim()).expect("JSON");
    assert_eq!(entry["key"], "k\"1");
    assert_eq!(entry["value"], "v\\1");
    let history = ok(cli(d, &["bee", "history", "db", "--json"], None));
    let last: serde_json::Value =
        serde_json::from_str(history.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last["type"], "del");
    assert_eq!(last["key"], "k2");
    assert!(last["value"].is_null());
}

#[test]
fn every_subcommand_has_help_and_completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).expect("utf-8");
        for word in ["hyper-cli", "clone", "retry-for", "lookup"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    // The bash script is valid bash.
    let out = bare(&["completions", "bash"]);
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash");
    std::io::Write::write_all(&mut bash.stdin.take().expect("stdin"), &out.stdout).expect("write");
    assert!(bash.wait().expect("bash").success());
    let err = one_error_line(&bare(&["completions", "nosh"]));
    assert!(err.contains("'nosh'"), "{err}");
}

#[test]
fn the_page_cache_is_set_by_hyper_cache_mib_and_a_bad_value_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |cache: &str| {
        Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
            .args(["--store"])
            .arg(dir.path())
            .args(["core", "create", "--name", "c"])
            .env("HYPER_CACHE_MIB", cache)
            .stdin(Stdio::null())
            .output()
            .expect("run hyper-cli")
    };
    for bad in ["0", "lots", "-4", "99999999999"] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = one_error_line(&out);
        assert!(
            err.contains("$HYPER_CACHE_MIB") && err.contains(bad),
            "{err}"
        );
        assert!(
            !dir.path().join("store.redb").exists(),
            "{bad} made a store"
        );
    }
    ok(run("4"));
    ok(cli(dir.path(), &["core", "info", "c"], None));
}
