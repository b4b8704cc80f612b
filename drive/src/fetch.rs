//! The one seam between the drive's reads and the network: reads are sync
//! over local blocks and report a missing one as [`Error::Missing`]; a
//! [`Fetch`] brings that block (verified, stored) and the read runs again.
//! When a shared async block source for the upper layers exists, only this
//! file changes.

use std::future::Future;
use std::ops::Range;

use hyper_core::{Core, CoreKey, Store};

use crate::drive::Drive;
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

/// Opens the replica of drive `key`, fetching its header block first.
pub async fn open_replica(store: &Store, key: &CoreKey, fetch: &impl Fetch) -> Result<Drive> {
    let meta = store.replica(key)?;
    with_fetch(&[meta], fetch, || Drive::replica(store, key)).await
}
