//! Dual stack over loopback: a DHT of IPv4-only nodes on 127.0.0.1 and a
//! DHT of IPv6-only nodes on ::1; a dual-stack swarm announced on both is
//! found and replicated from over IPv4 by an IPv4-only swarm and over IPv6
//! by an IPv6-only one, which do not find each other; a swarm with IPv4
//! bootstrap nodes only runs on IPv4 as before, and one whose first
//! bootstrap node is an IPv6 address nobody answers at still works on
//! IPv4.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Dht, Family, FamilyCounts, JoinOptions, Swarm};

mod common;
use common::{
    CLIENT, announced, bootstrap_node, dht_only, download_checked, flushed, next_connection,
    public_node, public_node_v6, random_topic, writer_core,
};

/// Two IPv4 nodes and two IPv6 nodes, each pair one DHT; their addresses
/// (IPv4's first).
struct Networks {
    _nodes: Vec<Dht>,
    v4: Vec<SocketAddr>,
    v6: Vec<SocketAddr>,
}

async fn networks() -> Networks {
    let a4 = bootstrap_node().await;
    let b4 = public_node(|c| c.bootstrap = vec![a4.local_addr()]).await;
    let a6 = public_node_v6(Vec::new()).await;
    let b6 = public_node_v6(vec![a6.local_addr()]).await;
    Networks {
        v4: vec![a4.local_addr(), b4.local_addr()],
        v6: vec![a6.local_addr(), b6.local_addr()],
        _nodes: vec![a4, b4, a6, b6],
    }
}

async fn swarm(bootstrap: Vec<SocketAddr>) -> Swarm {
    Swarm::new(dht_only(KeyPair::generate().expect("keys"), bootstrap))
        .await
        .expect("swarm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_swarm_is_reached_over_ipv4_and_ipv6() {
    let nets = networks().await;
    let topic = random_topic();
    let (_dir, store, core, blocks) = writer_core(20);
    let a = swarm([nets.v4.clone(), nets.v6.clone()].concat()).await;
    assert_eq!(a.families(), vec![Family::V4, Family::V6]);
    let serving = hyper_wire::Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        hyper_wire::ReplicationOptions::default(),
    );
    serving.add_core(&core);
    a.replicate(serving);
    announced(&a, topic).await;
    let status = a.status(&topic).expect("joined");
    assert_eq!(status.announced_on, vec![Family::V4, Family::V6]);

    for (bootstrap, family) in [(&nets.v4, Family::V4), (&nets.v6, Family::V6)] {
        let client = swarm(bootstrap.clone()).await;
        assert_eq!(client.families(), vec![family], "one family only");
        let mut connections = client.connections().expect("connections");
        client.join(topic, CLIENT);
        let connection = next_connection(&mut connections).await;
        assert_eq!(connection.remote, a.public_key());
        assert_eq!(
            Family::of(&connection.remote_address()),
            family,
            "reached on the family its record was found on"
        );
        let (_dir, replica_store) = common::store();
        let keys = KeyPair::generate().expect("keys");
        let replicating =
            download_checked(connection, &replica_store, keys, &core.key(), &blocks).await;
        let peer = client.peer_status();
        assert_eq!(peer.len(), 1);
        assert_eq!(peer[0].family, family);
        replicating.abort();
    }
    assert_eq!(
        a.stats().made_by_family,
        FamilyCounts { ipv4: 1, ipv6: 1 },
        "one peer over each family"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_family_swarms_do_not_find_each_other_through_the_other_family() {
    let nets = networks().await;
    let topic = random_topic();
    let both = JoinOptions {
        server: true,
        client: true,
    };
    let a = swarm([nets.v4.clone(), nets.v6.clone()].concat()).await;
    let b = swarm(nets.v4.clone()).await;
    let c = swarm(nets.v6.clone()).await;
    assert!(b.dht(Family::V6).is_none() && c.dht(Family::V4).is_none());
    for s in [&a, &b, &c] {
        s.join(topic, both);
    }
    for s in [&a, &b, &c] {
        flushed(s).await;
    }
    // What each family's DHT holds: A and the single-family swarm of it.
    assert_eq!(
        common::found_keys(&b, Family::V4, topic).await,
        HashSet::from([a.public_key(), b.public_key()])
    );
    assert_eq!(
        common::found_keys(&c, Family::V6, topic).await,
        HashSet::from([a.public_key(), c.public_key()])
    );
    assert!(
        common::eventually(Duration::from_secs(20), async || a.peers().len() == 2).await,
        "A connects to both"
    );
    // Give B and C time to find each other, if they could.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(b.peers(), vec![a.public_key()]);
    assert_eq!(c.peers(), vec![a.public_key()]);
    let mut expected = vec![b.public_key(), c.public_key()];
    expected.sort_by_key(|k| k.0);
    assert_eq!(a.peers(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_with_ipv4_bootstrap_nodes_only_runs_on_ipv4_as_before() {
    let nets = networks().await;
    let topic = random_topic();
    let a = swarm(nets.v4.clone()).await;
    assert_eq!(a.families(), vec![Family::V4]);
    assert!(a.dht(Family::V6).is_none());
    announced(&a, topic).await;
    assert_eq!(
        a.status(&topic).expect("joined").announced_on,
        vec![Family::V4]
    );
    let b = swarm(nets.v4.clone()).await;
    let mut connections = b.connections().expect("connections");
    b.join(topic, CLIENT);
    let connection = next_connection(&mut connections).await;
    assert_eq!(connection.remote, a.public_key());
    assert!(connection.remote_address().ip().to_canonical().is_ipv4());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_ipv6_bootstrap_node_listed_first_does_not_stop_ipv4() {
    let nets = networks().await;
    let topic = random_topic();
    // Nobody listens there.
    let silent = {
        let socket = std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
        socket.local_addr().expect("addr")
    };
    let a = swarm(vec![silent, nets.v4[0]]).await;
    announced(&a, topic).await;
    assert_eq!(
        a.status(&topic).expect("joined").announced_on,
        vec![Family::V4],
        "stored on IPv4 only"
    );
    let b = swarm(vec![nets.v4[1]]).await;
    let mut connections = b.connections().expect("connections");
    b.join(topic, CLIENT);
    assert_eq!(
        next_connection(&mut connections).await.remote,
        a.public_key()
    );
}
