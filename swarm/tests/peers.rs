//! Connect by key: a swarm listens on its own identity; another keeps a
//! connection to it by key alone (no topic), through the DHT or on the
//! local link, reconnects when the connection is lost, ignores impostors
//! announcing under the key's topic, and stops after `leave_peer`.

use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Path, Swarm, SwarmConfig, peer_topic};
use tokio::time::timeout;

mod common;
use common::{SERVER, bootstrap_node, connected, dht_only, disconnected, flushed, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_peer_finds_a_listener_by_key_reconnects_and_ignores_impostors() {
    let boot = bootstrap_node().await;
    let listener = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("listener");
    let listener_key = listener.public_key();
    let mut accepted = listener.connections().expect("connections");
    listener.listen();
    flushed(&listener).await;
    // An impostor announces itself under the listener's topic.
    let impostor = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("impostor");
    impostor.join(peer_topic(&listener_key), SERVER);
    flushed(&impostor).await;

    let dialler = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("dialler");
    let mut events = dialler.events();
    dialler.join_peer(listener_key);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20), connected).await,
        Some((listener_key, Path::Direct))
    );

    // The listener drops the connection: the dialler makes it again.
    let first = timeout(Duration::from_secs(5), accepted.recv())
        .await
        .expect("accepted in time")
        .expect("a connection");
    assert_eq!(first.remote, dialler.public_key());
    first.close();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10), disconnected).await,
        Some(listener_key)
    );
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20), connected).await,
        Some((listener_key, Path::Direct)),
        "the lost connection was not made again"
    );
    assert!(
        impostor.peers().is_empty(),
        "the impostor under the key's topic was dialled"
    );

    // After leave_peer, a lost connection stays lost.
    dialler.leave_peer(&listener_key);
    let second = timeout(Duration::from_secs(5), accepted.recv())
        .await
        .expect("accepted in time")
        .expect("a connection");
    second.close();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10), disconnected).await,
        Some(listener_key)
    );
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5), connected).await,
        None,
        "reconnected after leave_peer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_peer_works_on_the_local_link_with_no_dht() {
    let local = |keys: KeyPair| SwarmConfig {
        dht: false,
        ..SwarmConfig::new(keys, Vec::new())
    };
    let listener = Swarm::new(local(KeyPair::generate().expect("keys")))
        .await
        .expect("listener");
    listener.listen();
    let dialler = Swarm::new(local(KeyPair::generate().expect("keys")))
        .await
        .expect("dialler");
    let mut events = dialler.events();
    dialler.join_peer(listener.public_key());
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20), connected).await,
        Some((listener.public_key(), Path::Local))
    );
}
