//! The NAT matrix: real `hyper-cli` processes in network namespaces behind
//! simulated home routers (`common/netlab.rs`). A DHT bootstrap node and a
//! relay node run on the "internet"; a seeder announces a core; a cloner
//! behind another NAT finds it through the DHT, connects (directly when
//! hole punching can work, through the relay when both NATs are
//! symmetric), downloads and checks every block. Runs as root (CI); skips
//! elsewhere unless `HYPER_NAT_LAB=required`.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

mod common;

use common::lab_process::{Process, dht_node, start, start_reading};
use common::netlab::{self, Host, Nat};
use common::{cli, ok, writer_with};

const BLOCKS: usize = 2000;

/// Where a peer sits.
#[derive(Clone, Copy, Debug)]
enum Place {
    Public,
    Behind(Nat),
}

/// A writer store holding one core of `BLOCKS` lines; its key.
fn writer(store: &Path) -> String {
    let lines: String = (0..BLOCKS).map(|i| format!("block {i}\n")).collect();
    writer_with(store, &lines)
}

fn field<'a>(json: &'a str, name: &str) -> &'a str {
    let start = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"))
        + name.len()
        + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"')
}

/// Seeds from `seeder`, clones at `cloner`; the path the clone took.
fn clone_across(seeder: Place, cloner: Place, expected_path: &str) {
    clone_across_with(seeder, cloner, expected_path, Bootstrap::Both);
}

/// Which DHT nodes the peers are given.
#[derive(Clone, Copy, PartialEq)]
enum Bootstrap {
    /// The bootstrap node and the relay node.
    Both,
    /// Only the bootstrap node: the second observer of a NAT's mapping must
    /// come from what the DHT tells.
    One,
}

fn clone_across_with(seeder: Place, cloner: Place, expected_path: &str, given: Bootstrap) {
    let Some(mut lab) = netlab::lab_or_skip() else {
        return;
    };
    let boot = lab.public_host("boot").expect("boot host");
    let relay = lab.public_host("relay").expect("relay host");
    let host = |lab: &mut netlab::Lab, label: &str, place: Place| match place {
        Place::Public => lab.public_host(label),
        Place::Behind(nat) => lab.nat_host(label, nat),
    };
    let seed_host = host(&mut lab, "seed", seeder).expect("seeder host");
    let clone_host = host(&mut lab, "clone", cloner).expect("cloner host");
    let boot_addr = format!("{}:49737", boot.ip);
    let relay_addr = format!("{}:49737", relay.ip);
    let bootstrap = match given {
        Bootstrap::Both => format!("{boot_addr},{relay_addr}"),
        Bootstrap::One => boot_addr.clone(),
    };

    let _boot = dht_node(&boot, &boot_addr, None);
    let _relay = dht_node(&relay, &relay_addr, Some(&boot_addr));
    let dir = tempfile::tempdir().expect("tempdir");
    let writer_store = dir.path().join("writer");
    let key = writer(&writer_store);
    let ws = writer_store.to_str().expect("path");
    let _seeder = start(
        &seed_host,
        &["--store", ws, "seed", &key, "--bootstrap", &bootstrap],
        "announced",
    );

    let reader_store = dir.path().join("reader");
    let rs = reader_store.to_str().expect("path");
    let started = Instant::now();
    let out = clone_host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args([
            "--store",
            rs,
            "clone",
            &key,
            "--bootstrap",
            &bootstrap,
            "--json",
            "--retry-for",
            "25",
        ])
        .output()
        .expect("clone");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{seeder:?} -> {cloner:?}: clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).expect("utf-8");
    eprintln!("{seeder:?} -> {cloner:?}: {json} (clone took {took:?})");
    assert_eq!(field(&json, "blocks"), BLOCKS.to_string());
    assert_eq!(field(&json, "path"), expected_path, "{json}");
    let connect: f64 = field(&json, "connect_seconds")
        .parse()
        .expect("connect_seconds");
    eprintln!("connect time {seeder:?} -> {cloner:?}: {connect:.3} s");
    // Every block is there and is what the writer wrote (each was verified
    // against the signed tree when it arrived).
    let cat = ok(cli(&reader_store, &["core", "cat", &key], None));
    let expected: String = (0..BLOCKS).map(|i| format!("block {i}\n")).collect();
    assert!(
        cat == expected,
        "the clone's blocks differ from the writer's"
    );
    status_names_the_path(&clone_host, &key, &bootstrap, dir.path(), expected_path);
}

/// While a live clone runs at `host`, `hyper-cli status` on its store shows
/// its peer with `expected_path` (`direct` or `relay`).
fn status_names_the_path(host: &Host, key: &str, bootstrap: &str, dir: &Path, expected_path: &str) {
    let store = dir.join("live");
    let st = store.to_str().expect("path");
    let child = host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["--store", st, "clone", key, "--live", "--quiet"])
        .args(["--bootstrap", bootstrap, "--retry-for", "25"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a live clone");
    let _live = Process(child);
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed().as_secs() < 25 {
        let out = cli(&store, &["status", "--json"], None);
        if out.status.success() {
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            let status: serde_json::Value = serde_json::from_str(&last).expect("status json");
            if let Some(peer) = status["peers"].as_array().and_then(|p| p.first()) {
                assert_eq!(peer["path"], expected_path, "{last}");
                // The swarm's side: the topic looked up, the connection
                // counted under its path.
                let swarm = &status["swarm"];
                assert_eq!(swarm["topics"][0]["client"], true, "{last}");
                assert_eq!(swarm["topics"][0]["server"], false, "{last}");
                assert!(swarm["made"][expected_path].as_u64() >= Some(1), "{last}");
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("no peer in the live clone's status: {last}");
}

#[test]
fn cone_to_cone_connects_directly() {
    clone_across(Place::Behind(Nat::Cone), Place::Behind(Nat::Cone), "direct");
}

#[test]
fn public_to_cone_connects_directly() {
    clone_across(Place::Public, Place::Behind(Nat::Cone), "direct");
}

#[test]
fn cone_seeder_to_symmetric_cloner_connects_directly() {
    clone_across(
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Symmetric),
        "direct",
    );
}

#[test]
fn symmetric_seeder_to_cone_cloner_connects_directly() {
    clone_across(
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Cone),
        "direct",
    );
}

#[test]
fn symmetric_to_symmetric_goes_through_the_relay() {
    clone_across(
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Symmetric),
        "relay",
    );
}

#[test]
fn one_bootstrap_node_is_enough_to_see_a_symmetric_nat() {
    clone_across_with(
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Symmetric),
        "direct",
        Bootstrap::One,
    );
}

/// A ticket is all a cloner behind a NAT needs: `clone TICKET`, no other
/// flag, finds the seeder (behind another NAT) through the ticket's DHT
/// nodes and punches through.
#[test]
fn a_ticket_alone_clones_across_two_cone_nats() {
    let Some(mut lab) = netlab::lab_or_skip() else {
        return;
    };
    let boot = lab.public_host("boot").expect("boot host");
    let seed_host = lab.nat_host("seed", Nat::Cone).expect("seeder host");
    let clone_host = lab.nat_host("clone", Nat::Cone).expect("cloner host");
    let boot_addr = format!("{}:49737", boot.ip);
    let _boot = dht_node(&boot, &boot_addr, None);
    let dir = tempfile::tempdir().expect("tempdir");
    let writer_store = dir.path().join("writer");
    let key = writer(&writer_store);
    let ws = writer_store.to_str().expect("path");
    let (_seeder, printed) = start_reading(
        &seed_host,
        &["--store", ws, "seed", &key, "--bootstrap", &boot_addr],
        "  on the other side",
    );
    let ticket = printed
        .iter()
        .find_map(|l| l.strip_prefix("ticket "))
        .expect("a ticket")
        .to_string();
    let reader_store = dir.path().join("reader");
    let rs = reader_store.to_str().expect("path");
    let out = clone_host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args([
            "--store",
            rs,
            "clone",
            &ticket,
            "--json",
            "--retry-for",
            "25",
        ])
        .env_remove("HYPER_BOOTSTRAP")
        .output()
        .expect("clone");
    assert!(
        out.status.success(),
        "ticket clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(field(&json, "blocks"), BLOCKS.to_string(), "{json}");
    assert_eq!(field(&json, "path"), "direct", "{json}");
}
