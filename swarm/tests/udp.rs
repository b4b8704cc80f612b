//! The DHT and the swarm over real UDP sockets on loopback: 30 nodes
//! announce and look up, values round trip, and two peers that know only a
//! topic find each other, connect over QUIC and replicate a core.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Dht, Path, PeerRecord, QueryKind, Reachability, Swarm, sign_record};
use hyper_wire::{Replication, ReplicationOptions};
use tokio::time::timeout;

mod common;
use common::{announced, bootstrap_node, config, localhost, store};

/// A client swarm as `keys` that looks `topic` up; its first connection.
async fn first_connection(
    keys: KeyPair,
    bootstrap: SocketAddr,
    topic: [u8; 32],
) -> (Swarm, hyper_swarm::PeerConnection) {
    let client = Swarm::new(common::dht_only(keys, vec![bootstrap]))
        .await
        .expect("client");
    let mut connections = client.connections().expect("connections");
    client.join(topic, common::CLIENT);
    let connection = common::next_connection(&mut connections).await;
    (client, connection)
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
    // Auto nodes on loopback are reachable: they prove it and serve. A
    // proof is a ping from a node the prover never wrote to; in a network
    // this small a node has written to almost everyone, so a few may take
    // longer than the test waits.
    timeout(Duration::from_secs(20), async {
        loop {
            let mut serving = 0;
            for node in &nodes {
                if node.status().await.expect("status").id.is_some() {
                    serving += 1;
                }
            }
            if serving >= nodes.len() * 2 / 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("most nodes proved they are reachable");

    let topic = [42u8; 32];
    let keypair = KeyPair::from_seed([1; 32]);
    let record = PeerRecord {
        public_key: keypair.public_key().0.to_vec(),
        addresses: Vec::new(),
        relays: Vec::new(),
        local_addresses: Vec::new(),
        // Holders refuse timestamps far from their clock.
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
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

    let stored = nodes[3]
        .mutable_put(&keypair, 1, b"pointer".to_vec())
        .await
        .expect("put");
    assert!(stored.len() >= 10);
    let got = nodes[17]
        .mutable_get(keypair.public_key(), 0)
        .await
        .expect("get");
    assert_eq!(
        got.map(|m| (m.seq, m.value)),
        Some((1, b"pointer".to_vec()))
    );
    let hash = nodes[8].immutable_put(b"blob".to_vec()).await.expect("put");
    let got = nodes[25].immutable_get(hash).await.expect("get");
    assert_eq!(got, Some(b"blob".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_find_each_other_by_topic_and_replicate() {
    let boot = bootstrap_node().await;
    let (_wd, writer_store, core, blocks) = common::writer_core(500);
    let topic = core.key().discovery_key().0;

    let seeder_keys = KeyPair::generate().expect("keys");
    let seeder = Swarm::new(common::dht_only(
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
    announced(&seeder, topic).await;

    let (_rd, reader_store) = store();
    let reader_keys = KeyPair::generate().expect("keys");
    let (reader, connection) =
        first_connection(reader_keys.clone(), boot.local_addr(), topic).await;
    assert_eq!(connection.remote, seeder.public_key());
    assert_eq!(connection.path, Path::Direct);
    assert!(connection.initiator);

    let replicating =
        common::download_checked(connection, &reader_store, reader_keys, &core.key(), &blocks)
            .await;
    assert_eq!(seeder.peers(), vec![reader.public_key()]);
    assert!(!replicating.is_finished(), "the connection stays up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_and_reach_each_other_over_ipv6() {
    let socket = std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    let boot = Dht::bind(
        addr,
        hyper_swarm::Config {
            public_address: Some(addr),
            ..config(Vec::new(), Reachability::Public)
        },
    )
    .await
    .expect("bootstrap node");
    let topic = [9u8; 32];
    let server = Swarm::new(common::dht_only(
        KeyPair::generate().expect("keys"),
        vec![addr],
    ))
    .await
    .expect("server");
    announced(&server, topic).await;
    let (_client, connection) =
        first_connection(KeyPair::generate().expect("keys"), addr, topic).await;
    assert_eq!(connection.remote, server.public_key());
    assert!(connection.remote_address().is_ipv6());
    drop(boot);
}
