//! The swarm's own listening QUIC endpoint: one UDP socket (dual stack
//! where the host has IPv6) that accepts any peer proving an ed25519 key,
//! and from which this peer dials addresses it was told directly (a local
//! announcement). Peers on the local link reach each other here; the
//! hole-punching path keeps its own fresh sockets.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::peers::{Path, PeerConnection};
use super::silent::{Outcome, SilentAddresses};
use super::{Inner, Swarm, lock};
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
                    local: swarm.public_key(),
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

/// Addresses claimed for one direct dial; dropping it releases them with
/// the outcomes seen (an attempt still running counts as dropped).
struct Claim<'a> {
    table: &'a Mutex<SilentAddresses>,
    addresses: Vec<SocketAddr>,
    outcomes: Vec<(SocketAddr, Outcome)>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let now = std::time::Instant::now();
        let mut table = lock(self.table);
        for addr in &self.addresses {
            let outcome = self
                .outcomes
                .iter()
                .find(|(a, _)| a == addr)
                .map_or(Outcome::Dropped, |(_, o)| *o);
            table.release(*addr, outcome, now);
        }
    }
}

impl Swarm {
    /// Dials `key` at every one of `addresses` at once from the listening
    /// endpoint; the first that proves the key wins, the others are
    /// dropped. An address that holds another key fails its handshake
    /// before this side reveals its own.
    ///
    /// Addresses being dialled already or resting after silence
    /// ([`silent`](super::silent)) are skipped; `None` if that leaves
    /// none, so nothing was sent.
    pub(super) async fn dial_direct(
        &self,
        key: PublicKey,
        addresses: &[SocketAddr],
    ) -> Option<Result<PeerConnection>> {
        let mut claim = Claim {
            table: &self.inner.silent,
            addresses: lock(&self.inner.silent).claim(addresses, std::time::Instant::now()),
            outcomes: Vec::new(),
        };
        if claim.addresses.is_empty() {
            return None;
        }
        let endpoint = self.inner.listener.clone();
        let mut attempts = JoinSet::new();
        for addr in claim.addresses.iter().copied() {
            let endpoint = endpoint.clone();
            attempts.spawn(async move {
                let attempt = timeout(LOCAL_TIMEOUT, async {
                    let connection = quic::connect(&endpoint, addr, &key).await?;
                    let stream = quic::open_stream(&connection).await?;
                    Ok::<_, Error>((connection, stream))
                })
                .await;
                (addr, attempt)
            });
        }
        let mut last = Error::Unreachable;
        while let Some(done) = attempts.join_next().await {
            let Ok((addr, attempt)) = done else { continue };
            match attempt {
                Ok(Ok((connection, stream))) => {
                    claim.outcomes.push((addr, Outcome::Answered));
                    attempts.abort_all();
                    return Some(Ok(PeerConnection {
                        remote: key,
                        local: self.public_key(),
                        path: Path::Local,
                        initiator: true,
                        stream,
                        topic: None,
                        connection,
                        _endpoint: endpoint,
                    }));
                }
                Ok(Err(e)) => {
                    claim.outcomes.push((addr, Outcome::Answered));
                    last = e;
                }
                Err(_) => claim.outcomes.push((addr, Outcome::Silent)),
            }
        }
        Some(Err(last))
    }
}
