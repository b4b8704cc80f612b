//! Reading a core: [`Core::blocks`] (an iterator over a range from one read
//! view) and [`Core::snapshot`] (a view frozen at one length and fork).

use std::ops::Range;
use std::sync::Arc;

use redb::ReadOnlyTable;

use crate::blockstore::{BLOCKS, BlockKey, ChunkReader, read_block_with};
use crate::core::{Core, check_bounds};
use crate::encrypted::open_block;
use crate::encryption::BlockCipher;
use crate::error::{Error, Result};
use crate::keys::CoreKey;
use crate::storage::NODES;

impl Core {
    /// Reads the blocks in `range` in order, each checked like [`Core::get`],
    /// from one consistent read view.
    pub fn blocks(&self, range: Range<u64>) -> Result<Blocks> {
        let length = self.read_state()?.header.length();
        self.plain_allowed()?;
        let txn = self.inner.shared.db.begin_read()?;
        Ok(Blocks {
            key: self.inner.key,
            cipher: self.cipher.clone(),
            blocks: txn.open_table(BLOCKS)?,
            nodes: txn.open_table(NODES)?,
            reader: ChunkReader::default(),
            id: self.inner.id,
            next: range.start,
            end: range.end.min(length),
        })
    }

    /// A read view frozen at the signed length and fork. The unsigned tail
    /// is not in it: a cut within the tail starts no fork, so a snapshot
    /// could not tell its blocks had changed.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let s = self.signed_state()?;
        Ok(Snapshot {
            byte_length: s.byte_length(),
            core: self.clone(),
            fork: s.fork,
            length: s.length,
        })
    }
}

/// A read view of a core frozen at one length and fork. Reads past its
/// length fail; if a later truncation removed blocks it covers, reads of
/// those fail with [`Error::SnapshotInvalidated`].
#[derive(Clone)]
pub struct Snapshot {
    core: Core,
    fork: u64,
    length: u64,
    byte_length: u64,
}

impl Snapshot {
    /// The frozen length.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The frozen byte length.
    pub fn byte_length(&self) -> u64 {
        self.byte_length
    }

    /// The fork the snapshot was taken in.
    pub fn fork(&self) -> u64 {
        self.fork
    }

    /// Block `index` as of the snapshot.
    pub fn get(&self, index: u64) -> Result<Vec<u8>> {
        check_bounds(index, self.length)?;
        let invalidated = Error::SnapshotInvalidated {
            length: self.length,
            fork: self.fork,
        };
        if index >= self.valid_length()? {
            return Err(invalidated);
        }
        let block = self.core.get(index)?;
        // A truncation between the check and the read would have handed out
        // the new fork's block: check again after reading.
        if index >= self.valid_length()? {
            return Err(invalidated);
        }
        Ok(block)
    }

    /// Blocks below this index are unchanged since the snapshot was taken.
    fn valid_length(&self) -> Result<u64> {
        let st = self.core.read_state()?;
        Ok(st
            .header
            .truncations
            .iter()
            .filter(|(fork, _)| *fork > self.fork)
            .map(|(_, len)| *len)
            .fold(self.length, u64::min))
    }
}

/// Iterator over a range of blocks, from [`Core::blocks`]. Yields
/// `(index, bytes)`; a block not stored locally yields
/// [`Error::NotAvailable`] and the iteration goes on.
pub struct Blocks {
    key: CoreKey,
    cipher: Option<Arc<BlockCipher>>,
    blocks: ReadOnlyTable<BlockKey, &'static [u8]>,
    nodes: ReadOnlyTable<(u64, u64), &'static [u8]>,
    reader: ChunkReader,
    id: u64,
    next: u64,
    end: u64,
}

impl Iterator for Blocks {
    type Item = Result<(u64, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(
            read_block_with(&mut self.reader, &self.blocks, &self.nodes, self.id, index)
                .and_then(|b| b.ok_or(Error::NotAvailable { index }))
                .and_then(|b| open_block(self.cipher.as_deref(), self.key, index, b))
                .map(|b| (index, b)),
        )
    }
}
