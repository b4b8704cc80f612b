//! Opening a store's database file, or creating it.
//!
//! A new store is built under a temporary name (format record, seed, every
//! table, committed) and only then linked into place as `store.redb`, so a
//! file named `store.redb` is always a whole store: a crash during creation
//! leaves a stray temporary file, never a half-made store. An existing
//! `store.redb` that is empty, or a redb database without this crate's
//! format record, is therefore not a store and is refused with an error
//! naming it: silently initialising it would give the store a new seed and
//! every named core a new key.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::encryption::ENCRYPTED;
use crate::error::{Corruption, Error, Result};
use crate::keys::CoreKey;
use crate::keys::random_bytes;
use crate::quiet;
use crate::storage::{
    BITFIELD, CORE_IDS, DISCOVERY_KEYS, EVIDENCE, FORMAT, HEADERS, META, NAMES, NODES, USER_DATA,
};

/// The store file of the store in `dir`.
pub(crate) fn store_file(dir: &Path) -> PathBuf {
    dir.join("store.redb")
}

/// Opens the store file at `path`, or creates it with `seed` (a random one
/// when `None`) if there is none. Returns the database and its seed.
/// `cache_bytes` bounds the database's page cache.
pub(crate) fn open_or_create(
    path: &Path,
    seed: Option<[u8; 32]>,
    cache_bytes: usize,
) -> Result<(Database, [u8; 32])> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(not_a_store(path, "the file is empty")),
        Ok(_) => open_existing(path, cache_bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, seed, cache_bytes),
        Err(e) => Err(e.into()),
    }
}

fn not_a_store(path: &Path, reason: &'static str) -> Error {
    Error::NotAStore {
        path: path.to_path_buf(),
        reason,
    }
}

fn open_existing(path: &Path, cache_bytes: usize) -> Result<(Database, [u8; 32])> {
    let db = open_database(path, cache_bytes)?;
    let seed = seed_of(&db, path)?;
    index_discovery_keys(&db).map_err(|e| name_file(path, e))?;
    Ok((db, seed))
}

/// Builds the `discovery_keys` table of a store made before it existed,
/// from `core_ids`, in one transaction; does nothing once it is there.
fn index_discovery_keys(db: &Database) -> Result<()> {
    match db.begin_read()?.open_table(DISCOVERY_KEYS) {
        Ok(_) => return Ok(()),
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let txn = db.begin_write()?;
    {
        let ids = txn.open_table(CORE_IDS)?;
        let mut index = txn.open_table(DISCOVERY_KEYS)?;
        for entry in ids.iter()? {
            let key = CoreKey(*entry?.0.value());
            index.insert(&key.discovery_key().0, &key.0)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Opens the existing store file at `path` for reading only, with a page
/// cache of `cache_bytes`.
pub(crate) fn open_read_only(
    path: &Path,
    cache_bytes: usize,
) -> Result<(redb::ReadOnlyDatabase, [u8; 32])> {
    let db = quiet::catch(|| {
        Database::builder()
            .set_cache_size(cache_bytes)
            .open_read_only(path)
    })
    .map_err(|_| unreadable(path))?
    .map_err(|e| open_error(path, e))?;
    let seed = seed_of(&db, path)?;
    Ok((db, seed))
}

/// The seed of the store in `db` (the file `path`), or why it is not one.
fn seed_of(db: &impl ReadableDatabase, path: &Path) -> Result<[u8; 32]> {
    // The database is dropped after a panic, so nothing sees it half-way.
    let seed = quiet::catch(std::panic::AssertUnwindSafe(|| read_seed(db, path)))
        .map_err(|_| unreadable(path))?
        .map_err(|e| name_file(path, e))?;
    match seed {
        Some(seed) => Ok(seed),
        None => Err(not_a_store(
            path,
            "it is a redb database without a hyper-core format record (another program's file?)",
        )),
    }
}

fn create(path: &Path, seed: Option<[u8; 32]>, cache_bytes: usize) -> Result<(Database, [u8; 32])> {
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let n = ATTEMPT.fetch_add(1, Ordering::Relaxed);
    let name = format!("store.redb.new-{}-{n}", std::process::id());
    let tmp = path.with_file_name(name);
    let made = (|| {
        let db = open_database(&tmp, cache_bytes)?;
        let seed = initialize(&db, seed)?;
        Ok::<_, Error>((db, seed))
    })();
    let (db, seed) = match made {
        Ok(made) => made,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // A hard link never replaces: if another process created the store
    // meanwhile, its file wins and this one is dropped.
    let linked = std::fs::hard_link(&tmp, path).or_else(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Err(e),
        // File systems without hard links: a rename, which may replace.
        _ => std::fs::rename(&tmp, path),
    });
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // Make the new name durable; not every platform can sync a directory.
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            Ok((db, seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            drop(db);
            open_existing(path, cache_bytes)
        }
        Err(e) => Err(e.into()),
    }
}

/// The store seed of an initialized database (checking its format), or
/// `None` for a database without a format record. Reads only.
fn read_seed(db: &impl ReadableDatabase, file: &Path) -> Result<Option<[u8; 32]>> {
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

/// Writes the format, the seed and every table into a new database.
fn initialize(db: &Database, seed: Option<[u8; 32]>) -> Result<[u8; 32]> {
    let seed = match seed {
        Some(seed) => seed,
        None => random_bytes()?,
    };
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("format", FORMAT.to_le_bytes().as_slice())?;
        meta.insert("seed", seed.as_slice())?;
    }
    // Create every table so later read transactions find them.
    txn.open_table(CORE_IDS)?;
    txn.open_table(DISCOVERY_KEYS)?;
    txn.open_table(NAMES)?;
    txn.open_table(HEADERS)?;
    txn.open_table(NODES)?;
    txn.open_table(crate::blockstore::BLOCKS)?;
    txn.open_table(BITFIELD)?;
    txn.open_table(USER_DATA)?;
    txn.open_table(EVIDENCE)?;
    txn.open_table(ENCRYPTED)?;
    crate::namespace::create_tables(&txn)?;
    txn.commit()?;
    Ok(seed)
}

fn unreadable(path: &Path) -> Error {
    Error::Corrupt(Corruption::Database(format!(
        "{}: the database file could not be read",
        path.display()
    )))
}

/// Puts the file's name into a damage report.
fn name_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Corrupt(Corruption::Database(msg)) => {
            Error::Corrupt(Corruption::Database(format!("{}: {msg}", path.display())))
        }
        other => other,
    }
}

fn open_database(path: &Path, cache_bytes: usize) -> Result<Database> {
    // A damaged file must be an error, never a panic (nor a printed one):
    // redb reports most damage as errors, and this guard keeps an assertion
    // there from taking the caller down or writing to its stderr.
    quiet::catch(|| Database::builder().set_cache_size(cache_bytes).create(path))
        .map_err(|_| unreadable(path))?
        .map_err(|e| open_error(path, e))
}

/// Why the database file at `path` did not open, naming it.
fn open_error(path: &Path, e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::StoreLocked {
            path: path.to_path_buf(),
        },
        other => name_file(path, redb::Error::from(other).into()),
    }
}
