//! Transports: byte streams a [`Replication`] runs over. Any
//! `AsyncRead + AsyncWrite` works through [`Replication::add_stream`]; these
//! are the bundled ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_core::PublicKey;

use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::limits::Refusal;
use crate::session::{Connection, Replication};

/// Bytes buffered in each direction of an in-memory pair.
const MEMORY_BUFFER: usize = 1 << 20;

/// Two connected in-memory streams (for tests and for replicating between
/// two stores in one process).
pub fn memory_pair() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(MEMORY_BUFFER)
}

/// Connects `a` and `b` over an in-memory pair; `a` initiates.
pub async fn connect_memory(a: &Replication, b: &Replication) -> Result<(Connection, Connection)> {
    let (x, y) = memory_pair();
    let (ca, cb) = tokio::join!(a.add_stream(x, true), b.add_stream(y, false));
    Ok((ca?, cb?))
}

/// First pause after a failed accept (out of file descriptors, say); it
/// doubles up to [`ACCEPT_BACKOFF_MAX`] while accepts keep failing.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between failed accepts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// TCP keep-alive: first probe after this long without traffic.
const TCP_KEEPALIVE_TIME: Duration = Duration::from_secs(60);
/// TCP keep-alive: between probes.
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// TCP_NODELAY (latency of small requests) and TCP keep-alive probes (a
/// peer whose host vanished is found out even while nothing is sent).
fn tune(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_TIME)
        .with_interval(TCP_KEEPALIVE_INTERVAL);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// Dials `addr` over TCP and replicates over the connection. Connecting
/// and the handshake each fail after [`Limits::handshake_timeout`](crate::Limits::handshake_timeout)
/// (`Error::HandshakeTimeout`).
pub async fn connect_tcp(
    replication: &Replication,
    addr: impl ToSocketAddrs,
) -> Result<Connection> {
    let limit = replication.limits().handshake_timeout;
    let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::HandshakeTimeout(limit))??;
    tune(&stream)?;
    replication.add_stream(stream, true).await
}

/// What happened to a connection a [`serve_tcp_with`] listener accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeEvent {
    /// The handshake finished: the peer is replicating.
    Connected {
        /// Its address.
        addr: SocketAddr,
        /// Its proven identity.
        identity: PublicKey,
    },
    /// A connection that had connected ended: `Ok` when the peer closed it.
    Ended {
        /// Its address.
        addr: SocketAddr,
        /// How it ended.
        result: Result<()>,
    },
    /// The handshake failed or timed out.
    HandshakeFailed {
        /// The peer's address.
        addr: SocketAddr,
        /// Why.
        error: Error,
    },
    /// Closed at once: a connection cap was reached.
    Refused {
        /// The peer's address.
        addr: SocketAddr,
        /// Which cap.
        reason: Refusal,
    },
    /// Accepting failed (out of file descriptors, for one); the listener
    /// pauses a little and keeps accepting.
    AcceptFailed(std::io::Error),
}

/// Accepts TCP connections on `listener` and replicates over each, until
/// the returned task is aborted; see [`serve_tcp_with`].
pub fn serve_tcp(replication: &Replication, listener: TcpListener) -> JoinHandle<()> {
    serve_tcp_with(replication, listener, |_| {})
}

/// Accepts TCP connections on `listener` and replicates over each, until
/// the returned task is aborted, telling `on_event` what happens to each.
/// A connection over [`Limits::max_connections`](crate::Limits::max_connections) in total or
/// [`Limits::max_connections_per_ip`](crate::Limits::max_connections_per_ip) from its address is closed at once;
/// a failed handshake drops that connection only; a failed accept (such
/// as `EMFILE`) pauses the listener (5 ms, doubling up to 1 s) and never
/// ends it.
pub fn serve_tcp_with(
    replication: &Replication,
    listener: TcpListener,
    on_event: impl Fn(ServeEvent) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let replication = replication.clone();
    let on_event = Arc::new(on_event);
    tokio::spawn(async move {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            let (stream, addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    on_event(ServeEvent::AcceptFailed(error));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            backoff = ACCEPT_BACKOFF_MIN;
            let admitted = match replication.admit(addr.ip()) {
                Ok(admitted) => admitted,
                Err(reason) => {
                    drop(stream);
                    on_event(ServeEvent::Refused { addr, reason });
                    continue;
                }
            };
            let replication = replication.clone();
            let on_event = on_event.clone();
            tokio::spawn(async move {
                let _admitted = admitted;
                let connected = match tune(&stream) {
                    Ok(()) => replication.add_stream(stream, false).await,
                    Err(e) => Err(e.into()),
                };
                // Only the connection keeps the replication going from here.
                drop(replication);
                match connected {
                    Ok(connection) => {
                        on_event(ServeEvent::Connected {
                            addr,
                            identity: connection.remote_identity(),
                        });
                        let result = connection.closed().await;
                        on_event(ServeEvent::Ended { addr, result });
                    }
                    Err(error) => on_event(ServeEvent::HandshakeFailed { addr, error }),
                }
            });
        }
    })
}

/// Binds a TCP listener (port 0 picks a free port); see [`serve_tcp`].
pub async fn listen_tcp(addr: impl ToSocketAddrs) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
