//! A network change mid-clone, in the NAT lab (`common/netlab.rs`): real
//! `hyper-cli seed` and `clone` processes, a DHT bootstrap node on the
//! "internet", the seeder's uplink held to a few Mbit/s (`tc tbf`) so that
//! the clone takes seconds; once part of the core has arrived, one
//! side's namespace address is moved to a new one (`ip addr del` then
//! `ip addr add`, the way a laptop changes networks), and the clone must
//! still finish with every block. A reader that moves keeps its QUIC
//! connection (it dialled, so it migrates); a seeder that moves drops the
//! connection it accepted (stranded on the lost address) at once, its DHT
//! record names its re-learned public address, and the reader dials it
//! again once its side of the old connection times out. Runs as root (CI); skips elsewhere
//! unless `HYPER_NAT_LAB=required`. Namespaces are named `hnet<pid>-...`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::lab_process::{Process, dht_node, start};
use common::netlab::{self, Host, Nat};
use common::{cli, ok, writer_with};

/// Blocks in the core, and bytes in each.
const BLOCKS: usize = 2500;
const BLOCK: usize = 1000;
/// The seeder's uplink.
const RATE: &str = "2mbit";

/// Runs `command` to success.
fn run(command: &mut Command) {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Block `i` of the core.
fn block(i: usize) -> String {
    let head = format!("block {i} ");
    format!("{head}{}\n", "x".repeat(BLOCK - head.len() - 1))
}

/// The live status of the process holding `store`, if it answers.
fn status(store: &Path) -> Option<serde_json::Value> {
    let out = cli(store, &["status", "--json"], None);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Blocks stored of the first core in a status.
fn stored(status: &serde_json::Value) -> u64 {
    status["cores"][0][2].as_u64().unwrap_or(0)
}

/// The public addresses the seeder's DHT record names, as a lookup from
/// `host` finds them (empty if no record is found).
fn record_ips(host: &Host, key: &str, boot: &str) -> Vec<String> {
    let out = host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(["dht", "lookup", key, "--bootstrap", boot, "--json"])
        .args(["--timeout", "5"])
        .output()
        .expect("dht lookup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|peer| {
            peer["addresses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| {
                    a.as_str()
                        .and_then(|a| a.rsplit_once(':'))
                        .map(|(ip, _)| ip.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Moves `host`'s `eth0` from `from` to `to` (same prefix length): the old
/// address is deleted first (with the routes through it), then the new
/// one added and, behind a NAT, the default route through the router put
/// back.
fn move_address(host: &Host, from: Ipv4Addr, to: Ipv4Addr, prefix: u8) {
    let ns = host.name.as_str();
    run(Command::new("ip").args([
        "-n",
        ns,
        "addr",
        "del",
        &format!("{from}/{prefix}"),
        "dev",
        "eth0",
    ]));
    run(Command::new("ip").args([
        "-n",
        ns,
        "addr",
        "add",
        &format!("{to}/{prefix}"),
        "dev",
        "eth0",
    ]));
    if host.router.is_some() {
        let [a, b, c, _] = from.octets();
        let gateway = Ipv4Addr::new(a, b, c, 1);
        run(Command::new("ip").args([
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &gateway.to_string(),
        ]));
    }
}

/// Which side moves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mover {
    Seeder,
    Reader,
}

/// A seeder behind `seeder_nat` (or public), a reader behind `reader_nat`
/// (or public); `mover`'s own address (behind a NAT: its LAN address)
/// changes mid-clone; the clone finishes with every block.
fn clone_survives_a_move(mover: Mover, seeder_nat: Option<Nat>, reader_nat: Option<Nat>) {
    let Some(mut lab) = netlab::lab_or_skip_with("hnet") else {
        return;
    };
    let boot = lab.public_host("boot").expect("boot host");
    let seed_host = match seeder_nat {
        Some(nat) => lab.nat_host("seed", nat),
        None => lab.public_host("seed"),
    }
    .expect("seeder host");
    let clone_host = match reader_nat {
        Some(nat) => lab.nat_host("clone", nat),
        None => lab.public_host("clone"),
    }
    .expect("reader host");
    // Hold the seeder's uplink so that the clone lasts a while.
    run(Command::new("ip").args([
        "netns",
        "exec",
        &seed_host.name,
        "tc",
        "qdisc",
        "add",
        "dev",
        "eth0",
        "root",
        "tbf",
        "rate",
        RATE,
        "burst",
        "16kb",
        "latency",
        "400ms",
    ]));
    let boot_addr = format!("{}:49737", boot.ip);
    let _boot = dht_node(&boot, &boot_addr, None);
    let dir = tempfile::tempdir().expect("tempdir");
    let writer_store = dir.path().join("writer");
    let key = writer_with(&writer_store, &(0..BLOCKS).map(block).collect::<String>());
    let ws = writer_store.to_str().expect("path");
    let _seeder = start(
        &seed_host,
        &["--store", ws, "seed", &key, "--bootstrap", &boot_addr],
        "announced",
    );

    let reader_store = dir.path().join("reader");
    let rs = reader_store.to_str().expect("path");
    let started = Instant::now();
    let mut clone = Process(
        clone_host
            .command(env!("CARGO_BIN_EXE_hyper-cli"))
            .args(["--store", rs, "clone", &key, "--bootstrap", &boot_addr])
            .args(["--json", "--no-local", "--retry-for", "90"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the clone"),
    );

    // Part of the core has arrived, not all of it.
    let mut before = 0;
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(s) = status(&reader_store) {
            before = stored(&s);
            if before >= 100 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        (100..BLOCKS as u64).contains(&before),
        "not mid-clone: {before} of {BLOCKS} blocks stored"
    );
    assert!(
        clone.0.try_wait().expect("try_wait").is_none(),
        "the clone ended before the move"
    );
    let (host, store) = match mover {
        Mover::Seeder => (&seed_host, &writer_store),
        Mover::Reader => (&clone_host, &reader_store),
    };
    let from = host.ip;
    let [a, b, c, d] = from.octets();
    let (to, prefix) = if host.router.is_some() {
        (Ipv4Addr::new(a, b, c, d + 100), 24)
    } else {
        (Ipv4Addr::new(a, b, c + 1, d), 16)
    };
    if mover == Mover::Seeder {
        let named = record_ips(&clone_host, &key, &boot_addr);
        assert_eq!(
            named,
            [seed_host.public_ip.to_string()],
            "the seeder's record before the move"
        );
    }
    let moved_at = started.elapsed();
    move_address(host, from, to, prefix);
    eprintln!("{mover:?} moved {from} -> {to} at {moved_at:?}, {before} blocks stored");

    // The mover's swarm saw the change.
    let mut changes = 0;
    let seen = Instant::now();
    while seen.elapsed() < Duration::from_secs(15) {
        if let Some(s) = status(store) {
            changes = s["swarm"]["address_changes"].as_u64().unwrap_or(0);
            if changes >= 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(changes >= 1, "the {mover:?}'s swarm saw no address change");
    if mover == Mover::Seeder {
        // The connection the seeder accepted is stranded on the lost
        // address (a QUIC server cannot migrate): the seeder drops it at
        // once instead of holding it until the idle timeout (15 s).
        let mut peers = usize::MAX;
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(10) {
            if let Some(s) = status(&writer_store) {
                peers = s["peers"].as_array().map_or(usize::MAX, Vec::len);
                if peers == 0 {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            peers, 0,
            "the seeder kept a connection stranded on its old address"
        );
        // The seeder re-learned its public address before announcing
        // again: its record names the new one, not the old (behind a NAT
        // the public address stays the router's).
        let public = if seed_host.router.is_some() {
            seed_host.public_ip
        } else {
            to
        };
        let mut named = Vec::new();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(20) {
            named = record_ips(&clone_host, &key, &boot_addr);
            if named == [public.to_string()] {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(
            named,
            [public.to_string()],
            "the seeder's record after the move"
        );
    }

    let stdout = clone.0.stdout.take().expect("stdout");
    let exited = clone.0.wait().expect("wait for the clone");
    let took = started.elapsed();
    let json = std::io::read_to_string(stdout).expect("clone output");
    assert!(exited.success(), "the clone failed after the move: {json}");
    eprintln!("{mover:?} moved: {json} (clone took {took:?}, moved at {moved_at:?})");
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect("clone json");
    assert_eq!(report["blocks"], BLOCKS as u64, "{json}");
    if mover == Mover::Reader {
        // The reader dialled: its QUIC connection migrated to the new
        // address instead of being made again.
        assert_eq!(report["connections"], 1, "{json}");
    }
    let cat = ok(cli(&reader_store, &["core", "cat", &key], None));
    let expected: String = (0..BLOCKS).map(block).collect();
    assert!(
        cat == expected,
        "the clone's blocks differ from the writer's"
    );
}

#[test]
fn a_clone_finishes_when_the_readers_address_moves() {
    clone_survives_a_move(Mover::Reader, None, None);
}

#[test]
fn a_clone_finishes_when_the_readers_lan_address_moves_behind_a_cone_nat() {
    clone_survives_a_move(Mover::Reader, None, Some(Nat::Cone));
}

#[test]
fn a_clone_finishes_when_the_seeders_address_moves() {
    clone_survives_a_move(Mover::Seeder, None, None);
}

#[test]
fn a_clone_finishes_when_the_seeders_lan_address_moves_behind_a_cone_nat() {
    clone_survives_a_move(Mover::Seeder, Some(Nat::Cone), Some(Nat::Cone));
}
