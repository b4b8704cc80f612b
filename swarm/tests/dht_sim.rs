//! The DHT on a simulated network of 1,000+ nodes (virtual clock, seeded
//! latency): lookups find the true k closest in few hops, announcements
//! survive a fifth of the nodes leaving, mutable and immutable values round
//! trip, nodes behind NAT stay out of routing tables, and a flood from one
//! source is bounded. `SIM_SEED=n` replays one seed.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::sim::{Sim, SimConfig};
use hyper_swarm::{
    Config, K, NodeId, PeerRecord, QueryKind, RateLimit, Reachability, immutable_target,
    sign_mutable, sign_record,
};

const NODES: usize = 1000;

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// A network of `n` public nodes that all bootstrapped from node 0, one
/// joining every 20 ms of virtual time.
fn network(seed: u64, n: usize) -> Sim {
    let config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    Sim::public_network(config, n, Duration::from_secs(6 * 60))
}

fn true_closest(sim: &Sim, target: &NodeId, exclude: Option<SocketAddr>) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = sim
        .addresses()
        .into_iter()
        .filter(|a| Some(*a) != exclude)
        .map(NodeId::for_address)
        .collect();
    ids.sort_by_key(|id| id.distance(target));
    ids.truncate(K);
    ids
}

#[test]
fn lookups_find_the_k_closest_in_log_n_hops() {
    let seed = seed();
    let mut sim = network(seed, NODES);
    let addrs = sim.addresses();
    for addr in &addrs {
        let node = sim.node(addr).expect("node");
        assert!(
            node.id().is_some(),
            "seed {seed}: every public node claimed its id"
        );
        assert!(
            node.table_len() >= K,
            "seed {seed}: {addr} knows only {} nodes",
            node.table_len()
        );
    }
    let mut hops = Vec::new();
    for _ in 0..50 {
        let target = NodeId(sim.random_bytes());
        let from = addrs[(sim.random() % addrs.len() as u64) as usize];
        let outcome = sim
            .query(from, QueryKind::FindNode(target))
            .expect("finished");
        let found: Vec<NodeId> = outcome.closest.iter().map(|(id, _)| *id).collect();
        // The querying node does not find itself.
        let truth = true_closest(&sim, &target, Some(from));
        assert_eq!(found, truth, "seed {seed}: the true {K} closest");
        hops.push(outcome.hops);
    }
    let max = hops.iter().copied().max().unwrap_or(0);
    let mean = hops.iter().sum::<usize>() as f64 / hops.len() as f64;
    // log2(1000) is about 10.
    assert!(
        max <= 10,
        "seed {seed}: at most {max} hops (mean {mean:.1})"
    );
}

#[test]
fn announcements_survive_a_fifth_of_the_nodes_leaving() {
    let seed = seed();
    let mut sim = network(seed + 100, NODES);
    let addrs = sim.addresses();
    let mut topics = Vec::new();
    for i in 0..10u8 {
        let topic = sim.random_bytes();
        let keypair = KeyPair::from_seed([i; 32]);
        let record = PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: Vec::new(),
            relays: Vec::new(),
            local_addresses: Vec::new(),
            timestamp: 1,
        };
        let signed = sign_record(&keypair, &topic, &record);
        let from = addrs[(sim.random() % addrs.len() as u64) as usize];
        let outcome = sim
            .query(
                from,
                QueryKind::Announce {
                    topic,
                    record: signed,
                },
            )
            .expect("announced");
        assert!(
            outcome.stored_at.len() >= K - 2,
            "seed {seed}: stored on {}",
            outcome.stored_at.len()
        );
        topics.push((topic, keypair.public_key()));
    }
    for addr in &addrs {
        if sim.random().is_multiple_of(5) && *addr != Sim::address(0) {
            sim.set_offline(*addr, true);
        }
    }
    for (topic, key) in topics {
        let from = loop {
            let a = addrs[(sim.random() % addrs.len() as u64) as usize];
            if !sim.is_offline(&a) {
                break a;
            }
        };
        let outcome = sim
            .query(from, QueryKind::Lookup(topic))
            .expect("looked up");
        assert!(
            outcome.records.iter().any(|r| r.public_key == key),
            "seed {seed}: the record of {key} is still found"
        );
        let holder = outcome
            .records
            .iter()
            .find(|r| r.public_key == key)
            .map(|r| r.holder);
        assert!(holder.is_some_and(|h| !sim.is_offline(&h)));
    }
}

#[test]
fn mutable_and_immutable_values_round_trip() {
    let seed = seed();
    let mut sim = network(seed + 200, 200);
    let addrs = sim.addresses();
    let keypair = KeyPair::from_seed([9; 32]);
    for seq in [1u64, 2] {
        let value = sign_mutable(&keypair, seq, format!("version {seq}").into_bytes());
        let put = sim
            .query(addrs[5], QueryKind::MutablePut(value))
            .expect("put");
        assert!(put.stored_at.len() >= K - 2);
    }
    let got = sim
        .query(
            addrs[150],
            QueryKind::MutableGet {
                public_key: keypair.public_key(),
                seq: 0,
            },
        )
        .expect("get");
    let value = got.mutable.expect("found");
    assert_eq!(
        (value.seq, value.value.as_slice()),
        (2, b"version 2".as_slice())
    );

    let put = sim
        .query(addrs[9], QueryKind::ImmutablePut(b"hello".to_vec()))
        .expect("put");
    assert!(put.stored_at.len() >= K - 2);
    let got = sim
        .query(
            addrs[77],
            QueryKind::ImmutableGet(immutable_target(b"hello")),
        )
        .expect("get");
    assert_eq!(got.immutable.as_deref(), Some(b"hello".as_slice()));
    let missing = sim
        .query(
            addrs[77],
            QueryKind::ImmutableGet(immutable_target(b"nobody")),
        )
        .expect("get");
    assert_eq!(missing.immutable, None);
}

#[test]
fn nodes_behind_nat_stay_out_of_tables_and_open_ones_join() {
    let seed = seed();
    let mut sim = network(seed + 300, 100);
    let natted = Sim::address(5000);
    let open = Sim::address(5001);
    let config = Config {
        bootstrap: vec![Sim::address(0)],
        reachability: Reachability::Auto,
        ..Config::default()
    };
    sim.add(natted, config.clone(), true);
    sim.add(open, config, false);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.node(&natted).and_then(|n| n.id()),
        None,
        "seed {seed}: no id behind NAT"
    );
    assert_eq!(
        sim.node(&open).and_then(|n| n.id()),
        Some(NodeId::for_address(open)),
        "seed {seed}: the open node proved itself"
    );
    let natted_id = NodeId::for_address(natted);
    let open_id = NodeId::for_address(open);
    let mut knows_open = 0;
    for addr in sim.addresses() {
        let node = sim.node(&addr).expect("node");
        let table = node.closest(&natted_id, usize::MAX);
        assert!(
            !table.iter().any(|(id, _)| *id == natted_id),
            "seed {seed}: {addr} has the NATed node"
        );
        if node
            .closest(&open_id, usize::MAX)
            .iter()
            .any(|(id, _)| *id == open_id)
        {
            knows_open += 1;
        }
    }
    assert!(
        knows_open >= 5,
        "seed {seed}: only {knows_open} tables hold the open node"
    );
    // The NATed node is still a working client.
    let outcome = sim
        .query(natted, QueryKind::FindNode(open_id))
        .expect("lookup from behind NAT");
    assert_eq!(outcome.closest.first().map(|(id, _)| *id), Some(open_id));
}

#[test]
fn a_flood_from_one_source_is_bounded() {
    let seed = seed();
    let mut sim = network(seed + 400, 50);
    let victim = Sim::address(3);
    let attacker: SocketAddr = "192.0.2.1:9999".parse().expect("addr");
    let limit = RateLimit {
        per_second: 200,
        burst: 400,
    };
    // 10,000 pings within one second of virtual time.
    let before = sim.delivered;
    for i in 0..10_000u32 {
        let ping = hyper_swarm::sim::ping_datagram(i, victim);
        sim.inject(attacker, victim, ping);
        if i % 100 == 0 {
            sim.run_for(Duration::from_millis(10));
        }
    }
    sim.run_for(Duration::from_millis(100));
    let answers = sim.answers_to(&attacker);
    let bound = limit.burst as u64 + u64::from(limit.per_second) * 2;
    assert!(
        answers <= bound,
        "seed {seed}: {answers} answers to the flood (bound {bound})"
    );
    assert!(
        answers >= limit.burst as u64,
        "seed {seed}: the first requests are answered"
    );
    assert!(sim.delivered > before);
    // The victim still answers others.
    let outcome = sim
        .query(
            Sim::address(10),
            QueryKind::FindNode(NodeId::for_address(victim)),
        )
        .expect("lookup");
    assert_eq!(outcome.closest.first().map(|(_, a)| *a), Some(victim));
}

#[test]
fn a_node_finds_what_others_stored_on_it() {
    // Two nodes: what the second stores lands on the first, whose own
    // walk asks only the second; it must still find it.
    let mut sim = network(seed() + 500, 2);
    let (first, second) = (Sim::address(0), Sim::address(1));
    let put = sim
        .query(second, QueryKind::ImmutablePut(b"held".to_vec()))
        .expect("put");
    assert_eq!(put.stored_at, vec![first]);
    let got = sim
        .query(first, QueryKind::ImmutableGet(immutable_target(b"held")))
        .expect("get");
    assert_eq!(got.immutable.as_deref(), Some(b"held".as_slice()));
    let keypair = KeyPair::from_seed([3; 32]);
    let topic = [5u8; 32];
    let record = PeerRecord {
        public_key: keypair.public_key().0.to_vec(),
        addresses: Vec::new(),
        relays: Vec::new(),
        local_addresses: Vec::new(),
        timestamp: 1,
    };
    let announce = QueryKind::Announce {
        topic,
        record: sign_record(&keypair, &topic, &record),
    };
    sim.query(second, announce).expect("announce");
    let found = sim.query(first, QueryKind::Lookup(topic)).expect("lookup");
    assert_eq!(found.records.len(), 1);
    assert_eq!(
        found.records[0].holder, first,
        "held here: connects come here"
    );
}
