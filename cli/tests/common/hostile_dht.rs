//! What the hostile DHT tests (`hostile_dht.rs`, `hostile_dht_nodes.rs`)
//! share: starting `hyper-cli` processes off the runtime, a seeded core,
//! and a client-only library node to ask what a process stores.

use std::net::SocketAddr;
use std::process::Command;

use hyper_core::CoreKey;
use hyper_swarm::{Config, Dht, Reachability};
use tokio::task::spawn_blocking;

use crate::common::{self, Running, writer_of};

/// A `hyper-cli` command with `$HYPER_BOOTSTRAP` cleared.
pub fn hyper(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command.args(args).env_remove("HYPER_BOOTSTRAP");
    command
}

/// Starts `command` off the runtime and waits for a stdout line starting
/// with `ready`; the process and the rest of that line.
pub async fn start(command: Command, ready: &'static str) -> (Running, String) {
    spawn_blocking(move || common::start_until(command, ready))
        .await
        .expect("start thread")
}

/// The first node of a network: a `dht node` process listening on
/// loopback (`--relay` if `relay`); the process and its address.
pub async fn dht_node(relay: bool) -> (Running, SocketAddr) {
    let mut args = vec!["dht", "node", "--listen", "127.0.0.1:0"];
    if relay {
        args.push("--relay");
    }
    let (node, rest) = start(hyper(&args), "dht node listening on ").await;
    let addr = rest
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("the node's address");
    (node, addr)
}

/// A store in `dir` holding a core of 200 lines; the store and its key.
pub async fn writer(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let store = dir.join("w");
    let at = store.clone();
    let key = spawn_blocking(move || writer_of(&at, 200))
        .await
        .expect("writer thread");
    (store, key)
}

/// The DHT topic a core is announced under.
pub fn topic_of(key: &str) -> [u8; 32] {
    key.parse::<CoreKey>()
        .expect("a core key")
        .discovery_key()
        .0
}

/// `hyper-cli --store STORE seed KEY --no-local --bootstrap NODES`,
/// waiting until it announced.
pub async fn seeder(store: &std::path::Path, key: &str, nodes: &str) -> Running {
    let command = hyper(&[
        "--store",
        store.to_str().expect("path"),
        "seed",
        key,
        "--no-local",
        "--bootstrap",
        nodes,
    ]);
    start(command, "announced").await.0
}

/// A client-only library node on `ip` that joined through `node`.
pub async fn client_on(ip: [u8; 4], node: SocketAddr) -> Dht {
    let config = Config {
        bootstrap: vec![node],
        reachability: Reachability::Ephemeral,
        ..Config::default()
    };
    let dht = Dht::bind(SocketAddr::from((ip, 0)), config)
        .await
        .expect("client");
    dht.bootstrapped().await.expect("bootstrapped");
    dht
}
