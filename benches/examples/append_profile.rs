//! Appends BLOCKS blocks of SIZE bytes in batches of BATCH with eventual
//! durability, for profiling the append path (`perf record`,
//! `valgrind --tool=callgrind`) and inspecting the store it leaves.
//! Usage: append_profile [BLOCKS=100000] [SIZE=1024] [BATCH=100] [KEEP_DIR]

use hyper_core::{Durability, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |n: usize, default: usize| -> Result<usize, std::num::ParseIntError> {
        std::env::args().nth(n).map_or(Ok(default), |s| s.parse())
    };
    let (blocks, size, batch) = (arg(1, 100_000)?, arg(2, 1024)?, arg(3, 100)?);
    let temp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(4)
        .map_or(temp.path().to_path_buf(), Into::into);
    let store = Store::open_with(
        &dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let core = store.named("profile")?;
    let data: Vec<Vec<u8>> = (0..batch).map(|i| vec![i as u8; size]).collect();
    let start = std::time::Instant::now();
    for _ in 0..blocks / batch {
        core.append_batch(&data)?;
    }
    store.flush()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{blocks} x {size} B in {secs:.3} s: {:.0} blocks/s, {:.1} MB/s",
        blocks as f64 / secs,
        (blocks * size) as f64 / 1e6 / secs
    );
    Ok(())
}
