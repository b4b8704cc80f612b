//! The driver task: owns the replicator, the connections' writers and the
//! application's waiting futures; runs store batches and timers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hyper_core::{Core, CoreKey, DiscoveryKey, PublicKey, Store, Subscription};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::commands::{Command, Inbound};
use super::{CoreStats, ExtensionMessage, PeerStats, ReplicationOptions, Resources};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::messages::Message;
use crate::replicator::{BatchId, Event, Handle, PeerId, ReplicationEvent, Replicator, Transfer};

/// Messages handled before the driver flushes what they produced.
const DRAIN: usize = 512;
/// How often the `Open`s held for discovery keys the store lacked are
/// looked up again (all-cores mode): a core made since is served then.
const RECHECK_EVERY: Duration = Duration::from_secs(10);
/// Held `Open`s (all peers) at which the driver stops mid-drain to look
/// their cores up (all-cores mode): half of what one peer may have held.
const HANDLE_HELD_OPENS: usize = crate::channels::MAX_PENDING_OPENS / 2;
/// Store batches of at most this many proofs run on the driver's thread;
/// larger ones on the blocking pool.
const INLINE_BATCH: usize = 4;

/// The driver's handle on a connection's writer task: the queue, and the
/// bytes in it not yet written to the socket.
pub(super) struct Writer {
    pub(super) queue: mpsc::UnboundedSender<(Vec<Message>, usize)>,
    pub(super) backlog: Arc<std::sync::atomic::AtomicUsize>,
    /// Since when the backlog is over [`Limits::max_backlog`].
    pub(super) over_since: Option<Instant>,
    /// Set by the driver when it left the peer's work waiting for room in
    /// the backlog; the writer task, after each batch it writes, takes it
    /// and sends [`Command::Writable`]. See [`Driver::wait_for_room`].
    pub(super) wake: Arc<std::sync::atomic::AtomicBool>,
}

/// How long a connection's writer may go on sending what was queued
/// before the connection ended (a `Close`, say) before it is stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Where a finished get sends its block.
type BlockReply = oneshot::Sender<Result<Vec<u8>>>;

pub(super) struct Driver {
    replicator: Replicator<Core>,
    limits: Arc<Limits>,
    store: Store,
    all_cores: bool,
    commands: mpsc::WeakUnboundedSender<Command>,
    writers: HashMap<PeerId, Writer>,
    /// Each connected peer's proven identity (for [`PeerStats::remote`]).
    remotes: HashMap<PeerId, PublicKey>,
    /// Each connection's reader and writer tasks.
    readers: HashMap<PeerId, (JoinHandle<()>, JoinHandle<()>)>,
    closers: HashMap<PeerId, oneshot::Sender<Result<()>>>,
    /// How peers ended before their `Reader` command arrived (the reader
    /// task can hit an error first): told to the connection then.
    ended_early: HashMap<PeerId, Result<()>>,
    cores: HashMap<CoreKey, Core>,
    subscriptions: HashMap<CoreKey, Subscription>,
    gets: HashMap<Handle, (Core, u64, BlockReply)>,
    downloads: HashMap<Handle, oneshot::Sender<Result<()>>>,
    seeks: HashMap<Handle, oneshot::Sender<Result<(u64, u64)>>>,
    /// When the held opens were last looked up again.
    last_recheck: Instant,
    /// An `Open` for a discovery key the store lacked is held: look the
    /// held keys up again at the next recheck.
    recheck_pending: bool,
    flush_every: Option<Duration>,
    last_flush: Instant,
    /// Data was stored since the last flush.
    unflushed: bool,
    extension_subscribers: Vec<mpsc::UnboundedSender<ExtensionMessage>>,
    event_subscribers: Vec<mpsc::UnboundedSender<ReplicationEvent>>,
    /// Waiting [`Replication::update`]s: the core, the deadline, the reply.
    updates: Vec<(Core, Instant, oneshot::Sender<Result<u64>>)>,
}

impl Driver {
    pub(super) fn new(
        replicator: Replicator<Core>,
        limits: Arc<Limits>,
        store: Store,
        options: &ReplicationOptions,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        Driver {
            replicator,
            limits,
            store,
            all_cores: options.all_cores,
            commands,
            writers: HashMap::new(),
            remotes: HashMap::new(),
            readers: HashMap::new(),
            closers: HashMap::new(),
            ended_early: HashMap::new(),
            cores: HashMap::new(),
            subscriptions: HashMap::new(),
            gets: HashMap::new(),
            downloads: HashMap::new(),
            seeks: HashMap::new(),
            last_recheck: Instant::now(),
            recheck_pending: false,
            flush_every: options.flush_every,
            last_flush: Instant::now(),
            unflushed: false,
            extension_subscribers: Vec::new(),
            event_subscribers: Vec::new(),
            updates: Vec::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut inbox: mpsc::Receiver<Inbound>,
    ) {
        loop {
            let deadline = self.replicator.poll_timeout();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(c) => self.command(c),
                },
                Some(inbound) = inbox.recv() => {
                    self.inbound(inbound);
                    for _ in 0..DRAIN {
                        match inbox.try_recv() {
                            Ok(inbound) => self.inbound(inbound),
                            Err(_) => break,
                        }
                    }
                    while let Ok(c) = commands.try_recv() {
                        self.command(c);
                    }
                }
                () = sleep_until(deadline) => self.replicator.handle_timeout(now()),
                () = sleep_until(self.flush_due().map(Instant::into_std)) => self.flush(),
                () = sleep_until(self.backlog_due()) => {}
                () = sleep_until(self.recheck_due()) => self.recheck(),
                () = sleep_until(self.updates.iter().map(|u| u.1.into_std()).min()) => {}
            }
            self.outputs();
        }
        // Every connection ends with the driver; waiting gets and downloads
        // fail (`Error::Cancelled`) as their replies drop.
        for (_, (reader, writer)) in self.readers.drain() {
            reader.abort();
            writer.abort();
        }
        for (_, closed) in self.closers.drain() {
            let _ = closed.send(Ok(()));
        }
        if self.unflushed {
            let _ = self.store.flush();
        }
    }

    /// A message from a reader (its inbox bytes are freed once handled).
    fn inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Message(peer, message, _permit) => {
                let open = matches!(message.body, Some(crate::messages::Body::Open(_)));
                self.replicator.handle_message(now(), peer, message);
                // A burst of `Open`s for cores not opened yet (a reader of
                // many cores connecting): look them up before the held ones
                // pass their bound and the oldest are dropped, unanswered.
                if open && self.all_cores && self.replicator.held_opens() >= HANDLE_HELD_OPENS {
                    while let Some(event) = self.replicator.poll_event() {
                        self.event(event);
                    }
                }
            }
            Inbound::Paired(peer, reply) => {
                let _ = reply.send(self.replicator.any_paired(peer));
            }
        }
    }

    /// A store batch finished: waiting gets get their block from the
    /// verified proofs at once; the replicator learns the result.
    fn stored(
        &mut self,
        batch: BatchId,
        key: CoreKey,
        proofs: Vec<hyper_core::Proof>,
        result: std::result::Result<Vec<hyper_core::Verified>, hyper_core::Error>,
    ) {
        if let Ok(verified) = &result {
            let blocks = verified
                .iter()
                .zip(proofs)
                .filter_map(|(v, p)| Some((v.block?, p.block?.value)));
            for (index, bytes) in blocks {
                let waiting: Vec<Handle> = self
                    .gets
                    .iter()
                    .filter(|(_, g)| g.0.key() == key && g.1 == index)
                    .map(|(h, _)| *h)
                    .collect();
                for handle in waiting {
                    if let Some((core, _, reply)) = self.gets.remove(&handle) {
                        // The proof carries what is stored; a get through an
                        // encrypted handle reads it back decrypted.
                        let block = if core.is_encrypted() {
                            core.get(index).map_err(|e| Error::Storage(Arc::new(e)))
                        } else {
                            Ok(bytes.clone())
                        };
                        let _ = reply.send(block);
                    }
                }
            }
        }
        let stored = result.is_ok();
        self.replicator.stored(now(), batch, result);
        self.unflushed |= stored;
        if self.flush_due().is_some_and(|due| due <= Instant::now()) {
            self.flush();
        }
    }

    /// When a peer's backlog has been over the bound for the whole
    /// [`Limits::backlog_timeout`] (the output step then drops it).
    fn backlog_due(&self) -> Option<std::time::Instant> {
        self.writers
            .values()
            .filter_map(|w| w.over_since)
            .min()
            .map(|since| (since + self.limits.backlog_timeout).into_std())
    }

    /// When stored data is next due to be made durable.
    fn flush_due(&self) -> Option<Instant> {
        let every = self.flush_every?;
        self.unflushed.then_some(self.last_flush + every)
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        self.unflushed = false;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush());
    }

    /// The core of `discovery_key` in the store, served to peers that
    /// prove its key (all-cores mode): one point lookup in the store's
    /// index, never a listing. `false` if the store has no such core.
    fn serve_discovered(&mut self, discovery_key: &DiscoveryKey) -> bool {
        match self.store.by_discovery_key(discovery_key) {
            Ok(Some(core)) => {
                self.add_core(core, false);
                true
            }
            Ok(None) | Err(_) => false,
        }
    }

    /// When the held opens are due to be looked up again.
    fn recheck_due(&self) -> Option<std::time::Instant> {
        self.recheck_pending
            .then(|| (self.last_recheck + RECHECK_EVERY).into_std())
    }

    /// Looks up again the discovery keys of the opens still held (at most
    /// [`MAX_PENDING_OPENS`](crate::MAX_PENDING_OPENS) per peer) and serves
    /// the cores made since; keeps rechecking while any stays held.
    fn recheck(&mut self) {
        self.last_recheck = Instant::now();
        let mut still_held = false;
        for discovery_key in self.replicator.held_discovery_keys() {
            still_held |= !self.serve_discovered(&discovery_key);
        }
        self.recheck_pending = still_held;
    }

    /// Replicates `core`: opened on every connection (`active`), or only
    /// served to peers that prove its key.
    fn add_core(&mut self, core: Core, active: bool) {
        let key = core.key();
        if !self.cores.contains_key(&key) {
            let commands = self.commands.clone();
            let sub = core.watch(move |events| {
                let Some(commands) = commands.upgrade() else {
                    return;
                };
                // A clear is announced as such (and counts as a change);
                // anything else as a change.
                let mut changed = events.is_empty();
                for event in events {
                    match event {
                        hyper_core::Event::Cleared { start, end, .. } => {
                            let _ = commands.send(Command::Cleared(key, *start..*end));
                        }
                        _ => changed = true,
                    }
                }
                if changed {
                    let _ = commands.send(Command::Changed(key));
                }
            });
            self.subscriptions.insert(key, sub);
            self.cores.insert(key, core.clone());
        }
        if active {
            self.replicator.add_core(now(), core);
        } else {
            self.replicator.serve_core(now(), core);
        }
    }

    fn command(&mut self, command: Command) {
        let now = now();
        match command {
            Command::Connection {
                capabilities,
                remote,
                writer,
                reply,
            } => {
                let peer = self.replicator.connect(now, capabilities);
                self.writers.insert(peer, writer);
                self.remotes.insert(peer, remote);
                let _ = reply.send(peer);
            }
            Command::Reader {
                peer,
                task,
                writer_task,
                closed,
            } => {
                if self.writers.contains_key(&peer) {
                    self.readers.insert(peer, (task, writer_task));
                    self.closers.insert(peer, closed);
                } else {
                    task.abort();
                    writer_task.abort();
                    let result = self.ended_early.remove(&peer).unwrap_or(Err(Error::Closed));
                    let _ = closed.send(result);
                }
            }
            Command::Closed { peer, error } => {
                self.replicator.disconnect(now, peer);
                self.end_peer(peer, error.map_or(Ok(()), Err));
            }
            Command::AddCore(core) => self.add_core(core, true),
            Command::RemoveCore(key) => {
                self.replicator.remove_core(&key);
                self.cores.remove(&key);
                self.subscriptions.remove(&key);
            }
            Command::ClosePeer(peer) => {
                self.replicator.disconnect(now, peer);
                self.end_peer(peer, Ok(()));
            }
            Command::Shutdown => {}
            Command::Get {
                core,
                index,
                timeout,
                reply,
                ticket,
            } => {
                let key = core.key();
                self.add_core(core.clone(), true);
                let handle = self.replicator.get(now, key, index, timeout);
                ticket.set(handle);
                self.gets.insert(handle, (core, index, reply));
            }
            Command::Seek {
                core,
                bytes,
                timeout,
                reply,
                ticket,
            } => {
                let key = core.key();
                self.add_core(core, true);
                let handle = self.replicator.seek(now, key, bytes, timeout);
                ticket.set(handle);
                self.seeks.insert(handle, reply);
            }
            Command::Download {
                core,
                range,
                reply,
                ticket,
            } => {
                let key = core.key();
                self.add_core(core, true);
                let handle = self
                    .replicator
                    .download(now, key, range.start, range.end, range.live);
                ticket.set(handle);
                self.downloads.insert(handle, reply);
            }
            Command::Abandoned(ticket) => {
                // A caller that stopped waiting cancels its get, seek or
                // download (if it has not ended meanwhile).
                if let Some(handle) = ticket.handle() {
                    let waiting = self.gets.remove(&handle).is_some()
                        | self.downloads.remove(&handle).is_some()
                        | self.seeks.remove(&handle).is_some();
                    if waiting {
                        self.replicator.cancel(handle);
                    }
                }
            }
            Command::Changed(key) => self.replicator.local_changed(now, key),
            Command::Cleared(key, range) => self.replicator.local_cleared(now, key, range),
            Command::Stored {
                batch,
                key,
                proofs,
                result,
            } => self.stored(batch, key, proofs, result),
            Command::Peers(reply) => {
                let _ = reply.send(self.replicator.peers().collect());
            }
            Command::Resources(reply) => {
                let backlogs = self
                    .writers
                    .values()
                    .map(|w| w.backlog.load(std::sync::atomic::Ordering::Relaxed));
                let (inflight_requests, largest_inflight) = self.replicator.inflight_requests();
                let _ = reply.send(Resources {
                    connections: self.writers.len(),
                    inbox_bytes: 0,
                    backlog_bytes: backlogs.clone().sum(),
                    largest_backlog: backlogs.max().unwrap_or(0),
                    queued_requests: self.replicator.queued_requests(),
                    held_opens: self.replicator.held_opens(),
                    inflight_requests,
                    largest_inflight,
                });
            }
            Command::SyncedPeers(key, reply) => {
                let _ = reply.send(self.replicator.synced_peers(&key));
            }
            Command::SendExtension { key, name, message } => {
                self.replicator.send_extension(key, None, &name, &message);
            }
            Command::SubscribeExtensions(tx) => self.extension_subscribers.push(tx),
            Command::SubscribeEvents(tx) => {
                self.event_subscribers.push(tx);
                self.replicator.set_reporting(true);
            }
            Command::Stats(key, reply) => {
                let peers: Vec<PeerStats> = self
                    .replicator
                    .peer_stats(&key)
                    .into_iter()
                    .filter_map(|(peer, transfer, length, contiguous_length)| {
                        Some(PeerStats {
                            peer,
                            remote: *self.remotes.get(&peer)?,
                            transfer,
                            length,
                            contiguous_length,
                        })
                    })
                    .collect();
                let mut total = Transfer::default();
                for p in &peers {
                    total += p.transfer;
                }
                let _ = reply.send(CoreStats { total, peers });
            }
            Command::Update {
                core,
                timeout,
                reply,
            } => {
                self.add_core(core.clone(), true);
                self.updates.push((core, Instant::now() + timeout, reply));
            }
            Command::Writable => {}
        }
    }

    fn end_peer(&mut self, peer: PeerId, result: Result<()>) {
        // The first end of a peer decides how its connection ended.
        let first = self.writers.remove(&peer).is_some();
        self.remotes.remove(&peer);
        if let Some((reader, writer)) = self.readers.remove(&peer) {
            reader.abort();
            // The writer may finish what was queued (a `Close`), briefly.
            let writer = writer.abort_handle();
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_GRACE).await;
                writer.abort();
            });
        }
        match self.closers.remove(&peer) {
            Some(closed) => {
                let _ = closed.send(result);
            }
            None if first => {
                self.ended_early.insert(peer, result);
            }
            None => {}
        }
    }

    fn outputs(&mut self) {
        while let Some(event) = self.replicator.poll_event() {
            self.event(event);
        }
        self.check_updates();
        // Serve a peer only while it reads what it was sent; drop one whose
        // backlog stays over the bound.
        let max = self.limits.max_backlog;
        let clock = Instant::now();
        let mut overdue = Vec::new();
        for (&peer, writer) in &mut self.writers {
            let backlog = writer.backlog.load(std::sync::atomic::Ordering::Relaxed);
            self.replicator
                .set_send_budget(peer, max.saturating_sub(backlog));
            if backlog <= max {
                writer.over_since = None;
            } else if clock - *writer.over_since.get_or_insert(clock) >= self.limits.backlog_timeout
            {
                overdue.push((peer, backlog));
            }
        }
        for (peer, bytes) in overdue {
            self.replicator.disconnect(now(), peer);
            let after = self.limits.backlog_timeout;
            self.end_peer(peer, Err(Error::Backlog { bytes, after }));
        }
        let mut batches: BTreeMap<PeerId, (Vec<Message>, usize)> = BTreeMap::new();
        while let Some((peer, message)) = self.replicator.poll_transmit() {
            let (batch, bytes) = batches.entry(peer).or_default();
            *bytes += prost::Message::encoded_len(&message);
            batch.push(message);
            // Past the bound mid-way: serve it nothing more for now.
            if let Some(writer) = self.writers.get(&peer)
                && writer.backlog.load(std::sync::atomic::Ordering::Relaxed) + *bytes > max
            {
                self.replicator.set_send_budget(peer, 0);
            }
        }
        for (peer, (batch, bytes)) in batches {
            if let Some(writer) = self.writers.get_mut(&peer) {
                let before = writer
                    .backlog
                    .fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
                if before + bytes > max {
                    writer.over_since.get_or_insert(clock);
                }
                let _ = writer.queue.send((batch, bytes));
            }
        }
        self.wait_for_room();
    }

    /// Makes sure that a peer left with nothing more served for want of
    /// room in its backlog (the replicator's send budget used up, with
    /// requests or announcements maybe waiting) is served again once its
    /// writer makes room, however little: the writer is asked to wake the
    /// driver after its next batch. If it has no batch left to write (the
    /// backlog drained before the ask was seen), the driver wakes itself.
    ///
    /// The ask (`wake`) is stored before the backlog is read, and the
    /// writer subtracts a batch from the backlog before it takes the ask
    /// (both sequentially consistent): either the writer sees the ask after
    /// a later batch, or this read sees every batch written and the
    /// backlog at 0. So no wake-up is lost, whatever the backlog's level
    /// against [`Limits::max_backlog`].
    fn wait_for_room(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        for (&peer, writer) in &self.writers {
            if !self.replicator.congested(peer) {
                continue;
            }
            writer.wake.store(true, SeqCst);
            if writer.backlog.load(SeqCst) == 0
                && writer.wake.swap(false, SeqCst)
                && let Some(commands) = self.commands.upgrade()
            {
                let _ = commands.send(Command::Writable);
            }
        }
    }

    /// Hands `event` to every subscriber; reporting stops when none is
    /// left.
    fn report(&mut self, event: ReplicationEvent) {
        self.event_subscribers
            .retain(|tx| tx.send(event.clone()).is_ok());
        if self.event_subscribers.is_empty() {
            self.replicator.set_reporting(false);
        }
    }

    /// Answers the updates that are done or past their deadline.
    fn check_updates(&mut self) {
        if self.updates.is_empty() {
            return;
        }
        let clock = Instant::now();
        let mut left = Vec::new();
        for (core, deadline, reply) in std::mem::take(&mut self.updates) {
            if reply.is_closed() {
                continue;
            }
            if self.replicator.up_to_date(&core.key()) {
                let length = core.signed_state().map(|s| s.length);
                let _ = reply.send(length.map_err(|e| Error::Storage(Arc::new(e))));
            } else if deadline <= clock {
                let _ = reply.send(Err(Error::Timeout));
            } else {
                left.push((core, deadline, reply));
            }
        }
        self.updates = left;
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Store {
                batch, key, proofs, ..
            } => {
                let Some(core) = self.cores.get(&key).cloned() else {
                    return;
                };
                let Some(commands) = self.commands.upgrade() else {
                    return;
                };
                if proofs.len() <= INLINE_BATCH {
                    // A few proofs (sparse gets): storing them here saves
                    // two thread hops of latency.
                    let result = core.apply(&proofs);
                    self.stored(batch, key, proofs, result);
                } else {
                    tokio::task::spawn_blocking(move || {
                        let result = core.apply(&proofs);
                        let _ = commands.send(Command::Stored {
                            batch,
                            key,
                            proofs,
                            result,
                        });
                    });
                }
            }
            Event::UnknownCore { discovery_key, .. } => {
                if !self.all_cores {
                    return;
                }
                // One point lookup per unknown key, whatever the store
                // holds; a key it lacks is held and looked up again later.
                if !self.serve_discovered(&discovery_key) {
                    self.recheck_pending = true;
                }
            }
            Event::Got { handle, index, .. } => {
                if let Some((core, _, reply)) = self.gets.remove(&handle) {
                    let _ = reply.send(core.get(index).map_err(|e| Error::Storage(Arc::new(e))));
                }
            }
            Event::Sought {
                handle,
                index,
                offset,
                ..
            } => {
                if let Some(reply) = self.seeks.remove(&handle) {
                    let _ = reply.send(Ok((index, offset)));
                }
            }
            Event::Downloaded { handle, .. } => {
                if let Some(reply) = self.downloads.remove(&handle) {
                    let _ = reply.send(Ok(()));
                }
            }
            Event::Failed { handle, error, .. } => {
                if let Some((_, _, reply)) = self.gets.remove(&handle) {
                    let _ = reply.send(Err(error));
                } else if let Some(reply) = self.downloads.remove(&handle) {
                    let _ = reply.send(Err(error));
                } else if let Some(reply) = self.seeks.remove(&handle) {
                    let _ = reply.send(Err(error));
                }
            }
            // An equivocation's evidence is the error too, which
            // `Connection::closed` hands to the application.
            Event::PeerError { peer, error } => self.end_peer(peer, Err(error)),
            Event::Report(event) => self.report(event),
            Event::Extension {
                peer,
                key,
                name,
                message,
            } => {
                let m = ExtensionMessage {
                    peer,
                    key,
                    name,
                    message,
                };
                self.extension_subscribers
                    .retain(|tx| tx.send(m.clone()).is_ok());
            }
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
