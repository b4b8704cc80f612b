//! Transports: byte streams a [`Replication`] runs over. Any
//! `AsyncRead + AsyncWrite` works through [`Replication::add_stream`]; these
//! are the bundled ones.

use std::net::SocketAddr;

use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinHandle;

use crate::error::Result;
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

/// Dials `addr` over TCP and replicates over the connection.
pub async fn connect_tcp(
    replication: &Replication,
    addr: impl ToSocketAddrs,
) -> Result<Connection> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    replication.add_stream(stream, true).await
}

/// Accepts TCP connections on `listener` and replicates over each, until
/// the returned task is aborted. A failed handshake drops that connection
/// only.
pub fn serve_tcp(replication: &Replication, listener: TcpListener) -> JoinHandle<()> {
    let replication = replication.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let replication = replication.clone();
            tokio::spawn(async move {
                if stream.set_nodelay(true).is_ok()
                    && let Ok(connection) = replication.add_stream(stream, false).await
                {
                    let _ = connection.closed().await;
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
