//! The one error type of `hyper-wire`.

/// What can go wrong decoding or speaking the protocol. Bytes from a peer
/// never panic: they end in one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame announced a length over the receiver's maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The receiver's maximum.
        max: usize,
    },
    /// A frame's length prefix is not a valid varint.
    #[error("frame length is not a valid varint")]
    BadLength,
    /// A frame's payload is not a valid protobuf message.
    #[error("undecodable message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A message decoded but breaks the protocol's rules.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// Reading or writing the underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the stream in the middle of the handshake.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// The Noise handshake or a transport message failed (wrong keys,
    /// tampered or truncated ciphertext).
    #[error("noise: {0}")]
    Noise(#[source] snow::Error),
    /// The peer's identity proof in the handshake does not verify.
    #[error("the peer's identity proof does not verify")]
    Identity,
    /// The peer sent a proof that fails verification.
    #[error("the peer sent data that fails verification: {0}")]
    Verify(#[source] hyper_core::VerifyError),
    /// The peer queued more requests than this side serves at once.
    #[error("the peer sent too many requests at once")]
    TooManyRequests,
    /// Storing verified data failed; the store's own error says why.
    #[error("storage: {0}")]
    Storage(#[source] std::sync::Arc<hyper_core::Error>),
    /// No peer delivered in time.
    #[error("timed out")]
    Timeout,
    /// The get or download was cancelled, or its core removed.
    #[error("cancelled")]
    Cancelled,
    /// The core is not replicated here.
    #[error("core {0} is not replicated here")]
    UnknownCore(hyper_core::CoreKey),
    /// The peer sent nothing (not even a keep-alive) for this long.
    #[error("the peer sent nothing for {} s", .0.as_secs_f64())]
    Idle(std::time::Duration),
    /// The peer did not finish the handshake within this long.
    #[error("the handshake did not finish within {} s", .0.as_secs_f64())]
    HandshakeTimeout(std::time::Duration),
    /// The peer did not read what it was sent: its backlog stayed over the
    /// bound for too long.
    #[error("the peer read nothing of a backlog of {bytes} bytes for {} s", .after.as_secs_f64())]
    Backlog {
        /// Bytes queued for it.
        bytes: usize,
        /// How long the backlog stayed over the bound.
        after: std::time::Duration,
    },
    /// A manifest carried in a message does not decode.
    #[error("malformed manifest: {0}")]
    Manifest(#[source] hyper_core::VerifyError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
