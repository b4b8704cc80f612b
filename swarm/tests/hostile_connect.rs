//! Hostile hole-punch requests against real swarms on loopback: a
//! `ConnectForward` from anyone but a node this peer announced to makes it
//! send nothing, nor does a real holder's of an offer not signed for this
//! server; a signed one from a real (but lying) holder makes it probe at most
//! two addresses on the IP the holder saw the client at, a few times; a
//! fake holder answering a client's connect gets the same bounded probes.
//! Each asserts the bytes that reached the victims per byte the attacker
//! sent.

use std::sync::Arc;
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::messages::{self, NatKind, Packet};
use hyper_swarm::{Body, JoinOptions, PeerRecord, Reply, Swarm, SwarmConfig, sign_record};
use tokio::time::{sleep, timeout};

mod hostile;
use hostile::{FakeNode, Victim, connect_forward};

const TOPIC: [u8; 32] = [0x51; 32];

/// A server swarm bootstrapped from `fake` only, announced on [`TOPIC`];
/// the address of its DHT socket as the fake saw it.
async fn announced_server(fake: &FakeNode) -> (Swarm, std::net::SocketAddr) {
    let server = Swarm::new(SwarmConfig::new(
        KeyPair::generate().expect("keys"),
        vec![fake.addr],
    ))
    .await
    .expect("server");
    server.join(
        TOPIC,
        JoinOptions {
            server: true,
            client: false,
        },
    );
    let at = fake
        .announcer(TOPIC, Duration::from_secs(20))
        .await
        .expect("the server announced to the fake node");
    (server, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_forward_from_a_stranger_makes_no_probe_and_a_holders_few() {
    let holder = FakeNode::start([127, 0, 0, 2]).await;
    let (server, at) = announced_server(&holder).await;
    let server_key = server.public_key();
    let stranger = FakeNode::start([127, 0, 0, 3]).await;
    let victim = Victim::bind([127, 0, 0, 5], 3).await;
    let bystander = Victim::bind([127, 0, 0, 6], 2).await;
    // Duplicates and another host's addresses among the targets.
    let mut targets = victim.addresses.clone();
    targets.extend(victim.addresses.iter().copied());
    targets.extend(bystander.addresses.iter().copied());
    let client = victim.addresses[0];
    let forward = |tid, server| {
        connect_forward(
            tid,
            at,
            TOPIC,
            server,
            client,
            &targets,
            NatKind::Consistent,
        )
    };
    for tid in 0..20 {
        stranger.send(at, &forward(tid, server_key)).await;
    }
    // The real holder passes on offers whose signatures do not hold (an
    // ephemeral swapped, or signed for another server).
    for tid in 50..60 {
        let mut swapped = forward(tid, server_key);
        if let Some(Body::ConnectForward(messages::ConnectForward {
            holepunch: Some(offer),
            ..
        })) = swapped.body.as_mut()
        {
            offer.ephemeral[0] ^= 1;
        }
        holder.send(at, &swapped).await;
        let elsewhere = forward(tid + 10, KeyPair::generate().expect("keys").public_key());
        holder.send(at, &elsewhere).await;
    }
    sleep(Duration::from_secs(3)).await;
    assert_eq!(
        victim.datagrams() + bystander.datagrams(),
        0,
        "a forward from a node that holds no announcement, or of an offer not \
         signed for this server, is ignored"
    );

    // The holder lies: 20 forwards at once, each naming five targets.
    for tid in 100..120 {
        holder.send(at, &forward(tid, server_key)).await;
    }
    sleep(Duration::from_secs(4)).await;
    let sent = holder.sent();
    let received = victim.bytes();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_holder_answering_a_connect_gets_a_few_probes_at_one_ip() {
    let victim = Victim::bind([127, 0, 0, 7], 3).await;
    let bystander = Victim::bind([127, 0, 0, 8], 2).await;
    let mut targets = victim.addresses.clone();
    targets.extend(victim.addresses.iter().copied());
    targets.extend(bystander.addresses.iter().copied());
    let liar = KeyPair::generate().expect("keys");
    let record = sign_record(
        &liar,
        &TOPIC,
        &PeerRecord {
            public_key: liar.public_key().0.to_vec(),
            addresses: Vec::new(),
            relays: Vec::new(),
            timestamp: 1,
            ..PeerRecord::default()
        },
    );
    // The liar signs its answer as the announced peer would: the client
    // acts on it and probes.
    let script: hostile::Script = Arc::new(move |request: &Packet, _| match &request.body {
        Some(Body::Lookup(_)) => Some(Reply {
            token: vec![7; 32],
            records: vec![record.clone()],
            ..Reply::default()
        }),
        Some(Body::Connect(connect)) => {
            hostile::signed_answer(&liar, TOPIC, connect.holepunch.as_ref()?, &targets)
        }
        _ => None,
    });
    let fake = FakeNode::scripted([127, 0, 0, 4], script).await;
    let client = Swarm::new(SwarmConfig::new(
        KeyPair::generate().expect("keys"),
        vec![fake.addr],
    ))
    .await
    .expect("client");
    client.join(
        TOPIC,
        JoinOptions {
            server: false,
            client: true,
        },
    );
    let _ = timeout(Duration::from_secs(8), async {
        loop {
            sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let (sent, received) = (fake.sent(), victim.bytes());
    assert!(sent > 0, "the client asked the fake holder");
    assert_eq!(bystander.datagrams(), 0, "only the first address's IP");
    assert!(
        received <= sent,
        "{received} bytes reached the victim for {sent} bytes the fake holder sent"
    );
}
