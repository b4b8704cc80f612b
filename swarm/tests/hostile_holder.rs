//! A hostile holder between two real swarms on loopback: a UDP peer that
//! holds the server's announcement and passes the connect request and its
//! answer on unchanged, but records them and uses every 32 bytes it saw.
//! It cannot get a probe of its own accepted by the client (the probe tag
//! comes from a secret only the two peers share) nor take the session at a
//! relay from them; the two peers still connect, directly or through the
//! relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::messages;
use hyper_swarm::{
    Body, Dht, Path, PeerConnection, Reply, Swarm, encode_packet, socket_address, wire_address,
};
use prost::Message as _;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

mod common;
mod hostile;
use common::{CLIENT, SERVER, dht_only, flushed, next_connection, random_topic};
use hostile::{bind, decode, packet, register};

/// Every 32-byte window of `holepunch` as encoded: whatever 32-byte value
/// it carries (key, ephemeral, signature halves, a session id), the holder
/// tries.
fn windows(holepunch: &messages::Holepunch) -> Vec<[u8; 32]> {
    let bytes = holepunch.encode_to_vec();
    bytes
        .windows(32)
        .filter_map(|w| <[u8; 32]>::try_from(w).ok())
        .collect()
}

/// What the holder did with what it saw, and what came of it.
#[derive(Default)]
struct Seen {
    /// Connect requests passed on.
    connects: AtomicU64,
    /// Answers passed back.
    answers: AtomicU64,
    /// Forged probes sent to the client's punching socket.
    probes_sent: AtomicU64,
    /// Datagrams that reached the socket the forged probes left from
    /// (a client that accepted one answers it and dials QUIC there).
    probe_answers: AtomicU64,
    /// Registrations the relay acknowledged for the holder.
    registered: AtomicU64,
    /// Datagrams the relay forwarded to the holder's registered sockets
    /// (a session paired with an honest peer).
    relayed_to_holder: AtomicU64,
}

/// The hostile holder: one UDP socket on `ip` that answers as the only DHT
/// node (a token for everyone, every announcement kept, lookups answered
/// with them), passes `Connect` on as `ConnectForward` and the answer back,
/// unchanged. With `lie_about_ports`, its ping answers name another port
/// than the one seen (both peers then think their NATs map per destination
/// and meet at a relay). With `relay`, it registers every window it saw
/// there, before the peers it serves can.
struct Holder {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl Holder {
    async fn start(ip: [u8; 4], lie_about_ports: bool, relay: Option<SocketAddr>) -> Holder {
        let socket = Arc::new(bind(ip).await);
        let addr = socket.local_addr().expect("addr");
        let prober = Arc::new(bind(ip).await);
        let seen = Arc::new(Seen::default());
        let counted = seen.clone();
        let listening = prober.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while listening.recv_from(&mut buf).await.is_ok() {
                counted.probe_answers.fetch_add(1, Ordering::Relaxed);
            }
        });
        let state = seen.clone();
        tokio::spawn(async move {
            let mut records: HashMap<Vec<u8>, (messages::SignedRecord, SocketAddr)> =
                HashMap::new();
            let mut forwards: HashMap<u32, (SocketAddr, u32)> = HashMap::new();
            // Sockets registered at the relay: kept so that what the relay
            // forwards to them is counted.
            let mut registrations = JoinSet::new();
            let mut next_tid = 1u32;
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let Some(request) = buf.get(..len).and_then(decode) else {
                    continue;
                };
                let answer =
                    |reply: Reply| encode_packet(&packet(request.tid, from, Body::Reply(reply)));
                match request.body.clone() {
                    Some(Body::Ping(_)) => {
                        let mut seen_at = from;
                        if lie_about_ports {
                            seen_at.set_port(from.port() ^ 1);
                        }
                        let pong = packet(request.tid, seen_at, Body::Reply(Reply::default()));
                        let _ = socket.send_to(&encode_packet(&pong), from).await;
                    }
                    Some(Body::Announce(announce)) => {
                        if let Some(record) = announce.record {
                            records.insert(announce.topic, (record, from));
                        }
                        let _ = socket.send_to(&answer(Reply::default()), from).await;
                    }
                    Some(Body::Lookup(lookup)) => {
                        let reply = Reply {
                            token: vec![7; 32],
                            records: records
                                .get(&lookup.topic)
                                .map(|(r, _)| vec![r.clone()])
                                .unwrap_or_default(),
                            ..Reply::default()
                        };
                        let _ = socket.send_to(&answer(reply), from).await;
                    }
                    Some(Body::Connect(connect)) => {
                        let (Some((_, announcer)), Some(offer)) =
                            (records.get(&connect.topic), connect.holepunch)
                        else {
                            continue;
                        };
                        state.connects.fetch_add(1, Ordering::Relaxed);
                        let candidates = windows(&offer);
                        forge(&prober, &offer, &candidates, &state).await;
                        if let Some(relay) = relay {
                            take_sessions(relay, ip, &candidates, &state, &mut registrations).await;
                        }
                        let tid = next_tid;
                        next_tid += 1;
                        forwards.insert(tid, (from, request.tid));
                        let forward = packet(
                            tid,
                            *announcer,
                            Body::ConnectForward(messages::ConnectForward {
                                topic: connect.topic,
                                from: Some(wire_address(from)),
                                holepunch: Some(offer),
                            }),
                        );
                        let _ = socket.send_to(&encode_packet(&forward), announcer).await;
                    }
                    Some(Body::Reply(reply)) => {
                        let Some((client, client_tid)) = forwards.remove(&request.tid) else {
                            continue;
                        };
                        let Some(theirs) = reply.holepunch else {
                            continue;
                        };
                        state.answers.fetch_add(1, Ordering::Relaxed);
                        let candidates = windows(&theirs);
                        if let Some(relay) = relay {
                            take_sessions(relay, ip, &candidates, &state, &mut registrations).await;
                        }
                        let back = packet(
                            client_tid,
                            client,
                            Body::Reply(Reply {
                                holepunch: Some(theirs),
                                ..Reply::default()
                            }),
                        );
                        let _ = socket.send_to(&encode_packet(&back), client).await;
                    }
                    Some(Body::Error(_)) => {
                        if let Some((client, client_tid)) = forwards.remove(&request.tid) {
                            let error = packet(
                                client_tid,
                                client,
                                Body::Error(messages::Error {
                                    code: messages::ErrorCode::NotFound as i32,
                                }),
                            );
                            let _ = socket.send_to(&encode_packet(&error), client).await;
                        }
                    }
                    _ => {
                        let reply = Reply {
                            token: vec![7; 32],
                            ..Reply::default()
                        };
                        let _ = socket.send_to(&answer(reply), from).await;
                    }
                }
            }
        });
        Holder { addr, seen }
    }

    fn count(&self, pick: impl Fn(&Seen) -> &AtomicU64) -> u64 {
        pick(&self.seen).load(Ordering::Relaxed)
    }
}

/// Sends a probe carrying each of `candidates` to every address of the
/// client's `offer`, from `prober`. They sit in the client's punching
/// socket before any honest probe can.
async fn forge(
    prober: &UdpSocket,
    offer: &messages::Holepunch,
    candidates: &[[u8; 32]],
    seen: &Seen,
) {
    for to in offer.addresses.iter().filter_map(socket_address) {
        for candidate in candidates {
            let mut probe = vec![0x03];
            probe.extend_from_slice(candidate);
            let _ = prober.send_to(&probe, to).await;
            seen.probes_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Registers each of `candidates` at `relay`, each from a fresh socket on
/// `ip` (one address holds one session); every socket acknowledged is kept
/// in `kept`, counting what the relay forwards to it.
async fn take_sessions(
    relay: SocketAddr,
    ip: [u8; 4],
    candidates: &[[u8; 32]],
    seen: &Arc<Seen>,
    kept: &mut JoinSet<()>,
) {
    let mut attempts = JoinSet::new();
    for candidate in candidates.iter().copied() {
        attempts.spawn(async move {
            let socket = bind(ip).await;
            register(&socket, relay, candidate).await.then_some(socket)
        });
    }
    while let Some(done) = attempts.join_next().await {
        let Ok(Some(socket)) = done else { continue };
        seen.registered.fetch_add(1, Ordering::Relaxed);
        let seen = seen.clone();
        kept.spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((len, _)) = socket.recv_from(&mut buf).await {
                if len > 0 && buf[0] != 0x02 {
                    seen.relayed_to_holder.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// A relay node that keeps no announcements (so the hostile holder is the
/// only node a client can connect through).
async fn relay_node() -> Dht {
    common::public_node(|config| config.limits.max_topics = 0).await
}

/// A server announced on `topic` and a client joined to it, both
/// bootstrapped from `bootstrap`; the client's first connection.
async fn meet(bootstrap: Vec<SocketAddr>, topic: [u8; 32]) -> (Swarm, Swarm, PeerConnection) {
    let server = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        bootstrap.clone(),
    ))
    .await
    .expect("server");
    server.join(topic, SERVER);
    flushed(&server).await;
    let client = Swarm::new(dht_only(KeyPair::generate().expect("keys"), bootstrap))
        .await
        .expect("client");
    let mut connections = client.connections().expect("connections");
    client.join(topic, CLIENT);
    let connection = next_connection(&mut connections).await;
    (server, client, connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holders_forged_probes_are_ignored_and_the_punch_goes_through() {
    let holder = Holder::start([127, 0, 0, 41], false, None).await;
    let (server, _client, connection) = meet(vec![holder.addr], random_topic()).await;
    assert_eq!(connection.remote, server.public_key());
    assert_eq!(connection.path, Path::Direct);
    assert!(
        holder.count(|s| &s.connects) >= 1,
        "the holder passed it on"
    );
    assert!(
        holder.count(|s| &s.probes_sent) > 0,
        "the holder forged probes"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        holder.count(|s| &s.probe_answers),
        0,
        "a forged probe was taken for the server's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cannot_take_the_relay_session_and_the_peers_meet_there() {
    let relay = relay_node().await;
    let holder = Holder::start([127, 0, 0, 42], true, Some(relay.local_addr())).await;
    let (server, _client, connection) =
        meet(vec![holder.addr, relay.local_addr()], random_topic()).await;
    assert_eq!(connection.remote, server.public_key());
    assert_eq!(
        connection.path,
        Path::Relay,
        "both sides were made to meet at the relay"
    );
    assert!(
        holder.count(|s| &s.answers) >= 1,
        "the holder passed the answer back"
    );
    assert!(
        holder.count(|s| &s.registered) > 0,
        "the holder registered what it saw"
    );
    // The peers' handshake went through the relay; none of it to the holder.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        holder.count(|s| &s.relayed_to_holder),
        0,
        "the relay paired the holder with a peer"
    );
}
