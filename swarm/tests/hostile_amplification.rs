//! Amplification through the DHT, against real nodes on loopback: a
//! hostile peer sends small requests from an address that never proved
//! itself (as with a forged source) and every answer stays within three
//! times its request (QUIC's rule); values up to the documented maximum
//! still come back whole; rate limits hold per /24 and in bytes in all;
//! `PingTarget` and the observer port cannot be aimed at a victim.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::messages::{self, Packet, Ping};
use hyper_swarm::{Body, Config, Dht, Limits, Reachability, encode_packet, wire_address};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep, timeout};

mod common;
mod hostile;
use common::{bootstrap_node, config, localhost};
use hostile::{Victim, bind, exchange, packet, reads};

/// A bootstrap node and `n - 1` nodes that joined through it, all
/// bootstrapped.
async fn network(n: usize) -> Vec<Dht> {
    let first = bootstrap_node().await;
    let boot = vec![first.local_addr()];
    let mut nodes = vec![first];
    for _ in 1..n {
        let config = Config {
            public_address: None,
            ..config(boot.clone(), Reachability::Public)
        };
        let socket = std::net::UdpSocket::bind(localhost()).expect("bind");
        let addr = socket.local_addr().expect("addr");
        drop(socket);
        let node = Dht::bind(
            addr,
            Config {
                public_address: Some(addr),
                ..config
            },
        )
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
    // A second walk each, so tables fill.
    for node in &nodes {
        let own = node.status().await.expect("status").id.expect("public id");
        node.query(hyper_swarm::QueryKind::FindNode(own))
            .await
            .expect("walk");
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_an_unproven_address_stay_within_three_times_the_request() {
    let nodes = network(14).await;
    let target = nodes[0].local_addr();
    // The forged source: a socket on another loopback address that never
    // answered any request of the node's.
    let forged = bind([127, 0, 0, 9]).await;
    let mut full = 0;
    for (tid, body) in reads([0x33; 32]).into_iter().enumerate() {
        let request = packet(tid as u32, target, body.clone());
        let sent = encode_packet(&request).len();
        let (got, answer) = exchange(&forged, target, &request).await.expect("answered");
        assert!(got <= 3 * sent, "{got} bytes answered {sent} ({body:?})");
        // The same request padded to a third of a packet, or carrying the
        // token of the first answer, gets the whole answer.
        let token = match answer.body {
            Some(Body::Reply(reply)) => reply.token,
            _ => Vec::new(),
        };
        let padded = Packet {
            padding: vec![0; 480],
            ..packet(tid as u32 + 100, target, body.clone())
        };
        let with_token = Packet {
            token,
            ..packet(tid as u32 + 200, target, body)
        };
        for request in [padded, with_token] {
            let (_, answer) = exchange(&forged, target, &request).await.expect("answered");
            if let Some(Body::Reply(reply)) = answer.body
                && reply.closer.len() >= 10
            {
                full += 1;
            }
        }
    }
    // Find-node, lookup and both gets answered in full, both ways.
    assert_eq!(full, 8, "a proven requester gets whole answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_the_largest_size_are_stored_and_read_back() {
    let nodes = network(14).await;
    let max = Limits::default().max_value_bytes;
    let value = vec![0xab; max];
    let hash = nodes[3].immutable_put(value.clone()).await.expect("put");
    let got = nodes[9].immutable_get(hash).await.expect("get");
    assert_eq!(got.as_deref(), Some(value.as_slice()));
    let keypair = KeyPair::generate().expect("keys");
    let stored = nodes[4]
        .mutable_put(&keypair, 1, value.clone())
        .await
        .expect("put");
    assert!(!stored.is_empty());
    let got = nodes[11]
        .mutable_get(keypair.public_key(), 0)
        .await
        .expect("get");
    assert_eq!(got.map(|m| m.value), Some(value));
}

/// A public node with the default rate limits (and `bytes` of answers a
/// second).
async fn limited_node(bytes: u64) -> Dht {
    let socket = std::net::UdpSocket::bind(localhost()).expect("bind");
    let addr = socket.local_addr().expect("addr");
    drop(socket);
    Dht::bind(
        addr,
        Config {
            reachability: Reachability::Public,
            public_address: Some(addr),
            answer_bytes_per_second: bytes,
            ..Config::default()
        },
    )
    .await
    .expect("node")
}

/// Counts the bytes that come back to `sockets` within `within`.
async fn flood(sockets: &[UdpSocket], to: SocketAddr, per_socket: u32) -> (u64, u64) {
    let mut sent = 0u64;
    for round in 0..per_socket {
        for socket in sockets {
            let ping = encode_packet(&packet(round, to, Body::Ping(Ping {})));
            sent += ping.len() as u64;
            socket.send_to(&ping, to).await.expect("send");
        }
    }
    let mut received = 0u64;
    let mut buf = vec![0u8; 2048];
    let until = Instant::now() + Duration::from_millis(500);
    for socket in sockets {
        while let Ok(Ok((len, _))) =
            tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await
        {
            received += len as u64;
            if Instant::now() >= until {
                break;
            }
        }
    }
    (sent, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_per_slash_24_and_for_all_bytes() {
    let node = limited_node(4 << 20).await;
    // 100 addresses of one /24, 20 pings each: one bucket of 400 (+200/s).
    let mut sockets = Vec::new();
    for host in 1..=100u8 {
        sockets.push(bind([127, 0, 50, host]).await);
    }
    let start = Instant::now();
    let (_, received) = flood(&sockets, node.local_addr(), 20).await;
    let answers = received / 20; // a ping answer is at least 20 bytes
    let bound = 400 + 200 * (start.elapsed().as_secs() + 1);
    assert!(
        answers <= bound,
        "{answers} answers to one /24 (bound {bound})"
    );

    // Answers in all are bounded in bytes: 50 /24s, 40 pings each.
    let budget = 8_000;
    let node = limited_node(budget).await;
    let mut sockets = Vec::new();
    for net in 60..110u8 {
        sockets.push(bind([127, 0, net, 1]).await);
    }
    let start = Instant::now();
    let (sent, received) = flood(&sockets, node.local_addr(), 40).await;
    let bound = budget * (start.elapsed().as_secs() + 2) + 1400;
    assert!(
        received <= bound,
        "{received} bytes answered {sent} (bound {bound})"
    );
    assert!(received > 0, "some are answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_target_and_the_observer_port_cannot_be_aimed_at_a_victim() {
    let node = limited_node(4 << 20).await;
    let victim = Victim::bind([127, 0, 0, 11], 1).await;
    let attacker = bind([127, 0, 0, 12]).await;
    for tid in 0..50 {
        let request = packet(
            tid,
            node.local_addr(),
            Body::PingTarget(messages::PingTarget {
                target: Some(wire_address(victim.addresses[0])),
            }),
        );
        attacker
            .send_to(&encode_packet(&request), node.local_addr())
            .await
            .expect("send");
    }
    sleep(Duration::from_millis(500)).await;
    assert_eq!(victim.datagrams(), 0, "no ping for an unproven requester");

    // The observer port: one /24 floods it, another is still answered.
    let probe = bind([127, 0, 0, 13]).await;
    let (_, answer) = exchange(
        &probe,
        node.local_addr(),
        &packet(1, node.local_addr(), Body::Ping(Ping {})),
    )
    .await
    .expect("answered");
    let Some(Body::Reply(reply)) = answer.body else {
        panic!("a reply");
    };
    let observer = SocketAddr::new(node.local_addr().ip(), reply.observer_port as u16);
    let flooders: Vec<UdpSocket> = sockets_on(70, 10).await;
    let (_, received) = flood(&flooders, observer, 50).await;
    let answered = received / 15;
    assert!(answered <= 40, "{answered} observer answers to one /24");
    let other = bind([127, 0, 71, 1]).await;
    assert!(
        exchange(&other, observer, &packet(9, observer, Body::Ping(Ping {})))
            .await
            .is_some(),
        "another /24 is still answered"
    );
}

/// `n` sockets on 127.0.`net`.1..=n.
async fn sockets_on(net: u8, n: u8) -> Vec<UdpSocket> {
    let mut sockets = Vec::new();
    for host in 1..=n {
        sockets.push(bind([127, 0, net, host]).await);
    }
    sockets
}
