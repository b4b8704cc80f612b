//! Mirrors between real folders and drives on real stores: random trees
//! round trip (empty files, exec bits, symlinks, deep and unicode paths),
//! re-mirrors move nothing, prune / dry run / ignores, exact progress, a
//! file that changes while it is read, odd names and symlink loops.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hyper_core::Store;
use hyper_drive::mirror::{self, MirrorOptions, Op, Side};
use hyper_drive::{Drive, Error, Folder, Ignore};
use proptest::prelude::*;

type R = Result<(), Box<dyn std::error::Error>>;

/// path -> (content or link target, is link, mode, mtime) of a local tree.
fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, bool, u32, i64)> {
    let mut out = BTreeMap::new();
    for e in walk(root) {
        let rel = e
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .to_string();
        let m = fs::symlink_metadata(&e).expect("stat");
        let mtime = m
            .modified()
            .expect("mtime")
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after")
            .as_nanos() as i64;
        if m.file_type().is_symlink() {
            let t = fs::read_link(&e)
                .expect("link")
                .to_string_lossy()
                .as_bytes()
                .to_vec();
            out.insert(rel, (t, true, 0, 0));
        } else {
            out.insert(
                rel,
                (
                    fs::read(&e).expect("read"),
                    false,
                    m.permissions().mode() & 0o777,
                    mtime,
                ),
            );
        }
    }
    out
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Item {
    File(Vec<u8>, bool),
    Link(String),
}

fn tree() -> impl Strategy<Value = BTreeMap<String, Item>> {
    let segment = prop_oneof![
        "[a-c]{1,3}",
        Just("ünï çødé".to_string()),
        Just("日本".to_string()),
        Just(".hidden".to_string())
    ];
    let path = proptest::collection::vec(segment, 1..7).prop_map(|s| s.join("/"));
    let item = prop_oneof![
        4 => (proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>()).prop_map(|(b, x)| Item::File(b, x)),
        1 => Just(Item::File(Vec::new(), false)),
        1 => "[a-z./]{1,8}".prop_map(Item::Link),
    ];
    proptest::collection::btree_map(path, item, 0..20)
}

fn write_tree(root: &Path, items: &BTreeMap<String, Item>) {
    fs::create_dir_all(root).expect("root");
    for (path, item) in items {
        let p = root.join(path);
        // Skip a path below something already written as a file.
        if p.ancestors().skip(1).any(|a| a.is_file() || a.is_symlink()) || p.exists() {
            continue;
        }
        if let Some(parent) = p.parent()
            && fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        match item {
            Item::File(bytes, exec) => {
                fs::write(&p, bytes).expect("write");
                fs::set_permissions(
                    &p,
                    fs::Permissions::from_mode(if *exec { 0o755 } else { 0o640 }),
                )
                .expect("chmod");
            }
            Item::Link(t) => std::os::unix::fs::symlink(t, &p).expect("symlink"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// folder -> drive -> folder keeps every file's bytes, exec bit, mtime
    /// and every symlink's target; mirroring again changes nothing.
    #[test]
    fn folders_round_trip_through_a_drive(items in tree()) {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_tree(&a, &items);
        let store = Store::open(dir.path().join("store")).expect("store");
        let drive = Drive::create(&store).expect("drive");
        let (fa, fb) = (Folder::new(&a), Folder::new(&b));
        let o = MirrorOptions::default();
        mirror::mirror(Side::Folder(&fa), Side::Drive(&drive), &o, |_| {}).expect("in");
        mirror::mirror(Side::Drive(&drive), Side::Folder(&fb), &o, |_| {}).expect("out");
        prop_assert_eq!(snapshot(&a), snapshot(&b));
        for (src, dst) in [(Side::Folder(&fa), Side::Drive(&drive)), (Side::Drive(&drive), Side::Folder(&fb))] {
            let again = mirror::mirror(src, dst, &o, |e| assert_eq!(e.action.op, Op::Equal)).expect("again");
            prop_assert_eq!(again.add + again.change + again.remove + again.bytes_added, 0);
        }
    }
}

#[test]
fn prune_dry_run_ignores_and_exact_progress() -> R {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("keep/deep"))?;
    fs::create_dir_all(src.join("target"))?;
    fs::write(src.join("keep/a.txt"), vec![1; 1000])?;
    fs::write(src.join("keep/deep/b.txt"), vec![2; 70_000])?;
    fs::write(src.join("debug.log"), b"noise")?;
    fs::write(src.join("target/out.o"), b"built")?;
    fs::write(src.join(".hyperignore"), "target/\n")?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    drive.put("/stale.txt", b"old", &hyper_drive::FileMeta::default())?;
    let folder = Folder::new(&src);
    let options = MirrorOptions {
        dry_run: true,
        prune: true,
        ignore: Ignore::new(&["*.log"])?,
        ..Default::default()
    };
    let mut events = Vec::new();
    let dry = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &options, |e| {
        events.push(e.clone())
    })?;
    assert_eq!((dry.add, dry.remove, dry.change), (3, 1, 0)); // .hyperignore, a.txt, b.txt; stale.txt
    assert_eq!(events[0].action.op, Op::Remove, "removals come first");
    assert!(
        drive.exists("/stale.txt")? && !drive.exists("/keep/a.txt")?,
        "a dry run writes nothing"
    );
    let total = 1000 + 70_000 + "target/\n".len() as u64; // .hyperignore's content
    assert_eq!(
        events.last().map(|e| (e.done_bytes, e.total_bytes)),
        Some((total, total))
    );
    let real = MirrorOptions {
        dry_run: false,
        ..options.clone()
    };
    let done = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &real, |_| {})?;
    assert_eq!(done, dry);
    let paths: Vec<String> = drive
        .list("/", true, None)?
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(paths, ["/.hyperignore", "/keep/a.txt", "/keep/deep/b.txt"]);
    // Touch one file's mtime only: tier 2 finds equal content, no bytes move.
    let f = fs::File::options()
        .write(true)
        .open(src.join("keep/a.txt"))?;
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))?;
    let again = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &real, |_| {})?;
    assert_eq!((again.change, again.bytes_added, again.equal), (1, 0, 2));
    Ok(())
}

/// File metadata with this mode and mtime.
fn meta(mode: u32, mtime_ns: i64) -> hyper_drive::FileMeta {
    hyper_drive::FileMeta {
        mode,
        mtime_ns,
        metadata: Vec::new(),
    }
}

#[test]
fn drive_to_drive_and_prune_into_a_folder() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let (a, b) = (Drive::create(&store)?, Drive::create(&store)?);
    let m = meta(0o755, 12345);
    a.put("/bin/tool", b"#!/bin/sh\necho hi\n", &m)?;
    a.symlink("/latest", "bin/tool")?;
    mirror::mirror(
        Side::Drive(&a),
        Side::Drive(&b),
        &MirrorOptions::default(),
        |_| {},
    )?;
    let e = b.entry("/bin/tool")?.ok_or("missing")?;
    assert_eq!((e.mode, e.mtime_ns), (0o755, 12345));
    assert_eq!(b.get("/latest")?, Some(b"#!/bin/sh\necho hi\n".to_vec()));
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("old/dir"))?;
    fs::write(out.join("old/dir/x"), b"x")?;
    let folder = Folder::new(&out);
    let s = mirror::mirror(
        Side::Drive(&b),
        Side::Folder(&folder),
        &MirrorOptions {
            prune: true,
            ..Default::default()
        },
        |_| {},
    )?;
    assert_eq!((s.add, s.remove), (2, 1));
    assert!(!out.join("old").exists(), "emptied folders go too");
    assert_eq!(fs::read_link(out.join("latest"))?, Path::new("bin/tool"));
    assert_eq!(
        fs::metadata(out.join("bin/tool"))?.permissions().mode() & 0o777,
        0o755
    );
    Ok(())
}

#[test]
fn a_file_changing_while_it_is_read_is_never_stored() -> R {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    fs::create_dir_all(&src)?;
    let busy = src.join("busy.bin");
    fs::write(&busy, vec![7u8; 6 << 20])?;
    fs::write(src.join("calm.txt"), b"calm")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop2, busy2) = (stop.clone(), busy.clone());
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = fs::File::options().append(true).open(&busy2).expect("open");
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            f.write_all(b"more").expect("append");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let result = mirror::mirror(
        Side::Folder(&Folder::new(&src)),
        Side::Drive(&drive),
        &MirrorOptions::default(),
        |_| {},
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().map_err(|_| "writer thread")?;
    match result {
        Err(Error::Changed(p)) => assert_eq!(p, busy),
        other => return Err(format!("expected a change error, got {other:?}").into()),
    }
    assert!(drive.entry("/busy.bin")?.is_none(), "nothing stored for it");
    Ok(())
}

#[test]
fn a_file_that_became_a_fifo_after_the_plan_is_a_change_not_a_hang() -> R {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    fs::create_dir_all(&src)?;
    fs::write(src.join("a.txt"), b"first")?;
    fs::write(src.join("b.txt"), b"second")?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let folder = Folder::new(&src);
    let options = MirrorOptions::default();
    let plan = mirror::plan(Side::Folder(&folder), Side::Drive(&drive), &options)?;
    // Between the plan and its apply, b.txt becomes a FIFO nobody writes.
    fs::remove_file(src.join("b.txt"))?;
    let made = std::process::Command::new("mkfifo")
        .arg(src.join("b.txt"))
        .status()?;
    assert!(made.success(), "mkfifo");
    let (tx, rx) = std::sync::mpsc::channel();
    let src2 = src.clone();
    std::thread::spawn(move || {
        let store = store;
        let drive = drive;
        let folder = Folder::new(&src2);
        let result = mirror::apply(
            &plan,
            Side::Folder(&folder),
            Side::Drive(&drive),
            &MirrorOptions::default(),
            |_| {},
        );
        let _ = tx.send((
            result.map(|_| ()),
            drive.entry("/b.txt").map(|e| e.is_none()),
        ));
        drop(store);
    });
    let (result, b_absent) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .map_err(|_| "the mirror hung on the FIFO")?;
    match result {
        Err(Error::Changed(p)) => assert_eq!(p, src.join("b.txt")),
        other => return Err(format!("expected a change error, got {other:?}").into()),
    }
    assert!(b_absent?, "nothing stored for the FIFO");
    Ok(())
}

#[test]
fn odd_names_and_symlink_loops_in_the_source() -> R {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    fs::create_dir_all(&src)?;
    std::os::unix::fs::symlink("b", src.join("a"))?;
    std::os::unix::fs::symlink("a", src.join("b"))?;
    let bad = src.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    fs::write(&bad, b"x")?;
    fs::write(src.join("back\\slash"), b"y")?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let folder = Folder::new(&src);
    let plan = mirror::plan(
        Side::Folder(&folder),
        Side::Drive(&drive),
        &MirrorOptions::default(),
    )?;
    assert_eq!(plan.skipped, [bad]);
    mirror::apply(
        &plan,
        Side::Folder(&folder),
        Side::Drive(&drive),
        &MirrorOptions::default(),
        |_| {},
    )?;
    assert_eq!(drive.entry("/a")?.map(|e| e.target), Some("b".to_string()));
    assert!(matches!(drive.get("/a"), Err(Error::SymlinkLoop(_))));
    assert_eq!(drive.get("/back\\slash")?, Some(b"y".to_vec()));
    Ok(())
}

/// Unmounts the test's tmpfs when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_during_a_mirror_out_is_a_clear_error_and_a_rerun_finishes() -> R {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    fs::create_dir_all(&out)?;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("full disk: cannot mount a tmpfs here (not root?); nothing checked");
        return Ok(());
    }
    let mount = Mount(out.clone());
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let m = hyper_drive::FileMeta::default();
    drive.put("/a-small.txt", b"fits", &m)?;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
    drive.put("/b-big.bin", &big, &m)?;
    let folder = Folder::new(&out);
    let o = MirrorOptions::default();
    match mirror::mirror(Side::Drive(&drive), Side::Folder(&folder), &o, |_| {}) {
        Err(Error::Io { path, source }) => {
            assert!(path.starts_with(&out), "{}", path.display());
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC: {source}");
        }
        other => return Err(format!("expected a full-disk error, got {other:?}").into()),
    }
    assert_eq!(fs::read(out.join("a-small.txt"))?, b"fits");
    assert!(
        !out.join("b-big.bin").exists(),
        "no half-written file under its name"
    );
    // With room again, the same mirror finishes the job.
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(&out)
        .status()?;
    assert!(grown.success());
    let done = mirror::mirror(Side::Drive(&drive), Side::Folder(&folder), &o, |_| {})?;
    assert_eq!((done.add, done.equal), (1, 1));
    assert!(fs::read(out.join("b-big.bin"))? == big);
    drop(mount);
    Ok(())
}

#[test]
fn a_drive_read_failing_during_a_mirror_out_is_the_drives_error() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    drive.put("/a.bin", &[7; 100_000], &hyper_drive::FileMeta::default())?;
    drive.clear_all()?; // the entry stays, its bytes are gone
    let out = dir.path().join("out");
    let folder = Folder::new(&out);
    let got = mirror::mirror(
        Side::Drive(&drive),
        Side::Folder(&folder),
        &MirrorOptions::default(),
        |_| {},
    );
    // Missing (which a fetch can act on), not an I/O error of out/a.bin.
    match got {
        Err(hyper_drive::Error::Missing { core, index: 0 }) => {
            assert_eq!(core, drive.blobs().key())
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.join("a.bin").exists());
    Ok(())
}

/// Restores `path`'s modification time to `mtime` (after an edit in place).
fn set_mtime(path: &Path, mtime: std::time::SystemTime) -> R {
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(mtime)?;
    Ok(())
}

/// The op the plan gives `path`, with or without the byte compare.
fn planned(src: Side<'_>, dst: Side<'_>, compare_bytes: bool, path: &str) -> Result<Op, Error> {
    let o = MirrorOptions {
        compare_bytes,
        ..Default::default()
    };
    let plan = mirror::plan(src, dst, &o)?;
    plan.actions
        .iter()
        .find(|a| a.path.as_str() == path)
        .map(|a| a.op)
        .ok_or(Error::NotFound(path.into()))
}

#[test]
fn a_byte_compare_finds_an_edit_in_place_that_kept_size_and_mtime() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let m = meta(0o644, 1_700_000_000_123_456_789);
    // Larger than one compare step, differing only in its last byte.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    drive.put("/big.bin", &big, &m)?;
    drive.put("/same.txt", b"untouched", &m)?;
    drive.put("/empty", b"", &m)?;
    let out = dir.path().join("out");
    let folder = Folder::new(&out);
    let o = MirrorOptions::default();
    mirror::mirror(Side::Drive(&drive), Side::Folder(&folder), &o, |_| {})?;
    let file = out.join("big.bin");
    let mtime = fs::metadata(&file)?.modified()?;
    let mut edited = big.clone();
    if let Some(last) = edited.last_mut() {
        *last ^= 0xff;
    }
    fs::write(&file, &edited)?;
    set_mtime(&file, mtime)?;
    let (src, dst) = (Side::Drive(&drive), Side::Folder(&folder));
    assert_eq!(
        planned(src, dst, false, "/big.bin")?,
        Op::Equal,
        "tier 1 alone misses it"
    );
    assert_eq!(planned(src, dst, true, "/big.bin")?, Op::Change);
    assert_eq!(planned(src, dst, true, "/same.txt")?, Op::Equal);
    assert_eq!(planned(src, dst, true, "/empty")?, Op::Equal);
    let with = MirrorOptions {
        compare_bytes: true,
        ..Default::default()
    };
    let s = mirror::mirror(src, dst, &with, |_| {})?;
    assert_eq!((s.change, s.equal, s.bytes_added), (1, 2, 300_000));
    assert!(fs::read(&file)? == big, "the drive's bytes are back");
    let again = mirror::mirror(src, dst, &with, |_| {})?;
    assert_eq!((again.change, again.equal), (0, 3));
    // Folder -> drive: the folder source edited in place, stat kept.
    fs::write(&file, &edited)?;
    set_mtime(&file, mtime)?;
    let (src, dst) = (Side::Folder(&folder), Side::Drive(&drive));
    assert_eq!(planned(src, dst, false, "/big.bin")?, Op::Equal);
    assert_eq!(planned(src, dst, true, "/big.bin")?, Op::Change);
    mirror::mirror(src, dst, &with, |_| {})?;
    assert_eq!(drive.get("/big.bin")?, Some(edited));
    Ok(())
}

#[test]
fn a_byte_compare_between_drives_whose_entries_share_a_stat() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store"))?;
    let (a, b) = (Drive::create(&store)?, Drive::create(&store)?);
    let m = meta(0o755, 42);
    a.put("/x", b"aaaa", &m)?;
    b.put("/x", b"bbbb", &m)?;
    let (ea, eb) = (a.entry("/x")?.ok_or("a")?, b.entry("/x")?.ok_or("b")?);
    assert_eq!(
        (ea.size, ea.mode, ea.mtime_ns),
        (eb.size, eb.mode, eb.mtime_ns)
    );
    assert_ne!(ea.hash, eb.hash);
    let (src, dst) = (Side::Drive(&a), Side::Drive(&b));
    assert_eq!(planned(src, dst, false, "/x")?, Op::Equal);
    assert_eq!(planned(src, dst, true, "/x")?, Op::Change);
    let with = MirrorOptions {
        compare_bytes: true,
        ..Default::default()
    };
    let s = mirror::mirror(src, dst, &with, |_| {})?;
    assert_eq!((s.change, s.bytes_added, s.bytes_removed), (1, 4, 4));
    assert_eq!(b.get("/x")?, Some(b"aaaa".to_vec()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// With the byte compare, two files of one size, mtime and mode are a
    /// change exactly when a byte differs (wherever it is); without it,
    /// always equal.
    #[test]
    fn the_byte_compare_finds_any_differing_byte(
        bytes in proptest::collection::vec(any::<u8>(), 1..200_000),
        flip in proptest::option::of((any::<prop::sample::Index>(), 1..=255u8)),
    ) {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut other = bytes.clone();
        if let Some((at, x)) = flip {
            other[at.index(bytes.len())] ^= x;
        }
        for (root, content) in [(&a, &bytes), (&b, &other)] {
            fs::create_dir_all(root).expect("mkdir");
            fs::write(root.join("f"), content).expect("write");
            set_mtime(&root.join("f"), std::time::UNIX_EPOCH + std::time::Duration::from_secs(7)).expect("mtime");
        }
        let (fa, fb) = (Folder::new(&a), Folder::new(&b));
        let (src, dst) = (Side::Folder(&fa), Side::Folder(&fb));
        prop_assert_eq!(planned(src, dst, false, "/f").expect("plan"), Op::Equal);
        let want = if flip.is_some() { Op::Change } else { Op::Equal };
        prop_assert_eq!(planned(src, dst, true, "/f").expect("plan"), want);
    }
}
