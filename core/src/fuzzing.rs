//! Entry points for the coverage-guided fuzz targets (`fuzz/`, see
//! docs/FUZZING.md) into decoders of on-disk records that are otherwise
//! private. Not a stable API: hidden from the docs, no guarantees beyond
//! what each function says.

use crate::bitfield::PAGE_BYTES;
use crate::error::{Corruption, Error, Result};
use crate::keys::{Hash, KeyPair};
use crate::manifest::Manifest;
use crate::proof::SignedState;
use crate::storage::Header;
use crate::tree::Node;
use crate::verify::Equivocation;
use crate::{chunk, nodepage};

pub use crate::chunk::{
    PART_MAX, encode as encode_chunk, parts as chunk_parts, spans as chunk_spans,
};
pub use crate::nodepage::{PAGE_NODES, encode as encode_node_page};

/// A corrupt node page, as the storage reports it.
fn bad_page() -> Error {
    Corruption::Record { table: "nodes" }.into()
}

/// The node at flat-tree `index` in an encoded node page (`None`: absent),
/// or a corruption error if the page is malformed.
pub fn node_page_get(page: &[u8], index: u64) -> Result<Option<Node>> {
    nodepage::get(page, index).map_err(|()| bad_page())
}

/// Every node of encoded page `page_number`, or a corruption error if the
/// page is malformed.
pub fn node_page_nodes(page_number: u64, page: &[u8]) -> Result<Vec<Node>> {
    nodepage::nodes(page_number, page).map_err(|()| bad_page())
}

/// What a chunk header says of its stream, as the block store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLayout {
    /// Each block's length.
    pub lengths: Vec<u32>,
    /// Bytes of the header at the start of the stream.
    pub header_len: usize,
    /// Bytes of the whole stream (header and blocks).
    pub stream_len: usize,
    /// Parts the stream is cut into.
    pub parts: u32,
    /// Each block's byte range in the stream.
    pub ranges: Vec<std::ops::Range<usize>>,
    /// Whether a block past the last has a range (it must not).
    pub range_past_end: bool,
}

/// Decodes the chunk header at the start of part 0 (`None` if malformed)
/// and lays out its stream.
pub fn chunk_layout(part0: &[u8]) -> Option<ChunkLayout> {
    let h = chunk::Header::decode(part0)?;
    Some(ChunkLayout {
        header_len: h.len(),
        stream_len: h.stream_len(),
        parts: h.parts(),
        ranges: (0..h.lengths.len()).filter_map(|j| h.range(j)).collect(),
        range_past_end: h.range(h.lengths.len()).is_some(),
        lengths: h.lengths,
    })
}

/// Decodes a core header record (the `headers` table) and returns its
/// canonical encoding; a typed corruption error for anything else.
pub fn reencode_header(bytes: &[u8]) -> Result<Vec<u8>> {
    Header::decode(bytes).map(|h| h.encode())
}

/// Decodes an equivocation evidence record (the `evidence` table).
pub fn decode_evidence(bytes: &[u8]) -> Result<Equivocation> {
    crate::storage::decode_evidence(bytes)
}

/// Encodes an equivocation evidence record, as the `evidence` table stores it.
pub fn encode_evidence(evidence: &Equivocation) -> Vec<u8> {
    crate::storage::encode_evidence(evidence)
}

/// Valid encodings of every on-disk record (evidence, a header with every
/// field set, a manifest, a node page, a chunk, a bitfield page): the
/// seeds of the in-tree mutation harness and of the fuzz corpus.
pub fn sample_records() -> Vec<Vec<u8>> {
    let pair = KeyPair::from_seed([9; 32]);
    let header = Header {
        manifest: Some(Manifest::single(pair.public_key())),
        signers: vec![pair],
        name: Some("fuzz".into()),
        state: SignedState {
            fork: 1,
            length: 3,
            roots: vec![
                Node {
                    index: 1,
                    size: 2,
                    hash: Hash([1; 32]),
                },
                Node {
                    index: 4,
                    size: 1,
                    hash: Hash([2; 32]),
                },
            ],
            signatures: vec![],
        },
        bytes_stored: 3,
        truncations: vec![(1, 2)],
        tail: Some(crate::storage::Tail {
            length: 4,
            roots: vec![Node {
                index: 3,
                size: 4,
                hash: Hash([5; 32]),
            }],
        }),
        pending: vec![(4, vec![])],
    };
    let page = nodepage::encode(&[
        Node {
            index: 0,
            size: 1,
            hash: Hash([3; 32]),
        },
        Node {
            index: 5,
            size: 9,
            hash: Hash([4; 32]),
        },
    ])
    .unwrap_or_default();
    let evidence = crate::storage::encode_evidence(&crate::verify::Equivocation {
        local: header.state.clone(),
        remote: SignedState::empty(),
    });
    vec![
        evidence,
        header.encode(),
        Manifest::single(KeyPair::from_seed([1; 32]).public_key()).encode(),
        page,
        chunk::encode(&[b"ab".as_slice(), b"cde".as_slice()]),
        vec![0xa5; PAGE_BYTES],
    ]
}
