//! L1 (one big core) and L3 (many cores in one store) of the scale
//! workloads. Each compares itself with the W workload of the same shape
//! run in the same process moments before (the machine is shared, so the
//! ratios within one run are what counts).
//!
//! - L1: 10,000,000 blocks of 1 KiB in one core, appended in batches of
//!   100 (eventual durability, as W1's eventual line); a fresh process
//!   reopens it and reports its open time, the time of `Core::info` and
//!   its resident memory; then as many random gets as W3 makes, and a
//!   clone over Noise TCP loopback of its first tenth (1,000,000 blocks),
//!   against W1, W3 and W4 on the 100,000-block core in the same run.
//! - L3: 10,000 cores of 100 blocks of 1 KiB in one store: its open and
//!   listing time, then every core of 1,000, 5,000 and 10,000 of them
//!   replicated over one connection to an all-cores seeder, with the time
//!   and the frames both ways (the connection is a secured stream without
//!   Noise, so the frames can be counted on the socket).
//!
//! `BENCH_SCALE=N` divides the block counts of L1 and the core counts of
//! L3.

use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper_core::{Core, CoreKey, Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions, listen_tcp};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::replicate::{Server, reader, runtime};
use crate::report::Line;
use crate::workloads::{Append, MB, Result, fill, random_blocks};

/// L1's blocks at scale 1.
const L1_BLOCKS: u64 = 10_000_000;
/// L1 clones this fraction of its core (1,000,000 blocks at scale 1).
const L1_CLONE_PART: u64 = 10;
/// L3's cores at scale 1, and the counts replicated.
const L3_CORES: [u64; 3] = [1_000, 5_000, 10_000];
/// Blocks per L3 core.
const L3_BLOCKS: u64 = 100;
/// Distinct random blocks L1's batches are made from (each block is
/// stamped with its index, so no two are alike).
const POOL: u64 = 4096;

/// L1: one big core against W1, W3 and W4 in the same run.
pub fn big_core(scale: u64) -> Result<()> {
    let count = (L1_BLOCKS / scale).max(1);
    let small = Append::SMALL;
    let w1_count = small.blocks / scale;
    let w1_dir = tempfile::tempdir()?;
    let w1_secs = {
        let blocks = random_blocks(w1_count, small.block_size, 1);
        fill(w1_dir.path(), &blocks, small.batch, Durability::Eventual)?
    };
    let dir = tempfile::tempdir()?;
    let append_secs = fill_stamped(dir.path(), count)?;
    let disk = crate::workloads::dir_size(dir.path())?;
    let probe = Probe::run(dir.path())?;
    if probe.contiguous != count {
        return Err(format!(
            "reopened contiguous length {}, expected {count}",
            probe.contiguous
        )
        .into());
    }
    let w3_rate = random_gets(w1_dir.path(), w1_count, w1_count)?;
    let gets_rate = random_gets(dir.path(), count, w1_count)?;
    let w4_rate = clone_rate(w1_dir.path(), w1_count)?;
    let clone_blocks = (count / L1_CLONE_PART).max(1);
    let clone = clone_rate(dir.path(), clone_blocks)?;
    let w1_rate = w1_count as f64 / w1_secs;
    let append_rate = count as f64 / append_secs;
    Line::new("L1")
        .text("durability", "eventual")
        .int("block_size", small.block_size as u64)
        .int("blocks", count)
        .num("blocks_per_sec", append_rate)
        .num("w1_blocks_per_sec", w1_rate)
        .num("append_vs_w1", append_rate / w1_rate)
        .int("disk_bytes", disk)
        .num("reopen_ms", probe.open_ms)
        .num("info_us", probe.info_us)
        .int("rss_bytes", probe.rss_bytes)
        .num("random_gets_per_sec", gets_rate)
        .num("w3_random_gets_per_sec", w3_rate)
        .num("gets_vs_w3", gets_rate / w3_rate)
        .int("clone_blocks", clone_blocks)
        .num("clone_mb_per_sec", clone)
        .num("w4_mb_per_sec", w4_rate)
        .num("clone_vs_w4", clone / w4_rate)
        .print(scale)?;
    Ok(())
}

/// Appends `count` blocks of 1 KiB to a new core named "bench" in `dir`,
/// in W1's batches, made from a pool of random blocks (a big core does not
/// fit in memory), each stamped with its index, flushed to disk after each
/// W1's worth of blocks. Returns seconds, the flushes included.
fn fill_stamped(dir: &Path, count: u64) -> Result<f64> {
    let shape = Append::SMALL;
    let pool = random_blocks(POOL.min(count), shape.block_size, 1);
    let store = eventual_store(dir)?;
    let core = store.named("bench")?;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(shape.batch);
    let start = Instant::now();
    let mut at = 0u64;
    while at < count {
        let n = (shape.batch as u64).min(count - at);
        batch.clear();
        for i in at..at + n {
            let mut block = pool[(i % POOL.min(count)) as usize].clone();
            block[..8].copy_from_slice(&i.to_le_bytes());
            batch.push(block);
        }
        core.append_batch(&batch)?;
        at += n;
        // One durable commit per W1's worth of blocks, as W1 makes one at
        // its end: redb frees the pages of non-durable commits only then,
        // so without it the file grows by half again.
        if at.is_multiple_of(shape.blocks) {
            store.flush()?;
        }
        if at.is_multiple_of(1_000_000) {
            eprintln!("L1: {at} blocks appended");
        }
    }
    store.flush()?;
    Ok(start.elapsed().as_secs_f64())
}

/// The store in `dir`, committing without an fsync per batch (as W1's
/// eventual line and the W4 reader).
fn eventual_store(dir: &Path) -> hyper_core::Result<Store> {
    Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
}

/// What a fresh process measures of the big core: its open time, one
/// `Core::info`, and the process's resident memory after both.
struct Probe {
    open_ms: f64,
    info_us: f64,
    rss_bytes: u64,
    contiguous: u64,
}

impl Probe {
    /// Runs `hyper-bench l1-open DIR` and reads its one line.
    fn run(dir: &Path) -> Result<Probe> {
        let out = Command::new(std::env::current_exe()?)
            .arg("l1-open")
            .arg(dir)
            .output()?;
        if !out.status.success() {
            return Err(format!("l1-open: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let text = String::from_utf8(out.stdout)?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [open_ms, info_us, rss_bytes, contiguous] = fields.as_slice() else {
            return Err(format!("l1-open printed {text:?}").into());
        };
        Ok(Probe {
            open_ms: open_ms.parse()?,
            info_us: info_us.parse()?,
            rss_bytes: rss_bytes.parse()?,
            contiguous: contiguous.parse()?,
        })
    }
}

/// `hyper-bench l1-open DIR` (internal): opens the store and its "bench"
/// core, calls `Core::info`, and prints the open time in ms, the info time
/// in µs, VmRSS in bytes and the contiguous length.
pub fn open_probe(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let store = Store::open(dir)?;
    let core = store.named("bench")?;
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let start = Instant::now();
    let info = core.info()?;
    let info_us = start.elapsed().as_secs_f64() * 1e6;
    let rss = resident_bytes()?;
    println!("{open_ms} {info_us} {rss} {}", info.contiguous_length);
    Ok(())
}

/// VmRSS of this process, from /proc/self/status.
fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .ok_or("no VmRSS in /proc/self/status")?;
    Ok(kb.trim().parse::<u64>()? * 1024)
}

/// Gets per second of `gets` random blocks of the "bench" core of `count`
/// blocks in `dir` (reopened first, untimed).
fn random_gets(dir: &Path, count: u64, gets: u64) -> Result<f64> {
    let store = Store::open(dir)?;
    let core = store.named("bench")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let indexes: Vec<u64> = (0..gets).map(|_| rng.random_range(0..count)).collect();
    let start = Instant::now();
    let mut bytes = 0usize;
    for &i in &indexes {
        bytes += core.get(i)?.len();
    }
    let secs = start.elapsed().as_secs_f64();
    if bytes != gets as usize * Append::SMALL.block_size {
        return Err(format!("random gets returned {bytes} bytes").into());
    }
    Ok(gets as f64 / secs)
}

/// MB/s of a fresh reader downloading blocks `0..blocks` of the "bench"
/// core in `dir`, served by another process over Noise TCP (as W4).
fn clone_rate(dir: &Path, blocks: u64) -> Result<f64> {
    let key = Store::open(dir)?.named("bench")?.key();
    let server = Server::start(dir)?;
    let reader_dir = tempfile::tempdir()?;
    let seconds = runtime()?.block_on(async {
        let start = Instant::now();
        let (store, replication, _) = reader(reader_dir.path(), server.port).await?;
        let core = store.replica(&key)?;
        replication
            .download(&core, DownloadRange::range(0..blocks))
            .await?;
        let seconds = start.elapsed().as_secs_f64();
        if core.info()?.contiguous_length < blocks {
            return Err(format!("cloned {} of {blocks}", core.info()?.contiguous_length).into());
        }
        Ok::<_, Box<dyn std::error::Error>>(seconds)
    })?;
    Ok((blocks as usize * Append::SMALL.block_size) as f64 / MB / seconds)
}

/// L3: many cores in one store; one line for the store, one per count
/// replicated.
pub fn many_cores(scale: u64) -> Result<()> {
    let counts = L3_CORES.map(|c| (c / scale).max(1));
    let total = counts[2];
    let dir = tempfile::tempdir()?;
    let (keys, build_secs) = build_store(dir.path(), total)?;
    let start = Instant::now();
    let store = Store::open(dir.path())?;
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let start = Instant::now();
    let listed = store.list()?.len() as u64;
    let list_ms = start.elapsed().as_secs_f64() * 1000.0;
    if listed != total {
        return Err(format!("listed {listed} cores, expected {total}").into());
    }
    Line::new("L3")
        .int("cores", total)
        .int("blocks_per_core", L3_BLOCKS)
        .num("build_sec", build_secs)
        .num("open_ms", open_ms)
        .num("list_ms", list_ms)
        .print(scale)?;
    let seeder = Seeder::start(store)?;
    for cores in counts {
        let run = replicate_cores(&seeder, &keys[..cores as usize])?;
        Line::new("L3")
            .int("cores", cores)
            .int("blocks_per_core", L3_BLOCKS)
            .num("replicate_sec", run.seconds)
            .int("frames", run.frames)
            .int("wire_bytes", run.bytes)
            .num("us_per_core", run.seconds * 1e6 / cores as f64)
            .num("frames_per_core", run.frames as f64 / cores as f64)
            .print(scale)?;
    }
    Ok(())
}

/// Makes `cores` cores of [`L3_BLOCKS`] random 1 KiB blocks each in a new
/// store in `dir`; their keys and the seconds it took.
fn build_store(dir: &Path, cores: u64) -> Result<(Vec<CoreKey>, f64)> {
    let blocks = random_blocks(L3_BLOCKS, Append::SMALL.block_size, 7);
    let store = eventual_store(dir)?;
    let start = Instant::now();
    let mut keys = Vec::with_capacity(cores as usize);
    for _ in 0..cores {
        let core = store.create_core()?;
        core.append_batch(&blocks)?;
        keys.push(core.key());
    }
    store.flush()?;
    Ok((keys, start.elapsed().as_secs_f64()))
}

/// The secret both ends of an L3 connection bind their capabilities to
/// (a real secured transport derives one per connection).
const BINDING: [u8; 32] = [0x13; 32];

/// An all-cores seeder of the L3 store on its own thread and runtime,
/// accepting secured streams (no Noise) from the one reader identity.
struct Seeder {
    port: u16,
    identity: hyper_core::PublicKey,
    reader: KeyPair,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Seeder {
    fn start(store: Store) -> Result<Seeder> {
        let identity = KeyPair::generate()?;
        let reader = KeyPair::generate()?;
        let (public, reader_public) = (identity.public_key(), reader.public_key());
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let served = runtime().map(|rt| {
                rt.block_on(async move {
                    let replication = Replication::new(
                        store,
                        identity,
                        ReplicationOptions {
                            all_cores: true,
                            ..ReplicationOptions::default()
                        },
                    );
                    let (listener, addr) = match listen_tcp("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => return eprintln!("L3 seeder: {e}"),
                    };
                    let _ = port_tx.send(addr.port());
                    let accept = async {
                        while let Ok((stream, _)) = listener.accept().await {
                            let _ = stream.set_nodelay(true);
                            let replication = replication.clone();
                            tokio::spawn(async move {
                                let added = replication
                                    .add_secured_stream(stream, reader_public, BINDING, false)
                                    .await;
                                if let Ok(connection) = added {
                                    let _ = connection.closed().await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                })
            });
            if let Err(e) = served {
                eprintln!("L3 seeder: {e}");
            }
        });
        let port = port_rx.recv().map_err(|_| "the L3 seeder did not start")?;
        Ok(Seeder {
            port,
            identity: public,
            reader,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One L3 replication run.
struct Run {
    seconds: f64,
    frames: u64,
    bytes: u64,
}

/// A fresh reader store replicates every core of `keys` from the seeder
/// over one connection, all downloads at once.
fn replicate_cores(seeder: &Seeder, keys: &[CoreKey]) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let store = eventual_store(dir.path())?;
    let replicas = keys
        .iter()
        .map(|k| store.replica(k))
        .collect::<hyper_core::Result<Vec<Core>>>()?;
    let counter = Arc::new(Counter::default());
    let seconds = runtime()?.block_on(async {
        let replication = Replication::new(
            store.clone(),
            seeder.reader.clone(),
            ReplicationOptions::default(),
        );
        for core in &replicas {
            replication.add_core(core);
        }
        let start = Instant::now();
        let stream = TcpStream::connect(("127.0.0.1", seeder.port)).await?;
        stream.set_nodelay(true)?;
        let io = Counting {
            inner: stream,
            counter: counter.clone(),
            read: FrameCount::default(),
            written: FrameCount::default(),
        };
        let _connection = replication
            .add_secured_stream(io, seeder.identity, BINDING, true)
            .await?;
        let mut downloads = tokio::task::JoinSet::new();
        for core in &replicas {
            let (replication, core) = (replication.clone(), core.clone());
            downloads.spawn(async move { replication.download(&core, DownloadRange::all()).await });
        }
        while let Some(done) = downloads.join_next().await {
            done??;
        }
        Ok::<_, Box<dyn std::error::Error>>(start.elapsed().as_secs_f64())
    })?;
    for core in &replicas {
        let info = core.info()?;
        if info.contiguous_length != L3_BLOCKS {
            return Err(format!("{} has {} blocks", core.key(), info.contiguous_length).into());
        }
    }
    Ok(Run {
        seconds,
        frames: counter.frames.load(Ordering::Relaxed),
        bytes: counter.bytes.load(Ordering::Relaxed),
    })
}

/// Frames and bytes through a socket, both directions.
#[derive(Default)]
struct Counter {
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// Counts the frames of one direction of a plain frame stream (each a
/// LEB128 varint length, then that many bytes), fed in pieces of any size.
/// Keep-alives (length 0) count as frames too.
#[derive(Default, Debug)]
struct FrameCount {
    /// Payload bytes still to skip.
    skip: u64,
    /// The length varint read so far, and its bytes.
    length: u64,
    shift: u32,
}

impl FrameCount {
    /// Feeds `bytes`; returns the frames whose length ended in them.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut frames = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = bytes.get(n as usize..).unwrap_or_default();
                continue;
            }
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            self.length |= u64::from(b & 0x7f).checked_shl(self.shift).unwrap_or(0);
            self.shift += 7;
            if b & 0x80 == 0 {
                frames += 1;
                self.skip = self.length;
                self.length = 0;
                self.shift = 0;
            }
        }
        frames
    }
}

/// A TCP stream that counts the frames and bytes through it.
struct Counting {
    inner: TcpStream,
    counter: Arc<Counter>,
    read: FrameCount,
    written: FrameCount,
}

impl Counting {
    fn count(counter: &Counter, frames: &mut FrameCount, bytes: &[u8]) {
        counter
            .frames
            .fetch_add(frames.feed(bytes), Ordering::Relaxed);
        counter
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Counting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        let fresh = buf.filled().get(before..).unwrap_or_default();
        Self::count(&this.counter, &mut this.read, fresh);
        poll
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            Self::count(
                &this.counter,
                &mut this.written,
                buf.get(..*n).unwrap_or_default(),
            );
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::FrameCount;

    #[test]
    fn frames_are_counted_across_any_split() {
        // Frames of 0, 3, 200 (a two-byte length) and 1 payload bytes.
        let mut stream = vec![0u8, 3, 9, 9, 9, 0xc8, 0x01];
        stream.extend([7u8; 200]);
        stream.extend([1, 5]);
        for cut in 0..=stream.len() {
            let mut count = FrameCount::default();
            let (a, b) = stream.split_at(cut);
            assert_eq!(count.feed(a) + count.feed(b), 4, "cut at {cut}");
            assert_eq!(count.skip, 0);
        }
        let mut bytewise = FrameCount::default();
        let n: u64 = stream.iter().map(|b| bytewise.feed(&[*b])).sum();
        assert_eq!(n, 4);
    }
}
