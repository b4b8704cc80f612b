//! What the connection tasks and the application hand the driver task
//! (`driver.rs`): inbound messages and commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_core::{Core, CoreKey, PublicKey};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::driver::Writer;
use super::{CoreStats, DownloadRange, ExtensionMessage, Resources};
use crate::error::{Error, Result};
use crate::messages::Message;
use crate::replicator::{BatchId, Handle, PeerId, ReplicationEvent};

/// What a connection's reader hands the driver. (Messages are large and
/// the barrier is rare; boxing them would cost an allocation each.)
#[allow(clippy::large_enum_variant)]
pub(super) enum Inbound {
    /// A message, holding its bytes of the inbox budget until handled.
    Message(PeerId, Message, OwnedSemaphorePermit),
    /// The peer sent a frame over the limit for a peer with no channel
    /// paired: once the driver has handled everything before it, it says
    /// whether a channel is paired (then the full limit applies).
    Paired(PeerId, oneshot::Sender<bool>),
}

pub(super) enum Command {
    Connection {
        capabilities: crate::Capabilities,
        /// The peer's proven identity.
        remote: PublicKey,
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
        ticket: Ticket,
    },
    Seek {
        core: Core,
        bytes: u64,
        timeout: Duration,
        reply: oneshot::Sender<Result<(u64, u64)>>,
        ticket: Ticket,
    },
    Download {
        core: Core,
        range: DownloadRange,
        reply: oneshot::Sender<Result<()>>,
        ticket: Ticket,
    },
    /// The caller of a get, seek or download stopped waiting: cancel it.
    Abandoned(Ticket),
    Changed(CoreKey),
    /// Blocks of a local core were cleared.
    Cleared(CoreKey, std::ops::Range<u64>),
    Stored {
        batch: BatchId,
        key: CoreKey,
        proofs: Vec<hyper_core::Proof>,
        result: std::result::Result<Vec<hyper_core::Verified>, hyper_core::Error>,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    Resources(oneshot::Sender<Resources>),
    SyncedPeers(CoreKey, oneshot::Sender<usize>),
    /// A congested peer's writer wrote a batch: there is room for more
    /// (the driver re-checks congestion in its output step, which follows
    /// every command).
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

/// A weak handle on the driver's commands, for the connection tasks.
pub(super) struct Notify(pub(super) mpsc::WeakUnboundedSender<Command>);

impl Notify {
    pub(super) fn send(&self, command: Command) {
        if let Some(commands) = self.0.upgrade() {
            let _ = commands.send(command);
        }
    }
}

/// Names a get, seek or download on both sides of the command queue: the
/// driver writes in the handle the replicator gave it; a caller that stops
/// waiting sends the ticket back ([`Command::Abandoned`], queued after the
/// command that made the handle), so the driver cancels it without
/// checking every waiting reply for a dropped receiver.
#[derive(Clone, Default)]
pub(super) struct Ticket(Arc<AtomicU64>);

impl Ticket {
    /// Records the handle the ask was given (only the driver reads it).
    pub(super) fn set(&self, handle: Handle) {
        self.0.store(handle.0, Ordering::Relaxed);
    }

    /// The handle recorded, if any (handles start at 1).
    pub(super) fn handle(&self) -> Option<Handle> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            h => Some(Handle(h)),
        }
    }
}

/// Sends [`Command::Abandoned`] for its ticket when dropped, unless
/// [`AbandonOnDrop::disarm`]ed (the reply came).
pub(super) struct AbandonOnDrop<'a> {
    pub(super) ticket: Option<Ticket>,
    pub(super) commands: &'a mpsc::UnboundedSender<Command>,
}

impl AbandonOnDrop<'_> {
    /// The reply came: nothing to cancel.
    pub(super) fn disarm(mut self) {
        self.ticket = None;
    }
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let _ = self.commands.send(Command::Abandoned(ticket));
        }
    }
}
