//! Shared by the hostile-peer tests of hyper-cli (`hostile_reader.rs`,
//! `hostile_seeder.rs`, which include this file by `#[path]` next to the
//! wire's test helpers and hostile peer, `wire/tests/common/`): real `hyper-cli`
//! processes as the victims, run under a deadline, and honest peers that
//! check the victim still serves or was not damaged.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hyper_core::{Durability, Store, StoreOptions};

/// The attacker's source address: one address of the loopback network
/// that is not the honest peers' 127.0.0.1.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// `hyper-cli --store STORE ARGS...` (stdin closed), which must end within
/// `limit` (it is killed, and the test fails, if it does not); its output
/// and how long it ran.
pub fn cli_within(store: &Path, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hyper-cli");
    while matches!(child.try_wait(), Ok(None)) {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "hyper-cli {args:?} did not end within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait");
    (out, started.elapsed())
}

/// The stderr of a command that must have failed.
pub fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "succeeded against a liar: {}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The store at `dir`, opened by the test process (committing without an
/// fsync per batch); close it before a `hyper-cli` process opens it.
pub fn store_at(dir: &Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("opening the store at {}: {e}", dir.display()))
}

/// The seeder's port from the address `seed` printed.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// `clone KEY --connect ADDR --json` into `store` (within 60 s), which
/// must succeed: its JSON line.
pub fn clone_json(store: &Path, key: &str, addr: &str) -> serde_json::Value {
    let (out, _) = cli_within(
        store,
        &["clone", key, "--connect", addr, "--json"],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "the clone from {addr} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// A TCP connection from the attacker's address to `addr`.
pub async fn dial_as_attacker(addr: SocketAddr) -> tokio::net::TcpStream {
    dial_from(ATTACKER, addr).await
}

/// A TCP connection from the loopback address `from` to `addr`.
pub async fn dial_from(from: Ipv4Addr, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("binding {from}: {e}"));
    socket
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting {from} to {addr}: {e}"))
}
