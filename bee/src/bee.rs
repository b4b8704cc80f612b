//! [`Bee`]: the B-tree on a core, with its write path (batches, compare and
//! swap) and reads (get, ranges, checkouts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use hyper_core::{BlockSource, Core};
use prost::Message as _;

use crate::error::{Error, Result};
use crate::messages::{Entry, Header};
use crate::tree::{self, EntrySource, NodeRef};

/// The protocol name in block 0.
pub const PROTOCOL: &str = "hyper-bee";
/// The block format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// How long a read waits for a block from a source with peers, unless
/// [`Bee::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Decoded blocks kept per bee before the cache is cleared.
const CACHE_BLOCKS: usize = 1 << 16;

/// A key/value store on a core. Cheap to clone (clones share the cache and
/// the write lock). Writes need a writable core; every write returns once
/// the core's append has returned (durable as the store is configured).
#[derive(Clone)]
pub struct Bee {
    core: Core,
    /// Where blocks not stored here come from (the core itself, or a
    /// replication behind it).
    pub(crate) source: Arc<dyn BlockSource>,
    /// How long a read waits for one block from the source.
    pub(crate) timeout: Duration,
    /// A checkout: the version this view is frozen at.
    frozen: Option<u64>,
    /// A sub-database: every key is stored under this prefix (empty for the
    /// whole bee).
    pub(crate) prefix: Vec<u8>,
    shared: Arc<Shared>,
}

/// Ends a sub-database's name inside stored keys.
pub const SUB_SEPARATOR: u8 = 0;

struct Shared {
    cache: Mutex<Cache>,
    writing: Mutex<()>,
}

/// Decoded entries of the core while no block was replaced. A truncation
/// (here, one a replica follows, or a cut of the unsigned tail) may put
/// other blocks past the cut: the cache is emptied when the core's
/// [`Core::cuts`] moves, checked on every use (the core's change
/// callbacks run after the change is visible, too late for a read in
/// between).
struct Cache {
    cuts: u64,
    entries: HashMap<u64, Arc<Entry>>,
}

/// One operation of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
}

/// Puts and deletes applied together: one core append, so readers see all
/// of them or none. Dropping it without [`Batch::commit`] writes nothing.
#[must_use = "a batch writes nothing until committed"]
pub struct Batch<'b> {
    bee: &'b Bee,
    ops: Vec<Op>,
}

/// The condition of a compare-and-swap write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key has no entry.
    Absent,
    /// The key's current value is exactly this.
    Equals(Vec<u8>),
}

/// Bounds, direction and limit of a range read. Bounds left `None` are open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// Keys greater than this.
    pub gt: Option<Vec<u8>>,
    /// Keys greater than or equal to this.
    pub gte: Option<Vec<u8>>,
    /// Keys less than this.
    pub lt: Option<Vec<u8>>,
    /// Keys less than or equal to this.
    pub lte: Option<Vec<u8>>,
    /// Largest key first.
    pub reverse: bool,
    /// At most this many entries.
    pub limit: Option<usize>,
}

/// A key and its value, with the version (block) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The sequence number (block) of the write.
    pub seq: u64,
}

/// Entries from the store, or from a batch being built on top of it.
struct Overlay<'b> {
    bee: &'b Bee,
    pending: HashMap<u64, Arc<Entry>>,
}

impl EntrySource for Overlay<'_> {
    fn entry(&self, seq: u64) -> Result<Arc<Entry>> {
        match self.pending.get(&seq) {
            Some(e) => Ok(e.clone()),
            None => self.bee.entry(seq),
        }
    }
}

impl EntrySource for Bee {
    fn entry(&self, seq: u64) -> Result<Arc<Entry>> {
        let cuts = {
            let cache = self.lock_cache();
            if let Some(e) = cache.entries.get(&seq) {
                return Ok(e.clone());
            }
            cache.cuts
        };
        let bytes = match self.core.get(seq) {
            Ok(b) => b,
            Err(hyper_core::Error::NotAvailable { .. }) => return Err(Error::Missing(seq)),
            Err(e) => return Err(e.into()),
        };
        self.insert_block(seq, &bytes, cuts)
    }
}

impl Bee {
    /// The core's [`Core::cuts`] as the cache last saw it: pass it to
    /// [`Bee::insert_block`] for a block read or fetched after this.
    pub(crate) fn cuts(&self) -> u64 {
        self.lock_cache().cuts
    }

    /// Decodes block `seq` (fetched or read) and caches it if no block
    /// was replaced since `cuts` was taken, before the read began (a block
    /// of the old fork that arrives after a truncation is returned, not
    /// kept: the next read asks again).
    pub(crate) fn insert_block(&self, seq: u64, bytes: &[u8], cuts: u64) -> Result<Arc<Entry>> {
        if seq == 0 {
            return Err(Error::Corrupt {
                block: 0,
                reason: "block 0 is the header, not an entry",
            });
        }
        let entry = Arc::new(Entry::decode(bytes).map_err(|_| Error::Corrupt {
            block: seq,
            reason: "entry does not decode",
        })?);
        let mut cache = self.lock_cache();
        if cache.cuts != cuts {
            return Ok(entry);
        }
        if cache.entries.len() >= CACHE_BLOCKS {
            cache.entries.clear();
        }
        cache.entries.insert(seq, entry.clone());
        Ok(entry)
    }

    /// Reads into the cache those of blocks `seqs` that are stored locally
    /// and not yet decoded, in one read of the core (a walk about to visit
    /// a node's keys and children). Best effort: a block that is not
    /// stored, is out of bounds, fails its hash or does not decode is left
    /// for the read that needs it to report (or fetch), so a walk fails
    /// only on the blocks it visits.
    pub(crate) fn prefetch(&self, seqs: &[u64]) {
        let (cuts, wanted) = {
            let cache = self.lock_cache();
            let wanted: Vec<u64> = seqs
                .iter()
                .copied()
                .filter(|&s| s != 0 && !cache.entries.contains_key(&s))
                .collect();
            (cache.cuts, wanted)
        };
        if wanted.len() < 2 {
            return;
        }
        let Ok(blocks) = self.core.get_many(&wanted) else {
            return;
        };
        for (seq, bytes) in wanted.into_iter().zip(blocks) {
            if let Some(bytes) = bytes {
                // A block that does not decode is not cached; its read says so.
                let _ = self.insert_block(seq, &bytes, cuts);
            }
        }
    }

    /// Whether block `seq` is at hand (decoded, or stored locally).
    pub(crate) fn is_local(&self, seq: u64) -> bool {
        self.lock_cache().entries.contains_key(&seq) || self.core.has(seq).unwrap_or(false)
    }
}

/// Checks block 0.
fn check_header(bytes: &[u8]) -> Result<()> {
    let header =
        Header::decode(bytes).map_err(|_| Error::NotABee("block 0 is not a bee header"))?;
    if header.protocol != PROTOCOL {
        return Err(Error::NotABee("block 0 names another protocol"));
    }
    if header.version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(header.version));
    }
    Ok(())
}

impl Bee {
    /// Opens the bee in `core`. An empty writable core gets its header
    /// block; a core whose block 0 is not a bee header is
    /// [`Error::NotABee`], an unknown format [`Error::UnsupportedVersion`].
    /// An empty replica opens as an empty bee (its header is checked once
    /// block 0 is there).
    pub fn open(core: Core) -> Result<Bee> {
        let length = core.info()?.length;
        if length == 0 && core.writable()? {
            let header = Header {
                protocol: PROTOCOL.to_string(),
                version: FORMAT_VERSION,
            };
            core.append(&header.encode_to_vec())?;
        } else if length > 0 {
            match core.get(0) {
                Ok(bytes) => check_header(&bytes)?,
                Err(hyper_core::Error::NotAvailable { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self::new(Arc::new(core.clone()), core))
    }

    fn new(source: Arc<dyn BlockSource>, core: Core) -> Bee {
        let cache = Cache {
            cuts: core.cuts().unwrap_or(0),
            entries: HashMap::new(),
        };
        Bee {
            core,
            source,
            timeout: DEFAULT_TIMEOUT,
            frozen: None,
            prefix: Vec::new(),
            shared: Arc::new(Shared {
                cache: Mutex::new(cache),
                writing: Mutex::new(()),
            }),
        }
    }

    /// Opens the bee whose blocks come from `source`: a local core, or a
    /// replica with peers behind it (`hyper_wire::ReplicatedSource`), whose
    /// header is fetched first (waiting up to `timeout`; that also learns
    /// the length the peers know). The sync reads ([`Bee::get`],
    /// [`Bee::range`], ...) still read only local blocks; the async ones
    /// ([`Bee::get_async`], [`Bee::range_stream`], ...) fetch what they
    /// miss, waiting up to `timeout` per block.
    pub async fn open_source(source: Arc<dyn BlockSource>, timeout: Duration) -> Result<Bee> {
        let core = source.core().clone();
        if core.writable()? {
            return Ok(Bee {
                source,
                timeout,
                ..Self::open(core)?
            });
        }
        let header = source.get(0, timeout).await?;
        check_header(&header)?;
        Ok(Bee {
            timeout,
            ..Self::new(source, core)
        })
    }

    /// The same bee (sharing the cache and the write lock) whose async
    /// reads wait up to `timeout` for each block.
    pub fn with_timeout(&self, timeout: Duration) -> Bee {
        Bee {
            timeout,
            ..self.clone()
        }
    }

    /// Where its blocks come from.
    pub fn source(&self) -> &Arc<dyn BlockSource> {
        &self.source
    }

    /// A view of the keys under `name`: they are stored as this view's
    /// prefix, `name`, [`SUB_SEPARATOR`], then the key, so subs nest and share
    /// the one core. Reads, writes, batches, ranges and history of the view
    /// see only its keys, without the prefix.
    pub fn sub(&self, name: &[u8]) -> Bee {
        let mut prefix = self.prefix.clone();
        prefix.extend_from_slice(name);
        prefix.push(SUB_SEPARATOR);
        Bee {
            prefix,
            ..self.clone()
        }
    }

    pub(crate) fn full(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }

    /// `options` in stored keys: bounded to this view's prefix.
    pub(crate) fn full_range(&self, options: &RangeOptions) -> RangeOptions {
        if self.prefix.is_empty() {
            return options.clone();
        }
        let wrap = |b: &Option<Vec<u8>>| b.as_deref().map(|k| self.full(k));
        let mut end = self.prefix.clone();
        if let Some(last) = end.last_mut() {
            *last = SUB_SEPARATOR + 1;
        }
        let (lt, lte) = match (&options.lt, &options.lte) {
            (None, None) => (Some(end), None),
            _ => (wrap(&options.lt), wrap(&options.lte)),
        };
        let (gt, gte) = match (&options.gt, &options.gte) {
            (None, None) => (None, Some(self.prefix.clone())),
            _ => (wrap(&options.gt), wrap(&options.gte)),
        };
        RangeOptions {
            gt,
            gte,
            lt,
            lte,
            ..options.clone()
        }
    }

    /// The core the bee lives in.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The cache, emptied first if a block of the core was replaced since
    /// it was filled.
    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self.shared.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(cuts) = self.core.cuts()
            && cuts != cache.cuts
        {
            cache.entries.clear();
            cache.cuts = cuts;
        }
        cache
    }

    /// The version: the number of blocks (header included) this view sees.
    /// Every write adds one.
    pub fn version(&self) -> Result<u64> {
        match self.frozen {
            Some(v) => Ok(v),
            None => Ok(self.core.info()?.length),
        }
    }

    /// A read-only view of the bee as it was at `version`.
    pub fn checkout(&self, version: u64) -> Result<Bee> {
        let length = self.core.info()?.length;
        if version > length {
            return Err(Error::NoSuchVersion { version, length });
        }
        Ok(Bee {
            frozen: Some(version),
            ..self.clone()
        })
    }

    /// A read-only view frozen at the current version.
    pub fn snapshot(&self) -> Result<Bee> {
        self.checkout(self.version()?)
    }

    /// The root of the tree at `version` in `src`.
    pub(crate) fn root_at(src: &impl EntrySource, version: u64) -> Result<Option<NodeRef>> {
        if version <= 1 {
            return Ok(None);
        }
        let block = version - 1;
        let entry = src.entry(block)?;
        Ok((!entry.levels.is_empty()).then_some(NodeRef { block, level: 0 }))
    }

    /// The value of `key`, if it has one.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_item(key)?.map(|i| i.value))
    }

    /// The entry of `key` with the version that wrote it.
    pub fn get_item(&self, key: &[u8]) -> Result<Option<Item>> {
        let root = Self::root_at(self, self.version()?)?;
        let Some(seq) = tree::get(self, root, &self.full(key))? else {
            return Ok(None);
        };
        let entry = tree::key_value(self, seq)?;
        Ok(Some(Item {
            key: key.to_vec(),
            value: entry.value.clone(),
            seq,
        }))
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut b = self.batch();
        b.put(key, value);
        b.commit()
    }

    /// Removes `key`; whether it had an entry (if not, nothing is written).
    pub fn del(&self, key: &[u8]) -> Result<bool> {
        let _writing = self
            .shared
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Ok(self.commit_locked(&[Op::Del(self.full(key))])? > 0)
    }

    /// Sets `key` to `value` only if `condition` holds for its current
    /// entry; whether it did (if not, nothing is written).
    pub fn put_if(&self, key: &[u8], value: &[u8], condition: &Condition) -> Result<bool> {
        self.write_if(key, condition, Op::Put(self.full(key), value.to_vec()))
    }

    /// Removes `key` only if `condition` holds for its current entry;
    /// whether it did.
    pub fn del_if(&self, key: &[u8], condition: &Condition) -> Result<bool> {
        self.write_if(key, condition, Op::Del(self.full(key)))
    }

    fn write_if(&self, key: &[u8], condition: &Condition, op: Op) -> Result<bool> {
        let _writing = self
            .shared
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.get(key)?;
        let holds = match condition {
            Condition::Absent => current.is_none(),
            Condition::Equals(v) => current.as_ref() == Some(v),
        };
        if holds {
            self.commit_locked(&[op])?;
        }
        Ok(holds)
    }

    /// A batch of writes applied atomically by [`Batch::commit`].
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            bee: self,
            ops: Vec::new(),
        }
    }

    /// Appends one block per effective operation, in one core append;
    /// returns how many.
    fn commit_locked(&self, ops: &[Op]) -> Result<usize> {
        if self.frozen.is_some() || !self.core.writable()? {
            return Err(Error::ReadOnly);
        }
        let mut length = self.core.info()?.length;
        let mut overlay = Overlay {
            bee: self,
            pending: HashMap::new(),
        };
        let mut blocks = Vec::with_capacity(ops.len());
        for op in ops {
            let seq = length;
            let root = Self::root_at(&overlay, length)?;
            let entry = match op {
                Op::Put(key, value) => Entry {
                    key: key.clone(),
                    value: value.clone(),
                    deleted: false,
                    levels: tree::put(&overlay, root, seq, key)?,
                },
                Op::Del(key) => match tree::del(&overlay, root, seq, key)? {
                    Some(levels) => Entry {
                        key: key.clone(),
                        value: Vec::new(),
                        deleted: true,
                        levels,
                    },
                    None => continue,
                },
            };
            blocks.push(entry.encode_to_vec());
            overlay.pending.insert(seq, Arc::new(entry));
            length += 1;
        }
        if !blocks.is_empty() {
            self.core.append_batch(&blocks)?;
            self.lock_cache().entries.extend(overlay.pending);
        }
        Ok(blocks.len())
    }

    /// The entries in the range, in key order (or reversed). Only the
    /// nodes and entries the walk reaches are read, so on a sparse replica
    /// a bounded range reads O(log n + items) blocks. Collects
    /// [`Bee::range_iter`].
    pub fn range(&self, options: &RangeOptions) -> Result<Vec<Item>> {
        self.range_iter(options)?.collect()
    }

    /// The first entry of the range (the last, reversed).
    pub fn peek(&self, options: &RangeOptions) -> Result<Option<Item>> {
        let one = RangeOptions {
            limit: Some(1),
            ..options.clone()
        };
        Ok(self.range(&one)?.into_iter().next())
    }
}

/// One write of the bee's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its sequence number (block).
    pub seq: u64,
    /// The key written.
    pub key: Vec<u8>,
    /// The value put, or `None` for a deletion.
    pub value: Option<Vec<u8>>,
}

impl Change {
    /// The write in block `seq` as seen from a view with `prefix`, `None`
    /// when its key is outside the view.
    pub(crate) fn of(seq: u64, entry: &Entry, prefix: &[u8]) -> Option<Change> {
        let key = entry.key.strip_prefix(prefix)?;
        Some(Change {
            seq,
            key: key.to_vec(),
            value: (!entry.deleted).then(|| entry.value.clone()),
        })
    }
}

impl Bee {
    /// The writes with sequence numbers in `range` (clamped to this view's
    /// version; block 0, the header, is not a write), oldest first or, with
    /// `reverse`, newest first; in a sub-database, only its keys' writes.
    /// Collects [`Bee::history_iter`].
    pub fn history(&self, range: std::ops::Range<u64>, reverse: bool) -> Result<Vec<Change>> {
        self.history_iter(&crate::HistoryOptions {
            start: range.start,
            end: Some(range.end),
            reverse,
            limit: None,
        })?
        .collect()
    }

    /// What changed from version `from` to this view's version: each key
    /// whose entry differs, with its value then and now, in key order.
    /// Subtrees both versions share are skipped without being read.
    /// Collects [`Bee::diff_iter`] over every key.
    pub fn diff(&self, from: u64) -> Result<Vec<crate::diff::Difference>> {
        self.diff_iter(from, &RangeOptions::default())?.collect()
    }
}

impl Bee {
    /// Waits for changes: [`Watch::next`](crate::Watch::next) returns each
    /// new version that changed a key (within `range`, if given).
    pub fn watch(&self, range: Option<RangeOptions>) -> Result<crate::Watch> {
        crate::watch::Watch::new(self.clone(), range)
    }

    /// The value of `key` now, and a [`KeyWatch`](crate::KeyWatch) that
    /// returns each new value as writes change it.
    pub fn get_and_watch(&self, key: &[u8]) -> Result<crate::KeyWatch> {
        crate::watch::KeyWatch::new(self.clone(), key)
    }

    /// The writes from sequence number `from` on, then each new one as it
    /// is written (see [`LiveHistory::next`](crate::LiveHistory::next)).
    pub fn history_live(&self, from: u64) -> Result<crate::LiveHistory> {
        crate::live::LiveHistory::new(self.clone(), from)
    }
}

impl Batch<'_> {
    /// Sets `key` to `value` (applied at commit).
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        let key = self.bee.full(key);
        self.ops.push(Op::Put(key, value.to_vec()));
    }

    /// Removes `key` (applied at commit; nothing if it is absent then).
    pub fn del(&mut self, key: &[u8]) {
        let key = self.bee.full(key);
        self.ops.push(Op::Del(key));
    }

    /// The value `key` will have once this batch commits: its last put or
    /// delete in the batch, else the bee's current value (a batch reads its
    /// own writes).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let full = self.bee.full(key);
        for op in self.ops.iter().rev() {
            match op {
                Op::Put(k, v) if *k == full => return Ok(Some(v.clone())),
                Op::Del(k) if *k == full => return Ok(None),
                _ => {}
            }
        }
        self.bee.get(key)
    }

    /// Applies every operation in one core append.
    pub fn commit(self) -> Result<()> {
        let _writing = self
            .bee
            .shared
            .writing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.bee.commit_locked(&self.ops).map(|_| ())
    }
}

/// Where `key` stands against the range's bounds.
pub(crate) fn below_lower(options: &RangeOptions, key: &[u8]) -> bool {
    options.gt.as_deref().is_some_and(|b| key <= b)
        || options.gte.as_deref().is_some_and(|b| key < b)
}

pub(crate) fn above_upper(options: &RangeOptions, key: &[u8]) -> bool {
    options.lt.as_deref().is_some_and(|b| key >= b)
        || options.lte.as_deref().is_some_and(|b| key > b)
}
