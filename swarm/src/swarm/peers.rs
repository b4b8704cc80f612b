//! Connection management: one live connection per remote key, dial
//! backoff, the firewall and the peer limit. It takes [`Candidate`]s from
//! any discovery source and does not care which one found them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_core::PublicKey;
use hyper_wire::Replication;
use tokio::time::{Instant, timeout};

use super::candidate::{Candidate, Hint};
use super::{CONNECT_TIMEOUT, LOOKUP_MAX, Swarm, lock};
use crate::error::{Error, Result};
use crate::quic::QuicStream;

/// How a connection reached the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Straight between the two peers (hole punched, or one was public).
    Direct,
    /// Through a blind relay.
    Relay,
    /// Over the local network, straight to the peer's listening endpoint
    /// (found on the link, or at a local address its record named).
    Local,
}

impl Path {
    /// `direct`, `relay` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Relay => "relay",
            Path::Local => "local",
        }
    }
}

/// A change in the swarm's connections, for observers
/// ([`Swarm::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmEvent {
    /// A connection was made (and kept: of two to one peer, only the one
    /// kept is reported).
    Connected {
        /// The key the peer proved.
        remote: PublicKey,
        /// Direct or relayed.
        path: Path,
        /// Whether this side dialled.
        initiator: bool,
    },
    /// The connection to a peer ended.
    Disconnected {
        /// The peer.
        remote: PublicKey,
    },
}

/// The TLS exporter label of the secret channel capabilities are bound to.
const CAPABILITY_LABEL: &[u8] = b"hyper-swarm 2026 capability binding";

/// One authenticated connection to a peer, with the stream the replication
/// protocol runs on.
pub struct PeerConnection {
    /// The key the peer proved.
    pub remote: PublicKey,
    /// The key this side proved (the swarm's, or its topic's identity).
    pub local: PublicKey,
    /// Direct, relayed or local.
    pub path: Path,
    /// Whether this side dialled.
    pub initiator: bool,
    /// The bidirectional stream for the replication protocol.
    pub stream: QuicStream,
    /// The topic it was found or accepted through, if any.
    pub(super) topic: Option<[u8; 32]>,
    pub(super) connection: quinn::Connection,
    pub(super) _endpoint: quinn::Endpoint,
}

impl PeerConnection {
    /// The address the QUIC connection talks to (the relay's, if relayed).
    pub fn remote_address(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.connection.close_reason().is_some()
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.connection.close(0u32.into(), b"closed");
    }

    /// Runs the replication protocol on this connection's stream until
    /// either side ends it, then closes the connection. QUIC already
    /// encrypts and proved both keys, so the stream carries frames without
    /// a second (Noise) layer; the channel capabilities are bound to this
    /// connection through its TLS exporter.
    pub async fn replicate(self, replication: &Replication) -> Result<()> {
        let PeerConnection {
            remote,
            stream,
            initiator,
            connection,
            _endpoint,
            ..
        } = self;
        let mut binding = [0u8; 32];
        let result = match connection.export_keying_material(&mut binding, CAPABILITY_LABEL, b"") {
            Err(_) => Err(Error::NoBinding),
            Ok(()) => match replication
                .add_secured_stream(stream, remote, binding, initiator)
                .await
            {
                Ok(session) => session.closed().await.map_err(Error::from),
                Err(e) => Err(Error::from(e)),
            },
        };
        connection.close(0u32.into(), b"done");
        drop(_endpoint);
        result
    }
}

/// The first of two dial attempts to succeed; if both fail, the punched
/// one's outcome.
async fn first_success<D, P>(
    direct: D,
    punched: P,
) -> Result<Result<PeerConnection>, tokio::time::error::Elapsed>
where
    D: Future<Output = Result<PeerConnection>>,
    P: Future<Output = Result<Result<PeerConnection>, tokio::time::error::Elapsed>>,
{
    tokio::pin!(direct, punched);
    let mut direct_failed = false;
    let mut punch_failed = None;
    loop {
        tokio::select! {
            result = &mut direct, if !direct_failed => match result {
                Ok(connection) => return Ok(Ok(connection)),
                Err(_) => {
                    direct_failed = true;
                    if let Some(failed) = punch_failed.take() {
                        return failed;
                    }
                }
            },
            result = &mut punched, if punch_failed.is_none() => match result {
                Ok(Ok(connection)) => return Ok(Ok(connection)),
                failed if direct_failed => return failed,
                failed => punch_failed = Some(failed),
            },
        }
    }
}

/// A connection in the peer table.
pub(super) struct Live {
    pub(super) connection: quinn::Connection,
    pub(super) initiator_key: PublicKey,
    pub(super) path: Path,
    /// The topics the peer was found or accepted through.
    pub(super) topics: HashSet<[u8; 32]>,
}

impl Live {
    /// The remote address, IPv4 shown as such on a dual-stack socket.
    pub(super) fn address(&self) -> SocketAddr {
        let addr = self.connection.remote_address();
        SocketAddr::new(addr.ip().to_canonical(), addr.port())
    }

    /// Closes the connection (the watcher removes it from the table).
    pub(super) fn close(&self, reason: &'static [u8]) {
        self.connection.close(0u32.into(), reason);
    }
}

impl Swarm {
    pub(super) fn refused(&self, key: &PublicKey, addr: Option<SocketAddr>) -> bool {
        self.inner
            .config
            .firewall
            .as_ref()
            .is_some_and(|f| f(key, addr))
    }

    pub(super) fn full(&self) -> bool {
        lock(&self.inner.peers).len() >= self.inner.config.max_peers
    }

    /// Whether `key` may be dialled now as `local` (not connected to it as
    /// `local`, not being dialled, not backing off when `backoff` says to
    /// check, room left). Local candidates keep their backoff in the local
    /// table, so that a spoofed announcement cannot rest an honest key's
    /// DHT dials.
    fn may_dial(&self, key: &PublicKey, local: PublicKey, backoff: bool) -> bool {
        if self.is_own(key) || self.full() || lock(&self.inner.peers).contains_key(&(local, *key)) {
            return false;
        }
        if backoff
            && lock(&self.inner.backoff)
                .get(key)
                .is_some_and(|(at, _)| Instant::now() < *at)
        {
            return false;
        }
        lock(&self.inner.dialling).insert(*key)
    }

    fn failed(&self, key: &PublicKey) {
        let mut backoff = lock(&self.inner.backoff);
        let delay = backoff
            .get(key)
            .map_or(Duration::from_secs(1), |(_, d)| (*d * 2).min(LOOKUP_MAX));
        backoff.insert(*key, (Instant::now() + delay, delay));
    }

    /// Takes a candidate from a discovery source: dials it in the
    /// background unless it is connected, being dialled or backing off.
    pub(super) fn offer(&self, candidate: Candidate) {
        if self.suspended() {
            return;
        }
        let backoff = matches!(candidate.hint, Hint::Dht { .. });
        let local = self.topic_key(&candidate.topic);
        if self.may_dial(&candidate.public_key, local, backoff) {
            let dialler = self.clone();
            self.inner.in_flight.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                dialler.dial(candidate).await;
                dialler
                    .inner
                    .in_flight
                    .send_modify(|n| *n = n.saturating_sub(1));
            });
        }
    }

    /// Dials `candidate` the way its source says.
    async fn dial(&self, candidate: Candidate) {
        let key = candidate.public_key;
        if self.refused(&key, None) {
            lock(&self.inner.dialling).remove(&key);
            return;
        }
        let result = match &candidate.hint {
            Hint::Dht { found, others } => {
                // The listening endpoint proves the swarm's key: a topic
                // with its own identity dials no LAN address from it.
                let lan = if self.identity_for(&found.topic).public_key() == self.public_key() {
                    self.dialable(&found.record.local_addresses)
                } else {
                    Vec::new()
                };
                self.inner.counters.tried(Path::Direct);
                let mut result = if lan.is_empty() {
                    self.reach(found).await
                } else {
                    self.inner.counters.tried(Path::Local);
                    // The record names addresses on our own networks: dial
                    // them beside the connect request; the first to prove
                    // the key wins.
                    let direct = async {
                        self.dial_direct(key, &lan)
                            .await
                            .unwrap_or(Err(Error::Unreachable))
                    };
                    first_success(direct, self.reach(found)).await
                };
                // The other family's lookup found the key too: try there.
                while !matches!(result, Ok(Ok(_))) {
                    let Some(next) = lock(others).pop() else {
                        break;
                    };
                    self.inner.counters.tried(Path::Direct);
                    result = self.reach(&next).await;
                }
                result
            }
            Hint::Local(addresses) => {
                // A flood of announcements waits its turn here.
                let permit = self.inner.local_dials.acquire().await;
                self.inner.counters.tried(Path::Local);
                let dialled = self.dial_direct(key, addresses).await;
                drop(permit);
                let mut table = lock(&self.inner.local_peers);
                match dialled {
                    Some(result) => {
                        match &result {
                            Ok(_) => table.succeeded(&key),
                            Err(_) => table.failed(&key, std::time::Instant::now()),
                        }
                        Ok(result)
                    }
                    // Every address rests or is being dialled: nothing was
                    // sent, so the key is not to blame.
                    None => Ok(Err(Error::Unreachable)),
                }
            }
        };
        lock(&self.inner.dialling).remove(&key);
        match (result, &candidate.hint) {
            (Ok(Ok(mut connection)), _) => {
                lock(&self.inner.backoff).remove(&key);
                connection.topic = Some(candidate.topic);
                self.register(connection);
            }
            (_, Hint::Dht { .. }) => self.failed(&key),
            (_, Hint::Local(_)) => {}
        }
    }

    /// Reaches the announcer of `found` on the family of the node holding
    /// it: hole punched, or, if that fails, through a relay of that family.
    async fn reach(
        &self,
        found: &crate::query::FoundRecord,
    ) -> Result<Result<PeerConnection>, tokio::time::error::Elapsed> {
        let mut result = timeout(CONNECT_TIMEOUT, self.dial_once(found, None)).await;
        if matches!(result, Ok(Err(Error::Unreachable)) | Err(_))
            && let Some(relay) = self.relay(&found.holder).await
        {
            // Punching failed: meet at a relay instead.
            result = timeout(CONNECT_TIMEOUT, self.dial_once(found, Some(relay))).await;
        }
        result
    }

    /// Keeps one connection per peer and identity of this side: of two,
    /// the one dialled by the peer with the smaller key wins on both sides.
    pub(super) fn register(&self, connection: PeerConnection) {
        let remote = connection.remote;
        if self.suspended() || self.refused(&remote, Some(connection.remote_address())) {
            connection.close();
            return;
        }
        let initiator_key = if connection.initiator {
            connection.local
        } else {
            remote
        };
        let pair = (connection.local, remote);
        {
            let mut peers = lock(&self.inner.peers);
            // Attempts run in parallel: the bound is enforced here, where
            // connections are counted, not only before dialling.
            if !peers.contains_key(&pair) && peers.len() >= self.inner.config.max_peers {
                connection.close();
                return;
            }
            if let Some(existing) = peers.get(&pair)
                && existing.connection.close_reason().is_none()
            {
                let keep_existing = existing.initiator_key != initiator_key
                    && existing.initiator_key.0 < initiator_key.0;
                if keep_existing {
                    connection.close();
                    if let (Some(topic), Some(existing)) = (connection.topic, peers.get_mut(&pair))
                    {
                        existing.topics.insert(topic);
                    }
                    return;
                }
                existing.connection.close(0u32.into(), b"duplicate");
            }
            let mut topics: HashSet<[u8; 32]> = peers
                .remove(&pair)
                .map(|old| old.topics)
                .unwrap_or_default();
            topics.extend(connection.topic);
            peers.insert(
                pair,
                Live {
                    connection: connection.connection.clone(),
                    initiator_key,
                    path: connection.path,
                    topics,
                },
            );
        }
        self.inner.counters.made(
            connection.path,
            connection.initiator,
            super::Family::of(&connection.remote_address()),
        );
        tokio::spawn(super::streams::accept_loop(
            Arc::downgrade(&self.inner),
            remote,
            connection.connection.clone(),
        ));
        let watched = connection.connection.clone();
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            watched.closed().await;
            if let Some(inner) = weak.upgrade() {
                let removed = {
                    let mut peers = lock(&inner.peers);
                    let ours = peers
                        .get(&pair)
                        .is_some_and(|l| l.connection.stable_id() == watched.stable_id());
                    ours && peers.remove(&pair).is_some()
                };
                if removed {
                    let _ = inner.events.send(SwarmEvent::Disconnected { remote });
                    inner.lost.send_modify(|generation| *generation += 1);
                }
            }
        });
        let _ = self.inner.events.send(SwarmEvent::Connected {
            remote,
            path: connection.path,
            initiator: connection.initiator,
        });
        if let Some(sender) = lock(&self.inner.connections).as_ref() {
            let _ = sender.send(connection);
        }
    }
}
