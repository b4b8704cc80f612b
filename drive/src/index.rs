//! The writer's chunk index: BLAKE3 hash of a block's bytes -> the block of
//! the blobs core that holds them, so equal chunks of any file and any
//! version are stored once.
//!
//! Local and derived: it lives in the blobs core's user data (never
//! replicated) in segments of [`SEGMENT`] blocks, each written once it is
//! full, and a tail of the hashes after the last full one, saved by a
//! committed batch of entries once [`TAIL_SAVE_BLOCKS`] new blocks are in
//! ([`ChunkIndex::save_tail`]); opening hashes only the blocks past what
//! was saved. It can always be rebuilt from the blocks (the blobs core only
//! grows), so a crash never leaves it wrong: at worst the blocks written
//! since the last save are hashed again.

use std::collections::HashMap;

use hyper_core::Core;

use crate::error::Result;

/// Blocks per stored segment of the index.
pub const SEGMENT: u64 = 1024;
const ABSENT: [u8; 32] = [0; 32];

fn segment_key(k: u64) -> String {
    format!("hyper-drive/chunks/{k}")
}

/// The saved tail: the first block it covers (8 bytes, little-endian),
/// then a hash per block.
const TAIL_KEY: &str = "hyper-drive/chunks/tail";
/// Hashes the tail gathers before [`ChunkIndex::save_tail`] writes it: a
/// commit of a few small files costs no extra write, and an open hashes at
/// most this many blocks again.
const TAIL_SAVE_BLOCKS: usize = 64;

/// Hash -> block for every block of the blobs core stored here.
pub(crate) struct ChunkIndex {
    map: HashMap<[u8; 32], u64>,
    /// Hashes of the blocks after the last full segment.
    tail: Vec<[u8; 32]>,
    /// Blocks covered by stored segments.
    segments: u64,
    /// Hashes of `tail` as last saved under [`TAIL_KEY`].
    saved_tail: usize,
}

impl ChunkIndex {
    /// Loads the stored segments and hashes the blocks after them.
    pub(crate) fn load(blobs: &Core) -> Result<ChunkIndex> {
        let length = blobs.info()?.length;
        let mut index = ChunkIndex {
            map: HashMap::new(),
            tail: Vec::new(),
            segments: 0,
            saved_tail: 0,
        };
        while index.segments + SEGMENT <= length {
            let Some(bytes) = blobs.user_data(&segment_key(index.segments / SEGMENT))? else {
                break;
            };
            if bytes.len() as u64 != SEGMENT * 32 {
                break; // damaged: rebuilt from the blocks below
            }
            for (i, h) in bytes.chunks_exact(32).enumerate() {
                let mut hash = [0; 32];
                hash.copy_from_slice(h);
                if hash != ABSENT {
                    index.map.entry(hash).or_insert(index.segments + i as u64);
                }
            }
            index.segments += SEGMENT;
        }
        let saved = index.saved_hashes(blobs, length)?;
        index.record(blobs, index.segments, &saved)?;
        index.saved_tail = index.tail.len();
        let start = index.segments + index.tail.len() as u64;
        let mut hashes = Vec::new();
        for block in start..length {
            hashes.push(match blobs.get(block) {
                Ok(bytes) => *blake3::hash(&bytes).as_bytes(),
                Err(hyper_core::Error::NotAvailable { .. }) => ABSENT,
                Err(e) => return Err(e.into()),
            });
        }
        index.record(blobs, start, &hashes)?;
        Ok(index)
    }

    /// The hashes saved under [`TAIL_KEY`] for the blocks from the last
    /// full segment on; none if they are not for that block, run past the
    /// core's `length`, or are damaged.
    fn saved_hashes(&self, blobs: &Core, length: u64) -> Result<Vec<[u8; 32]>> {
        let Some(bytes) = blobs.user_data(TAIL_KEY)? else {
            return Ok(Vec::new());
        };
        let Some((first, hashes)) = bytes.split_first_chunk::<8>() else {
            return Ok(Vec::new());
        };
        let count = (hashes.len() / 32) as u64;
        if u64::from_le_bytes(*first) != self.segments
            || hashes.len() % 32 != 0
            || count >= SEGMENT
            || self.segments + count > length
        {
            return Ok(Vec::new());
        }
        Ok(hashes
            .chunks_exact(32)
            .map(|h| <[u8; 32]>::try_from(h).unwrap_or(ABSENT))
            .collect())
    }

    /// Saves the hashes after the last full segment once at least
    /// [`TAIL_SAVE_BLOCKS`] came since the last save, so the next open need
    /// not hash those blocks again.
    pub(crate) fn save_tail(&mut self, blobs: &Core) -> Result<()> {
        if self.tail.len() < self.saved_tail + TAIL_SAVE_BLOCKS {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(8 + 32 * self.tail.len());
        bytes.extend_from_slice(&self.segments.to_le_bytes());
        bytes.extend_from_slice(&self.tail.concat());
        blobs.set_user_data(TAIL_KEY, Some(&bytes))?;
        self.saved_tail = self.tail.len();
        Ok(())
    }

    /// The block holding bytes with this hash, if it is stored here.
    pub(crate) fn find(&self, blobs: &Core, hash: &[u8; 32]) -> Result<Option<u64>> {
        match self.map.get(hash) {
            Some(&block) if blobs.has(block)? => Ok(Some(block)),
            _ => Ok(None),
        }
    }

    /// Records the hashes of blocks `first..` (just appended); stores each
    /// segment that became full.
    pub(crate) fn record(&mut self, blobs: &Core, first: u64, hashes: &[[u8; 32]]) -> Result<()> {
        if first != self.segments + self.tail.len() as u64 {
            // Blocks appended by someone else in between: start the tail
            // again from the blocks themselves.
            *self = ChunkIndex::load(blobs)?;
            return Ok(());
        }
        for (i, h) in hashes.iter().enumerate() {
            if *h != ABSENT {
                self.map.entry(*h).or_insert(first + i as u64);
            }
            self.tail.push(*h);
            if self.tail.len() as u64 == SEGMENT {
                blobs.set_user_data(
                    &segment_key(self.segments / SEGMENT),
                    Some(&self.tail.concat()),
                )?;
                self.segments += SEGMENT;
                self.tail.clear();
                self.saved_tail = 0;
            }
        }
        Ok(())
    }
}
