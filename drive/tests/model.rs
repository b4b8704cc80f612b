//! The drive against a model (a map path -> file bytes or symlink target):
//! random puts, deletes, symlinks, batches and checkouts, checked after
//! every step through entries, reads and listings.

use std::collections::BTreeMap;

use hyper_core::Store;
use hyper_drive::{Drive, Error, FileMeta, Kind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug, PartialEq)]
enum Node {
    File(Vec<u8>),
    Link(String),
}

type Model = BTreeMap<String, Node>;

const NAMES: [&str; 4] = ["a", "b", "ü", "d.txt"];

fn random_path(rng: &mut StdRng) -> String {
    let depth = rng.random_range(1..=3);
    (0..depth)
        .map(|_| format!("/{}", NAMES[rng.random_range(0..NAMES.len())]))
        .collect()
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let n = match rng.random_range(0..10) {
        0 => 0,
        1 => rng.random_range(60_000..300_000),
        _ => rng.random_range(1..2_000),
    };
    // Few distinct contents, so chunks repeat across files and versions.
    let seed = rng.random_range(0..6u8);
    (0..n)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
        .collect()
}

/// Whether `path` may hold an entry in `model`: nothing above it, nothing
/// below it.
fn fits(model: &Model, path: &str) -> bool {
    let mut above = String::new();
    for seg in path
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .split_last()
        .map(|x| x.1.to_vec())
        .unwrap_or_default()
    {
        above.push('/');
        above.push_str(seg);
        if model.contains_key(&above) {
            return false;
        }
    }
    let prefix = format!("{path}/");
    !model.keys().any(|k| k.starts_with(&prefix))
}

enum Op {
    Put(String, Vec<u8>),
    Link(String, String),
    Del(String),
}

fn random_op(rng: &mut StdRng, model: &Model) -> Op {
    match rng.random_range(0..10) {
        0..=5 => Op::Put(random_path(rng), random_bytes(rng)),
        6 => Op::Link(
            random_path(rng),
            NAMES[rng.random_range(0..NAMES.len())].to_string(),
        ),
        _ => match model.keys().nth(rng.random_range(0..model.len().max(1))) {
            Some(k) => Op::Del(k.clone()),
            None => Op::Del(random_path(rng)),
        },
    }
}

/// Applies `op` to a batch and the model; false if the drive refused it
/// (which must be exactly when the model says it does not fit).
fn apply(batch: &mut hyper_drive::Batch<'_>, model: &mut Model, op: &Op) -> bool {
    let m = FileMeta::default();
    let (path, result) = match op {
        Op::Put(p, bytes) => (p, batch.put(p, bytes, &m).map(|_| ())),
        Op::Link(p, t) => (p, batch.symlink(p, t, &m)),
        Op::Del(p) => (p, batch.del(p)),
    };
    let allowed = matches!(op, Op::Del(_)) || fits(model, path);
    match (&result, allowed) {
        (Ok(()), true) => {}
        (Err(Error::NotAFolder(_) | Error::IsAFolder(_)), false) => return false,
        other => panic!(
            "{path}: drive said {:?}, model allowed {}",
            other.0, other.1
        ),
    }
    match op {
        Op::Put(p, b) => model.insert(p.clone(), Node::File(b.clone())),
        Op::Link(p, t) => model.insert(p.clone(), Node::Link(t.clone())),
        Op::Del(p) => model.remove(p),
    };
    true
}

fn check(drive: &Drive, model: &Model) -> Result<(), Error> {
    let listed: Vec<String> = drive
        .list("/", true, None)?
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    // In path order: the model's order (UTF-8 byte order is code point
    // order), so a listing out of order fails here.
    let want: Vec<String> = model.keys().cloned().collect();
    assert_eq!(listed, want);
    for (path, node) in model {
        let entry = drive.entry(path)?.expect("entry");
        match node {
            Node::File(bytes) => {
                assert_eq!(entry.kind(), Kind::File);
                assert_eq!(entry.size, bytes.len() as u64);
                assert_eq!(entry.hash, blake3::hash(bytes).as_bytes().to_vec());
                let mut s = drive.read_stream(path, 0, None)?;
                let mut got = Vec::new();
                while let Some(c) = s.next_chunk()? {
                    got.extend(c);
                }
                assert_eq!(&got, bytes, "{path}");
            }
            Node::Link(t) => {
                assert_eq!(entry.kind(), Kind::Symlink);
                assert_eq!(&entry.target, t);
            }
        }
    }
    Ok(())
}

#[test]
fn drive_matches_the_model() -> Result<(), Box<dyn std::error::Error>> {
    for seed in 0..3u64 {
        let dir = tempfile::tempdir()?;
        let drive = Drive::create(&Store::open(dir.path())?)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = Model::new();
        let mut history: Vec<(u64, Model)> = vec![(drive.version()?, model.clone())];
        for _ in 0..50 {
            let n = if rng.random_range(0..4) == 0 {
                rng.random_range(2..6)
            } else {
                1
            };
            let mut next = model.clone();
            let mut batch = drive.batch();
            let mut ok = true;
            for _ in 0..n {
                let op = random_op(&mut rng, &next);
                if !apply(&mut batch, &mut next, &op) {
                    ok = false;
                    break;
                }
            }
            if ok {
                batch.commit()?;
                model = next;
                history.push((drive.version()?, model.clone()));
            } else {
                drop(batch); // refused: nothing of it may show
            }
            check(&drive, &model)?;
            if rng.random_range(0..5) == 0 {
                let (v, old) = &history[rng.random_range(0..history.len())];
                check(&drive.checkout(*v)?, old)?;
            }
        }
        // Every historical version still reads as it was.
        for (v, old) in &history {
            check(&drive.checkout(*v)?, old)?;
        }
    }
    Ok(())
}
