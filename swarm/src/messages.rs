//! The DHT messages, derived with prost to match `proto/dht.proto` field
//! for field; see that file for what each message and field means.

/// An IPv4 or IPv6 address and a port.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Address {
    /// 4 or 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub ip: Vec<u8>,
    /// The port (at most 65,535).
    #[prost(uint32, tag = "2")]
    pub port: u32,
}

/// A node as named in answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeInfo {
    /// Its node id (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// Its address.
    #[prost(message, optional, tag = "2")]
    pub address: Option<Address>,
}

/// One DHT datagram.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Packet {
    /// Request id, echoed by the answer.
    #[prost(uint32, tag = "1")]
    pub tid: u32,
    /// The sender's claimed node id, or empty.
    #[prost(bytes = "vec", tag = "2")]
    pub id: Vec<u8>,
    /// The recipient's address as the sender sees it.
    #[prost(message, optional, tag = "3")]
    pub to: Option<Address>,
    /// The sender's capabilities ([`FLAG_RELAY`]).
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    /// A validation token the recipient gave the sender earlier: proves
    /// the sender's address, so the recipient answers in full.
    #[prost(bytes = "vec", tag = "5")]
    pub token: Vec<u8>,
    /// Ignored bytes that make a request from an address the recipient
    /// has not validated big enough for its answer.
    #[prost(bytes = "vec", tag = "6")]
    pub padding: Vec<u8>,
    /// What the packet says.
    #[prost(
        oneof = "Body",
        tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 30, 31"
    )]
    pub body: Option<Body>,
}

/// [`Packet::flags`] bit: the sender relays.
pub const FLAG_RELAY: u32 = 1;

/// The kinds of [`Packet`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// Are you there?
    #[prost(message, tag = "10")]
    Ping(Ping),
    /// Closest nodes to a target.
    #[prost(message, tag = "11")]
    FindNode(FindNode),
    /// Records of a topic.
    #[prost(message, tag = "12")]
    Lookup(Lookup),
    /// Store a record.
    #[prost(message, tag = "13")]
    Announce(Announce),
    /// Remove a record.
    #[prost(message, tag = "14")]
    Unannounce(Unannounce),
    /// Store a mutable value.
    #[prost(message, tag = "15")]
    MutablePut(MutablePut),
    /// Read a mutable value.
    #[prost(message, tag = "16")]
    MutableGet(MutableGet),
    /// Store an immutable value.
    #[prost(message, tag = "17")]
    ImmutablePut(ImmutablePut),
    /// Read an immutable value.
    #[prost(message, tag = "18")]
    ImmutableGet(ImmutableGet),
    /// Pass a hole-punch request to an announced peer.
    #[prost(message, tag = "19")]
    Connect(Connect),
    /// A hole-punch request passed on by the holder.
    #[prost(message, tag = "20")]
    ConnectForward(ConnectForward),
    /// Have another node ping me.
    #[prost(message, tag = "21")]
    CheckReachable(CheckReachable),
    /// Ping this address.
    #[prost(message, tag = "22")]
    PingTarget(PingTarget),
    /// An answer.
    #[prost(message, tag = "30")]
    Reply(Reply),
    /// A refusal.
    #[prost(message, tag = "31")]
    Error(Error),
}

/// Are you there?
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {}

/// Closest nodes to `target`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FindNode {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub target: Vec<u8>,
}

/// Records of `topic`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lookup {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub topic: Vec<u8>,
}

/// A peer's announcement.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PeerRecord {
    /// ed25519 public key (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    /// Observed addresses.
    #[prost(message, repeated, tag = "2")]
    pub addresses: Vec<Address>,
    /// Relays the peer can be reached through.
    #[prost(message, repeated, tag = "3")]
    pub relays: Vec<Address>,
    /// Milliseconds since the Unix epoch.
    #[prost(uint64, tag = "4")]
    pub timestamp: u64,
    /// The peer's addresses on its own networks, with the port of its
    /// listening QUIC endpoint: a peer on one of those networks dials them
    /// directly (behind the same NAT, over the LAN).
    #[prost(message, repeated, tag = "5")]
    pub local_addresses: Vec<Address>,
}

/// An encoded [`PeerRecord`] and its signature.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignedRecord {
    /// The encoded record.
    #[prost(bytes = "vec", tag = "1")]
    pub record: Vec<u8>,
    /// 64 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// Store a record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Announce {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub topic: Vec<u8>,
    /// The signed record.
    #[prost(message, optional, tag = "2")]
    pub record: Option<SignedRecord>,
    /// Write token.
    #[prost(bytes = "vec", tag = "3")]
    pub token: Vec<u8>,
}

/// Remove a record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Unannounce {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub topic: Vec<u8>,
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// Records older than this go.
    #[prost(uint64, tag = "3")]
    pub timestamp: u64,
    /// 64 bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
    /// Write token.
    #[prost(bytes = "vec", tag = "5")]
    pub token: Vec<u8>,
}

/// A signed, sequence-numbered value.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MutableValue {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    /// Sequence number.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// The value.
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
    /// 64 bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub signature: Vec<u8>,
}

/// Store a mutable value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutablePut {
    /// The value.
    #[prost(message, optional, tag = "1")]
    pub value: Option<MutableValue>,
    /// Write token.
    #[prost(bytes = "vec", tag = "2")]
    pub token: Vec<u8>,
}

/// Read a mutable value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MutableGet {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub target: Vec<u8>,
    /// Lowest seq wanted.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
}

/// Store an immutable value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImmutablePut {
    /// The value.
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
    /// Write token.
    #[prost(bytes = "vec", tag = "2")]
    pub token: Vec<u8>,
}

/// Read an immutable value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImmutableGet {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub target: Vec<u8>,
}

/// One side's hole-punching details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Holepunch {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub public_key: Vec<u8>,
    /// The punching socket's observed addresses.
    #[prost(message, repeated, tag = "2")]
    pub addresses: Vec<Address>,
    /// [`NatKind`] as i32.
    #[prost(enumeration = "NatKind", tag = "3")]
    pub nat: i32,
    /// The relay to meet at, if any.
    #[prost(message, optional, tag = "5")]
    pub relay: Option<Address>,
    /// This attempt's X25519 public key (32 bytes).
    #[prost(bytes = "vec", tag = "6")]
    pub ephemeral: Vec<u8>,
    /// The sender's ed25519 signature binding `ephemeral` to the attempt
    /// (64 bytes; layouts in `proto/dht.proto`).
    #[prost(bytes = "vec", tag = "7")]
    pub signature: Vec<u8>,
}

/// How a NAT maps ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum NatKind {
    /// Not known.
    Unknown = 0,
    /// No NAT.
    Open = 1,
    /// One mapping for every destination.
    Consistent = 2,
    /// A new mapping per destination.
    Random = 3,
}

/// Pass a hole-punch request to an announced peer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Connect {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub topic: Vec<u8>,
    /// The announced peer's key.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// The client's details.
    #[prost(message, optional, tag = "3")]
    pub holepunch: Option<Holepunch>,
}

/// A hole-punch request passed on by the holder.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectForward {
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub topic: Vec<u8>,
    /// The client's address as the holder saw it.
    #[prost(message, optional, tag = "2")]
    pub from: Option<Address>,
    /// The client's details.
    #[prost(message, optional, tag = "3")]
    pub holepunch: Option<Holepunch>,
}

/// Have another node ping me.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckReachable {}

/// Ping `target`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PingTarget {
    /// Whom to ping.
    #[prost(message, optional, tag = "1")]
    pub target: Option<Address>,
}

/// An answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reply {
    /// Closer nodes.
    #[prost(message, repeated, tag = "1")]
    pub closer: Vec<NodeInfo>,
    /// Write token.
    #[prost(bytes = "vec", tag = "2")]
    pub token: Vec<u8>,
    /// Records found.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<SignedRecord>,
    /// A mutable value.
    #[prost(message, optional, tag = "4")]
    pub mutable: Option<MutableValue>,
    /// An immutable value.
    #[prost(bytes = "vec", tag = "5")]
    pub immutable: Vec<u8>,
    /// The peer's hole-punching details.
    #[prost(message, optional, tag = "6")]
    pub holepunch: Option<Holepunch>,
    /// Another port of this node that answers pings (0: none).
    #[prost(uint32, tag = "7")]
    pub observer_port: u32,
}

/// A refusal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    /// [`ErrorCode`] as i32.
    #[prost(enumeration = "ErrorCode", tag = "1")]
    pub code: i32,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ErrorCode {
    /// Unknown.
    Unknown = 0,
    /// Malformed or meaningless.
    Invalid = 1,
    /// Missing, wrong or expired write token.
    BadToken = 2,
    /// The signature does not verify.
    BadSignature = 3,
    /// Rate or storage limit.
    Limited = 4,
    /// No such record, or its peer did not answer.
    NotFound = 5,
    /// Not newer than the stored value.
    SeqTooLow = 6,
}
