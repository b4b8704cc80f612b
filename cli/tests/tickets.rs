//! Share tickets with real processes: `seed` prints one, and `clone`,
//! `core get`, `core cat`, `bee get` and `dht lookup` take it where they
//! take a key, needing no other flag.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;

use common::ok;

/// A child process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `hyper-cli ARGS...` with no `$HYPER_BOOTSTRAP` (and no `--store` unless
/// given in `args`).
fn hyper(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command.args(args).env_remove("HYPER_BOOTSTRAP");
    command
}

/// Starts `hyper-cli ARGS...` and reads stdout until a line starts with
/// `last`; the process and every line up to it.
fn start(args: &[&str], last: &str) -> (Process, Vec<String>) {
    let mut child = hyper(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{args:?} ended before {last:?}: {seen:?}"))
            .expect("utf-8");
        let done = line.starts_with(last);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Process(child), seen)
}

/// The ticket a seeder printed, and the command it said to run.
fn ticket(lines: &[String]) -> (String, String) {
    let ticket = lines
        .iter()
        .find_map(|l| l.strip_prefix("ticket "))
        .unwrap_or_else(|| panic!("no ticket in {lines:?}"))
        .to_string();
    let command = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("on the other side: "))
        .expect("the command for the other side")
        .to_string();
    (ticket, command)
}

fn store_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn a_ticket_from_a_tcp_seeder_is_all_a_reader_needs() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    let lines: String = (0..300).map(|i| format!("k{i:03} v{i}\n")).collect();
    ok(common::cli(
        a.path(),
        &["bee", "import", "db"],
        Some(lines.as_bytes()),
    ));
    let key = ok(common::cli(
        a.path(),
        &["core", "create", "--name", "db"],
        None,
    ));
    let (_seeder, printed) = start(
        &[
            "--store",
            store_arg(a.path()),
            "seed",
            "db",
            "--listen",
            "127.0.0.1:0",
        ],
        "listening on",
    );
    let (ticket, command) = ticket(&printed);
    assert!(
        ticket.starts_with("hyper") && !ticket.contains(' '),
        "{ticket}"
    );
    assert_eq!(command, format!("hyper-cli clone {ticket}"));
    // No key, address or bootstrap flag: the ticket has them.
    let get = ok(hyper(&[
        "--store",
        store_arg(b.path()),
        "bee",
        "get",
        &ticket,
        "k042",
    ])
    .output()
    .expect("bee get"));
    assert_eq!(get, "v42");
    let out = ok(
        hyper(&["--store", store_arg(b.path()), "clone", &ticket, "--json"])
            .output()
            .expect("clone"),
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["key"], key.trim());
    assert_eq!(json["blocks"], json["length"]);
    let block = ok(
        hyper(&["--store", store_arg(c.path()), "core", "get", &ticket, "0"])
            .output()
            .expect("core get"),
    );
    assert!(!block.is_empty());
    // A ticket with one character changed is refused, saying so.
    let mut damaged = ticket.clone().into_bytes();
    let last = damaged.len() - 1;
    damaged[last] = if damaged[last] == b'a' { b'b' } else { b'a' };
    let damaged = String::from_utf8(damaged).expect("ascii");
    let out = hyper(&["--store", store_arg(c.path()), "clone", &damaged])
        .output()
        .expect("clone");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid share ticket"), "{err}");
}

#[test]
fn a_ticket_from_a_dht_seeder_finds_it_through_the_dht() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (_node, printed) = start(
        &["dht", "node", "--listen", "127.0.0.1:0"],
        "dht node listening on",
    );
    let node = printed
        .last()
        .and_then(|l| l.strip_prefix("dht node listening on "))
        .and_then(|l| l.split_whitespace().next())
        .expect("node address")
        .to_string();
    ok(common::cli(&a, &["core", "create", "--name", "d"], None));
    ok(common::cli(
        &a,
        &["core", "append", "d", "one", "two"],
        None,
    ));
    let (_seeder, printed) = start(
        // Not on the local network: the ticket's DHT nodes must find it.
        &[
            "--store",
            store_arg(&a),
            "seed",
            "d",
            "--bootstrap",
            &node,
            "--no-local",
        ],
        "  on the other side",
    );
    let (ticket, _) = ticket(&printed);
    let out = ok(hyper(&[
        "--store",
        store_arg(&b),
        "clone",
        &ticket,
        "--json",
        "--retry-for",
        "20",
    ])
    .output()
    .expect("clone"));
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["blocks"], 2);
    assert_eq!(json["peers"][0]["path"], "direct");
    let lookup = ok(hyper(&["dht", "lookup", &ticket, "--json"])
        .output()
        .expect("lookup"));
    assert_eq!(lookup.lines().count(), 1, "{lookup}");
    // The seeder's status shows a DHT peer while one is connected.
    let c = dir.path().join("c");
    let mut live = hyper(&[
        "--store",
        store_arg(&c),
        "clone",
        &ticket,
        "--live",
        "--quiet",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("live clone");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let status = ok(hyper(&["--store", store_arg(&a), "status"])
            .output()
            .expect("status"));
        if status.contains("(direct)") || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = live.kill();
    let _ = live.wait();
    assert!(
        status.contains("1 peers: ") && status.contains("(direct)"),
        "{status}"
    );
    // A ticket with no direct address reads what is here.
    let block = ok(
        hyper(&["--store", store_arg(&b), "core", "get", &ticket, "1"])
            .output()
            .expect("get"),
    );
    assert_eq!(block, "two");
}
