//! Application streams beside replication on one connection: a named
//! bidirectional stream opened to one connected peer
//! ([`Swarm::open_stream`]), and the streams peers open to this side
//! ([`Swarm::streams`]). The replication protocol keeps the connection's
//! first stream; every later one carries a name (1 to 255 bytes of UTF-8
//! after a header byte), read within 10 s or the stream is dropped.

use std::sync::Weak;
use std::time::Duration;

use hyper_core::PublicKey;
use tokio::sync::mpsc;

use super::{Inner, Swarm, lock};
use crate::error::{Error, Result};
use crate::quic::{self, QuicStream};

/// A stream's name must arrive within this.
const NAME_TIMEOUT: Duration = Duration::from_secs(10);

/// An application stream a peer opened to this side.
#[derive(Debug)]
pub struct AppStream {
    /// The key the peer proved on the connection.
    pub remote: PublicKey,
    /// The name it gave the stream.
    pub name: String,
    /// The stream (bidirectional, ordered, reliable).
    pub stream: QuicStream,
}

/// Hands every named stream the peer opens on `connection` to the swarm's
/// [`Swarm::streams`] receiver, until the connection ends.
pub(super) async fn accept_loop(
    weak: Weak<Inner>,
    remote: PublicKey,
    connection: quinn::Connection,
) {
    loop {
        let Ok(incoming) = connection.accept_bi().await else {
            return;
        };
        let Some(inner) = weak.upgrade() else { return };
        let sender = lock(&inner.streams).clone();
        drop(inner);
        tokio::spawn(async move {
            let named = tokio::time::timeout(NAME_TIMEOUT, quic::read_stream_name(incoming)).await;
            if let (Ok(Ok((name, stream))), Some(sender)) = (named, sender) {
                let _ = sender.send(AppStream {
                    remote,
                    name,
                    stream,
                });
            }
        });
    }
}

impl Swarm {
    /// Opens a stream named `name` to the connected peer `remote`, beside
    /// its replication stream; the peer gets it from [`Swarm::streams`].
    /// Fails with [`Error::NotConnected`] if no connection to `remote` is
    /// live, and with a QUIC error for a name over 255 bytes.
    pub async fn open_stream(&self, remote: &PublicKey, name: &str) -> Result<QuicStream> {
        let connection = lock(&self.inner.peers)
            .iter()
            .find(|((_, key), _)| key == remote)
            .map(|(_, live)| live.connection.clone())
            .ok_or(Error::NotConnected(*remote))?;
        Ok(quic::open_named_stream(&connection, name).await?)
    }

    /// The named streams peers open to this side, from now on; only the
    /// first caller gets the receiver. Streams opened before anyone asked
    /// are dropped.
    pub fn streams(&self) -> Option<mpsc::UnboundedReceiver<AppStream>> {
        let mut sender = lock(&self.inner.streams);
        if sender.is_some() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *sender = Some(tx);
        Some(rx)
    }
}
