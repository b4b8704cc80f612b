//! W7-mirror: mirroring a real source tree this project did not write, as
//! `benches/reference-js/workloads/mirror.js` runs it with mirror-drive,
//! beside `rsync -a` of the same tree.
//!
//! The tree is `BENCH_TREE`, else the first that exists of the Rust
//! toolchain's library sources, Debian's Python packages
//! (`/usr/lib/python3`), Python's standard library (`/usr/lib/python3.N`),
//! `/usr/lib/node_modules`, `/usr/share/doc`; it is copied to a temp folder
//! first (every `BENCH_SCALE`-th file) so its mtimes are stable. Steps,
//! each timed:
//! a. folder -> drive on a fresh store (eventual durability, flushed before
//!    the timer stops, as in W7);
//! b. drive -> folder on a fresh store over TCP loopback from the writer in
//!    its own process (`hyper-bench serve`), timed from just before the
//!    connection: the whole bee, then every block the plan copies, then the
//!    files written (atomic writes);
//! rsync: `rsync -a` of the tree into an empty folder;
//! c. 1% of the files touched (every 100th file of at least 8 bytes, in
//!    path order: 8 bytes rewritten at offset 0, mtime 2 s later), then
//!    a and b again into the same drive and the same destination (the
//!    reader reconnects to a restarted server), and rsync's re-sync.
//!
//! Every destination is checked against the tree (untimed) after b and c.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, Durability, Store, StoreOptions};
use hyper_drive::fetch::{Fetch, ReplicationFetch, open_replica};
use hyper_drive::mirror::{self, MirrorOptions, Side, Summary};
use hyper_drive::{Drive, Folder};

use crate::replicate::{Server, reader, runtime};
use crate::report::Line;
use crate::workloads::{MB, Result};

/// The tree to mirror: `BENCH_TREE`, else the first candidate that exists.
fn source_tree() -> Result<PathBuf> {
    if let Some(t) = std::env::var_os("BENCH_TREE") {
        return Ok(t.into());
    }
    let mut candidates = Vec::new();
    if let Ok(out) = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
    {
        let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
        candidates.push(Path::new(&sysroot).join("lib/rustlib/src/rust/library"));
    }
    candidates.push("/usr/lib/python3".into());
    let mut pythons: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.strip_prefix("python3.")
                        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    pythons.sort();
    candidates.extend(pythons);
    candidates.push("/usr/lib/node_modules".into());
    candidates.push("/usr/share/doc".into());
    candidates
        .iter()
        .find(|c| c.is_dir())
        .cloned()
        .ok_or_else(|| format!("no source tree: tried {candidates:?}").into())
}

/// Files and symlinks below `root`, as sorted relative paths.
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    fn visit(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for name in names {
            let r = rel.join(name);
            let t = std::fs::symlink_metadata(root.join(&r))?.file_type();
            if t.is_dir() {
                visit(root, &r, out)?;
            } else if t.is_file() || t.is_symlink() {
                out.push(r);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, Path::new(""), &mut out)?;
    Ok(out)
}

/// Copies every `scale`-th entry of `src` into `dst` (symlinks as
/// symlinks); the files and bytes copied.
fn copy_tree(src: &Path, dst: &Path, scale: u64) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for (i, rel) in walk(src)?.iter().enumerate() {
        if !(i as u64).is_multiple_of(scale) {
            continue;
        }
        let (from, to) = (src.join(rel), dst.join(rel));
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let meta = std::fs::symlink_metadata(&from)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else {
            bytes += std::fs::copy(&from, &to)?;
        }
        files += 1;
    }
    Ok((files, bytes))
}

/// Rewrites 8 bytes of every 100th file of at least 8 bytes, with an mtime
/// 2 s later; how many files were touched.
fn touch(root: &Path) -> Result<u64> {
    use std::io::{Seek, Write};
    let mut big = Vec::new();
    for rel in walk(root)? {
        let m = std::fs::symlink_metadata(root.join(&rel))?;
        if m.is_file() && m.len() >= 8 {
            big.push(rel);
        }
    }
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    let mut touched = 0;
    for rel in big.iter().step_by(100) {
        let mut f = std::fs::File::options().write(true).open(root.join(rel))?;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(b"W7MIRROR")?;
        f.set_modified(later)?;
        touched += 1;
    }
    Ok(touched)
}

/// Every file and symlink of `src` is in `dst`, the same.
fn check_same(src: &Path, dst: &Path) -> Result<()> {
    for rel in walk(src)? {
        let (a, b) = (src.join(&rel), dst.join(&rel));
        let same = if std::fs::symlink_metadata(&a)?.file_type().is_symlink() {
            std::fs::read_link(&a)? == std::fs::read_link(&b)?
        } else {
            std::fs::read(&a)? == std::fs::read(&b)?
        };
        if !same {
            return Err(format!("{} differs after the mirror", rel.display()).into());
        }
    }
    Ok(())
}

fn writer_store(dir: &Path) -> Result<Store> {
    Ok(Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?)
}

/// Step a (and c's first half): the tree into the writer's drive; the
/// seconds, the summary, the drive key and its bee's length.
fn into_drive(writer_dir: &Path, tree: &Path) -> Result<(f64, Summary, CoreKey, u64)> {
    let store = writer_store(writer_dir)?;
    let drive = Drive::named(&store, "bench")?;
    let folder = Folder::new(tree);
    let start = Instant::now();
    let summary = mirror::mirror(
        Side::Folder(&folder),
        Side::Drive(&drive),
        &MirrorOptions::default(),
        |_| {},
    )?;
    store.flush()?;
    let secs = start.elapsed().as_secs_f64();
    Ok((secs, summary, drive.key(), drive.metadata().info()?.length))
}

/// Step b (and c's second half): the drive, served from its own process,
/// into `dest` through the reader store in `reader_dir`; the seconds (in
/// all, and until every block was here), the summary and the wire bytes.
fn out_of_drive(
    writer_dir: &Path,
    reader_dir: &Path,
    key: &CoreKey,
    length: u64,
    dest: &Path,
) -> Result<(f64, f64, Summary, u64)> {
    let server = Server::start(writer_dir)?;
    let folder = Folder::new(dest);
    let out = runtime()?.block_on(async {
        let start = Instant::now();
        let (store, replication, wire) = reader(reader_dir, server.port).await?;
        let fetch = ReplicationFetch::new(replication.clone(), Duration::from_secs(30));
        let replica = open_replica(&store, key, &fetch).await?;
        // The writer's new length arrives with the core's first sync (a
        // replica opened from local blocks asks for nothing by itself).
        replication.add_core(replica.metadata());
        let waited = Instant::now();
        while replica.metadata().info()?.length < length {
            if waited.elapsed() > Duration::from_secs(30) {
                return Err("the reader never learned the drive's length".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        fetch
            .fetch_ranges(replica.metadata(), std::slice::from_ref(&(0..length)))
            .await?;
        let options = MirrorOptions::default();
        let plan = mirror::plan(Side::Drive(&replica), Side::Folder(&folder), &options)?;
        mirror::fetch_blocks(&plan, &replica, &fetch).await?;
        let fetched = start.elapsed().as_secs_f64();
        let summary = mirror::apply(
            &plan,
            Side::Drive(&replica),
            Side::Folder(&folder),
            &options,
            |_| {},
        )?;
        let secs = start.elapsed().as_secs_f64();
        let wire = wire.load(Ordering::Relaxed);
        Ok::<_, Box<dyn std::error::Error>>((secs, fetched, summary, wire))
    })?;
    drop(server);
    Ok(out)
}

/// `rsync -a src/ dst/`: its seconds. Debian's rsync is installed with
/// apt-get when missing (as the Chromium test does).
fn rsync(src: &Path, dst: &Path) -> Result<f64> {
    let present = || {
        std::process::Command::new("rsync")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !present() {
        let install =
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync";
        // apt-get's lines go to stderr: stdout is the benchmark's JSON.
        let ok = std::process::Command::new("sh")
            .args(["-c", install])
            .stdout(std::io::stderr())
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !present() {
            return Err("rsync is missing and installing Debian's rsync failed".into());
        }
    }
    let mut from = src.as_os_str().to_owned();
    from.push("/");
    let start = Instant::now();
    let status = std::process::Command::new("rsync")
        .arg("-a")
        .arg(&from)
        .arg(dst)
        .stdout(std::io::stderr())
        .status()?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!(
            "rsync -a {} {} failed: {status}",
            src.display(),
            dst.display()
        )
        .into());
    }
    Ok(secs)
}

pub fn run(scale: u64) -> Result<()> {
    let origin = source_tree()?;
    let tree = tempfile::tempdir()?;
    let (files, bytes) = copy_tree(&origin, tree.path(), scale)?;
    eprintln!(
        "W7-mirror: {files} files, {bytes} bytes from {}",
        origin.display()
    );
    let (writer, reader_dir, dest, rdest) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );

    let (a_secs, a, key, length) = into_drive(writer.path(), tree.path())?;
    let (b_secs, b_fetch, b, b_wire) =
        out_of_drive(writer.path(), reader_dir.path(), &key, length, dest.path())?;
    check_same(tree.path(), dest.path())?;
    let rsync_secs = rsync(tree.path(), rdest.path())?;

    let touched = touch(tree.path())?;
    let (ca_secs, ca, _, length) = into_drive(writer.path(), tree.path())?;
    let (cb_secs, cb_fetch, cb, cb_wire) =
        out_of_drive(writer.path(), reader_dir.path(), &key, length, dest.path())?;
    check_same(tree.path(), dest.path())?;
    let resync_secs = rsync(tree.path(), rdest.path())?;
    check_same(tree.path(), rdest.path())?;
    if a.add != files || b.add != files {
        return Err(format!("mirrored {} and {} of {files} files", a.add, b.add).into());
    }

    let mb = bytes as f64 / MB;
    Line::new("W7-mirror")
        .text("durability", "eventual")
        .text("tree", &origin.display().to_string())
        .int("files", files)
        .int("bytes", bytes)
        .num("a_seconds", a_secs)
        .num("a_files_per_sec", files as f64 / a_secs)
        .num("a_mb_per_sec", mb / a_secs)
        .num("b_seconds", b_secs)
        .num("b_files_per_sec", files as f64 / b_secs)
        .num("b_mb_per_sec", mb / b_secs)
        .num("b_fetch_seconds", b_fetch)
        .int("b_wire_bytes", b_wire)
        .int("touched", touched)
        .num("c_into_drive_seconds", ca_secs)
        .int("c_into_drive_bytes", ca.bytes_added)
        .num("c_out_of_drive_seconds", cb_secs)
        .num("c_out_of_drive_fetch_seconds", cb_fetch)
        .int("c_out_of_drive_bytes", cb.bytes_added)
        .int("c_out_of_drive_wire_bytes", cb_wire)
        .num("c_into_drive_time_fraction", ca_secs / a_secs)
        .num("c_out_of_drive_time_fraction", cb_secs / b_secs)
        .num("c_bytes_fraction", cb.bytes_added as f64 / bytes as f64)
        .num("rsync_seconds", rsync_secs)
        .num("rsync_resync_seconds", resync_secs)
        .num("b_over_rsync", b_secs / rsync_secs)
        .num("c_out_of_drive_over_rsync_resync", cb_secs / resync_secs)
        .num(
            "c_both_over_rsync_resync",
            (ca_secs + cb_secs) / resync_secs,
        )
        .print(scale)?;
    Ok(())
}

/// The peak resident set (VmHWM) of this process, in bytes.
fn peak_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmHWM in /proc/self/status".into())
}

/// W7-mem (by name only; alone, so that no other workload's peak counts):
/// one file of 4 GiB (divided by `BENCH_SCALE`) of pseudo-random bytes,
/// mirrored folder -> drive -> folder on a store with the default
/// durability and the 32 MiB page cache, as `hyper-cli drive mirror` runs; the process's peak
/// resident set before and after.
pub fn memory(scale: u64) -> Result<()> {
    use std::io::Write;
    let size = (4u64 << 30) / scale;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src)?;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(src.join("big.bin"))?);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let n = left.min(buf.len() as u64);
            f.write_all(buf.get(..n as usize).unwrap_or_default())?;
            left -= n;
        }
    }
    let before = peak_rss()?;
    let start = Instant::now();
    // The page cache `hyper-cli drive mirror` opens its store with.
    let store = Store::open_with(
        dir.path().join("store"),
        hyper_core::StoreOptions {
            cache_bytes: 32 << 20,
            ..Default::default()
        },
    )?;
    let drive = Drive::named(&store, "bench")?;
    let options = MirrorOptions::default();
    mirror::mirror(
        Side::Folder(&Folder::new(&src)),
        Side::Drive(&drive),
        &options,
        |_| {},
    )?;
    let into = peak_rss()?;
    let out = dir.path().join("out");
    mirror::mirror(
        Side::Drive(&drive),
        Side::Folder(&Folder::new(&out)),
        &options,
        |_| {},
    )?;
    let secs = start.elapsed().as_secs_f64();
    let after = peak_rss()?;
    let copied = std::fs::metadata(out.join("big.bin"))?.len();
    if copied != size {
        return Err(format!("mirrored out {copied} of {size} bytes").into());
    }
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    Line::new("W7-mem")
        .int("file_bytes", size)
        .num("seconds", secs)
        .num("rss_before_mib", mib(before))
        .num("rss_peak_after_into_drive_mib", mib(into))
        .num("rss_peak_mib", mib(after))
        .print(scale)?;
    Ok(())
}
