//! Writing a core's records inside one redb write transaction.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, Table, WriteTransaction};

use crate::bitfield::Bitfield;
use crate::blockstore::{self, BLOCKS, BlockKey};
use crate::error::{Corruption, Result};
use crate::flat;
use crate::nodepage;
use crate::storage::{BITFIELD, HEADERS, Header, NODES};
use crate::tree::Node;

/// The tables a core's writes touch, opened once per transaction.
pub(crate) struct CoreTables<'t> {
    pub nodes: Table<'t, (u64, u64), &'static [u8]>,
    pub blocks: Table<'t, BlockKey, &'static [u8]>,
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

    /// Stores nodes, one read-modify-write per node page touched.
    pub fn put_nodes<'n>(
        &mut self,
        id: u64,
        nodes: impl IntoIterator<Item = &'n Node>,
    ) -> Result<()> {
        let mut by_page: BTreeMap<u64, Vec<Node>> = BTreeMap::new();
        for n in nodes {
            by_page
                .entry(nodepage::locate(n.index).0)
                .or_default()
                .push(*n);
        }
        for (page, new) in by_page {
            let mut all = self.page_nodes(id, page)?;
            all.extend(new);
            if let Some(enc) = nodepage::encode(&all) {
                self.nodes.insert((id, page), enc.as_slice())?;
            }
        }
        Ok(())
    }

    fn page_nodes(&self, id: u64, page: u64) -> Result<Vec<Node>> {
        match self.nodes.get((id, page))? {
            None => Ok(Vec::new()),
            Some(v) => nodepage::nodes(page, v.value())
                .map_err(|()| Corruption::Record { table: "nodes" }.into()),
        }
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
        blockstore::remove_range(&mut self.blocks, id, start, end)
    }

    /// Removes every node and block at or past block `keep` (nodes whose
    /// span reaches past it included); returns the block bytes removed.
    pub fn cut_after(&mut self, id: u64, keep: u64, bitfield: &mut Bitfield) -> Result<u64> {
        // A node goes if its span reaches block `keep`: every node at or
        // past the boundary index, and the ancestors of block `keep - 1`
        // that straddle it (those sit in earlier pages).
        let boundary = flat::leaf(keep);
        let goes = |i: u64| i >= boundary || flat::block_span(i).1 >= keep;
        let first_whole = boundary.div_ceil(nodepage::PAGE_NODES);
        self.nodes
            .retain_in((id, first_whole)..=(id, u64::MAX), |_, _| false)?;
        let mut partial = BTreeSet::from([boundary / nodepage::PAGE_NODES]);
        if keep > 0 {
            let mut cur = flat::leaf(keep - 1);
            for _ in 0..62 {
                cur = flat::parent(cur);
                if cur < boundary && goes(cur) {
                    partial.insert(nodepage::locate(cur).0);
                }
            }
        }
        for page in partial.into_iter().filter(|p| *p < first_whole) {
            let kept: Vec<Node> = self
                .page_nodes(id, page)?
                .into_iter()
                .filter(|n| !goes(n.index))
                .collect();
            match nodepage::encode(&kept) {
                Some(enc) => self.nodes.insert((id, page), enc.as_slice())?,
                None => self.nodes.remove((id, page))?,
            };
        }
        let removed = self.remove_blocks(id, keep, u64::MAX)?;
        if let Some(last) = bitfield.last_set().filter(|l| *l >= keep) {
            bitfield.set_range(keep, last + 1, false);
        }
        Ok(removed)
    }
}
