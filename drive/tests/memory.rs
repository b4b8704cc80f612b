//! A large file mirrors in and out in bounded memory. The store itself
//! (redb's page cache) keeps about as much resident as is written, so the
//! test first appends the same bytes to a bare core, then checks that the
//! mirrors raise the process's peak resident set by less than 48 MiB over
//! that: the drive layer holds a block or a 4 MiB batch at a time, never
//! the file. (Its own test binary, so no other test's allocations count.)

use std::fs;
use std::io::Write;

use hyper_core::Store;
use hyper_drive::mirror::{self, MirrorOptions, Side};
use hyper_drive::{Drive, Folder};

/// The peak resident set (VmHWM) of this process, in bytes.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_large_file_mirrors_in_bounded_memory() -> Result<(), Box<dyn std::error::Error>> {
    const SIZE: u64 = 96 << 20;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    fs::create_dir_all(&src)?;
    {
        let mut f = fs::File::create(src.join("big.bin"))?;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..SIZE >> 20 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.write_all(&buf)?;
        }
    }
    let before = peak_rss();
    {
        let probe = Store::open(dir.path().join("probe"))?;
        let c = probe.create_core()?;
        let block = vec![7u8; 65536];
        for _ in 0..(SIZE / 65536 / 64) {
            let batch: Vec<&[u8]> = (0..64).map(|_| block.as_slice()).collect();
            c.append_batch(&batch)?;
        }
    }
    let baseline = peak_rss();
    eprintln!(
        "a bare core of the same bytes: +{} MiB",
        baseline.saturating_sub(before) >> 20
    );
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
    mirror::mirror(
        Side::Drive(&drive),
        Side::Folder(&Folder::new(&out)),
        &o,
        |_| {},
    )?;
    let grown = peak_rss().saturating_sub(baseline);
    assert_eq!(fs::metadata(out.join("big.bin"))?.len(), SIZE);
    assert!(
        grown < 48 << 20,
        "the mirrors grew the peak {} MiB over a bare core, for a {} MiB file",
        grown >> 20,
        SIZE >> 20
    );
    Ok(())
}
