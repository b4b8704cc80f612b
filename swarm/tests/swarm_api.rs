//! The Swarm API over loopback: the firewall refuses a peer by key, max
//! peers refuses the extra one, two peers dialling each other at once keep
//! one connection, a lost connection is made again, and leaving removes the
//! announcement.

use std::sync::Arc;
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::{Dht, JoinOptions, QueryKind, Swarm, SwarmConfig, SwarmEvent};
use tokio::sync::broadcast;
use tokio::time::timeout;

mod common;
use common::bootstrap_node;

const TOPIC: [u8; 32] = [7; 32];
const SERVER: JoinOptions = JoinOptions {
    server: true,
    client: false,
};
const CLIENT: JoinOptions = JoinOptions {
    server: false,
    client: true,
};
const BOTH: JoinOptions = JoinOptions {
    server: true,
    client: true,
};

async fn swarm(boot: &Dht, tweak: impl FnOnce(&mut SwarmConfig)) -> Swarm {
    let mut config = common::dht_only(KeyPair::generate().expect("keys"), vec![boot.local_addr()]);
    tweak(&mut config);
    Swarm::new(config).await.expect("swarm")
}

/// The next Connected event's peer, within `wait`.
async fn connected(
    events: &mut broadcast::Receiver<SwarmEvent>,
    wait: Duration,
) -> Option<PublicKey> {
    timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(SwarmEvent::Connected { remote, .. }) => return remote,
                Ok(SwarmEvent::Disconnected { .. })
                | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await
    .ok()
}

async fn announced(server: &Swarm) {
    server.join(TOPIC, SERVER);
    timeout(Duration::from_secs(20), server.flush())
        .await
        .expect("announced in time")
        .expect("announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firewall_refuses_a_peer_by_key() {
    let boot = bootstrap_node().await;
    let banned = KeyPair::generate().expect("keys");
    let banned_key = banned.public_key();
    let server = swarm(&boot, |c| {
        c.firewall = Some(Arc::new(move |key: &PublicKey, _addr| *key == banned_key));
    })
    .await;
    let mut server_events = server.events();
    announced(&server).await;

    let refused = swarm(&boot, |c| c.keypair = banned).await;
    let mut refused_events = refused.events();
    refused.join(TOPIC, CLIENT);
    assert_eq!(
        connected(&mut refused_events, Duration::from_secs(4)).await,
        None,
        "the banned key got in"
    );

    let welcome = swarm(&boot, |_| {}).await;
    welcome.join(TOPIC, CLIENT);
    assert_eq!(
        connected(&mut server_events, Duration::from_secs(20)).await,
        Some(welcome.public_key())
    );
    assert_eq!(server.peers(), vec![welcome.public_key()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_peers_refuses_the_extra_peer() {
    let boot = bootstrap_node().await;
    let server = swarm(&boot, |c| c.max_peers = 1).await;
    let mut events = server.events();
    announced(&server).await;
    let first = swarm(&boot, |_| {}).await;
    first.join(TOPIC, CLIENT);
    assert_eq!(
        connected(&mut events, Duration::from_secs(20)).await,
        Some(first.public_key())
    );
    let second = swarm(&boot, |_| {}).await;
    let mut second_events = second.events();
    second.join(TOPIC, CLIENT);
    assert_eq!(
        connected(&mut second_events, Duration::from_secs(4)).await,
        None
    );
    assert_eq!(server.peers(), vec![first.public_key()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_dialling_each_other_at_once_keep_one_connection() {
    let boot = bootstrap_node().await;
    let a = swarm(&boot, |_| {}).await;
    let b = swarm(&boot, |_| {}).await;
    let mut a_connections = a.connections().expect("connections");
    let mut b_connections = b.connections().expect("connections");
    a.join(TOPIC, BOTH);
    b.join(TOPIC, BOTH);
    // Collect every connection each side is handed for a while.
    let collect = |mut rx: tokio::sync::mpsc::UnboundedReceiver<hyper_swarm::PeerConnection>| async move {
        let mut all = Vec::new();
        let _ = timeout(Duration::from_secs(8), async {
            while let Some(c) = rx.recv().await {
                all.push(c);
            }
        })
        .await;
        all
    };
    let (a_all, b_all) = tokio::join!(
        collect(a_connections_take(&mut a_connections)),
        collect(a_connections_take(&mut b_connections))
    );
    assert!(
        !a_all.is_empty() && !b_all.is_empty(),
        "both sides connected"
    );
    let a_open: Vec<_> = a_all.iter().filter(|c| !c.is_closed()).collect();
    let b_open: Vec<_> = b_all.iter().filter(|c| !c.is_closed()).collect();
    assert_eq!(
        a_open.len(),
        1,
        "one live connection at a ({} made)",
        a_all.len()
    );
    assert_eq!(
        b_open.len(),
        1,
        "one live connection at b ({} made)",
        b_all.len()
    );
    assert_eq!(
        a_open[0].initiator, !b_open[0].initiator,
        "the same connection on both sides"
    );
    assert_eq!(a.peers(), vec![b.public_key()]);
    assert_eq!(b.peers(), vec![a.public_key()]);
}

fn a_connections_take(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<hyper_swarm::PeerConnection>,
) -> tokio::sync::mpsc::UnboundedReceiver<hyper_swarm::PeerConnection> {
    let (tx, out) = tokio::sync::mpsc::unbounded_channel();
    while let Ok(c) = rx.try_recv() {
        let _ = tx.send(c);
    }
    let mut rx = std::mem::replace(rx, tokio::sync::mpsc::unbounded_channel().1);
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            if tx.send(c).is_err() {
                return;
            }
        }
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_made_again() {
    let boot = bootstrap_node().await;
    let server = swarm(&boot, |_| {}).await;
    let mut server_connections = server.connections().expect("connections");
    announced(&server).await;
    let client = swarm(&boot, |_| {}).await;
    let mut events = client.events();
    client.join(TOPIC, CLIENT);
    assert_eq!(
        connected(&mut events, Duration::from_secs(20)).await,
        Some(server.public_key())
    );
    let first = timeout(Duration::from_secs(5), server_connections.recv())
        .await
        .expect("in time")
        .expect("connection");
    first.close();
    assert_eq!(
        connected(&mut events, Duration::from_secs(20)).await,
        Some(server.public_key()),
        "reconnected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_removes_the_announcement() {
    let boot = bootstrap_node().await;
    let server = swarm(&boot, |_| {}).await;
    announced(&server).await;
    let looker = Dht::bind(
        common::localhost(),
        common::config(
            vec![boot.local_addr()],
            hyper_swarm::Reachability::Ephemeral,
        ),
    )
    .await
    .expect("dht");
    let found = looker
        .query(QueryKind::Lookup(TOPIC))
        .await
        .expect("lookup");
    assert_eq!(found.records.len(), 1);
    server.leave(TOPIC).await.expect("leave");
    let found = looker
        .query(QueryKind::Lookup(TOPIC))
        .await
        .expect("lookup");
    assert!(
        found.records.is_empty(),
        "still announced: {:?}",
        found.records
    );
}
