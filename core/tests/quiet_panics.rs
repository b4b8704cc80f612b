//! A damaged or truncated store file ends in errors naming the file, and
//! nothing from it prints a panic message. Its own test binary: the test
//! installs a panic hook, which must come before any store is opened.

use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_core::{Corruption, Error, Store};
use rand::{Rng, SeedableRng};

/// Panics that reached the hook (the default hook would have printed them).
static PRINTED: AtomicUsize = AtomicUsize::new(0);

fn count_printed_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PRINTED.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

#[test]
fn damaged_and_truncated_files_give_errors_and_print_no_panic() {
    count_printed_panics();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store.redb");
    {
        let store = Store::open(dir.path()).expect("open");
        let core = store.named("c").expect("core");
        let blocks: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("block number {i} ").repeat(20).into_bytes())
            .collect();
        for batch in blocks.chunks(50) {
            core.append_batch(batch).expect("append");
        }
    }
    let pristine = std::fs::read(&file).expect("read");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut errors, mut caught) = (0, 0);
    let attempt = |bytes: &[u8], errors: &mut usize, caught: &mut usize| {
        std::fs::write(&file, bytes).expect("write");
        let result = Store::open(dir.path()).and_then(|s| {
            s.list()?;
            let core = s.named("c")?;
            for i in 0..core.info()?.length {
                let _ = core.get(i);
            }
            Ok(())
        });
        if let Err(e) = result {
            *errors += 1;
            if let Error::Corrupt(Corruption::Database(msg)) = &e {
                assert!(msg.contains("store.redb"), "{msg}");
                *caught += usize::from(msg.contains("could not be read"));
            }
        }
    };
    for cut in [1, 100, 4096, pristine.len() / 2, pristine.len() - 1] {
        attempt(&pristine[..cut], &mut errors, &mut caught);
    }
    // Flip bits until some damage made redb panic (about one flip pattern
    // in 40 does; the store's random keys change which).
    for round in 0..600 {
        if caught > 0 && round >= 30 {
            break;
        }
        let mut bytes = pristine.clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        attempt(&bytes, &mut errors, &mut caught);
    }
    assert!(errors > 5, "damage went unnoticed");
    // Some damage makes redb panic (its consistency assertions): caught,
    // turned into an error, and never printed.
    assert!(caught > 0, "no panic was caught, the test shows nothing");
    assert_eq!(PRINTED.load(Ordering::SeqCst), 0, "a panic was printed");
}
