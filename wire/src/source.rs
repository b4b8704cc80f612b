//! [`ReplicatedSource`]: a core with a [`Replication`] behind it, as a
//! [`BlockSource`] for the layers above. A block stored here is answered at
//! once; any other is fetched from the peers (verified, stored) with the
//! caller's timeout; a prefetch is a background download of the range.

use std::ops::Range;
use std::time::Duration;

use hyper_core::{BlockFuture, BlockSource, Core, Prefetch, SeekFuture, fetch_error, seek_error};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::session::{DownloadRange, Replication};

/// A core read through a [`Replication`]: local blocks at once, missing
/// ones from peers. Cheap to clone. Made on an encrypted handle
/// ([`Core::with_encryption`]) it reads plaintext: peers (blind seeders
/// among them) send and verify ciphertext, the source decrypts what it
/// returns, and a wrong key is [`hyper_core::Error::Decrypt`].
#[derive(Clone)]
pub struct ReplicatedSource {
    replication: Replication,
    core: Core,
    runtime: Option<Handle>,
}

impl ReplicatedSource {
    /// Reads `core` through `replication` (which replicates it from now
    /// on). Made inside a tokio runtime (the replication's), its prefetches
    /// are tasks there; made outside one, it prefetches nothing.
    pub fn new(replication: &Replication, core: &Core) -> ReplicatedSource {
        replication.add_core(core);
        ReplicatedSource {
            replication: replication.clone(),
            core: core.clone(),
            runtime: Handle::try_current().ok(),
        }
    }

    /// The replication behind it.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }
}

/// The error of a get of block `index` that failed: a block that came but
/// does not decrypt with the source's key is [`hyper_core::Error::Decrypt`]
/// (the key is wrong, not the fetch); anything else is
/// [`hyper_core::Error::Fetch`].
fn block_error(index: u64, error: crate::Error) -> hyper_core::Error {
    if let crate::Error::Storage(e) = &error
        && let hyper_core::Error::Decrypt { core, index } = **e
    {
        return hyper_core::Error::Decrypt { core, index };
    }
    fetch_error(index, error)
}

/// Aborts its task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl BlockSource for ReplicatedSource {
    fn core(&self) -> &Core {
        &self.core
    }

    fn get(&self, index: u64, timeout: Duration) -> BlockFuture {
        match self.core.get(index) {
            Ok(block) => return Box::pin(std::future::ready(Ok(block))),
            Err(e @ hyper_core::Error::Decrypt { .. }) => {
                return Box::pin(std::future::ready(Err(e)));
            }
            Err(_) => {}
        }
        let (replication, core) = (self.replication.clone(), self.core.clone());
        Box::pin(async move {
            replication
                .get(&core, index, timeout)
                .await
                .map_err(|e| block_error(index, e))
        })
    }

    fn prefetch(&self, range: Range<u64>) -> Prefetch {
        let Some(runtime) = &self.runtime else {
            return Prefetch::none();
        };
        if range.is_empty() || self.core.has_range(range.clone()).unwrap_or(false) {
            return Prefetch::none();
        }
        let (replication, core) = (self.replication.clone(), self.core.clone());
        let task = runtime.spawn(async move {
            // A failed prefetch costs nothing: the reads it served fetch
            // (and report) their blocks themselves.
            let _ = replication
                .download(&core, DownloadRange::range(range))
                .await;
        });
        Prefetch::new(AbortOnDrop(task))
    }

    fn remote(&self) -> bool {
        true
    }

    /// The local tree's answer, else [`Replication::seek`]: one seek proof
    /// from a peer (O(log n) nodes, no block), verified and stored.
    fn seek(&self, bytes: u64, timeout: Duration) -> SeekFuture {
        let (replication, core) = (self.replication.clone(), self.core.clone());
        Box::pin(async move {
            replication
                .seek(&core, bytes, timeout)
                .await
                .map_err(|e| seek_error(bytes, e))
        })
    }
}
