//! QUIC connections between peers, authenticated by their ed25519 keys.
//!
//! Every endpoint is both a server and a client. The handshake is TLS 1.3
//! only, with RFC 7250 raw public keys instead of X.509 certificates: each
//! side presents the `SubjectPublicKeyInfo` of its ed25519 [`KeyPair`] and
//! signs the handshake with it, so there is no certificate chain, no CA and
//! no hostname to check. What a peer proves is exactly its 32-byte
//! [`PublicKey`]:
//!
//! - the client accepts the server only if the server's key is exactly the
//!   one the caller asked for ([`connect`]), and the handshake signature
//!   verifies under it;
//! - the server requires a client key, accepts any ed25519 key whose
//!   handshake signature verifies, and leaves the decision to the
//!   application ([`remote_identity`]).
//!
//! Only ed25519 (`SignatureScheme::ED25519`) is offered and accepted. TLS
//! session tickets, resumption and 0-RTT are off: every connection runs a
//! full handshake, so every connection's identity is proven afresh.
//!
//! The expected server key travels to the client's certificate verifier in
//! the TLS server name (two hex labels under `.hyper`, see [`server_name`]);
//! SNI is disabled, so that name never leaves this host.
//!
//! Streams for the replication protocol are bidirectional; [`open_stream`]
//! sends one header byte first so that the peer's [`accept_stream`] sees the
//! stream at once, whichever side then speaks first.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, TransportErrorCode, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{AlwaysResolvesClientRawPublicKeys, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{AlwaysResolvesServerRawPublicKeys, NoServerSessionStorage};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, PeerIncompatible,
    PeerMisbehaved, SignatureScheme,
};

/// The ALPN protocol id both sides must agree on.
pub(crate) const ALPN: &[u8] = b"hyper/1";

/// The last label of every server name this module builds.
const SERVER_NAME_SUFFIX: &str = "hyper";

/// Keep-alive ping interval: well under the ~30 s after which many NATs
/// forget a UDP mapping, and a third of [`MAX_IDLE_TIMEOUT_MS`], so two
/// pings (each retransmitted on loss) may go unanswered before a live
/// path is given up.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// A connection with no traffic (keep-alives included) for this long is
/// dropped, in milliseconds. It bounds how long a connection stranded by a
/// network change (its peer accepted it and moved, and a QUIC server cannot
/// migrate; or a NAT gave the peer a new mapping) holds up a transfer
/// before this side looks the topic up and dials the peer's new address.
const MAX_IDLE_TIMEOUT_MS: u32 = 15_000;

/// How many bytes a peer may send ahead on one stream (8 MiB).
const STREAM_RECEIVE_WINDOW: u32 = 8 << 20;

/// How many bytes a peer may send ahead on all streams together (16 MiB).
const CONNECTION_RECEIVE_WINDOW: u32 = 16 << 20;

/// How many bytes we may have in flight to a peer (16 MiB).
const SEND_WINDOW: u64 = 16 << 20;

/// How many bytes the kernel may queue on each QUIC socket, in each
/// direction (4 MiB; Linux caps the request at `net.core.rmem_max` and
/// `wmem_max`). Linux's default, 208 KiB, fills within a millisecond at
/// loopback rates: a clone then lost 1.5-1.7% of its datagrams to a full
/// receive queue, and QUIC's loss recovery and congestion response cost
/// the throughput and CPU that TCP's kernel-side flow control does not.
const SOCKET_BUFFER: usize = 4 << 20;

/// The largest UDP payload path-MTU discovery probes for, and the
/// `max_udp_payload_size` we announce (quinn's defaults: 1,452 and 1,472).
///
/// Discovery starts at 1,200 bytes and climbs only while probes of the
/// next size are acknowledged, so on a 1,500-byte Internet path it settles
/// near 1,472 and only loopback, jumbo-frame LANs and the like reach this
/// bound; there it cuts the per-packet work (packet building, sent-packet
/// tracking, ACKs, AES-GCM calls) 4.5-fold against 1,452-byte packets.
///
/// Why not loopback's 65,495: quinn 0.11 hands the kernel up to 10
/// datagrams per `sendmsg` (GSO), and Linux refuses a call of more than
/// 65,507 payload bytes in all (65,527 on IPv6) with `EMSGSIZE`, which
/// quinn-udp ignores as if the batch had gone out (it expects that error
/// only from oversized MTU probes). Above 6,550 bytes every full batch is
/// thus lost, and after four such loss bursts quinn's black-hole detector
/// drops the path MTU to 1,200 for a minute. 10 x 6,500 = 65,000 fits.
const MAX_UDP_PAYLOAD: u16 = 6_500;

/// How many bidirectional streams a peer may have open towards us at once.
const MAX_BIDI_STREAMS: u32 = 16;

/// The first byte of every stream opened by [`open_stream`]. It makes the
/// stream visible to the peer at once (QUIC announces a stream only with
/// its first frame) and versions what follows.
const STREAM_HEADER: u8 = 1;

/// The first byte of every application stream opened by
/// [`open_named_stream`]; the name's length (one byte) and its UTF-8 bytes
/// follow.
const NAMED_STREAM_HEADER: u8 = 2;

/// Application close code sent when a peer proves another key than the one
/// asked for.
const CLOSE_WRONG_IDENTITY: VarInt = VarInt::from_u32(1);

/// DER prefix of an ed25519 `SubjectPublicKeyInfo` (RFC 8410), followed by
/// the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// DER prefix of an ed25519 PKCS#8 v1 private key (RFC 8410), followed by
/// the 32-byte seed.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// What can go wrong setting up QUIC or talking over it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// A QUIC endpoint was made outside a tokio runtime.
    #[error("no tokio runtime: QUIC endpoints must be built inside one")]
    NoRuntime,
    /// The TLS configuration could not be built (key loading, protocol
    /// versions).
    #[error("TLS setup failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC's initial packets need.
    #[error("TLS setup failed: {0}")]
    CipherSuite(#[from] NoInitialCipherSuite),
    /// The crypto provider cannot verify ed25519 signatures.
    #[error("TLS setup failed: the crypto provider has no ed25519 verifier")]
    NoEd25519,
    /// The UDP socket could not be made non-blocking or handed to tokio.
    #[error("QUIC socket setup failed: {0}")]
    Socket(#[source] io::Error),
    /// The connection attempt could not start (the endpoint is closing, the
    /// address is unusable, ...); nothing was sent.
    #[error("cannot start a QUIC connection: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The handshake did not complete: the peer was unreachable or timed
    /// out, refused us, or TLS failed for another reason than its identity.
    #[error("QUIC handshake failed: {0}")]
    Handshake(#[source] ConnectionError),
    /// The peer did not prove the key we asked for. `found` is the key it
    /// proved instead, when known (it is not when the TLS verifier refused
    /// the key mid-handshake, before the client revealed its own).
    #[error("the peer did not prove key {expected} (proved {found:?})")]
    WrongIdentity {
        /// The key the connection was asked to reach.
        expected: PublicKey,
        /// The key the peer proved, when known.
        found: Option<PublicKey>,
    },
    /// The connection was lost or closed (by either side, or by the idle
    /// timeout) while opening or accepting a stream.
    #[error("QUIC connection lost: {0}")]
    ConnectionLost(#[source] ConnectionError),
    /// A stream failed while its header was exchanged (reset or stopped by
    /// the peer).
    #[error("QUIC stream failed: {0}")]
    Stream(#[source] io::Error),
    /// The peer finished a stream before sending its header byte.
    #[error("the peer finished a QUIC stream before its header")]
    NoStreamHeader,
    /// The peer opened a stream with a header byte this version does not
    /// speak.
    #[error("the peer opened a QUIC stream with unknown header {0:#04x}")]
    BadStreamHeader(u8),
    /// A stream name is longer than 255 bytes.
    #[error("a stream name is {0} bytes long; at most 255")]
    StreamNameTooLong(usize),
    /// The peer named a stream with bytes that are not UTF-8.
    #[error("the peer named a QUIC stream with bytes that are not UTF-8")]
    BadStreamName,
}

/// Builds a QUIC endpoint on an already-bound UDP socket, proving
/// `identity`'s key to every peer.
///
/// The endpoint is both a server (it accepts incoming connections through
/// [`quinn::Endpoint::accept`], and requires every client to prove an
/// ed25519 key) and a client (through [`connect`]). It takes the socket
/// over: it sets it non-blocking and from then on owns every datagram on
/// it. Must be called inside a tokio runtime, else [`QuicError::NoRuntime`].
pub(crate) fn endpoint(
    socket: UdpSocket,
    identity: &KeyPair,
) -> Result<quinn::Endpoint, QuicError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(QuicError::NoRuntime);
    }
    build_endpoint(socket, &Tls::new(identity)?)
}

/// [`endpoint`] from the TLS material `tls` (the runtime already checked).
fn build_endpoint(socket: UdpSocket, tls: &Tls) -> Result<quinn::Endpoint, QuicError> {
    let transport = Arc::new(transport_config());

    let server_crypto = QuicServerConfig::try_from(tls.server_config()?)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server.transport_config(Arc::clone(&transport));

    let client_crypto = QuicClientConfig::try_from(tls.client_config()?)?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(transport);

    socket.set_nonblocking(true).map_err(QuicError::Socket)?;
    size_buffers(&socket).map_err(QuicError::Socket)?;
    let mut endpoint_config = quinn::EndpointConfig::default();
    endpoint_config
        .max_udp_payload_size(MAX_UDP_PAYLOAD)
        .expect("MAX_UDP_PAYLOAD is within quinn's 1,200..=65,527");
    let mut endpoint = quinn::Endpoint::new(
        endpoint_config,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(QuicError::Socket)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Asks the kernel for [`SOCKET_BUFFER`] bytes of receive and send queue
/// on `socket` (it grants at most its configured maximum).
fn size_buffers(socket: &UdpSocket) -> io::Result<()> {
    let state = quinn::udp::UdpSocketState::new(socket.into())?;
    state.set_recv_buffer_size(socket.into(), SOCKET_BUFFER)?;
    state.set_send_buffer_size(socket.into(), SOCKET_BUFFER)
}

/// Connects to `addr`, succeeding only if the server proves it holds
/// `remote`'s key (its handshake signature verifies under exactly that key).
///
/// A server with another key fails with [`QuicError::WrongIdentity`], and
/// is refused before we send it our own key. The returned connection's
/// [`remote_identity`] is `remote`. `endpoint` must come from [`endpoint`].
pub(crate) async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    remote: &PublicKey,
) -> Result<quinn::Connection, QuicError> {
    let connecting = endpoint.connect(addr, &server_name(remote))?;
    let connection = connecting
        .await
        .map_err(|error| handshake_error(error, *remote))?;
    // The verifier already checked the key; this guards against any path
    // (a future config change, resumption) that would skip it.
    match remote_identity(&connection) {
        Some(found) if found == *remote => Ok(connection),
        found => {
            connection.close(CLOSE_WRONG_IDENTITY, b"wrong identity");
            Err(QuicError::WrongIdentity {
                expected: *remote,
                found,
            })
        }
    }
}

/// The ed25519 key the peer proved in the handshake, on either side of a
/// connection made by this module.
///
/// `None` only if the connection's handshake did not carry exactly one
/// ed25519 raw public key, which the verifiers of this module never accept.
pub(crate) fn remote_identity(connection: &quinn::Connection) -> Option<PublicKey> {
    let identity = connection.peer_identity()?;
    let certificates = identity.downcast_ref::<Vec<CertificateDer<'static>>>()?;
    match certificates.as_slice() {
        [only] => key_from_spki(only),
        _ => None,
    }
}

/// The transport settings every connection uses, in both directions.
fn transport_config() -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    config
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(VarInt::from_u32(MAX_IDLE_TIMEOUT_MS).into()))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .send_window(SEND_WINDOW)
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_BIDI_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .datagram_receive_buffer_size(None);
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_UDP_PAYLOAD);
    config.mtu_discovery_config(Some(mtu));
    config
}

/// The TLS server name that carries `key` to the client's verifier:
/// `<first 16 bytes hex>.<last 16 bytes hex>.hyper` (a DNS label holds at
/// most 63 characters). Never sent on the wire: SNI is disabled.
fn server_name(key: &PublicKey) -> String {
    let hex = key.to_string();
    let (first, second) = hex.split_at(hex.len() / 2);
    format!("{first}.{second}.{SERVER_NAME_SUFFIX}")
}

/// The key a server name built by [`server_name`] carries; `None` for any
/// other name.
fn key_from_server_name(name: &ServerName<'_>) -> Option<PublicKey> {
    let ServerName::DnsName(name) = name else {
        return None;
    };
    let (labels, suffix) = name.as_ref().rsplit_once('.')?;
    if suffix != SERVER_NAME_SUFFIX {
        return None;
    }
    let (first, second) = labels.split_once('.')?;
    format!("{first}{second}").parse().ok()
}

/// The DER `SubjectPublicKeyInfo` of an ed25519 key: what a raw public key
/// handshake carries in place of a certificate.
fn spki(key: &PublicKey) -> Vec<u8> {
    let mut der = Vec::with_capacity(SPKI_PREFIX.len() + key.0.len());
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(&key.0);
    der
}

/// The ed25519 key in a DER `SubjectPublicKeyInfo`; `None` for anything
/// that is not exactly an ed25519 one.
fn key_from_spki(der: &[u8]) -> Option<PublicKey> {
    der.strip_prefix(&SPKI_PREFIX[..])
        .and_then(PublicKey::from_slice)
}

/// What both TLS configurations of an endpoint are built from.
struct Tls {
    /// rustls' ring provider.
    provider: Arc<CryptoProvider>,
    /// Our raw public key and the signer for it.
    certified: Arc<CertifiedKey>,
    /// The verifier for the peer's signatures.
    verifier: Arc<Ed25519Verifier>,
}

impl Tls {
    /// Loads `identity` into rustls' ring provider.
    fn new(identity: &KeyPair) -> Result<Self, QuicError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut pkcs8 = Vec::with_capacity(PKCS8_PREFIX.len() + 32);
        pkcs8.extend_from_slice(&PKCS8_PREFIX);
        pkcs8.extend_from_slice(&identity.seed());
        let signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
            .map_err(QuicError::Tls)?;
        let raw_key = CertificateDer::from(spki(&identity.public_key()));
        let certified = Arc::new(CertifiedKey::new(vec![raw_key], signer));
        let verifier = Arc::new(Ed25519Verifier {
            algorithms: ed25519_only(&provider).ok_or(QuicError::NoEd25519)?,
        });
        Ok(Self {
            provider,
            certified,
            verifier,
        })
    }

    /// The server side: TLS 1.3, our raw public key, a mandatory client key,
    /// no tickets.
    fn server_config(&self) -> Result<rustls::ServerConfig, QuicError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(QuicError::Tls)?
            .with_client_cert_verifier(self.verifier.clone())
            .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(
                Arc::clone(&self.certified),
            )));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.max_early_data_size = 0;
        Ok(config)
    }

    /// The client side: TLS 1.3, our raw public key, the server's key
    /// checked against the server name, no resumption, no early data, no
    /// SNI.
    fn client_config(&self) -> Result<rustls::ClientConfig, QuicError> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(QuicError::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(
                Arc::clone(&self.certified),
            )));
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.resumption = Resumption::disabled();
        config.enable_early_data = false;
        config.enable_sni = false;
        Ok(config)
    }
}

/// `provider`'s signature algorithms narrowed to ed25519 alone.
fn ed25519_only(provider: &CryptoProvider) -> Option<WebPkiSupportedAlgorithms> {
    let mapping: &'static [_] = provider.signature_verification_algorithms.mapping;
    let entry = mapping
        .iter()
        .find(|(scheme, _)| *scheme == SignatureScheme::ED25519)?;
    Some(WebPkiSupportedAlgorithms {
        all: entry.1,
        mapping: std::slice::from_ref(entry),
    })
}

/// Maps a failed handshake to our error: our own verifier refusing the
/// server's key shows up as a local TLS `access_denied` alert.
fn handshake_error(error: ConnectionError, expected: PublicKey) -> QuicError {
    let refused = TransportErrorCode::crypto(u8::from(AlertDescription::AccessDenied));
    match &error {
        ConnectionError::TransportError(local) if local.code == refused => {
            QuicError::WrongIdentity {
                expected,
                found: None,
            }
        }
        _ => QuicError::Handshake(error),
    }
}

/// The certificate verifier of both sides: a peer is exactly one ed25519
/// raw public key, and its TLS 1.3 handshake signature must verify under it.
#[derive(Debug)]
struct Ed25519Verifier {
    /// ed25519 only.
    algorithms: WebPkiSupportedAlgorithms,
}

impl Ed25519Verifier {
    /// The key in `end_entity`, if it is the only certificate and an
    /// ed25519 raw public key.
    fn peer_key(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<PublicKey, rustls::Error> {
        match (intermediates, key_from_spki(end_entity)) {
            ([], Some(key)) => Ok(key),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            )),
        }
    }

    /// Verifies a TLS 1.3 handshake signature under the raw key in `cert`.
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerMisbehaved(
                PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        let spki = SubjectPublicKeyInfoDer::from(cert.as_ref());
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }
}

/// The methods [`ServerCertVerifier`] and [`ClientCertVerifier`] share
/// (same names and signatures in both traits): TLS 1.3 only, ed25519 only,
/// raw public keys only.
macro_rules! signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                PeerIncompatible::Tls13RequiredForQuic,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.verify_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }

        fn requires_raw_public_keys(&self) -> bool {
            true
        }
    };
}

impl ServerCertVerifier for Ed25519Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let expected = key_from_server_name(server_name).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        )?;
        if Self::peer_key(end_entity, intermediates)? != expected {
            // Maps to the `access_denied` alert that `handshake_error` reads.
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    signature_methods!();
}

impl ClientCertVerifier for Ed25519Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::peer_key(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    signature_methods!();
}

mod streams;
#[cfg(test)]
mod tests;

pub use streams::QuicStream;
pub(crate) use streams::{accept_stream, open_named_stream, open_stream, read_stream_name};
