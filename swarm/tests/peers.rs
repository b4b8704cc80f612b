//! Connect by key: a swarm listens on its own identity; another keeps a
//! connection to it by key alone (no topic), through the DHT or on the
//! local link, reconnects when the connection is lost, ignores impostors
//! announcing under the key's topic, and stops after `leave_peer`.

use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::{JoinOptions, Path, Swarm, SwarmConfig, SwarmEvent, peer_topic};
use tokio::sync::broadcast;
use tokio::time::timeout;

mod common;
use common::{bootstrap_node, dht_only};

/// The next event matching `pick`, within `wait`.
async fn next<T>(
    events: &mut broadcast::Receiver<SwarmEvent>,
    wait: Duration,
    pick: impl Fn(SwarmEvent) -> Option<T>,
) -> Option<T> {
    timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await
    .ok()
}

fn connected(event: SwarmEvent) -> Option<(PublicKey, Path)> {
    match event {
        SwarmEvent::Connected { remote, path, .. } => Some((remote, path)),
        SwarmEvent::Disconnected { .. } => None,
    }
}

fn disconnected(event: SwarmEvent) -> Option<PublicKey> {
    match event {
        SwarmEvent::Disconnected { remote } => Some(remote),
        SwarmEvent::Connected { .. } => None,
    }
}

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
    timeout(Duration::from_secs(20), listener.flush())
        .await
        .expect("announced in time")
        .expect("announced");
    // An impostor announces itself under the listener's topic.
    let impostor = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("impostor");
    impostor.join(
        peer_topic(&listener_key),
        JoinOptions {
            server: true,
            client: false,
        },
    );
    timeout(Duration::from_secs(20), impostor.flush())
        .await
        .expect("announced in time")
        .expect("announced");

    let dialler = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("dialler");
    let mut events = dialler.events();
    dialler.join_peer(listener_key);
    assert_eq!(
        next(&mut events, Duration::from_secs(20), connected).await,
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
        next(&mut events, Duration::from_secs(10), disconnected).await,
        Some(listener_key)
    );
    assert_eq!(
        next(&mut events, Duration::from_secs(20), connected).await,
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
        next(&mut events, Duration::from_secs(10), disconnected).await,
        Some(listener_key)
    );
    assert_eq!(
        next(&mut events, Duration::from_secs(5), connected).await,
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
        next(&mut events, Duration::from_secs(20), connected).await,
        Some((listener.public_key(), Path::Local))
    );
}
