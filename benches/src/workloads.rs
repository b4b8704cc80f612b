//! W1–W3 of the benchmark suite: append small and large blocks, then read.
//! (W4 and W5 are in `replicate.rs`.)
//! Random data is made before any timer starts; every workload works in its
//! own temporary folder, removed at the end.

use std::path::Path;
use std::time::Instant;

use hyper_core::{Durability, Store, StoreOptions};
use rand::{Rng, RngCore, SeedableRng};

use crate::report::Line;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub const MB: f64 = 1_000_000.0;

/// The shape of an append workload.
#[derive(Clone, Copy)]
pub struct Append {
    id: &'static str,
    pub blocks: u64,
    pub block_size: usize,
    pub batch: usize,
}

impl Append {
    /// W1: 100,000 blocks of 1 KiB in batches of 100.
    pub const SMALL: Append = Append {
        id: "W1",
        blocks: 100_000,
        block_size: 1024,
        batch: 100,
    };
    /// W2: 2,000 blocks of 64 KiB in batches of 16.
    pub const LARGE: Append = Append {
        id: "W2",
        blocks: 2_000,
        block_size: 65536,
        batch: 16,
    };
}

pub fn random_blocks(count: u64, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            b
        })
        .collect()
}

pub fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Immediate => "immediate",
        Durability::Eventual => "eventual",
    }
}

/// Appends `blocks` to a new core named "bench" in `dir`; returns seconds.
/// With eventual durability the time includes the final flush to disk.
pub fn fill(dir: &Path, blocks: &[Vec<u8>], batch: usize, durability: Durability) -> Result<f64> {
    let store = Store::open_with(
        dir,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )?;
    let core = store.named("bench")?;
    let start = Instant::now();
    for chunk in blocks.chunks(batch) {
        core.append_batch(chunk)?;
    }
    store.flush()?;
    Ok(start.elapsed().as_secs_f64())
}

/// W1 / W2: one line per durability.
pub fn append(scale: u64, shape: Append) -> Result<()> {
    let count = shape.blocks / scale;
    let blocks = random_blocks(count, shape.block_size, 1);
    for durability in [Durability::Immediate, Durability::Eventual] {
        let dir = tempfile::tempdir()?;
        let secs = fill(dir.path(), &blocks, shape.batch, durability)?;
        let bytes = (count as usize * shape.block_size) as f64;
        Line::new(shape.id)
            .text("durability", durability_name(durability))
            .int("block_size", shape.block_size as u64)
            .int("blocks", count)
            .int("batch_size", shape.batch as u64)
            .num("blocks_per_sec", count as f64 / secs)
            .num("mb_per_sec", bytes / MB / secs)
            .int("disk_bytes", dir_size(dir.path())?)
            .print(scale)?;
    }
    Ok(())
}

/// W3: reopen the W1 core, random gets, then every block in order.
pub fn read(scale: u64) -> Result<()> {
    let count = Append::SMALL.blocks / scale;
    let dir = tempfile::tempdir()?;
    let blocks = random_blocks(count, Append::SMALL.block_size, 1);
    fill(
        dir.path(),
        &blocks,
        Append::SMALL.batch,
        Durability::Eventual,
    )?;
    drop(blocks);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let indexes: Vec<u64> = (0..count).map(|_| rng.random_range(0..count)).collect();

    let start = Instant::now();
    let store = Store::open(dir.path())?;
    let core = store.named("bench")?;
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let length = core.info()?.length;
    if length != count {
        return Err(format!("reopened length {length}, expected {count}").into());
    }

    let start = Instant::now();
    let mut checksum = 0u64;
    for &i in &indexes {
        checksum += u64::from(core.get(i)?.first().copied().unwrap_or(0));
    }
    let random_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..count {
        bytes += core.get(i)?.len();
    }
    let seq_secs = start.elapsed().as_secs_f64();
    if bytes != count as usize * Append::SMALL.block_size {
        return Err(format!("sequential read returned {bytes} bytes").into());
    }
    eprintln!("W3: checksum {checksum}");
    Line::new("W3")
        .int("blocks", count)
        .int("random_gets", count)
        .num("open_ms", open_ms)
        .num("random_gets_per_sec", count as f64 / random_secs)
        .num("seq_get_mb_per_sec", bytes as f64 / MB / seq_secs)
        .print(scale)?;
    Ok(())
}
