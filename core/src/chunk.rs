//! Blocks are stored in chunks: a run of consecutive blocks written together
//! (an append batch, or a run of blocks verified together). A chunk's byte
//! stream is its header then the blocks' bytes; the stream is cut into parts
//! of at most [`PART_MAX`] bytes, each one record. Parts that size fill
//! redb's 32 KiB pages, where one record per block would leave B-tree pages
//! half empty (sequential inserts split pages in half) and a 64 KiB block
//! would take a 128 KiB page. Pure encoding; `blockstore` does the I/O.
//!
//! Header layout (start of part 0): block count `u32` LE, then each block's
//! length as `u32` LE. A chunk holds at most [`CHUNK_BLOCKS`] blocks, so the
//! header always fits in part 0.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

/// Largest part, in bytes: a part and its record overhead fit a 32 KiB page.
pub const PART_MAX: usize = 32_700;
/// Most blocks in one chunk.
pub const CHUNK_BLOCKS: usize = 256;

/// A decoded chunk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Each block's length, in order.
    pub lengths: Vec<u32>,
}

impl Header {
    /// Bytes the header takes at the start of the stream.
    pub fn len(&self) -> usize {
        4 + 4 * self.lengths.len()
    }

    /// Decodes the header at the start of part 0; `None` if malformed.
    pub fn decode(part0: &[u8]) -> Option<Self> {
        let count = u32::from_le_bytes(part0.get(..4)?.try_into().ok()?) as usize;
        if count == 0 || count > CHUNK_BLOCKS {
            return None;
        }
        let raw = part0.get(4..4 + 4 * count)?;
        let lengths = raw
            .chunks_exact(4)
            .map(|c| c.try_into().map(u32::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(Header { lengths })
    }

    /// Total stream length: header and every block.
    pub fn stream_len(&self) -> usize {
        self.len() + self.lengths.iter().map(|l| *l as usize).sum::<usize>()
    }

    /// Number of parts the stream is cut into.
    pub fn parts(&self) -> u32 {
        self.stream_len().div_ceil(PART_MAX) as u32
    }

    /// The byte range of block `j` (0-based in the chunk) in the stream.
    pub fn range(&self, j: usize) -> Option<std::ops::Range<usize>> {
        let len = *self.lengths.get(j)? as usize;
        let start = self.len()
            + self
                .lengths
                .get(..j)?
                .iter()
                .map(|l| *l as usize)
                .sum::<usize>();
        Some(start..start + len)
    }
}

/// Encodes a run of blocks (1 to [`CHUNK_BLOCKS`], each under 4 GiB) into
/// its stream (header, then the blocks): one copy of the blocks; the
/// parts to store are slices of it ([`parts`]).
pub fn encode<B: AsRef<[u8]>>(blocks: &[B]) -> Vec<u8> {
    let total = 4 + 4 * blocks.len() + blocks.iter().map(|b| b.as_ref().len()).sum::<usize>();
    let mut stream = Vec::with_capacity(total);
    stream.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for b in blocks {
        stream.extend_from_slice(&(b.as_ref().len() as u32).to_le_bytes());
    }
    for b in blocks {
        stream.extend_from_slice(b.as_ref());
    }
    stream
}

/// A chunk's stream cut into its parts, in order.
pub fn parts(stream: &[u8]) -> std::slice::Chunks<'_, u8> {
    stream.chunks(PART_MAX)
}

/// The pieces of stream bytes `range`: for each part it touches, the part
/// number and the byte range inside that part, in order.
pub fn spans(range: std::ops::Range<usize>) -> impl Iterator<Item = (u32, std::ops::Range<usize>)> {
    let first = range.start / PART_MAX;
    let last = range.end.saturating_sub(1) / PART_MAX;
    let parts = if range.is_empty() {
        0..0
    } else {
        first..last + 1
    };
    parts.map(move |p| {
        let base = p * PART_MAX;
        let from = range.start.max(base) - base;
        let to = range.end.min(base + PART_MAX) - base;
        (p as u32, from..to)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_block_reads_back(sizes in prop::collection::vec(0usize..70_000, 1..12)) {
            let blocks: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, s)| vec![i as u8 + 1; *s]).collect();
            let stream = encode(&blocks);
            let parts: Vec<&[u8]> = parts(&stream).collect();
            prop_assert!(parts.iter().all(|p| p.len() <= PART_MAX && !p.is_empty()));
            let header = Header::decode(parts[0]).expect("header");
            prop_assert_eq!(header.parts() as usize, parts.len());
            for (j, b) in blocks.iter().enumerate() {
                let range = header.range(j).expect("range");
                let got: Vec<u8> = spans(range)
                    .flat_map(|(p, r)| parts[p as usize][r].to_vec())
                    .collect();
                prop_assert_eq!(&got, b);
            }
        }

        #[test]
        fn header_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Some(h) = Header::decode(&bytes) {
                prop_assert!(!h.lengths.is_empty() && h.lengths.len() <= CHUNK_BLOCKS);
            }
        }
    }

    #[test]
    fn snapshot_of_a_two_block_chunk() {
        let stream = encode(&[b"ab".as_slice(), b"c".as_slice()]);
        assert_eq!(
            parts(&stream).collect::<Vec<_>>(),
            vec![&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', b'c'][..]]
        );
    }
}
