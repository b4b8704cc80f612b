//! Malformed, oversized and spoofed DHT datagrams are dropped without harm:
//! a node fed thousands of mutated packets keeps answering, a reply from an
//! address that was not asked is ignored, and a node claiming an id that is
//! not bound to its address never enters a routing table.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_swarm::messages::{self, ErrorCode, Packet, Ping};
use hyper_swarm::sim::{Sim, SimConfig, ping_datagram};
use hyper_swarm::{
    Body, Config, Event, MAX_PACKET, NodeId, QueryKind, Reachability, encode_packet, wire_address,
};
use rand::{Rng, SeedableRng};

fn network(n: usize) -> Sim {
    let mut sim = Sim::new(SimConfig::default());
    for i in 0..n {
        let config = Config {
            bootstrap: if i == 0 {
                Vec::new()
            } else {
                vec![Sim::address(0)]
            },
            reachability: Reachability::Public,
            ..Config::default()
        };
        sim.add(Sim::address(i), config, false);
        sim.run_for(Duration::from_millis(20));
    }
    sim.run_for(Duration::from_secs(5));
    sim
}

#[test]
fn mutated_and_oversized_packets_are_dropped_and_the_node_keeps_working() {
    let mut sim = network(30);
    let victim = Sim::address(4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let valid = ping_datagram(1, victim);
    for i in 0..20_000u32 {
        let mut bytes = if rng.random_bool(0.3) {
            let mut b = vec![0u8; rng.random_range(0..MAX_PACKET + 200)];
            rng.fill(b.as_mut_slice());
            b
        } else {
            valid.clone()
        };
        for _ in 0..rng.random_range(0..6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        // Many sources, so the rate limit does not hide the decoder.
        let from = SocketAddr::from(([192, 0, 2, (i % 250) as u8], 1000 + (i % 50_000) as u16));
        sim.inject(from, victim, bytes);
        if i % 500 == 0 {
            sim.run_for(Duration::from_millis(5));
        }
    }
    let mut oversized = vec![1u8];
    oversized.extend(std::iter::repeat_n(0u8, 65_000));
    sim.inject(SocketAddr::from(([192, 0, 2, 1], 9)), victim, oversized);
    sim.run_for(Duration::from_secs(1));
    let outcome = sim
        .query(
            Sim::address(9),
            QueryKind::FindNode(NodeId::for_address(victim)),
        )
        .expect("lookup");
    assert_eq!(
        outcome.closest.first().map(|(_, a)| *a),
        Some(victim),
        "the victim still answers"
    );
    assert!(sim.node(&victim).expect("victim").table_len() > 0);
}

#[test]
fn spoofed_replies_and_unbound_ids_are_ignored() {
    let mut sim = network(20);
    let asker = Sim::address(2);
    let liar: SocketAddr = "192.0.2.7:4000".parse().expect("addr");
    // For every request of the query, a reply with its tid arrives first
    // from an address that was not asked: if one were taken, those nodes
    // would count as answered with nothing and the walk would end short.
    let target = NodeId::for_address(Sim::address(15));
    let id = sim
        .with(asker, |node, now| {
            node.query(now, QueryKind::FindNode(target))
        })
        .expect("node");
    let asked = sim.in_flight_from(&asker);
    assert!(!asked.is_empty(), "the query sent requests");
    for (_, tid) in &asked {
        let reply = hyper_swarm::sim::reply_datagram(*tid, asker, Some(NodeId([9; 32])));
        sim.inject(liar, asker, reply);
    }
    let outcome = sim
        .run_query(asker, id, Duration::from_secs(30))
        .expect("query done");
    assert_eq!(outcome.closest.first().map(|(n, _)| *n), Some(target));
    // A single request: a refusal from the wrong address must not end it.
    let real = Sim::address(15);
    let request = sim
        .with(asker, |node, now| {
            node.request(now, real, Body::Ping(Ping {}))
        })
        .expect("node");
    for (to, tid) in sim.in_flight_from(&asker) {
        assert_eq!(to, real);
        let refusal = Packet {
            tid,
            id: Vec::new(),
            to: Some(wire_address(asker)),
            flags: 0,
            body: Some(Body::Error(messages::Error {
                code: ErrorCode::Limited as i32,
            })),
        };
        sim.inject(liar, asker, encode_packet(&refusal));
    }
    sim.run_for(Duration::from_secs(2));
    let answered = sim.take_events(&asker).into_iter().find_map(|e| match e {
        Event::Response { id, result } if id == request => Some(result),
        _ => None,
    });
    assert!(
        matches!(answered, Some(Ok(_))),
        "the real answer counts: {answered:?}"
    );
    // A request claiming an id its address does not hash to is answered,
    // but the sender is not added to the routing table.
    let claimed = NodeId([9; 32]);
    let request = hyper_swarm::sim::find_node_datagram(77, Sim::address(3), claimed);
    sim.inject(liar, Sim::address(3), request);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.answers_to(&liar) >= 1, "the request was answered");
    for addr in sim.addresses() {
        let table = sim.node(&addr).expect("node").closest(&claimed, usize::MAX);
        assert!(
            !table.iter().any(|(id, a)| *id == claimed || *a == liar),
            "{addr} took the liar in"
        );
    }
}
