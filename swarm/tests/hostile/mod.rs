//! A hostile DHT peer for tests: real UDP sockets on loopback that speak
//! the DHT packets and lie. Every 127.x.y.z address is loopback on Linux,
//! so a test can bind "other hosts" (other IPs, other /24s) and send from
//! them: that is how it forges sources. Victims are sockets that only
//! count the bytes that reach them.
#![allow(dead_code)] // each test binary uses some of these

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_swarm::messages::{self, Packet};
use hyper_swarm::{Body, Reply, encode_packet, socket_address, wire_address};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// A UDP socket on `ip` (any port).
pub async fn bind(ip: [u8; 4]) -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((ip, 0)))
        .await
        .expect("bind a loopback address")
}

/// Decodes a DHT datagram.
pub fn decode(bytes: &[u8]) -> Option<Packet> {
    use prost::Message as _;
    match bytes.split_first() {
        Some((1, body)) => Packet::decode(body).ok(),
        _ => None,
    }
}

/// A packet with no id and no flags.
pub fn packet(tid: u32, to: SocketAddr, body: Body) -> Packet {
    Packet {
        tid,
        id: Vec::new(),
        to: Some(wire_address(to)),
        flags: 0,
        body: Some(body),
        ..Packet::default()
    }
}

/// A topic and who announced it.
pub type Announcement = ([u8; 32], SocketAddr);

/// Sockets that count what reaches them.
pub struct Victim {
    /// Where they listen.
    pub addresses: Vec<SocketAddr>,
    /// Clones of the sockets, to send from the victims' addresses (as an
    /// attacker forging them would).
    clones: Vec<std::net::UdpSocket>,
    bytes: Arc<AtomicU64>,
    datagrams: Arc<AtomicU64>,
}

impl Victim {
    /// `ports` sockets on `ip`.
    pub async fn bind(ip: [u8; 4], ports: usize) -> Victim {
        let bytes = Arc::new(AtomicU64::new(0));
        let datagrams = Arc::new(AtomicU64::new(0));
        let mut addresses = Vec::new();
        let mut clones = Vec::new();
        for _ in 0..ports {
            let std = std::net::UdpSocket::bind(SocketAddr::from((ip, 0))).expect("bind");
            std.set_nonblocking(true).expect("nonblocking");
            clones.push(std.try_clone().expect("clone"));
            let socket = UdpSocket::from_std(std).expect("tokio socket");
            addresses.push(socket.local_addr().expect("addr"));
            let (bytes, datagrams) = (bytes.clone(), datagrams.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((len, _)) = socket.recv_from(&mut buf).await {
                    bytes.fetch_add(len as u64, Ordering::Relaxed);
                    datagrams.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        Victim {
            addresses,
            clones,
            bytes,
            datagrams,
        }
    }

    /// A socket sending from the `i`th victim's address: packets with a
    /// forged source, whose answers the victim receives (and counts).
    pub fn forger(&self, i: usize) -> UdpSocket {
        let std = self
            .clones
            .get(i)
            .expect("a victim socket")
            .try_clone()
            .expect("clone");
        UdpSocket::from_std(std).expect("tokio socket")
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams.load(Ordering::Relaxed)
    }
}

/// A fake DHT node that answers every request as if it were the only node
/// of the network (no closer nodes, a write token for everyone, every
/// store accepted) and remembers who announced what. Through
/// [`FakeNode::send`] the test sends from the same address, as this node.
pub struct FakeNode {
    /// Its address.
    pub addr: SocketAddr,
    socket: Arc<UdpSocket>,
    /// (topic, announcer address) of every announce it accepted.
    pub announced: Arc<Mutex<Vec<Announcement>>>,
    /// Answers to its own requests, by tid.
    answers: Arc<Mutex<HashMap<u32, Packet>>>,
    /// Bytes it sent with [`FakeNode::send`] and in scripted answers.
    sent: Arc<AtomicU64>,
}

/// Scripted answers of a [`FakeNode`]: for a request from an address,
/// `Some(reply)` answers with that reply instead of the default.
pub type Script = Arc<dyn Fn(&Packet, SocketAddr) -> Option<Reply> + Send + Sync>;

impl FakeNode {
    /// Starts one on `ip`.
    pub async fn start(ip: [u8; 4]) -> FakeNode {
        FakeNode::scripted(ip, Arc::new(|_: &Packet, _: SocketAddr| None)).await
    }

    /// Starts one on `ip` that answers what `script` says, and the rest
    /// as [`FakeNode::start`] does; the scripted answers count in
    /// [`FakeNode::sent`].
    pub async fn scripted(ip: [u8; 4], script: Script) -> FakeNode {
        let socket = Arc::new(bind(ip).await);
        let addr = socket.local_addr().expect("addr");
        let announced = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, a, w, counted) = (
            socket.clone(),
            announced.clone(),
            answers.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = s.recv_from(&mut buf).await {
                let Some(request) = buf.get(..len).and_then(decode) else {
                    continue;
                };
                if let Some(reply) = script(&request, from) {
                    let answer = encode_packet(&packet(request.tid, from, Body::Reply(reply)));
                    counted.fetch_add(answer.len() as u64, Ordering::Relaxed);
                    let _ = s.send_to(&answer, from).await;
                    continue;
                }
                let reply = match request.body {
                    Some(Body::Reply(_) | Body::Error(_)) => {
                        w.lock().expect("lock").insert(request.tid, request);
                        continue;
                    }
                    Some(Body::Announce(announce)) => {
                        if let Ok(topic) = <[u8; 32]>::try_from(announce.topic.as_slice()) {
                            a.lock().expect("lock").push((topic, from));
                        }
                        Reply::default()
                    }
                    _ => Reply {
                        token: vec![7; 32],
                        ..Reply::default()
                    },
                };
                let answer = packet(request.tid, from, Body::Reply(reply));
                let _ = s.send_to(&encode_packet(&answer), from).await;
            }
        });
        FakeNode {
            addr,
            socket,
            announced,
            answers,
            sent,
        }
    }

    /// Sends `packet` to `to` from this node's address; its size.
    pub async fn send(&self, to: SocketAddr, packet: &Packet) -> usize {
        let bytes = encode_packet(packet);
        let _ = self.socket.send_to(&bytes, to).await;
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        bytes.len()
    }

    /// Bytes sent with [`FakeNode::send`].
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The answer to this node's request `tid`, if one came.
    pub fn answer(&self, tid: u32) -> Option<Packet> {
        self.answers.lock().expect("lock").remove(&tid)
    }

    /// Waits until someone announced `topic` here; who.
    pub async fn announcer(&self, topic: [u8; 32], within: Duration) -> Option<SocketAddr> {
        let until = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < until {
            let found = self
                .announced
                .lock()
                .expect("lock")
                .iter()
                .find(|(t, _)| *t == topic)
                .map(|(_, a)| *a);
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// A `ConnectForward` for `topic` claiming the client is at `from`, whose
/// holepunch names `addresses` and `nat`: a valid offer to `server` from a
/// fresh client identity (so the server acts on it).
pub fn connect_forward(
    tid: u32,
    to: SocketAddr,
    topic: [u8; 32],
    server: hyper_core::PublicKey,
    from: SocketAddr,
    addresses: &[SocketAddr],
    nat: messages::NatKind,
) -> Packet {
    let client = hyper_core::KeyPair::generate().expect("keys");
    let attempt = hyper_swarm::Attempt {
        topic,
        client: client.public_key(),
        server,
    };
    let ephemeral =
        hyper_swarm::Ephemeral::from_secret(hyper_core::KeyPair::generate().expect("keys").seed());
    packet(
        tid,
        to,
        Body::ConnectForward(messages::ConnectForward {
            topic: topic.to_vec(),
            from: Some(wire_address(from)),
            holepunch: Some(messages::Holepunch {
                public_key: client.public_key().0.to_vec(),
                addresses: addresses.iter().map(|a| wire_address(*a)).collect(),
                nat: nat as i32,
                ephemeral: ephemeral.public.to_vec(),
                signature: attempt.sign_offer(&client, &ephemeral).0.to_vec(),
                relay: None,
            }),
        }),
    )
}

/// The address field of a packet.
pub fn to_of(packet: &Packet) -> Option<SocketAddr> {
    packet.to.as_ref().and_then(socket_address)
}

/// A relay hello (`0x02` + session).
pub fn hello(session: [u8; 32]) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend_from_slice(&session);
    out
}

/// Registers `socket` at `relay` for `session` the honest way (hello,
/// cookie back, acknowledgement); whether it was acknowledged.
pub async fn register(socket: &UdpSocket, relay: SocketAddr, session: [u8; 32]) -> bool {
    let mut buf = [0u8; 2048];
    socket.send_to(&hello(session), relay).await.expect("send");
    let Ok(Ok((len, _))) = timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await else {
        return false;
    };
    if len != 65 {
        // The old relay acknowledged the hello itself (33 bytes).
        return len == 33;
    }
    let echo = buf[..65].to_vec();
    socket.send_to(&echo, relay).await.expect("send");
    let Ok(Ok((len, _))) = timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await else {
        return false;
    };
    len == 34 && buf[33] == 0xff
}

/// Sends `request` from `socket` to `to`; the answer's size and packet, if
/// one came within half a second.
pub async fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    request: &Packet,
) -> Option<(usize, Packet)> {
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

/// One request of each kind that reads from a node, about `target`.
pub fn reads(target: [u8; 32]) -> Vec<Body> {
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
        Body::Ping(messages::Ping {}),
    ]
}

/// A QUIC-looking datagram of `len` bytes (what a relay forwards).
pub fn payload(len: usize) -> Vec<u8> {
    let mut out = vec![0x55; len];
    out[0] = 0x40;
    out
}

/// The answer `liar` (holding its own record for `topic`) gives a
/// client's connect `offer`: a holepunch signed as the announced peer
/// would, naming `targets`, so the client acts on it. `None` if the offer
/// does not verify.
pub fn signed_answer(
    liar: &hyper_core::KeyPair,
    topic: [u8; 32],
    offer: &messages::Holepunch,
    targets: &[SocketAddr],
) -> Option<Reply> {
    let attempt = hyper_swarm::Attempt {
        topic,
        client: hyper_core::PublicKey(offer.public_key.as_slice().try_into().ok()?),
        server: liar.public_key(),
    };
    let client_ephemeral = attempt.verify_offer(offer)?;
    let ephemeral =
        hyper_swarm::Ephemeral::from_secret(hyper_core::KeyPair::generate().ok()?.seed());
    Some(Reply {
        holepunch: Some(messages::Holepunch {
            public_key: liar.public_key().0.to_vec(),
            addresses: targets.iter().map(|a| wire_address(*a)).collect(),
            nat: messages::NatKind::Consistent as i32,
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
