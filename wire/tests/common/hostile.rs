//! A hostile peer over real TCP: it speaks Noise XX (with a valid identity
//! proof) and the wire's frames, written here on snow directly rather than
//! through `EncryptedStream`, so it can send what an honest peer never
//! would: partial frames, lengths with nothing after them, floods, and
//! messages it never reads the answers to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_core::{Core, CoreKey, KeyPair, Proof, ProofRequest};
use hyper_wire::messages::{Bitfield, Body, Message, Open, Sync};
use hyper_wire::{
    Capabilities, FrameDecoder, NOISE_PARAMS, data_from_proof, encode_frame, identity_payload,
    request_from_wire,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NOISE_MAX: usize = 65_535;
/// Plaintext bytes per Noise transport message (its 16-byte tag aside).
const PLAIN_MAX: usize = NOISE_MAX - 16;

/// The hostile side of one TCP connection after the Noise handshake.
pub struct Hostile {
    pub io: TcpStream,
    noise: snow::StatelessTransportState,
    send_nonce: u64,
    recv_nonce: u64,
    caps: Capabilities,
    decoder: FrameDecoder,
}

async fn write_noise(io: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).expect("noise message fits");
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(message).await
}

async fn read_noise(io: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    io.read_exact(&mut message).await?;
    Ok(message)
}

impl Hostile {
    /// Dials `addr` and runs the handshake as initiator.
    pub async fn dial(addr: SocketAddr) -> std::io::Result<Hostile> {
        Self::handshake(TcpStream::connect(addr).await?, true).await
    }

    /// Runs a genuine Noise XX handshake on `io` with a fresh identity.
    pub async fn handshake(mut io: TcpStream, initiator: bool) -> std::io::Result<Hostile> {
        let err = |e: snow::Error| std::io::Error::other(e.to_string());
        let identity = KeyPair::generate().expect("keys");
        use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
        let builder = snow::Builder::with_resolver(
            NOISE_PARAMS.parse().expect("params"),
            Box::new(FallbackResolver::new(
                Box::new(RingResolver),
                Box::new(DefaultResolver),
            )),
        );
        let keys = builder.generate_keypair().map_err(err)?;
        let builder = builder.local_private_key(&keys.private).map_err(err)?;
        let mut hs = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(err)?;
        let mut out = vec![0u8; NOISE_MAX];
        let mut payload = vec![0u8; NOISE_MAX];
        let proof = identity_payload(&identity, &keys.public);
        // XX: initiator speaks on turns 0 and 2, the responder on turn 1;
        // the identity proof rides on each side's second-phase message.
        for turn in 0..3 {
            if (turn % 2 == 0) == initiator {
                let body: &[u8] = if turn == 0 { &[] } else { &proof };
                let n = hs.write_message(body, &mut out).map_err(err)?;
                write_noise(&mut io, &out[..n]).await?;
            } else {
                let message = read_noise(&mut io).await?;
                hs.read_message(&message, &mut payload).map_err(err)?;
            }
        }
        let hash: [u8; 32] = hs.get_handshake_hash().try_into().expect("32 bytes");
        Ok(Hostile {
            io,
            noise: hs.into_stateless_transport_mode().map_err(err)?,
            send_nonce: 0,
            recv_nonce: 0,
            caps: Capabilities::new(hash, initiator),
            decoder: FrameDecoder::new(usize::MAX),
        })
    }

    /// This connection's capabilities, as the peer computes them too.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// Encrypts `plain` (any bytes: whole frames, part of one, garbage) and
    /// writes it.
    pub async fn send_plain(&mut self, plain: &[u8]) -> std::io::Result<()> {
        let mut wire = Vec::with_capacity(plain.len() + plain.len() / PLAIN_MAX * 18 + 18);
        let mut cipher = vec![0u8; NOISE_MAX];
        for piece in plain.chunks(PLAIN_MAX) {
            let n = self
                .noise
                .write_message(self.send_nonce, piece, &mut cipher)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.send_nonce += 1;
            wire.extend_from_slice(&u16::try_from(n).expect("fits").to_be_bytes());
            wire.extend_from_slice(&cipher[..n]);
        }
        self.io.write_all(&wire).await
    }

    /// Sends `messages` as frames in as few writes as fit.
    pub async fn send(&mut self, messages: &[Message]) -> std::io::Result<()> {
        let mut plain = Vec::new();
        for m in messages {
            plain.extend(encode_frame(m));
        }
        self.send_plain(&plain).await
    }

    /// Opens `key` on channel `channel` with a valid capability.
    pub fn open(&self, channel: u32, key: &CoreKey) -> Message {
        Message {
            channel,
            body: Some(Body::Open(Open {
                discovery_key: key.discovery_key().0.to_vec(),
                capability: self.caps.local(key).to_vec(),
            })),
        }
    }

    /// Opens `key` on channel 1 (proving it) and waits up to 10 s for the
    /// peer's `Sync`, which follows the pairing: this peer, paired.
    pub async fn paired(mut self, key: &CoreKey) -> Hostile {
        self.send(&[self.open(1, key)]).await.expect("open");
        loop {
            match self.recv(Duration::from_secs(10)).await {
                Some(Message {
                    body: Some(Body::Sync(_)),
                    ..
                }) => return self,
                Some(_) => {}
                None => panic!("the peer never paired"),
            }
        }
    }

    /// The next message the peer sends, `None` when the stream ends, fails
    /// or stays quiet for `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Ok(Some(m)) = self.decoder.next_message() {
                return Some(m);
            }
            let message = tokio::time::timeout_at(deadline, read_noise(&mut self.io))
                .await
                .ok()?
                .ok()?;
            let mut plain = vec![0u8; NOISE_MAX];
            let n = self
                .noise
                .read_message(self.recv_nonce, &message, &mut plain)
                .ok()?;
            self.recv_nonce += 1;
            self.decoder.push(&plain[..n]);
        }
    }

    /// Whether the peer has closed the connection within `wait` (reads and
    /// discards whatever else it sends meanwhile).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        closed_within(&mut self.io, wait).await
    }
}

/// Whether the far end of `io` closes within `wait`: reads (and discards)
/// until end of stream or a reset.
pub async fn closed_within(io: &mut TcpStream, wait: Duration) -> bool {
    let mut sink = vec![0u8; 1 << 16];
    let ended = async {
        loop {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, ended).await.is_ok()
}

/// A TCP server that accepts and then never says a word: each accepted
/// socket is held open until the returned task is aborted.
pub async fn silent_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// A TCP server that completes the handshake, sends the start of a frame
/// announcing `len` bytes (a plausible block), and then nothing more.
pub async fn stalling_server(len: u64) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            let Ok(mut peer) = Hostile::handshake(socket, false).await else {
                continue;
            };
            let mut prefix = Vec::new();
            prost::encoding::encode_varint(len, &mut prefix);
            prefix.extend_from_slice(&[0x08, 0x01]);
            if peer.send_plain(&prefix).await.is_ok() {
                held.push(peer);
            }
        }
    });
    (addr, task)
}

/// `body` on channel `channel`.
pub fn on(channel: u32, body: Body) -> Message {
    Message {
        channel,
        body: Some(body),
    }
}

/// A server over TCP of one core as a reader sees it, for every
/// connection made to it: it opens `key` when asked (with a valid
/// capability), says it holds all `length` blocks at `fork`, and answers
/// each request with the proof `answer` makes of it (any proof, honest or
/// forged; `None` leaves the request unanswered). The second value counts
/// the requests answered.
pub async fn lying_server(
    key: CoreKey,
    fork: u64,
    length: u64,
    answer: impl Fn(&ProofRequest) -> Option<Proof> + Send + std::marker::Sync + 'static,
) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answer = Arc::new(answer);
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (answer, count) = (answer.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut peer) = Hostile::handshake(socket, false).await else {
                    return;
                };
                while let Some(m) = peer.recv(Duration::from_secs(30)).await {
                    let replies = match m.body {
                        Some(Body::Open(_)) => vec![
                            peer.open(1, &key),
                            on(
                                1,
                                Body::Sync(Sync {
                                    fork,
                                    length,
                                    can_upgrade: true,
                                    uploading: true,
                                    ..Sync::default()
                                }),
                            ),
                            on(
                                1,
                                Body::Bitfield(Bitfield {
                                    start: 0,
                                    runs: vec![length],
                                }),
                            ),
                        ],
                        Some(Body::Request(request)) => {
                            match answer(&request_from_wire(&request)) {
                                Some(proof) => {
                                    count.fetch_add(1, Ordering::SeqCst);
                                    vec![on(1, Body::Data(data_from_proof(request.id, proof)))]
                                }
                                None => vec![],
                            }
                        }
                        _ => vec![],
                    };
                    if peer.send(&replies).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, answered)
}

/// A [`lying_server`] of `core`'s signed state (its key, fork and length)
/// whose answers `answer` makes from the core and each request.
pub async fn lying_server_of(
    core: Core,
    answer: impl Fn(&Core, &ProofRequest) -> Option<Proof> + Send + std::marker::Sync + 'static,
) -> (SocketAddr, Arc<AtomicU64>) {
    let state = core.signed_state().expect("state");
    lying_server(core.key(), state.fork, state.length, move |asked| {
        answer(&core, asked)
    })
    .await
}

/// A [`lying_server`] of `core` that answers every request with a genuine
/// proof of `core`, but of the request as `alter` rewrites it (a part
/// nobody asked for, another byte offset), and only if `alter` says so
/// (`false`: the request is never answered).
pub async fn altering_server(
    core: Core,
    alter: impl Fn(&mut ProofRequest) -> bool + Send + std::marker::Sync + 'static,
) -> SocketAddr {
    let (addr, _) = lying_server_of(core, move |core, asked| {
        let mut asked = asked.clone();
        alter(&mut asked).then(|| core.proof(&asked).expect("proof"))
    })
    .await;
    addr
}
