//! The read view that gets share: one redb read transaction with the
//! `blocks` and `nodes` tables open, and the chunk headers read through it,
//! kept by the store until its next commit.
//!
//! Opening a read transaction and its two tables was about half of a
//! random get's instructions (redb checks each table's stored key and value
//! type names on open), and finding a block's chunk (a range lookup, the
//! header's part, its decoding) another quarter. A view is a snapshot, so
//! what it caches can never go stale while it lives; a commit of the store
//! drops the store's view (the next get opens a fresh one), so a view never
//! outlives a write and never keeps redb from reusing the pages a commit
//! frees.
//!
//! Ordering: every write transaction is a [`WriteTxn`], whose commit
//! counts the commit and drops the view before the committing core
//! installs its new state. A get that sees a core's state therefore gets a
//! view at least as new as that state. A view opened while a commit was
//! under way is used by its get but not kept (the count moved).

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{ReadOnlyTable, WriteTransaction};

use crate::blockstore::{self, BLOCKS, BlockKey, Chunk};
use crate::error::Result;
use crate::proof::NodeSource;
use crate::storage::{NODES, TableNodes};
use crate::store::Db;

/// Blocks whose chunk headers one view keeps, at most (about 12 bytes
/// each): a core of 100,000 blocks in chunks of 100 has all its headers
/// cached at 1.2 MB. Past it the cache starts over.
pub(crate) const CACHED_BLOCKS: usize = 1 << 18;

/// One read transaction with the tables a get reads, and the chunk headers
/// read through it.
pub(crate) struct ReadView {
    blocks: ReadOnlyTable<BlockKey, &'static [u8]>,
    nodes: ReadOnlyTable<(u64, u64), &'static [u8]>,
    chunks: Mutex<ChunkCache>,
}

/// Chunk headers by (core id, first block). Chunks of one core never
/// overlap in a snapshot, so the last chunk starting at or before a block
/// holds it if it reaches that far.
#[derive(Default)]
struct ChunkCache {
    by_first: BTreeMap<(u64, u64), Arc<Chunk>>,
    blocks: usize,
}

impl ChunkCache {
    fn find(&self, id: u64, index: u64) -> Option<Arc<Chunk>> {
        let (_, chunk) = self.by_first.range((id, 0)..=(id, index)).next_back()?;
        chunk.holds(index).then(|| chunk.clone())
    }

    fn insert(&mut self, id: u64, chunk: Arc<Chunk>) {
        if self.blocks + chunk.count() > CACHED_BLOCKS {
            self.by_first.clear();
            self.blocks = 0;
        }
        self.blocks += chunk.count();
        if let Some(old) = self.by_first.insert((id, chunk.first), chunk) {
            self.blocks -= old.count();
        }
    }
}

impl ReadView {
    fn open(db: &Db) -> Result<ReadView> {
        let txn = db.begin_read()?;
        Ok(ReadView {
            blocks: txn.open_table(BLOCKS)?,
            nodes: txn.open_table(NODES)?,
            chunks: Mutex::default(),
        })
    }

    fn chunks(&self) -> MutexGuard<'_, ChunkCache> {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chunk holding block `index` of core `id`, if it is stored.
    fn chunk(&self, id: u64, index: u64) -> Result<Option<Arc<Chunk>>> {
        if let Some(chunk) = self.chunks().find(id, index) {
            return Ok(Some(chunk));
        }
        let Some(chunk) = blockstore::find(&self.blocks, id, index)? else {
            return Ok(None);
        };
        let chunk = Arc::new(chunk);
        self.chunks().insert(id, chunk.clone());
        Ok(Some(chunk))
    }

    /// Block `index` of core `id` checked against its leaf hash; `None` if
    /// it is not stored.
    pub fn read_block(&self, id: u64, index: u64) -> Result<Option<Vec<u8>>> {
        self.read_block_checked(id, index, &self.nodes(id))
    }

    /// Block `index` of core `id` checked against its leaf hash as `nodes`
    /// gives it (a cache over [`ReadView::nodes`]); `None` if it is not
    /// stored.
    pub fn read_block_checked(
        &self,
        id: u64,
        index: u64,
        nodes: &impl NodeSource,
    ) -> Result<Option<Vec<u8>>> {
        let Some(chunk) = self.chunk(id, index)? else {
            return Ok(None);
        };
        let data = blockstore::read_in(&self.blocks, id, &chunk, index)?;
        blockstore::check_leaf(nodes, index, &data)?;
        Ok(Some(data))
    }

    /// Core `id`'s tree nodes as this view sees them.
    pub fn nodes(&self, id: u64) -> TableNodes<'_, ReadOnlyTable<(u64, u64), &'static [u8]>> {
        TableNodes {
            table: &self.nodes,
            id,
        }
    }
}

/// The store's view and how many commits it has made.
#[derive(Default)]
pub(crate) struct Views {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    commits: u64,
    view: Option<Arc<ReadView>>,
}

impl Views {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A view that sees every commit that had returned when this was
    /// called: the kept one, or a new one (kept unless a commit came in
    /// between).
    pub fn current(&self, db: &Db) -> Result<Arc<ReadView>> {
        let commits = {
            let slot = self.slot();
            if let Some(view) = &slot.view {
                return Ok(view.clone());
            }
            slot.commits
        };
        let view = Arc::new(ReadView::open(db)?);
        let mut slot = self.slot();
        if slot.commits == commits && slot.view.is_none() {
            slot.view = Some(view.clone());
        }
        Ok(view)
    }

    /// Called after every commit (and every failed one): the kept view is
    /// older than the database now.
    fn committed(&self) {
        let old = {
            let mut slot = self.slot();
            slot.commits += 1;
            slot.view.take()
        };
        drop(old);
    }

    /// Drops the kept view (before a compaction, which needs no read
    /// transaction to be alive).
    pub fn drop_view(&mut self) {
        self.slot.get_mut().unwrap_or_else(|e| e.into_inner()).view = None;
    }
}

/// A write transaction of the store: a redb one whose commit drops the
/// store's read view ([`Views`]).
pub(crate) struct WriteTxn<'s> {
    txn: WriteTransaction,
    views: &'s Views,
}

impl<'s> WriteTxn<'s> {
    pub fn new(txn: WriteTransaction, views: &'s Views) -> Self {
        WriteTxn { txn, views }
    }

    /// Commits the transaction; from when it returns, gets read through a
    /// new view.
    pub fn commit(self) -> std::result::Result<(), redb::CommitError> {
        let result = self.txn.commit();
        self.views.committed();
        result
    }
}

impl Deref for WriteTxn<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

impl DerefMut for WriteTxn<'_> {
    fn deref_mut(&mut self) -> &mut WriteTransaction {
        &mut self.txn
    }
}
