//! W7: a drive on disk, as `benches/reference-js/workloads/drive.js` runs
//! it: 1,000 files of 64 KiB (random bytes) at /dir{i%10}/file{i}.bin, one
//! put each; every file read back; a recursive listing; then a fresh store
//! that knows only the drive key downloads both cores (every entry and
//! every blob) from the writer in its own process over TCP loopback, timed
//! from just before the connection. The store commits without an fsync per
//! write (the reference does not fsync either) and is flushed before the
//! write timer stops.

use std::time::{Duration, Instant};

use hyper_core::{Durability, Store, StoreOptions};
use hyper_drive::Drive;
use hyper_drive::fetch::{ReplicationFetch, open_replica};
use hyper_wire::DownloadRange;

use crate::replicate::{Server, reader, runtime};
use crate::report::Line;
use crate::workloads::{MB, Result, random_blocks};

const FILE_SIZE: usize = 65536;

fn file_path(i: usize) -> String {
    format!("/dir{}/file{i}.bin", i % 10)
}

pub fn run(scale: u64) -> Result<()> {
    let files = (1000 / scale).max(1) as usize;
    let total = (files * FILE_SIZE) as f64;
    let data = random_blocks(files as u64, FILE_SIZE, 7);
    let writer_dir = tempfile::tempdir()?;
    let store = Store::open_with(
        writer_dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let drive = Drive::named(&store, "bench")?;
    let meta = hyper_drive::FileMeta::default();

    let start = Instant::now();
    for (i, bytes) in data.iter().enumerate() {
        drive.put(&file_path(i), bytes, &meta)?;
    }
    store.flush()?;
    let write_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut read = 0;
    for i in 0..files {
        read += drive.get(&file_path(i))?.map_or(0, |b| b.len());
    }
    let read_secs = start.elapsed().as_secs_f64();
    if read != files * FILE_SIZE {
        return Err(format!("read {read} bytes of {}", files * FILE_SIZE).into());
    }

    let start = Instant::now();
    let listed = drive.list("/", true, None)?.len();
    let list_secs = start.elapsed().as_secs_f64();
    if listed != files {
        return Err(format!("listed {listed} of {files} files").into());
    }
    let key = drive.key();
    drop((drive, store));

    let server = Server::start(writer_dir.path())?;
    let reader_dir = tempfile::tempdir()?;
    let repl_secs = runtime()?.block_on(async {
        let start = Instant::now();
        let (store, replication, _bytes) = reader(reader_dir.path(), server.port).await?;
        let fetch = ReplicationFetch::new(replication.clone(), Duration::from_secs(30));
        let replica = open_replica(&store, &key, &fetch).await?;
        replication
            .download(replica.metadata(), DownloadRange::all())
            .await?;
        replication
            .download(replica.blobs(), DownloadRange::all())
            .await?;
        let secs = start.elapsed().as_secs_f64();
        // Untimed: every file is really here.
        for (i, bytes) in data.iter().enumerate() {
            if replica.get(&file_path(i))?.as_ref() != Some(bytes) {
                return Err(format!("file {i} missing or wrong after replication").into());
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(secs)
    })?;
    drop(server);

    Line::new("W7")
        .text("durability", "eventual")
        .int("files", files as u64)
        .int("file_size", FILE_SIZE as u64)
        .num("write_files_per_sec", files as f64 / write_secs)
        .num("write_mb_per_sec", total / MB / write_secs)
        .num("read_mb_per_sec", total / MB / read_secs)
        .num("list_entries_per_sec", listed as f64 / list_secs)
        .num("replicate_mb_per_sec", total / MB / repl_secs)
        .print(scale)?;
    Ok(())
}
