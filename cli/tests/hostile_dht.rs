//! Issue 17's DHT and swarm cases against real `hyper-cli` processes on
//! loopback: the hostile UDP peer of the swarm's tests
//! (`swarm/tests/hostile/mod.rs`) forges sources from other 127.x.y.z
//! addresses and lies to `dht node`, `seed` and `clone` processes; victims
//! are sockets that only count the bytes reaching them. Each test asserts
//! the limit that holds (bytes at a victim per byte the attacker sent,
//! what a node answers, what a lookup finds) and that honest peers are
//! still served.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, KeyPair, PublicKey};
use hyper_swarm::messages::{self, FLAG_RELAY, NatKind, Packet, Ping};
use hyper_swarm::{
    Attempt, Body, Config, Dht, Ephemeral, NodeId, PeerRecord, QueryKind, Reachability, Reply,
    encode_packet, sign_record, sign_unannounce, wire_address,
};
use prost::Message as _;
use tokio::net::UdpSocket;
use tokio::task::spawn_blocking;
use tokio::time::{sleep, timeout};

mod common;
#[path = "../../swarm/tests/hostile/mod.rs"]
mod hostile;
#[allow(dead_code)] // the soak's half of the driver is the bench's
#[path = "../../benches/src/soak/procs.rs"]
mod procs;

use common::{Running, ok, writer_of};
use hostile::{FakeNode, Victim, bind, connect_forward, decode, hello, packet, register};

/// A `hyper-cli` command with `$HYPER_BOOTSTRAP` cleared.
fn hyper(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command.args(args).env_remove("HYPER_BOOTSTRAP");
    command
}

/// Starts `command` off the runtime and waits for a stdout line starting
/// with `ready`; the process and the rest of that line.
async fn start(command: Command, ready: &'static str) -> (Running, String) {
    spawn_blocking(move || common::start_until(command, ready))
        .await
        .expect("start thread")
}

/// A `dht node` process listening on loopback (`--relay` if `relay`),
/// bootstrapped from `bootstrap` if any; the process and its address.
async fn dht_node(relay: bool, bootstrap: Option<String>) -> (Running, SocketAddr) {
    let mut args = vec!["dht", "node", "--listen", "127.0.0.1:0"];
    if relay {
        args.push("--relay");
    }
    let mut command = hyper(&args);
    if let Some(nodes) = bootstrap {
        command.args(["--bootstrap", &nodes]);
    }
    let (node, rest) = start(command, "dht node listening on ").await;
    let addr = rest
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("the node's address");
    (node, addr)
}

/// A store in `dir` holding a core of 200 lines; the store and its key.
async fn writer(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let store = dir.join("w");
    let at = store.clone();
    let key = spawn_blocking(move || writer_of(&at, 200))
        .await
        .expect("writer thread");
    (store, key)
}

/// The DHT topic a core is announced under.
fn topic_of(key: &str) -> [u8; 32] {
    key.parse::<CoreKey>()
        .expect("a core key")
        .discovery_key()
        .0
}

/// `hyper-cli --store STORE seed KEY --no-local --bootstrap NODES`,
/// waiting until it announced.
async fn seeder(store: &std::path::Path, key: &str, nodes: &str) -> Running {
    let command = hyper(&[
        "--store",
        store.to_str().expect("path"),
        "seed",
        key,
        "--no-local",
        "--bootstrap",
        nodes,
    ]);
    start(command, "announced").await.0
}

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

/// The answer to `request` sent from `socket` to `to`: its size and
/// packet, if one came within half a second.
async fn exchange(socket: &UdpSocket, to: SocketAddr, request: &Packet) -> Option<(usize, Packet)> {
    socket
        .send_to(&encode_packet(request), to)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65_536];
    let (len, _) = timeout(Duration::from_millis(500), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some((len, decode(buf.get(..len)?)?))
}

/// Resident memory (KiB) and open descriptors of `process`.
fn footprint(process: &Running) -> (u64, u64) {
    let usage = procs::usage(process.0.id()).expect("/proc readable");
    (usage.rss_kib, usage.fds.total())
}

// ---------------------------------------------------------------------
// 1. Connect forwards and hole punching.

/// A fake DHT node that answers as the only node and keeps the identity
/// of whoever announced to it.
async fn holder_keeping_announcers(ip: [u8; 4]) -> (FakeNode, Arc<Mutex<Vec<PublicKey>>>) {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let kept = keys.clone();
    let script: hostile::Script = Arc::new(move |request: &Packet, _| {
        if let Some(Body::Announce(messages::Announce {
            record: Some(signed),
            ..
        })) = &request.body
            && let Ok(record) = PeerRecord::decode(signed.record.as_slice())
            && let Ok(key) = <[u8; 32]>::try_from(record.public_key.as_slice())
        {
            kept.lock().expect("lock").push(PublicKey(key));
        }
        None
    });
    (FakeNode::scripted(ip, script).await, keys)
}

#[tokio::test]
async fn a_seeding_process_probes_nobody_for_a_stranger_and_little_for_its_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, key) = writer(dir.path()).await;
    let topic = topic_of(&key);
    let (holder, keys) = holder_keeping_announcers([127, 0, 17, 2]).await;
    let _seeder = seeder(&store, &key, &holder.addr.to_string()).await;
    let at = holder
        .announcer(topic, Duration::from_secs(10))
        .await
        .expect("the seeder announced to the holder");
    let server = *keys.lock().expect("lock").first().expect("its key");
    let stranger = FakeNode::start([127, 0, 17, 3]).await;
    let victim = Victim::bind([127, 0, 17, 5], 3).await;
    let bystander = Victim::bind([127, 0, 17, 6], 2).await;
    // Duplicates and another host's addresses among the targets.
    let mut targets = victim.addresses.clone();
    targets.extend(victim.addresses.iter().copied());
    targets.extend(bystander.addresses.iter().copied());
    let forward = |tid| {
        connect_forward(
            tid,
            at,
            topic,
            server,
            victim.addresses[0],
            &targets,
            NatKind::Consistent,
        )
    };
    for tid in 0..20 {
        stranger.send(at, &forward(tid)).await;
    }
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        victim.datagrams() + bystander.datagrams(),
        0,
        "a forward from a node that holds no announcement probes nobody"
    );
    // The holder lies: 20 forwards at once, each naming five targets.
    for tid in 100..120 {
        holder.send(at, &forward(tid)).await;
    }
    sleep(Duration::from_secs(4)).await;
    let (sent, received) = (holder.sent(), victim.bytes());
    assert!(received > 0, "a holder's forward is acted on");
    assert_eq!(bystander.datagrams(), 0, "only the IP the holder saw");
    // At most 8 punches at once, 2 targets each, 6 probes per target.
    assert!(
        victim.datagrams() <= 8 * 2 * 6,
        "{} probes reached the victim",
        victim.datagrams()
    );
    assert!(
        received <= sent,
        "{received} bytes reached the victim for {sent} bytes sent"
    );
}

/// The answer a liar holding `liar`'s record gives a client's connect:
/// a signed holepunch naming `targets`.
fn lying_answer(
    liar: &KeyPair,
    topic: [u8; 32],
    offer: &messages::Holepunch,
    targets: &[SocketAddr],
) -> Option<Reply> {
    let attempt = Attempt {
        topic,
        client: PublicKey(offer.public_key.as_slice().try_into().ok()?),
        server: liar.public_key(),
    };
    let client_ephemeral = attempt.verify_offer(offer)?;
    let ephemeral = Ephemeral::from_secret(KeyPair::generate().ok()?.seed());
    Some(Reply {
        holepunch: Some(messages::Holepunch {
            public_key: liar.public_key().0.to_vec(),
            addresses: targets.iter().map(|a| wire_address(*a)).collect(),
            nat: NatKind::Consistent as i32,
            relay: None,
            ephemeral: ephemeral.public.to_vec(),
            signature: attempt
                .sign_answer(liar, &client_ephemeral, &ephemeral)
                .0
                .to_vec(),
        }),
        ..Reply::default()
    })
}

#[tokio::test]
async fn a_fake_holder_answering_a_cloning_process_gets_a_few_probes_at_one_ip() {
    let key = KeyPair::generate().expect("keys").public_key().to_string();
    let topic = topic_of(&key);
    let victim = Victim::bind([127, 0, 17, 7], 3).await;
    let bystander = Victim::bind([127, 0, 17, 8], 2).await;
    let mut targets = victim.addresses.clone();
    targets.extend(victim.addresses.iter().copied());
    targets.extend(bystander.addresses.iter().copied());
    let liar = KeyPair::generate().expect("keys");
    let record = sign_record(
        &liar,
        &topic,
        &PeerRecord {
            public_key: liar.public_key().0.to_vec(),
            timestamp: 1,
            ..PeerRecord::default()
        },
    );
    let script: hostile::Script = Arc::new(move |request: &Packet, _| match &request.body {
        Some(Body::Lookup(_)) => Some(Reply {
            token: vec![7; 32],
            records: vec![record.clone()],
            ..Reply::default()
        }),
        Some(Body::Connect(connect)) => {
            lying_answer(&liar, topic, connect.holepunch.as_ref()?, &targets)
        }
        _ => None,
    });
    let fake = FakeNode::scripted([127, 0, 17, 4], script).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("r");
    let args: Vec<String> = [
        "--store",
        store.to_str().expect("path"),
        "clone",
        &key,
        "--no-local",
        "--retry-for",
        "6",
        "--bootstrap",
        &fake.addr.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let out = spawn_blocking(move || hyper(&[]).args(&args).output().expect("clone"))
        .await
        .expect("clone thread");
    assert!(!out.status.success(), "nobody real serves the core");
    sleep(Duration::from_millis(300)).await;
    let (sent, received) = (fake.sent(), victim.bytes());
    assert!(sent > 0, "the clone asked the fake holder");
    assert_eq!(bystander.datagrams(), 0, "only the first address's IP");
    assert!(
        received <= sent,
        "{received} bytes reached the victim for {sent} bytes the fake holder sent"
    );
}

// ---------------------------------------------------------------------
// 2. The blind relay of a `dht node --relay` process.

/// A QUIC-looking datagram of `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut out = vec![0x55; len];
    out[0] = 0x40;
    out
}

#[tokio::test]
async fn a_relay_process_pairs_no_victim_with_a_forged_registration() {
    let (_node, relay) = dht_node(true, None).await;
    let victim = Victim::bind([127, 0, 18, 21], 1).await;
    // The attacker's hellos leave from the victim's address; it never sees
    // the answers (the victim does).
    let session = [0x42u8; 32];
    let spoof = victim.forger(0);
    let mut sent_as_victim = 0u64;
    for _ in 0..10 {
        let h = hello(session);
        sent_as_victim += h.len() as u64;
        spoof.send_to(&h, relay).await.expect("send");
    }
    let attacker = bind([127, 0, 18, 22]).await;
    assert!(
        register(&attacker, relay, session).await,
        "the attacker's own side registers"
    );
    for _ in 0..100 {
        attacker.send_to(&payload(1000), relay).await.expect("send");
    }
    sleep(Duration::from_millis(500)).await;
    let received = victim.bytes();
    // The victim gets at most the cookies for the hellos sent in its name.
    assert!(
        received <= 2 * sent_as_victim,
        "{received} bytes reached the victim for {sent_as_victim} sent in its name"
    );
}

/// Sends `count` hellos that never echo their cookie, each from a fresh
/// socket on the address `ip(i)` gives.
async fn half_open(relay: SocketAddr, count: u32, ip: impl Fn(u32) -> [u8; 4]) {
    for i in 0..count {
        let socket = bind(ip(i)).await;
        let mut session = [0x99u8; 32];
        session[..4].copy_from_slice(&i.to_be_bytes());
        session[4] = ip(i)[2];
        socket.send_to(&hello(session), relay).await.expect("send");
    }
}

/// Drains what `socket` has queued.
async fn drain(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    while timeout(Duration::from_millis(50), socket.recv_from(&mut buf))
        .await
        .is_ok()
    {}
}

#[tokio::test]
async fn a_relay_process_keeps_a_live_session_through_floods_and_forged_registrations() {
    let (node, relay) = dht_node(true, None).await;
    let (rss_before, fds_before) = footprint(&node);
    // 1,100 registrations that never complete from one IP, then 1,000
    // from one /24.
    half_open(relay, 1100, |_| [127, 0, 18, 50]).await;
    half_open(relay, 1000, |i| [127, 0, 19, 1 + (i % 250) as u8]).await;
    sleep(Duration::from_millis(300)).await;
    let one = bind([127, 0, 18, 31]).await;
    let two = bind([127, 0, 18, 32]).await;
    let session = [0x17u8; 32];
    assert!(register(&one, relay, session).await, "the first side");
    assert!(register(&two, relay, session).await, "the second side");
    // Forged registrations of another session in the first side's name
    // (from its address, as a spoofer would): a made-up cookie, and a
    // bare hello.
    let mut forged = hello([0x18; 32]);
    forged.extend_from_slice(&[0x33; 32]);
    one.send_to(&forged, relay).await.expect("send");
    one.send_to(&hello([0x18; 32]), relay).await.expect("send");
    sleep(Duration::from_millis(200)).await;
    drain(&two).await;
    drain(&one).await;
    one.send_to(&payload(200), relay).await.expect("send");
    let mut buf = [0u8; 2048];
    let got = timeout(Duration::from_secs(1), two.recv_from(&mut buf)).await;
    assert!(
        matches!(got, Ok(Ok((200, _)))),
        "the live session still carries data: {got:?}"
    );
    // The floods left the process no fatter: half-open state is small and
    // bounded, and no socket was opened for it.
    let (rss_after, fds_after) = footprint(&node);
    assert!(
        rss_after <= rss_before + 8 * 1024,
        "resident memory {rss_before} KiB -> {rss_after} KiB"
    );
    assert_eq!(fds_after, fds_before, "open descriptors");
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

fn reads(target: [u8; 32]) -> Vec<Body> {
    vec![
        Body::FindNode(messages::FindNode {
            target: target.to_vec(),
        }),
        Body::Lookup(messages::Lookup {
            topic: target.to_vec(),
        }),
        Body::ImmutableGet(messages::ImmutableGet {
            target: target.to_vec(),
        }),
        Body::MutableGet(messages::MutableGet {
            target: target.to_vec(),
            seq: 0,
        }),
        Body::Ping(Ping {}),
    ]
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
    let (_node, target) = dht_node(false, None).await;
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
            }
        }
    }
    assert_eq!(full, 8, "find-node, lookup and both gets answered in full");
}

#[tokio::test]
async fn a_node_process_cannot_be_aimed_at_a_victim_and_limits_each_slash_24() {
    let (_node, node) = dht_node(false, None).await;
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
    let (_node, node) = dht_node(false, None).await;
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

/// A client-only library node on `ip` that joined through `node`.
async fn client_on(ip: [u8; 4], node: SocketAddr) -> Dht {
    let config = Config {
        bootstrap: vec![node],
        reachability: Reachability::Ephemeral,
        ..Config::default()
    };
    let dht = Dht::bind(SocketAddr::from((ip, 0)), config)
        .await
        .expect("client");
    dht.bootstrapped().await.expect("bootstrapped");
    dht
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
    let (_node, node) = dht_node(false, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, key) = writer(dir.path()).await;
    let topic = topic_of(&key);
    let _seeder = seeder(&store, &key, &node.to_string()).await;
    let attacker = client_on([127, 0, 26, 1], node).await;
    let honest = announcers(&attacker, topic).await;
    assert_eq!(honest.len(), 1, "the seeder's record: {honest:?}");
    // 40 records a year ahead, and 60 a minute ahead, from one /24.
    let at = attacker.local_addr();
    for i in 0..100u8 {
        let keypair = KeyPair::from_seed([100 + i; 32]);
        let ahead = if i < 40 { 365 * 24 * 3_600_000 } else { 60_000 };
        let stored = announce(
            &attacker,
            topic,
            record(&keypair, &topic, at, now_ms() + ahead),
        )
        .await;
        if i < 40 {
            assert!(stored.is_empty(), "a year ahead was stored on {stored:?}");
        }
    }
    assert!(
        announcers(&attacker, topic).await.contains(&honest[0]),
        "the seeder's record is still found"
    );
    // The seeder's signed record, captured and replayed from the
    // attacker's address, is refused.
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
    let (_node, node) = dht_node(false, None).await;
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
// 5. Votes, ids and the relay flag.

/// A socket on loopback that never answers: a bootstrap node that lets a
/// test learn a process's DHT address (and a tid of its) from its first
/// request, then lie to it before any real answer could change much.
struct Silent {
    addr: SocketAddr,
    first: tokio::sync::oneshot::Receiver<(SocketAddr, u32)>,
}

impl Silent {
    async fn start() -> Silent {
        let socket = bind([127, 0, 0, 1]).await;
        let addr = socket.local_addr().expect("addr");
        let (tell, first) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut tell = Some(tell);
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                if let (Some(request), Some(tell)) = (buf.get(..len).and_then(decode), tell.take())
                {
                    let _ = tell.send((from, request.tid));
                }
            }
        });
        Silent { addr, first }
    }
}

/// Lies to `victim` from `nets` /24s (127.0.NET.1): answers to every tid
/// near `tid` (none from the address asked) naming `to` as its address,
/// with the relay flag and the id each liar's address gives it, then a
/// ping each saying the same.
async fn lie_to(victim: SocketAddr, tid: u32, to: SocketAddr, nets: std::ops::Range<u8>) {
    for net in nets {
        let liar = bind([127, 0, net, 1]).await;
        let id = NodeId::for_address(liar.local_addr().expect("addr"))
            .0
            .to_vec();
        let claim = |tid, body| Packet {
            id: id.clone(),
            flags: FLAG_RELAY,
            ..packet(tid, to, body)
        };
        for offset in 0..=200u32 {
            let t = tid.wrapping_sub(100).wrapping_add(offset);
            let reply = claim(t, Body::Reply(Reply::default()));
            let _ = liar.send_to(&encode_packet(&reply), victim).await;
        }
        let ping = claim(7, Body::Ping(Ping {}));
        let _ = liar.send_to(&encode_packet(&ping), victim).await;
    }
}

#[tokio::test]
async fn unsolicited_replies_and_a_forged_to_do_not_move_a_fresh_node_process() {
    let (_boot, boot) = dht_node(false, None).await;
    let mut silent = Silent::start().await;
    let mut command = hyper(&[
        "dht",
        "node",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap",
        &format!("{boot},{}", silent.addr),
    ]);
    command.stderr(Stdio::piped());
    let (fresh, _) = start_with_stderr(command).await;
    let (lines, mut node) = fresh;
    let (at, tid) = timeout(Duration::from_secs(10), &mut silent.first)
        .await
        .expect("the fresh node wrote to every bootstrap node")
        .expect("first request");
    let fake: SocketAddr = "127.0.99.99:4242".parse().expect("addr");
    // Ten /24s outvote the one honest answerer, if unsolicited answers
    // counted; the pings then say the fake address reached it.
    lie_to(at, tid, fake, 40..50).await;
    sleep(Duration::from_secs(1)).await;
    // A stranger (an address it never wrote to) reaches it at its real
    // address: it serves there if the votes still agree on that address.
    let stranger = bind([127, 0, 0, 1]).await;
    let ping = encode_packet(&packet(3, at, Body::Ping(Ping {})));
    stranger.send_to(&ping, at).await.expect("send");
    let serving = spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(10);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("serving as node ") => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("stderr thread");
    let expected = format!(
        "serving as node {} at {at}",
        NodeId::for_address(at).0[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(
        serving.as_deref(),
        Some(expected.as_str()),
        "the node serves under its real address and the id it gives, not at {fake}"
    );
    let _ = node.0.kill();
}

/// Spawns `command` (stderr piped) and waits for its `dht node
/// listening on` line; a channel of its stderr lines, the process, and the
/// rest of the line.
async fn start_with_stderr(mut command: Command) -> ((mpsc::Receiver<String>, Running), String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let rest = spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let rest = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("dht node listening on ").map(str::to_string));
        std::thread::spawn(move || for _ in lines {});
        rest
    })
    .await
    .expect("stdout thread")
    .expect("the node printed its address");
    ((lines, running), rest)
}

#[tokio::test]
async fn a_relay_flag_from_a_stranger_does_not_enter_a_seeding_process_record() {
    let (_relay, relay) = dht_node(true, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, key) = writer(dir.path()).await;
    let topic = topic_of(&key);
    let mut silent = Silent::start().await;
    let nodes = format!("{relay},{}", silent.addr);
    let liars = tokio::spawn(async move {
        let (at, tid) = timeout(Duration::from_secs(10), &mut silent.first)
            .await
            .expect("the seeder wrote to every bootstrap node")
            .expect("first request");
        lie_to(at, tid, at, 50..60).await;
    });
    let _seeder = seeder(&store, &key, &nodes).await;
    liars.await.expect("liars");
    let lookup = client_on([127, 0, 28, 1], relay).await;
    let found = lookup
        .query(QueryKind::Lookup(topic))
        .await
        .expect("lookup")
        .records;
    let [found] = found.as_slice() else {
        panic!("one record: {found:?}");
    };
    let relays: Vec<SocketAddr> = found
        .record
        .relays
        .iter()
        .filter_map(hyper_swarm::socket_address)
        .collect();
    assert_eq!(
        relays,
        vec![relay],
        "only the relay that answered the seeder is named"
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
