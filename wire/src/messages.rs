//! The protocol messages, derived with prost to match `proto/wire.proto`
//! field for field; see that file for what each message and field means.

/// Sent inside the Noise XX handshake: proves the sender's ed25519 identity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Handshake {
    /// The sender's ed25519 public key (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub identity: Vec<u8>,
    /// Signature by `identity` over [`crate::IDENTITY_CONTEXT`] and the
    /// sender's Noise static key (64 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// One message on a channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// The sender's number for the channel.
    #[prost(uint32, tag = "1")]
    pub channel: u32,
    /// What the message says.
    #[prost(oneof = "Body", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13")]
    pub body: Option<Body>,
}

/// The kinds of [`Message`].
#[derive(Clone, PartialEq, prost::Oneof)]
#[expect(
    clippy::large_enum_variant,
    reason = "messages are decoded and handled one at a time; boxing Data would add an allocation to every data message"
)]
pub enum Body {
    /// Opens a channel for one core.
    #[prost(message, tag = "2")]
    Open(Open),
    /// Closes the sender's channel.
    #[prost(message, tag = "3")]
    Close(Close),
    /// What the sender holds and intends.
    #[prost(message, tag = "4")]
    Sync(Sync),
    /// Asks for a proof.
    #[prost(message, tag = "5")]
    Request(Request),
    /// Withdraws a request.
    #[prost(message, tag = "6")]
    Cancel(Cancel),
    /// A proof answering a request.
    #[prost(message, tag = "7")]
    Data(Data),
    /// The sender cannot answer a request.
    #[prost(message, tag = "8")]
    NoData(NoData),
    /// The sender is interested in a range.
    #[prost(message, tag = "9")]
    Want(Want),
    /// The sender is no longer interested in a range.
    #[prost(message, tag = "10")]
    Unwant(Unwant),
    /// Which blocks the sender holds, as runs.
    #[prost(message, tag = "11")]
    Bitfield(Bitfield),
    /// The sender now holds (or dropped) a range.
    #[prost(message, tag = "12")]
    Range(Range),
    /// A named application message.
    #[prost(message, tag = "13")]
    Extension(Extension),
}

/// Opens a channel: discovery key and capability.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Open {
    /// Discovery key of the core (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub discovery_key: Vec<u8>,
    /// Keyed hash of the handshake hash and the core key (32 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub capability: Vec<u8>,
}

/// Closes the sender's channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Close {}

/// The sender's state and intent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sync {
    /// The sender's fork id.
    #[prost(uint64, tag = "1")]
    pub fork: u64,
    /// The sender's signed length.
    #[prost(uint64, tag = "2")]
    pub length: u64,
    /// The length the sender last heard from the receiver.
    #[prost(uint64, tag = "3")]
    pub remote_length: u64,
    /// The sender can prove an upgrade to `length`.
    #[prost(bool, tag = "4")]
    pub can_upgrade: bool,
    /// The sender serves requests.
    #[prost(bool, tag = "5")]
    pub uploading: bool,
    /// The sender wants data.
    #[prost(bool, tag = "6")]
    pub downloading: bool,
}

/// Asks for a proof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// Unique among the requester's open requests on the channel.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The requester's fork id.
    #[prost(uint64, tag = "2")]
    pub fork: u64,
    /// A block and its proof.
    #[prost(message, optional, tag = "3")]
    pub block: Option<NodeRequest>,
    /// A tree node and its proof.
    #[prost(message, optional, tag = "4")]
    pub hash: Option<NodeRequest>,
    /// The block holding a byte offset.
    #[prost(message, optional, tag = "5")]
    pub seek: Option<SeekRequest>,
    /// An upgrade from the requester's length.
    #[prost(message, optional, tag = "6")]
    pub upgrade: Option<UpgradeRequest>,
    /// Include the manifest.
    #[prost(bool, tag = "7")]
    pub manifest: bool,
}

/// A node and the sibling levels the requester lacks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeRequest {
    /// Block index or flat-tree index.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// Sibling levels wanted.
    #[prost(uint64, tag = "2")]
    pub nodes: u64,
}

/// A byte offset sought.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SeekRequest {
    /// The byte offset.
    #[prost(uint64, tag = "1")]
    pub bytes: u64,
}

/// An upgrade from the requester's length.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpgradeRequest {
    /// The requester's signed length.
    #[prost(uint64, tag = "1")]
    pub start: u64,
}

/// Withdraws a request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Cancel {
    /// The request id.
    #[prost(uint64, tag = "1")]
    pub request: u64,
}

/// A proof answering a request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Data {
    /// The request id this answers.
    #[prost(uint64, tag = "1")]
    pub request: u64,
    /// Fork of the state the proof is anchored to.
    #[prost(uint64, tag = "2")]
    pub fork: u64,
    /// A block and its sibling path.
    #[prost(message, optional, tag = "3")]
    pub block: Option<BlockProof>,
    /// A node and its sibling path.
    #[prost(message, optional, tag = "4")]
    pub hash: Option<HashProof>,
    /// The leaf holding a byte offset.
    #[prost(message, optional, tag = "5")]
    pub seek: Option<SeekProof>,
    /// A newer signed state.
    #[prost(message, optional, tag = "6")]
    pub upgrade: Option<UpgradeProof>,
    /// The manifest's encoding, when asked for (empty otherwise).
    #[prost(bytes = "vec", tag = "7")]
    pub manifest: Vec<u8>,
}

/// A Merkle tree node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    /// Flat-tree index.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// Bytes of the blocks under the node.
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// BLAKE3 hash (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub hash: Vec<u8>,
}

/// A block's bytes and sibling path.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockProof {
    /// Block index.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// The block's bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// Sibling path from the leaf up: the hashes, 32 bytes each.
    #[prost(bytes = "vec", tag = "3")]
    pub path_hashes: Vec<u8>,
    /// Sibling path: the byte size under each node, in the same order.
    #[prost(uint64, repeated, packed = "true", tag = "4")]
    pub path_sizes: Vec<u64>,
}

/// A node and its sibling path.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HashProof {
    /// The proven node.
    #[prost(message, optional, tag = "1")]
    pub node: Option<Node>,
    /// Sibling path from the node up: the hashes, 32 bytes each.
    #[prost(bytes = "vec", tag = "2")]
    pub path_hashes: Vec<u8>,
    /// Sibling path: the byte size under each node, in the same order.
    #[prost(uint64, repeated, packed = "true", tag = "3")]
    pub path_sizes: Vec<u64>,
}

/// The leaf holding a byte offset, with its full path.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SeekProof {
    /// The byte offset.
    #[prost(uint64, tag = "1")]
    pub bytes: u64,
    /// The leaf holding it.
    #[prost(message, optional, tag = "2")]
    pub leaf: Option<Node>,
    /// Sibling path from the leaf up to a root: the hashes, 32 bytes each.
    #[prost(bytes = "vec", tag = "3")]
    pub path_hashes: Vec<u8>,
    /// Sibling path: the byte size under each node, in the same order.
    #[prost(uint64, repeated, packed = "true", tag = "4")]
    pub path_sizes: Vec<u64>,
}

/// A newer signed state and the nodes tying the old one to it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpgradeProof {
    /// The length the requester held (0 across a fork).
    #[prost(uint64, tag = "1")]
    pub start: u64,
    /// The new signed length.
    #[prost(uint64, tag = "2")]
    pub length: u64,
    /// The roots at `length`.
    #[prost(message, repeated, tag = "3")]
    pub roots: Vec<Node>,
    /// Siblings tying the old roots to the new ones.
    #[prost(message, repeated, tag = "4")]
    pub nodes: Vec<Node>,
    /// Signatures over the new state.
    #[prost(message, repeated, tag = "5")]
    pub signatures: Vec<SignerSignature>,
}

/// One signer's signature.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignerSignature {
    /// Position of the signer in the manifest.
    #[prost(uint32, tag = "1")]
    pub signer: u32,
    /// ed25519 signature (64 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// The sender cannot answer a request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoData {
    /// The request id.
    #[prost(uint64, tag = "1")]
    pub request: u64,
}

/// The sender is interested in a range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Want {
    /// First block.
    #[prost(uint64, tag = "1")]
    pub start: u64,
    /// Number of blocks.
    #[prost(uint64, tag = "2")]
    pub length: u64,
}

/// The sender is no longer interested in a range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Unwant {
    /// First block.
    #[prost(uint64, tag = "1")]
    pub start: u64,
    /// Number of blocks.
    #[prost(uint64, tag = "2")]
    pub length: u64,
}

/// Held blocks from `start` as alternating present/absent run lengths.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bitfield {
    /// First block described.
    #[prost(uint64, tag = "1")]
    pub start: u64,
    /// Run lengths: present, absent, present, ...
    #[prost(uint64, repeated, tag = "2")]
    pub runs: Vec<u64>,
}

/// The sender now holds (or dropped) a range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Range {
    /// Dropped rather than added.
    #[prost(bool, tag = "1")]
    pub drop: bool,
    /// First block.
    #[prost(uint64, tag = "2")]
    pub start: u64,
    /// Number of blocks.
    #[prost(uint64, tag = "3")]
    pub length: u64,
}

/// A named application message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Extension {
    /// The extension's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its payload.
    #[prost(bytes = "vec", tag = "2")]
    pub message: Vec<u8>,
}
