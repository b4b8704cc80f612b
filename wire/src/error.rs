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
    /// A manifest carried in a message does not decode.
    #[error("malformed manifest: {0}")]
    Manifest(#[source] hyper_core::VerifyError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
