//! Adversarial nodes in the seeded simulator (`SIM_SEED=n` replays):
//! requests with forged sources never put an address in a routing table,
//! Sybils on one IP get one entry and those of one /24 at most two per
//! bucket, per answer and per lookup result; a node naming closer nodes of
//! the other address family is not followed there.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyper_swarm::messages::{self, Packet};
use hyper_swarm::sim::{Hostile, Sim, SimConfig};
use hyper_swarm::{
    Body, MAX_PER_PREFIX, NodeId, Prefix, QueryKind, Reply, encode_packet, wire_address,
};

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

fn decode(bytes: &[u8]) -> Option<Packet> {
    use prost::Message as _;
    match bytes.split_first() {
        Some((1, body)) => Packet::decode(body).ok(),
        _ => None,
    }
}

fn packet(tid: u32, id: NodeId, to: SocketAddr, body: Body) -> Vec<u8> {
    encode_packet(&Packet {
        tid,
        id: id.0.to_vec(),
        to: Some(wire_address(to)),
        body: Some(body),
        ..Packet::default()
    })
}

/// A Sybil at `me`: answers every request under the id its address gives
/// it, naming only fellow Sybils as closer nodes.
fn sybil(me: SocketAddr, fellows: Vec<SocketAddr>) -> Hostile {
    Box::new(move |_, from, bytes| {
        let Some(request) = decode(bytes) else {
            return Vec::new();
        };
        if matches!(request.body, Some(Body::Reply(_) | Body::Error(_)) | None) {
            return Vec::new();
        }
        let closer = fellows
            .iter()
            .take(20)
            .map(|a| messages::NodeInfo {
                id: NodeId::for_address(*a).0.to_vec(),
                address: Some(wire_address(*a)),
            })
            .collect();
        let reply = Body::Reply(Reply {
            closer,
            token: vec![7; 32],
            ..Reply::default()
        });
        vec![(
            me,
            from,
            packet(request.tid, NodeId::for_address(me), from, reply),
        )]
    })
}

/// A FindNode of its own id from the hostile node at `from` to `to`, so
/// `to` meets it (and checks it, then may take it into its table).
fn introduce(sim: &mut Sim, tid: u32, from: SocketAddr, to: SocketAddr) {
    let id = NodeId::for_address(from);
    let find = packet(
        tid,
        id,
        to,
        Body::FindNode(messages::FindNode {
            target: id.0.to_vec(),
        }),
    );
    sim.forge(vec![(from, to, find)]);
}

/// Sybils at 203.0.113.{1..=hosts}, `ports` ports each, all in the sim.
fn add_sybils(sim: &mut Sim, hosts: u8, ports: u16) -> Vec<SocketAddr> {
    let mut all = Vec::new();
    for host in 1..=hosts {
        for port in 0..ports {
            all.push(SocketAddr::from(([203, 0, 113, host], 4000 + port)));
        }
    }
    for addr in &all {
        sim.add_hostile(*addr, sybil(*addr, all.clone()));
    }
    all
}

fn sybil_prefix() -> Prefix {
    Prefix::of("203.0.113.1".parse().expect("ip"))
}

#[test]
fn requests_with_forged_sources_never_enter_a_table() {
    let seed = seed();
    let mut sim = Sim::public_network(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        30,
        Duration::from_secs(5),
    );
    let victim = Sim::address(3);
    // Nobody is at these addresses: whatever claims them is forged.
    for i in 0..50u8 {
        let forged = SocketAddr::from(([198, 51, 100, i], 4000));
        let id = NodeId::for_address(forged);
        let find = packet(
            u32::from(i),
            id,
            victim,
            Body::FindNode(messages::FindNode {
                target: id.0.to_vec(),
            }),
        );
        sim.inject(forged, victim, find);
        let ping = packet(
            1000 + u32::from(i),
            id,
            victim,
            Body::Ping(messages::Ping {}),
        );
        sim.inject(forged, victim, ping);
    }
    sim.run_for(Duration::from_secs(5));
    let node = sim.node(&victim).expect("victim");
    let taken: Vec<SocketAddr> = node
        .closest(&NodeId([0; 32]), usize::MAX)
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a.ip().to_string().starts_with("198.51.100."))
        .collect();
    assert!(
        taken.is_empty(),
        "seed {seed}: forged sources in the table: {taken:?}"
    );
    // Each forged address got its two answers and one check (a ping,
    // resent once), no more.
    for i in 0..50u8 {
        let forged = SocketAddr::from(([198, 51, 100, i], 4000));
        let got = sim.answers_to(&forged);
        assert!(got <= 4, "seed {seed}: {got} datagrams to {forged}");
    }
}

#[test]
fn sybils_of_one_ip_and_one_slash_24_take_few_places() {
    let seed = seed();
    let mut sim = Sim::public_network(
        SimConfig {
            seed: seed + 1,
            ..SimConfig::default()
        },
        40,
        Duration::from_secs(5),
    );
    // 40 hosts of one /24, 20 ports each: 800 Sybil endpoints.
    let sybils = add_sybils(&mut sim, 40, 20);
    let honest = sim.addresses();
    for (i, s) in sybils.iter().enumerate() {
        introduce(&mut sim, i as u32, *s, honest[i % honest.len()]);
    }
    sim.run_for(Duration::from_secs(10));
    // A few refresh walks meet the Sybils' answers too.
    for addr in honest.iter().take(10) {
        let target = NodeId::for_address(sybils[0]);
        let outcome = sim.query(*addr, QueryKind::FindNode(target)).expect("walk");
        let in_result = outcome
            .closest
            .iter()
            .filter(|(_, a)| Prefix::of(a.ip()) == sybil_prefix())
            .count();
        assert!(
            in_result <= MAX_PER_PREFIX,
            "seed {seed}: {in_result} Sybils in one lookup result"
        );
    }
    for addr in &honest {
        let node = sim.node(addr).expect("node");
        let local = node.id().expect("public id");
        let mut per_bucket = [0usize; 256];
        for (id, at) in node.closest(&local, usize::MAX) {
            if Prefix::of(at.ip()) == sybil_prefix() {
                let bucket = local.distance(&id).bucket().unwrap_or(0);
                per_bucket[bucket] += 1;
            }
        }
        let most = per_bucket.iter().copied().max().unwrap_or(0);
        assert!(
            most <= MAX_PER_PREFIX,
            "seed {seed}: {addr} holds {most} Sybils in a bucket"
        );
    }
    // What an honest node answers names at most two of the /24.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let observer = SocketAddr::from(([192, 0, 2, 200], 4000));
    let log = seen.clone();
    sim.add_hostile(
        observer,
        Box::new(move |_, _, bytes| {
            if let Some(p) = decode(bytes) {
                log.borrow_mut().push(p);
            }
            Vec::new()
        }),
    );
    let target = NodeId::for_address(sybils[0]);
    for (tid, to) in honest.iter().enumerate() {
        let find = encode_packet(&Packet {
            tid: tid as u32,
            to: Some(wire_address(*to)),
            padding: vec![0; 500],
            body: Some(Body::FindNode(messages::FindNode {
                target: target.0.to_vec(),
            })),
            ..Packet::default()
        });
        sim.inject(observer, *to, find);
    }
    sim.run_for(Duration::from_secs(1));
    let answers = seen.borrow();
    assert!(answers.len() >= honest.len() / 2, "seed {seed}: answered");
    for answer in answers.iter() {
        if let Some(Body::Reply(reply)) = &answer.body {
            let sybils = reply
                .closer
                .iter()
                .filter(|n| {
                    n.address
                        .as_ref()
                        .is_some_and(|a| a.ip.get(..3) == Some(&[203, 0, 113][..]))
                })
                .count();
            assert!(
                sybils <= MAX_PER_PREFIX,
                "seed {seed}: an answer named {sybils} Sybils"
            );
        }
    }
}

/// A record for `topic` by `keypair`, reachable at `at`, made at `timestamp`.
fn record(
    keypair: &hyper_core::KeyPair,
    topic: &[u8; 32],
    at: SocketAddr,
    timestamp: u64,
) -> messages::SignedRecord {
    hyper_swarm::sign_record(
        keypair,
        topic,
        &hyper_swarm::PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: vec![wire_address(at)],
            relays: Vec::new(),
            local_addresses: Vec::new(),
            timestamp,
        },
    )
}

/// 30 public nodes, each in its own /24, and 20 attacker nodes in one /24.
fn mixed_network(seed: u64) -> (Sim, Vec<SocketAddr>, Vec<SocketAddr>) {
    let honest: Vec<SocketAddr> = (0..30).map(Sim::global_address).collect();
    let mut sim = Sim::network_at(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        &honest,
        Duration::from_secs(5),
    );
    let mut attackers = Vec::new();
    for host in 1..=20u8 {
        let addr = SocketAddr::from(([203, 0, 113, host], 4000));
        let config = hyper_swarm::Config {
            bootstrap: vec![honest[0]],
            reachability: hyper_swarm::Reachability::Public,
            ..hyper_swarm::Config::default()
        };
        sim.add(addr, config, false);
        attackers.push(addr);
    }
    sim.run_for(Duration::from_secs(10));
    (sim, honest, attackers)
}

#[test]
fn future_records_replays_and_unannounced_records_cannot_take_a_topic() {
    let seed = seed();
    let (mut sim, honest, attackers) = mixed_network(seed + 2);
    let topic = [0x77u8; 32];
    let now = sim.unix_ms();
    let keys: Vec<hyper_core::KeyPair> = (0..5u8)
        .map(|i| hyper_core::KeyPair::from_seed([i + 1; 32]))
        .collect();
    let mut originals = Vec::new();
    for (i, keypair) in keys.iter().enumerate() {
        let at = honest[3 + i];
        let signed = record(keypair, &topic, at, now);
        let outcome = sim
            .query(
                at,
                QueryKind::Announce {
                    topic,
                    record: signed.clone(),
                },
            )
            .expect("announced");
        assert!(
            outcome.stored_at.len() >= 10,
            "seed {seed}: honest record stored"
        );
        originals.push((at, signed));
    }
    // 40 records a year ahead, and 60 just ahead, from one /24.
    for i in 0..100u8 {
        let keypair = hyper_core::KeyPair::from_seed([100 + i; 32]);
        let from = attackers[usize::from(i) % attackers.len()];
        let ahead = if i < 40 { 365 * 24 * 3_600_000 } else { 60_000 };
        let signed = record(&keypair, &topic, from, sim.unix_ms() + ahead);
        let outcome = sim
            .query(
                from,
                QueryKind::Announce {
                    topic,
                    record: signed,
                },
            )
            .expect("query");
        if i < 40 {
            assert!(
                outcome.stored_at.is_empty(),
                "seed {seed}: a year ahead is refused"
            );
        }
    }
    let found = sim
        .query(honest[20], QueryKind::Lookup(topic))
        .expect("lookup");
    for keypair in &keys {
        assert!(
            found
                .records
                .iter()
                .any(|r| r.public_key == keypair.public_key()),
            "seed {seed}: the honest record of {} is still found",
            keypair.public_key()
        );
    }
    // A captured record replayed from the attacker's address is refused.
    let (_, captured) = originals[0].clone();
    let replay = sim
        .query(
            attackers[0],
            QueryKind::Announce {
                topic,
                record: captured,
            },
        )
        .expect("query");
    assert!(
        replay.stored_at.is_empty(),
        "seed {seed}: replay stored on {:?}",
        replay.stored_at
    );
    // After an unannounce, the old record cannot come back, even from its
    // own address.
    let (at, old) = originals[1].clone();
    let unannounce = hyper_swarm::sign_unannounce(&keys[1], &topic, sim.unix_ms());
    sim.query(at, QueryKind::Unannounce(unannounce))
        .expect("unannounce");
    let back = sim
        .query(at, QueryKind::Announce { topic, record: old })
        .expect("query");
    assert!(
        back.stored_at.is_empty(),
        "seed {seed}: the old record came back"
    );
    let found = sim
        .query(honest[21], QueryKind::Lookup(topic))
        .expect("lookup");
    assert!(
        !found
            .records
            .iter()
            .any(|r| r.public_key == keys[1].public_key()),
        "seed {seed}: the unannounced record is gone"
    );
}

#[test]
fn unsolicited_packets_cast_no_vote_set_no_id_and_name_no_relay() {
    let seed = seed();
    let honest: Vec<SocketAddr> = (0..20).map(Sim::global_address).collect();
    let mut sim = Sim::network_at(
        SimConfig {
            seed: seed + 3,
            ..SimConfig::default()
        },
        &honest,
        Duration::from_secs(5),
    );
    let fresh = Sim::global_address(500);
    let fake: SocketAddr = "198.51.100.1:9".parse().expect("addr");
    let config = hyper_swarm::Config {
        bootstrap: vec![honest[0]],
        reachability: hyper_swarm::Reachability::Auto,
        ..hyper_swarm::Config::default()
    };
    sim.add(fresh, config, false);
    // Before any real answer arrives: eight "answers" from one IP naming
    // a fake address, an unsolicited ping to it, and relay claims.
    for port in 1..=8u16 {
        let liar = SocketAddr::from(([203, 0, 113, 1], port));
        let reply = encode_packet(&Packet {
            tid: u32::from(port),
            to: Some(wire_address(fake)),
            flags: 1,
            body: Some(Body::Reply(Reply::default())),
            ..Packet::default()
        });
        sim.inject(liar, fresh, reply);
    }
    let ping = encode_packet(&Packet {
        tid: 99,
        to: Some(wire_address(fake)),
        flags: 1,
        body: Some(Body::Ping(messages::Ping {})),
        ..Packet::default()
    });
    sim.inject(SocketAddr::from(([203, 0, 113, 2], 7)), fresh, ping);
    sim.run_for(Duration::from_secs(30));
    let node = sim.node(&fresh).expect("node");
    assert_eq!(
        node.public_address(),
        Some(fresh),
        "seed {seed}: votes from real answers"
    );
    // In a network this small it has written to every node, so it may not
    // have proved itself yet; it never takes the id of the fake address.
    assert!(
        node.id().is_none_or(|id| id == NodeId::for_address(fresh)),
        "seed {seed}: the id of its real address, or none yet"
    );
    let relays: Vec<SocketAddr> = node.relays().collect();
    assert!(
        relays
            .iter()
            .all(|r| !r.ip().to_string().starts_with("203.0.113.")),
        "seed {seed}: relays {relays:?}"
    );
}

#[test]
fn addresses_of_the_other_family_in_answers_are_not_followed() {
    let seed = seed();
    let mut sim = Sim::public_network(
        SimConfig {
            seed: seed + 2,
            ..SimConfig::default()
        },
        30,
        Duration::from_secs(5),
    );
    // A node on IPv4 that names only IPv6 nodes as closer: an IPv4 DHT
    // cannot reach them, so a lookup must not spend its requests there.
    let liar = SocketAddr::from(([203, 0, 113, 9], 4000));
    let v6: Vec<SocketAddr> = (1..=20u16)
        .map(|i| SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, i], 4000)))
        .collect();
    sim.add_hostile(liar, sybil(liar, v6.clone()));
    let honest = sim.addresses();
    for (i, to) in honest.iter().enumerate() {
        introduce(&mut sim, i as u32, liar, *to);
    }
    sim.run_for(Duration::from_secs(10));
    for (addr, target) in honest.iter().take(10).zip(&v6) {
        sim.query(*addr, QueryKind::FindNode(NodeId::for_address(*target)))
            .expect("walk");
    }
    let sent: Vec<(SocketAddr, u64)> = v6
        .iter()
        .map(|a| (*a, sim.answers_to(a)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(
        sent.is_empty(),
        "seed {seed}: datagrams sent to IPv6 nodes an IPv4 liar named: {sent:?}"
    );
}
