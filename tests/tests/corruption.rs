//! Corruption test: flipped bytes and truncation of the redb file end in
//! clear errors, never a panic and never wrong data.

use hyper_core::{Error, Store};
use rand::{Rng, SeedableRng};

fn blocks() -> Vec<Vec<u8>> {
    (0..300u32)
        .map(|i| format!("block number {i} ").repeat(20).into_bytes())
        .collect()
}

fn build(dir: &std::path::Path) -> hyper_core::CoreKey {
    let store = Store::open(dir).expect("open");
    let core = store.named("c").expect("core");
    for chunk in blocks().chunks(50) {
        core.append_batch(chunk).expect("append");
    }
    core.key()
}

/// Opens and reads everything; any error is fine, wrong data is not.
fn read_all(dir: &std::path::Path, key: &hyper_core::CoreKey) -> Result<usize, Error> {
    let store = Store::open(dir)?;
    store.list()?;
    let core = store.core(key)?;
    let want = blocks();
    let mut ok = 0;
    for i in 0..core.info()?.length {
        // Any typed error is acceptable; only wrong data is not.
        if let Ok(b) = core.get(i) {
            assert_eq!(
                b, want[i as usize],
                "corruption returned wrong data for block {i}"
            );
            ok += 1;
        }
    }
    Ok(ok)
}

#[test]
fn flipped_bytes_give_errors_not_panics_or_wrong_data() {
    let seed: u64 = std::env::var("CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = build(dir.path());
    let file = dir.path().join("store.redb");
    let pristine = std::fs::read(&file).expect("read");
    let mut errors = 0;
    for _ in 0..60 {
        let mut bytes = pristine.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        std::fs::write(&file, &bytes).expect("write");
        if read_all(dir.path(), &key).is_err() {
            errors += 1;
        }
    }
    // Many flips land in free pages or padding; enough must be noticed.
    assert!(errors > 0, "no flip was noticed (seed {seed})");
}

#[test]
fn flipped_block_bytes_are_a_corruption_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = build(dir.path());
    let file = dir.path().join("store.redb");
    let mut bytes = std::fs::read(&file).expect("read");
    // Find a block's bytes in the file and change one of them.
    let needle = b"block number 123 block number 123";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("block bytes are in the file");
    bytes[at + 6] = b'N';
    std::fs::write(&file, &bytes).expect("write");
    match Store::open(dir.path())
        .and_then(|s| s.core(&key))
        .and_then(|c| c.get(123))
    {
        Err(Error::Corrupt(_)) => {}
        other => panic!(
            "expected a corruption error, got {:?}",
            other.map(|b| b.len())
        ),
    }
}

#[test]
fn truncated_file_gives_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = build(dir.path());
    let file = dir.path().join("store.redb");
    let pristine = std::fs::read(&file).expect("read");
    let mut errors = 0;
    for cut in [
        0,
        1,
        100,
        512,
        4096,
        pristine.len() / 3,
        pristine.len() / 2,
        pristine.len() - 1,
    ] {
        std::fs::write(&file, &pristine[..cut]).expect("write");
        if read_all(dir.path(), &key).is_err() {
            errors += 1;
        }
    }
    assert!(errors >= 6, "truncation went unnoticed");
}
