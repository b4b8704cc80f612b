//! `StoreOptions::cache_bytes` bounds the memory a store gains as it is
//! written and read: a store with a small cache writes and reads back far
//! more bytes than its cache, and the process grows by about the cache, not
//! by what it wrote. (With redb's own default of 1 GiB the same run grows by
//! the whole file, ~50 MB: every page written or read stays resident.)
//! One test in its own binary, so no other test's memory is counted.

use hyper_core::{Durability, Store, StoreOptions};

/// The resident memory of this process, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[test]
fn a_store_grows_by_its_page_cache_not_by_what_it_wrote() {
    const CACHE: usize = 4 << 20;
    const BLOCKS: u64 = 40_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            cache_bytes: CACHE,
        },
    )
    .expect("store");
    let core = store.create_core().expect("core");
    // Warm up the allocator and the first pages before the baseline.
    core.append_batch(&vec![vec![7u8; 1024]; 1000])
        .expect("append");
    let before = resident();
    let block = |i: u64| {
        let mut b = vec![(i % 251) as u8; 1024];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b
    };
    for start in (1000..BLOCKS).step_by(1000) {
        let batch: Vec<Vec<u8>> = (start..start + 1000).map(block).collect();
        core.append_batch(&batch).expect("append");
    }
    store.flush().expect("flush");
    for i in (1000..BLOCKS).step_by(7) {
        assert_eq!(core.get(i).expect("get"), block(i));
    }
    let file = std::fs::metadata(dir.path().join("store.redb"))
        .expect("the store file")
        .len();
    let grown = resident().saturating_sub(before);
    assert!(
        file > 40 << 20,
        "the run must write far more than the cache: {file} bytes"
    );
    assert!(
        grown < 24 << 20,
        "the process grew {grown} bytes for a {CACHE}-byte cache ({file} bytes written)"
    );
}
