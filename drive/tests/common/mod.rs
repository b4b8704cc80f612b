//! Test helpers: a [`Fetch`] that asks a writer's real cores for proofs and
//! applies them to the replica (the path replication takes, without the
//! socket), counting what moved.
#![allow(dead_code)] // each test binary uses some of them

use std::cell::Cell;

use hyper_core::{Core, NodeRequest, ProofRequest, UpgradeRequest};
use hyper_drive::{Fetch, Result};

/// Fetches from the writer's cores, through proofs the replica verifies.
pub struct ProofFetch {
    pub sources: Vec<Core>,
    pub fetched: Cell<u64>,
}

impl ProofFetch {
    pub fn new(sources: &[&Core]) -> ProofFetch {
        ProofFetch {
            sources: sources.iter().map(|c| (*c).clone()).collect(),
            fetched: Cell::new(0),
        }
    }
}

impl Fetch for ProofFetch {
    async fn fetch(&self, core: &Core, index: u64) -> Result<()> {
        let Some(source) = self.sources.iter().find(|s| s.key() == core.key()) else {
            return Err(hyper_drive::Error::Missing {
                core: core.key(),
                index,
            });
        };
        let info = core.info()?;
        let request = ProofRequest {
            block: Some(NodeRequest {
                index,
                nodes: core.missing_nodes(index).unwrap_or(64),
            }),
            upgrade: (info.length < source.info()?.length).then_some(UpgradeRequest {
                start: info.length,
                fork: info.fork,
            }),
            manifest: core.manifest()?.is_none(),
            ..Default::default()
        };
        core.apply(&[source.proof(&request)?])?;
        self.fetched.set(self.fetched.get() + 1);
        Ok(())
    }
}

/// Runs a future to completion on this thread (the fetch above never waits).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
