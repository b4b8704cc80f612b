//! DHT records carry a peer's local addresses, so that two peers on one
//! LAN (behind one NAT) connect over it instead of hairpinning or relaying.
//! On this host's own LAN address: a record whose connect request leads
//! nowhere still gets a client to the peer, straight over the LAN.

use hyper_core::KeyPair;
use hyper_swarm::{
    Dht, Path, PeerRecord, QueryKind, Reachability, Swarm, SwarmConfig, sign_record,
    socket_address, wire_address,
};
use std::net::{IpAddr, SocketAddr};

mod common;
use common::{
    CLIENT, announced, bootstrap_node, config, lan_ipv4, localhost, next_connection, random_topic,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarms_record_names_its_lan_addresses_with_its_listening_port() {
    let Some(lan) = lan_ipv4().map(IpAddr::V4) else {
        eprintln!("skipped: this host has no LAN address");
        return;
    };
    let boot = bootstrap_node().await;
    let topic = random_topic();
    let server = Swarm::new(SwarmConfig::new(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("server");
    announced(&server, topic).await;
    let found = boot.query(QueryKind::Lookup(topic)).await.expect("lookup");
    let record = &found.records.first().expect("a record").record;
    let named: Vec<SocketAddr> = record
        .local_addresses
        .iter()
        .filter_map(socket_address)
        .collect();
    let port = server.listen_addr().expect("listen").port();
    assert!(
        named.contains(&SocketAddr::new(lan, port)),
        "{named:?} lacks {lan}:{port}"
    );
    assert!(named.iter().all(|a| !a.ip().is_loopback()), "{named:?}");

    // With local discovery off, no local address is published.
    let topic = random_topic();
    let quiet = Swarm::new(common::dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("quiet");
    announced(&quiet, topic).await;
    let found = boot.query(QueryKind::Lookup(topic)).await.expect("lookup");
    assert!(found.records[0].record.local_addresses.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_a_lan_address_is_dialled_over_the_lan() {
    let Some(lan) = lan_ipv4().map(IpAddr::V4) else {
        eprintln!("skipped: this host has no LAN address");
        return;
    };
    let boot = bootstrap_node().await;
    let topic = random_topic();
    // The peer: listens, announces nothing itself (no mDNS, no DHT topic).
    let keys = KeyPair::generate().expect("keys");
    let peer = Swarm::new(common::dht_only(keys.clone(), vec![boot.local_addr()]))
        .await
        .expect("peer");
    let port = peer.listen_addr().expect("listen").port();
    // Its record, put on the DHT by a decoy node that answers no connect
    // request: the hole-punching path leads nowhere, only the LAN address
    // works.
    let decoy = Dht::bind(
        localhost(),
        config(vec![boot.local_addr()], Reachability::Ephemeral),
    )
    .await
    .expect("decoy");
    decoy.bootstrapped().await.expect("bootstrapped");
    let record = PeerRecord {
        public_key: keys.public_key().0.to_vec(),
        addresses: Vec::new(),
        relays: Vec::new(),
        local_addresses: vec![
            // Loopback named by a record is never dialled; this one would
            // reach the peer if it were.
            wire_address(SocketAddr::from(([127, 0, 0, 1], port))),
            wire_address(SocketAddr::new(lan, port)),
        ],
        // Holders refuse timestamps far from their clock.
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let signed = sign_record(&keys, &topic, &record);
    decoy
        .query(QueryKind::Announce {
            topic,
            record: signed,
        })
        .await
        .expect("announce");

    let client = Swarm::new(SwarmConfig::new(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("client");
    let mut incoming = client.connections().expect("connections");
    client.join(topic, CLIENT);
    let connection = next_connection(&mut incoming).await;
    assert_eq!(connection.remote, keys.public_key());
    assert_eq!(connection.path, Path::Local);
    assert_eq!(connection.remote_address().ip().to_canonical(), lan);
}
