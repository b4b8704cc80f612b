//! [`Replication`]: the tokio driver around the [`Replicator`]. A thin layer:
//! it owns the sockets and the clock, runs `Core::apply` for
//! [`Event::Store`] on a blocking thread, and answers the application's
//! futures.
//!
//! Tasks: one driver task owns the replicator; per connection, a reader task
//! decodes messages into the driver's bounded inbox (backpressure on a fast
//! sender) and a writer task sends what the driver hands it, several frames
//! per write.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use hyper_core::{Core, CoreKey, DiscoveryKey, KeyPair, PublicKey, Store, Subscription};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::limits::{Admission, Admitted, Limits, Refusal};
use crate::messages::Message;
use crate::replicator::{BatchId, Config, Event, Handle, PeerId, Replicator, Transfer};
use crate::stream::EncryptedStream;

/// Messages buffered from all readers before readers wait (bytes are
/// bounded too: [`Limits::inbox_bytes`]).
const INBOX: usize = 1024;
/// Bytes a message counts for in the inbox besides its frame (its place
/// in the queue and its decoded form's fixed part).
const INBOX_OVERHEAD: usize = 64;
/// Messages handled before the driver flushes what they produced.
const DRAIN: usize = 512;
/// Least time between two listings of the store for a discovery key not
/// in the map (all-cores mode).
const RESCAN_EVERY: Duration = Duration::from_secs(10);
/// Store batches of at most this many proofs run on the driver's thread;
/// larger ones on the blocking pool.
const INLINE_BATCH: usize = 4;

/// How a [`Replication`] chooses its cores.
#[derive(Debug, Clone)]
pub struct ReplicationOptions {
    /// Serve every core of the store to peers that ask for it: a peer's
    /// `Open` for any core the store holds is answered if its capability
    /// proves the core key (looked up in a map of discovery keys made when
    /// the replication starts, and made again at most every 10 s for keys
    /// it lacks). These cores are never opened first, so a connection
    /// learns no discovery key it did not prove it knows. Without it, only
    /// cores given to [`Replication::add_core`] (or fetched through
    /// [`Replication::get`] / [`Replication::download`]) are replicated;
    /// those are opened on every connection either way.
    pub all_cores: bool,
    /// Tuning of the replicator.
    pub config: Config,
    /// With a store of eventual durability, make what was stored durable
    /// (an fsynced commit) at most this often while data arrives, so a
    /// crash loses at most this much of a download. `None`: never (the
    /// application flushes).
    pub flush_every: Option<Duration>,
    /// Deadlines, caps and buffer bounds per peer (see [`Limits`]).
    pub limits: Limits,
}

impl Default for ReplicationOptions {
    fn default() -> Self {
        ReplicationOptions {
            all_cores: false,
            config: Config::default(),
            flush_every: Some(Duration::from_secs(1)),
            limits: Limits::default(),
        }
    }
}

/// What to download, see [`Replication::download`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRange {
    /// First block.
    pub start: u64,
    /// End (exclusive); `None` is the latest length the peers know of.
    pub end: Option<u64>,
    /// Keep following appends; the download never finishes.
    pub live: bool,
}

impl DownloadRange {
    /// Every block up to the peers' latest length.
    pub fn all() -> Self {
        DownloadRange {
            start: 0,
            end: None,
            live: false,
        }
    }

    /// Every block, then every block the writer appends.
    pub fn live() -> Self {
        DownloadRange {
            live: true,
            ..Self::all()
        }
    }

    /// Blocks `range`.
    pub fn range(range: Range<u64>) -> Self {
        DownloadRange {
            start: range.start,
            end: Some(range.end),
            live: false,
        }
    }
}

/// The driver's handle on a connection's writer task: the queue, and the
/// bytes in it not yet written to the socket.
struct Writer {
    queue: mpsc::UnboundedSender<(Vec<Message>, usize)>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    /// Since when the backlog is over [`Limits::max_backlog`].
    over_since: Option<Instant>,
}

/// How long a connection's writer may go on sending what was queued
/// before the connection ended (a `Close`, say) before it is stopped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection's reader hands the driver. (Messages are large and
/// the barrier is rare; boxing them would cost an allocation each.)
#[allow(clippy::large_enum_variant)]
enum Inbound {
    /// A message, holding its bytes of the inbox budget until handled.
    Message(PeerId, Message, OwnedSemaphorePermit),
    /// The peer sent a frame over the limit for a peer with no channel
    /// paired: once the driver has handled everything before it, it says
    /// whether a channel is paired (then the full limit applies).
    Paired(PeerId, oneshot::Sender<bool>),
}

/// Where a finished get sends its block.
type BlockReply = oneshot::Sender<Result<Vec<u8>>>;

enum Command {
    Connection {
        capabilities: crate::Capabilities,
        writer: Writer,
        reply: oneshot::Sender<PeerId>,
    },
    Reader {
        peer: PeerId,
        task: JoinHandle<()>,
        writer_task: JoinHandle<()>,
        closed: oneshot::Sender<Result<()>>,
    },
    Closed {
        peer: PeerId,
        error: Option<Error>,
    },
    AddCore(Core),
    RemoveCore(CoreKey),
    ClosePeer(PeerId),
    Shutdown,
    Get {
        core: Core,
        index: u64,
        timeout: Duration,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
    Download {
        core: Core,
        range: DownloadRange,
        reply: oneshot::Sender<Result<()>>,
    },
    Changed(CoreKey),
    Stored {
        batch: BatchId,
        key: CoreKey,
        proofs: Vec<hyper_core::Proof>,
        result: std::result::Result<Vec<hyper_core::Verified>, hyper_core::Error>,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    Resources(oneshot::Sender<Resources>),
    SyncedPeers(CoreKey, oneshot::Sender<usize>),
    /// A congested peer's writer drained (the driver re-checks congestion
    /// in its output step, which follows every command).
    Writable,
    SendExtension {
        key: CoreKey,
        name: String,
        message: Vec<u8>,
    },
    SubscribeExtensions(mpsc::UnboundedSender<ExtensionMessage>),
    SubscribeEvents(mpsc::UnboundedSender<ReplicationEvent>),
    Stats(CoreKey, oneshot::Sender<CoreStats>),
    Update {
        core: Core,
        timeout: Duration,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// What the peers make this side hold now, all connections together: the
/// quantities [`Limits`] bounds (see [`Replication::resources`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resources {
    /// Connections replicating.
    pub connections: usize,
    /// Bytes of received messages waiting for the driver (at most
    /// [`Limits::inbox_bytes`]).
    pub inbox_bytes: usize,
    /// Bytes queued for writers, not yet written to the sockets.
    pub backlog_bytes: usize,
    /// The largest of those backlogs (one peer's).
    pub largest_backlog: usize,
    /// Requests and `Want`s queued to serve (at most
    /// `Config::max_queued_requests` per peer).
    pub queued_requests: usize,
    /// `Open`s held for cores not opened here (at most
    /// [`MAX_PENDING_OPENS`](crate::MAX_PENDING_OPENS) per peer).
    pub held_opens: usize,
}

/// What happened in a replication, for a UI (see [`Replication::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationEvent {
    /// A block from `peer` was verified and stored.
    Downloaded {
        /// The core.
        key: CoreKey,
        /// The peer that sent it.
        peer: PeerId,
        /// The block.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A block was sent to `peer`.
    Uploaded {
        /// The core.
        key: CoreKey,
        /// The peer it went to.
        peer: PeerId,
        /// The block.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A peer opened a core and told its state.
    PeerAdded {
        /// The core.
        key: CoreKey,
        /// The peer.
        peer: PeerId,
        /// Its signed length.
        length: u64,
        /// How many blocks from 0 it holds, as far as it said.
        contiguous_length: u64,
    },
    /// A peer closed a core's channel or went away.
    PeerRemoved {
        /// The core.
        key: CoreKey,
        /// The peer.
        peer: PeerId,
    },
}

/// One peer's part of [`CoreStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerId,
    /// Blocks and bytes moved with it for the core.
    pub transfer: Transfer,
    /// Its signed length.
    pub length: u64,
    /// How many blocks from 0 it holds, as far as it said.
    pub contiguous_length: u64,
}

/// What moved for one core, in total and per connected peer (see
/// [`Replication::stats`]). Counts restart for a peer that reconnects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// All connected peers together.
    pub total: Transfer,
    /// Each connected peer that told its state.
    pub peers: Vec<PeerStats>,
}

/// An extension message a peer sent on a core's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionMessage {
    /// The peer.
    pub peer: PeerId,
    /// The core whose channel carried it.
    pub key: CoreKey,
    /// The extension's name.
    pub name: String,
    /// Its payload.
    pub message: Vec<u8>,
}

/// Replicates cores of one [`Store`] with any number of peers. Cheap to
/// clone; the driver task stops when every clone is dropped.
#[derive(Clone)]
pub struct Replication {
    commands: mpsc::UnboundedSender<Command>,
    inbox: mpsc::Sender<Inbound>,
    /// Bytes the inbox may still take (see [`Limits::inbox_bytes`]).
    inbox_budget: Arc<Semaphore>,
    identity: Arc<KeyPair>,
    limits: Arc<Limits>,
    admission: Arc<Admission>,
}

/// One connection of a [`Replication`].
///
/// Dropping it leaves the connection replicating (it belongs to the
/// [`Replication`]); [`Connection::close`] ends it, and so does dropping
/// every handle of the replication.
pub struct Connection {
    peer: PeerId,
    remote: PublicKey,
    closed: oneshot::Receiver<Result<()>>,
    commands: mpsc::WeakUnboundedSender<Command>,
}

/// A weak handle on the driver's commands, for the connection tasks.
struct Notify(mpsc::WeakUnboundedSender<Command>);

impl Notify {
    fn send(&self, command: Command) {
        if let Some(commands) = self.0.upgrade() {
            let _ = commands.send(command);
        }
    }
}

impl Connection {
    /// Its id in the replicator.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The peer's proven identity.
    pub fn remote_identity(&self) -> PublicKey {
        self.remote
    }

    /// Waits until the connection ends: `Ok` when the peer closed it,
    /// the error when it broke the protocol, sent data that failed
    /// verification, or the stream failed.
    pub async fn closed(self) -> Result<()> {
        self.closed.await.unwrap_or(Ok(()))
    }

    /// Ends the connection: its tasks stop (what was queued is sent, for at
    /// most 2 s), its requests move to other peers, and
    /// [`Connection::closed`] returns `Ok`.
    pub fn close(&self) {
        if let Some(commands) = self.commands.upgrade() {
            let _ = commands.send(Command::ClosePeer(self.peer));
        }
    }
}

impl Replication {
    /// Starts replicating `store` on the current tokio runtime, proving
    /// `identity` to peers.
    pub fn new(store: Store, identity: KeyPair, options: ReplicationOptions) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let limits = Arc::new(options.limits.clone());
        let inbox_bytes = limits.inbox_bytes.max(limits.max_frame + INBOX_OVERHEAD);
        let driver = Driver {
            replicator: Replicator::new(options.config.clone()),
            limits: limits.clone(),
            store,
            all_cores: options.all_cores,
            commands: commands.downgrade(),
            writers: HashMap::new(),
            readers: HashMap::new(),
            closers: HashMap::new(),
            ended_early: HashMap::new(),
            cores: HashMap::new(),
            subscriptions: HashMap::new(),
            gets: HashMap::new(),
            downloads: HashMap::new(),
            discovery: HashMap::new(),
            last_scan: None,
            flush_every: options.flush_every,
            last_flush: Instant::now(),
            unflushed: false,
            extension_subscribers: Vec::new(),
            event_subscribers: Vec::new(),
            updates: Vec::new(),
        };
        tokio::spawn(driver.run(command_rx, inbox_rx));
        Replication {
            commands,
            inbox,
            inbox_budget: Arc::new(Semaphore::new(inbox_bytes)),
            identity: Arc::new(identity),
            limits,
            admission: Arc::default(),
        }
    }

    /// This node's identity key.
    pub fn identity(&self) -> PublicKey {
        self.identity.public_key()
    }

    /// The limits this replication was started with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes a place for a connection accepted from `ip` under
    /// [`Limits::max_connections`] and [`Limits::max_connections_per_ip`];
    /// the place is freed when the returned guard drops.
    pub(crate) fn admit(&self, ip: std::net::IpAddr) -> std::result::Result<Admitted, Refusal> {
        self.admission.admit(ip, &self.limits)
    }

    /// Accepted connections holding a place now (see
    /// [`Limits::max_connections`]).
    pub fn admitted(&self) -> usize {
        self.admission.open()
    }

    /// Replicates `core` with every peer, now and later.
    pub fn add_core(&self, core: &Core) {
        let _ = self.commands.send(Command::AddCore(core.clone()));
    }

    /// Stops replicating `core` on every connection: its channels are
    /// closed (`Close` sent to each peer), and its gets and downloads fail
    /// with [`Error::Cancelled`]. A peer's later `Open` for it is answered
    /// only in all-cores mode.
    pub fn remove_core(&self, core: &Core) {
        let _ = self.commands.send(Command::RemoveCore(core.key()));
    }

    /// Ends the replication: every connection closes, every task stops,
    /// waiting gets and downloads fail with [`Error::Cancelled`], and data
    /// stored is made durable. Later calls on any handle fail with
    /// [`Error::Closed`] (or do nothing). Dropping every handle does the
    /// same.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Runs the encrypted handshake on `io` (as `initiator` or responder) and
    /// replicates over it until either side closes it. A handshake that
    /// takes longer than [`Limits::handshake_timeout`] fails with
    /// [`Error::HandshakeTimeout`].
    pub async fn add_stream<S>(&self, io: S, initiator: bool) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limit = self.limits.handshake_timeout;
        let handshake = EncryptedStream::handshake(io, &self.identity, initiator);
        let stream = tokio::time::timeout(limit, handshake)
            .await
            .map_err(|_| Error::HandshakeTimeout(limit))??;
        self.attach(stream).await
    }

    /// Replicates over `io`, a stream of a transport that already encrypts
    /// and proved the peer's identity `remote` (no Noise layer: see
    /// [`EncryptedStream::secured`]); `binding` is a secret both ends derive
    /// from that connection, which the channel capabilities are bound to.
    pub async fn add_secured_stream<S>(
        &self,
        io: S,
        remote: PublicKey,
        binding: [u8; 32],
        initiator: bool,
    ) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.attach(EncryptedStream::secured(io, remote, binding, initiator))
            .await
    }

    /// Replicates over an established stream until either side closes it.
    async fn attach<S>(&self, stream: EncryptedStream<S>) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let remote = stream.remote_identity();
        let capabilities = stream.capabilities();
        let mut stream = stream;
        stream.set_max_frame(self.limits.max_frame);
        let (mut reader, mut writer) = stream.into_split();
        reader.set_idle_timeout(Some(self.limits.idle_timeout));
        reader.set_frame_limit(self.limits.max_frame_unpaired);
        let keep_alive = self.limits.keep_alive;
        let max_backlog = self.limits.max_backlog;
        let (writer_tx, mut writer_rx) = mpsc::unbounded_channel::<(Vec<Message>, usize)>();
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (reply, peer) = oneshot::channel();
        self.send(Command::Connection {
            capabilities,
            writer: Writer {
                queue: writer_tx,
                backlog: backlog.clone(),
                over_since: None,
            },
            reply,
        })?;
        let peer = peer.await.map_err(|_| Error::Closed)?;
        // The tasks hold the driver only weakly: it stops (and aborts them)
        // once the application drops every handle.
        let commands = Notify(self.commands.downgrade());
        let writer_task = tokio::spawn(async move {
            loop {
                let (batch, bytes) = match tokio::time::timeout(keep_alive, writer_rx.recv()).await
                {
                    Ok(Some(queued)) => queued,
                    Ok(None) => break,
                    Err(_) => {
                        // Quiet for a while: tell the peer this side lives.
                        if let Err(error) = writer.keep_alive().await {
                            commands.send(Command::Closed {
                                peer,
                                error: Some(error),
                            });
                            return;
                        }
                        continue;
                    }
                };
                let sent = writer.send_all(&batch).await;
                let before = backlog.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
                if before > max_backlog && before - bytes <= max_backlog {
                    // Drained below the bound: the driver serves it again.
                    commands.send(Command::Writable);
                }
                if let Err(error) = sent {
                    commands.send(Command::Closed {
                        peer,
                        error: Some(error),
                    });
                    return;
                }
            }
            let _ = writer.shutdown().await;
        });
        let commands = Notify(self.commands.downgrade());
        let inbox = self.inbox.clone();
        let budget = self.inbox_budget.clone();
        let most = self
            .limits
            .inbox_bytes
            .max(self.limits.max_frame + INBOX_OVERHEAD);
        let task = tokio::spawn(async move {
            let error = loop {
                match reader.recv_sized().await {
                    Ok(Some((m, len))) => {
                        let bytes = (len + INBOX_OVERHEAD).min(most);
                        let Ok(permit) = budget
                            .clone()
                            .acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
                            .await
                        else {
                            break None;
                        };
                        if inbox.send(Inbound::Message(peer, m, permit)).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => break None,
                    Err(Error::FrameTooLarge { len, max })
                        if max < reader.max_frame() && len <= reader.max_frame() as u64 =>
                    {
                        // Over the limit for a peer that proved nothing:
                        // has it proved a key by now?
                        let (tx, rx) = oneshot::channel();
                        if inbox.send(Inbound::Paired(peer, tx)).await.is_err() {
                            break None;
                        }
                        if rx.await.unwrap_or(false) {
                            let max = reader.max_frame();
                            reader.set_frame_limit(max);
                        } else {
                            break Some(Error::FrameTooLarge { len, max });
                        }
                    }
                    Err(e) => break Some(e),
                }
            };
            commands.send(Command::Closed { peer, error });
        });
        let (closed_tx, closed) = oneshot::channel();
        self.send(Command::Reader {
            peer,
            task,
            writer_task,
            closed: closed_tx,
        })?;
        Ok(Connection {
            peer,
            remote,
            closed,
            commands: self.commands.downgrade(),
        })
    }

    /// Block `index` of `core`: the local copy, or fetched from peers that
    /// have it (verified, then stored), failing with [`Error::Timeout`]
    /// after `timeout`.
    pub async fn get(&self, core: &Core, index: u64, timeout: Duration) -> Result<Vec<u8>> {
        if let Ok(block) = core.get(index) {
            return Ok(block);
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Get {
            core: core.clone(),
            index,
            timeout,
            reply,
        })?;
        rx.await.map_err(|_| Error::Cancelled)?
    }

    /// Downloads `range` of `core` from peers; returns once every block of
    /// it is verified and stored. A live download never returns. Dropping
    /// the future cancels the download (as it does a [`Replication::get`]).
    pub async fn download(&self, core: &Core, range: DownloadRange) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Download {
            core: core.clone(),
            range,
            reply,
        })?;
        rx.await.map_err(|_| Error::Cancelled)?
    }

    /// Sends a named application message on `core`'s channel to every peer
    /// that has the core open (at most the peer's frame limit, 8 MiB by
    /// default).
    pub fn send_extension(&self, core: &Core, name: &str, message: &[u8]) -> Result<()> {
        self.send(Command::SendExtension {
            key: core.key(),
            name: name.to_string(),
            message: message.to_vec(),
        })
    }

    /// Every extension message that arrives from now on.
    pub fn extensions(&self) -> mpsc::UnboundedReceiver<ExtensionMessage> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.send(Command::SubscribeExtensions(tx));
        rx
    }

    /// How many connected peers have `core` open and have told this side
    /// their state of it (0: no peer serves it, or not yet).
    pub async fn synced_peers(&self, core: &Core) -> usize {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::SyncedPeers(core.key(), reply)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// What the peers make this side hold now (queued bytes and requests):
    /// how a test or a monitor sees that the limits hold.
    pub async fn resources(&self) -> Resources {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Resources(reply)).is_err() {
            return Resources::default();
        }
        let mut resources = rx.await.unwrap_or_default();
        let budget = self
            .limits
            .inbox_bytes
            .max(self.limits.max_frame + INBOX_OVERHEAD);
        resources.inbox_bytes = budget.saturating_sub(self.inbox_budget.available_permits());
        resources
    }

    /// Every [`ReplicationEvent`] from now on (blocks downloaded and
    /// uploaded, peers added and removed). They are made only while some
    /// receiver is open.
    pub fn events(&self) -> mpsc::UnboundedReceiver<ReplicationEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.send(Command::SubscribeEvents(tx));
        rx
    }

    /// What moved for `core`, in total and per connected peer, and what
    /// each peer says it holds: for a progress display to poll.
    pub async fn stats(&self, core: &Core) -> CoreStats {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Stats(core.key(), reply)).is_err() {
            return CoreStats::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Waits until `core` here is as long as the newest length the
    /// connected peers know (some peer told its state, none is ahead, no
    /// upgrade in flight) and returns that length: "am I up to date?".
    /// Only the length is fetched, not the blocks. Fails with
    /// [`Error::Timeout`] after `timeout` (also when no peer has the core).
    pub async fn update(&self, core: &Core, timeout: Duration) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Update {
            core: core.clone(),
            timeout,
            reply,
        })?;
        rx.await.map_err(|_| Error::Cancelled)?
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Peers(reply)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Closed)
    }
}

struct Driver {
    replicator: Replicator<Core>,
    limits: Arc<Limits>,
    store: Store,
    all_cores: bool,
    commands: mpsc::WeakUnboundedSender<Command>,
    writers: HashMap<PeerId, Writer>,
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
    /// Every core of the store by discovery key (all-cores mode), and every
    /// core replicated.
    discovery: HashMap<DiscoveryKey, CoreKey>,
    /// When the store was last listed into `discovery`.
    last_scan: Option<Instant>,
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
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut inbox: mpsc::Receiver<Inbound>,
    ) {
        if self.all_cores {
            self.scan_store();
        }
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
                self.replicator.handle_message(now(), peer, message);
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
                    if let Some((_, _, reply)) = self.gets.remove(&handle) {
                        let _ = reply.send(Ok(bytes.clone()));
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

    /// Lists the store's cores into the map of discovery keys.
    fn scan_store(&mut self) {
        self.last_scan = Some(Instant::now());
        for entry in self.store.list().unwrap_or_default() {
            self.discovery.insert(entry.key.discovery_key(), entry.key);
        }
    }

    /// Replicates `core`: opened on every connection (`active`), or only
    /// served to peers that prove its key.
    fn add_core(&mut self, core: Core, active: bool) {
        let key = core.key();
        if !self.cores.contains_key(&key) {
            let commands = self.commands.clone();
            let sub = core.subscribe(move || {
                if let Some(commands) = commands.upgrade() {
                    let _ = commands.send(Command::Changed(key));
                }
            });
            self.subscriptions.insert(key, sub);
            self.cores.insert(key, core.clone());
            self.discovery.insert(key.discovery_key(), key);
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
                writer,
                reply,
            } => {
                let peer = self.replicator.connect(now, capabilities);
                self.writers.insert(peer, writer);
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
            } => {
                let key = core.key();
                self.add_core(core.clone(), true);
                let handle = self.replicator.get(now, key, index, timeout);
                self.gets.insert(handle, (core, index, reply));
            }
            Command::Download { core, range, reply } => {
                let key = core.key();
                self.add_core(core, true);
                let handle = self
                    .replicator
                    .download(now, key, range.start, range.end, range.live);
                self.downloads.insert(handle, reply);
            }
            Command::Changed(key) => self.replicator.local_changed(now, key),
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
                let _ = reply.send(Resources {
                    connections: self.writers.len(),
                    inbox_bytes: 0,
                    backlog_bytes: backlogs.clone().sum(),
                    largest_backlog: backlogs.max().unwrap_or(0),
                    queued_requests: self.replicator.queued_requests(),
                    held_opens: self.replicator.held_opens(),
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
                    .map(|(peer, transfer, length, contiguous_length)| PeerStats {
                        peer,
                        transfer,
                        length,
                        contiguous_length,
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
        // A caller that stopped waiting cancels its get or download.
        let abandoned: Vec<Handle> = self
            .gets
            .iter()
            .filter(|(_, g)| g.2.is_closed())
            .map(|(h, _)| *h)
            .chain(
                self.downloads
                    .iter()
                    .filter(|(_, d)| d.is_closed())
                    .map(|(h, _)| *h),
            )
            .collect();
        for handle in abandoned {
            self.gets.remove(&handle);
            self.downloads.remove(&handle);
            self.replicator.cancel(handle);
        }
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
                    .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                if before + bytes > max {
                    writer.over_since.get_or_insert(clock);
                }
                let _ = writer.queue.send((batch, bytes));
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
                // A key not in the map: list the store again, at most
                // every RESCAN_EVERY (a core made since), never per open.
                if !self.discovery.contains_key(&discovery_key)
                    && self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN_EVERY)
                {
                    self.scan_store();
                }
                if let Some(key) = self.discovery.get(&discovery_key).copied()
                    && let Ok(core) = self.store.core(&key)
                {
                    self.add_core(core, false);
                }
            }
            Event::Got { handle, index, .. } => {
                if let Some((core, _, reply)) = self.gets.remove(&handle) {
                    let _ = reply.send(core.get(index).map_err(|e| Error::Storage(Arc::new(e))));
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
                }
            }
            Event::PeerError { peer, error } => self.end_peer(peer, Err(error)),
            Event::BlockDownloaded {
                key,
                peer,
                index,
                bytes,
            } => self.report(ReplicationEvent::Downloaded {
                key,
                peer,
                index,
                bytes,
            }),
            Event::BlockUploaded {
                key,
                peer,
                index,
                bytes,
            } => self.report(ReplicationEvent::Uploaded {
                key,
                peer,
                index,
                bytes,
            }),
            Event::PeerAdded {
                key,
                peer,
                length,
                contiguous_length,
            } => self.report(ReplicationEvent::PeerAdded {
                key,
                peer,
                length,
                contiguous_length,
            }),
            Event::PeerRemoved { key, peer } => {
                self.report(ReplicationEvent::PeerRemoved { key, peer });
            }
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
