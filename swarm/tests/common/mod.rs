//! Helpers shared by the swarm's socket tests.
#![allow(dead_code)] // each test binary uses some of them

use std::net::SocketAddr;

use hyper_core::{Durability, Store, StoreOptions};
use hyper_swarm::{Config, Dht, RateLimit, Reachability};

pub fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Every node shares 127.0.0.1, so the per-IP rate limit is raised.
pub fn config(bootstrap: Vec<SocketAddr>, reachability: Reachability) -> Config {
    Config {
        bootstrap,
        reachability,
        rate_limit: RateLimit {
            per_second: 100_000,
            burst: 100_000,
        },
        limits: hyper_swarm::Limits {
            max_per_source: 100_000,
            ..hyper_swarm::Limits::default()
        },
        ..Config::default()
    }
}

pub async fn bootstrap_node() -> Dht {
    let socket = std::net::UdpSocket::bind(localhost()).expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    Dht::bind(
        addr,
        Config {
            public_address: Some(addr),
            relay: true,
            ..config(Vec::new(), Reachability::Public)
        },
    )
    .await
    .expect("bootstrap node")
}

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
        },
    )
    .expect("store");
    (dir, store)
}

/// A swarm config that finds peers through the DHT only (tests of the DHT
/// path run in parallel on one host, where local discovery would find the
/// other tests' peers of the same topic).
pub fn dht_only(
    keypair: hyper_core::KeyPair,
    bootstrap: Vec<SocketAddr>,
) -> hyper_swarm::SwarmConfig {
    hyper_swarm::SwarmConfig {
        local: false,
        ..hyper_swarm::SwarmConfig::new(keypair, bootstrap)
    }
}
