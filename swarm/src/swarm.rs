//! [`Swarm`]: join topics, find peers through the DHT, and get
//! authenticated QUIC connections to them, direct or relayed.
//!
//! Who owns what: the [`Dht`] task owns the DHT socket; one task per joined
//! topic announces (server) and looks up (client) on a schedule; one task
//! per connection attempt owns its fresh socket until QUIC takes it; the
//! peer table (one live connection per remote key) is shared behind a
//! mutex. Connections come out of [`Swarm::connections`], or go straight
//! into a [`Replication`] with [`Swarm::replicate`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_core::{KeyPair, PublicKey};
use hyper_wire::Replication;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use crate::codec::address;
use crate::dht::{Dht, IncomingConnect};
use crate::error::{Error, Result};
use crate::messages::{Body, Connect, Holepunch, NatKind, PeerRecord};
use crate::node::{Config, Reachability};
use crate::punch::{self, Prepared, nat_of};
use crate::query::{FoundRecord, QueryKind};
use crate::quic::{self, QuicStream};
use crate::signing::{sign_record, sign_unannounce};

/// Refuses a peer: called with the peer's key and, when known, its address;
/// `true` refuses.
pub type Firewall = Arc<dyn Fn(&PublicKey, Option<SocketAddr>) -> bool + Send + Sync>;

/// How a swarm runs.
#[derive(Clone)]
pub struct SwarmConfig {
    /// This peer's identity: what its connections prove.
    pub keypair: KeyPair,
    /// DHT nodes to start from.
    pub bootstrap: Vec<SocketAddr>,
    /// Where the DHT socket binds.
    pub listen: SocketAddr,
    /// Connections at most; further peers are refused or not dialled.
    pub max_peers: usize,
    /// Refuses peers by key or address.
    pub firewall: Option<Firewall>,
    /// Whether the DHT node serves others (see [`Reachability`]).
    pub reachability: Reachability,
    /// Whether this node also relays for others.
    pub relay: bool,
}

impl SwarmConfig {
    /// Defaults around `keypair`: a random port (IPv6 if the first
    /// bootstrap node is, else IPv4), 64 peers, no firewall.
    pub fn new(keypair: KeyPair, bootstrap: Vec<SocketAddr>) -> Self {
        let listen = match bootstrap.first() {
            Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        SwarmConfig {
            keypair,
            bootstrap,
            listen,
            max_peers: 64,
            firewall: None,
            reachability: Reachability::Auto,
            relay: false,
        }
    }
}

/// How a connection reached the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Straight between the two peers (hole punched, or one was public).
    Direct,
    /// Through a blind relay.
    Relay,
}

impl Path {
    /// `direct` or `relay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Relay => "relay",
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

/// What [`Swarm::join`] does for a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOptions {
    /// Announce this peer under the topic and accept connections.
    pub server: bool,
    /// Look the topic up and connect to the peers found.
    pub client: bool,
}

/// One authenticated connection to a peer, with the stream the replication
/// protocol runs on.
pub struct PeerConnection {
    /// The key the peer proved.
    pub remote: PublicKey,
    /// Direct or relayed.
    pub path: Path,
    /// Whether this side dialled.
    pub initiator: bool,
    /// The bidirectional stream for the replication protocol.
    pub stream: QuicStream,
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
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

struct Live {
    connection: quinn::Connection,
    initiator_key: PublicKey,
}

struct Topic {
    task: JoinHandle<()>,
    flushed: watch::Receiver<bool>,
    server: bool,
}

struct Inner {
    dht: Dht,
    config: SwarmConfig,
    peers: Mutex<HashMap<PublicKey, Live>>,
    dialling: Mutex<HashSet<PublicKey>>,
    backoff: Mutex<HashMap<PublicKey, (Instant, Duration)>>,
    topics: Mutex<HashMap<[u8; 32], Topic>>,
    connections: mpsc::UnboundedSender<PeerConnection>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<PeerConnection>>>,
    events: broadcast::Sender<SwarmEvent>,
    /// Woken when a connection ends, so lookups run again at once.
    lost: Arc<Notify>,
}

/// Finds and connects peers by topic. Cloning gives another handle; the
/// swarm stops when the last handle is dropped and its tasks end.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

/// The TLS exporter label of the secret channel capabilities are bound to.
const CAPABILITY_LABEL: &[u8] = b"hyper-swarm 2026 capability binding";

/// Records live this long on DHT nodes; announcing again before then.
const REANNOUNCE: Duration = Duration::from_secs(10 * 60);
/// Pings to the nodes holding an announcement, under NAT mapping timeouts.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Lookups while no peer is connected start at this interval and double.
const LOOKUP_FIRST: Duration = Duration::from_secs(1);
/// ... up to this.
const LOOKUP_MAX: Duration = Duration::from_secs(60);
/// A connect attempt gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Swarm {
    /// Starts the DHT node and the handler of incoming connect requests.
    pub async fn new(config: SwarmConfig) -> Result<Swarm> {
        let dht = Dht::bind(
            config.listen,
            Config {
                bootstrap: config.bootstrap.clone(),
                reachability: config.reachability,
                relay: config.relay,
                ..Config::default()
            },
        )
        .await?;
        let incoming = dht.incoming();
        let (connections, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let swarm = Swarm {
            inner: Arc::new(Inner {
                dht,
                config,
                peers: Mutex::new(HashMap::new()),
                dialling: Mutex::new(HashSet::new()),
                backoff: Mutex::new(HashMap::new()),
                topics: Mutex::new(HashMap::new()),
                connections,
                receiver: Mutex::new(Some(receiver)),
                events,
                lost: Arc::new(Notify::new()),
            }),
        };
        if let Some(mut incoming) = incoming {
            let weak = Arc::downgrade(&swarm.inner);
            tokio::spawn(async move {
                while let Some(request) = incoming.recv().await {
                    let Some(inner) = weak.upgrade() else { return };
                    let swarm = Swarm { inner };
                    tokio::spawn(async move { swarm.accept(request).await });
                }
            });
        }
        Ok(swarm)
    }

    /// The DHT node underneath.
    pub fn dht(&self) -> &Dht {
        &self.inner.dht
    }

    /// This peer's identity.
    pub fn public_key(&self) -> PublicKey {
        self.inner.config.keypair.public_key()
    }

    /// Peers connected now.
    pub fn peers(&self) -> Vec<PublicKey> {
        lock(&self.inner.peers).keys().copied().collect()
    }

    /// New connections as they are made; only the first caller gets the
    /// receiver.
    pub fn connections(&self) -> Option<mpsc::UnboundedReceiver<PeerConnection>> {
        lock(&self.inner.receiver).take()
    }

    /// Connection changes from now on.
    pub fn events(&self) -> broadcast::Receiver<SwarmEvent> {
        self.inner.events.subscribe()
    }

    /// Runs the replication protocol over every connection, now and later
    /// (takes [`Swarm::connections`]).
    pub fn replicate(&self, replication: Replication) -> Option<JoinHandle<()>> {
        let mut connections = self.connections()?;
        Some(tokio::spawn(async move {
            while let Some(connection) = connections.recv().await {
                let replication = replication.clone();
                tokio::spawn(async move {
                    let _ = connection.replicate(&replication).await;
                });
            }
        }))
    }

    /// Joins `topic`: announces this peer under it (`server`) and/or looks
    /// it up and connects to the peers found (`client`), again and again
    /// until [`Swarm::leave`].
    pub fn join(&self, topic: [u8; 32], options: JoinOptions) {
        let (flushed_tx, flushed) = watch::channel(false);
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move { topic_loop(weak, topic, options, flushed_tx).await });
        let old = lock(&self.inner.topics).insert(
            topic,
            Topic {
                task,
                flushed,
                server: options.server,
            },
        );
        if let Some(old) = old {
            old.task.abort();
        }
    }

    /// Leaves `topic`: stops its lookups and announcements and removes the
    /// announcement from the DHT.
    pub async fn leave(&self, topic: [u8; 32]) -> Result<()> {
        let Some(old) = lock(&self.inner.topics).remove(&topic) else {
            return Ok(());
        };
        old.task.abort();
        if old.server {
            let request = sign_unannounce(&self.inner.config.keypair, &topic, now_millis());
            self.inner.dht.query(QueryKind::Unannounce(request)).await?;
        }
        Ok(())
    }

    /// Waits until every joined topic has been announced once and looked up
    /// once.
    pub async fn flush(&self) -> Result<()> {
        let waits: Vec<watch::Receiver<bool>> = lock(&self.inner.topics)
            .values()
            .map(|t| t.flushed.clone())
            .collect();
        for mut flushed in waits {
            flushed
                .wait_for(|done| *done)
                .await
                .map_err(|_| Error::Stopped)?;
        }
        Ok(())
    }

    fn refused(&self, key: &PublicKey, addr: Option<SocketAddr>) -> bool {
        self.inner
            .config
            .firewall
            .as_ref()
            .is_some_and(|f| f(key, addr))
    }

    fn full(&self) -> bool {
        lock(&self.inner.peers).len() >= self.inner.config.max_peers
    }

    /// DHT nodes to learn a fresh socket's mapping from.
    ///
    /// Two are needed to tell a symmetric NAT (each sees another port) from
    /// a cone; the bootstrap nodes come first, then relays and table nodes,
    /// preferring a second observer on another IP.
    async fn observers(&self) -> Vec<SocketAddr> {
        let mut candidates: Vec<SocketAddr> = self.inner.dht.bootstrap_nodes().to_vec();
        if let Ok(status) = self.inner.dht.status().await {
            candidates.extend(status.relays);
            candidates.extend(status.nodes);
        }
        let mut observers: Vec<SocketAddr> = Vec::new();
        for pass in [true, false] {
            for c in &candidates {
                let new_ip = observers.iter().all(|o| o.ip() != c.ip());
                if observers.len() < 2 && !observers.contains(c) && (new_ip || !pass) {
                    observers.push(*c);
                }
            }
        }
        observers
    }

    async fn relay(&self) -> Option<SocketAddr> {
        let status = self.inner.dht.status().await.ok()?;
        status.relays.first().copied()
    }

    /// Whether `key` may be dialled now (not connected, not being dialled,
    /// not backing off, room left).
    fn may_dial(&self, key: &PublicKey) -> bool {
        if *key == self.public_key() || self.full() || lock(&self.inner.peers).contains_key(key) {
            return false;
        }
        if lock(&self.inner.backoff)
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

    /// This side's hole-punching details for one attempt.
    fn holepunch(
        &self,
        prepared: &Prepared,
        session: &[u8; 32],
        relay: Option<SocketAddr>,
    ) -> Holepunch {
        Holepunch {
            public_key: self.public_key().0.to_vec(),
            addresses: prepared.addresses.iter().map(|a| address(*a)).collect(),
            nat: prepared.nat as i32,
            session: session.to_vec(),
            relay: relay.map(address),
        }
    }

    /// Dials the peer of `found`.
    async fn dial(&self, found: FoundRecord) {
        let key = found.public_key;
        if self.refused(&key, None) {
            lock(&self.inner.dialling).remove(&key);
            return;
        }
        let mut result = timeout(CONNECT_TIMEOUT, self.dial_once(&found, None)).await;
        if matches!(result, Ok(Err(Error::Unreachable)) | Err(_))
            && let Some(relay) = self.relay().await
        {
            // Punching failed: meet at a relay instead.
            result = timeout(CONNECT_TIMEOUT, self.dial_once(&found, Some(relay))).await;
        }
        lock(&self.inner.dialling).remove(&key);
        match result {
            Ok(Ok(connection)) => {
                lock(&self.inner.backoff).remove(&key);
                self.register(connection);
            }
            _ => self.failed(&key),
        }
    }

    async fn dial_once(
        &self,
        found: &FoundRecord,
        relay: Option<SocketAddr>,
    ) -> Result<PeerConnection> {
        let prepared = punch::prepare(&self.observers().await).await?;
        let session = crate::punch::random_bytes()?;
        let ours = self.holepunch(&prepared, &session, relay);
        let connect = Connect {
            topic: found.topic.to_vec(),
            public_key: found.public_key.0.to_vec(),
            holepunch: Some(ours),
        };
        let reply = self
            .inner
            .dht
            .request(found.holder, Body::Connect(connect))
            .await?;
        let theirs = reply.holepunch.ok_or(Error::BadAnswer)?;
        if theirs.public_key != found.public_key.0 {
            return Err(Error::WrongPeer);
        }
        let (socket, addr, path) = match theirs.relay.as_ref().and_then(crate::codec::socket_addr) {
            Some(relay) => {
                punch::register(&prepared.socket, relay, &session).await?;
                (prepared.socket.into_std()?, relay, Path::Relay)
            }
            None => {
                let (socket, addr) = punch::client(prepared, session, &theirs).await?;
                (socket.into_std()?, addr, Path::Direct)
            }
        };
        let endpoint = quic::endpoint(socket, &self.inner.config.keypair)?;
        let connection = quic::connect(&endpoint, addr, &found.public_key).await?;
        let stream = quic::open_stream(&connection).await?;
        Ok(PeerConnection {
            remote: found.public_key,
            path,
            initiator: true,
            stream,
            connection,
            _endpoint: endpoint,
        })
    }

    /// Handles a connect request passed on by the DHT.
    async fn accept(&self, request: IncomingConnect) {
        let IncomingConnect {
            token,
            from,
            holepunch: theirs,
            ..
        } = request;
        let Some(key) = crate::codec::bytes32(&theirs.public_key).map(PublicKey) else {
            let _ = self.inner.dht.answer_connect(token, None);
            return;
        };
        if self.refused(&key, from) || self.full() {
            let _ = self.inner.dht.answer_connect(token, None);
            return;
        }
        let result = timeout(CONNECT_TIMEOUT, self.accept_once(token, key, theirs)).await;
        if let Ok(Ok(connection)) = result {
            self.register(connection);
        }
    }

    async fn accept_once(
        &self,
        token: crate::node::ConnectToken,
        key: PublicKey,
        theirs: Holepunch,
    ) -> Result<PeerConnection> {
        let prepared = match punch::prepare(&self.observers().await).await {
            Ok(p) => p,
            Err(e) => {
                let _ = self.inner.dht.answer_connect(token, None);
                return Err(e);
            }
        };
        let session = crate::codec::bytes32(&theirs.session).ok_or(Error::BadAnswer)?;
        let proposed = theirs.relay.as_ref().and_then(crate::codec::socket_addr);
        let both_random = prepared.nat == NatKind::Random && nat_of(&theirs) == NatKind::Random;
        let relay = match (proposed, both_random) {
            (Some(relay), _) => Some(relay),
            (None, true) => match self.relay().await {
                Some(relay) => Some(relay),
                None => {
                    let _ = self.inner.dht.answer_connect(token, None);
                    return Err(Error::NoRelay);
                }
            },
            (None, false) => None,
        };
        if let Some(relay) = relay
            && let Err(e) = punch::register(&prepared.socket, relay, &session).await
        {
            let _ = self.inner.dht.answer_connect(token, None);
            return Err(e);
        }
        let ours = self.holepunch(&prepared, &session, relay);
        self.inner.dht.answer_connect(token, Some(ours))?;
        let (socket, path) = match relay {
            Some(_) => (prepared.socket.into_std()?, Path::Relay),
            None => (
                punch::server(prepared, session, &theirs).await?,
                Path::Direct,
            ),
        };
        let endpoint = quic::endpoint(socket, &self.inner.config.keypair)?;
        let incoming = endpoint.accept().await.ok_or(Error::Unreachable)?;
        let connection = incoming
            .await
            .map_err(|e| Error::Quic(quic::QuicError::Handshake(e)))?;
        if quic::remote_identity(&connection) != Some(key) {
            connection.close(1u32.into(), b"wrong identity");
            return Err(Error::WrongPeer);
        }
        let stream = quic::accept_stream(&connection).await?;
        Ok(PeerConnection {
            remote: key,
            path,
            initiator: false,
            stream,
            connection,
            _endpoint: endpoint,
        })
    }

    /// Keeps one connection per peer: of two, the one dialled by the peer
    /// with the smaller key wins on both sides.
    fn register(&self, connection: PeerConnection) {
        let remote = connection.remote;
        if self.refused(&remote, Some(connection.remote_address())) {
            connection.close();
            return;
        }
        let initiator_key = if connection.initiator {
            self.public_key()
        } else {
            remote
        };
        {
            let mut peers = lock(&self.inner.peers);
            // Attempts run in parallel: the bound is enforced here, where
            // connections are counted, not only before dialling.
            if !peers.contains_key(&remote) && peers.len() >= self.inner.config.max_peers {
                connection.close();
                return;
            }
            if let Some(existing) = peers.get(&remote)
                && existing.connection.close_reason().is_none()
            {
                let keep_existing = existing.initiator_key != initiator_key
                    && existing.initiator_key.0 < initiator_key.0;
                if keep_existing {
                    connection.close();
                    return;
                }
                existing.connection.close(0u32.into(), b"duplicate");
            }
            peers.insert(
                remote,
                Live {
                    connection: connection.connection.clone(),
                    initiator_key,
                },
            );
        }
        let watched = connection.connection.clone();
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            watched.closed().await;
            if let Some(inner) = weak.upgrade() {
                let removed = {
                    let mut peers = lock(&inner.peers);
                    let ours = peers
                        .get(&remote)
                        .is_some_and(|l| l.connection.stable_id() == watched.stable_id());
                    ours && peers.remove(&remote).is_some()
                };
                if removed {
                    let _ = inner.events.send(SwarmEvent::Disconnected { remote });
                    inner.lost.notify_waiters();
                }
            }
        });
        let _ = self.inner.events.send(SwarmEvent::Connected {
            remote,
            path: connection.path,
            initiator: connection.initiator,
        });
        let _ = self.inner.connections.send(connection);
    }
}

/// Announces and/or looks up `topic` until aborted.
async fn topic_loop(
    weak: std::sync::Weak<Inner>,
    topic: [u8; 32],
    options: JoinOptions,
    flushed: watch::Sender<bool>,
) {
    let mut holders: Vec<SocketAddr> = Vec::new();
    let mut next_announce = Instant::now();
    let mut next_lookup = Instant::now();
    let mut lookup_every = LOOKUP_FIRST;
    let mut next_keep_alive = Instant::now() + KEEP_ALIVE;
    let mut announced = !options.server;
    let mut looked_up = !options.client;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let swarm = Swarm { inner };
        let now = Instant::now();
        if options.server && now >= next_announce {
            if let Ok(outcome) = announce(&swarm, topic).await {
                holders = outcome;
                announced = !holders.is_empty() || announced;
            }
            next_announce = Instant::now()
                + if holders.is_empty() {
                    LOOKUP_FIRST
                } else {
                    REANNOUNCE
                };
        }
        if options.server && now >= next_keep_alive {
            for holder in &holders {
                let _ = swarm.inner.dht.keep_alive(*holder);
            }
            next_keep_alive = now + KEEP_ALIVE;
        }
        if options.client && now >= next_lookup {
            if let Ok((mut found, done)) = swarm.inner.dht.lookup(topic) {
                while let Some(record) = found.recv().await {
                    if swarm.may_dial(&record.public_key) {
                        let dialler = swarm.clone();
                        tokio::spawn(async move { dialler.dial(record).await });
                    }
                }
                let _ = done.await;
            }
            looked_up = true;
            lookup_every = if swarm.peers().is_empty() {
                (lookup_every * 2).min(LOOKUP_MAX)
            } else {
                LOOKUP_MAX
            };
            next_lookup = Instant::now() + lookup_every;
        }
        if announced && looked_up {
            let _ = flushed.send(true);
        }
        let wake = [
            options.server.then_some(next_announce),
            options.server.then_some(next_keep_alive),
            options.client.then_some(next_lookup),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + LOOKUP_MAX);
        let lost = swarm.inner.lost.clone();
        drop(swarm);
        let pause = sleep(
            wake.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50)),
        );
        tokio::select! {
            () = pause => {}
            () = lost.notified() => {
                // A peer went away: look again soon, backing off anew.
                lookup_every = LOOKUP_FIRST;
                next_lookup = Instant::now() + LOOKUP_FIRST;
            }
        }
    }
}

/// Announces this peer under `topic`; the nodes that stored it.
async fn announce(swarm: &Swarm, topic: [u8; 32]) -> Result<Vec<SocketAddr>> {
    swarm.inner.dht.bootstrapped().await?;
    let status = swarm.inner.dht.status().await?;
    let record = PeerRecord {
        public_key: swarm.public_key().0.to_vec(),
        addresses: status.public_address.into_iter().map(address).collect(),
        relays: status.relays.iter().map(|a| address(*a)).collect(),
        timestamp: now_millis(),
    };
    let signed = sign_record(&swarm.inner.config.keypair, &topic, &record);
    let outcome = swarm
        .inner
        .dht
        .query(QueryKind::Announce {
            topic,
            record: signed,
        })
        .await?;
    Ok(outcome.stored_at)
}
