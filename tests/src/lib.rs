//! Helpers shared by the integration tests and their child processes.

/// The deterministic content of block `index` written by `crash-writer`.
pub fn crash_block(index: u64) -> Vec<u8> {
    let len = 100 + (index % 900) as usize;
    let seed = index.to_le_bytes();
    (0..len).map(|i| seed[i % 8] ^ (i as u8)).collect()
}

/// Reads every block of `core` through its verified read path and checks it
/// against `expected`; panics with the index on the first difference.
pub fn assert_blocks(core: &hyper_core::Core, expected: impl Fn(u64) -> Vec<u8>) {
    let length = core.info().expect("info").length;
    for item in core.blocks(0..length).expect("iterate") {
        let (i, data) = item.expect("every block verifies against its leaf");
        assert_eq!(data, expected(i), "block {i}");
    }
}

/// A store in `dir` that commits without an fsync per batch.
pub fn eventual_store(dir: &std::path::Path) -> hyper_core::Store {
    hyper_core::Store::open_with(
        dir,
        hyper_core::StoreOptions {
            durability: hyper_core::Durability::Eventual,
            ..Default::default()
        },
    )
    .expect("store")
}

/// Distinct 16-hex-character bee keys in scrambled order.
pub fn scrambled_key(i: u32) -> Vec<u8> {
    format!("{:016x}", u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes()
}
