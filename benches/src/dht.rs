//! The swarm's workloads (ours only: the reference has no equivalent of
//! our DHT simulator or node state machine).
//!
//! - S1: lookups on the simulated 1,000-node network (`hyper_swarm::sim`,
//!   seeded, 5-60 ms one-way latency). Latency is virtual: the figure is
//!   rounds times simulated round trips, not CPU. Hops are the longest
//!   chain of answers that led to a node of the result.
//! - S2: one DHT node's CPU per 1,000 requests: a node with a full routing
//!   table (200 nodes, the 10 farthest buckets full) answers a mix of
//!   find-node (80%), lookup (10%) and ping (10%) requests from 50,000
//!   source addresses on 2,500 IPs (a raised per-IP rate limit: the
//!   benchmark measures answering, not refusing), timed on this thread's
//!   CPU clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_core::KeyPair;
use hyper_swarm::messages::{FindNode, Lookup, Packet, Ping, Reply};
use hyper_swarm::sim::{Sim, SimConfig};
use hyper_swarm::{
    Body, Config, K, Node, NodeId, PeerRecord, QueryKind, RateLimit, Reachability, encode_packet,
    sign_record, wire_address,
};

use crate::report::Line;
use crate::workloads::Result;

/// Nodes in the S1 network (divided by the scale, at least 50).
const NODES: u64 = 1000;
/// Lookups of random ids in S1 (divided by the scale, at least 10).
const LOOKUPS: u64 = 200;
/// Requests S2 answers (divided by the scale).
const REQUESTS: u64 = 100_000;
/// Nodes in the routing table of the S2 node.
const TABLE: usize = 200;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(i.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(0.0)
}

/// S1: lookup latency and hops on the simulated network.
pub fn lookups(scale: u64) -> Result<()> {
    let nodes = (NODES / scale).max(50) as usize;
    let lookups = (LOOKUPS / scale).max(10);
    let wall = Instant::now();
    // Past one table refresh, as a running network is.
    let mut sim = Sim::public_network(SimConfig::default(), nodes, Duration::from_secs(6 * 60));
    let addrs = sim.addresses();
    let pick = |sim: &mut Sim| addrs[(sim.random() % addrs.len() as u64) as usize];
    let mut latencies = Vec::new();
    let mut hops = Vec::new();
    let mut requests = Vec::new();
    let mut measure = |sim: &mut Sim, from: SocketAddr, kind: QueryKind| -> Result<()> {
        let start = sim.now();
        let outcome = sim.query(from, kind).ok_or("a lookup did not finish")?;
        latencies.push((sim.now() - start).as_secs_f64() * 1000.0);
        hops.push(outcome.hops as f64);
        requests.push(outcome.requests as f64);
        Ok(())
    };
    for _ in 0..lookups {
        let target = NodeId(sim.random_bytes());
        let from = pick(&mut sim);
        measure(&mut sim, from, QueryKind::FindNode(target))?;
    }
    // Topic lookups of announced records.
    let keypair = KeyPair::from_seed([7; 32]);
    for _ in 0..lookups / 2 {
        let topic = sim.random_bytes();
        let record = PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: Vec::new(),
            relays: Vec::new(),
            local_addresses: Vec::new(),
            timestamp: 1,
        };
        let record = sign_record(&keypair, &topic, &record);
        let from = pick(&mut sim);
        sim.query(from, QueryKind::Announce { topic, record })
            .ok_or("an announce did not finish")?;
        let from = pick(&mut sim);
        measure(&mut sim, from, QueryKind::Lookup(topic))?;
    }
    latencies.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Line::new("S1")
        .int("nodes", nodes as u64)
        .int("lookups", latencies.len() as u64)
        .num("p50_ms", percentile(&latencies, 50.0))
        .num("p99_ms", percentile(&latencies, 99.0))
        .num("mean_hops", mean(&hops))
        .num("max_hops", hops.iter().copied().fold(0.0, f64::max))
        .num("mean_requests", mean(&requests))
        .num("wall_seconds", wall.elapsed().as_secs_f64())
        .print(scale)?;
    Ok(())
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The `i`th of many source addresses (2,500 IPs, 20 ports each).
fn source(i: u64) -> SocketAddr {
    let ip = 0x0b00_0000u32 + u32::try_from(i % 2500).unwrap_or(0);
    let port = 10_000 + u16::try_from((i / 2500) % 20).unwrap_or(0);
    SocketAddr::from((std::net::Ipv4Addr::from(ip), port))
}

/// S2: CPU per 1,000 requests answered by one node.
pub fn requests(scale: u64) -> Result<()> {
    let count = (REQUESTS / scale).max(1000);
    let me: SocketAddr = "10.9.9.9:4000".parse()?;
    let mut now = Instant::now();
    let config = Config {
        reachability: Reachability::Public,
        public_address: Some(me),
        rate_limit: RateLimit {
            per_second: u32::MAX,
            burst: u32::MAX,
        },
        ..Config::default()
    };
    let mut node = Node::new(config, now, [5; 32]);
    let packet = |tid: u32, from: SocketAddr, body: Body| {
        encode_packet(&Packet {
            tid,
            id: NodeId::for_address(from).0.to_vec(),
            to: Some(wire_address(me)),
            flags: 0,
            body: Some(body),
            ..Packet::default()
        })
    };
    // 200 nodes introduce themselves with a find-node of their own id.
    // Random ids would mostly fall in the few farthest buckets (200 of
    // them leave only ~85 in the table): the addresses are picked so that
    // each id lands in a bucket with room, which gives the table of a node
    // in a network of some 10,000 (the 10 farthest buckets full).
    let local = node.id().ok_or("a public node claims its id")?;
    let mut filled = [0usize; 256];
    let mut introduced = 0u32;
    for i in 0u32.. {
        if introduced == TABLE as u32 {
            break;
        }
        let [_, a, b, c] = i.to_be_bytes();
        // One node per /24 (a table keeps at most two of one /24 per bucket).
        let from = SocketAddr::from(([10, a.wrapping_add(1), c, b], 4000));
        let id = NodeId::for_address(from);
        let Some(bucket) = local.distance(&id).bucket() else {
            continue;
        };
        let Some(n) = filled.get_mut(bucket).filter(|n| **n < K) else {
            continue;
        };
        *n += 1;
        // The node pings at most 50 requesters a second to verify them.
        now += Duration::from_millis(20);
        let find = packet(
            introduced,
            from,
            Body::FindNode(FindNode {
                target: id.0.to_vec(),
            }),
        );
        node.handle_packet(now, from, &find);
        // A requester enters the table once it answers the node's ping.
        while let Some(t) = node.poll_transmit() {
            let Some(ping) = t
                .bytes
                .get(1..)
                .and_then(|b| <Packet as prost::Message>::decode(b).ok())
                .filter(|p| matches!(p.body, Some(Body::Ping(_))))
            else {
                continue;
            };
            let pong = packet(ping.tid, t.to, Body::Reply(Reply::default()));
            node.handle_packet(now, t.to, &pong);
        }
        introduced += 1;
    }
    if node.table_len() != TABLE {
        return Err(format!("{} nodes in the table, not {TABLE}", node.table_len()).into());
    }
    let topic = [3u8; 32];
    let requests: Vec<(SocketAddr, Vec<u8>)> = (0..count)
        .map(|i| {
            // Sources claim no id here, so the table stays as it is.
            let from = source(i);
            let body = match i % 10 {
                0 => Body::Ping(Ping {}),
                1 => Body::Lookup(Lookup {
                    topic: topic.to_vec(),
                }),
                _ => Body::FindNode(FindNode {
                    target: NodeId::for_address(from).0.to_vec(),
                }),
            };
            let bytes = encode_packet(&Packet {
                tid: i as u32,
                id: Vec::new(),
                to: Some(wire_address(me)),
                flags: 0,
                body: Some(body),
                ..Packet::default()
            });
            (from, bytes)
        })
        .collect();
    let mut answers = 0u64;
    let mut answer_bytes = 0u64;
    let cpu = thread_cpu();
    let wall = Instant::now();
    for (from, bytes) in &requests {
        node.handle_packet(now, *from, bytes);
        while let Some(t) = node.poll_transmit() {
            answers += 1;
            answer_bytes += t.bytes.len() as u64;
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu).as_secs_f64();
    let wall = wall.elapsed().as_secs_f64();
    if answers != count {
        return Err(format!("{answers} answers to {count} requests").into());
    }
    Line::new("S2")
        .int("requests", count)
        .num("cpu_ms_per_1000", cpu * 1000.0 / count as f64 * 1000.0)
        .num("answers_per_sec", count as f64 / wall)
        .num("answer_bytes_mean", answer_bytes as f64 / count as f64)
        .int("table_nodes", node.table_len() as u64)
        .print(scale)?;
    Ok(())
}
