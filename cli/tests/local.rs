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
        stderr.contains("no peer serving this core was found"),
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
        stderr.contains("no peer serving this core was found"),
        "{stderr}"
    );
}
