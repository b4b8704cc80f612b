//! [`Swarm`]: join topics, find peers, and get authenticated QUIC
//! connections to them, direct or relayed.
//!
//! Shape: discovery sources hand peer [`Candidate`](candidate::Candidate)s
//! for a topic to connection management, which dials them, keeps one
//! connection per remote key and backs off after failures, whichever
//! source found the peer.
//!
//! - `config`: [`SwarmConfig`], [`JoinOptions`], [`Firewall`];
//! - `candidate`: what a source hands over (a key and a hint how to reach
//!   it);
//! - `dht_source`: the DHT source (announce and look up per topic);
//! - `punching`: reaching a DHT candidate (hole punching, relays) and
//!   answering connect requests;
//! - `peers`: connection management, [`PeerConnection`], [`Path`],
//!   [`SwarmEvent`];
//! - `silent`: addresses dialled directly that stayed silent rest, whatever
//!   key is announced at them;
//! - `network`: what an address change (or a resume) does: stranded
//!   connections closed, the DHT's public address and NAT re-learned,
//!   every topic announced again;
//! - `families`: dual stack, one DHT node per address family
//!   ([`Family`]); a peer is reached on the family its record was found on.
//!
//! Who owns what: each [`Dht`] task owns its DHT socket; one task per joined
//! topic announces (server) and looks up (client) on a schedule; one task
//! per connection attempt owns its fresh socket until QUIC takes it; the
//! peer table (one live connection per remote key) is shared behind a
//! mutex. Connections come out of [`Swarm::connections`], or go straight
//! into a [`Replication`] with [`Swarm::replicate`].

mod candidate;
mod config;
mod dht_source;
mod families;
mod lifecycle;
mod listener;
mod local_source;
mod local_table;
mod network;
mod peers;
mod punching;
mod silent;
mod status;
mod streams;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_core::{KeyPair, PublicKey};
use hyper_wire::Replication;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{Firewall, JoinOptions, SwarmConfig};
pub use families::Family;
pub use peers::{Path, PeerConnection, SwarmEvent};
pub use status::{FamilyCounts, PathCounts, PeerStatus, SwarmStats, TopicStatus};
pub use streams::AppStream;

use crate::dht::Dht;
use crate::error::{Error, Result};
use crate::query::QueryKind;
use crate::signing::sign_unannounce;

struct Topic {
    /// The DHT source's task, if the DHT is on.
    task: Option<JoinHandle<()>>,
    flushed: watch::Receiver<bool>,
    server: bool,
    client: bool,
    /// For a peer joined by key ([`Swarm::join_peer`]): only this key is
    /// dialled, whoever else announces under its topic.
    only: Option<PublicKey>,
    /// Registered with the mDNS responder now.
    local_announced: bool,
    /// The topic's own identity ([`Swarm::join_with`],
    /// [`SwarmConfig::identity_per_topic`]); `None`: the swarm's.
    identity: Option<KeyPair>,
    /// The families whose DHT nodes stored its last announcement.
    announced_on: Vec<Family>,
}

/// The topic a peer listening on its identity is announced under
/// ([`Swarm::listen`]): derived from its key alone, so that anyone who
/// knows the key finds it.
pub fn peer_topic(key: &PublicKey) -> [u8; 32] {
    blake3::derive_key("hyper-swarm 2026 peer topic", &key.0)
}

/// The identity [`SwarmConfig::identity_per_topic`] gives `topic`: a key
/// pair whose seed is a keyed hash of the topic under a key derived from
/// `keypair`'s seed, so the same swarm key pair gives the same topic
/// identity on every run, and the identities of two topics share nothing
/// anyone without the seed can see.
pub fn topic_identity(keypair: &KeyPair, topic: &[u8; 32]) -> KeyPair {
    let key = blake3::derive_key("hyper-swarm 2026 topic identity", &keypair.seed());
    KeyPair::from_seed(*blake3::keyed_hash(&key, topic).as_bytes())
}

struct Inner {
    /// The DHT nodes, one per family at most (none with the DHT off).
    dhts: families::Dhts,
    config: SwarmConfig,
    /// Live connections by (the key this side proved, the remote key).
    peers: Mutex<HashMap<(PublicKey, PublicKey), peers::Live>>,
    dialling: Mutex<HashSet<PublicKey>>,
    backoff: Mutex<HashMap<PublicKey, (Instant, Duration)>>,
    topics: Mutex<HashMap<[u8; 32], Topic>>,
    /// Where new connections go; taken by destroy, ending the stream.
    connections: Mutex<Option<mpsc::UnboundedSender<PeerConnection>>>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<PeerConnection>>>,
    events: broadcast::Sender<SwarmEvent>,
    /// Bumped when a connection ends, so lookups run again at once (seen
    /// by a topic busy at that moment at its next wait, as `moved` is).
    lost: watch::Sender<u64>,
    /// Bumped when this host's addresses change, so topics announce
    /// again (a topic busy announcing or looking up at that moment sees
    /// the change at its next wait: it is not lost as a notification
    /// would be).
    moved: watch::Sender<u64>,
    /// The listening QUIC endpoint (local peers dial it; local dials leave
    /// from it).
    listener: quinn::Endpoint,
    /// The mDNS responder and browser, if local discovery is on and started.
    local: Option<local_source::LocalDiscovery>,
    /// What the local link announced.
    local_peers: Mutex<local_table::LocalPeers>,
    /// Local dials in progress at once.
    local_dials: Semaphore,
    /// Addresses being dialled directly, and those resting after silence.
    silent: Mutex<silent::SilentAddresses>,
    /// Why local discovery is not running although asked for.
    local_error: Option<String>,
    /// Running, suspended or destroyed.
    state: Mutex<lifecycle::State>,
    /// The accept loop, the local source and the connect-request handler.
    background: Mutex<Vec<JoinHandle<()>>>,
    /// Dials started and not yet ended (what flush waits for).
    in_flight: watch::Sender<usize>,
    /// What [`Swarm::stats`] reports.
    counters: status::Counters,
    /// Where named streams peers open go, once [`Swarm::streams`] asked.
    streams: Mutex<Option<mpsc::UnboundedSender<AppStream>>>,
}

/// Finds and connects peers by topic. Cloning gives another handle; the
/// swarm stops as by [`Swarm::destroy`] when the last handle is dropped.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

/// Lookups back off up to this; a failed dial backs off up to this too.
const LOOKUP_MAX: Duration = Duration::from_secs(60);
/// A connect attempt gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Local dials in progress at once.
const LOCAL_DIALS: usize = 32;

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
    /// Starts a DHT node per address family that has bootstrap nodes (see
    /// [`SwarmConfig::bootstrap`]; a family with none, or whose socket
    /// cannot be bound, stays off) and their handlers of incoming connect
    /// requests, the listening QUIC endpoint and, if
    /// [`SwarmConfig::local`], local discovery (if multicast DNS cannot
    /// start, the swarm runs without it: see [`Swarm::local_error`]).
    pub async fn new(config: SwarmConfig) -> Result<Swarm> {
        let dhts = families::Dhts::start(&config).await?;
        let incoming: Vec<_> = dhts
            .iter()
            .filter_map(|(_, dht)| Some((dht.clone(), dht.incoming()?)))
            .collect();
        let listener = listener::bind(&config.keypair, config.listen_port)?;
        let (local, local_events, local_error) = if config.local {
            match local_source::LocalDiscovery::start(config.keypair.public_key()) {
                Ok((local, events)) => (Some(local), Some(events), None),
                Err(e) => (None, None, Some(e.to_string())),
            }
        } else {
            (None, None, None)
        };
        let (connections, receiver) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let swarm = Swarm {
            inner: Arc::new(Inner {
                dhts,
                config,
                peers: Mutex::new(HashMap::new()),
                dialling: Mutex::new(HashSet::new()),
                backoff: Mutex::new(HashMap::new()),
                topics: Mutex::new(HashMap::new()),
                connections: Mutex::new(Some(connections)),
                receiver: Mutex::new(Some(receiver)),
                events,
                lost: watch::channel(0).0,
                moved: watch::channel(0).0,
                listener: listener.clone(),
                local,
                local_peers: Mutex::new(local_table::LocalPeers::default()),
                local_dials: Semaphore::new(LOCAL_DIALS),
                silent: Mutex::new(silent::SilentAddresses::default()),
                local_error,
                state: Mutex::new(lifecycle::State::default()),
                background: Mutex::new(Vec::new()),
                in_flight: watch::channel(0).0,
                counters: status::Counters::default(),
                streams: Mutex::new(None),
            }),
        };
        let mut background = vec![
            tokio::spawn(listener::accept_loop(
                Arc::downgrade(&swarm.inner),
                listener,
            )),
            tokio::spawn(local_source::watch_addresses(Arc::downgrade(&swarm.inner))),
        ];
        if let Some(events) = local_events {
            background.push(tokio::spawn(local_source::run(
                Arc::downgrade(&swarm.inner),
                events,
            )));
        }
        for (dht, mut incoming) in incoming {
            let weak = Arc::downgrade(&swarm.inner);
            background.push(tokio::spawn(async move {
                while let Some(request) = incoming.recv().await {
                    let Some(inner) = weak.upgrade() else { return };
                    let swarm = Swarm { inner };
                    let dht = dht.clone();
                    tokio::spawn(async move { swarm.accept(&dht, request).await });
                }
            }));
        }
        *lock(&swarm.inner.background) = background;
        Ok(swarm)
    }

    /// The DHT node of `family` underneath, if it runs.
    pub fn dht(&self, family: Family) -> Option<&Dht> {
        self.inner.dhts.get(family)
    }

    /// The families the swarm runs a DHT node on, IPv4 first (none with the
    /// DHT off or no bootstrap node).
    pub fn families(&self) -> Vec<Family> {
        self.inner.dhts.iter().map(|(family, _)| family).collect()
    }

    /// This peer's identity.
    pub fn public_key(&self) -> PublicKey {
        self.inner.config.keypair.public_key()
    }

    /// The address of the listening QUIC endpoint (`[::]:port` when dual
    /// stack).
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr> {
        Ok(self.inner.listener.local_addr()?)
    }

    /// Whether local discovery runs.
    pub fn local_enabled(&self) -> bool {
        self.inner.local.is_some()
    }

    /// Why local discovery does not run although it was asked for (the
    /// multicast DNS daemon failed to start).
    pub fn local_error(&self) -> Option<&str> {
        self.inner.local_error.as_deref()
    }

    /// How many announcements of `topic` heard on the local link are kept
    /// (the table of all topics holds at most 128, whatever the link sends).
    pub fn local_heard(&self, topic: &[u8; 32]) -> usize {
        lock(&self.inner.local_peers).count(topic)
    }

    /// Peers connected now.
    pub fn peers(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = lock(&self.inner.peers)
            .keys()
            .map(|(_, remote)| *remote)
            .collect();
        keys.sort_by_key(|k| k.0);
        keys.dedup();
        keys
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
    ///
    /// On the local link (if on) a server is announced at once and a client
    /// dials the peers already heard of.
    ///
    /// With [`SwarmConfig::identity_per_topic`] the topic gets its own
    /// identity ([`topic_identity`]), as with [`Swarm::join_with`].
    pub fn join(&self, topic: [u8; 32], options: JoinOptions) {
        let identity = self
            .inner
            .config
            .identity_per_topic
            .then(|| topic_identity(&self.inner.config.keypair, &topic));
        self.join_filtered(topic, options, None, identity);
    }

    /// Joins `topic` as [`Swarm::join`] does, under `identity` instead of
    /// the swarm's key pair: the topic's DHT records name and are signed
    /// by `identity`, connect requests for it are answered proving it, and
    /// the peers found under it are dialled proving it. Nodes holding the
    /// records of two topics joined under two identities cannot link them
    /// (see docs/SECURITY.md for what still can). The topic is not
    /// announced or dialled on the local link (the listening endpoint
    /// proves the swarm's key), and its records name no LAN addresses.
    ///
    /// The trade-off: connections are kept one per remote key and identity
    /// of this side, so a peer that joined two topics under two identities
    /// is two peers to others, and they to it: two connections (each
    /// counted in `max_peers`, each with its own handshake and replication
    /// session) where one key would share one.
    pub fn join_with(&self, topic: [u8; 32], options: JoinOptions, identity: KeyPair) {
        self.join_filtered(topic, options, None, Some(identity));
    }

    /// The key `topic`'s announcements and connections prove: its own
    /// identity if it was joined with one, else the swarm's.
    pub fn topic_key(&self, topic: &[u8; 32]) -> PublicKey {
        self.identity_for(topic).public_key()
    }

    /// The key pair `topic`'s announcements and connections use.
    pub(super) fn identity_for(&self, topic: &[u8; 32]) -> KeyPair {
        lock(&self.inner.topics)
            .get(topic)
            .and_then(|t| t.identity.clone())
            .unwrap_or_else(|| self.inner.config.keypair.clone())
    }

    /// Whether `key` is this swarm's, or one of its topics' identities.
    pub(super) fn is_own(&self, key: &PublicKey) -> bool {
        *key == self.public_key()
            || lock(&self.inner.topics)
                .values()
                .any(|t| t.identity.as_ref().is_some_and(|i| i.public_key() == *key))
    }

    /// Listens on this peer's own identity: announces it under
    /// [`peer_topic`] of its key (on the DHT and the local link), so that
    /// [`Swarm::join_peer`] with its key finds it without any other topic.
    pub fn listen(&self) {
        let options = JoinOptions {
            server: true,
            client: false,
        };
        self.join_filtered(peer_topic(&self.public_key()), options, None, None);
    }

    /// Keeps a connection to the peer with `key` (which must
    /// [`Swarm::listen`]): finds it by its key on the DHT and the local
    /// link, dials it, and dials again with backoff (1 s doubling to 60 s)
    /// whenever the connection is lost, until [`Swarm::leave_peer`]. Only
    /// `key` is dialled: others announcing under its topic are ignored.
    pub fn join_peer(&self, key: PublicKey) {
        let options = JoinOptions {
            server: false,
            client: true,
        };
        self.join_filtered(peer_topic(&key), options, Some(key), None);
    }

    /// Stops keeping a connection to `key` (the connection itself stays
    /// until either side closes it).
    pub fn leave_peer(&self, key: &PublicKey) {
        let topic = peer_topic(key);
        let mut topics = lock(&self.inner.topics);
        if topics.get(&topic).is_some_and(|t| t.only.is_some())
            && let Some(task) = topics.remove(&topic).and_then(|t| t.task)
        {
            task.abort();
        }
    }

    fn join_filtered(
        &self,
        topic: [u8; 32],
        options: JoinOptions,
        only: Option<PublicKey>,
        identity: Option<KeyPair>,
    ) {
        if *lock(&self.inner.state) == lifecycle::State::Destroyed {
            return;
        }
        let suspended = self.suspended();
        let dht_on = !self.inner.dhts.is_empty();
        let (flushed_tx, flushed) = watch::channel(!dht_on);
        let own_identity = identity.is_some();
        {
            // Held while the task starts, so that it finds the topic (and
            // its identity) in the table.
            let mut topics = lock(&self.inner.topics);
            let task = (dht_on && !suspended).then(|| {
                let weak = Arc::downgrade(&self.inner);
                let identity = identity
                    .clone()
                    .unwrap_or_else(|| self.inner.config.keypair.clone());
                tokio::spawn(async move {
                    dht_source::topic_loop(weak, topic, options, only, identity, flushed_tx).await;
                })
            });
            let old = topics.insert(
                topic,
                Topic {
                    task,
                    flushed,
                    server: options.server,
                    client: options.client,
                    only,
                    local_announced: false,
                    identity,
                    announced_on: Vec::new(),
                },
            );
            if let Some(task) = old.and_then(|old| old.task) {
                task.abort();
            }
        }
        if suspended {
            return;
        }
        if let Some(local) = &self.inner.local {
            let announced = match (options.server, self.inner.listener.local_addr()) {
                _ if own_identity => {
                    local.unannounce(&topic);
                    false
                }
                (true, Ok(addr)) => local.announce(&topic, addr.port()).is_ok(),
                _ => {
                    local.unannounce(&topic);
                    false
                }
            };
            if let Some(t) = lock(&self.inner.topics).get_mut(&topic) {
                t.local_announced = announced;
            }
        }
        if options.client {
            self.offer_local();
        }
    }

    /// Leaves `topic`: stops its lookups and announcements and removes the
    /// announcement from the DHT (of every family).
    pub async fn leave(&self, topic: [u8; 32]) -> Result<()> {
        let Some(old) = lock(&self.inner.topics).remove(&topic) else {
            return Ok(());
        };
        if let Some(task) = &old.task {
            task.abort();
        }
        if let (true, Some(local)) = (old.server, &self.inner.local) {
            local.unannounce(&topic);
        }
        if old.server {
            let identity = old.identity.as_ref().unwrap_or(&self.inner.config.keypair);
            let request = sign_unannounce(identity, &topic, now_millis());
            let outcomes = self
                .inner
                .dhts
                .each(|_, dht| {
                    let request = request.clone();
                    async move { dht.query(QueryKind::Unannounce(request)).await }
                })
                .await;
            for (_, outcome) in outcomes {
                outcome?;
            }
        }
        Ok(())
    }

    /// Waits until every joined topic has been announced once and looked up
    /// once on the DHT (at once if no DHT node runs; with two families:
    /// stored on at least one, tried on both, and looked up on both), and
    /// then until every
    /// dial started by then (or while waiting) has ended, connected or not.
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
        let mut in_flight = self.inner.in_flight.subscribe();
        in_flight
            .wait_for(|n| *n == 0)
            .await
            .map_err(|_| Error::Stopped)?;
        Ok(())
    }
}
