//! W6: a bee in a core on disk: 100,000 puts in batches of 1,000 (keys: 16
//! lowercase hex characters of 8 random bytes, distinct, random order;
//! values: 100 random bytes), 100,000 random gets one at a time, one full
//! range scan. The store commits without an fsync per batch (the reference
//! does not fsync either) and is flushed before the put timer stops.

use std::collections::HashSet;
use std::time::Instant;

use hyper_bee::{Bee, RangeOptions};
use hyper_core::{Durability, Store, StoreOptions};
use rand::{Rng, RngCore, SeedableRng};

use crate::report::Line;
use crate::workloads::{Result, dir_size};

const BATCH: usize = 1000;
const VALUE_SIZE: usize = 100;

pub fn run(scale: u64) -> Result<()> {
    let puts = (100_000 / scale) as usize;
    let gets = puts;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(puts);
    while keys.len() < puts {
        let hex = format!("{:016x}", rng.next_u64());
        if seen.insert(hex.clone()) {
            keys.push(hex.into_bytes());
        }
    }
    let mut values = vec![0u8; puts * VALUE_SIZE];
    rng.fill_bytes(&mut values);
    let get_keys: Vec<usize> = (0..gets).map(|_| rng.random_range(0..puts)).collect();

    let dir = tempfile::tempdir()?;
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let bee = Bee::open(store.named("bee")?)?;

    let start = Instant::now();
    for (i, chunk) in keys.chunks(BATCH).enumerate() {
        let mut batch = bee.batch();
        for (j, key) in chunk.iter().enumerate() {
            let at = (i * BATCH + j) * VALUE_SIZE;
            batch.put(key, values.get(at..at + VALUE_SIZE).unwrap_or_default());
        }
        batch.commit()?;
    }
    store.flush()?;
    let put_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for &i in &get_keys {
        if bee.get(&keys[i])?.is_none() {
            return Err(format!("missing key {i}").into());
        }
    }
    let get_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let scanned = bee.range(&RangeOptions::default())?;
    let scan_secs = start.elapsed().as_secs_f64();
    if scanned.len() != puts || scanned.windows(2).any(|w| w[0].key >= w[1].key) {
        return Err("scan out of order or incomplete".into());
    }
    drop((bee, store));
    Line::new("W6")
        .text("durability", "eventual")
        .int("puts", puts as u64)
        .int("gets", gets as u64)
        .int("batch_size", BATCH as u64)
        .num("put_ops_per_sec", puts as f64 / put_secs)
        .num("get_ops_per_sec", gets as f64 / get_secs)
        .num("scan_entries_per_sec", scanned.len() as f64 / scan_secs)
        .int("disk_bytes", dir_size(dir.path())?)
        .print(scale)?;
    Ok(())
}
