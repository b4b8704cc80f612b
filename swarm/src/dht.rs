//! [`Dht`]: a [`Node`] driven by one tokio task on one UDP socket. The task
//! owns the node, the socket and (with `relay`) the relay table; handles
//! talk to it through a command channel and get answers on oneshots.
//!
//! Datagrams in: kind 0x01 goes to the node, 0x02 registers at the relay,
//! anything else from a paired address is forwarded by the relay. Node
//! events out: query results and responses to their waiters, forwarded
//! connect requests to [`Dht::incoming`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, Datagram, RelayMessage};
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::limits::{Buckets, Prefix, TokenBucket};
use crate::messages::{Body, Holepunch, MutableValue, Reply};
use crate::node::{Config, ConnectToken, Event, Node, QueryId, RequestError, RequestId};
use crate::query::{FoundRecord, QueryKind, QueryOutcome};
use crate::relay::{Registered, Relay};
use crate::signing::{immutable_target, sign_mutable};
use hyper_core::{KeyPair, PublicKey};

/// Pings the second port answers per second at most, in all.
const OBSERVER_PINGS_PER_SECOND: f64 = 1000.0;
/// ... and per source /24 (IPv4) or /64 (IPv6), with twice that at once.
const OBSERVER_PINGS_PER_PREFIX: f64 = 10.0;

/// A connect request passed on to this node by the holder of one of its
/// announcements; answer it with [`Dht::answer_connect`].
#[derive(Debug)]
pub struct IncomingConnect {
    /// To answer with.
    pub token: ConnectToken,
    /// The topic the client found this node under.
    pub topic: [u8; 32],
    /// The client's address as the holder saw it.
    pub from: Option<SocketAddr>,
    /// The client's details.
    pub holepunch: Holepunch,
}

/// What the node knows of itself.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The id it serves under, once it does.
    pub id: Option<NodeId>,
    /// Its public address, once observed.
    pub public_address: Option<SocketAddr>,
    /// Whether the first walk is done.
    pub bootstrapped: bool,
    /// Nodes in its routing table.
    pub table: usize,
    /// Entries it stores for others.
    pub stored: usize,
    /// Relays it heard of.
    pub relays: Vec<SocketAddr>,
    /// Up to 8 nodes of its routing table (closest to itself).
    pub nodes: Vec<SocketAddr>,
    /// Relay sessions it is carrying.
    pub relaying: usize,
}

enum Command {
    Query {
        kind: QueryKind,
        done: oneshot::Sender<QueryOutcome>,
        found: Option<mpsc::UnboundedSender<FoundRecord>>,
    },
    Request {
        to: SocketAddr,
        body: Body,
        done: oneshot::Sender<Result<Reply, RequestError>>,
    },
    KeepAlive(SocketAddr),
    Answer(ConnectToken, Option<Holepunch>),
    Status(oneshot::Sender<Status>),
    NetworkChanged,
}

/// A running DHT node. Cloning gives another handle to the same node; the
/// node stops when the last handle is dropped.
#[derive(Clone)]
pub struct Dht {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    incoming: Arc<Mutex<Option<mpsc::UnboundedReceiver<IncomingConnect>>>>,
    bootstrap: Arc<Vec<SocketAddr>>,
}

impl Dht {
    /// Binds `addr` and starts a node with `config` (and bootstraps it).
    /// Must be called inside a tokio runtime.
    ///
    /// One node serves one address family: an IPv6 address (`[::]:port`
    /// too) binds an IPv6-only socket, so that an IPv4 node may bind the
    /// same port beside it and the two networks stay apart (a dual-stack
    /// host runs one node per family, as [`Swarm`](crate::Swarm) does).
    pub async fn bind(addr: SocketAddr, mut config: Config) -> Result<Dht> {
        let socket = bind_one_family(addr)?;
        let local_addr = socket.local_addr()?;
        // A second port on the same IP that only answers pings: a client
        // that knows just this node still gets two observations of its
        // mapping.
        let observer = bind_one_family(SocketAddr::new(addr.ip(), 0))?;
        config.observer_port = Some(observer.local_addr()?.port());
        let bootstrap = Arc::new(config.bootstrap.clone());
        let seed = crate::punch::random_bytes()?;
        let now = Instant::now();
        let relay = config.relay.then(|| {
            Relay::new(
                now,
                blake3::derive_key("hyper-swarm 2026 relay seed", &seed),
            )
        });
        let mut node = Node::new(config, now, seed);
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        node.set_clock(now, unix_ms);
        node.bootstrap(now);
        let (commands, rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let driver = Driver {
            node,
            socket,
            observer,
            observer_budget: TokenBucket::new(
                now,
                OBSERVER_PINGS_PER_SECOND,
                OBSERVER_PINGS_PER_SECOND,
            ),
            observer_rates: Buckets::new(
                OBSERVER_PINGS_PER_PREFIX,
                2.0 * OBSERVER_PINGS_PER_PREFIX,
                65_536,
            ),
            relay,
            commands: rx,
            incoming: incoming_tx,
            queries: HashMap::new(),
            requests: HashMap::new(),
        };
        tokio::spawn(driver.run());
        Ok(Dht {
            commands,
            local_addr,
            incoming: Arc::new(Mutex::new(Some(incoming))),
            bootstrap,
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bootstrap nodes it was started with.
    pub fn bootstrap_nodes(&self) -> &[SocketAddr] {
        &self.bootstrap
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Stopped)
    }

    /// Runs a query to the end.
    pub async fn query(&self, kind: QueryKind) -> Result<QueryOutcome> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Query {
            kind,
            done,
            found: None,
        })?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Runs a lookup of `topic`; records arrive on the receiver as they are
    /// found, the outcome on the oneshot at the end.
    pub fn lookup(
        &self,
        topic: [u8; 32],
    ) -> Result<(
        mpsc::UnboundedReceiver<FoundRecord>,
        oneshot::Receiver<QueryOutcome>,
    )> {
        let (found, records) = mpsc::unbounded_channel();
        let (done, rx) = oneshot::channel();
        self.send(Command::Query {
            kind: QueryKind::Lookup(topic),
            done,
            found: Some(found),
        })?;
        Ok((records, rx))
    }

    /// Stores `value` as version `seq` of `keypair`'s mutable value on the
    /// nodes closest to it; the nodes that stored it.
    pub async fn mutable_put(
        &self,
        keypair: &KeyPair,
        seq: u64,
        value: Vec<u8>,
    ) -> Result<Vec<SocketAddr>> {
        let value = sign_mutable(keypair, seq, value);
        Ok(self.query(QueryKind::MutablePut(value)).await?.stored_at)
    }

    /// The newest version (at least `seq`) of `public_key`'s mutable value,
    /// its signature checked.
    pub async fn mutable_get(
        &self,
        public_key: PublicKey,
        seq: u64,
    ) -> Result<Option<MutableValue>> {
        Ok(self
            .query(QueryKind::MutableGet { public_key, seq })
            .await?
            .mutable)
    }

    /// Stores `value` under its BLAKE3 hash, which it returns.
    pub async fn immutable_put(&self, value: Vec<u8>) -> Result<[u8; 32]> {
        let target = immutable_target(&value);
        self.query(QueryKind::ImmutablePut(value)).await?;
        Ok(target)
    }

    /// The value whose BLAKE3 hash is `target`, if a node holds it.
    pub async fn immutable_get(&self, target: [u8; 32]) -> Result<Option<Vec<u8>>> {
        Ok(self.query(QueryKind::ImmutableGet(target)).await?.immutable)
    }

    /// Sends one request to `to` and waits for its answer.
    pub async fn request(&self, to: SocketAddr, body: Body) -> Result<Reply> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Request { to, body, done })?;
        Ok(rx.await.map_err(|_| Error::Stopped)??)
    }

    /// Pings `to` without waiting (keeps a NAT mapping toward it open).
    pub fn keep_alive(&self, to: SocketAddr) -> Result<()> {
        self.send(Command::KeepAlive(to))
    }

    /// Answers a forwarded connect request (`None` refuses it).
    pub fn answer_connect(&self, token: ConnectToken, holepunch: Option<Holepunch>) -> Result<()> {
        self.send(Command::Answer(token, holepunch))
    }

    /// The stream of forwarded connect requests; only the first caller
    /// gets it.
    pub fn incoming(&self) -> Option<mpsc::UnboundedReceiver<IncomingConnect>> {
        self.incoming.lock().ok()?.take()
    }

    /// Tells the node this host's addresses changed: it forgets its
    /// observed public address (and the id bound to it) and walks the
    /// network again, re-learning both; [`Dht::bootstrapped`] waits for
    /// that walk. See [`Node::network_changed`].
    pub fn network_changed(&self) -> Result<()> {
        self.send(Command::NetworkChanged)
    }

    /// What the node knows of itself now.
    pub async fn status(&self) -> Result<Status> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Waits until the first walk of the network is done.
    pub async fn bootstrapped(&self) -> Result<Status> {
        loop {
            let status = self.status().await?;
            if status.bootstrapped {
                return Ok(status);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A UDP socket bound to `addr`, IPv6-only for an IPv6 address.
fn bind_one_family(addr: SocketAddr) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

struct Driver {
    node: Node,
    socket: UdpSocket,
    /// The second port: answers pings only.
    observer: UdpSocket,
    /// Pings the second port may still answer, in all and per prefix.
    observer_budget: TokenBucket,
    observer_rates: Buckets<Prefix>,
    relay: Option<Relay>,
    commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::UnboundedSender<IncomingConnect>,
    queries: HashMap<
        QueryId,
        (
            oneshot::Sender<QueryOutcome>,
            Option<mpsc::UnboundedSender<FoundRecord>>,
        ),
    >,
    requests: HashMap<RequestId, oneshot::Sender<Result<Reply, RequestError>>>,
}

impl Driver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        let mut observed = vec![0u8; 2048];
        loop {
            self.flush().await;
            let wake = self.node.poll_timeout();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((len, from)) = received else { continue };
                    let bytes = buf.get(..len).unwrap_or_default();
                    self.datagram(from, bytes).await;
                }
                received = self.observer.recv_from(&mut observed) => {
                    let Ok((len, from)) = received else { continue };
                    let bytes = observed.get(..len).unwrap_or_default();
                    self.observe(from, bytes).await;
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => return,
                },
                () = sleep => self.node.handle_timeout(Instant::now()),
            }
        }
    }

    /// Answers a ping on the second port with the sender's address (at
    /// most [`OBSERVER_PINGS_PER_PREFIX`] a second per source prefix and
    /// [`OBSERVER_PINGS_PER_SECOND`] in all; anything else is dropped).
    async fn observe(&mut self, from: SocketAddr, bytes: &[u8]) {
        let Ok(Datagram::Dht(packet)) = codec::decode(bytes) else {
            return;
        };
        if !matches!(packet.body, Some(Body::Ping(_))) {
            return;
        }
        let now = Instant::now();
        if !self.observer_rates.take(now, Prefix::of(from.ip()))
            || !self.observer_budget.take(now, 1.0)
        {
            return;
        }
        let answer = crate::messages::Packet {
            tid: packet.tid,
            id: Vec::new(),
            to: Some(codec::address(from)),
            flags: 0,
            body: Some(Body::Reply(Reply::default())),
            ..crate::messages::Packet::default()
        };
        let _ = self.observer.send_to(&codec::encode(&answer), from).await;
    }

    async fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = Instant::now();
        match codec::decode(bytes) {
            Ok(Datagram::Dht(_)) => self.node.handle_packet(now, from, bytes),
            Ok(Datagram::Relay(message)) => {
                let Some(relay) = self.relay.as_mut() else {
                    return;
                };
                let answer = match message {
                    // Prove the address first: the cookie goes to it.
                    RelayMessage::Hello(session) => {
                        RelayMessage::Cookie(session, relay.cookie(now, from, &session))
                    }
                    RelayMessage::Cookie(session, cookie) => {
                        match relay.register(now, from, session, &cookie) {
                            Registered::Yes => RelayMessage::Ack(session),
                            Registered::BadCookie | Registered::Refused => return,
                        }
                    }
                    RelayMessage::Ack(_) => return,
                };
                let _ = self
                    .socket
                    .send_to(&codec::relay_datagram(&answer), from)
                    .await;
            }
            Ok(Datagram::Other) => {
                if let Some(to) = self
                    .relay
                    .as_mut()
                    .and_then(|r| r.forward(now, from, bytes.len()))
                {
                    let _ = self.socket.send_to(bytes, to).await;
                }
            }
            Ok(Datagram::Probe(_)) | Err(_) => {}
        }
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Query { kind, done, found } => {
                let id = self.node.query(now, kind);
                self.queries.insert(id, (done, found));
            }
            Command::Request { to, body, done } => {
                let id = self.node.request(now, to, body);
                self.requests.insert(id, done);
            }
            Command::KeepAlive(to) => self.node.keep_alive(now, to),
            Command::Answer(token, holepunch) => self.node.answer_connect(token, holepunch),
            Command::NetworkChanged => self.node.network_changed(now),
            Command::Status(reply) => {
                let _ = reply.send(Status {
                    id: self.node.id(),
                    public_address: self.node.public_address(),
                    bootstrapped: self.node.is_bootstrapped(),
                    table: self.node.table_len(),
                    stored: self.node.stored(),
                    relays: self.node.relays().collect(),
                    nodes: self.node.neighbours(8),
                    relaying: self.relay.as_ref().map_or(0, Relay::sessions),
                });
            }
        }
    }

    async fn flush(&mut self) {
        while let Some(transmit) = self.node.poll_transmit() {
            let _ = self.socket.send_to(&transmit.bytes, transmit.to).await;
        }
        if let Some(relay) = self.relay.as_mut() {
            relay.expire(Instant::now());
        }
        while let Some(event) = self.node.poll_event() {
            match event {
                Event::QueryDone { id, outcome } => {
                    if let Some((done, _)) = self.queries.remove(&id) {
                        let _ = done.send(outcome);
                    }
                }
                Event::Found { id, record } => {
                    if let Some((_, Some(found))) = self.queries.get(&id) {
                        let _ = found.send(record);
                    }
                }
                Event::Response { id, result } => {
                    if let Some(done) = self.requests.remove(&id) {
                        let _ = done.send(result);
                    }
                }
                Event::ConnectRequest {
                    token,
                    topic,
                    from,
                    holepunch,
                } => {
                    let incoming = IncomingConnect {
                        token,
                        topic,
                        from,
                        holepunch,
                    };
                    if let Err(refused) = self.incoming.send(incoming) {
                        self.node.answer_connect(refused.0.token, None);
                    }
                }
                Event::Reachable { .. } => {}
            }
        }
    }
}
