//! Read streams: a half-open byte range of a file, one block at a time (in
//! constant memory whatever the file's size).

use hyper_core::Core;

use crate::drive::Drive;
use crate::error::{Error, Result};
use crate::layout::{Pieces, block_ranges};
use crate::messages::Entry;
use crate::path::DrivePath;

/// Bytes `start..end` of a file, yielded block by block. A block that is
/// not stored here is [`Error::Missing`]; the stream stays where it was, so
/// fetching that block and calling [`ReadStream::next_chunk`] again goes on.
pub struct ReadStream {
    /// The file read (named by its errors).
    path: DrivePath,
    blobs: Core,
    pieces: Pieces,
    /// Bytes to skip at the start of the next piece.
    skip: u64,
    /// Bytes still to yield.
    left: u64,
    blocks: Vec<std::ops::Range<u64>>,
    /// The block `Read` is copying out, and how far.
    current: Vec<u8>,
    pos: usize,
}

impl ReadStream {
    /// The next bytes (one block's worth at most), `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.left == 0 {
            return Ok(None);
        }
        let Some(piece) = self.pieces.clone().next() else {
            return Ok(None);
        };
        let block = get_block(&self.blobs, piece.block)?;
        if block.len() as u64 != piece.length {
            return Err(Error::Corrupt {
                path: format!("{} (block {} of the blobs core)", self.path, piece.block),
                reason: "a block's length differs from its entry's",
            });
        }
        self.pieces.next();
        let from = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(block.len());
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(block.len() - from);
        self.skip = 0;
        self.left -= take as u64;
        let mut block = block;
        block.truncate(from + take);
        block.drain(..from);
        Ok(Some(block))
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// The blocks this stream reads (merged ranges): what to fetch ahead.
    pub fn blocks(&self) -> &[std::ops::Range<u64>] {
        &self.blocks
    }
}

/// Block `index` of `core`; one not stored here (or past the length this
/// replica knows) is [`Error::Missing`].
pub(crate) fn get_block(core: &Core, index: u64) -> Result<Vec<u8>> {
    match core.get(index) {
        Ok(b) => Ok(b),
        Err(hyper_core::Error::NotAvailable { .. }) => Err(Error::Missing {
            core: core.key(),
            index,
        }),
        Err(hyper_core::Error::OutOfBounds { .. }) if !core.writable()? => Err(Error::Missing {
            core: core.key(),
            index,
        }),
        Err(e) => Err(e.into()),
    }
}

impl std::io::Read for ReadStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.current.len() {
            match self.next_chunk() {
                Ok(Some(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let rest = self.current.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drive {
    /// Bytes `start..end` (half-open; `end` `None`: to the end) of the file
    /// `path` names, symlinks followed. [`Error::NotFound`] without a file,
    /// [`Error::BadRange`] for a range outside it.
    pub fn read_stream(&self, path: &str, start: u64, end: Option<u64>) -> Result<ReadStream> {
        let Some((at, entry)) = self.stat(path)? else {
            return Err(Error::NotFound(DrivePath::new(path)?.to_string()));
        };
        let end = end.unwrap_or(entry.size);
        self.stream_entry(&at, &entry, start, end)
    }

    /// A stream over bytes `start..end` of `entry` (stored at `path`).
    pub(crate) fn stream_entry(
        &self,
        path: &DrivePath,
        entry: &Entry,
        start: u64,
        end: u64,
    ) -> Result<ReadStream> {
        if start > end || end > entry.size {
            return Err(Error::BadRange {
                path: path.to_string(),
                start,
                end,
                size: entry.size,
            });
        }
        let mut pieces = Pieces::of(entry);
        let skip = pieces.skip_to(start);
        Ok(ReadStream {
            path: path.clone(),
            blobs: self.blobs.clone(),
            pieces,
            skip,
            left: end - start,
            blocks: block_ranges(entry, start..end),
            current: Vec::new(),
            pos: 0,
        })
    }
}
