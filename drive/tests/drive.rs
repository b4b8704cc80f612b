//! A drive on real stores: files, symlinks, folders, ranges, dedup,
//! versions, clearing, and a sparse replica fed by verified proofs.

mod common;

use common::{ProofFetch, block_on};
use hyper_core::Store;
use hyper_drive::{ChildKind, Drive, Error, FileMeta, Ignore, Kind};
use rand::{Rng, SeedableRng};

type R = Result<(), Box<dyn std::error::Error>>;

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

/// An empty replica of `writer` in the store `dir/r` (its header fetched),
/// and the fetch that feeds it from the writer's cores.
fn sparse_replica(
    dir: &std::path::Path,
    writer: &Drive,
) -> Result<(ProofFetch, Drive), Box<dyn std::error::Error>> {
    let store = Store::open(dir.join("r"))?;
    let fetch = ProofFetch::new(&[writer.metadata(), writer.blobs()]);
    let replica = block_on(hyper_drive::fetch::open_replica(
        &store,
        &writer.key(),
        &fetch,
    ))?;
    Ok((fetch, replica))
}

/// A new drive in a store in a temp folder (kept while the folder lives).
fn fresh() -> Result<(tempfile::TempDir, Drive), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let drive = Drive::create(&Store::open(dir.path())?)?;
    Ok((dir, drive))
}

fn meta(mode: u32, mtime_ns: i64) -> FileMeta {
    FileMeta {
        mode,
        mtime_ns,
        metadata: b"app".to_vec(),
    }
}

#[test]
fn files_round_trip_with_their_stat() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let drive = Drive::create(&store)?;
    let e = drive.put("a/b.txt", b"hello", &meta(0o755, 1_700_000_000_123_456_789))?;
    assert_eq!(drive.get("/a/b.txt")?, Some(b"hello".to_vec()));
    let stored = drive.entry("/a//b.txt")?.ok_or("no entry")?;
    assert_eq!(stored, e);
    assert_eq!(
        (stored.size, stored.mode, stored.mtime_ns),
        (5, 0o755, 1_700_000_000_123_456_789)
    );
    assert!(stored.executable());
    assert_eq!(stored.hash, blake3::hash(b"hello").as_bytes().to_vec());
    assert_eq!(stored.metadata, b"app");
    assert!(drive.exists("/a/b.txt")? && !drive.exists("/a")?);
    drive.put("/empty", b"", &FileMeta::default())?;
    assert_eq!(drive.get("/empty")?, Some(Vec::new()));
    assert!(drive.del("/a/b.txt")? && !drive.del("/a/b.txt")?);
    assert_eq!(drive.get("/a/b.txt")?, None);
    // Reopened from the store by key: same drive, same blobs core.
    let key = drive.key();
    drop(drive);
    let again = Drive::open(&store, &key)?;
    assert_eq!(again.get("/empty")?, Some(Vec::new()));
    assert!(again.writable()?);
    Ok(())
}

#[test]
fn bad_paths_and_shapes_are_clear_errors() -> R {
    let (_dir, drive) = fresh()?;
    drive.put("/f", b"x", &FileMeta::default())?;
    drive.put("/d/x", b"x", &FileMeta::default())?;
    let m = FileMeta::default();
    assert!(matches!(
        drive.put("/", b"x", &m),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        drive.put("/../x", b"x", &m),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        drive.put("/a\0b", b"x", &m),
        Err(Error::InvalidPath { .. })
    ));
    match drive.put("/f/g", b"x", &m) {
        Err(Error::NotAFolder(p)) => assert_eq!(p, "/f"),
        other => panic!("{other:?}"),
    }
    match drive.put("/d", b"x", &m) {
        Err(Error::IsAFolder(p)) => assert_eq!(p, "/d"),
        other => panic!("{other:?}"),
    }
    // Deleting the only file of a folder in the same batch frees the name.
    let mut b = drive.batch();
    b.del("/d/x")?;
    b.put("/d", b"now a file", &m)?;
    b.commit()?;
    assert_eq!(drive.get("/d")?, Some(b"now a file".to_vec()));
    Ok(())
}

#[test]
fn symlinks_resolve_posix_style_and_loops_end() -> R {
    let (_dir, drive) = fresh()?;
    drive.put("/a/c", b"sibling", &FileMeta::default())?;
    drive.put("/x/y", b"deep", &FileMeta::default())?;
    drive.symlink("/a/b", "c")?; // relative to the link's folder: /a/c
    drive.symlink("/a/up", "../x")?; // a folder link
    drive.symlink("/abs", "/a/b")?;
    assert_eq!(drive.get("/a/b")?, Some(b"sibling".to_vec()));
    assert_eq!(drive.get("/abs")?, Some(b"sibling".to_vec()));
    assert_eq!(drive.get("/a/up/y")?, Some(b"deep".to_vec()));
    let (at, _) = drive.stat("/a/up/y")?.ok_or("unresolved")?;
    assert_eq!(at.as_str(), "/x/y");
    assert_eq!(drive.entry("/a/b")?.map(|e| e.kind()), Some(Kind::Symlink));
    drive.symlink("/l1", "l2")?;
    drive.symlink("/l2", "l1")?;
    assert!(matches!(drive.get("/l1"), Err(Error::SymlinkLoop(p)) if p == "/l1"));
    // A chain of exactly 16 links resolves; 17 do not.
    for i in 0..17 {
        drive.symlink(&format!("/c{i}"), &format!("c{}", i + 1))?;
    }
    drive.put("/c17", b"end", &FileMeta::default())?;
    assert_eq!(drive.get("/c1")?, Some(b"end".to_vec()));
    assert!(matches!(drive.get("/c0"), Err(Error::SymlinkLoop(_))));
    drive.symlink("/esc", "../../x")?;
    assert!(matches!(drive.get("/esc"), Err(Error::InvalidPath { .. })));
    Ok(())
}

#[test]
fn listings_and_typed_children() -> R {
    let (_dir, drive) = fresh()?;
    let m = FileMeta::default();
    for p in [
        "/b.txt",
        "/a/1",
        "/a/2",
        "/a/deep/3",
        "/a-b",
        "/logs/x.log",
        "/z",
    ] {
        drive.put(p, p.as_bytes(), &m)?;
    }
    drive.symlink("/link", "b.txt")?;
    let kinds: Vec<(String, ChildKind)> = drive
        .readdir("/")?
        .into_iter()
        .map(|c| (c.name, c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a".to_string(), ChildKind::Folder),
            ("a-b".into(), ChildKind::File),
            ("b.txt".into(), ChildKind::File),
            ("link".into(), ChildKind::Symlink),
            ("logs".into(), ChildKind::Folder),
            ("z".into(), ChildKind::File),
        ]
    );
    let paths = |v: Vec<(hyper_drive::DrivePath, hyper_drive::Entry)>| {
        v.into_iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(drive.list("/a", true, None)?),
        ["/a/1", "/a/2", "/a/deep/3"]
    );
    assert_eq!(paths(drive.list("/a", false, None)?), ["/a/1", "/a/2"]);
    let ignore = Ignore::new(&["*.log", "deep/"])?;
    assert_eq!(paths(drive.list("/", true, Some(&ignore))?).len(), 6);
    assert_eq!(
        paths(drive.list("/a", true, Some(&ignore))?),
        ["/a/1", "/a/2"]
    );
    assert!(drive.readdir("/nothing")?.is_empty());
    Ok(())
}

#[test]
fn byte_ranges_are_half_open_and_checked() -> R {
    let (_dir, drive) = fresh()?;
    let data = random(1_500_000, 7);
    drive.put("/big", &data, &FileMeta::default())?;
    let mut w = drive.write_stream(false)?;
    for part in data.chunks(100_000) {
        w.write(part)?;
    }
    let content = w.finish()?;
    assert!(matches!(
        content.location,
        Some(hyper_drive::messages::Location::Contiguous(_))
    ));
    let mut b = drive.batch();
    b.put_entry("/fixed", content.entry(&FileMeta::default()))?;
    b.commit()?;
    for path in ["/big", "/fixed"] {
        for (start, end) in [
            (0u64, 1_500_000u64),
            (1, 2),
            (65_535, 65_537),
            (300_000, 1_200_001),
            (9, 9),
        ] {
            let mut s = drive.read_stream(path, start, Some(end))?;
            let mut got = Vec::new();
            while let Some(c) = s.next_chunk()? {
                assert!(c.len() <= hyper_drive::MAX_CHUNK);
                got.extend(c);
            }
            assert_eq!(
                got,
                &data[start as usize..end as usize],
                "{path} {start}..{end}"
            );
        }
        assert!(matches!(
            drive.read_stream(path, 5, Some(4)),
            Err(Error::BadRange { .. })
        ));
        assert!(matches!(
            drive.read_stream(path, 0, Some(1_500_001)),
            Err(Error::BadRange { .. })
        ));
    }
    assert!(matches!(
        drive.read_stream("/none", 0, None),
        Err(Error::NotFound(_))
    ));
    Ok(())
}

#[test]
fn dedup_spans_files_and_versions_and_clear_keeps_shared_blocks() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let drive = Drive::create(&store)?;
    let data = random(2_000_000, 3);
    drive.put("/one", &data, &FileMeta::default())?;
    let blocks = drive.blobs().info()?.length;
    drive.put("/two", &data, &FileMeta::default())?; // another path: no new block
    assert_eq!(drive.blobs().info()?.length, blocks);
    let mut edited = data.clone();
    edited.splice(1_000_000..1_000_000, *b"an edit in the middle");
    drive.put("/one", &edited, &FileMeta::default())?;
    let added = drive.blobs().info()?.length - blocks;
    assert!(added <= 3, "an edit added {added} blocks");
    // The index survives a reopen (another process, the same store).
    let key = drive.key();
    drop(drive);
    let drive = Drive::open(&store, &key)?;
    let before = drive.blobs().info()?.length;
    drive.put("/three", &edited, &FileMeta::default())?;
    assert_eq!(drive.blobs().info()?.length, before);
    // Clearing /one keeps every block /two or /three still use.
    assert_eq!(drive.clear("/one")?, 0);
    drive.del("/three")?;
    let dropped = drive.clear("/one")?;
    assert!((1..=3).contains(&dropped), "{dropped}");
    assert!(!drive.has("/one")? && drive.has("/two")?);
    assert_eq!(drive.get("/two")?, Some(data));
    assert!(matches!(drive.get("/one"), Err(Error::Missing { .. })));
    drive.clear_all()?;
    assert!(!drive.has("/two")?);
    let (meta, blobs) = (drive.metadata().key(), drive.blobs().key());
    drive.purge()?;
    assert!(store.core(&meta).is_err() && store.core(&blobs).is_err());
    Ok(())
}

#[test]
fn the_chunk_index_saves_its_tail_as_blocks_come_and_ignores_a_bad_one() -> R {
    const TAIL: &str = "hyper-drive/chunks/tail";
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let key = Drive::create(&store)?.key();
    let drive = Drive::open(&store, &key)?;
    // A small file: too few new blocks to be worth a write of the tail.
    drive.put("/small", b"a few bytes", &FileMeta::default())?;
    assert_eq!(drive.blobs().user_data(TAIL)?, None);
    let small = drive.blobs().info()?.length;
    let data = random(8_000_000, 9);
    drive.put("/a", &data, &FileMeta::default())?;
    let blocks = drive.blobs().info()?.length;
    let data_blocks = blocks - small;
    assert!(data_blocks > 64, "{data_blocks} blocks");
    let tail = drive.blobs().user_data(TAIL)?.ok_or("no saved tail")?;
    assert_eq!(tail.len() as u64, 8 + 32 * blocks, "a hash per block");
    assert_eq!(tail[..8], 0u64.to_le_bytes(), "from block 0");
    drive.put("/small2", b"more bytes", &FileMeta::default())?;
    assert_eq!(drive.blobs().user_data(TAIL)?, Some(tail.clone()));
    let blocks = drive.blobs().info()?.length;
    drop(drive);
    // Equal content after a reopen dedups, whether the index comes from
    // the saved tail or, with a tail that is damaged or for another first
    // block, from hashing the blocks again.
    let damaged = vec![1, 2, 3];
    let elsewhere = [&7u64.to_le_bytes()[..], &tail[8..]].concat();
    for (n, saved) in [&tail, &damaged, &elsewhere].into_iter().enumerate() {
        let drive = Drive::open(&store, &key)?;
        drive.blobs().set_user_data(TAIL, Some(saved))?;
        let drive = Drive::open(&store, &key)?;
        drive.put(&format!("/copy{n}"), &data, &FileMeta::default())?;
        assert_eq!(drive.blobs().info()?.length, blocks, "case {n}");
    }
    // The saved hashes are what a reopen trusts: zeroed ones (no hash
    // known) find nothing, so the content is stored again, never wrongly.
    let zeroed = [&0u64.to_le_bytes()[..], &vec![0; tail.len() - 8]].concat();
    Drive::open(&store, &key)?
        .blobs()
        .set_user_data(TAIL, Some(&zeroed))?;
    let drive = Drive::open(&store, &key)?;
    drive.put("/again", &data, &FileMeta::default())?;
    assert_eq!(drive.blobs().info()?.length, blocks + data_blocks);
    assert_eq!(drive.get("/again")?, Some(data));
    Ok(())
}

#[test]
fn versions_checkouts_and_diffs() -> R {
    let (_dir, drive) = fresh()?;
    let m = FileMeta::default();
    drive.put("/a/1", b"one", &m)?;
    let v1 = drive.version()?;
    drive.put("/a/2", b"two", &m)?;
    drive.put("/b", b"bee", &m)?;
    drive.put("/a/1", b"uno", &m)?;
    let old = drive.checkout(v1)?;
    assert_eq!(old.get("/a/1")?, Some(b"one".to_vec()));
    assert_eq!(old.get("/b")?, None);
    assert!(!old.writable()? && matches!(old.put("/x", b"", &m), Err(Error::ReadOnly)));
    let d = drive.diff(v1, "/a")?;
    let summary: Vec<(String, bool, bool)> = d
        .iter()
        .map(|d| (d.path.to_string(), d.now.is_some(), d.then.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            ("/a/1".to_string(), true, true),
            ("/a/2".to_string(), true, false)
        ]
    );
    assert_eq!(drive.diff(v1, "/")?.len(), 3);
    assert!(matches!(
        drive.checkout(999),
        Err(Error::NoSuchVersion { .. })
    ));
    Ok(())
}

#[test]
fn a_sparse_replica_fetches_one_files_path_and_blocks_only() -> R {
    let dir = tempfile::tempdir()?;
    let writer = Drive::create(&Store::open(dir.path().join("w"))?)?;
    let m = FileMeta::default();
    let mut b = writer.batch();
    for i in 0..300 {
        b.put(
            &format!("/dir{}/file{i}.bin", i % 10),
            &random(20_000, i),
            &m,
        )?;
    }
    b.commit()?;
    let big = random(3_000_000, 99);
    writer.put("/big.bin", &big, &m)?;
    let (fetch, replica) = sparse_replica(dir.path(), &writer)?;
    assert_eq!(replica.blobs().key(), writer.blobs().key());
    let got = block_on(replica.with_fetch(&fetch, |d| d.get("/dir3/file133.bin")))?;
    assert_eq!(got, Some(random(20_000, 133)));
    let meta_blocks = replica.metadata().info()?.blocks_stored;
    let blob_blocks = replica.blobs().info()?.blocks_stored;
    assert!(
        meta_blocks <= 12,
        "{meta_blocks} of {} metadata blocks",
        writer.metadata().info()?.length
    );
    assert_eq!(blob_blocks, 1, "one 20 kB file is one chunk");
    // A byte range of the big file moves only the blocks under it.
    let range = block_on(replica.with_fetch(&fetch, |d| {
        let mut s = d.read_stream("/big.bin", 1_000_000, Some(1_100_000))?;
        let mut out = Vec::new();
        while let Some(c) = s.next_chunk()? {
            out.extend(c);
        }
        Ok(out)
    }))?;
    assert_eq!(range, &big[1_000_000..1_100_000]);
    let moved = replica.blobs().info()?.blocks_stored - blob_blocks;
    assert!(moved <= 3, "{moved} blocks for 100 kB");
    Ok(())
}

#[test]
fn a_core_that_is_not_a_drive_is_refused() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let bee = hyper_bee::Bee::open(store.named("plain")?)?;
    bee.put(b"/x", b"not an entry")?;
    match Drive::open(&store, &bee.core().key()) {
        Err(Error::NotADrive { key, .. }) => assert_eq!(key, bee.core().key()),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("opened a bee as a drive".into()),
    }
    Ok(())
}

#[test]
fn a_lying_source_is_refused_and_stores_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let writer = Drive::create(&Store::open(dir.path().join("w"))?)?;
    let m = FileMeta::default();
    writer.put("/a.bin", &random(50_000, 1), &m)?;
    // A liar with its own cores answers for the writer's blobs core.
    let liar = Drive::create(&Store::open(dir.path().join("l"))?)?;
    liar.put("/a.bin", &random(50_000, 2), &m)?;
    let (honest, replica) = sparse_replica(dir.path(), &writer)?;
    let lying = ForgedFetch {
        inner: ProofFetch::new(&[writer.metadata()]),
        forged: liar.blobs().clone(),
    };
    let result = block_on(replica.with_fetch(&lying, |d| d.get("/a.bin")));
    assert!(
        matches!(result, Err(Error::Core(hyper_core::Error::Verify(_)))),
        "{result:?}"
    );
    assert_eq!(replica.blobs().info()?.blocks_stored, 0);
    // The honest writer's bytes still arrive afterwards.
    assert_eq!(
        block_on(replica.with_fetch(&honest, |d| d.get("/a.bin")))?,
        Some(random(50_000, 1))
    );
    Ok(())
}

#[test]
fn a_block_that_contradicts_its_entry_is_corrupt() -> R {
    let (_dir, drive) = fresh()?;
    drive.put("/a", &random(1000, 1), &FileMeta::default())?;
    let mut e = drive.entry("/a")?.ok_or("entry")?;
    // Claim block 0 (1,000 bytes) holds 999: the sizes still add up.
    e.size = 999;
    e.location = Some(hyper_drive::messages::Location::Chunks(
        hyper_drive::messages::ChunkList {
            runs: vec![hyper_drive::messages::Run {
                first_block: 0,
                lengths: vec![999],
            }],
        },
    ));
    let mut b = drive.batch();
    b.put_entry("/b", e)?;
    b.commit()?;
    // The error names the file whose entry the block contradicts.
    match drive.get("/b") {
        Err(e @ Error::Corrupt { .. }) => assert_eq!(
            e.to_string(),
            "corrupt drive entry at /b (block 0 of the blobs core): \
             a block's length differs from its entry's"
        ),
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Answers for one core with proofs from another core (same shape, other
/// signer): everything it sends must fail verification.
struct ForgedFetch {
    inner: ProofFetch,
    forged: hyper_core::Core,
}

impl hyper_drive::Fetch for ForgedFetch {
    async fn fetch(&self, core: &hyper_core::Core, index: u64) -> hyper_drive::Result<()> {
        if self.inner.sources.iter().any(|s| s.key() == core.key()) {
            return self.inner.fetch(core, index).await;
        }
        let info = core.info()?;
        let request = hyper_core::ProofRequest {
            block: Some(hyper_core::NodeRequest { index, nodes: 64 }),
            upgrade: Some(hyper_core::UpgradeRequest {
                start: info.length,
                fork: info.fork,
            }),
            manifest: true,
            ..Default::default()
        };
        core.apply(&[self.forged.proof(&request)?])?;
        Ok(())
    }
}

#[test]
fn download_fetches_a_subtree_with_exact_progress_and_watch_sees_it_change() -> R {
    let dir = tempfile::tempdir()?;
    let writer = Drive::create(&Store::open(dir.path().join("w"))?)?;
    let m = FileMeta::default();
    for i in 0..20 {
        writer.put(
            &format!("/{}/f{i}", if i % 2 == 0 { "even" } else { "odd" }),
            &random(30_000, i),
            &m,
        )?;
    }
    let (fetch, replica) = sparse_replica(dir.path(), &writer)?;
    let mut seen = Vec::new();
    let done = block_on(replica.download("/even", &fetch, |p| seen.push(*p)))?;
    assert_eq!(
        (done.files, done.total_files, done.bytes, done.total_bytes),
        (10, 10, 300_000, 300_000)
    );
    assert_eq!(seen.len(), 10);
    assert!(seen.windows(2).all(|w| w[0].bytes < w[1].bytes));
    assert!(replica.has("/even/f4")?);
    assert!(!block_on(replica.with_fetch(&fetch, |d| d.has("/odd/f5")))?);
    let even_blocks: u64 = replica
        .list("/even", true, None)?
        .iter()
        .map(|(_, e)| e.blocks().iter().map(|r| r.end - r.start).sum::<u64>())
        .sum();
    assert_eq!(
        replica.blobs().info()?.blocks_stored,
        even_blocks,
        "the subtree's blocks, no others"
    );
    // watch wakes for writes under its folder only.
    let mut w = writer.watch("/odd")?;
    writer.put("/even/new", b"x", &m)?;
    assert_eq!(w.next(std::time::Duration::from_millis(200))?, None);
    writer.put("/odd/new", b"y", &m)?;
    assert_eq!(
        w.next(std::time::Duration::from_secs(5))?,
        Some(writer.version()?)
    );
    Ok(())
}

/// Runs `f` on another thread; an error if it takes more than 20 s (a
/// walk of every block a hostile entry claims would never end).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .map_err(|_| "still running after 20 s".to_string())
}

#[test]
fn entries_claiming_huge_files_are_errors_not_an_abort_or_an_endless_walk() -> R {
    use hyper_drive::messages::{ChunkList, Contiguous, Location, Run};
    let (dir, drive) = fresh()?;
    drive.put("/small", b"real bytes", &FileMeta::default())?;
    let base = drive.entry("/small")?.ok_or("entry")?;
    // Entries a writer signed that pass the decode checks (the lengths add
    // up) but name far more bytes than exist: 2^40 fixed blocks (64 PiB),
    // and 4,096 chunks of 4 GiB (16 TiB).
    let blocks = 1u64 << 40;
    let contiguous = hyper_drive::Entry {
        size: (blocks - 1) * 65_536 + 1,
        location: Some(Location::Contiguous(Contiguous {
            first_block: 0,
            block_count: blocks,
            block_size: 65_536,
        })),
        ..base.clone()
    };
    let chunks = hyper_drive::Entry {
        size: 4_096 * u64::from(u32::MAX),
        location: Some(Location::Chunks(ChunkList {
            runs: vec![Run {
                first_block: 0,
                lengths: vec![u32::MAX; 4_096],
            }],
        })),
        ..base
    };
    let mut b = drive.batch();
    b.put_entry("/contiguous", contiguous)?;
    b.put_entry("/chunks", chunks)?;
    b.commit()?;
    let done = within_20s(move || -> Result<(), String> {
        let _dir = dir;
        for path in ["/contiguous", "/chunks"] {
            let e = drive
                .entry(path)
                .map_err(|e| e.to_string())?
                .ok_or("entry")?;
            if e.blocks().len() != 1 {
                return Err(format!("{path}: {:?}", e.blocks()));
            }
            // The block lengths contradict the claim: an error, no allocation
            // of the claimed size.
            if drive.get(path).is_ok() {
                return Err(format!("{path}: read"));
            }
            let mut s = drive
                .read_stream(path, 1 << 30, None)
                .map_err(|e| e.to_string())?;
            if s.next_chunk().is_ok() {
                return Err(format!("{path}: streamed"));
            }
            if drive.has(path).map_err(|e| e.to_string())? {
                return Err(format!("{path}: has"));
            }
        }
        // Clearing walks ranges, not every claimed block; /small's block is
        // used by both hostile entries, so it stays.
        drive.clear("/chunks").map_err(|e| e.to_string())?;
        drive.info().map_err(|e| e.to_string())?;
        if drive.get("/small").map_err(|e| e.to_string())? != Some(b"real bytes".to_vec()) {
            return Err("/small lost its block".into());
        }
        Ok(())
    })?;
    done.map_err(Into::into)
}

#[test]
fn a_folders_diff_reads_only_that_folders_part_of_the_tree() -> R {
    let dir = tempfile::tempdir()?;
    let writer = Drive::create(&Store::open(dir.path().join("w"))?)?;
    let m = FileMeta::default();
    let mut b = writer.batch();
    for i in 0..300 {
        b.put(&format!("/a/f{i:03}"), b"old", &m)?;
    }
    for i in 0..10 {
        b.put(&format!("/b/g{i}"), b"old", &m)?;
    }
    b.put("/b", b"", &m).err().ok_or("/b is a folder")?;
    b.commit()?;
    let v1 = writer.version()?;
    // 200 changes in /a, one in /b, and a file beside /b that sorts inside
    // its key range ("/b-c" < "/b/..." < "/b0").
    let mut b = writer.batch();
    for i in 0..200 {
        b.put(&format!("/a/f{i:03}"), b"new", &m)?;
    }
    b.put("/b/g3", b"new", &m)?;
    b.put("/b-c", b"new", &m)?;
    b.commit()?;
    let (fetch, replica) = sparse_replica(dir.path(), &writer)?;
    let before = fetch.fetched.get();
    let d = block_on(replica.with_fetch(&fetch, |d| d.diff(v1, "/b")))?;
    let paths: Vec<String> = d.iter().map(|d| d.path.to_string()).collect();
    assert_eq!(paths, ["/b/g3"]);
    let fetched = fetch.fetched.get() - before;
    // The whole bee's diff loads each of the 200 changed entries in /a.
    assert!(fetched < 40, "{fetched} blocks for one change in /b");
    assert_eq!(writer.diff(v1, "/")?.len(), 202);
    Ok(())
}

#[test]
fn truncate_takes_the_drive_back_to_a_version() -> R {
    let (_dir, drive) = fresh()?;
    let m = FileMeta::default();
    drive.put("/a", b"first", &m)?;
    let v = drive.version()?;
    drive.put("/b", b"second", &m)?;
    let blocks = drive.blobs().info()?.length;
    drive.del("/a")?;
    let old = drive.checkout(v)?;
    assert!(matches!(old.truncate(v), Err(Error::ReadOnly)));
    for bad in [0, 1, drive.version()? + 1] {
        match drive.truncate(bad) {
            Err(e @ Error::NoSuchVersion { .. }) => {
                assert!(
                    e.to_string().contains(&format!("version {bad} is not")),
                    "{e}"
                )
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    drive.truncate(v)?;
    assert_eq!(drive.version()?, v);
    assert_eq!(drive.get("/a")?, Some(b"first".to_vec()));
    assert_eq!(drive.get("/b")?, None);
    assert_eq!(drive.list("/", true, None)?.len(), 1);
    // The blobs keep their blocks: writing /b's content again adds none.
    drive.put("/c", b"second", &m)?;
    assert_eq!(drive.blobs().info()?.length, blocks);
    assert_eq!(drive.get("/c")?, Some(b"second".to_vec()));
    drive.truncate(drive.version()?)?; // the current version: nothing cut
    assert_eq!(drive.version()?, v + 1);
    Ok(())
}
