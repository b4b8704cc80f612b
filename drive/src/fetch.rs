//! The one seam between the drive's reads and the network: reads are sync
//! over local blocks and report a missing one as [`Error::Missing`]; a
//! [`Fetch`] brings that block (verified, stored) and the read runs again.
//! When a shared async block source for the upper layers exists, only this
//! file changes.

use std::future::Future;
use std::ops::Range;

use hyper_core::{Core, CoreKey, Store};

use crate::drive::{Drive, DriveOpener};
use crate::error::{Error, Result};

/// Brings blocks of a core from peers and stores them, verified.
pub trait Fetch {
    /// Fetches block `index` of `core`.
    fn fetch(&self, core: &Core, index: u64) -> impl Future<Output = Result<()>>;
    /// Fetches every block of `ranges` of `core` (by default one by one).
    fn fetch_ranges(&self, core: &Core, ranges: &[Range<u64>]) -> impl Future<Output = Result<()>> {
        async move {
            for r in ranges {
                for i in r.clone() {
                    if !core.has(i)? {
                        self.fetch(core, i).await?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Runs `op` until it reports no missing block, fetching each one it
/// reports from `cores` (the core with the missing block's key). A block
/// reported missing twice in a row (the fetch did not store it) ends with
/// that error.
pub async fn with_fetch<T>(
    cores: &[Core],
    fetch: &impl Fetch,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut last: Option<(CoreKey, u64)> = None;
    loop {
        match op() {
            Err(Error::Missing { core, index }) => {
                if last == Some((core, index)) {
                    return Err(Error::Missing { core, index });
                }
                last = Some((core, index));
                let Some(c) = cores.iter().find(|c| c.key() == core) else {
                    return Err(Error::Missing { core, index });
                };
                fetch.fetch(c, index).await?;
            }
            other => return other,
        }
    }
}

impl Drive {
    /// Runs a read of this drive, fetching the blocks it lacks (of either
    /// core) with `fetch`.
    pub async fn with_fetch<T>(
        &self,
        fetch: &impl Fetch,
        op: impl FnMut(&Drive) -> Result<T>,
    ) -> Result<T> {
        let mut op = op;
        let cores = [self.metadata().clone(), self.blobs.clone()];
        with_fetch(&cores, fetch, || op(self)).await
    }
}

/// Progress of [`Drive::download`]: files and bytes done of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Files whose blocks are all here.
    pub files: u64,
    /// Files to download in all.
    pub total_files: u64,
    /// Content bytes of those files.
    pub bytes: u64,
    /// Content bytes in all.
    pub total_bytes: u64,
}

impl Drive {
    /// Fetches every entry under `folder` and every block of its files,
    /// calling `progress` after each file (exact totals: the entries are
    /// listed first). Dropping the future cancels it; what arrived stays.
    pub async fn download(
        &self,
        folder: &str,
        fetch: &impl Fetch,
        mut progress: impl FnMut(&Progress),
    ) -> Result<Progress> {
        let entries = self
            .with_fetch(fetch, |d| d.list(folder, true, None))
            .await?;
        let mut p = Progress {
            total_files: entries.len() as u64,
            total_bytes: entries.iter().map(|(_, e)| e.size).sum(),
            ..Progress::default()
        };
        for (_, entry) in &entries {
            fetch.fetch_ranges(&self.blobs, &entry.blocks()).await?;
            p.files += 1;
            p.bytes += entry.size;
            progress(&p);
        }
        Ok(p)
    }
}

/// Opens the replica of drive `key`, fetching its header block first.
pub async fn open_replica(store: &Store, key: &CoreKey, fetch: &impl Fetch) -> Result<Drive> {
    DriveOpener::default().open_replica(store, key, fetch).await
}

impl DriveOpener {
    /// Opens the replica of drive `key` as this opener does (encrypted or
    /// plain), fetching its header block first.
    pub async fn open_replica(
        &self,
        store: &Store,
        key: &CoreKey,
        fetch: &impl Fetch,
    ) -> Result<Drive> {
        let meta = store.replica(key)?;
        with_fetch(&[meta], fetch, || self.replica(store, key)).await
    }
}

/// A [`Fetch`] through a [`hyper_wire::Replication`]: single blocks with
/// `Replication::get`, ranges with `Replication::download`, each waited for
/// at most `timeout` (a range: `timeout` per 64 blocks, at least one).
#[cfg(feature = "replication")]
#[derive(Clone)]
pub struct ReplicationFetch {
    /// The replication the cores are fetched through.
    pub replication: hyper_wire::Replication,
    /// How long one block may take.
    pub timeout: std::time::Duration,
}

#[cfg(feature = "replication")]
impl ReplicationFetch {
    /// Fetches through `replication`, waiting at most `timeout` per block.
    pub fn new(replication: hyper_wire::Replication, timeout: std::time::Duration) -> Self {
        ReplicationFetch {
            replication,
            timeout,
        }
    }

    fn error(core: &Core, index: u64, e: hyper_wire::Error) -> Error {
        Error::Fetch {
            core: core.key(),
            index,
            source: Box::new(e),
        }
    }
}

#[cfg(feature = "replication")]
impl Fetch for ReplicationFetch {
    async fn fetch(&self, core: &Core, index: u64) -> Result<()> {
        self.replication
            .get(core, index, self.timeout)
            .await
            .map(|_| ())
            .map_err(|e| Self::error(core, index, e))
    }

    async fn fetch_ranges(&self, core: &Core, ranges: &[Range<u64>]) -> Result<()> {
        for r in ranges {
            if core.has_range(r.clone())? {
                continue;
            }
            let steps = u32::try_from(1 + (r.end - r.start) / 64).unwrap_or(u32::MAX);
            let download = self
                .replication
                .download(core, hyper_wire::DownloadRange::range(r.clone()));
            tokio::time::timeout(self.timeout.saturating_mul(steps), download)
                .await
                .map_err(|_| hyper_wire::Error::Timeout)
                .and_then(|done| done)
                .map_err(|e| Self::error(core, r.start, e))?;
            // Anything the download left missing is fetched block by block.
            while let Some(i) = core.next_missing(r.clone())? {
                self.fetch(core, i).await?;
            }
        }
        Ok(())
    }
}
