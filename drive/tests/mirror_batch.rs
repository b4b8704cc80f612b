//! The batched paths of a mirror, on real folders and stores: a re-mirror
//! of an unchanged tree into a drive appends nothing to its bee, and a
//! mirror into a folder larger than one fsync batch puts every file and
//! symlink in place (mode, mtime, bytes), leaving no temp file behind.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hyper_core::Store;
use hyper_drive::mirror::{self, MirrorOptions, Side};
use hyper_drive::{Drive, FSYNC_FILES, Folder, PARTIAL_SUFFIX};

type R = Result<(), Box<dyn std::error::Error>>;

/// `n` files (every 7th executable, every 5th with a fixed old mtime) and
/// a symlink, under a few folders.
fn tree(root: &Path, n: usize) -> R {
    for i in 0..n {
        let p = root.join(format!("d{}/f{i}.txt", i % 4));
        fs::create_dir_all(p.parent().ok_or("no parent")?)?;
        fs::write(&p, format!("file {i} ").repeat(i + 1))?;
        if i % 7 == 0 {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
        }
        if i % 5 == 0 {
            let f = fs::File::options().write(true).open(&p)?;
            f.set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000_000 + i as u64))?;
        }
    }
    std::os::unix::fs::symlink("d0/f0.txt", root.join("link"))?;
    Ok(())
}

#[test]
fn a_re_mirror_of_an_unchanged_tree_appends_nothing_to_the_bee() -> R {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    tree(&src, 60)?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let folder = Folder::new(&src);
    let o = MirrorOptions::default();
    let first = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &o, |_| {})?;
    assert_eq!(first.add, 61);
    let length = drive.metadata().info()?.length;
    let again = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &o, |_| {})?;
    assert_eq!((again.equal, again.add, again.change), (61, 0, 0));
    assert_eq!(
        drive.metadata().info()?.length,
        length,
        "equal entries were written again"
    );
    // One change: only it is written.
    fs::write(src.join("d1/f1.txt"), b"changed")?;
    let once = mirror::mirror(Side::Folder(&folder), Side::Drive(&drive), &o, |_| {})?;
    assert_eq!((once.change, once.equal), (1, 60));
    assert_eq!(drive.get("/d1/f1.txt")?.as_deref(), Some(&b"changed"[..]));
    Ok(())
}

#[test]
fn a_mirror_into_a_folder_past_one_fsync_batch_puts_everything_in_place() -> R {
    let n = FSYNC_FILES * 3 + 5;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    tree(&src, n)?;
    let store = Store::open(dir.path().join("store"))?;
    let drive = Drive::create(&store)?;
    let o = MirrorOptions::default();
    mirror::mirror(
        Side::Folder(&Folder::new(&src)),
        Side::Drive(&drive),
        &o,
        |_| {},
    )?;
    let out = dir.path().join("out");
    let summary = mirror::mirror(
        Side::Drive(&drive),
        Side::Folder(&Folder::new(&out)),
        &o,
        |_| {},
    )?;
    assert_eq!(summary.add, n as u64 + 1);
    for i in 0..n {
        let rel = format!("d{}/f{i}.txt", i % 4);
        let (a, b) = (fs::metadata(src.join(&rel))?, fs::metadata(out.join(&rel))?);
        assert_eq!(
            fs::read(src.join(&rel))?,
            fs::read(out.join(&rel))?,
            "{rel}"
        );
        assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "{rel} mode");
        assert_eq!(a.modified()?, b.modified()?, "{rel} mtime");
    }
    assert_eq!(fs::read_link(out.join("link"))?, Path::new("d0/f0.txt"));
    for d in 0..4 {
        for e in fs::read_dir(out.join(format!("d{d}")))? {
            let name = e?.file_name();
            assert!(
                !name.to_string_lossy().ends_with(PARTIAL_SUFFIX),
                "a temp file was left: {name:?}"
            );
        }
    }
    Ok(())
}
