//! Finding and opening the store a command works on: only commands that
//! write create one; every failure names the store's path.

use std::path::{Path, PathBuf};

use hyper_core::{Durability, Store, StoreOptions};

use crate::CliError;

/// The database file inside a store directory.
const DATABASE: &str = "store.redb";

/// What a command does with its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only reads: a missing store is an error, never created.
    Read,
    /// Writes (appends, stores what peers send): creates the store if needed.
    Write,
}

/// The store directory: `--store`, else `$HYPER_STORE`, else
/// `$XDG_DATA_HOME/hyper-cli`, else `$HOME/.local/share/hyper-cli`; with
/// none of them, none (never the working folder).
pub fn locate(flag: Option<PathBuf>) -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = flag.or_else(|| non_empty("HYPER_STORE").map(PathBuf::from)) {
        return Some(dir);
    }
    let data = non_empty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("hyper-cli"))
}

/// The page cache of a command that streams a drive's bytes through its
/// store once (`drive mirror`): pages written or read once gain nothing
/// from staying resident, and a mirror of a 4 GiB file stays within a
/// small resident set.
const STREAMING_CACHE_BYTES: usize = 32 << 20;

/// Opens the store in `dir` for `access`, committing with `durability`.
/// For reads, a store this user cannot write (its file or folder is
/// read-only to them) is opened read-only.
pub fn open(dir: &Path, access: Access, durability: Durability) -> Result<Store, CliError> {
    open_cached(dir, access, durability, StoreOptions::DEFAULT_CACHE_BYTES)
}

/// [`open`] for a command that streams bytes through the store once: a
/// small page cache unless `$HYPER_CACHE_MIB` says otherwise.
pub fn open_streaming(
    dir: &Path,
    access: Access,
    durability: Durability,
) -> Result<Store, CliError> {
    open_cached(dir, access, durability, STREAMING_CACHE_BYTES)
}

fn open_cached(
    dir: &Path,
    access: Access,
    durability: Durability,
    default_cache: usize,
) -> Result<Store, CliError> {
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::StoreNotADirectory(dir.to_path_buf()));
    }
    let file = dir.join(DATABASE);
    if access == Access::Read && !file.is_file() {
        return Err(CliError::NoStore(dir.to_path_buf()));
    }
    let cache_bytes = cache_bytes()?.unwrap_or(default_cache);
    let opened = if access == Access::Read && !writable(&file) {
        tracing::debug!(store = %dir.display(), "not writable here: opening read-only");
        Store::open_read_only(dir)
    } else {
        Store::open_with(
            dir,
            StoreOptions {
                durability,
                cache_bytes,
            },
        )
    };
    opened.map_err(|error| match error {
        hyper_core::Error::StoreLocked { .. } => CliError::StoreLocked(dir.to_path_buf()),
        error => CliError::Store {
            path: dir.to_path_buf(),
            error,
        },
    })
}

/// The store's page cache as `$HYPER_CACHE_MIB` gives it (mebibytes, at
/// least 1), if it is set. A long-running seeder on a small machine bounds
/// its memory with it.
fn cache_bytes() -> Result<Option<usize>, CliError> {
    const VAR: &str = "HYPER_CACHE_MIB";
    let Some(value) = std::env::var_os(VAR).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&mib| (1..=1 << 20).contains(&mib))
        .map(|mib| Some(mib << 20))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "${VAR} is {value:?}: give the store's page cache in MiB, 1 to 1048576"
            ))
        })
}

/// Whether this process may write the store's file (tried by opening it
/// for writing, which changes nothing).
fn writable(file: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(file).is_ok()
}

/// Opens the store for `access` with immediate durability (every commit
/// fsynced), as writes of the user's own data want.
pub fn open_durable(dir: &Path, access: Access) -> Result<Store, CliError> {
    open(dir, access, Durability::Immediate)
}
