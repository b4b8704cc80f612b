//! The swarm's own listening QUIC endpoint: one UDP socket (dual stack
//! where the host has IPv6) that accepts any peer proving an ed25519 key,
//! and from which this peer dials addresses it was told directly (a local
//! announcement). Peers on the local link reach each other here; the
//! hole-punching path keeps its own fresh sockets.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::peers::{Path, PeerConnection};
use super::{Inner, Swarm};
use crate::error::{Error, Result};
use crate::quic;

/// A handshake plus the stream header on the local link gives up after
/// this (a LAN round trip is milliseconds; a silent address costs this).
pub(super) const LOCAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Incoming handshakes in progress at once; more wait.
const PENDING_ACCEPTS: usize = 32;

/// Binds the listening endpoint: `[::]:port` (both families) if the host
/// has IPv6, else `0.0.0.0:port`.
pub(super) fn bind(identity: &KeyPair, port: u16) -> Result<quinn::Endpoint> {
    let socket = UdpSocket::bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port))))?;
    Ok(quic::endpoint(socket, identity)?)
}

/// Accepts connections on `endpoint` until it closes or the swarm is gone.
pub(super) async fn accept_loop(weak: Weak<Inner>, endpoint: quinn::Endpoint) {
    let pending = Arc::new(Semaphore::new(PENDING_ACCEPTS));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
            return;
        };
        let Some(inner) = weak.upgrade() else { return };
        let swarm = Swarm { inner };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let accepted = timeout(LOCAL_TIMEOUT, async {
                let connection = incoming
                    .await
                    .map_err(|e| Error::Quic(quic::QuicError::Handshake(e)))?;
                let key = quic::remote_identity(&connection).ok_or(Error::WrongPeer)?;
                if swarm.suspended()
                    || swarm.refused(&key, Some(connection.remote_address()))
                    || swarm.full()
                {
                    connection.close(2u32.into(), b"refused");
                    return Err(Error::Firewalled);
                }
                let stream = quic::accept_stream(&connection).await?;
                Ok(PeerConnection {
                    remote: key,
                    path: Path::Local,
                    initiator: false,
                    stream,
                    topic: None,
                    connection,
                    _endpoint: endpoint,
                })
            })
            .await;
            drop(permit);
            if let Ok(Ok(connection)) = accepted {
                swarm.register(connection);
            }
        });
    }
}

impl Swarm {
    /// Dials `key` at every one of `addresses` at once from the listening
    /// endpoint; the first that proves the key wins, the others are
    /// dropped. An address that holds another key fails its handshake
    /// before this side reveals its own.
    pub(super) async fn dial_direct(
        &self,
        key: PublicKey,
        addresses: &[SocketAddr],
    ) -> Result<PeerConnection> {
        let endpoint = self.inner.listener.clone();
        let mut attempts = JoinSet::new();
        for addr in addresses.iter().copied() {
            let endpoint = endpoint.clone();
            attempts.spawn(async move {
                timeout(LOCAL_TIMEOUT, async {
                    let connection = quic::connect(&endpoint, addr, &key).await?;
                    let stream = quic::open_stream(&connection).await?;
                    Ok::<_, Error>((connection, stream))
                })
                .await
                .map_err(|_| Error::Unreachable)?
            });
        }
        let mut last = Error::Unreachable;
        while let Some(done) = attempts.join_next().await {
            match done {
                Ok(Ok((connection, stream))) => {
                    attempts.abort_all();
                    return Ok(PeerConnection {
                        remote: key,
                        path: Path::Local,
                        initiator: true,
                        stream,
                        topic: None,
                        connection,
                        _endpoint: endpoint,
                    });
                }
                Ok(Err(e)) => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }
}
