//! Blocks of a bee, as prost types matching `bee/proto/bee.proto`.

/// Block 0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// Always [`PROTOCOL`](crate::PROTOCOL).
    #[prost(string, tag = "1")]
    pub protocol: String,
    /// The block format version.
    #[prost(uint32, tag = "2")]
    pub version: u32,
}

/// One write.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// The key written.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value (empty for a deletion).
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// This write deleted `key`.
    #[prost(bool, tag = "3")]
    pub deleted: bool,
    /// The changed nodes, root first.
    #[prost(message, repeated, tag = "4")]
    pub levels: Vec<Level>,
}

/// One B-tree node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Level {
    /// Blocks holding the keys, in key order.
    #[prost(uint64, repeated, tag = "1")]
    pub keys: Vec<u64>,
    /// Children's blocks.
    #[prost(uint64, repeated, tag = "2")]
    pub child_blocks: Vec<u64>,
    /// Children's positions in their blocks' levels.
    #[prost(uint32, repeated, tag = "3")]
    pub child_levels: Vec<u32>,
}
