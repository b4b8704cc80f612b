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
    public_node(|_| {}).await
}

/// A public relaying node on 127.0.0.1 with the test [`config`], then
/// `tweak`ed.
pub async fn public_node(tweak: impl FnOnce(&mut Config)) -> Dht {
    public_node_at(localhost(), tweak).await
}

/// A public relaying node on `::1` (an IPv6-only socket) with the test
/// [`config`], bootstrapped from `bootstrap` (none: the first node).
pub async fn public_node_v6(bootstrap: Vec<SocketAddr>) -> Dht {
    public_node_at(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)), |c| {
        c.bootstrap = bootstrap;
    })
    .await
}

/// A public relaying node at `at` (port 0: a free one) with the test
/// [`config`], then `tweak`ed.
pub async fn public_node_at(at: SocketAddr, tweak: impl FnOnce(&mut Config)) -> Dht {
    let socket = std::net::UdpSocket::bind(at).expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    let mut config = Config {
        public_address: Some(addr),
        relay: true,
        ..config(Vec::new(), Reachability::Public)
    };
    tweak(&mut config);
    Dht::bind(addr, config).await.expect("bootstrap node")
}

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
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

/// Announce under a topic (and accept).
pub const SERVER: hyper_swarm::JoinOptions = hyper_swarm::JoinOptions {
    server: true,
    client: false,
};
/// Look a topic up and dial.
pub const CLIENT: hyper_swarm::JoinOptions = hyper_swarm::JoinOptions {
    server: false,
    client: true,
};

/// A fresh random topic (tests on one host must not meet each other's).
pub fn random_topic() -> [u8; 32] {
    hyper_core::KeyPair::generate()
        .expect("keys")
        .public_key()
        .0
}

/// Waits for `swarm.flush()`, failing the test after 30 s.
pub async fn flushed(swarm: &hyper_swarm::Swarm) {
    tokio::time::timeout(std::time::Duration::from_secs(30), swarm.flush())
        .await
        .expect("flushed in time")
        .expect("flushed");
}

/// Joins `topic` as a server and waits until it is announced.
pub async fn announced(swarm: &hyper_swarm::Swarm, topic: [u8; 32]) {
    swarm.join(topic, SERVER);
    flushed(swarm).await;
}

/// The next connection out of `connections` within 20 s.
pub async fn next_connection(
    connections: &mut tokio::sync::mpsc::UnboundedReceiver<hyper_swarm::PeerConnection>,
) -> hyper_swarm::PeerConnection {
    tokio::time::timeout(std::time::Duration::from_secs(20), connections.recv())
        .await
        .expect("connected in time")
        .expect("a connection")
}

/// The next event `pick` maps to something, within `wait`.
pub async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<hyper_swarm::SwarmEvent>,
    wait: std::time::Duration,
    pick: impl Fn(hyper_swarm::SwarmEvent) -> Option<T>,
) -> Option<T> {
    use tokio::sync::broadcast::error::RecvError;
    tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await
    .ok()
}

/// A Connected event's peer and path.
pub fn connected(
    event: hyper_swarm::SwarmEvent,
) -> Option<(hyper_core::PublicKey, hyper_swarm::Path)> {
    match event {
        hyper_swarm::SwarmEvent::Connected { remote, path, .. } => Some((remote, path)),
        hyper_swarm::SwarmEvent::Disconnected { .. } => None,
    }
}

/// A Disconnected event's peer.
pub fn disconnected(event: hyper_swarm::SwarmEvent) -> Option<hyper_core::PublicKey> {
    match event {
        hyper_swarm::SwarmEvent::Disconnected { remote } => Some(remote),
        hyper_swarm::SwarmEvent::Connected { .. } => None,
    }
}

/// Waits up to `wait` for `condition`, checking every 100 ms.
pub async fn eventually(
    wait: std::time::Duration,
    mut condition: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// This host's first IPv4 address that is not loopback, if it has one.
pub fn lan_ipv4() -> Option<std::net::Ipv4Addr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) if !v4.ip.is_loopback() => Some(v4.ip),
            _ => None,
        })
}

/// Replicates `core_key` over `connection` into `store` as `keys`, waits
/// (30 s at most) until every one of `blocks` is there and checks them;
/// the task still running the connection.
pub async fn download_checked(
    connection: hyper_swarm::PeerConnection,
    store: &Store,
    keys: hyper_core::KeyPair,
    core_key: &hyper_core::CoreKey,
    blocks: &[Vec<u8>],
) -> tokio::task::JoinHandle<hyper_swarm::Result<()>> {
    use hyper_wire::{DownloadRange, Replication, ReplicationOptions};
    let replica = store.replica(core_key).expect("replica");
    let replication = Replication::new(store.clone(), keys, ReplicationOptions::default());
    replication.add_core(&replica);
    let replicating = {
        let replication = replication.clone();
        tokio::spawn(async move { connection.replicate(&replication).await })
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        replication.download(&replica, DownloadRange::all()),
    )
    .await
    .expect("downloaded in time")
    .expect("download");
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(&replica.get(i as u64).expect("block"), block);
    }
    replicating
}

/// A writer store holding one core of `n` blocks of 256 bytes; the store's
/// directory, the store, the core and its blocks.
pub fn writer_core(n: u32) -> (tempfile::TempDir, Store, hyper_core::Core, Vec<Vec<u8>>) {
    let (dir, store) = store();
    let core = store.create_core().expect("core");
    let blocks: Vec<Vec<u8>> = (0..n).map(|i| i.to_le_bytes().repeat(64)).collect();
    core.append_batch(&blocks).expect("append");
    (dir, store, core, blocks)
}

/// This host's first global or unique-local IPv6 address, if it has one.
pub fn lan_ipv6() -> Option<std::net::Ipv6Addr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find_map(|i| match i.addr {
            if_addrs::IfAddr::V6(v6) if !v6.ip.is_loopback() && !v6.ip.is_unicast_link_local() => {
                Some(v6.ip)
            }
            _ => None,
        })
}

/// The keys of the records `swarm`'s DHT node of `family` finds under
/// `topic`.
pub async fn found_keys(
    swarm: &hyper_swarm::Swarm,
    family: hyper_swarm::Family,
    topic: [u8; 32],
) -> std::collections::HashSet<hyper_core::PublicKey> {
    let dht = swarm.dht(family).expect("a DHT node of the family");
    let (mut found, done) = dht.lookup(topic).expect("lookup");
    let mut keys = std::collections::HashSet::new();
    while let Some(record) = found.recv().await {
        keys.insert(record.public_key);
    }
    let _ = done.await;
    keys
}
