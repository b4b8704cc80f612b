//! W4 (full replication) and W5 (sparse gets) over TCP loopback. As on the
//! JavaScript side, the writer runs in its own process (`hyper-bench serve
//! DIR`, this binary) and the reader here, with a fresh store, knowing only
//! the key; the stream is Noise-encrypted. Wire bytes are counted at the
//! reader's socket.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions, listen_tcp, serve_tcp};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::report::Line;
use crate::workloads::{Append, MB, Result, fill, random_blocks};

/// One event-loop thread per process, as on the JavaScript side (store
/// batches still run on tokio's blocking pool). Measured here: W5 p50
/// 0.27-0.30 ms against 0.33-0.37 ms with two worker threads (fewer
/// cross-thread wake-ups per round trip), and W4 no slower.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `hyper-bench serve DIR`: serves every core of the store in DIR on a free
/// loopback port, prints the port, and exits when stdin closes.
pub fn serve(dir: &Path) -> Result<()> {
    let store = Store::open(dir)?;
    runtime()?.block_on(async {
        let replication = Replication::new(
            store,
            KeyPair::generate()?,
            ReplicationOptions {
                all_cores: true,
                ..ReplicationOptions::default()
            },
        );
        let (listener, addr) = listen_tcp("127.0.0.1:0").await?;
        let _server = serve_tcp(&replication, listener);
        println!("{}", addr.port());
        until_stdin_closes().await
    })
}

/// Waits until this process's stdin closes: how a serving child learns
/// that the benchmark is done with it.
pub(crate) async fn until_stdin_closes() -> Result<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await?;
    Ok(())
}

/// The serving child process; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(dir: &Path) -> Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line.trim().parse()?;
        Ok(Server { child, port })
    }
}

impl Server {
    /// The serving process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A stream that counts the bytes through it.
struct Counted {
    inner: TcpStream,
    bytes: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A reader store (eventual durability, like the reference's) and its
/// replication, connected to `port` through a byte-counting stream.
pub(crate) async fn reader(dir: &Path, port: u16) -> Result<(Store, Replication, Arc<AtomicU64>)> {
    let store = Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let replication = Replication::new(
        store.clone(),
        KeyPair::generate()?,
        ReplicationOptions::default(),
    );
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: stream,
        bytes: bytes.clone(),
    };
    let _connection = replication.add_stream(counted, true).await?;
    Ok((store, replication, bytes))
}

/// A writer store holding `shape`'s core (built untimed), its key, and the
/// process serving it.
fn served_writer(shape: Append, count: u64) -> Result<(tempfile::TempDir, CoreKey, Server)> {
    let dir = tempfile::tempdir()?;
    let blocks = random_blocks(count, shape.block_size, 1);
    fill(dir.path(), &blocks, shape.batch, Durability::Eventual)?;
    drop(blocks);
    let key = Store::open(dir.path())?.named("bench")?.key();
    let server = Server::start(dir.path())?;
    Ok((dir, key, server))
}

/// W4: the W1 and W2 cores, each downloaded in full by a fresh reader.
pub fn full(scale: u64) -> Result<()> {
    for shape in [Append::SMALL, Append::LARGE] {
        let count = shape.blocks / scale;
        let (_writer_dir, key, server) = served_writer(shape, count)?;
        let reader_dir = tempfile::tempdir()?;
        let (seconds, wire) = runtime()?.block_on(async {
            let start = Instant::now();
            let (store, replication, bytes) = reader(reader_dir.path(), server.port).await?;
            let core = store.replica(&key)?;
            replication.download(&core, DownloadRange::all()).await?;
            let seconds = start.elapsed().as_secs_f64();
            let info = core.info()?;
            if info.length != count || info.contiguous_length != count {
                return Err(format!("downloaded {} of {count}", info.contiguous_length).into());
            }
            Ok::<_, Box<dyn std::error::Error>>((seconds, bytes.load(Ordering::Relaxed)))
        })?;
        drop(server);
        Line::new("W4")
            .text("durability", "eventual")
            .int("block_size", shape.block_size as u64)
            .int("blocks", count)
            .num(
                "mb_per_sec",
                (count as usize * shape.block_size) as f64 / MB / seconds,
            )
            .num("seconds", seconds)
            .int("wire_bytes", wire)
            .print(scale)?;
    }
    Ok(())
}

/// W5: 1,000 distinct random blocks, one at a time, from a 100,000-block
/// writer.
pub fn sparse(scale: u64) -> Result<()> {
    let count = Append::SMALL.blocks / scale;
    let gets = count.min(1000 / scale.min(1000)).max(1);
    let (_writer_dir, key, server) = served_writer(Append::SMALL, count)?;
    let reader_dir = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut indexes: Vec<u64> = (0..count).collect();
    for i in 0..gets as usize {
        let j = rng.random_range(i..indexes.len());
        indexes.swap(i, j);
    }
    indexes.truncate(gets as usize);
    let (mut latencies, wire) = runtime()?.block_on(async {
        let (store, replication, bytes) = reader(reader_dir.path(), server.port).await?;
        let core = store.replica(&key)?;
        replication.add_core(&core);
        // Learn the length first, as the reference does with update().
        while core.info()?.length < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = bytes.load(Ordering::Relaxed);
        let mut latencies = Vec::with_capacity(indexes.len());
        for &i in &indexes {
            let start = Instant::now();
            let block = replication.get(&core, i, Duration::from_secs(30)).await?;
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            if block.len() != Append::SMALL.block_size {
                return Err(format!("block {i} has {} bytes", block.len()).into());
            }
        }
        let wire = bytes.load(Ordering::Relaxed) - before;
        Ok::<_, Box<dyn std::error::Error>>((latencies, wire))
    })?;
    drop(server);
    latencies.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[i.clamp(1, latencies.len()) - 1]
    };
    Line::new("W5")
        .int("blocks", count)
        .int("gets", gets)
        .num("p50_ms", rank(50.0))
        .num("p99_ms", rank(99.0))
        .num("wire_bytes_per_block", wire as f64 / gets as f64)
        .print(scale)?;
    Ok(())
}
