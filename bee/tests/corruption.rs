//! Damaged bee blocks are clear errors, never a panic or a wrong answer:
//! garbage that does not decode, pointers past the end, a key pointer to a
//! deletion, a foreign or future header. And a bounded fuzz harness over the
//! block decoder and the walks (get, ranges both ways, diff, history, writes;
//! `HYPER_FUZZ_ITERS` scales it).

use hyper_bee::messages::{Entry, Header, Level};
use hyper_bee::{Bee, Error, RangeOptions};
use hyper_core::{Core, Store};
use prost::Message as _;
use rand::{Rng, SeedableRng};

fn core() -> (tempfile::TempDir, Store, Core) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let core = store.create_core().expect("core");
    (dir, store, core)
}

fn header() -> Vec<u8> {
    Header {
        protocol: "hyper-bee".into(),
        version: 1,
    }
    .encode_to_vec()
}

#[test]
fn a_core_that_is_not_a_bee_or_a_future_one_is_refused() {
    let (_d, _s, c) = core();
    c.append(b"hello, not a bee").expect("append");
    assert!(matches!(Bee::open(c), Err(Error::NotABee(_))));
    let (_d, _s, c) = core();
    c.append(
        &Header {
            protocol: "hyperbee".into(),
            version: 1,
        }
        .encode_to_vec(),
    )
    .expect("append");
    assert!(matches!(Bee::open(c), Err(Error::NotABee(_))));
    let (_d, _s, c) = core();
    c.append(
        &Header {
            protocol: "hyper-bee".into(),
            version: 2,
        }
        .encode_to_vec(),
    )
    .expect("append");
    assert!(matches!(Bee::open(c), Err(Error::UnsupportedVersion(2))));
}

#[test]
fn garbage_and_bad_pointers_are_corruption_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff, 0xff, 0xff], "does not decode"),
        (
            Entry {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                deleted: false,
                levels: vec![Level {
                    keys: vec![1],
                    child_blocks: vec![7, 8],
                    child_levels: vec![0, 0],
                }],
            }
            .encode_to_vec(),
            "child past the end",
        ),
        (
            Entry {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                deleted: false,
                levels: vec![Level {
                    keys: vec![5],
                    child_blocks: vec![],
                    child_levels: vec![],
                }],
            }
            .encode_to_vec(),
            "key past the end",
        ),
        (
            Entry {
                key: b"a".to_vec(),
                value: vec![],
                deleted: true,
                levels: vec![Level {
                    keys: vec![1],
                    child_blocks: vec![],
                    child_levels: vec![],
                }],
            }
            .encode_to_vec(),
            "key pointer to a deletion",
        ),
        (
            Entry {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                deleted: false,
                levels: vec![Level {
                    keys: vec![1, 1],
                    child_blocks: vec![1],
                    child_levels: vec![0],
                }],
            }
            .encode_to_vec(),
            "children out of number",
        ),
    ];
    for (block, what) in cases {
        let (_d, _s, c) = core();
        c.append_batch(&[header(), block]).expect("append");
        let bee = Bee::open(c).expect("header is fine");
        let got = bee.get(b"a");
        assert!(matches!(got, Err(Error::Corrupt { .. })), "{what}: {got:?}");
        let ranged = bee.range(&RangeOptions::default());
        assert!(
            matches!(ranged, Err(Error::Corrupt { .. })),
            "{what}: {ranged:?}"
        );
    }
}

#[test]
fn fuzz_block_decoder_and_walk() {
    let iters: usize = std::env::var("HYPER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(400, |n: usize| n / 50);
    // A real bee's blocks as seeds.
    let (_d, s, c) = core();
    let bee = Bee::open(c.clone()).expect("bee");
    let mut batch = bee.batch();
    for i in 0..60u32 {
        batch.put(format!("key{i:03}").as_bytes(), &i.to_le_bytes());
    }
    batch.commit().expect("commit");
    bee.del(b"key007").expect("del");
    let length = c.info().expect("info").length;
    let blocks: Vec<Vec<u8>> = (1..length).map(|i| c.get(i).expect("block")).collect();
    drop((bee, s));
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for _ in 0..iters {
        let (_d2, _s2, target) = core();
        let mut copy = vec![header()];
        for b in &blocks {
            let mut b = b.clone();
            if rng.random_bool(0.2) && !b.is_empty() {
                let at = rng.random_range(0..b.len());
                match rng.random_range(0..3) {
                    0 => b[at] ^= 1 << rng.random_range(0..8),
                    1 => b[at] = rng.random(),
                    _ => b.truncate(at),
                }
            }
            copy.push(b);
        }
        target.append_batch(&copy).expect("append");
        let bee = Bee::open(target).expect("header intact");
        // Any answer or a typed error; never a panic or a hang.
        let _ = bee.get(b"key030");
        let _ = bee.range(&RangeOptions {
            limit: Some(100),
            ..Default::default()
        });
        let _ = bee.range(&RangeOptions {
            reverse: true,
            gt: Some(b"key010".to_vec()),
            ..Default::default()
        });
        let _ = bee.diff(length / 2);
        let _ = bee.history(0..u64::MAX, true);
        let _ = bee.get_by_seq(length / 3);
        let _ = bee.put(b"key999", b"x");
        let _ = bee.del(b"key001");
    }
}
