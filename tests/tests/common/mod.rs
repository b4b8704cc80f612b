//! Helpers shared by the cross-crate tests: stores in tempdirs and moving
//! blocks between cores through real proofs.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use hyper_core::{Core, Error, NodeRequest, ProofRequest, Store, UpgradeRequest};

/// `n` stores, each in its own tempdir (keep the dirs alive).
pub fn stores(n: usize) -> (Vec<tempfile::TempDir>, Vec<Store>) {
    let dirs: Vec<_> = (0..n)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let stores = dirs
        .iter()
        .map(|d| Store::open(d.path()).expect("open"))
        .collect();
    (dirs, stores)
}

/// What a reader asks for to get `index` (and the newest length).
pub fn request(reader: &Core, index: u64) -> ProofRequest {
    let info = reader.info().expect("info");
    ProofRequest {
        block: Some(NodeRequest {
            index,
            nodes: reader.missing_nodes(index).expect("missing"),
        }),
        upgrade: Some(UpgradeRequest {
            start: info.length,
            fork: info.fork,
        }),
        manifest: reader.manifest().expect("manifest").is_none(),
        ..Default::default()
    }
}

/// Moves block `index` (and the newest signed length) from `from` to `to`.
pub fn fetch(from: &Core, to: &Core, index: u64) -> Result<(), Error> {
    let proof = from.proof(&request(to, index))?;
    to.apply(&[proof]).map(|_| ())
}

/// Moves every block of `from` to `to`, one verified proof at a time.
pub fn fetch_all(from: &Core, to: &Core) -> Result<(), Error> {
    fetch(from, to, 0)?;
    for i in 1..from.info()?.length {
        fetch(from, to, i)?;
    }
    Ok(())
}
