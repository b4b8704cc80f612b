//! [`Core`]: one signed append-only log in a [`Store`](crate::Store).

use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::ReadOnlyTable;

use crate::bitfield::Bitfield;
use crate::blockstore::BLOCKS;
use crate::encrypted::open_block;
use crate::encryption::BlockCipher;
use crate::error::{Error, Result};
use crate::keys::{CoreKey, DiscoveryKey};
use crate::manifest::Manifest;
use crate::notify::{self, Event, Events, Listeners, Subscription};
use crate::proof::{self, SignedState};
use crate::storage::{BITFIELD, CachedNodes, Header, NODES, USER_DATA};
use crate::store::Shared;
use crate::tree;
use crate::txn::CoreTables;

/// A handle to one core. Cheap to clone; every handle to the same core in a
/// store shares one state, so an append through one is seen by all. A
/// handle from [`Core::with_encryption`] also encrypts what it appends and
/// decrypts what it reads.
#[derive(Clone)]
pub struct Core {
    pub(crate) inner: Arc<CoreInner>,
    pub(crate) cipher: Option<Arc<BlockCipher>>,
}

pub(crate) struct CoreInner {
    pub shared: Arc<Shared>,
    pub id: u64,
    pub key: CoreKey,
    pub state: RwLock<CoreState>,
    pub listeners: Mutex<Listeners>,
    /// Set when this store created the core encrypted: the key check of its
    /// encryption key (see [`crate::encryption`]).
    pub encrypted: OnceLock<[u8; 32]>,
}

pub(crate) struct CoreState {
    pub header: Header,
    pub bitfield: Bitfield,
    pub deleted: bool,
    /// Commits since this state was loaded that replaced blocks already
    /// at some index (see [`Core::cuts`]).
    pub cuts: u64,
}

/// A summary of a core's state, see [`Core::info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Blocks in the local log: the signed length plus the unsigned tail
    /// this store appended ([`Core::append_unsigned`]).
    pub length: u64,
    /// Blocks a quorum has signed: what peers are served. Equals `length`
    /// unless the core holds an unsigned tail.
    pub signed_length: u64,
    /// Total bytes of the blocks up to `length`.
    pub byte_length: u64,
    /// Fork id; grows with every truncation.
    pub fork: u64,
    /// Blocks `0..contiguous_length` are all stored locally.
    pub contiguous_length: u64,
    /// Blocks stored locally.
    pub blocks_stored: u64,
    /// Bytes of the blocks stored locally.
    pub bytes_stored: u64,
    /// Whether this store can append to the core.
    pub writable: bool,
}

/// Whether the header holds signing keys for at least the quorum.
pub(crate) fn can_sign(h: &Header) -> bool {
    h.manifest.as_ref().is_some_and(|m| {
        let local = m
            .signers
            .iter()
            .filter(|s| h.signers.iter().any(|p| p.public_key() == **s))
            .count();
        local >= usize::from(m.quorum)
    })
}

impl Core {
    /// The core key.
    pub fn key(&self) -> CoreKey {
        self.inner.key
    }

    /// The discovery key (what the network sees).
    pub fn discovery_key(&self) -> DiscoveryKey {
        self.inner.key.discovery_key()
    }

    /// The manifest, once known (a fresh replica learns it from a proof).
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        Ok(self.read_state()?.header.manifest.clone())
    }

    /// Whether this store can append to the core.
    pub fn writable(&self) -> Result<bool> {
        Ok(can_sign(&self.read_state()?.header))
    }

    /// A counter that moves whenever a committed change may have replaced
    /// a block at an index that had one (every truncation: a new fork, a
    /// replica following one, a cut within the unsigned tail). While it
    /// stays the same, a block read at index `i` is still block `i`; a
    /// cache of decoded blocks is valid exactly as long. It is visible
    /// together with the change (callbacks and events run a moment later),
    /// counts from 0 when the core is opened and is shared by every handle
    /// to it.
    pub fn cuts(&self) -> Result<u64> {
        Ok(self.read_state()?.cuts)
    }

    /// The latest signed state (what proofs served from here anchor to).
    pub fn signed_state(&self) -> Result<SignedState> {
        Ok(self.read_state()?.header.state.clone())
    }

    pub(crate) fn read_state(&self) -> Result<RwLockReadGuard<'_, CoreState>> {
        let st = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        if st.deleted {
            return Err(Error::UnknownCore(self.inner.key));
        }
        Ok(st)
    }

    pub(crate) fn write_state(&self) -> Result<RwLockWriteGuard<'_, CoreState>> {
        let st = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        if st.deleted {
            return Err(Error::UnknownCore(self.inner.key));
        }
        Ok(st)
    }

    /// Calls `listener` after every committed change of this core (append,
    /// truncate, clear, applied proofs, added signatures), through any
    /// handle, until the
    /// returned [`Subscription`] is dropped. It runs on the committing
    /// thread with no lock held; keep it short (wake a task, set a flag).
    pub fn subscribe(&self, listener: impl Fn() + Send + Sync + 'static) -> Subscription {
        notify::subscribe(&self.inner, Arc::new(listener))
    }

    /// Calls `watcher` with the typed [`Event`]s of every committed change
    /// of this core (those [`Core::events`] would queue, in commit order),
    /// through any handle, until the returned [`Subscription`] is dropped.
    /// Like [`Core::subscribe`] it runs on the committing thread with no
    /// lock held, before the plain callbacks; nothing is queued, so a
    /// watcher that keeps only what it needs (a replication: the ranges
    /// cleared) costs nothing per block.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use hyper_core::{Event, Store};
    /// # fn main() -> hyper_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let core = Store::open(dir.path())?.create_core()?;
    /// let cleared = Arc::new(Mutex::new(Vec::new()));
    /// let _watching = core.watch({
    ///     let cleared = cleared.clone();
    ///     move |events| {
    ///         for e in events {
    ///             if let Event::Cleared { start, end, .. } = e {
    ///                 cleared.lock().expect("lock").push(*start..*end);
    ///             }
    ///         }
    ///     }
    /// });
    /// core.append_batch(&[b"a", b"b", b"c"])?;
    /// core.clear(1..9)?;
    /// assert_eq!(*cleared.lock().expect("lock"), vec![1..3]);
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, watcher: impl Fn(&[Event]) + Send + Sync + 'static) -> Subscription {
        notify::watch(&self.inner, Arc::new(watcher))
    }

    /// The typed [`Event`]s of this core (appended and signed, truncated
    /// to a new fork, the unsigned tail changed, downloaded, cleared) from
    /// now on, through any handle, as a channel a UI thread
    /// reads: [`Events::try_next`], [`Events::next_timeout`], or iterate
    /// (blocking). Dropping it unregisters it.
    ///
    /// ```
    /// use hyper_core::{Event, Store};
    /// # fn main() -> hyper_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let core = Store::open(dir.path())?.create_core()?;
    /// let events = core.events();
    /// core.append_batch(&[b"a", b"b"])?;
    /// core.truncate(1)?;
    /// assert_eq!(events.try_next(), Some(Event::Appended { length: 2, byte_length: 2 }));
    /// assert_eq!(events.try_next(), Some(Event::Truncated { fork: 1, length: 1 }));
    /// assert_eq!(events.try_next(), None);
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events {
        notify::events(&self.inner)
    }

    /// Block `index`, checked against its leaf hash.
    /// [`Error::OutOfBounds`] past the length, [`Error::NotAvailable`] when
    /// it is not stored locally, [`Error::Corrupt`] when it does not match.
    /// Through an encrypted handle the plaintext ([`Error::Decrypt`] for a
    /// wrong key); through a plain handle the bytes as stored, which for an
    /// encrypted core held by a blind seeder is the ciphertext.
    pub fn get(&self, index: u64) -> Result<Vec<u8>> {
        let stored = {
            let st = self.read_state()?;
            check_bounds(index, st.header.length())?;
            st.bitfield.get(index)
        };
        if !stored {
            return Err(Error::NotAvailable { index });
        }
        self.plain_allowed()?;
        // Cleared since the state was read: not stored.
        self.inner
            .shared
            .view()?
            .read_block(self.inner.id, index)?
            .map(|b| open_block(self.cipher.as_deref(), self.inner.key, index, b))
            .transpose()?
            .ok_or(Error::NotAvailable { index })
    }

    /// Blocks `indices` (any order, repeats allowed), each as [`Core::get`]
    /// gives it, read in one transaction: `None` for one not stored
    /// locally. Any index past the length is [`Error::OutOfBounds`], any
    /// block that does not match its leaf hash [`Error::Corrupt`]. Cheaper
    /// than a `get` each when they share chunks, as a bee node's keys do.
    pub fn get_many(&self, indices: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let stored = {
            let st = self.read_state()?;
            indices
                .iter()
                .map(|&i| check_bounds(i, st.header.length()).map(|()| st.bitfield.get(i)))
                .collect::<Result<Vec<bool>>>()?
        };
        if !stored.contains(&true) {
            return Ok(vec![None; indices.len()]);
        }
        self.plain_allowed()?;
        let view = self.inner.shared.view()?;
        indices
            .iter()
            .zip(stored)
            .map(|(&index, here)| {
                if !here {
                    return Ok(None);
                }
                // Cleared since the state was read: not stored.
                view.read_block(self.inner.id, index)?
                    .map(|b| open_block(self.cipher.as_deref(), self.inner.key, index, b))
                    .transpose()
            })
            .collect()
    }

    /// Whether block `index` is stored locally.
    pub fn has(&self, index: u64) -> Result<bool> {
        Ok(self.read_state()?.bitfield.get(index))
    }

    /// Whether every block in `range` is stored locally.
    pub fn has_range(&self, range: Range<u64>) -> Result<bool> {
        Ok(self.read_state()?.bitfield.all_set(range.start, range.end))
    }

    /// Which blocks of `range` are stored locally, as run lengths that
    /// alternate stored, missing, stored, ... (see
    /// [`Bitfield::runs`](crate::bitfield::Bitfield::runs)).
    pub fn stored_runs(&self, range: Range<u64>) -> Result<Vec<u64>> {
        Ok(self.read_state()?.bitfield.runs(range.start, range.end))
    }

    /// The first block index in `range` that is stored locally.
    pub fn next_stored(&self, range: Range<u64>) -> Result<Option<u64>> {
        let st = self.read_state()?;
        // Nothing past the local length (the unsigned tail included) is
        // stored: the bitfield scan stops there (a range to u64::MAX would
        // otherwise walk every page number).
        let end = range.end.min(st.header.length());
        Ok(st.bitfield.first_set(range.start, end))
    }

    /// The first block index in `range` that is not stored locally.
    pub fn next_missing(&self, range: Range<u64>) -> Result<Option<u64>> {
        let first = self.read_state()?.bitfield.first_unset(range.start);
        Ok((first < range.end).then_some(first))
    }

    /// A summary of the core's state.
    pub fn info(&self) -> Result<Info> {
        let st = self.read_state()?;
        let s = &st.header.state;
        let length = st.header.length();
        Ok(Info {
            length,
            signed_length: s.length,
            byte_length: tree::byte_length(st.header.tree_roots()),
            fork: s.fork,
            contiguous_length: st.bitfield.contiguous().min(length),
            blocks_stored: st.bitfield.count(),
            bytes_stored: st.header.bytes_stored,
            writable: can_sign(&st.header),
        })
    }

    /// Bytes this core's records take in the database (keys and values of
    /// its blocks, tree nodes, bitfield pages and header). Scans the core.
    pub fn disk_usage(&self) -> Result<u64> {
        let id = self.inner.id;
        let header = self.read_state()?.header.encode().len() as u64;
        let txn = self.inner.shared.db.begin_read()?;
        let mut total = 8 + header;
        for table in [NODES, BITFIELD] {
            for record in txn.open_table(table)?.range((id, 0)..=(id, u64::MAX))? {
                total += 16 + record?.1.value().len() as u64;
            }
        }
        for record in txn
            .open_table(BLOCKS)?
            .range((id, 0, 0)..=(id, u64::MAX, u32::MAX))?
        {
            total += 20 + record?.1.value().len() as u64;
        }
        Ok(total)
    }

    /// Maps a byte offset to (block index, offset inside the block), in
    /// the local tree: like [`Core::get`], it reaches into the unsigned
    /// tail ([`Info::byte_length`] bytes in all).
    pub fn seek(&self, bytes: u64) -> Result<(u64, u64)> {
        self.with_tree(Header::local_state, |state, source| {
            let (leaf, offset) = proof::seek_leaf(source, state, bytes)?;
            Ok((leaf.index / 2, offset))
        })
    }

    /// Runs `f` on a state of the header (`state`: the signed one, or the
    /// local tree's) and the stored tree, in one read view.
    pub(crate) fn with_tree<T>(
        &self,
        state: impl FnOnce(&Header) -> SignedState,
        f: impl FnOnce(
            &SignedState,
            &CachedNodes<'_, ReadOnlyTable<(u64, u64), &'static [u8]>>,
        ) -> Result<T>,
    ) -> Result<T> {
        // The store's read view is taken under the state lock, so the state
        // and the tree it reads belong together: a commit of this core
        // drops the view before it installs its new state (a truncation
        // cannot slip between).
        let (state, view) = {
            let st = self.read_state()?;
            (state(&st.header), self.inner.shared.view()?)
        };
        f(
            &state,
            &CachedNodes {
                nodes: view.nodes(self.inner.id),
                pages: Default::default(),
            },
        )
    }

    /// Sets (`Some`) or removes (`None`) a local key/value pair of this
    /// core. User data is never replicated.
    pub fn set_user_data(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let _st = self.write_state()?;
        let txn = self.inner.shared.write(self.inner.shared.durability)?;
        {
            let mut t = txn.open_table(USER_DATA)?;
            match value {
                Some(v) => t.insert((self.inner.id, key), v)?,
                None => t.remove((self.inner.id, key))?,
            };
        }
        txn.commit()?;
        Ok(())
    }

    /// A local key/value pair set with [`Core::set_user_data`].
    pub fn user_data(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let _st = self.read_state()?;
        let txn = self.inner.shared.db.begin_read()?;
        let t = txn.open_table(USER_DATA)?;
        Ok(t.get((self.inner.id, key))?.map(|v| v.value().to_vec()))
    }

    /// Drops the local copies of the blocks in `range` and returns the
    /// bytes of block data freed (blocks in the range that were not stored
    /// free nothing). The tree nodes stay, so the core can still verify
    /// and serve proofs for other blocks, and the blocks can be fetched
    /// again. Blocks of the unsigned tail are never cleared (no peer could
    /// give them back): the range stops at the signed length. Freed space
    /// is reused by later writes;
    /// [`Store::compact`](crate::Store::compact) returns it to the file
    /// system.
    pub fn clear(&self, range: Range<u64>) -> Result<u64> {
        let mut st = self.write_state()?;
        let end = range.end.min(st.header.state.length);
        if range.start >= end {
            return Ok(0);
        }
        let id = self.inner.id;
        let mut header = st.header.clone();
        let mut freed = 0;
        let txn = self.inner.shared.write(self.inner.shared.durability)?;
        let result = (|| {
            let mut t = CoreTables::open(&txn)?;
            freed = t.remove_blocks(id, range.start, end)?;
            header.bytes_stored -= freed.min(header.bytes_stored);
            st.bitfield.set_range(range.start, end, false);
            t.put_bitfield(id, &mut st.bitfield)?;
            t.put_header(id, &header)?;
            Ok(())
        })();
        let freed_event = Event::Cleared {
            start: range.start,
            end,
            freed,
        };
        self.finish(st, txn, result, header, &[freed_event])?;
        Ok(freed)
    }

    /// Commits `txn` if `result` is fine and installs `header`; otherwise
    /// drops the transaction and reloads the committed state.
    pub(crate) fn finish(
        &self,
        mut st: RwLockWriteGuard<'_, CoreState>,
        txn: crate::view::WriteTxn<'_>,
        result: Result<()>,
        header: Header,
        events: &[Event],
    ) -> Result<()> {
        match result.and_then(|()| txn.commit().map_err(Error::from)) {
            Ok(()) => {
                if notify::cuts_blocks(events, st.header.length()) {
                    st.cuts += 1;
                }
                st.header = header;
                drop(st);
                notify::notify(&self.inner, events);
                Ok(())
            }
            Err(e) => {
                reload(&self.inner, &mut st);
                Err(e)
            }
        }
    }
}

pub(crate) fn check_bounds(index: u64, length: u64) -> Result<()> {
    if index >= length {
        return Err(Error::OutOfBounds { index, length });
    }
    Ok(())
}

pub(crate) fn reload(inner: &CoreInner, st: &mut CoreState) {
    if let Ok(Some(fresh)) = inner.shared.load_state(inner.id) {
        // What was read before may not be what is there now.
        let cuts = st.cuts + 1;
        *st = fresh;
        st.cuts = cuts;
    }
}
