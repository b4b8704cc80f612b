//! hyper-wire: replication of `hyper-core` cores between peers.
//!
//! Layers, bottom up:
//! - [`messages`]: the protocol's messages, prost types matching
//!   `proto/wire.proto` (the protocol's documentation); framing with a
//!   maximum frame size ([`FrameDecoder`]); checked conversion between
//!   wire messages and core proofs ([`proof_from_data`] and friends).
//! - [`EncryptedStream`]: a Noise XX handshake over any
//!   `AsyncRead + AsyncWrite`, each side proving an ed25519 identity, then
//!   encrypted frames. [`Capabilities`] bind channel opens to the connection.
//! - [`Channels`]: which cores one connection carries, opened by discovery
//!   key and capability (pure).
//! - [`Replicator`]: the replication state machine for all connections of a
//!   node (pure: no I/O, time passed in). Reads local cores through
//!   [`CoreAccess`]; hands every write out as [`Event::Store`].
//! - [`Replication`]: the tokio driver around it, with transports
//!   ([`memory_pair`], [`connect_tcp`], [`serve_tcp`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hyper_core::{KeyPair, Store};
//! use hyper_wire::{DownloadRange, Replication, ReplicationOptions, connect_tcp};
//!
//! let store = Store::open("/tmp/reader")?;
//! let key = "…64 hex characters…".parse()?;
//! let core = store.replica(&key)?;
//! let replication = Replication::new(store, KeyPair::generate()?, ReplicationOptions::default());
//! let _connection = connect_tcp(&replication, "127.0.0.1:9000").await?;
//! // One block, sparsely: only it and its proof move.
//! let block = replication.get(&core, 7, std::time::Duration::from_secs(10)).await?;
//! // Everything, verified block by block.
//! replication.download(&core, DownloadRange::all()).await?;
//! # let _ = block; Ok(()) }
//! ```

mod capability;
mod channels;
mod convert;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod limits;
pub mod messages;
mod noise;
mod ranges;
mod replicator;
mod session;
mod source;
mod stream;
mod transport;

pub use capability::Capabilities;
pub use channels::{Channels, MAX_PENDING_OPENS, Opened, RemoteOpen};
pub use convert::{data_from_proof, proof_from_data, request_from_wire, request_to_wire};
pub use error::{Error, Result};
pub use frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode as encode_frame};
pub use limits::{Limits, Refusal};
pub use ranges::{RangeSet, TooManyRanges};
pub use replicator::{
    BatchId, Config, CoreAccess, CoreStatus, Event, Handle, PeerId, ReplicationEvent, Replicator,
    Transfer,
};
pub use session::{
    Connection, CoreStats, DownloadRange, ExtensionMessage, PeerStats, Replication,
    ReplicationOptions, Resources,
};
pub use source::ReplicatedSource;
pub use stream::{
    EncryptedStream, IDENTITY_CONTEXT, MessageReader, MessageWriter, NOISE_PARAMS, identity_payload,
};
pub use transport::{
    ServeEvent, connect_memory, connect_tcp, listen_tcp, memory_pair, serve_tcp, serve_tcp_with,
};
