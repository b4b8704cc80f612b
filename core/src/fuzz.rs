//! A stable fuzz harness for every decoder that reads bytes from disk: the
//! core header, equivocation evidence, the manifest, node pages, chunk
//! headers and bitfield pages.
//! Random inputs and single/multi-byte mutations of valid encodings must
//! decode or be refused, never panic. `HYPER_FUZZ_ITERS` sets the rounds
//! (default 20,000, bounded so the test suite stays quick).

use rand::{Rng, RngCore, SeedableRng};

use crate::bitfield::Bitfield;
use crate::manifest::Manifest;
use crate::storage::Header;
use crate::{chunk, nodepage};

/// Feeds one input to every decoder.
fn decode_all(bytes: &[u8]) {
    let _ = Header::decode(bytes);
    let _ = crate::storage::decode_evidence(bytes);
    let _ = Manifest::decode(bytes);
    for index in [0u64, 5, 127, 128, 1 << 40] {
        let _ = nodepage::get(bytes, index);
    }
    let _ = nodepage::nodes(3, bytes);
    if let Some(h) = chunk::Header::decode(bytes) {
        for j in 0..h.lengths.len() + 1 {
            if let Some(r) = h.range(j) {
                let _ = chunk::spans(r).count();
            }
        }
        let _ = h.parts();
    }
    let _ = Bitfield::new().load_page(0, bytes);
}

#[test]
fn disk_decoders_never_panic() {
    let iters: usize = std::env::var("HYPER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("HYPER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let valid = crate::fuzzing::sample_records();
    for v in &valid {
        decode_all(v);
    }
    for _ in 0..iters {
        let mut input = if rng.random_bool(0.3) {
            let mut b = vec![0u8; rng.random_range(0..600)];
            rng.fill_bytes(&mut b);
            b
        } else {
            valid[rng.random_range(0..valid.len())].clone()
        };
        for _ in 0..rng.random_range(1..4) {
            if input.is_empty() {
                break;
            }
            match rng.random_range(0..4) {
                0 => {
                    let at = rng.random_range(0..input.len());
                    input[at] ^= 1 << rng.random_range(0..8);
                }
                1 => {
                    let at = rng.random_range(0..input.len());
                    input[at] = rng.random();
                }
                2 => input.truncate(rng.random_range(0..input.len())),
                _ => input.extend_from_slice(&[rng.random(); 3]),
            }
        }
        decode_all(&input);
    }
}
