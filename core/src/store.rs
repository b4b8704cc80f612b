//! A [`Store`]: many cores in one redb database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::bitfield::Bitfield;
use crate::blockstore::BLOCKS;
use crate::core::{AppendOutcome, Core, CoreInner, CoreState};
use crate::error::{Corruption, Error, Result};
use crate::keys::{CoreKey, KeyPair, random_bytes};
use crate::manifest::Manifest;
use crate::proof::SignedState;
use crate::storage::{
    BITFIELD, CORE_IDS, EVIDENCE, FORMAT, HEADERS, Header, META, NAMES, NODES, USER_DATA,
};
use crate::txn::CoreTables;

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
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Durability of every commit made through this store.
    pub durability: Durability,
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

pub(crate) struct Shared {
    pub db: Database,
    pub durability: Durability,
    seed: [u8; 32],
    open: Mutex<HashMap<u64, Weak<CoreInner>>>,
}

impl Shared {
    pub fn write(&self, durability: Durability) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        if durability == Durability::Eventual {
            txn.set_durability(redb::Durability::None)?;
        }
        Ok(txn)
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
        }))
    }
}

/// Many cores in one database in a directory. Cheap to clone; every clone
/// and every [`Core`] from it share one database handle, and two handles
/// to the same core share one state.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir` with immediate durability.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`. A damaged database file is a
    /// [`Error::Corrupt`]; a store held by another process is
    /// [`Error::StoreLocked`].
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("store.redb");
        let db = open_database(&file)?;
        let seed = match read_seed(&db, &file)? {
            Some(seed) => seed,
            None => initialize(&db)?,
        };
        Ok(Store {
            shared: Arc::new(Shared {
                db,
                durability: options.durability,
                seed,
                open: Mutex::new(HashMap::new()),
            }),
            dir,
        })
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

    /// The writable core named `name`, created on first use. Its key pair
    /// is derived from the store's secret seed and the name, so the same
    /// name in the same store always gives the same key.
    pub fn named(&self, name: &str) -> Result<Core> {
        if let Some(core) = self.by_name(name)? {
            return Ok(core);
        }
        let mut material = self.shared.seed.to_vec();
        material.extend_from_slice(name.as_bytes());
        let pair = KeyPair::from_seed(blake3::derive_key("hyper-core 2026 named core", &material));
        self.insert_core(
            Manifest::single(pair.public_key()),
            vec![pair],
            Some(name.to_string()),
        )
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
        name: Option<String>,
    ) -> Result<Core> {
        let key = manifest.key();
        if let Some(core) = self.find(&key)? {
            return Ok(core);
        }
        let header = Header {
            manifest: Some(manifest),
            signers,
            name,
            state: SignedState::empty(),
            bytes_stored: 0,
            truncations: Vec::new(),
            tail: None,
            pending: Vec::new(),
        };
        self.insert_header(&key, header)
    }

    fn insert_header(&self, key: &CoreKey, header: Header) -> Result<Core> {
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
        if let Some(name) = &header.name {
            txn.open_table(NAMES)?.insert(name.as_str(), &key.0)?;
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
        self.insert_header(key, header)
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
            return Ok(Core { inner });
        }
        let state = self
            .shared
            .load_state(id)?
            .ok_or(Corruption::Record { table: "headers" })?;
        let inner = Arc::new(CoreInner {
            shared: self.shared.clone(),
            id,
            key,
            state: RwLock::new(state),
            listeners: Mutex::default(),
        });
        open.insert(id, Arc::downgrade(&inner));
        Ok(Core { inner })
    }

    /// Every core in the store, in key order.
    pub fn list(&self) -> Result<Vec<CoreEntry>> {
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

    /// Deletes a core and all its data from the store. Open handles to it
    /// fail with [`Error::UnknownCore`] from then on.
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
            if let Some(name) = &state.header.name {
                txn.open_table(NAMES)?.remove(name.as_str())?;
            }
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

    /// Returns free space inside the database file to the file system.
    /// Needs the only handle to the store: no clones and no open cores.
    pub fn compact(&mut self) -> Result<bool> {
        let shared = Arc::get_mut(&mut self.shared).ok_or(Error::InvalidArgument(
            "close every core and store clone before compacting",
        ))?;
        Ok(shared.db.compact()?)
    }
}

/// The store seed of an initialized database (checking its format), or
/// `None` for a new, empty one. Reads only: reopening costs no fsync.
fn read_seed(db: &Database, file: &Path) -> Result<Option<[u8; 32]>> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(format) = meta.get("format")? else {
        return Ok(None);
    };
    let version = <[u8; 4]>::try_from(format.value())
        .map(u32::from_le_bytes)
        .map_err(|_| Corruption::Record { table: "meta" })?;
    if version != FORMAT {
        return Err(Error::Format {
            path: file.to_path_buf(),
            found: version,
            supported: FORMAT,
        });
    }
    let seed = meta
        .get("seed")?
        .ok_or(Corruption::Record { table: "meta" })?;
    let seed =
        <[u8; 32]>::try_from(seed.value()).map_err(|_| Corruption::Record { table: "meta" })?;
    Ok(Some(seed))
}

/// Writes the format, a new random seed and every table into a new database.
fn initialize(db: &Database) -> Result<[u8; 32]> {
    let seed = random_bytes()?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("format", FORMAT.to_le_bytes().as_slice())?;
        meta.insert("seed", seed.as_slice())?;
    }
    // Create every table so later read transactions find them.
    txn.open_table(CORE_IDS)?;
    txn.open_table(NAMES)?;
    txn.open_table(HEADERS)?;
    txn.open_table(NODES)?;
    txn.open_table(BLOCKS)?;
    txn.open_table(BITFIELD)?;
    txn.open_table(USER_DATA)?;
    txn.open_table(EVIDENCE)?;
    txn.commit()?;
    Ok(seed)
}

fn open_database(path: &Path) -> Result<Database> {
    // A damaged file must be an error, never a panic; redb reports damage as
    // errors, and this guard keeps a defect there from taking the caller down.
    std::panic::catch_unwind(|| Database::create(path))
        .map_err(|_| {
            Error::Corrupt(Corruption::Database(
                "the database file could not be read".into(),
            ))
        })?
        .map_err(Error::from)
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
        crate::core::append_many(&self.shared, &self.appends, &self.plan)
    }
}
