//! hyper-wire: the replication protocol.
//!
//! This crate is being built in steps. Present now: the message schema
//! (`proto/wire.proto`, the protocol's documentation, and the prost types in
//! [`messages`] that match it), framing with a maximum frame size
//! ([`FrameDecoder`]), and checked conversion between wire messages and
//! `hyper-core` proofs and requests ([`proof_from_data`] and friends), and
//! the Noise XX [`EncryptedStream`] with identity proofs and channel
//! [`Capabilities`], and the pure channel table ([`Channels`]). The
//! replicator and transports come next.

mod capability;
mod channels;
mod convert;
mod error;
mod frame;
pub mod messages;
mod ranges;
mod replicator;
mod session;
mod stream;
mod transport;

pub use capability::Capabilities;
pub use channels::{Channels, MAX_PENDING_OPENS, Opened, RemoteOpen};
pub use convert::{data_from_proof, proof_from_data, request_from_wire, request_to_wire};
pub use error::{Error, Result};
pub use frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode as encode_frame};
pub use ranges::{RangeSet, TooManyRanges};
pub use replicator::{BatchId, Config, CoreAccess, CoreStatus, Event, Handle, PeerId, Replicator};
pub use session::{Connection, DownloadRange, Replication, ReplicationOptions};
pub use stream::{EncryptedStream, IDENTITY_CONTEXT, MessageReader, MessageWriter, NOISE_PARAMS};
pub use transport::{connect_memory, connect_tcp, listen_tcp, memory_pair, serve_tcp};
