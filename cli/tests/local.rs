//! `seed KEY` and `clone KEY` with no flags and no DHT node anywhere: real
//! `hyper-cli` processes find each other on the local network (multicast
//! DNS). On this machine; and in network namespaces (`common/netlab.rs`):
//! two hosts on one bridged segment find each other, a host on another
//! segment (behind a router) does not. `--no-local` and `--no-dht` switch a
//! layer off.

use std::path::Path;
use std::process::Command;

mod common;

use common::netlab::{self, Nat};
use common::{Running, cli, ok, start_until, writer_of};

const LINES: usize = 500;

/// `hyper-cli --store STORE ARGS...` with no `$HYPER_BOOTSTRAP`.
fn hyper(store: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("HYPER_BOOTSTRAP");
    command
}

/// Starts `seed KEY EXTRA...` and waits until it announced on the link.
fn seeder(command: Command) -> Running {
    start_until(command, "local: announced").0
}

/// Checks a `clone --json` line and the clone's content.
fn check_clone(json: &str, store: &Path, key: &str) {
    assert!(json.contains(&format!("\"blocks\":{LINES}")), "{json}");
    assert!(json.contains("\"path\":\"local\""), "{json}");
    let expected: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    assert!(
        ok(cli(store, &["core", "cat", key], None)) == expected,
        "the clone differs"
    );
}

#[test]
fn seed_and_clone_with_no_flags_find_each_other_on_this_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer_of(&w, LINES);
    let _seeder = seeder(hyper(&w, &["seed", &key]));

    let r = dir.path().join("r");
    let out = hyper(&r, &["clone", &key, "--json", "--retry-for", "20"])
        .output()
        .expect("clone");
    check_clone(&ok(out), &r, &key);

    // Only the DHT (and no node runs): not found.
    let out = hyper(
        &dir.path().join("none"),
        &["clone", &key, "--no-local", "--retry-for", "3"],
    )
    .output()
    .expect("clone");
    assert!(
        !out.status.success(),
        "a clone with --no-local found a peer"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was found on the local network or through the DHT"),
        "{stderr}"
    );

    // Only the local network: found.
    let r2 = dir.path().join("r2");
    let out = hyper(
        &r2,
        &["clone", &key, "--no-dht", "--json", "--retry-for", "20"],
    )
    .output()
    .expect("clone");
    check_clone(&ok(out), &r2, &key);
}

#[test]
fn a_seeder_with_no_local_is_not_found_on_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer_of(&w, LINES);
    // No "local: announced" line comes: wait for the identity instead.
    let (_seeder, _) = start_until(hyper(&w, &["seed", &key, "--no-local"]), "identity");
    let out = hyper(
        &dir.path().join("r"),
        &["clone", &key, "--no-dht", "--retry-for", "4"],
    )
    .output()
    .expect("clone");
    assert!(!out.status.success(), "a seeder with --no-local was found");
}

#[test]
fn one_segment_finds_the_seeder_and_another_segment_does_not() {
    let Some(mut lab) = netlab::lab_or_skip() else {
        return;
    };
    // Two hosts on the bridge (one segment), one behind a router on a
    // LAN of its own; no DHT node anywhere.
    let seed_host = lab.public_host("seed").expect("seed host");
    let near = lab.public_host("near").expect("near host");
    let far = lab.nat_host("far", Nat::Cone).expect("far host");

    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer_of(&w, LINES);
    let ws = w.to_str().expect("path");
    let mut command = seed_host.command(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .args(["--store", ws, "seed", &key])
        .env_remove("HYPER_BOOTSTRAP");
    let _seeder = seeder(command);

    let r = dir.path().join("near");
    let rs = r.to_str().expect("path");
    let out = near
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["--store", rs, "clone", &key, "--json", "--retry-for", "20"])
        .env_remove("HYPER_BOOTSTRAP")
        .output()
        .expect("clone");
    check_clone(&ok(out), &r, &key);

    let f = dir.path().join("far");
    let fs = f.to_str().expect("path");
    let out = far
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["--store", fs, "clone", &key, "--retry-for", "5"])
        .env_remove("HYPER_BOOTSTRAP")
        .output()
        .expect("clone");
    assert!(
        !out.status.success(),
        "a host on another segment found the seeder: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was found on the local network or through the DHT"),
        "{stderr}"
    );
}

/// `dht lookup KEY --json` from `host`: the `local` addresses of the first
/// record found, if any.
fn local_addresses(host: &netlab::Host, key: &str, bootstrap: &str) -> String {
    let out = host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["dht", "lookup", key, "--bootstrap", bootstrap, "--json"])
        .output()
        .expect("lookup");
    let json = ok(out);
    json.lines()
        .next()
        .and_then(|l| l.split("\"local\":").nth(1))
        .map(|rest| rest.split(']').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn an_address_gained_is_announced_on_the_dht_again() {
    let Some(mut lab) = netlab::lab_or_skip() else {
        return;
    };
    let boot = lab.public_host("boot").expect("boot host");
    let seed_host = lab.public_host("seed").expect("seed host");
    let bootstrap = format!("{}:49737", boot.ip);
    let mut node = boot.command(env!("CARGO_BIN_EXE_hyper-cli"));
    node.args(["dht", "node", "--listen", &bootstrap]);
    let (_node, _) = start_until(node, "dht node listening on");

    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("w");
    let key = writer_of(&w, 10);
    let ws = w.to_str().expect("path");
    let mut seed = seed_host.command(env!("CARGO_BIN_EXE_hyper-cli"));
    seed.args(["--store", ws, "seed", &key, "--bootstrap", &bootstrap]);
    let (_seeder, _) = start_until(seed, "announced");
    let before = local_addresses(&boot, &key, &bootstrap);
    assert!(before.contains(&seed_host.ip.to_string()), "{before}");

    // The seeder's host gains an address: its record names it soon.
    let gained = "198.18.250.1";
    let status = Command::new("ip")
        .args(["-n", &seed_host.name, "addr", "add"])
        .arg(format!("{gained}/16"))
        .args(["dev", "eth0"])
        .status()
        .expect("ip addr add");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = local_addresses(&boot, &key, &bootstrap);
        if now.contains(gained) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the record still names {now} after the address change"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
