//! Reading a bee whose blocks are not all local: run the operation, fetch
//! the block it reports missing, run it again. Runtime-free: the caller
//! supplies the fetch (for example `hyper_wire::Replication::get`).

use std::future::Future;

use crate::error::{Error, Result};

/// Runs `op` until it no longer reports a missing block, fetching each one
/// it reports with `fetch` (which must store it locally, verified). Each
/// block is fetched once; an operation that walks O(log n) nodes fetches
/// O(log n) blocks. A fetch error ends the loop with that error, mapped by
/// `into`.
pub async fn with_fetch<T, F, Fut, E>(
    mut op: impl FnMut() -> Result<T>,
    mut fetch: F,
    into: impl Fn(E) -> Error,
) -> Result<T>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
{
    let mut last = None;
    loop {
        match op() {
            Err(Error::Missing(seq)) => {
                if last == Some(seq) {
                    // Fetched, yet still missing: the fetch does not store.
                    return Err(Error::Missing(seq));
                }
                last = Some(seq);
                fetch(seq).await.map_err(&into)?;
            }
            other => return other,
        }
    }
}
