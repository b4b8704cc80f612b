//! Share tickets with real processes: `seed` prints one, and `clone`,
//! `core get`, `core cat`, `bee get` and `dht lookup` take it where they
//! take a key, needing no other flag.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::ok;

/// `hyper-cli ARGS...` with no `$HYPER_BOOTSTRAP` (and no `--store` unless
/// given in `args`).
fn hyper(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command.args(args).env_remove("HYPER_BOOTSTRAP");
    command
}

/// Starts `hyper-cli ARGS...` and reads stdout until a line starts with
/// `last`; the process and every line up to it.
fn start(args: &[&str], last: &str) -> (common::Running, Vec<String>) {
    common::start_lines(hyper(args), last, 1)
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

/// Core `d` in `store` with these blocks; its key.
/// `clone TICKET --json` into `store` (20 s to find the seeder): its object.
fn clone_json(store: &Path, ticket: &str) -> serde_json::Value {
    let out = ok(hyper(&[
        "--store",
        store_arg(store),
        "clone",
        ticket,
        "--json",
        "--retry-for",
        "20",
    ])
    .output()
    .expect("clone"));
    serde_json::from_str(&out).expect("JSON")
}

fn core_d(store: &Path, blocks: &[&str]) -> String {
    let key = ok(common::cli(store, &["core", "create", "--name", "d"], None));
    ok(common::cli(
        store,
        &[&["core", "append", "d"][..], blocks].concat(),
        None,
    ));
    key.trim().to_string()
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
    let (_node, node) = common::dht_node();
    core_d(&a, &["one", "two"]);
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
    let json = clone_json(&b, &ticket);
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
        let status: serde_json::Value =
            serde_json::from_str(&ok(hyper(&["--store", store_arg(&a), "status", "--json"])
                .output()
                .expect("status")))
            .expect("JSON");
        if status["peers"][0]["blocks_up"] == 2 || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let text = ok(hyper(&["--store", store_arg(&a), "status"])
        .output()
        .expect("status"));
    let _ = live.kill();
    let _ = live.wait();
    // One peer, over QUIC found through the DHT, straight to it (on
    // loopback no punching is needed), that had both blocks (6 bytes).
    let peers = status["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "{status}");
    let peer = &peers[0];
    assert_eq!(
        (&peer["transport"], &peer["path"]),
        (&"quic".into(), &"direct".into())
    );
    assert_eq!(
        (&peer["blocks_up"], &peer["bytes_up"]),
        (&2.into(), &6.into())
    );
    assert_eq!(peer["bytes_down"], 0);
    assert!(
        peer["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{status}"
    );
    assert!(text.contains("1 peers\npeer "), "{text}");
    assert!(
        text.contains("(quic direct): 6 bytes up in 2 blocks, 0 bytes down in 0 blocks"),
        "{text}"
    );
    // A ticket with no direct address reads what is here.
    let block = ok(
        hyper(&["--store", store_arg(&b), "core", "get", &ticket, "1"])
            .output()
            .expect("get"),
    );
    assert_eq!(block, "two");
}

#[test]
fn seed_identity_per_topic_announces_each_core_under_its_own_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (_node, node) = common::dht_node();
    core_d(&a, &["one"]);
    ok(common::cli(&a, &["core", "create", "--name", "e"], None));
    ok(common::cli(&a, &["core", "append", "e", "x", "y"], None));
    let seed = |extra: &[&str]| {
        let mut args = vec!["--store", store_arg(&a), "seed", "d", "e"];
        args.extend_from_slice(&["--bootstrap", &node, "--no-local"]);
        args.extend_from_slice(extra);
        common::start_lines(hyper(&args), "  on the other side", 2)
    };
    // Who announces each core, as a DHT lookup finds it (the records of a
    // seeder that was killed stay on the node).
    let announcers = |printed: &[String]| -> Vec<Vec<String>> {
        printed
            .iter()
            .filter_map(|l| l.strip_prefix("ticket "))
            .map(|ticket| {
                let out = ok(
                    hyper(&["dht", "lookup", ticket, "--json", "--bootstrap", &node])
                        .output()
                        .expect("lookup"),
                );
                let mut keys: Vec<String> = out
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                        v["key"].as_str().expect("key").to_string()
                    })
                    .collect();
                keys.sort();
                keys
            })
            .collect()
    };
    let (seeder, printed) = seed(&["--identity-per-topic"]);
    let own: Vec<String> = announcers(&printed).concat();
    assert_eq!(own.len(), 2, "one announcer per core: {own:?}");
    assert_ne!(own[0], own[1], "one key for both cores");
    // Each is printed, in the order of the tickets.
    let printed_own: Vec<&str> = printed
        .iter()
        .filter_map(|l| l.strip_prefix("identity ")?.split_once(" for "))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(printed_own, own, "{printed:?}");
    // Each core clones from its own identity.
    for (ticket, blocks) in printed
        .iter()
        .filter_map(|l| l.strip_prefix("ticket "))
        .zip([1, 2])
    {
        let json = clone_json(&b, ticket);
        assert_eq!(json["blocks"], blocks, "{json}");
    }
    drop(seeder);
    // Without the flag: one new identity announces both.
    let (seeder, printed) = seed(&[]);
    let both = announcers(&printed);
    let shared: Vec<&String> = both[0].iter().filter(|k| !own.contains(k)).collect();
    assert_eq!(shared.len(), 1, "{both:?}");
    assert!(both[1].contains(shared[0]), "{both:?}");
    drop(seeder);
    // The per-topic identities are the same on the next run: no new key.
    let (_seeder, printed) = seed(&["--identity-per-topic"]);
    assert_eq!(announcers(&printed), both);
}

/// The direct addresses in a ticket (its layout: see cli/src/ticket.rs).
fn ticket_addresses(ticket: &str) -> Vec<std::net::SocketAddr> {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(ticket["hyper".len()..].to_uppercase().as_bytes())
        .expect("base32");
    let mut at = 33;
    let count = bytes[at];
    at += 1;
    (0..count)
        .map(|_| {
            let ip: std::net::IpAddr = match bytes[at] {
                4 => <[u8; 4]>::try_from(&bytes[at + 1..at + 5])
                    .expect("v4")
                    .into(),
                _ => <[u8; 16]>::try_from(&bytes[at + 1..at + 17])
                    .expect("v6")
                    .into(),
            };
            at += if ip.is_ipv4() { 5 } else { 17 };
            let port = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            at += 2;
            std::net::SocketAddr::new(ip, port)
        })
        .collect()
}

/// A ticket for `key` with these direct addresses and no DHT node.
fn ticket_with(key: &[u8], addresses: &[std::net::SocketAddr]) -> String {
    let mut bytes = vec![1];
    bytes.extend_from_slice(key);
    bytes.push(addresses.len() as u8);
    for a in addresses {
        match a.ip() {
            std::net::IpAddr::V4(ip) => {
                bytes.push(4);
                bytes.extend_from_slice(&ip.octets());
            }
            std::net::IpAddr::V6(ip) => {
                bytes.push(6);
                bytes.extend_from_slice(&ip.octets());
            }
        }
        bytes.extend_from_slice(&a.port().to_be_bytes());
    }
    bytes.push(0);
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(&sum.as_bytes()[..4]);
    format!(
        "hyper{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}

#[test]
fn a_ticket_from_a_wildcard_listener_names_this_hosts_interfaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let key = core_d(&a, &["one", "two", "three"]);
    let key = key.as_str();
    let (_seeder, printed) = start(
        &[
            "--store",
            store_arg(&a),
            "seed",
            "d",
            "--listen",
            "0.0.0.0:0",
        ],
        "listening on",
    );
    let port: u16 = printed
        .last()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the port listened on");
    let (ticket, _) = ticket(&printed);
    let addresses = ticket_addresses(&ticket);
    assert!(addresses.iter().all(|a| a.port() == port), "{addresses:?}");
    assert!(!addresses.iter().any(|a| a.ip().is_unspecified()));
    // Loopback last, and only there; every interface IPv4 address before.
    let (last, rest) = addresses.split_last().expect("an address");
    assert!(last.ip().is_loopback(), "{addresses:?}");
    assert!(!rest.iter().any(|a| a.ip().is_loopback()), "{addresses:?}");
    let host: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .expect("interfaces")
        .iter()
        .map(if_addrs::Interface::ip)
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    assert!(addresses.len() <= 8);
    for ip in host.iter().take(addresses.len() - 1) {
        assert!(
            rest.iter().any(|a| a.ip() == *ip),
            "{ip} not in {addresses:?}"
        );
    }
    if !host.is_empty() {
        assert!(host.contains(&addresses[0].ip()), "{addresses:?}");
    }
    // The ticket clones, and so does one whose first address is silent
    // (TEST-NET-1): the next is dialled without waiting for it.
    for (store, ticket) in [
        (&b, ticket.clone()),
        (&c, {
            let mut tried = vec![std::net::SocketAddr::from(([192, 0, 2, 1], port))];
            tried.extend_from_slice(&addresses);
            let key: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            ticket_with(&key, &tried)
        }),
    ] {
        let started = std::time::Instant::now();
        let out = ok(
            hyper(&["--store", store_arg(store), "clone", &ticket, "--json"])
                .output()
                .expect("clone"),
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(json["key"], key);
        assert_eq!(json["blocks"], 3);
        let block = ok(
            hyper(&["--store", store_arg(store), "core", "get", key, "2"])
                .output()
                .expect("get"),
        );
        assert_eq!(block, "three");
    }
}
