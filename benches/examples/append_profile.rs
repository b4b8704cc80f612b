//! Appends N x 1 KiB blocks in batches of 100 with eventual durability, for
//! profiling the append path (`perf record`, `valgrind --tool=callgrind`).
//! Usage: append_profile [BLOCKS]

use hyper_core::{Durability, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let blocks: usize = std::env::args().nth(1).map_or(Ok(100_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
        },
    )?;
    let core = store.named("profile")?;
    let batch: Vec<Vec<u8>> = (0..100u32).map(|i| vec![i as u8; 1024]).collect();
    let start = std::time::Instant::now();
    for _ in 0..blocks / 100 {
        core.append_batch(&batch)?;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{blocks} blocks in {secs:.3} s: {:.0} blocks/s",
        blocks as f64 / secs
    );
    Ok(())
}
