//! Local discovery with real multicast DNS on this host: two swarms with no
//! DHT node anywhere find each other by topic and replicate; hostile
//! announcements (a spoofed key, a flood of keys, garbage and oversized
//! packets) do no harm; leaving a topic stops it being found.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Path, Swarm, SwarmConfig};
use hyper_wire::{Replication, ReplicationOptions};
use mdns_sd::{ServiceDaemon, ServiceInfo};
use tokio::time::timeout;

mod common;
use common::{
    CLIENT, SERVER, connected, download_checked, lan_ipv4, next_connection, next_event,
    random_topic, store,
};

/// A swarm that finds peers only on the local link.
async fn local_swarm(keypair: KeyPair) -> Swarm {
    let mut config = SwarmConfig::new(keypair, Vec::new());
    config.dht = false;
    let swarm = Swarm::new(config).await.expect("swarm");
    assert!(swarm.local_enabled(), "mDNS: {:?}", swarm.local_error());
    swarm
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_on_one_host_find_each_other_with_no_dht_and_replicate() {
    let (_wd, writer_store, core, blocks) = common::writer_core(300);
    let topic = core.key().discovery_key().0;

    let seeder_keys = KeyPair::generate().expect("keys");
    let seeder = local_swarm(seeder_keys.clone()).await;
    let seeding = Replication::new(
        writer_store.clone(),
        seeder_keys,
        ReplicationOptions::default(),
    );
    seeding.add_core(&core);
    seeder.replicate(seeding).expect("connections");
    seeder.join(topic, SERVER);
    // With the DHT off, flush has nothing to wait for.
    timeout(Duration::from_secs(1), seeder.flush())
        .await
        .expect("flush at once")
        .expect("flush");

    let (_rd, reader_store) = store();
    let reader_keys = KeyPair::generate().expect("keys");
    let reader = local_swarm(reader_keys.clone()).await;
    reader.join(topic, CLIENT);
    let mut incoming = reader.connections().expect("connections");
    let connection = next_connection(&mut incoming).await;
    assert_eq!(connection.remote, seeder.public_key());
    assert_eq!(connection.path, Path::Local);
    assert!(connection.initiator);

    let replicating =
        download_checked(connection, &reader_store, reader_keys, &core.key(), &blocks).await;
    assert_eq!(seeder.peers(), vec![reader.public_key()]);
    assert!(!replicating.is_finished(), "the connection stays up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_discovery_is_off_by_the_switch_and_leaving_stops_being_found() {
    let topic = random_topic();
    let seeder = local_swarm(KeyPair::generate().expect("keys")).await;
    seeder.join(topic, SERVER);

    let mut config = SwarmConfig::new(KeyPair::generate().expect("keys"), Vec::new());
    config.dht = false;
    config.local = false;
    let deaf = Swarm::new(config).await.expect("swarm");
    assert!(!deaf.local_enabled());
    let mut deaf_events = deaf.events();
    deaf.join(topic, CLIENT);
    assert_eq!(
        next_event(&mut deaf_events, Duration::from_secs(4), connected).await,
        None,
        "a swarm with local discovery off found a local peer"
    );

    // Another topic, left before anyone looks: not found.
    let gone = random_topic();
    seeder.join(gone, SERVER);
    seeder.leave(gone).await.expect("leave");
    let late = local_swarm(KeyPair::generate().expect("keys")).await;
    let mut late_events = late.events();
    late.join(gone, CLIENT);
    assert_eq!(
        next_event(&mut late_events, Duration::from_secs(4), connected).await,
        None,
        "a topic left was still found"
    );
    // The topic still joined is found by the same swarm.
    late.join(topic, CLIENT);
    assert_eq!(
        next_event(&mut late_events, Duration::from_secs(20), connected).await,
        Some((seeder.public_key(), Path::Local))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_announcements_are_dropped_without_harm() {
    let topic = random_topic();
    let hostile = ServiceDaemon::new().expect("hostile daemon");
    // A peer with another key listens where the spoof points.
    let mut impostor_config = SwarmConfig::new(KeyPair::generate().expect("keys"), Vec::new());
    impostor_config.dht = false;
    impostor_config.local = false;
    let impostor = Swarm::new(impostor_config).await.expect("impostor");
    let impostor_port = impostor.listen_addr().expect("addr").port();

    let honest_keys = KeyPair::generate().expect("keys");
    let honest_key = honest_keys.public_key();
    // A flood first: keys nobody holds, a third at one IP on this link (16
    // per IP are kept), a third at IPs of their own on it (loopback), a
    // third off the link (dropped); then a spoof of the honest key pointing
    // at the impostor.
    let mut flood = Vec::new();
    for i in 0..150u32 {
        let key = KeyPair::generate().expect("keys").public_key();
        let ip: IpAddr = match i % 3 {
            0 => IpAddr::from([127, 1, 0, 1]),
            1 => IpAddr::from([127, 2, 0, i as u8]),
            _ => IpAddr::from([198, 51, 100, i as u8]),
        };
        let info = ServiceInfo::new(
            "_hyper._udp.local.",
            &format!("flood{i}"),
            &format!("flood{i}.local."),
            ip,
            40_000 + i as u16,
            &[("k", hex(&key.0)), ("t", hex(&topic))][..],
        )
        .expect("info");
        flood.push(info.get_fullname().to_string());
        hostile.register(info).expect("register");
    }
    let spoof_ip: IpAddr = lan_ipv4().map_or(IpAddr::from([127, 0, 0, 1]), IpAddr::V4);
    let spoof = ServiceInfo::new(
        "_hyper._udp.local.",
        "spoof",
        "spoof.local.",
        spoof_ip,
        impostor_port,
        &[("k", hex(&honest_key.0)), ("t", hex(&topic))][..],
    )
    .expect("info");
    hostile.register(spoof).expect("register");
    // Malformed ones: a bad key, no topic, port 0.
    for (name, props) in [
        ("badkey", vec![("k", "zz".to_string()), ("t", hex(&topic))]),
        ("notopic", vec![("k", hex(&honest_key.0))]),
    ] {
        let info = ServiceInfo::new(
            "_hyper._udp.local.",
            name,
            &format!("{name}.local."),
            IpAddr::from([127, 0, 0, 1]),
            impostor_port,
            &props[..],
        )
        .expect("info");
        hostile.register(info).expect("register");
    }
    // Raw garbage at the mDNS group: random bytes, a header claiming
    // thousands of records, and a datagram far over any mDNS size.
    let raw = UdpSocket::bind("0.0.0.0:0").expect("bind");
    let group = SocketAddr::from(([224, 0, 0, 251], 5353));
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![0u8; 12],
        [
            0, 0, 0x84, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]
        .to_vec(),
        vec![0xc0; 9000],
        vec![0x41; 60_000],
    ];
    for i in 0..50u32 {
        garbage.push((0..(i * 37) % 1500).map(|j| (j * 131 + i) as u8).collect());
    }
    for g in &garbage {
        let _ = raw.send_to(g, group);
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = local_swarm(KeyPair::generate().expect("keys")).await;
    let mut events = client.events();
    client.join(topic, CLIENT);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let honest = local_swarm(honest_keys).await;
    honest.join(topic, SERVER);
    for g in &garbage {
        let _ = raw.send_to(g, group);
    }
    // The only connection made is to the honest key, over the link.
    assert_eq!(
        next_event(&mut events, Duration::from_secs(30), connected).await,
        Some((honest_key, Path::Local)),
        "the honest peer was not reached past the hostile announcements"
    );
    assert_eq!(client.peers(), vec![honest_key]);
    assert!(impostor.peers().is_empty(), "the impostor got a connection");
    // At most: 16 of the one-IP third, the 50 with IPs of their own, the
    // spoof and the honest peer; nothing off the link, nothing malformed.
    assert!(
        client.local_heard(&topic) <= 16 + 50 + 2,
        "the table grew to {}",
        client.local_heard(&topic)
    );
    for name in flood {
        let _ = hostile.unregister(&name);
    }
    let _ = hostile.shutdown();
}

/// A client that hears `key` announced for a fresh topic only at `ip` and
/// the port `port`; the address its connection to `key` talks to.
async fn reached_at(
    hostile: &ServiceDaemon,
    key: hyper_core::PublicKey,
    ip: IpAddr,
    port: u16,
) -> SocketAddr {
    let topic = random_topic();
    let info = ServiceInfo::new(
        "_hyper._udp.local.",
        &format!("only-{}", hex(&topic[..6])),
        &format!("only-{}.local.", hex(&topic[..6])),
        ip,
        port,
        &[("k", hex(&key.0)), ("t", hex(&topic))][..],
    )
    .expect("info");
    hostile.register(info).expect("register");
    let client = local_swarm(KeyPair::generate().expect("keys")).await;
    let mut incoming = client.connections().expect("connections");
    client.join(topic, CLIENT);
    let connection = next_connection(&mut incoming).await;
    assert_eq!(connection.remote, key);
    assert_eq!(connection.path, Path::Local);
    connection.remote_address()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listening_endpoint_is_reached_over_ipv4_and_ipv6() {
    let (Some(v4), Some(v6)) = (lan_ipv4(), common::lan_ipv6()) else {
        eprintln!("skipped: this host lacks an IPv4 or an IPv6 LAN address");
        return;
    };
    // The peer announces nothing itself; a responder announces it once at
    // its IPv4 address, once at its IPv6 one, on the same port.
    let mut config = SwarmConfig::new(KeyPair::generate().expect("keys"), Vec::new());
    config.dht = false;
    config.local = false;
    let peer = Swarm::new(config).await.expect("peer");
    let port = peer.listen_addr().expect("listen").port();
    let responder = ServiceDaemon::new().expect("daemon");
    let over_v4 = reached_at(&responder, peer.public_key(), IpAddr::V4(v4), port).await;
    assert_eq!(over_v4.ip().to_canonical(), IpAddr::V4(v4));
    let over_v6 = reached_at(&responder, peer.public_key(), IpAddr::V6(v6), port).await;
    assert_eq!(over_v6.ip(), IpAddr::V6(v6));
    let _ = responder.shutdown();
}

/// The destination connection ids of the QUIC Initial packets in one
/// datagram's first packet (one per connection attempt: retransmissions of
/// an Initial keep it).
fn initial_dcid(datagram: &[u8]) -> Option<Vec<u8>> {
    let first = *datagram.first()?;
    // Long header, fixed bit, packet type Initial (QUIC v1).
    if first & 0xf0 != 0xc0 {
        return None;
    }
    let len = usize::from(*datagram.get(5)?);
    datagram.get(6..6 + len).map(<[u8]>::to_vec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_address_is_not_dialled_again_by_rotating_keys_and_goodbyes() {
    // A victim that runs no QUIC: it only counts the connection attempts
    // that reach it.
    let victim = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let victim_port = victim.local_addr().expect("addr").port();
    let attempts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let counted = attempts.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = victim.recv_from(&mut buf).await {
            if let Some(dcid) = buf.get(..n).and_then(initial_dcid) {
                counted.lock().expect("lock").insert(dcid);
            }
        }
    });

    let topic = random_topic();
    let client = local_swarm(KeyPair::generate().expect("keys")).await;
    client.join(topic, CLIENT);
    // A spoofer names the victim under a fresh key and instance name every
    // second, saying goodbye for the last one each time.
    let hostile = ServiceDaemon::new().expect("hostile daemon");
    let started = std::time::Instant::now();
    let mut last: Option<String> = None;
    for i in 0..8u32 {
        let key = KeyPair::generate().expect("keys").public_key();
        let info = ServiceInfo::new(
            "_hyper._udp.local.",
            &format!("rotate{i}-{}", hex(&topic[..4])),
            &format!("rotate{i}.local."),
            IpAddr::from([127, 0, 0, 1]),
            victim_port,
            &[("k", hex(&key.0)), ("t", hex(&topic))][..],
        )
        .expect("info");
        let name = info.get_fullname().to_string();
        hostile.register(info).expect("register");
        if let Some(old) = last.replace(name) {
            let _ = hostile.unregister(&old);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let elapsed = started.elapsed();
    let dials = attempts.lock().expect("lock").len();
    // One attempt at a time, resting 1 s then 2 s after each silent one
    // (2 s each): at most 3 in 8 s, whichever key is announced there.
    assert!(dials >= 1, "the spoofed address was never dialled");
    assert!(
        dials <= 3,
        "{dials} connection attempts at a silent address in {elapsed:?}"
    );
    if let Some(old) = last {
        let _ = hostile.unregister(&old);
    }
    let _ = hostile.shutdown();
    reader.abort();
}
