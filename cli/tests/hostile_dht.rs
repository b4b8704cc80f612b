//! Issue 17's connect, relay and own-address cases against real
//! `hyper-cli` processes on loopback: the hostile UDP peer of the swarm's
//! tests (`swarm/tests/hostile/mod.rs`) forges sources from other
//! 127.x.y.z addresses and lies to `dht node`, `seed` and `clone`
//! processes; victims are sockets that only count the bytes reaching them.
//! Each test asserts the limit that holds (bytes at a victim per byte the
//! attacker sent, what a process announces or serves under) and that
//! honest peers are still served. (`hostile_dht_nodes.rs` has the
//! tables, answers and records of a `dht node` process.)

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::messages::{self, FLAG_RELAY, NatKind, Packet, Ping};
use hyper_swarm::{Body, NodeId, PeerRecord, QueryKind, Reply, encode_packet, sign_record};
use prost::Message as _;
use tokio::net::UdpSocket;
use tokio::task::spawn_blocking;
use tokio::time::{sleep, timeout};

mod common;
#[path = "common/hostile_dht.rs"]
mod helpers;
#[path = "../../swarm/tests/hostile/mod.rs"]
mod hostile;
#[allow(dead_code)] // the soak's half of the driver is the bench's
#[path = "../../benches/src/soak/procs.rs"]
mod procs;

use common::Running;
use helpers::{client_on, dht_node, hyper, seeder, topic_of, writer};
use hostile::{FakeNode, Victim, bind, connect_forward, decode, hello, packet, payload, register};

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
    let connects = Arc::new(AtomicU64::new(0));
    let answered = connects.clone();
    let script: hostile::Script = Arc::new(move |request: &Packet, _| match &request.body {
        Some(Body::Lookup(_)) => Some(Reply {
            token: vec![7; 32],
            records: vec![record.clone()],
            ..Reply::default()
        }),
        Some(Body::Connect(connect)) => {
            let lie = hostile::signed_answer(&liar, topic, connect.holepunch.as_ref()?, &targets);
            answered.fetch_add(u64::from(lie.is_some()), Ordering::Relaxed);
            lie
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
    // Each lying answer: at most 2 targets, 6 probes each.
    let lies = connects.load(Ordering::Relaxed);
    assert!(lies > 0, "the clone connected through the fake holder");
    assert!(
        victim.datagrams() <= lies * 2 * 6,
        "{} probes reached the victim for {lies} lying answers",
        victim.datagrams()
    );
}

// ---------------------------------------------------------------------
// 2. The blind relay of a `dht node --relay` process.

#[tokio::test]
async fn a_relay_process_pairs_no_victim_with_a_forged_registration() {
    let (_node, relay) = dht_node(true).await;
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
    let (node, relay) = dht_node(true).await;
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
    let (_boot, boot) = dht_node(false).await;
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
    let ((lines, _fresh), _) = start_with_stderr(command).await;
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
    let (_relay, relay) = dht_node(true).await;
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
