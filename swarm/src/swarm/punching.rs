//! Reaching a peer found on the DHT: fresh sockets, the connect request
//! through the node holding its record, hole punching or a relay, then
//! QUIC on the socket that got through. Both sides: dialling a record's
//! announcer, and answering a connect request passed on by the DHT.

use std::net::SocketAddr;

use hyper_core::{KeyPair, PublicKey};
use tokio::time::timeout;

use super::peers::{Path, PeerConnection};
use super::{CONNECT_TIMEOUT, Swarm};
use crate::codec::address;
use crate::dht::{Dht, IncomingConnect};
use crate::error::{Error, Result};
use crate::handshake::{Attempt, Ephemeral};
use crate::messages::{Body, Connect, Holepunch, NatKind};
use crate::punch::{self, Prepared, nat_of};
use crate::query::FoundRecord;
use crate::quic;

impl Swarm {
    /// Nodes of `dht` (so of its family) to learn a fresh socket's
    /// mapping from.
    ///
    /// Two are needed to tell a symmetric NAT (each sees another port) from
    /// a cone; the bootstrap nodes come first, then relays and table nodes,
    /// preferring a second observer on another IP.
    async fn observers(dht: &Dht) -> Vec<SocketAddr> {
        let mut candidates: Vec<SocketAddr> = dht.bootstrap_nodes().to_vec();
        if let Ok(status) = dht.status().await {
            candidates.extend(status.relays);
            candidates.extend(status.nodes);
        }
        let mut observers: Vec<SocketAddr> = Vec::new();
        for pass in [true, false] {
            for c in &candidates {
                let new_ip = observers.iter().all(|o| o.ip() != c.ip());
                if observers.len() < 2 && !observers.contains(c) && (new_ip || !pass) {
                    observers.push(*c);
                }
            }
        }
        observers
    }

    /// A relay node the DHT of `near`'s family knows, if any.
    pub(super) async fn relay(&self, near: &SocketAddr) -> Option<SocketAddr> {
        let status = self.inner.dhts.for_addr(near)?.status().await.ok()?;
        status.relays.first().copied()
    }

    /// This side's hole-punching details for one attempt: its punching
    /// socket's addresses, its ephemeral and the signature binding that to
    /// the attempt.
    fn holepunch(
        identity: &KeyPair,
        prepared: &Prepared,
        ephemeral: &Ephemeral,
        signature: hyper_core::Signature,
        relay: Option<SocketAddr>,
    ) -> Holepunch {
        Holepunch {
            public_key: identity.public_key().0.to_vec(),
            addresses: prepared.addresses.iter().map(|a| address(*a)).collect(),
            nat: prepared.nat as i32,
            relay: relay.map(address),
            ephemeral: ephemeral.public.to_vec(),
            signature: signature.0.to_vec(),
        }
    }

    /// One attempt to reach the announcer of `found`, on the family of the
    /// node holding the record: punched, or through `relay` when given.
    pub(super) async fn dial_once(
        &self,
        found: &FoundRecord,
        relay: Option<SocketAddr>,
    ) -> Result<PeerConnection> {
        let dht = self
            .inner
            .dhts
            .for_addr(&found.holder)
            .ok_or(Error::Unreachable)?;
        let prepared = punch::prepare(&Self::observers(dht).await).await?;
        let identity = &self.identity_for(&found.topic);
        let attempt = Attempt {
            topic: found.topic,
            client: identity.public_key(),
            server: found.public_key,
        };
        let ephemeral = Ephemeral::from_secret(punch::random_bytes()?);
        let signature = attempt.sign_offer(identity, &ephemeral);
        let ours = Self::holepunch(identity, &prepared, &ephemeral, signature, relay);
        let connect = Connect {
            topic: found.topic.to_vec(),
            public_key: found.public_key.0.to_vec(),
            holepunch: Some(ours),
        };
        let reply = dht.request(found.holder, Body::Connect(connect)).await?;
        let theirs = reply.holepunch.ok_or(Error::BadAnswer)?;
        if theirs.public_key != found.public_key.0 {
            return Err(Error::WrongPeer);
        }
        // Signed by the announced key over our ephemeral: nobody on the
        // way swapped in an ephemeral of its own.
        let keys = attempt
            .verify_answer(&ephemeral.public, &theirs)
            .and_then(|server| attempt.keys(&ephemeral, &server, true))
            .ok_or(Error::BadHandshake(found.public_key))?;
        let (socket, addr, path) = match theirs.relay.as_ref().and_then(crate::codec::socket_addr) {
            Some(relay) => {
                punch::register(&prepared.socket, relay, &keys.relay).await?;
                (prepared.socket.into_std()?, relay, Path::Relay)
            }
            None => {
                let punched = punch::client(prepared, keys.probe, &theirs).await;
                self.inner.counters.punched(punched.is_ok());
                let (socket, addr) = punched?;
                (socket.into_std()?, addr, Path::Direct)
            }
        };
        if path == Path::Relay {
            self.inner.counters.tried(Path::Relay);
        }
        let endpoint = quic::endpoint(socket, identity)?;
        let connection = quic::connect(&endpoint, addr, &found.public_key).await?;
        let stream = quic::open_stream(&connection).await?;
        Ok(PeerConnection {
            remote: found.public_key,
            local: identity.public_key(),
            path,
            initiator: true,
            stream,
            topic: None,
            connection,
            _endpoint: endpoint,
        })
    }

    /// Handles a connect request passed on by `dht` (and answers it there:
    /// the punch runs on that family).
    pub(super) async fn accept(&self, dht: &Dht, request: IncomingConnect) {
        let IncomingConnect {
            token,
            from,
            holepunch: theirs,
            topic,
        } = request;
        let Some(key) = crate::codec::bytes32(&theirs.public_key).map(PublicKey) else {
            let _ = dht.answer_connect(token, None);
            return;
        };
        if self.suspended() || self.refused(&key, from) || self.full() {
            let _ = dht.answer_connect(token, None);
            return;
        }
        let result = timeout(
            CONNECT_TIMEOUT,
            self.accept_once(dht, token, key, topic, theirs),
        )
        .await;
        if let Ok(Ok(mut connection)) = result {
            connection.topic = Some(topic);
            self.register(connection);
        }
    }

    async fn accept_once(
        &self,
        dht: &Dht,
        token: crate::node::ConnectToken,
        key: PublicKey,
        topic: [u8; 32],
        theirs: Holepunch,
    ) -> Result<PeerConnection> {
        let identity = &self.identity_for(&topic);
        let attempt = Attempt {
            topic,
            client: key,
            server: identity.public_key(),
        };
        // Signed by the key the client claims, for us and this topic: a
        // node passing it on cannot have swapped the ephemeral.
        let Some(client_ephemeral) = attempt.verify_offer(&theirs) else {
            let _ = dht.answer_connect(token, None);
            return Err(Error::BadHandshake(key));
        };
        let ephemeral = Ephemeral::from_secret(punch::random_bytes()?);
        let Some(keys) = attempt.keys(&ephemeral, &client_ephemeral, false) else {
            let _ = dht.answer_connect(token, None);
            return Err(Error::BadHandshake(key));
        };
        let prepared = match punch::prepare(&Self::observers(dht).await).await {
            Ok(p) => p,
            Err(e) => {
                let _ = dht.answer_connect(token, None);
                return Err(e);
            }
        };
        let proposed = theirs.relay.as_ref().and_then(crate::codec::socket_addr);
        let both_random = prepared.nat == NatKind::Random && nat_of(&theirs) == NatKind::Random;
        let relay = match (proposed, both_random) {
            (Some(relay), _) => Some(relay),
            (None, true) => match dht
                .status()
                .await
                .ok()
                .and_then(|s| s.relays.first().copied())
            {
                Some(relay) => Some(relay),
                None => {
                    let _ = dht.answer_connect(token, None);
                    return Err(Error::NoRelay);
                }
            },
            (None, false) => None,
        };
        if let Some(relay) = relay
            && let Err(e) = punch::register(&prepared.socket, relay, &keys.relay).await
        {
            let _ = dht.answer_connect(token, None);
            return Err(e);
        }
        let signature = attempt.sign_answer(identity, &client_ephemeral, &ephemeral);
        let ours = Self::holepunch(identity, &prepared, &ephemeral, signature, relay);
        dht.answer_connect(token, Some(ours))?;
        let (socket, path) = match relay {
            Some(_) => (prepared.socket.into_std()?, Path::Relay),
            None => {
                let punched = punch::server(prepared, keys.probe, &theirs).await;
                self.inner.counters.punched(punched.is_ok());
                (punched?, Path::Direct)
            }
        };
        let endpoint = quic::endpoint(socket, identity)?;
        let incoming = endpoint.accept().await.ok_or(Error::Unreachable)?;
        let connection = incoming
            .await
            .map_err(|e| Error::Quic(quic::QuicError::Handshake(e)))?;
        if quic::remote_identity(&connection) != Some(key) {
            connection.close(1u32.into(), b"wrong identity");
            return Err(Error::WrongPeer);
        }
        let stream = quic::accept_stream(&connection).await?;
        Ok(PeerConnection {
            remote: key,
            local: identity.public_key(),
            path,
            initiator: false,
            stream,
            topic: None,
            connection,
            _endpoint: endpoint,
        })
    }
}
