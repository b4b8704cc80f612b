//! Helpers shared by the integration tests and their child processes.

/// The deterministic content of block `index` written by `crash-writer`.
pub fn crash_block(index: u64) -> Vec<u8> {
    let len = 100 + (index % 900) as usize;
    let seed = index.to_le_bytes();
    (0..len).map(|i| seed[i % 8] ^ (i as u8)).collect()
}
