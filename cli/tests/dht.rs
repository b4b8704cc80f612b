//! Seeding and cloning through the DHT with real `hyper-cli` processes on
//! loopback: bootstrap nodes from `--bootstrap`, from `$HYPER_BOOTSTRAP`,
//! and from the documented default; a clone nobody serves ends with a
//! clear error.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;

use common::{cli, ok};

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hyper-cli ARGS...` with `env` set (and `$HYPER_BOOTSTRAP` cleared
/// unless given), waiting for a stdout line starting with `ready`; the
/// process and the rest of that line.
fn start(args: &[&str], env: &[(&str, &str)], ready: &str) -> (Process, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .args(args)
        .env_remove("HYPER_BOOTSTRAP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn hyper-cli");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let rest = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("hyper-cli {args:?} ended before printing {ready:?}"))
            .expect("utf-8");
        if let Some(rest) = line.strip_prefix(ready) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Process(child), rest)
}

/// A DHT node on `listen`; its address.
fn dht_node(listen: &str) -> (Process, String) {
    let (process, rest) = start(
        &["dht", "node", "--listen", listen],
        &[],
        "dht node listening on",
    );
    let addr = rest.split_whitespace().next().expect("address").to_string();
    (process, addr)
}

fn writer(store: &Path) -> String {
    let key = ok(cli(store, &["core", "create", "--name", "data"], None));
    let lines: String = (0..500).map(|i| format!("line {i}\n")).collect();
    ok(cli(
        store,
        &["core", "append", "data"],
        Some(lines.as_bytes()),
    ));
    // The store is the seeder's from here on (one process at a time).
    key.trim().to_string()
}

/// Seeds a fresh core and clones it with the bootstrap nodes given by
/// `args` and `env`; checks the clone.
fn seed_and_clone(args: &[&str], env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer(&w);
    let ws = w.to_str().expect("path");
    let mut seed_args = vec!["--store", ws, "seed", &key];
    seed_args.extend_from_slice(args);
    let (_seeder, _) = start(&seed_args, env, "announced");
    let r = dir.path().join("r");
    let rs = r.to_str().expect("path");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .args(["--store", rs, "clone", &key, "--json", "--retry-for", "20"])
        // The DHT path is what these tests check.
        .arg("--no-local")
        .args(args)
        .env_remove("HYPER_BOOTSTRAP");
    for (k, v) in env {
        command.env(k, v);
    }
    let json = ok(command.output().expect("clone"));
    assert!(json.contains("\"blocks\":500"), "{json}");
    assert!(json.contains("\"path\":\"direct\""), "{json}");
    let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
    assert!(
        ok(cli(&r, &["core", "cat", &key], None)) == expected,
        "the clone differs"
    );
}

#[test]
fn bootstrap_nodes_from_the_flag() {
    let (_node, addr) = dht_node("127.0.0.1:0");
    seed_and_clone(&["--bootstrap", &addr], &[]);
}

#[test]
fn bootstrap_nodes_from_the_environment() {
    let (_node, addr) = dht_node("127.0.0.1:0");
    seed_and_clone(&[], &[("HYPER_BOOTSTRAP", &addr)]);
}

#[test]
fn bootstrap_nodes_from_the_documented_default() {
    // The default is a node on this machine's default port.
    let (_node, _) = dht_node("127.0.0.1:49737");
    seed_and_clone(&[], &[]);
}

#[test]
fn a_clone_nobody_serves_ends_with_a_clear_error() {
    let (_node, addr) = dht_node("127.0.0.1:0");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "ab".repeat(32);
    let out = cli(
        dir.path(),
        &["clone", &key, "--bootstrap", &addr, "--retry-for", "2"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no peer serving core {key} was found")),
        "{stderr}"
    );
}

#[test]
fn dht_lookup_shows_who_announces_a_core() {
    let (_node, addr) = dht_node("127.0.0.1:0");
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer(&w);
    let ws = w.to_str().expect("path");
    let nobody = ok(cli(
        dir.path(),
        &["dht", "lookup", &key, "--bootstrap", &addr],
        None,
    ));
    assert!(nobody.starts_with("no peer announces"), "{nobody}");
    let (_seeder, _) = start(
        &["--store", ws, "seed", &key, "--bootstrap", &addr],
        &[],
        "announced",
    );
    let json = ok(cli(
        dir.path(),
        &["dht", "lookup", &key, "--bootstrap", &addr, "--json"],
        None,
    ));
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 1, "{json}");
    assert!(
        lines[0].contains(&format!("\"holder\":\"{addr}\"")),
        "{json}"
    );
    assert!(lines[0].contains("\"addresses\":[\"127.0.0.1:"), "{json}");
}

#[test]
fn a_dual_stack_dht_node_serves_clones_over_ipv4_and_over_ipv6() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .args(["dht", "node", "--listen", "127.0.0.1:0,[::1]:0"])
        .env_remove("HYPER_BOOTSTRAP");
    let (_node, lines) = common::start_lines(command, "dht node listening on", 2);
    let addrs: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("dht node listening on"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let v4 = addrs
        .iter()
        .find(|a| a.starts_with("127.0.0.1:"))
        .expect("an IPv4 node");
    let v6 = addrs
        .iter()
        .find(|a| a.starts_with("[::1]:"))
        .expect("an IPv6 node");
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer(&w);
    let ws = w.to_str().expect("path");
    let both = format!("{v4},{v6}");
    let (_seeder, _) = start(
        &[
            "--store",
            ws,
            "seed",
            &key,
            "--no-local",
            "--bootstrap",
            &both,
        ],
        &[],
        "announced",
    );
    // One reader per family, each given the node of that family only.
    for (name, bootstrap, host) in [("r4", v4, "127.0.0.1:"), ("r6", v6, "[::1]:")] {
        let json = ok(cli(
            &dir.path().join(name),
            &[
                "clone",
                &key,
                "--no-local",
                "--bootstrap",
                bootstrap,
                "--json",
            ],
            None,
        ));
        assert!(
            json.contains(&format!("\"address\":\"{host}")),
            "{name} reached the seeder over its bootstrap node's family: {json}"
        );
        let data = ok(cli(&dir.path().join(name), &["core", "cat", &key], None));
        assert_eq!(data.lines().count(), 500, "{name}");
        assert!(data.ends_with("line 499\n"), "{name}");
    }
}
