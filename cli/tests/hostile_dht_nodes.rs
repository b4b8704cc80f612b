//! Issue 17's DHT node cases against real `hyper-cli dht node` processes:
//! what the hostile UDP peer of the swarm's tests
//! (`swarm/tests/hostile/mod.rs`) gets back for its requests from an
//! address that never proved itself (at most 3x, limits per /24, no
//! `PingTarget` at a victim), whether forged pings or Sybils take places in
//! a node's answers, and whether far-future, replayed or unannounced
//! records take a topic from a `seed` process. Honest lookups and clones
//! still work after each attack.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::messages::{self, Packet, Ping};
use hyper_swarm::{
    Body, Config, Dht, NodeId, PeerRecord, QueryKind, Reachability, Reply, encode_packet,
    sign_record, sign_unannounce, wire_address,
};
use prost::Message as _;
use tokio::task::spawn_blocking;
use tokio::time::{sleep, timeout};

mod common;
#[path = "common/hostile_dht.rs"]
mod helpers;
#[path = "../../swarm/tests/hostile/mod.rs"]
mod hostile;

use common::ok;
use helpers::{client_on, dht_node, hyper, seeder, topic_of, writer};
use hostile::{Victim, bind, decode, exchange, packet, reads};

/// Clones `key` into a fresh store under `dir` through `nodes` (DHT
/// only); the `--json` summary of a clone that must have succeeded.
async fn clone_through(dir: &std::path::Path, key: &str, nodes: &str) -> String {
    let store = dir.join("r");
    let args: Vec<String> = [
        "--store",
        store.to_str().expect("path"),
        "clone",
        key,
        "--json",
        "--no-local",
        "--retry-for",
        "20",
        "--bootstrap",
        nodes,
    ]
    .map(String::from)
    .to_vec();
    spawn_blocking(move || ok(hyper(&[]).args(&args).output().expect("clone")))
        .await
        .expect("clone thread")
}

// ---------------------------------------------------------------------
// 3 and 6. A `dht node` process's table and answers.

/// `n` honest library nodes (public, each at its own port) joined
/// through `boot`: they fill its table with nodes that answer.
async fn honest_nodes(boot: SocketAddr, n: usize) -> Vec<Dht> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr");
        drop(socket);
        let config = Config {
            bootstrap: vec![boot],
            reachability: Reachability::Public,
            public_address: Some(addr),
            ..Config::default()
        };
        nodes.push(Dht::bind(addr, config).await.expect("node"));
    }
    for node in &nodes {
        timeout(Duration::from_secs(20), node.bootstrapped())
            .await
            .expect("bootstrapped in time")
            .expect("running");
    }
    nodes
}

/// The closer nodes of a reply.
fn closer(answer: &Packet) -> Vec<SocketAddr> {
    match &answer.body {
        Some(Body::Reply(reply)) => reply
            .closer
            .iter()
            .filter_map(|n| n.address.as_ref().and_then(hyper_swarm::socket_address))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_node_process_answers_an_unproven_address_with_at_most_three_times_its_request() {
    let (_node, target) = dht_node(false).await;
    let _honest = honest_nodes(target, 12).await;
    let forged = bind([127, 0, 20, 9]).await;
    let mut full = 0;
    for (tid, body) in reads([0x33; 32]).into_iter().enumerate() {
        let request = packet(tid as u32, target, body.clone());
        let sent = encode_packet(&request).len();
        let (got, answer) = exchange(&forged, target, &request).await.expect("answered");
        assert!(got <= 3 * sent, "{got} bytes answered {sent} ({body:?})");
        // Padded to a third of a packet, or with the first answer's
        // token, the whole answer comes, and it fits one packet.
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
            let (got, answer) = exchange(&forged, target, &request).await.expect("answered");
            assert!(got <= hyper_swarm::MAX_PACKET, "{got} bytes in one answer");
            if closer(&answer).len() >= 10 {
                full += 1;
                // A first node given port 0 serves under the id of the
                // port it got (on loopback ids hash the port).
                assert_eq!(
                    answer.id,
                    NodeId::for_address(target).0.to_vec(),
                    "the id the node's address gives"
                );
            }
        }
    }
    assert_eq!(full, 8, "find-node, lookup and both gets answered in full");
}

#[tokio::test]
async fn a_node_process_cannot_be_aimed_at_a_victim_and_limits_each_slash_24() {
    let (_node, node) = dht_node(false).await;
    let victim = Victim::bind([127, 0, 21, 11], 1).await;
    let attacker = bind([127, 0, 21, 12]).await;
    for tid in 0..50 {
        let request = packet(
            tid,
            node,
            Body::PingTarget(messages::PingTarget {
                target: Some(wire_address(victim.addresses[0])),
            }),
        );
        attacker
            .send_to(&encode_packet(&request), node)
            .await
            .expect("send");
    }
    // Pings in the victim's name: each answer within 3x the ping.
    let spoof = victim.forger(0);
    let mut sent_as_victim = 0u64;
    for tid in 0..50 {
        let ping = encode_packet(&packet(tid, node, Body::Ping(Ping {})));
        sent_as_victim += ping.len() as u64;
        spoof.send_to(&ping, node).await.expect("send");
    }
    sleep(Duration::from_millis(500)).await;
    let received = victim.bytes();
    assert!(
        received <= 3 * sent_as_victim,
        "{received} bytes reached the victim for {sent_as_victim} sent in its name \
         (a PingTarget from an unproven requester must add nothing)"
    );
    // 100 addresses of one /24, 20 pings each: one bucket of 400 (+200/s).
    let mut sockets = Vec::new();
    for host in 1..=100u8 {
        sockets.push(bind([127, 0, 22, host]).await);
    }
    let start = Instant::now();
    for round in 0..20 {
        for socket in &sockets {
            let ping = encode_packet(&packet(round, node, Body::Ping(Ping {})));
            socket.send_to(&ping, node).await.expect("send");
        }
    }
    let mut answers = 0u64;
    let mut buf = vec![0u8; 2048];
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    for socket in &sockets {
        while let Ok(Ok(_)) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
            answers += 1;
        }
    }
    let bound = 400 + 200 * (start.elapsed().as_secs() + 1);
    assert!(
        answers <= bound,
        "{answers} answers to one /24 (bound {bound})"
    );
    // Another /24 is still answered.
    let other = bind([127, 0, 23, 1]).await;
    assert!(
        exchange(&other, node, &packet(1, node, Body::Ping(Ping {})))
            .await
            .is_some(),
        "another /24 is answered"
    );
}

#[tokio::test]
async fn forged_pings_do_not_enter_a_node_process_table() {
    let (_node, node) = dht_node(false).await;
    let honest = honest_nodes(node, 3).await;
    // 50 pings from addresses that never answer (forged sources), each
    // claiming the id its address gives it.
    let forged = Victim::bind([127, 0, 24, 1], 50).await;
    for (i, at) in forged.addresses.iter().enumerate() {
        let ping = Packet {
            id: NodeId::for_address(*at).0.to_vec(),
            ..packet(i as u32, node, Body::Ping(Ping {}))
        };
        let _ = forged.forger(i).send_to(&encode_packet(&ping), node).await;
    }
    // Long enough for the node's pings to them to time out.
    sleep(Duration::from_secs(3)).await;
    let asker = bind([127, 0, 24, 200]).await;
    let mut seen = Vec::new();
    for (i, at) in forged.addresses.iter().enumerate().step_by(10) {
        let request = Packet {
            padding: vec![0; 480],
            ..packet(
                1000 + i as u32,
                node,
                Body::FindNode(messages::FindNode {
                    target: NodeId::for_address(*at).0.to_vec(),
                }),
            )
        };
        let (_, answer) = exchange(&asker, node, &request).await.expect("answered");
        seen.extend(closer(&answer));
    }
    assert!(
        seen.iter().all(|a| !forged.addresses.contains(a)),
        "a forged source was answered as a node: {seen:?}"
    );
    for h in &honest {
        assert!(
            seen.contains(&h.local_addr()),
            "the honest node {} is in the answers: {seen:?}",
            h.local_addr()
        );
    }
}

// ---------------------------------------------------------------------
// 4. Records on a `dht node` process.

/// Now, in Unix milliseconds.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A record of `keypair` for `topic`, reachable at `at`, made at `timestamp`.
fn record(
    keypair: &KeyPair,
    topic: &[u8; 32],
    at: SocketAddr,
    timestamp: u64,
) -> messages::SignedRecord {
    sign_record(
        keypair,
        topic,
        &PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: vec![wire_address(at)],
            timestamp,
            ..PeerRecord::default()
        },
    )
}

/// Announces `record` under `topic` from `dht`; the nodes that stored it.
async fn announce(dht: &Dht, topic: [u8; 32], record: messages::SignedRecord) -> Vec<SocketAddr> {
    dht.query(QueryKind::Announce { topic, record })
        .await
        .expect("announce query")
        .stored_at
}

/// The keys a lookup of `topic` through `dht` finds.
async fn announcers(dht: &Dht, topic: [u8; 32]) -> Vec<PublicKey> {
    dht.query(QueryKind::Lookup(topic))
        .await
        .expect("lookup")
        .records
        .into_iter()
        .map(|r| r.public_key)
        .collect()
}

#[tokio::test]
async fn future_and_replayed_records_do_not_take_a_topic_from_a_seeding_process() {
    let (_node, node) = dht_node(false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, key) = writer(dir.path()).await;
    let topic = topic_of(&key);
    let _seeder = seeder(&store, &key, &node.to_string()).await;
    let attacker = client_on([127, 0, 26, 1], node).await;
    let honest = announcers(&attacker, topic).await;
    assert_eq!(honest.len(), 1, "the seeder's record: {honest:?}");
    // Records a year ahead are refused; one made now, from the same
    // address, is stored (the attacker is heard).
    let at = attacker.local_addr();
    for i in 0..10u8 {
        let keypair = KeyPair::from_seed([100 + i; 32]);
        let ahead = record(&keypair, &topic, at, now_ms() + 365 * 24 * 3_600_000);
        let stored = announce(&attacker, topic, ahead).await;
        assert!(stored.is_empty(), "a year ahead was stored on {stored:?}");
    }
    let keypair = KeyPair::from_seed([99; 32]);
    let stored = announce(&attacker, topic, record(&keypair, &topic, at, now_ms())).await;
    assert!(stored.contains(&node), "a record made now is stored");
    // 60 records a minute ahead from one /24, all at once.
    let mut announces = tokio::task::JoinSet::new();
    for i in 0..60u8 {
        let keypair = KeyPair::from_seed([120 + i; 32]);
        let signed = record(&keypair, &topic, at, now_ms() + 60_000);
        let attacker = attacker.clone();
        announces.spawn(async move { announce(&attacker, topic, signed).await });
    }
    while let Some(done) = announces.join_next().await {
        done.expect("announce task");
    }
    // An honest reader on another /24 (the attacker's is past its rate
    // limit) still finds the seeder.
    let reader = client_on([127, 0, 29, 1], node).await;
    assert!(
        announcers(&reader, topic).await.contains(&honest[0]),
        "the seeder's record is still found"
    );
    // The seeder's signed record, captured and replayed from another
    // attacker's address, is refused.
    let attacker = client_on([127, 0, 30, 1], node).await;
    let reply = attacker
        .request(
            node,
            Body::Lookup(messages::Lookup {
                topic: topic.to_vec(),
            }),
        )
        .await
        .expect("lookup answered");
    let captured = reply
        .records
        .into_iter()
        .find(|signed| {
            PeerRecord::decode(signed.record.as_slice())
                .is_ok_and(|r| r.public_key == honest[0].0.to_vec())
        })
        .expect("the seeder's signed record");
    let stored = announce(&attacker, topic, captured).await;
    assert!(stored.is_empty(), "the replay was stored on {stored:?}");
    // Connects still go to the seeder: a clone gets the whole core.
    let json = clone_through(dir.path(), &key, &node.to_string()).await;
    assert!(json.contains("\"blocks\":200"), "{json}");
}

#[tokio::test]
async fn an_unannounced_record_does_not_come_back_to_a_node_process() {
    let (_node, node) = dht_node(false).await;
    let topic = [0x4e; 32];
    let announcer = client_on([127, 0, 27, 1], node).await;
    let keypair = KeyPair::generate().expect("keys");
    let signed = record(&keypair, &topic, announcer.local_addr(), now_ms());
    let stored = announce(&announcer, topic, signed.clone()).await;
    assert_eq!(stored, vec![node], "stored on the node");
    assert_eq!(
        announcers(&announcer, topic).await,
        vec![keypair.public_key()]
    );
    announcer
        .query(QueryKind::Unannounce(sign_unannounce(
            &keypair,
            &topic,
            now_ms(),
        )))
        .await
        .expect("unannounce");
    // The old record replayed, from the announcer's own IP.
    let replayer = client_on([127, 0, 27, 1], node).await;
    let stored = announce(&replayer, topic, signed).await;
    assert!(stored.is_empty(), "the old record came back on {stored:?}");
    assert!(
        announcers(&replayer, topic).await.is_empty(),
        "the unannounced record is found"
    );
}

// ---------------------------------------------------------------------
// 3. Sybils on global addresses (the NAT lab's 198.18.0.0/16: loopback
// and private networks are exempt from the per-address caps).

/// A Sybil: a socket at `socket`'s address that pings `node` under the id
/// its address gives it and answers every request for `within`.
fn sybil(socket: std::net::UdpSocket, node: SocketAddr, within: Duration) {
    let me = socket.local_addr().expect("addr");
    let id = NodeId::for_address(me).0.to_vec();
    let claim = |tid, body| {
        encode_packet(&Packet {
            id: id.clone(),
            ..packet(tid, node, body)
        })
    };
    let _ = socket.send_to(&claim(1, Body::Ping(Ping {})), node);
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let until = Instant::now() + within;
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < until {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some(request) = buf.get(..len).and_then(decode) else {
            continue;
        };
        if !matches!(request.body, Some(Body::Reply(_) | Body::Error(_)) | None) {
            let reply = Reply {
                token: vec![7; 32],
                ..Reply::default()
            };
            let _ = socket.send_to(&claim(request.tid, Body::Reply(reply)), from);
        }
    }
}

#[test]
fn sybils_on_twenty_ports_of_one_ip_take_one_place_in_a_node_process_answers() {
    let Some(mut lab) = common::netlab::lab_or_skip() else {
        return;
    };
    let host = lab.public_host("node").expect("node host");
    let sybils: Vec<_> = (0..3)
        .map(|i| lab.public_host(&format!("sybil{i}")).expect("sybil host"))
        .collect();
    let node = SocketAddr::from((host.ip, 49737));
    let (_node, _) = common::start_until(
        {
            let mut c = host.command(env!("CARGO_BIN_EXE_hyper-cli"));
            c.args(["dht", "node", "--listen", &node.to_string()])
                .env_remove("HYPER_BOOTSTRAP");
            c
        },
        "dht node listening on ",
    );
    // 20 ports on each of three IPs of one /24, all answering as nodes.
    let running: Vec<_> = sybils
        .iter()
        .flat_map(|h| {
            (0..20).map(move |_| {
                let ip = h.ip;
                h.run(move || {
                    let socket = std::net::UdpSocket::bind((ip, 0)).expect("bind");
                    std::thread::spawn(move || sybil(socket, node, Duration::from_secs(6)))
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    // What the node answers a find-node for a Sybil's id.
    let target = NodeId::for_address(SocketAddr::from((sybils[0].ip, 1)));
    let asker = sybils[0].ip;
    let answer = sybils[0]
        .run(move || {
            let socket = std::net::UdpSocket::bind((asker, 0)).expect("bind");
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let request = Packet {
                padding: vec![0; 480],
                ..packet(
                    9,
                    node,
                    Body::FindNode(messages::FindNode {
                        target: target.0.to_vec(),
                    }),
                )
            };
            socket
                .send_to(&encode_packet(&request), node)
                .expect("send");
            let mut buf = vec![0u8; 65_536];
            let (len, _) = socket.recv_from(&mut buf).expect("an answer");
            buf.get(..len).and_then(decode).expect("a packet")
        })
        .join()
        .expect("asker");
    let entries = closer(&answer);
    for h in &sybils {
        let of_ip = entries.iter().filter(|a| a.ip() == h.ip).count();
        assert!(of_ip <= 1, "{of_ip} entries of {}: {entries:?}", h.ip);
    }
    assert!(
        (1..=hyper_swarm::MAX_PER_PREFIX).contains(&entries.len()),
        "one /24 takes at most {} places, and the Sybils did answer: {entries:?}",
        hyper_swarm::MAX_PER_PREFIX
    );
    for r in running {
        let _ = r.join().expect("namespace thread").join();
    }
}
