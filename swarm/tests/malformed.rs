//! Malformed, oversized and spoofed DHT datagrams are dropped without harm:
//! a node fed thousands of mutated packets keeps answering, a reply from an
//! address that was not asked is ignored, and a node claiming an id that is
//! not bound to its address never enters a routing table.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::messages::{self, ErrorCode, Packet, Ping};
use hyper_swarm::sim::{Sim, SimConfig};
use hyper_swarm::{
    Body, Event, MAX_PACKET, NodeId, PeerRecord, QueryKind, encode_packet, sign_mutable,
    sign_record, sign_unannounce, wire_address,
};
use rand::{Rng, SeedableRng};

fn network(n: usize) -> Sim {
    Sim::public_network(SimConfig::default(), n, Duration::from_secs(5))
}

/// A valid request of every kind, addressed to `to`: the seeds the fuzz
/// loop mutates.
fn valid_requests(to: SocketAddr) -> Vec<Vec<u8>> {
    let keypair = KeyPair::from_seed([4; 32]);
    let topic = [6u8; 32];
    let record = sign_record(
        &keypair,
        &topic,
        &PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: vec![wire_address(to)],
            relays: vec![wire_address(to)],
            local_addresses: Vec::new(),
            timestamp: 5,
        },
    );
    let holepunch = messages::Holepunch {
        public_key: keypair.public_key().0.to_vec(),
        addresses: vec![wire_address(to)],
        nat: 2,
        ephemeral: vec![1; 32],
        signature: vec![2; 64],
        relay: Some(wire_address(to)),
    };
    let bodies = vec![
        Body::Ping(Ping {}),
        Body::FindNode(messages::FindNode {
            target: topic.to_vec(),
        }),
        Body::Lookup(messages::Lookup {
            topic: topic.to_vec(),
        }),
        Body::Announce(messages::Announce {
            topic: topic.to_vec(),
            record: Some(record),
            token: vec![9; 32],
        }),
        Body::Unannounce(sign_unannounce(&keypair, &topic, 5)),
        Body::MutablePut(messages::MutablePut {
            value: Some(sign_mutable(&keypair, 1, b"v".to_vec())),
            token: vec![9; 32],
        }),
        Body::MutableGet(messages::MutableGet {
            target: topic.to_vec(),
            seq: 0,
        }),
        Body::ImmutablePut(messages::ImmutablePut {
            value: b"v".to_vec(),
            token: vec![9; 32],
        }),
        Body::ImmutableGet(messages::ImmutableGet {
            target: topic.to_vec(),
        }),
        Body::Connect(messages::Connect {
            topic: topic.to_vec(),
            public_key: keypair.public_key().0.to_vec(),
            holepunch: Some(holepunch.clone()),
        }),
        Body::ConnectForward(messages::ConnectForward {
            topic: topic.to_vec(),
            from: Some(wire_address(to)),
            holepunch: Some(holepunch),
        }),
        Body::CheckReachable(messages::CheckReachable {}),
        Body::PingTarget(messages::PingTarget {
            target: Some(wire_address(to)),
        }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(tid, body)| {
            encode_packet(&Packet {
                tid: tid as u32,
                id: vec![7; 32],
                to: Some(wire_address(to)),
                flags: 1,
                body: Some(body),
                ..Packet::default()
            })
        })
        .collect()
}

/// The decoder fuzz target over a live node: random datagrams and
/// mutations of a valid request of every kind (`HYPER_FUZZ_ITERS` rounds,
/// default 20,000) must be dropped or answered, never panic, and leave the
/// node answering.
#[test]
fn mutated_and_oversized_packets_are_dropped_and_the_node_keeps_working() {
    let mut sim = network(30);
    let victim = Sim::address(4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let valid = valid_requests(victim);
    let iterations: u32 = std::env::var("HYPER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    for i in 0..iterations {
        let mut bytes = if rng.random_bool(0.3) {
            let mut b = vec![0u8; rng.random_range(0..MAX_PACKET + 200)];
            rng.fill(b.as_mut_slice());
            b
        } else {
            valid[rng.random_range(0..valid.len())].clone()
        };
        for _ in 0..rng.random_range(0..6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        // Many sources (in many /24s), so the rate limit does not hide
        // the decoder.
        let from = SocketAddr::from(([192, 0, (i % 250) as u8, 2], 1000 + (i % 50_000) as u16));
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
    // (The asker may also be checking requesters with pings of its own.)
    let asked: Vec<u32> = sim
        .in_flight_from(&asker)
        .into_iter()
        .filter(|(to, _)| *to == real)
        .map(|(_, tid)| tid)
        .collect();
    assert_eq!(asked.len(), 1, "the request is on its way");
    for tid in asked {
        let refusal = Packet {
            tid,
            id: Vec::new(),
            to: Some(wire_address(asker)),
            flags: 0,
            body: Some(Body::Error(messages::Error {
                code: ErrorCode::Limited as i32,
            })),
            ..Packet::default()
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
