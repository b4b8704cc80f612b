//! Writing a core's records inside one redb write transaction.

use redb::{Table, WriteTransaction};

use crate::bitfield::Bitfield;
use crate::error::Result;
use crate::flat;
use crate::storage::{BITFIELD, BLOCKS, HEADERS, Header, NODES};
use crate::tree::Node;

/// The tables a core's writes touch, opened once per transaction.
pub(crate) struct CoreTables<'t> {
    pub nodes: Table<'t, (u64, u64), &'static [u8; 40]>,
    pub blocks: Table<'t, (u64, u64), &'static [u8]>,
    pub bitfield: Table<'t, (u64, u64), &'static [u8]>,
    pub headers: Table<'t, u64, &'static [u8]>,
}

impl<'t> CoreTables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(CoreTables {
            nodes: txn.open_table(NODES)?,
            blocks: txn.open_table(BLOCKS)?,
            bitfield: txn.open_table(BITFIELD)?,
            headers: txn.open_table(HEADERS)?,
        })
    }

    pub fn put_nodes<'n>(
        &mut self,
        id: u64,
        nodes: impl IntoIterator<Item = &'n Node>,
    ) -> Result<()> {
        for n in nodes {
            self.nodes.insert((id, n.index), &n.encode_value())?;
        }
        Ok(())
    }

    pub fn put_header(&mut self, id: u64, header: &Header) -> Result<()> {
        self.headers.insert(id, header.encode().as_slice())?;
        Ok(())
    }

    /// Writes the bitfield pages changed since the last write.
    pub fn put_bitfield(&mut self, id: u64, bitfield: &mut Bitfield) -> Result<()> {
        for (page, enc) in bitfield.take_dirty() {
            match enc {
                Some(bytes) => self.bitfield.insert((id, page), bytes.as_slice())?,
                None => self.bitfield.remove((id, page))?,
            };
        }
        Ok(())
    }

    /// Removes the blocks in `start..end`; returns the bytes they held.
    pub fn remove_blocks(&mut self, id: u64, start: u64, end: u64) -> Result<u64> {
        let mut removed = 0u64;
        if start < end {
            self.blocks.retain_in((id, start)..(id, end), |_, v| {
                removed += v.len() as u64;
                false
            })?;
        }
        Ok(removed)
    }

    /// Removes every node and block at or past block `keep` (nodes whose
    /// span reaches past it included); returns the block bytes removed.
    pub fn cut_after(&mut self, id: u64, keep: u64, bitfield: &mut Bitfield) -> Result<u64> {
        self.nodes
            .retain_in((id, flat::leaf(keep))..=(id, u64::MAX), |_, _| false)?;
        if keep > 0 {
            let mut cur = flat::leaf(keep - 1);
            for _ in 0..62 {
                cur = flat::parent(cur);
                if cur < flat::leaf(keep) && flat::block_span(cur).1 >= keep {
                    self.nodes.remove((id, cur))?;
                }
            }
        }
        let removed = self.remove_blocks(id, keep, u64::MAX)?;
        if let Some(last) = bitfield.last_set().filter(|l| *l >= keep) {
            bitfield.set_range(keep, last + 1, false);
        }
        Ok(removed)
    }
}
