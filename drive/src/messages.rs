//! The drive's stored values, as prost types matching `drive/proto/drive.proto`
//! (the format's documentation, field by field).

/// The value of [`HEADER_KEY`](crate::HEADER_KEY): names the blobs core.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// Always [`PROTOCOL`](crate::PROTOCOL).
    #[prost(string, tag = "1")]
    pub protocol: String,
    /// The format version.
    #[prost(uint32, tag = "2")]
    pub version: u32,
    /// The blobs core's 32-byte key.
    #[prost(bytes = "vec", tag = "3")]
    pub blobs_key: Vec<u8>,
}

/// What a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Kind {
    /// A regular file.
    File = 0,
    /// A symbolic link.
    Symlink = 1,
}

/// The value stored at a path (see the `.proto` for each field).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// File or symlink.
    #[prost(enumeration = "Kind", tag = "1")]
    pub kind: i32,
    /// POSIX permission bits (low 12 bits of `st_mode`).
    #[prost(uint32, tag = "2")]
    pub mode: u32,
    /// True content size in bytes.
    #[prost(uint64, tag = "3")]
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    #[prost(sint64, tag = "4")]
    pub mtime_ns: i64,
    /// BLAKE3 hash of the content (32 bytes; empty for a symlink).
    #[prost(bytes = "vec", tag = "5")]
    pub hash: Vec<u8>,
    /// Where the content lives in the blobs core.
    #[prost(oneof = "Location", tags = "6, 7")]
    pub location: Option<Location>,
    /// A symlink's target.
    #[prost(string, tag = "8")]
    pub target: String,
    /// Free application metadata.
    #[prost(bytes = "vec", tag = "9")]
    pub metadata: Vec<u8>,
}

/// Where a file's bytes live.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Location {
    /// Consecutive blocks of one size.
    #[prost(message, tag = "6")]
    Contiguous(Contiguous),
    /// Content-defined chunks.
    #[prost(message, tag = "7")]
    Chunks(ChunkList),
}

/// A run of consecutive blocks of `block_size` bytes (the last may be
/// shorter).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Contiguous {
    /// The first block.
    #[prost(uint64, tag = "1")]
    pub first_block: u64,
    /// How many blocks.
    #[prost(uint64, tag = "2")]
    pub block_count: u64,
    /// Size of every block but the last.
    #[prost(uint32, tag = "3")]
    pub block_size: u32,
}

/// Content as runs of consecutive blocks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkList {
    /// Runs in content order.
    #[prost(message, repeated, tag = "1")]
    pub runs: Vec<Run>,
}

/// Consecutive blocks from `first_block`, with their lengths.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Run {
    /// The first block.
    #[prost(uint64, tag = "1")]
    pub first_block: u64,
    /// Each block's length.
    #[prost(uint32, repeated, tag = "2")]
    pub lengths: Vec<u32>,
}
