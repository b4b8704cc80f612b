//! A [`Store`]: many cores in one redb database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::append::AppendOutcome;
use crate::bitfield::Bitfield;
use crate::core::{Core, CoreInner, CoreState};
use crate::encryption::ENCRYPTED;
use crate::error::{Corruption, Error, Result};
use crate::keys::{CoreKey, DiscoveryKey, KeyPair};
use crate::manifest::Manifest;
use crate::namespace::NS_NAMES;
use crate::open;
use crate::proof::SignedState;
use crate::storage::{
    BITFIELD, CORE_IDS, DISCOVERY_KEYS, EVIDENCE, HEADERS, Header, META, NAMES, USER_DATA,
};
use crate::txn::CoreTables;
use crate::view::{ReadView, Views, WriteTxn};

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced before it returns: after a crash every
    /// returned append is there. The default.
    #[default]
    Immediate,
    /// Commits return before they are fsynced; they reach the disk with the
    /// next immediate commit, [`Store::flush`], or when the store closes. A
    /// crash loses the unflushed tail but always leaves every core at a
    /// signed, self-consistent state. For bulk loads.
    Eventual,
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Durability of every commit made through this store.
    pub durability: Durability,
    /// Bytes of database pages the store keeps in memory (redb's cache).
    /// Pages beyond it are read from the file again when needed (usually
    /// from the OS page cache), so this bounds the resident memory a store
    /// gains as it is written and read, whatever the size of its cores.
    /// The default is [`StoreOptions::DEFAULT_CACHE_BYTES`].
    pub cache_bytes: usize,
}

impl StoreOptions {
    /// The default page cache: 256 MiB. A core of 100,000 blocks of 1 KiB
    /// fits in it whole (W3's random gets run as fast as with redb's own
    /// default of 1 GiB; at 64 MiB they were ~40% slower), and a seeder that
    /// runs for days holds at most this much of its store in memory.
    pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            cache_bytes: Self::DEFAULT_CACHE_BYTES,
        }
    }
}

/// One line of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreEntry {
    /// The core's key.
    pub key: CoreKey,
    /// The name it was created under, if any.
    pub name: Option<String>,
    /// Whether this store can append to it.
    pub writable: bool,
    /// Its signed length.
    pub length: u64,
}

/// What a store has been asked since it was opened (all clones together),
/// see [`Store::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Calls of [`Store::list`]: each reads every core's header.
    pub lists: u64,
    /// Calls of [`Store::by_discovery_key`]: each is a point lookup.
    pub discovery_lookups: u64,
}

/// The database, opened for writing ([`Store::open`]) or only for reading
/// ([`Store::open_read_only`]).
pub(crate) enum Db {
    Write(Database),
    Read(redb::ReadOnlyDatabase),
}

impl Db {
    pub fn begin_read(&self) -> std::result::Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        }
    }
}

pub(crate) struct Shared {
    /// Declared before `db`: the kept read view goes before the database.
    pub views: Views,
    pub db: Db,
    pub durability: Durability,
    pub seed: [u8; 32],
    open: Mutex<HashMap<u64, Weak<CoreInner>>>,
    lists: AtomicU64,
    discovery_lookups: AtomicU64,
}

impl Shared {
    /// A write transaction; every write of the store goes through one, so
    /// that its commit drops the store's read view (see [`crate::view`]).
    pub fn write(&self, durability: Durability) -> Result<WriteTxn<'_>> {
        let Db::Write(db) = &self.db else {
            return Err(Error::ReadOnlyStore);
        };
        let mut txn = db.begin_write()?;
        if durability == Durability::Eventual {
            txn.set_durability(redb::Durability::None)?;
        }
        Ok(WriteTxn::new(txn, &self.views))
    }

    /// The read view gets share (see [`crate::view`]).
    pub fn view(&self) -> Result<Arc<ReadView>> {
        self.views.current(&self.db)
    }

    /// Records that core `id` is encrypted, with the key check of its key.
    pub fn mark_encrypted(&self, id: u64, check: &[u8; 32]) -> Result<()> {
        let txn = self.write(self.durability)?;
        txn.open_table(ENCRYPTED)?.insert(id, check)?;
        txn.commit()?;
        Ok(())
    }

    /// The key check of core `id` if this store created it encrypted.
    fn encryption_check(&self, id: u64) -> Result<Option<[u8; 32]>> {
        let txn = self.db.begin_read()?;
        match txn.open_table(ENCRYPTED) {
            Ok(t) => Ok(t.get(id)?.map(|v| *v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a core's header and bitfield as committed.
    pub fn load_state(&self, id: u64) -> Result<Option<CoreState>> {
        let txn = self.db.begin_read()?;
        let headers = txn.open_table(HEADERS)?;
        let Some(raw) = headers.get(id)? else {
            return Ok(None);
        };
        let header = Header::decode(raw.value())?;
        let mut bitfield = Bitfield::new();
        for page in txn.open_table(BITFIELD)?.range((id, 0)..=(id, u64::MAX))? {
            let (k, v) = page?;
            bitfield
                .load_page(k.value().1, v.value())
                .ok_or(Corruption::Record { table: "bitfield" })?;
        }
        Ok(Some(CoreState {
            header,
            bitfield,
            deleted: false,
            cuts: 0,
        }))
    }
}

/// Many cores in one database in a directory. Cheap to clone; every clone
/// and every [`Core`] from it share one database handle, and two handles
/// to the same core share one state.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir` with immediate durability.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`. A damaged database file is a
    /// [`Error::Corrupt`] naming the file (never a panic, nor a printed
    /// one); a `store.redb` that is empty or is not a hyper-core store is
    /// [`Error::NotAStore`], never silently initialised; a store held by
    /// another process is [`Error::StoreLocked`]. A new store appears
    /// whole: it is built under a temporary name and linked into place.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_seeded(dir.as_ref(), options, None)
    }

    /// Opens the store in `dir`, creating it with `seed` if there is none.
    pub(crate) fn open_seeded(
        dir: &Path,
        options: StoreOptions,
        seed: Option<[u8; 32]>,
    ) -> Result<Self> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let (db, seed) = open::open_or_create(&open::store_file(&dir), seed, options.cache_bytes)?;
        Ok(Self::with_db(Db::Write(db), seed, options, dir))
    }

    /// Opens the existing store in `dir` for reading only: it needs only
    /// read permission on the files, creates nothing, and every write
    /// (append, replica, name) is [`Error::ReadOnlyStore`]. Several
    /// processes may read at once; a store held by a writer is
    /// [`Error::StoreLocked`]. Damage is reported as [`Store::open`] does.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let options = StoreOptions::default();
        let (db, seed) = open::open_read_only(&open::store_file(&dir), options.cache_bytes)?;
        Ok(Self::with_db(Db::Read(db), seed, options, dir))
    }

    fn with_db(db: Db, seed: [u8; 32], options: StoreOptions, dir: PathBuf) -> Self {
        Store {
            shared: Arc::new(Shared {
                views: Views::default(),
                db,
                durability: options.durability,
                seed,
                open: Mutex::new(HashMap::new()),
                lists: AtomicU64::new(0),
                discovery_lookups: AtomicU64::new(0),
            }),
            dir,
        }
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates a new writable core with a random key pair.
    pub fn create_core(&self) -> Result<Core> {
        let pair = KeyPair::generate()?;
        self.insert_core(Manifest::single(pair.public_key()), vec![pair], None)
    }

    /// The writable core named `name` in the root namespace, created on
    /// first use. Its key pair is derived from the store's secret seed and
    /// the name, so the same name in the same store (or in a store made
    /// from the same seed, [`Store::from_seed`]) always gives the
    /// same key. Libraries sharing a store should take a
    /// [`Store::namespace`] each instead.
    ///
    /// If the store already holds that core as a replica (cloned before the
    /// name was used here, as when a writer moves to a new machine), the
    /// replica becomes writable and keeps what it downloaded.
    pub fn named(&self, name: &str) -> Result<Core> {
        if let Some(core) = self.by_name(name)? {
            return Ok(core);
        }
        let mut material = self.shared.seed.to_vec();
        material.extend_from_slice(name.as_bytes());
        let pair = KeyPair::from_seed(blake3::derive_key("hyper-core 2026 named core", &material));
        self.named_core(pair, Name::Root(name.to_string()))
    }

    /// The single-signer core of `pair` under `name`, created or adopted.
    pub(crate) fn named_core(&self, pair: KeyPair, name: Name) -> Result<Core> {
        self.insert_core(Manifest::single(pair.public_key()), vec![pair], Some(name))
    }

    /// The store's secret seed (named cores derive their keys from it).
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.shared.seed
    }

    /// The database (opened for writing, or only for reading).
    pub(crate) fn database(&self) -> &Db {
        &self.shared.db
    }

    /// The core created under `name`, if there is one (never creates).
    pub fn by_name(&self, name: &str) -> Result<Option<Core>> {
        let key = {
            let txn = self.shared.db.begin_read()?;
            let names = txn.open_table(NAMES)?;
            names.get(name)?.map(|v| CoreKey(*v.value()))
        };
        key.map(|k| self.core(&k)).transpose()
    }

    /// Creates a core with an explicit manifest (for example several
    /// signers and a quorum). It is writable here when `signers` holds at
    /// least the quorum of the manifest's keys.
    /// An invalid manifest (a key listed twice, a quorum past the signers)
    /// is [`Error::InvalidArgument`].
    pub fn create_with_manifest(&self, manifest: Manifest, signers: Vec<KeyPair>) -> Result<Core> {
        manifest
            .validate()
            .map_err(|_| Error::InvalidArgument(crate::manifest::INVALID))?;
        self.insert_core(manifest, signers, None)
    }

    fn insert_core(
        &self,
        manifest: Manifest,
        signers: Vec<KeyPair>,
        name: Option<Name>,
    ) -> Result<Core> {
        let key = manifest.key();
        if let Some(core) = self.find(&key)? {
            return adopt(&self.shared, core, Some(manifest), signers, name);
        }
        let header = Header {
            manifest: Some(manifest),
            signers,
            name: name.as_ref().map(|n| n.display().to_string()),
            state: SignedState::empty(),
            bytes_stored: 0,
            truncations: Vec::new(),
            tail: None,
            pending: Vec::new(),
        };
        self.insert_header(&key, header, name.as_ref())
    }

    fn insert_header(&self, key: &CoreKey, header: Header, name: Option<&Name>) -> Result<Core> {
        let txn = self.shared.write(self.shared.durability)?;
        // Checked again inside the write transaction: two callers creating
        // the same core at once both get the one that committed first.
        let existing = txn.open_table(CORE_IDS)?.get(&key.0)?.map(|v| v.value());
        if let Some(id) = existing {
            drop(txn);
            return self.load(id, *key);
        }
        let id = {
            let mut meta = txn.open_table(META)?;
            let next = meta.get("next_id")?.map(|v| v.value().to_vec());
            let id = match next {
                None => 0,
                Some(v) => <[u8; 8]>::try_from(v.as_slice())
                    .map(u64::from_le_bytes)
                    .map_err(|_| Corruption::Record { table: "meta" })?,
            };
            meta.insert("next_id", (id + 1).to_le_bytes().as_slice())?;
            id
        };
        txn.open_table(CORE_IDS)?.insert(&key.0, id)?;
        txn.open_table(DISCOVERY_KEYS)?
            .insert(&key.discovery_key().0, &key.0)?;
        if let Some(name) = name {
            name.insert(&txn, key)?;
        }
        txn.open_table(HEADERS)?
            .insert(id, header.encode().as_slice())?;
        txn.commit()?;
        self.load(id, *key)
    }

    /// The replica of `key`, created (empty, read-only) on first use. If the
    /// store already holds the core (even writable), that core is returned.
    pub fn replica(&self, key: &CoreKey) -> Result<Core> {
        if let Some(core) = self.find(key)? {
            return Ok(core);
        }
        let header = Header {
            manifest: None,
            signers: Vec::new(),
            name: None,
            state: SignedState::empty(),
            bytes_stored: 0,
            truncations: Vec::new(),
            tail: None,
            pending: Vec::new(),
        };
        self.insert_header(key, header, None)
    }

    /// The core with this key; [`Error::UnknownCore`] if the store has none.
    pub fn core(&self, key: &CoreKey) -> Result<Core> {
        self.find(key)?.ok_or(Error::UnknownCore(*key))
    }

    fn find(&self, key: &CoreKey) -> Result<Option<Core>> {
        let id = {
            let txn = self.shared.db.begin_read()?;
            let ids = txn.open_table(CORE_IDS)?;
            ids.get(&key.0)?.map(|v| v.value())
        };
        id.map(|id| self.load(id, *key)).transpose()
    }

    fn load(&self, id: u64, key: CoreKey) -> Result<Core> {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = open.get(&id).and_then(Weak::upgrade) {
            return Ok(Core {
                inner,
                cipher: None,
            });
        }
        let state = self
            .shared
            .load_state(id)?
            .ok_or(Corruption::Record { table: "headers" })?;
        let encrypted = std::sync::OnceLock::new();
        if let Some(check) = self.shared.encryption_check(id)? {
            let _ = encrypted.set(check);
        }
        let inner = Arc::new(CoreInner {
            shared: self.shared.clone(),
            id,
            key,
            state: RwLock::new(state),
            listeners: Mutex::default(),
            encrypted,
        });
        open.insert(id, Arc::downgrade(&inner));
        Ok(Core {
            inner,
            cipher: None,
        })
    }

    /// The core whose discovery key is `discovery_key`, if the store holds
    /// it (never creates): one point lookup in the store's index of
    /// discovery keys, whatever the number of cores. (A store made before
    /// the index existed gets it when first opened for writing; opened only
    /// for reading, such a store is searched key by key instead.)
    pub fn by_discovery_key(&self, discovery_key: &DiscoveryKey) -> Result<Option<Core>> {
        self.shared
            .discovery_lookups
            .fetch_add(1, Ordering::Relaxed);
        let found = {
            let txn = self.shared.db.begin_read()?;
            let ids = txn.open_table(CORE_IDS)?;
            let key = match txn.open_table(DISCOVERY_KEYS) {
                Ok(index) => index.get(&discovery_key.0)?.map(|v| CoreKey(*v.value())),
                Err(redb::TableError::TableDoesNotExist(_)) => ids
                    .iter()?
                    .map(|entry| entry.map(|(k, _)| CoreKey(*k.value())))
                    .find(|k| {
                        k.as_ref()
                            .map_or(true, |k| k.discovery_key() == *discovery_key)
                    })
                    .transpose()?,
                Err(e) => return Err(e.into()),
            };
            match key {
                Some(key) => ids.get(&key.0)?.map(|id| (id.value(), key)),
                None => None,
            }
        };
        found.map(|(id, key)| self.load(id, key)).transpose()
    }

    /// What this store has been asked since it was opened: how many
    /// listings and discovery-key lookups (a peer's unknown keys cost
    /// lookups, never listings).
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            lists: self.shared.lists.load(Ordering::Relaxed),
            discovery_lookups: self.shared.discovery_lookups.load(Ordering::Relaxed),
        }
    }

    /// Every core in the store, in key order.
    pub fn list(&self) -> Result<Vec<CoreEntry>> {
        self.shared.lists.fetch_add(1, Ordering::Relaxed);
        let txn = self.shared.db.begin_read()?;
        let ids = txn.open_table(CORE_IDS)?;
        let headers = txn.open_table(HEADERS)?;
        let mut out = Vec::new();
        for entry in ids.iter()? {
            let (key, id) = entry?;
            let raw = headers
                .get(id.value())?
                .ok_or(Corruption::Record { table: "headers" })?;
            let h = Header::decode(raw.value())?;
            out.push(CoreEntry {
                key: CoreKey(*key.value()),
                writable: crate::core::can_sign(&h),
                name: h.name,
                length: h.state.length,
            });
        }
        Ok(out)
    }

    /// Deletes a core and all its data from the store (blocks, tree,
    /// bitfield, header, user data, its names and encryption mark), in one
    /// transaction. Open handles to it fail with [`Error::UnknownCore`]
    /// from then on. The space is reused by later writes;
    /// [`Store::compact`] returns it to the file system.
    pub fn delete(&self, key: &CoreKey) -> Result<()> {
        let core = self.core(key)?;
        let mut state = core.inner.state.write().unwrap_or_else(|e| e.into_inner());
        let id = core.inner.id;
        let txn = self.shared.write(self.shared.durability)?;
        {
            let mut t = CoreTables::open(&txn)?;
            t.nodes.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
            t.blocks
                .retain_in((id, 0, 0)..=(id, u64::MAX, u32::MAX), |_, _| false)?;
            t.bitfield
                .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
            t.headers.remove(id)?;
            txn.open_table(USER_DATA)?
                .retain_in((id, "")..(id + 1, ""), |_, _| false)?;
            txn.open_table(EVIDENCE)?.remove(id)?;
            txn.open_table(CORE_IDS)?.remove(&key.0)?;
            txn.open_table(DISCOVERY_KEYS)?
                .remove(&key.discovery_key().0)?;
            txn.open_table(ENCRYPTED)?.remove(id)?;
            // Whatever names point at this core, in any namespace.
            txn.open_table(NAMES)?.retain(|_, v| v != key.as_bytes())?;
            txn.open_table(NS_NAMES)?
                .retain(|_, v| v != key.as_bytes())?;
        }
        txn.commit()?;
        state.deleted = true;
        self.shared
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        Ok(())
    }

    /// Starts a batch of appends and truncations of several cores,
    /// committed atomically.
    pub fn batch(&self) -> StoreBatch<'_> {
        StoreBatch::for_shared(self.shared.clone())
    }

    /// Makes every commit so far durable (an fsynced empty commit).
    pub fn flush(&self) -> Result<()> {
        self.shared.write(Durability::Immediate)?.commit()?;
        Ok(())
    }

    /// Bytes the store's database file takes on disk now (what
    /// [`Store::compact`] can shrink after [`Core::clear`] and
    /// [`Store::delete`]).
    pub fn file_size(&self) -> Result<u64> {
        Ok(std::fs::metadata(open::store_file(&self.dir))?.len())
    }

    /// Returns free space inside the database file to the file system;
    /// `true` if it compacted anything. Needs the only handle to the store:
    /// no clones and no open cores ([`Error::InvalidArgument`] otherwise).
    pub fn compact(&mut self) -> Result<bool> {
        let shared = Arc::get_mut(&mut self.shared).ok_or(Error::InvalidArgument(
            "close every core and store clone before compacting",
        ))?;
        shared.views.drop_view();
        match &mut shared.db {
            Db::Write(db) => Ok(db.compact()?),
            Db::Read(_) => Err(Error::ReadOnlyStore),
        }
    }
}

/// Gives an existing core the signing keys (and the name) it lacks: a
/// replica whose key pair is now known here becomes writable. `manifest`
/// is used when the core's own is not known yet; the caller guarantees it
/// hashes to the core's key. Keys that are not signers of the manifest are
/// ignored.
pub(crate) fn adopt(
    shared: &Shared,
    core: Core,
    manifest: Option<Manifest>,
    signers: Vec<KeyPair>,
    name: Option<Name>,
) -> Result<Core> {
    let mut st = core.write_state()?;
    let mut header = st.header.clone();
    let mut changed = header.manifest.is_none() && manifest.is_some();
    let Some(manifest) = header.manifest.clone().or(manifest) else {
        return Err(Error::InvalidArgument(
            "the core's manifest is not known yet: replicate it first",
        ));
    };
    for pair in signers {
        let ours = manifest.signers.contains(&pair.public_key());
        let known = header
            .signers
            .iter()
            .any(|p| p.public_key() == pair.public_key());
        if ours && !known {
            header.signers.push(pair);
            changed = true;
        }
    }
    let name = name.filter(|_| header.name.is_none());
    if !changed && name.is_none() {
        drop(st);
        return Ok(core);
    }
    header.manifest = Some(manifest);
    if let Some(n) = &name {
        header.name = Some(n.display().to_string());
    }
    let txn = shared.write(shared.durability)?;
    CoreTables::open(&txn)?.put_header(core.inner.id, &header)?;
    if let Some(n) = &name {
        n.insert(&txn, &core.key())?;
    }
    txn.commit()?;
    st.header = header;
    drop(st);
    Ok(core)
}

/// Where a named core's name is recorded.
pub(crate) enum Name {
    /// A name in the root namespace ([`Store::named`]).
    Root(String),
    /// A name in a namespace ([`crate::Namespace`]).
    Namespaced {
        /// The encoded path and name (the key in its table).
        slot: Vec<u8>,
        /// Path and name joined by `/`, as [`Store::list`] shows it.
        display: String,
    },
}

impl Name {
    fn display(&self) -> &str {
        match self {
            Name::Root(n) => n,
            Name::Namespaced { display, .. } => display,
        }
    }

    fn insert(&self, txn: &WriteTransaction, key: &CoreKey) -> Result<()> {
        match self {
            Name::Root(n) => {
                txn.open_table(NAMES)?.insert(n.as_str(), &key.0)?;
            }
            Name::Namespaced { slot, .. } => {
                txn.open_table(NS_NAMES)?.insert(slot.as_slice(), &key.0)?;
            }
        }
        Ok(())
    }
}

/// Appends and truncations of several cores, committed in one transaction:
/// after a crash either all of them are there or none. Truncations run
/// first, then the appends in the order they were queued.
pub struct StoreBatch<'a> {
    shared: Arc<Shared>,
    appends: Vec<(Core, Vec<&'a [u8]>)>,
    plan: crate::tail::Plan,
}

impl<'a> StoreBatch<'a> {
    pub(crate) fn for_shared(shared: Arc<Shared>) -> Self {
        StoreBatch {
            shared,
            appends: Vec::new(),
            plan: Default::default(),
        }
    }

    /// Queues `blocks` for appending to `core` (a core may appear twice),
    /// signed with the store's keys. The blocks are borrowed, not copied.
    pub fn append<B: AsRef<[u8]>>(&mut self, core: &Core, blocks: &'a [B]) -> &mut Self {
        self.appends
            .push((core.clone(), blocks.iter().map(AsRef::as_ref).collect()));
        self
    }

    /// Queues `blocks` for `core`'s unsigned tail (see
    /// [`Core::append_unsigned`]); every append to `core` in this batch then
    /// goes to the tail.
    pub fn append_unsigned<B: AsRef<[u8]>>(&mut self, core: &Core, blocks: &'a [B]) -> &mut Self {
        self.plan.unsigned.insert(core.inner.id);
        self.append(core, blocks)
    }

    /// Queues a truncation of `core` to `length` blocks, applied before the
    /// batch's appends (see [`Core::truncate`]): within the unsigned tail
    /// it needs no key and keeps the fork.
    pub fn truncate(&mut self, core: &Core, length: u64) -> &mut Self {
        self.plan.truncations.push((core.clone(), length));
        self
    }

    /// Commits every queued truncation and append in one transaction;
    /// returns each append's core's new length and byte length, in the
    /// order the appends were queued.
    pub fn commit(self) -> Result<Vec<AppendOutcome>> {
        crate::append::append_many(&self.shared, &self.appends, &self.plan)
    }
}
