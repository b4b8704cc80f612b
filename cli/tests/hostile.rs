//! Hostile peers against a real `hyper-cli seed` process (the library-level
//! cases are in wire/tests and swarm/tests): a flood of idle connections
//! from one address, and a peer speaking the protocol that asks for
//! thousands of cores the seeder does not have. The seeder stays up, holds
//! bounded resources, and serves an honest clone from another address
//! meanwhile.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{Replication, ReplicationOptions, connect_tcp};

mod common;

use common::{cli, ok};

/// The attacker's source address: one address of the loopback network
/// that is not the honest peers' 127.0.0.1.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// Open file descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn alive(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}

/// A seeder of a 200-line core on every address of a free port: the
/// seeder, the core's key and the port.
fn seeder(dir: &Path) -> (common::Seeder, String, u16) {
    let key = common::writer_of(dir, 200);
    let seeder = common::seed(dir, &["--listen", "0.0.0.0:0"]);
    let port = seeder
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    (seeder, key, port)
}

/// An honest clone of `key` from 127.0.0.1 (another address than the
/// attacker's) succeeds with every block.
fn honest_clone(key: &str, port: u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{port}");
    let out = cli(
        dir.path(),
        &["clone", key, "--connect", &addr, "--json"],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&ok(out)).expect("json");
    assert_eq!(json["blocks"], 200, "{json}");
}

#[test]
fn a_flood_of_idle_connections_neither_kills_a_seeder_nor_locks_out_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut seeder, key, port) = seeder(dir.path());
    let pid = seeder.child.id();
    let before = fds(pid);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // 1,100 connections from one address that never send a byte: more than
    // the 1,024 descriptors a process gets by default.
    let flood = runtime.block_on(async {
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        for _ in 0..1100 {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(SocketAddr::from((ATTACKER, 0)))
                .expect("bind the attacker's address");
            if let Ok(stream) = socket.connect(target).await {
                held.push(stream);
            }
        }
        held
    });
    assert!(flood.len() > 1000, "{} connections made", flood.len());
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(&mut seeder.child), "the flood killed the seeder");
    let during = fds(pid);
    assert!(
        during <= before + 16 + 8,
        "the seeder holds {during} descriptors ({before} before): more than the 16 one address may open"
    );
    // Honest peers elsewhere are still served while the flood is held.
    honest_clone(&key, port);
    // The idle connections it admitted end at the handshake deadline
    // (10 s), even while the attacker keeps them open.
    let started = Instant::now();
    while fds(pid) > before + 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "idle connections still held: {} descriptors, {before} before",
            fds(pid)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(alive(&mut seeder.child));
    drop(flood);
    honest_clone(&key, port);
}

#[tokio::test]
async fn thousands_of_unknown_cores_cost_a_seeder_little_and_stop_no_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut seeder, key, port) = seeder(dir.path());
    let pid = seeder.child.id();
    let rss_before = rss_kib(pid);
    let seeder_addr = SocketAddr::from(([127, 0, 0, 1], port));
    // The hostile peer speaks the protocol (Noise, then the wire's
    // messages) and opens 3,000 cores nobody has, from its own address.
    let attacker_dir = tempfile::tempdir().expect("tempdir");
    let attacker = Store::open_with(
        attacker_dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
    .expect("store");
    let replication = Replication::new(
        attacker.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    );
    for i in 0..3000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_le_bytes());
        key[4] = 0xa5;
        let core = attacker.replica(&CoreKey(key)).expect("replica");
        replication.add_core(&core);
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((ATTACKER, 0)))
        .expect("bind the attacker's address");
    let stream = socket.connect(seeder_addr).await.expect("connect");
    let _connection = replication
        .add_stream(stream, true)
        .await
        .expect("the handshake");
    // Let every Open reach the seeder.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(alive(&mut seeder.child));
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        grown < 32 * 1024,
        "the seeder grew {grown} KiB for 3,000 unknown cores"
    );
    // While the hostile peer stays: an honest clone process, and a peer
    // that names the real core, are served.
    let clone_key = key.clone();
    tokio::task::spawn_blocking(move || honest_clone(&clone_key, port))
        .await
        .expect("the clone");
    let reader_dir = tempfile::tempdir().expect("tempdir");
    let reader = Store::open(reader_dir.path()).expect("store");
    let core = reader.replica(&key.parse().expect("key")).expect("replica");
    let honest = Replication::new(
        reader.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    );
    honest.add_core(&core);
    let _c = connect_tcp(&honest, seeder_addr).await.expect("connect");
    let block = honest
        .get(&core, 199, Duration::from_secs(10))
        .await
        .expect("a block");
    assert_eq!(block, b"line 199\n");
    assert!(alive(&mut seeder.child));
}
