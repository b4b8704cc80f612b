//! The replicator: the protocol's logic as a pure state machine, in the
//! style of `quinn-proto`. No sockets, no clock, no storage writes.
//!
//! One [`Replicator`] serves every connection of a node, so that requests for
//! a core can be spread over all peers that have its blocks and moved off a
//! stalled one. Its inputs and outputs:
//!
//! - in: [`Replicator::connect`] / [`Replicator::disconnect`] as
//!   connections come and go; [`Replicator::handle_message`] for each
//!   decoded message; [`Replicator::add_core`], [`Replicator::get`],
//!   [`Replicator::download`] from the application;
//!   [`Replicator::local_changed`] after a local append or truncation;
//!   [`Replicator::stored`] with the result of each [`Event::Store`];
//!   [`Replicator::handle_timeout`] when [`Replicator::poll_timeout`] is due.
//! - out: [`Replicator::poll_transmit`] (messages to send, per peer),
//!   [`Replicator::poll_event`] ([`Event`]s: proofs to verify and store,
//!   finished gets and downloads, peers to disconnect, unknown cores,
//!   extension messages), [`Replicator::poll_timeout`].
//!
//! The local cores are read through [`CoreAccess`] (state, bitfield, proofs
//! to serve); every write, the verification of received proofs included, is
//! handed out as an [`Event::Store`] for the driver to run and report back.
//! At most one store batch per core is outstanding, which orders writes and
//! lets data that arrives meanwhile form the next, larger batch.

mod asks;
mod core_access;
mod events;
mod fetch;
mod inspect;
mod local;
mod remote;
mod room;
mod serve;
mod timers;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, DiscoveryKey};

use crate::capability::Capabilities;
use crate::channels::{Channels, Opened, RemoteOpen};
use crate::error::{Error, Result};
use crate::messages::{Body, Message};

pub use core_access::{CoreAccess, CoreStatus};
pub use events::{Event, ReplicationEvent};
use local::Local;
use remote::Remote;
pub use remote::Transfer;
use timers::Timers;

/// Identifies one connection inside a [`Replicator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

/// Identifies one [`Replicator::get`] or [`Replicator::download`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u64);

/// Identifies one [`Event::Store`] batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u64);

/// Tuning of a [`Replicator`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Most block requests in flight to one peer for one core.
    pub max_inflight: usize,
    /// Most requests in flight to one peer for all its cores together
    /// (blocks, upgrades and seeks). Keep it well under the peer's
    /// [`Config::max_queued_requests`] (its defaults: 1,024 here, 4,096
    /// there), or an honest reader of many cores at once is cut off as a
    /// flood. Cores that find no room wait in line (first come, first
    /// served) and get requests as answers free room. At least 1.
    pub max_inflight_per_peer: usize,
    /// A peer with requests in flight that answers none for this long is
    /// stalled: its requests move to other peers.
    pub stall_timeout: Duration,
    /// How long a stalled peer gets no new requests.
    pub stall_backoff: Duration,
    /// Most requests a peer may have queued here before it is cut off.
    pub max_queued_requests: usize,
    /// Most proofs in one [`Event::Store`] batch.
    pub max_batch: usize,
    /// Most disjoint ranges remembered of one peer's blocks of one core
    /// (and, apart, of the ranges it wants to hear about). Past it, claims
    /// are left out: this side believes less, which is safe.
    pub max_remote_ranges: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_inflight: 128,
            max_inflight_per_peer: 1024,
            stall_timeout: Duration::from_secs(15),
            stall_backoff: Duration::from_secs(10),
            max_queued_requests: 4096,
            max_batch: 2048,
            max_remote_ranges: 1 << 14,
        }
    }
}

struct Peer {
    channels: Channels,
    /// Per core this side opened on the connection.
    remotes: HashMap<CoreKey, Remote>,
    /// Requests from the peer waiting to be served: (local channel, request).
    serve_queue: VecDeque<(u32, crate::messages::Request)>,
    /// `Want`s from the peer waiting for their `Bitfield` answer: (local
    /// channel, range). Counted with `serve_queue` against
    /// [`Config::max_queued_requests`].
    want_queue: VecDeque<(u32, Range<u64>)>,
    /// Bytes this side may still send it before the driver says more
    /// ([`Replicator::set_send_budget`]); 0: it is not reading what was
    /// sent, so it is served nothing until it does (its queued requests
    /// then hit `max_queued_requests`).
    budget: usize,
    /// Mean size of the answers last served to it, to take no more
    /// requests at once than the budget allows.
    answer_size: usize,
    /// Requests in flight to it, all cores together (kept by each
    /// remote's [`remote::InflightMap`]), bounded by
    /// [`Config::max_inflight_per_peer`].
    inflight: Arc<AtomicUsize>,
    /// Cores that had requests to send it and found no room, oldest
    /// first (each once: `starved_set`). While any waits, no other core
    /// takes room on this peer ahead of them.
    starved: VecDeque<CoreKey>,
    starved_set: HashSet<CoreKey>,
    /// When it last answered a request (`Data` or `NoData`), on any core.
    last_answer: Option<Instant>,
    /// Cores whose announcements were left out while it did not read
    /// (each remote's `missed`), to send afresh once it does.
    missed: BTreeSet<CoreKey>,
}

/// What this side knows of `peer` for `key`, if it has the core open on
/// that connection (a function of the map alone, so it can be borrowed
/// beside the cores).
fn remote_of<'a>(
    peers: &'a mut BTreeMap<PeerId, Peer>,
    peer: PeerId,
    key: &CoreKey,
) -> Option<&'a mut Remote> {
    peers.get_mut(&peer).and_then(|p| p.remotes.get_mut(key))
}

/// The replication state machine of a node: every core, every connection.
pub struct Replicator<C> {
    config: Config,
    cores: BTreeMap<CoreKey, Local<C>>,
    by_discovery: HashMap<DiscoveryKey, CoreKey>,
    /// The core of each outstanding store batch.
    batches: HashMap<BatchId, CoreKey>,
    /// Cores that may have received proofs to hand out as a store batch
    /// (every core with some is in it).
    to_flush: BTreeSet<CoreKey>,
    /// The core of each get, seek and download not ended yet.
    asks: HashMap<Handle, CoreKey>,
    /// Stall deadlines, backoffs and get and seek deadlines.
    timers: Timers,
    peers: BTreeMap<PeerId, Peer>,
    next_peer: u64,
    next_handle: u64,
    next_batch: u64,
    next_request: u64,
    transmits: VecDeque<(PeerId, Message)>,
    events: VecDeque<Event>,
    /// Hand out the per-block and per-peer events.
    reporting: bool,
    /// The core being served from a peer's line of starved cores.
    draining: Option<CoreKey>,
    /// The latest time passed in: when cores waiting in line have room
    /// again (after a call that takes no time), [`Replicator::poll_timeout`]
    /// is due at once.
    clock: Option<Instant>,
}

impl<C: CoreAccess> Replicator<C> {
    /// A replicator with no cores and no peers.
    pub fn new(config: Config) -> Self {
        Replicator {
            config,
            cores: BTreeMap::new(),
            by_discovery: HashMap::new(),
            batches: HashMap::new(),
            to_flush: BTreeSet::new(),
            asks: HashMap::new(),
            timers: Timers::default(),
            peers: BTreeMap::new(),
            next_peer: 0,
            next_handle: 0,
            next_batch: 0,
            next_request: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            reporting: false,
            draining: None,
            clock: None,
        }
    }

    /// Starts replicating `core` with every connected peer (and every peer
    /// that connects later): this side opens it on each connection, so the
    /// peers learn its discovery key. Adding a core twice does nothing (a
    /// core only served so far is opened on every connection now).
    pub fn add_core(&mut self, now: Instant, core: C) {
        let key = core.key();
        match self.cores.get_mut(&key) {
            Some(local) if local.passive => local.passive = false,
            Some(_) => return,
            None => self.insert_core(core, false),
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.open_on(now, peer, key);
        }
    }

    /// Serves `core` to peers that ask for it: it is never opened first,
    /// only in answer to a peer's `Open` whose capability proves the core
    /// key (held opens for it pair now). So a connection learns no
    /// discovery key it did not already prove it knows the key of. Does
    /// nothing for a core already replicated.
    pub fn serve_core(&mut self, now: Instant, core: C) {
        let key = core.key();
        if self.cores.contains_key(&key) {
            return;
        }
        self.insert_core(core, true);
        let discovery = key.discovery_key();
        let asking: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.channels.holds(&discovery))
            .map(|(id, _)| *id)
            .collect();
        for peer in asking {
            self.answer_open(now, peer, key);
        }
    }

    fn insert_core(&mut self, core: C, passive: bool) {
        let key = core.key();
        self.by_discovery.insert(key.discovery_key(), key);
        let status = core.status().unwrap_or_default();
        let mut local = Local::new(core, status);
        local.passive = passive;
        self.cores.insert(key, local);
    }

    /// Stops replicating `key`: closes its channels; its gets and downloads
    /// fail.
    pub fn remove_core(&mut self, key: &CoreKey) {
        let Some(local) = self.cores.remove(key) else {
            return;
        };
        self.by_discovery.remove(&key.discovery_key());
        if let Some((batch, _)) = &local.storing {
            self.batches.remove(batch);
        }
        for handle in local.handles() {
            self.events.push_back(Event::Failed {
                handle,
                key: *key,
                error: Error::Cancelled,
            });
        }
        for (&id, peer) in self.peers.iter_mut() {
            if let Some(remote) = peer.remotes.remove(key)
                && let Some(m) = peer.channels.close(remote.local_channel)
            {
                self.transmits.push_back((id, m));
            }
        }
    }

    /// The cores being replicated.
    pub fn cores(&self) -> impl Iterator<Item = &CoreKey> {
        self.cores.keys()
    }

    /// A new connection with these capabilities: opens every core on it.
    pub fn connect(&mut self, now: Instant, capabilities: Capabilities) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.peers.insert(
            id,
            Peer {
                channels: Channels::new(capabilities),
                remotes: HashMap::new(),
                serve_queue: VecDeque::new(),
                want_queue: VecDeque::new(),
                budget: usize::MAX,
                answer_size: 0,
                inflight: Arc::new(AtomicUsize::new(0)),
                starved: VecDeque::new(),
                starved_set: HashSet::new(),
                last_answer: None,
                missed: BTreeSet::new(),
            },
        );
        let keys: Vec<CoreKey> = self
            .cores
            .iter()
            .filter(|(_, l)| !l.passive)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.open_on(now, id, key);
        }
        id
    }

    /// The connection ended: its requests move to other peers.
    pub fn disconnect(&mut self, now: Instant, peer: PeerId) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        self.transmits.retain(|(to, _)| *to != peer);
        for (key, remote) in p.remotes {
            if self.reporting && remote.added {
                self.events
                    .push_back(Event::Report(ReplicationEvent::PeerRemoved { key, peer }));
            }
            if let Some(local) = self.cores.get_mut(&key) {
                local.forget_peer(peer, remote);
            }
            self.schedule(now, key);
        }
    }

    /// Tells the replicator how many more bytes `peer` may be sent now (the
    /// driver's bound on its send buffer, less what is queued in it).
    /// Answers stop once they reach it (at most one answer past it); at 0
    /// the peer is congested: served nothing, and requests it keeps sending
    /// queue up to [`Config::max_queued_requests`], past which it is cut
    /// off. So a peer that asks but never reads cannot make this side
    /// buffer without end.
    ///
    /// Announcements (`Sync`, `Range`, `Bitfield`) are not sent to a
    /// congested peer either; once it reads again it gets its state afresh
    /// (`Sync` and the whole `Bitfield`) for each core that changed.
    pub fn set_send_budget(&mut self, peer: PeerId, bytes: usize) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let was = std::mem::replace(&mut p.budget, bytes);
        if was > 0 || bytes == 0 {
            return;
        }
        let remotes = &mut p.remotes;
        let missed: Vec<CoreKey> = std::mem::take(&mut p.missed)
            .into_iter()
            .filter(|key| {
                remotes
                    .get_mut(key)
                    .filter(|r| r.paired)
                    .is_some_and(|r| std::mem::replace(&mut r.missed, false))
            })
            .collect();
        for key in missed {
            let Some(local) = self.cores.get(&key) else {
                continue;
            };
            let status = local.status();
            let Some(remote) = self.peers.get(&peer).and_then(|p| p.remotes.get(&key)) else {
                continue;
            };
            let mut bodies = vec![serve::sync_body(&status, remote.length, local.has_demand())];
            bodies.extend(serve::bitfield_bodies(&local.core, 0..status.length));
            for body in bodies {
                self.send(peer, &key, body);
            }
        }
    }

    /// Turns the per-block and per-peer events ([`Event::Report`]) on or
    /// off (off by default: they cost a
    /// queued event per block).
    pub fn set_reporting(&mut self, on: bool) {
        self.reporting = on;
    }

    /// The connected peers.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Handles one message from `peer`. A protocol violation removes the
    /// peer and yields [`Event::PeerError`].
    pub fn handle_message(&mut self, now: Instant, peer: PeerId, message: Message) {
        self.clock = Some(now);
        if let Err(error) = self.dispatch(now, peer, message) {
            self.fail_peer(now, peer, error);
        }
        self.drain_starved(now);
    }

    fn fail_peer(&mut self, now: Instant, peer: PeerId, error: Error) {
        if self.peers.contains_key(&peer) {
            self.disconnect(now, peer);
            self.events.push_back(Event::PeerError { peer, error });
        }
    }

    fn dispatch(&mut self, now: Instant, peer: PeerId, message: Message) -> Result<()> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        let body = message
            .body
            .ok_or(Error::Malformed("message without a body"))?;
        match body {
            Body::Open(open) => match p.channels.on_open(message.channel, &open)? {
                RemoteOpen::Paired { key, local } => self.paired(now, peer, key, local),
                RemoteOpen::Unknown { discovery_key } => {
                    // An open raced with a local add, or asks for a core
                    // only served: pair at once (if proven, for the latter).
                    if let Some(key) = self.by_discovery.get(&discovery_key).copied() {
                        if self.cores.get(&key).is_some_and(|l| l.passive) {
                            self.answer_open(now, peer, key);
                        } else {
                            self.open_on(now, peer, key);
                        }
                    } else {
                        self.events.push_back(Event::UnknownCore {
                            peer,
                            discovery_key,
                        });
                    }
                }
                RemoteOpen::Refused => {}
            },
            Body::Close(_) => {
                if let Some(local) = p.channels.on_close(message.channel)
                    && let Some(key) = p.channels.key(local)
                {
                    // Requests the peer queued on the channel die with it.
                    p.serve_queue.retain(|(c, _)| *c != local);
                    p.want_queue.retain(|(c, _)| *c != local);
                    if let Some(remote) = p.remotes.get_mut(&key) {
                        if self.reporting && remote.added {
                            self.events
                                .push_back(Event::Report(ReplicationEvent::PeerRemoved {
                                    key,
                                    peer,
                                }));
                        }
                        let old = std::mem::replace(
                            remote,
                            Remote::new(local, self.config.max_remote_ranges, p.inflight.clone()),
                        );
                        if let Some(l) = self.cores.get_mut(&key) {
                            l.forget_peer(peer, old);
                        }
                    }
                    self.schedule(now, key);
                }
            }
            body => {
                let Some(local) = p.channels.route(message.channel)? else {
                    return Ok(()); // crossed this side's `Close`
                };
                let key = p
                    .channels
                    .key(local)
                    .ok_or(Error::Malformed("channel table out of step"))?;
                self.on_channel_message(now, peer, local, key, body)?;
            }
        }
        Ok(())
    }

    /// Opens `key` on `peer`'s connection (sending `Open`), pairing at once
    /// if the peer's open was held.
    fn open_on(&mut self, now: Instant, peer: PeerId, key: CoreKey) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let (message, state) = p.channels.open(key);
        self.opened(now, peer, key, message, state);
    }

    /// Opens `key` on `peer`'s connection only in answer to its held open,
    /// if that proves the key (see [`Channels::answer_held`]).
    fn answer_open(&mut self, now: Instant, peer: PeerId, key: CoreKey) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some((message, state)) = p.channels.answer_held(key) {
            self.opened(now, peer, key, Some(message), state);
        }
    }

    /// After this side opened `key` on `peer`'s connection: sends the
    /// `Open` and, if paired, the state.
    fn opened(
        &mut self,
        now: Instant,
        peer: PeerId,
        key: CoreKey,
        message: Option<Message>,
        state: Opened,
    ) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(m) = message {
            self.transmits.push_back((peer, m));
        }
        let local = match state {
            Opened::Paired { local, .. } | Opened::Waiting { local } => local,
        };
        let inflight = p.inflight.clone();
        p.remotes
            .entry(key)
            .or_insert_with(|| Remote::new(local, self.config.max_remote_ranges, inflight));
        if matches!(state, Opened::Paired { .. }) {
            self.paired(now, peer, key, local);
        }
    }

    /// Both sides have the channel open: send our state.
    fn paired(&mut self, now: Instant, peer: PeerId, key: CoreKey, channel: u32) {
        let max_ranges = self.config.max_remote_ranges;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(local) = self.cores.get(&key) else {
            return;
        };
        let inflight = p.inflight.clone();
        let remote = p
            .remotes
            .entry(key)
            .or_insert_with(|| Remote::new(channel, max_ranges, inflight));
        remote.paired = true;
        let status = local.status();
        let messages = serve::state_messages(local, remote, &status);
        for body in messages {
            self.transmits.push_back((
                peer,
                Message {
                    channel: remote.local_channel,
                    body: Some(body),
                },
            ));
        }
        self.schedule(now, key);
    }

    fn send(&mut self, peer: PeerId, key: &CoreKey, body: Body) {
        if let Some(channel) = self
            .peers
            .get(&peer)
            .and_then(|p| p.remotes.get(key))
            .filter(|r| r.paired)
            .map(|r| r.local_channel)
        {
            self.transmits.push_back((
                peer,
                Message {
                    channel,
                    body: Some(body),
                },
            ));
        }
    }

    /// Sends an extension message on `key`'s channel to `peer`, or to every
    /// peer with the channel open.
    pub fn send_extension(
        &mut self,
        key: CoreKey,
        peer: Option<PeerId>,
        name: &str,
        message: &[u8],
    ) {
        let peers: Vec<PeerId> = match peer {
            Some(p) => vec![p],
            None => self.peers.keys().copied().collect(),
        };
        for p in peers {
            self.send(
                p,
                &key,
                Body::Extension(crate::messages::Extension {
                    name: name.to_string(),
                    message: message.to_vec(),
                }),
            );
        }
    }

    /// The local core changed outside the replicator (an append or a
    /// truncation): tell the peers.
    pub fn local_changed(&mut self, now: Instant, key: CoreKey) {
        self.announce(key, &[]);
        self.schedule(now, key);
        self.check_done(key);
    }

    /// Blocks `range` of the local core were dropped
    /// ([`Core::clear`](hyper_core::Core::clear)): every peer with the
    /// core open is told (`Range` with `drop`), so it stops asking this
    /// side for them and asks its other peers at once.
    pub fn local_cleared(&mut self, now: Instant, key: CoreKey, range: Range<u64>) {
        self.announce_dropped(key, range);
        self.local_changed(now, key);
    }

    /// The result of [`Event::Store`] `batch`. A verification failure ends
    /// the peer that sent the proofs ([`Event::PeerError`]); a storage
    /// failure fails the core's gets and downloads.
    pub fn stored(
        &mut self,
        now: Instant,
        batch: BatchId,
        result: std::result::Result<Vec<hyper_core::Verified>, hyper_core::Error>,
    ) {
        self.clock = Some(now);
        let Some(key) = self.batches.remove(&batch) else {
            return;
        };
        let Some(done) = self.cores.get_mut(&key).and_then(|l| l.take_batch(batch)) else {
            return;
        };
        // Proofs that arrived meanwhile form the next batch.
        self.to_flush.insert(key);
        match result {
            Ok(verified) => {
                let blocks: Vec<u64> = verified.iter().filter_map(|v| v.block).collect();
                if let Some(local) = self.cores.get_mut(&key) {
                    local.stored(&done);
                    for &(at, handle) in &done.seeks {
                        match verified.get(at).and_then(|v| v.seek) {
                            Some((index, offset)) if local.seeks.remove(&handle).is_some() => {
                                self.events.push_back(Event::Sought {
                                    handle,
                                    key,
                                    index,
                                    offset,
                                });
                            }
                            _ => local.unask_seek(handle),
                        }
                    }
                }
                self.count_downloaded(key, &done);
                self.forget_provided(done.peer, key, &done.ids);
                self.announce(key, &blocks);
            }
            // Equivocation too: the peer's history is not this one (the
            // core kept both signed states as evidence).
            Err(hyper_core::Error::Verify(e)) => {
                if let Some(local) = self.cores.get_mut(&key) {
                    local.requeue_batch(&done);
                }
                self.fail_peer(now, done.peer, Error::Verify(e));
            }
            Err(e) => {
                let error = std::sync::Arc::new(e);
                self.fail_requests(done.peer, key, done.ids.clone());
                if let Some(local) = self.cores.get_mut(&key) {
                    local.requeue_batch(&done);
                    local.refresh_status();
                    for handle in local.handles() {
                        local.cancel(handle);
                        self.events.push_back(Event::Failed {
                            handle,
                            key,
                            error: Error::Storage(error.clone()),
                        });
                    }
                }
            }
        }
        self.schedule(now, key);
        self.check_done(key);
        self.drain_starved(now);
    }

    /// Counts the blocks of a stored batch for its sender (and reports
    /// them).
    fn count_downloaded(&mut self, key: CoreKey, done: &local::Batch) {
        if let Some(remote) = remote_of(&mut self.peers, done.peer, &key) {
            remote.transfer.blocks_down += done.blocks.len() as u64;
            remote.transfer.bytes_down += done.sizes.iter().sum::<u64>();
        }
        if self.reporting {
            for (&index, &bytes) in done.blocks.iter().zip(&done.sizes) {
                self.events
                    .push_back(Event::Report(ReplicationEvent::Downloaded {
                        key,
                        peer: done.peer,
                        index,
                        bytes,
                    }));
            }
        }
    }

    /// The next message to send, with the peer to send it to. Queued
    /// requests from peers are served (proofs built) as this is called.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, Message)> {
        if self.transmits.is_empty() {
            self.serve_some();
        }
        self.transmits.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.flush_batches();
        }
        let event = self.events.pop_front()?;
        if let Some(handle) = event.ended() {
            self.asks.remove(&handle);
        }
        Some(event)
    }
}
