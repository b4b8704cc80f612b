//! The DHT and the swarm over real UDP sockets on loopback: 30 nodes
//! announce and look up, values round trip, and two peers that know only a
//! topic find each other, connect over QUIC and replicate a core.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::{Durability, KeyPair, Store, StoreOptions};
use hyper_swarm::{
    Config, Dht, JoinOptions, Path, PeerRecord, QueryKind, RateLimit, Reachability, Swarm,
    SwarmConfig, immutable_target, sign_mutable, sign_record,
};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions};
use tokio::time::timeout;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Every node shares 127.0.0.1, so the per-IP rate limit is raised.
fn config(bootstrap: Vec<SocketAddr>, reachability: Reachability) -> Config {
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

async fn bootstrap_node() -> Dht {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_announce_look_up_and_store_values() {
    let first = bootstrap_node().await;
    let boot = vec![first.local_addr()];
    let mut nodes = vec![first];
    for _ in 1..30 {
        let node = Dht::bind(localhost(), config(boot.clone(), Reachability::Auto))
            .await
            .expect("node");
        nodes.push(node);
    }
    for node in &nodes {
        timeout(Duration::from_secs(20), node.bootstrapped())
            .await
            .expect("bootstrapped in time")
            .expect("running");
    }
    // Auto nodes on loopback are reachable: they prove it and serve.
    timeout(Duration::from_secs(20), async {
        loop {
            let mut serving = 0;
            for node in &nodes {
                if node.status().await.expect("status").id.is_some() {
                    serving += 1;
                }
            }
            if serving == nodes.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every node proved it is reachable");

    let topic = [42u8; 32];
    let keypair = KeyPair::from_seed([1; 32]);
    let record = PeerRecord {
        public_key: keypair.public_key().0.to_vec(),
        addresses: Vec::new(),
        relays: Vec::new(),
        timestamp: 1,
    };
    let signed = sign_record(&keypair, &topic, &record);
    let announced = nodes[5]
        .query(QueryKind::Announce {
            topic,
            record: signed,
        })
        .await
        .expect("announce");
    assert!(
        announced.stored_at.len() >= 10,
        "stored on {}",
        announced.stored_at.len()
    );
    let found = nodes[20]
        .query(QueryKind::Lookup(topic))
        .await
        .expect("lookup");
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].public_key, keypair.public_key());

    let value = sign_mutable(&keypair, 1, b"pointer".to_vec());
    nodes[3]
        .query(QueryKind::MutablePut(value))
        .await
        .expect("put");
    let got = nodes[17]
        .query(QueryKind::MutableGet {
            public_key: keypair.public_key(),
            seq: 0,
        })
        .await
        .expect("get");
    assert_eq!(got.mutable.map(|m| m.value), Some(b"pointer".to_vec()));
    nodes[8]
        .query(QueryKind::ImmutablePut(b"blob".to_vec()))
        .await
        .expect("put");
    let got = nodes[25]
        .query(QueryKind::ImmutableGet(immutable_target(b"blob")))
        .await
        .expect("get");
    assert_eq!(got.immutable, Some(b"blob".to_vec()));
}

fn store() -> (tempfile::TempDir, Store) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_find_each_other_by_topic_and_replicate() {
    let boot = bootstrap_node().await;
    let (_wd, writer_store) = store();
    let core = writer_store.create_core().expect("core");
    let blocks: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().repeat(64)).collect();
    core.append_batch(&blocks).expect("append");
    let topic = core.key().discovery_key().0;

    let seeder_keys = KeyPair::generate().expect("keys");
    let seeder = Swarm::new(SwarmConfig::new(
        seeder_keys.clone(),
        vec![boot.local_addr()],
    ))
    .await
    .expect("seeder");
    let seeding = Replication::new(
        writer_store.clone(),
        seeder_keys,
        ReplicationOptions::default(),
    );
    seeding.add_core(&core);
    seeder.replicate(seeding).expect("connections");
    seeder.join(
        topic,
        JoinOptions {
            server: true,
            client: false,
        },
    );
    timeout(Duration::from_secs(20), seeder.flush())
        .await
        .expect("announced in time")
        .expect("announced");

    let (_rd, reader_store) = store();
    let reader_keys = KeyPair::generate().expect("keys");
    let reader = Swarm::new(SwarmConfig::new(
        reader_keys.clone(),
        vec![boot.local_addr()],
    ))
    .await
    .expect("reader");
    let mut connections = reader.connections().expect("connections");
    reader.join(
        topic,
        JoinOptions {
            server: false,
            client: true,
        },
    );
    let connection = timeout(Duration::from_secs(20), connections.recv())
        .await
        .expect("connected in time")
        .expect("a connection");
    assert_eq!(connection.remote, seeder.public_key());
    assert_eq!(connection.path, Path::Direct);
    assert!(connection.initiator);

    let replica = reader_store.replica(&core.key()).expect("replica");
    let replication = Replication::new(
        reader_store.clone(),
        reader_keys,
        ReplicationOptions::default(),
    );
    replication.add_core(&replica);
    let session = replication
        .add_stream(connection.stream, true)
        .await
        .expect("replication handshake");
    assert_eq!(
        session.remote_identity(),
        seeder.public_key(),
        "Noise proves the same key as QUIC"
    );
    timeout(
        Duration::from_secs(30),
        replication.download(&replica, DownloadRange::all()),
    )
    .await
    .expect("downloaded in time")
    .expect("download");
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(&replica.get(i as u64).expect("block"), block);
    }
    assert_eq!(seeder.peers(), vec![reader.public_key()]);
}
