//! Block records: chunks of consecutive blocks (see [`crate::chunk`]) in the
//! `blocks` table, keyed `(core id, first block of the chunk, part)`.

use redb::{ReadableTable, Table, TableDefinition};

use crate::chunk::{self, CHUNK_BLOCKS, Header};
use crate::error::{Corruption, Result};
use crate::flat;
use crate::proof::NodeSource;
use crate::storage::TableNodes;
use crate::tree::Node;

/// Key: (core id, first block of the chunk, part number).
pub(crate) type BlockKey = (u64, u64, u32);
pub(crate) const BLOCKS: TableDefinition<BlockKey, &[u8]> = TableDefinition::new("blocks");

fn corrupt() -> crate::Error {
    Corruption::Record { table: "blocks" }.into()
}

/// A chunk: its first block, its header, and where each block starts in
/// its stream.
pub(crate) struct Chunk {
    pub first: u64,
    pub header: Header,
    /// Stream offset of each block, then the stream's end.
    starts: Vec<usize>,
}

impl Chunk {
    fn new(first: u64, header: Header) -> Chunk {
        let mut starts = Vec::with_capacity(header.lengths.len() + 1);
        let mut at = header.len();
        starts.push(at);
        for l in &header.lengths {
            at += *l as usize;
            starts.push(at);
        }
        Chunk {
            first,
            header,
            starts,
        }
    }

    /// Blocks in the chunk.
    pub fn count(&self) -> usize {
        self.header.lengths.len()
    }

    fn end(&self) -> u64 {
        self.first + self.count() as u64
    }

    /// Whether block `index` is in this chunk.
    pub fn holds(&self, index: u64) -> bool {
        self.first <= index && index < self.end()
    }

    /// The byte range of block `index` in the chunk's stream.
    fn range(&self, index: u64) -> Result<std::ops::Range<usize>> {
        let j = usize::try_from(index.wrapping_sub(self.first)).map_err(|_| corrupt())?;
        match (self.starts.get(j), self.starts.get(j.wrapping_add(1))) {
            (Some(start), Some(end)) => Ok(*start..*end),
            _ => Err(corrupt()),
        }
    }
}

fn header(t: &impl ReadableTable<BlockKey, &'static [u8]>, id: u64, first: u64) -> Result<Chunk> {
    let part0 = t.get((id, first, 0))?.ok_or_else(corrupt)?;
    let header = Header::decode(part0.value()).ok_or_else(corrupt)?;
    Ok(Chunk::new(first, header))
}

/// Block `index`'s bytes as stored in `chunk` (which holds it), not yet
/// checked against the tree: copied from the one or two parts it spans.
pub(crate) fn read_in(
    t: &impl ReadableTable<BlockKey, &'static [u8]>,
    id: u64,
    chunk: &Chunk,
    index: u64,
) -> Result<Vec<u8>> {
    let range = chunk.range(index)?;
    let mut out = Vec::with_capacity(range.len());
    for (part, within) in chunk::spans(range) {
        let bytes = t.get((id, chunk.first, part))?.ok_or_else(corrupt)?;
        out.extend_from_slice(bytes.value().get(within).ok_or_else(corrupt)?);
    }
    Ok(out)
}

/// The chunk holding block `index`, if it is stored.
pub(crate) fn find(
    t: &impl ReadableTable<BlockKey, &'static [u8]>,
    id: u64,
    index: u64,
) -> Result<Option<Chunk>> {
    let Some(last) = t.range((id, 0, 0)..=(id, index, u32::MAX))?.next_back() else {
        return Ok(None);
    };
    let first = last?.0.value().1;
    let chunk = header(t, id, first)?;
    Ok((index < chunk.end()).then_some(chunk))
}

/// Reads blocks, keeping the last chunk header and part it used, so reading
/// blocks in order costs one part lookup per part, not a chunk search and a
/// part read per block.
#[derive(Default)]
pub(crate) struct ChunkReader {
    chunk: Option<Chunk>,
    part: Option<(u64, u32, Vec<u8>)>,
}

impl ChunkReader {
    /// Block `index`'s bytes as stored, not yet checked against the tree.
    pub fn read(
        &mut self,
        t: &impl ReadableTable<BlockKey, &'static [u8]>,
        id: u64,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        let cached = self.chunk.as_ref().is_some_and(|c| c.holds(index));
        if !cached {
            self.chunk = find(t, id, index)?;
        }
        let Some(chunk) = &self.chunk else {
            return Ok(None);
        };
        let range = chunk.range(index)?;
        let mut out = Vec::with_capacity(range.len());
        for (part, within) in chunk::spans(range) {
            let hit =
                matches!(&self.part, Some((first, p, _)) if *first == chunk.first && *p == part);
            if !hit {
                let bytes = t.get((id, chunk.first, part))?.ok_or_else(corrupt)?;
                self.part = Some((chunk.first, part, bytes.value().to_vec()));
            }
            let bytes = self
                .part
                .as_ref()
                .map(|(_, _, b)| b.as_slice())
                .unwrap_or_default();
            out.extend_from_slice(bytes.get(within).ok_or_else(corrupt)?);
        }
        Ok(Some(out))
    }
}

/// Reads block `index` through `reader` (which keeps its place between
/// calls) and checks it against its leaf hash.
pub(crate) fn read_block_with(
    reader: &mut ChunkReader,
    blocks: &impl ReadableTable<BlockKey, &'static [u8]>,
    nodes: &impl ReadableTable<(u64, u64), &'static [u8]>,
    id: u64,
    index: u64,
) -> Result<Option<Vec<u8>>> {
    read_block_from(reader, blocks, &TableNodes { table: nodes, id }, id, index)
}

/// [`read_block_with`], with the leaf hash from any node source of the
/// same core.
pub(crate) fn read_block_from(
    reader: &mut ChunkReader,
    blocks: &impl ReadableTable<BlockKey, &'static [u8]>,
    nodes: &impl NodeSource,
    id: u64,
    index: u64,
) -> Result<Option<Vec<u8>>> {
    let Some(data) = reader.read(blocks, id, index)? else {
        return Ok(None);
    };
    check_leaf(nodes, index, &data)?;
    Ok(Some(data))
}

/// Checks block `index`'s bytes against its leaf node in `nodes`.
pub(crate) fn check_leaf(nodes: &impl NodeSource, index: u64, data: &[u8]) -> Result<()> {
    let leaf_index = flat::leaf(index);
    let leaf = nodes
        .node(leaf_index)?
        .ok_or(Corruption::MissingNode { index: leaf_index })?;
    if Node::leaf(index, data) != leaf {
        return Err(Corruption::BlockHash { index }.into());
    }
    Ok(())
}

/// Writes consecutive blocks starting at `first` as chunks.
pub(crate) fn write_run<B: AsRef<[u8]>>(
    t: &mut Table<'_, BlockKey, &'static [u8]>,
    id: u64,
    first: u64,
    blocks: &[B],
) -> Result<()> {
    for (i, run) in blocks.chunks(CHUNK_BLOCKS).enumerate() {
        let start = first + (i * CHUNK_BLOCKS) as u64;
        let stream = chunk::encode(run);
        for (part, bytes) in chunk::parts(&stream).enumerate() {
            t.insert((id, start, part as u32), bytes)?;
        }
    }
    Ok(())
}

/// Writes blocks given by index (any order, no duplicates) as chunks of
/// consecutive runs.
pub(crate) fn write_scattered(
    t: &mut Table<'_, BlockKey, &'static [u8]>,
    id: u64,
    mut blocks: Vec<(u64, &[u8])>,
) -> Result<()> {
    blocks.sort_unstable_by_key(|(i, _)| *i);
    let mut rest = blocks.as_slice();
    while let Some((first, _)) = rest.first() {
        let run = rest
            .iter()
            .enumerate()
            .take_while(|(k, (i, _))| *i == first + *k as u64)
            .count();
        let (now, later) = rest.split_at(run);
        let data: Vec<&[u8]> = now.iter().map(|(_, d)| *d).collect();
        write_run(t, id, *first, &data)?;
        rest = later;
    }
    Ok(())
}

/// Removes the blocks in `start..end`, rewriting chunks that straddle the
/// edges; returns the bytes removed.
pub(crate) fn remove_range(
    t: &mut Table<'_, BlockKey, &'static [u8]>,
    id: u64,
    start: u64,
    end: u64,
) -> Result<u64> {
    if start >= end {
        return Ok(0);
    }
    let mut firsts: Vec<u64> = Vec::new();
    if let Some(c) = find(t, id, start)?
        && c.first < start
    {
        firsts.push(c.first);
    }
    for entry in t.range((id, start, 0)..(id, end, 0))? {
        let (first, part) = {
            let k = entry?.0.value();
            (k.1, k.2)
        };
        if part == 0 {
            firsts.push(first);
        }
    }
    let mut removed = 0u64;
    for first in firsts {
        let chunk = header(t, id, first)?;
        let keep_before: Vec<Vec<u8>> = (first..start.min(chunk.end()))
            .map(|i| read_in(t, id, &chunk, i))
            .collect::<Result<_>>()?;
        let after_start = end.max(first);
        let keep_after: Vec<Vec<u8>> = (after_start..chunk.end())
            .map(|i| read_in(t, id, &chunk, i))
            .collect::<Result<_>>()?;
        let kept: u64 = keep_before
            .iter()
            .chain(&keep_after)
            .map(|b| b.len() as u64)
            .sum();
        let total: u64 = chunk.header.lengths.iter().map(|l| u64::from(*l)).sum();
        removed += total - kept;
        for part in 0..chunk.header.parts() {
            t.remove((id, first, part))?;
        }
        write_run(t, id, first, &keep_before)?;
        write_run(t, id, after_start, &keep_after)?;
    }
    Ok(removed)
}
