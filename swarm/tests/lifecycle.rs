//! Lifecycle and status: `flush` waits for the dials it started; `status`,
//! `peer_status` and `stats` report topics, peers, paths and counters;
//! `destroy` and dropping the swarm unannounce (the holder no longer has
//! the record), close every connection and stop every task (the sockets
//! are freed); `suspend` closes and refuses, `resume` connects again.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Dht, Family, Path, QueryKind, Swarm, SwarmConfig};
use tokio::time::timeout;

mod common;
use common::{
    CLIENT, SERVER, bootstrap_node, dht_only, disconnected, eventually, flushed, next_event,
    random_topic,
};

/// A Connected event's peer.
fn connected(event: hyper_swarm::SwarmEvent) -> Option<hyper_core::PublicKey> {
    common::connected(event).map(|(key, _)| key)
}

async fn dht_swarm(boot: &Dht) -> Swarm {
    Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("swarm")
}

/// `server` announces `topic`; a DHT-only client looks it up and connects;
/// the client and its events.
async fn connected_client(
    boot: &Dht,
    server: &Swarm,
    topic: [u8; 32],
) -> (
    Swarm,
    tokio::sync::broadcast::Receiver<hyper_swarm::SwarmEvent>,
) {
    server.join(topic, SERVER);
    flushed(server).await;
    let client = dht_swarm(boot).await;
    let mut events = client.events();
    client.join(topic, CLIENT);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20), connected).await,
        Some(server.public_key())
    );
    (client, events)
}

/// Whether `boot` (the only DHT node, so the holder) has a record for
/// `topic`.
async fn holder_has_record(boot: &Dht, topic: [u8; 32]) -> bool {
    !boot
        .query(QueryKind::Lookup(topic))
        .await
        .expect("lookup")
        .records
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_dials_and_destroy_unannounces_and_closes() {
    let boot = bootstrap_node().await;
    let topic = random_topic();
    let server = dht_swarm(&boot).await;
    let mut accepted = server.connections().expect("connections");
    server.join(topic, SERVER);
    flushed(&server).await;
    assert!(holder_has_record(&boot, topic).await);

    let client = dht_swarm(&boot).await;
    let mut events = client.events();
    client.join(topic, CLIENT);
    flushed(&client).await;
    // flush returned only after the dial it started ended: connected now.
    assert_eq!(client.peers(), vec![server.public_key()]);

    let status = client.status(&topic).expect("joined");
    assert!(status.client && !status.server && status.flushed);
    assert_eq!(status.peers, vec![server.public_key()]);
    assert_eq!(client.topics(), vec![topic]);
    let peers = client.peer_status();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].public_key, server.public_key());
    assert_eq!(peers[0].path, Path::Direct);
    assert!(peers[0].initiator);
    assert_eq!(peers[0].topics, vec![topic]);
    assert!(peers[0].bytes_sent > 0 && peers[0].bytes_received > 0);
    let stats = client.stats();
    assert_eq!(stats.made.direct, 1);
    assert!(stats.tried.direct >= 1);
    assert!(stats.punches >= 1);
    assert!(
        eventually(Duration::from_secs(5), async || {
            server.stats().accepted == 1
                && server
                    .status(&topic)
                    .is_some_and(|s| s.peers == vec![client.public_key()])
        })
        .await,
        "the server did not report the client"
    );

    server.destroy().await;
    // The unannounce reached the holder at once.
    assert!(!holder_has_record(&boot, topic).await);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10), disconnected).await,
        Some(server.public_key())
    );
    assert!(server.topics().is_empty());
    assert!(server.peers().is_empty());
    // The connection stream ends (after the one connection it carried).
    let rest = timeout(Duration::from_secs(5), async {
        let mut n = 0;
        while accepted.recv().await.is_some() {
            n += 1;
        }
        n
    })
    .await
    .expect("the connection stream ended");
    assert_eq!(rest, 1);
    // A destroyed swarm joins nothing.
    server.join(topic, SERVER);
    assert!(server.topics().is_empty());
}

/// Whether a UDP socket can be bound at `addr` now.
fn free(addr: SocketAddr) -> bool {
    UdpSocket::bind(addr).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_swarm_unannounces_and_stops_its_tasks() {
    let boot = bootstrap_node().await;
    let topic = random_topic();
    let server = Swarm::new(SwarmConfig::new(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("server");
    let (_client, mut events) = connected_client(&boot, &server, topic).await;
    let server_key = server.public_key();
    let dht_port = SocketAddr::from((
        [0, 0, 0, 0],
        server
            .dht(Family::V4)
            .expect("IPv4 DHT")
            .local_addr()
            .port(),
    ));
    let listen = server.listen_addr().expect("listen");
    assert!(
        !free(dht_port) && !free(listen),
        "the swarm's sockets are bound"
    );

    drop(server);
    assert!(
        eventually(Duration::from_secs(10), async || !holder_has_record(
            &boot, topic
        )
        .await)
        .await,
        "the record outlived the swarm"
    );
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10), disconnected).await,
        Some(server_key)
    );
    // Every task holding the sockets ended: both ports can be bound again.
    assert!(
        eventually(Duration::from_secs(10), async || free(dht_port)
            && free(listen))
        .await,
        "a task of the dropped swarm still holds its sockets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_closes_and_refuses_and_resume_connects_again() {
    let boot = bootstrap_node().await;
    let topic = random_topic();
    let server = dht_swarm(&boot).await;
    let (_client, mut events) = connected_client(&boot, &server, topic).await;

    server.suspend();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10), disconnected).await,
        Some(server.public_key())
    );
    // The client keeps trying (the record is still on the DHT); the
    // suspended server refuses.
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5), connected).await,
        None,
        "a suspended swarm accepted a connection"
    );
    assert!(server.peers().is_empty());
    assert_eq!(server.topics(), vec![topic]);

    server.resume();
    flushed(&server).await;
    assert_eq!(
        next_event(&mut events, Duration::from_secs(60), connected).await,
        Some(server.public_key()),
        "no connection after resume"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_connections_are_reported_as_local() {
    let local = |keys: KeyPair| SwarmConfig {
        dht: false,
        ..SwarmConfig::new(keys, Vec::new())
    };
    let topic = random_topic();
    let server = Swarm::new(local(KeyPair::generate().expect("keys")))
        .await
        .expect("server");
    server.join(topic, SERVER);
    let client = Swarm::new(local(KeyPair::generate().expect("keys")))
        .await
        .expect("client");
    let mut events = client.events();
    client.join(topic, CLIENT);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20), connected).await,
        Some(server.public_key())
    );
    let status = server.status(&topic).expect("joined");
    assert!(status.server && status.local_announced);
    let heard = client.status(&topic).expect("joined");
    assert!(heard.local_heard >= 1);
    let peers = client.peer_status();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].path, Path::Local);
    assert_eq!(peers[0].topics, vec![topic]);
    let stats = client.stats();
    assert_eq!(stats.made.local, 1);
    assert!(stats.tried.local >= 1);
    assert_eq!(stats.punches, 0);
    // The server registers its side once the stream header arrives.
    assert!(
        eventually(Duration::from_secs(5), async || {
            let served = server.stats();
            (served.accepted, served.made.local) == (1, 1)
        })
        .await,
        "{:?}",
        server.stats()
    );
    // Suspended, the announcement is withdrawn; resumed, it is back.
    server.suspend();
    assert!(!server.status(&topic).expect("joined").local_announced);
    server.resume();
    assert!(server.status(&topic).expect("joined").local_announced);
}
