//! [`Replication`]: the tokio driver around the [`Replicator`]. A thin layer:
//! it owns the sockets and the clock, runs `Core::apply` for
//! [`Event::Store`] on a blocking thread, and answers the application's
//! futures.
//!
//! Tasks: one driver task owns the replicator; per connection, a reader task
//! decodes messages into the driver's bounded inbox (backpressure on a fast
//! sender) and a writer task sends what the driver hands it, several frames
//! per write.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use hyper_core::{Core, CoreKey, KeyPair, PublicKey, Store};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::limits::{Admission, Admitted, Limits, Refusal};
use crate::messages::Message;
use crate::replicator::{Config, PeerId, ReplicationEvent, Replicator, Transfer};
use crate::stream::EncryptedStream;

mod commands;
mod driver;

use commands::{AbandonOnDrop, Command, Inbound, Notify, Ticket};
use driver::{Driver, Writer};

/// Messages buffered from all readers before readers wait (bytes are
/// bounded too: [`Limits::inbox_bytes`]).
const INBOX: usize = 1024;
/// Bytes a message counts for in the inbox besides its frame (its place
/// in the queue and its decoded form's fixed part).
const INBOX_OVERHEAD: usize = 64;
/// How a [`Replication`] chooses its cores.
#[derive(Debug, Clone)]
pub struct ReplicationOptions {
    /// Serve every core of the store to peers that ask for it: a peer's
    /// `Open` for any core the store holds is answered if its capability
    /// proves the core key (one point lookup per `Open` in the store's index
    /// of discovery keys, [`Store::by_discovery_key`](hyper_core::Store::by_discovery_key),
    /// never a listing of the store; an `Open` for a core the store lacks is
    /// held and looked up again every 10 s). These cores are never opened first, so a connection
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
    /// Requests this side has sent to peers and not had answered, all
    /// peers together.
    pub inflight_requests: usize,
    /// The most of those to one peer (at most
    /// `Config::max_inflight_per_peer`).
    pub largest_inflight: usize,
}

/// One peer's part of [`CoreStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerId,
    /// Its proven identity (as [`Connection::remote_identity`] gives it).
    pub remote: PublicKey,
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
        let driver = Driver::new(
            Replicator::new(options.config.clone()),
            limits.clone(),
            store,
            &options,
            commands.downgrade(),
        );
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
        let (writer_tx, mut writer_rx) = mpsc::unbounded_channel::<(Vec<Message>, usize)>();
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wake = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (reply, peer) = oneshot::channel();
        self.send(Command::Connection {
            capabilities,
            remote,
            writer: Writer {
                queue: writer_tx,
                backlog: backlog.clone(),
                over_since: None,
                wake: wake.clone(),
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
                // Written: if the driver waits for room, it serves the
                // peer again (see `Driver::wait_for_room`).
                backlog.fetch_sub(bytes, std::sync::atomic::Ordering::SeqCst);
                if wake.swap(false, std::sync::atomic::Ordering::SeqCst) {
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
    /// after `timeout`. Through an encrypted handle
    /// ([`Core::with_encryption`]) the plaintext; a wrong key is
    /// [`Error::Storage`] of [`hyper_core::Error::Decrypt`].
    pub async fn get(&self, core: &Core, index: u64, timeout: Duration) -> Result<Vec<u8>> {
        if let Ok(block) = core.get(index) {
            return Ok(block);
        }
        let core = core.clone();
        self.call_abandonable(|reply, ticket| Command::Get {
            core,
            index,
            timeout,
            reply,
            ticket,
        })
        .await
    }

    /// The block of `core` holding byte `bytes` and the offset in it: from
    /// the local tree if it holds the path, else with one request to a peer
    /// (a seek proof: O(log n) tree nodes, no block; verified and stored,
    /// so later seeks nearby are local). Fails with [`Error::Timeout`]
    /// after `timeout` when no peer can answer (none connected, or the
    /// offset is past every peer's byte length). Dropping the future
    /// cancels it.
    pub async fn seek(&self, core: &Core, bytes: u64, timeout: Duration) -> Result<(u64, u64)> {
        match core.seek(bytes) {
            Ok(found) => return Ok(found),
            Err(
                hyper_core::Error::NodeNotAvailable { .. } | hyper_core::Error::InvalidArgument(_),
            ) => {}
            Err(e) => return Err(Error::Storage(Arc::new(e))),
        }
        let core = core.clone();
        self.call_abandonable(|reply, ticket| Command::Seek {
            core,
            bytes,
            timeout,
            reply,
            ticket,
        })
        .await
    }

    /// Downloads `range` of `core` from peers; returns once every block of
    /// it is verified and stored. A live download never returns. Dropping
    /// the future cancels the download (as it does a [`Replication::get`]).
    pub async fn download(&self, core: &Core, range: DownloadRange) -> Result<()> {
        let core = core.clone();
        self.call_abandonable(|reply, ticket| Command::Download {
            core,
            range,
            reply,
            ticket,
        })
        .await
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
        let key = core.key();
        self.ask(|reply| Command::SyncedPeers(key, reply)).await
    }

    /// What the peers make this side hold now (queued bytes and requests):
    /// how a test or a monitor sees that the limits hold.
    pub async fn resources(&self) -> Resources {
        let mut resources = self.ask(Command::Resources).await;
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
        let key = core.key();
        self.ask(|reply| Command::Stats(key, reply)).await
    }

    /// Waits until `core` here is as long as the newest length the
    /// connected peers know (some peer told its state, none is ahead, no
    /// upgrade in flight) and returns that length: "am I up to date?".
    /// Only the length is fetched, not the blocks. Fails with
    /// [`Error::Timeout`] after `timeout` (also when no peer has the core).
    pub async fn update(&self, core: &Core, timeout: Duration) -> Result<u64> {
        let core = core.clone();
        self.call(|reply| Command::Update {
            core,
            timeout,
            reply,
        })
        .await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerId> {
        self.ask(Command::Peers).await
    }

    /// Asks the driver a question; the default answer if it has stopped.
    async fn ask<T: Default>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, rx) = oneshot::channel();
        if self.send(command(reply)).is_err() {
            return T::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Sends the driver a command that answers with a result:
    /// [`Error::Cancelled`] if it is dropped unanswered.
    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply))?;
        rx.await.map_err(|_| Error::Cancelled)?
    }

    /// [`Replication::call`] for a get, seek or download: dropping the
    /// future before the answer tells the driver to cancel it.
    async fn call_abandonable<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>, Ticket) -> Command,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        let ticket = Ticket::default();
        self.send(command(reply, ticket.clone()))?;
        let guard = AbandonOnDrop {
            ticket: Some(ticket),
            commands: &self.commands,
        };
        let answer = rx.await;
        guard.disarm();
        answer.map_err(|_| Error::Cancelled)?
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.send(command).map_err(|_| Error::Closed)
    }
}
