//! W8 (autobase): three writers, each a [`Base`] on its own store, all three
//! indexers, replicating their writer cores to each other over a full mesh
//! of Noise-encrypted TCP loopback connections (live downloads). The view is
//! one core that gets every op appended in linearized order.
//!
//! Setup (untimed): writer 0 creates the base with the other two writers'
//! keys as indexers (our indexer set is fixed at creation; the reference
//! adds them with `addWriter`, which makes them indexers by default), the
//! base's first core reaches the others, and they join.
//!
//! Timed: from the start signal (each writer then appends its ops, `batch`
//! per append, concurrently with the others, acking as the ack policy asks)
//! until all three views hold every op and agree (the same BLAKE3 hash of
//! the view's blocks). `ops_per_sec` = all ops / seconds. The writers run in
//! one process here (three threads and one two-thread runtime for the
//! replications), three processes on the reference side.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hyper_autobase::{Apply, Base, Batch, Host, View};
use hyper_core::{CoreKey, Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};

use crate::report::Line;
use crate::workloads::Result;

pub(crate) const WRITERS: usize = 3;
const OPS_PER_WRITER: u64 = 10_000;
const VIEW: &str = "ops";
/// The writer core's name in each store.
const NAME: &str = "w8";
/// Gives up after this long (the line then says so; no figure is made up).
const TIMEOUT: Duration = Duration::from_secs(1800);

/// Appends every op to the view, in order.
pub(crate) struct Log;

impl Apply for Log {
    fn apply(
        &mut self,
        batch: &Batch,
        view: &mut View<'_>,
        _host: &mut Host<'_>,
    ) -> hyper_autobase::Result<()> {
        for value in batch.values.iter().flatten() {
            view.append(VIEW, value)?;
        }
        Ok(())
    }
}

/// What each writer does: `ops` ops, `batch` per append, until its view
/// holds `target`.
#[derive(Clone, Copy)]
struct Load {
    ops: u64,
    batch: usize,
    target: u64,
}

/// Runs W8 with one op per append and with arrays of 100.
pub fn run(scale: u64) -> Result<()> {
    for batch in [1, 100] {
        one(scale, batch)?;
    }
    Ok(())
}

fn one(scale: u64, batch: usize) -> Result<()> {
    let ops = (OPS_PER_WRITER / scale).max(1);
    let target = ops * WRITERS as u64;
    let set = Writers::new()?;
    let Writers { stores, keys, .. } = &set;
    let runtime = runtime()?;
    // Every store serves and downloads every writer core, live.
    let mesh = runtime.block_on(Mesh::connect(stores, keys))?;
    let mut first = Some(set.create()?);
    let load = Load { ops, batch, target };
    let start_line = Arc::new(Barrier::new(WRITERS + 1));
    let writers = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let (store, base_key, start_line) = (store.clone(), keys[0], start_line.clone());
            // Writer 0 goes on with the base it created.
            let created = first.take();
            thread::spawn(move || {
                writer(&store, base_key, created, i, load, &start_line)
                    .map_err(|e| format!("W8 writer {i}: {e}"))
            })
        })
        .collect::<Vec<_>>();
    start_line.wait();
    let started = Instant::now();
    let mut bases = Vec::new();
    let mut end = started;
    for w in writers {
        match w.join().map_err(|_| "a W8 writer panicked")?? {
            Some((base, done)) => {
                bases.push(base);
                end = end.max(done);
            }
            None => {
                let mut line = fields("W8", ops, batch);
                line.text("timed_out", "true")
                    .int("seconds", TIMEOUT.as_secs());
                return Ok(line.print(scale)?);
            }
        }
    }
    // Each view holds every op; they agree once each peer has every node
    // (an ack appended late may still reach another peer).
    while !agree(&mut bases, target)? {
        if started.elapsed() > TIMEOUT {
            return Err("W8: the three views hold every op but do not agree".into());
        }
        thread::sleep(Duration::from_millis(1));
        end = Instant::now();
    }
    drop(mesh);
    runtime.shutdown_timeout(Duration::from_secs(1));
    let seconds = end.duration_since(started).as_secs_f64();
    fields("W8", ops, batch)
        .num("ops_per_sec", target as f64 / seconds)
        .num("seconds", seconds)
        .print(scale)?;
    Ok(())
}

/// The fields every W8 (and W8-reorder) line has.
pub(crate) fn fields(workload: &str, ops: u64, batch: usize) -> Line {
    let mut line = Line::new(workload);
    line.int("writers", WRITERS as u64)
        .int("indexers", WRITERS as u64)
        .int("ops_per_writer", ops)
        .int("append_batch", batch as u64);
    line
}

/// Updates every base; whether their views' first `target` blocks are the
/// same.
pub(crate) fn agree(bases: &mut [Base<Log>], target: u64) -> Result<bool> {
    let mut hashes = Vec::new();
    for base in bases.iter_mut() {
        base.update()?;
        let view = base.view(VIEW).ok_or("W8: no view")?;
        let mut hash = blake3::Hasher::new();
        for i in 0..target {
            hash.update(&view.get(i)?);
        }
        hashes.push(hash.finalize());
    }
    Ok(hashes.iter().all(|h| *h == hashes[0]))
}

/// The writers' stores (each in its own tempdir, eventual durability) and
/// their writer core keys; writer 0's key is the base key.
pub(crate) struct Writers {
    _dirs: Vec<tempfile::TempDir>,
    pub(crate) stores: Vec<Store>,
    pub(crate) keys: Vec<CoreKey>,
}

impl Writers {
    /// [`WRITERS`] fresh stores.
    pub(crate) fn new() -> Result<Writers> {
        let dirs = (0..WRITERS)
            .map(|_| tempfile::tempdir())
            .collect::<std::io::Result<Vec<_>>>()?;
        let stores = dirs
            .iter()
            .map(|d| {
                Store::open_with(
                    d.path(),
                    StoreOptions {
                        durability: Durability::Eventual,
                        ..Default::default()
                    },
                )
            })
            .collect::<hyper_core::Result<Vec<_>>>()?;
        let keys = stores
            .iter()
            .map(|s| Ok(s.named(NAME)?.key()))
            .collect::<hyper_core::Result<Vec<CoreKey>>>()?;
        Ok(Writers {
            _dirs: dirs,
            stores,
            keys,
        })
    }

    /// Creates the base in store 0 with every writer an indexer, and waits
    /// until its header reached the other stores (the mesh must be up), so
    /// they can [`Writers::join`].
    pub(crate) fn create(&self) -> Result<Base<Log>> {
        let signers = self.stores[1..]
            .iter()
            .map(|s| Base::<Log>::signing_key(s, NAME))
            .collect::<hyper_autobase::Result<Vec<_>>>()?;
        let base = Base::create(&self.stores[0], NAME, &signers, &[VIEW], Log)?;
        for store in &self.stores[1..] {
            wait_for_header(store, &self.keys[0])?;
        }
        Ok(base)
    }

    /// Writer `i`'s base: joined (`i` > 0; the base header must be here).
    pub(crate) fn join(&self, i: usize) -> hyper_autobase::Result<Base<Log>> {
        join(&self.stores[i], self.keys[0])
    }
}

/// Joins the base `key` with `store`'s writer core.
fn join(store: &Store, key: CoreKey) -> hyper_autobase::Result<Base<Log>> {
    Base::join(store, key, NAME, &[VIEW], Log)
}

/// Op `i` of writer `writer`: a small JSON object.
pub(crate) fn op(writer: usize, i: u64) -> Vec<u8> {
    format!("{{\"w\":{writer},\"i\":{i}}}").into_bytes()
}

/// The runtime the replications run on: two threads.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The replications of the stores and their connections, kept open.
pub(crate) struct Mesh {
    _replications: Vec<Replication>,
    _servers: Vec<tokio::task::JoinHandle<()>>,
    _connections: Vec<hyper_wire::Connection>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for s in &self._servers {
            s.abort();
        }
    }
}

impl Mesh {
    /// A replication per store, each serving on loopback, connected in a
    /// full mesh, every other writer's core downloading live.
    pub(crate) async fn connect(stores: &[Store], keys: &[CoreKey]) -> Result<Mesh> {
        let mut mesh = Mesh {
            _replications: Vec::new(),
            _servers: Vec::new(),
            _connections: Vec::new(),
        };
        let mut addrs = Vec::new();
        for store in stores {
            let r = Replication::new(
                store.clone(),
                KeyPair::generate()?,
                ReplicationOptions::default(),
            );
            let (listener, addr) = listen_tcp("127.0.0.1:0").await?;
            mesh._servers.push(serve_tcp(&r, listener));
            for key in keys {
                let core = store.replica(key)?;
                r.add_core(&core);
                if !core.writable()? {
                    let r = r.clone();
                    tokio::spawn(async move { r.download(&core, DownloadRange::live()).await });
                }
            }
            for addr in &addrs {
                mesh._connections.push(connect_tcp(&r, *addr).await?);
            }
            addrs.push(addr);
            mesh._replications.push(r);
        }
        Ok(mesh)
    }
}

/// Waits until `store` holds block 0 of `key` (the base header).
fn wait_for_header(store: &Store, key: &CoreKey) -> Result<()> {
    let core = store.replica(key)?;
    let started = Instant::now();
    while !core.has(0)? {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("W8: the base header of {key} never arrived").into());
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// One writer: `created` (writer 0's base) or the base joined, waits for
/// the start, appends its ops, then updates until its view holds `target`
/// ops. Returns the base
/// and when its view got there, or `None` on timeout.
fn writer(
    store: &Store,
    base_key: CoreKey,
    created: Option<Base<Log>>,
    index: usize,
    load: Load,
    start_line: &Barrier,
) -> hyper_autobase::Result<Option<(Base<Log>, Instant)>> {
    let mut base = match created {
        Some(base) => base,
        None => join(store, base_key)?,
    };
    start_line.wait();
    let started = Instant::now();
    let mut next = 0u64;
    let Load { ops, batch, target } = load;
    while next < ops {
        let n = (batch as u64).min(ops - next);
        let values: Vec<Vec<u8>> = (next..next + n).map(|i| op(index, i)).collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        base.append(&refs)?;
        base.ack(false)?;
        next += n;
    }
    let view = base
        .view(VIEW)
        .ok_or_else(|| hyper_autobase::Error::NoSuchView(VIEW.to_string()))?
        .clone();
    loop {
        base.update()?;
        base.ack(false)?;
        if view.info()?.length >= target {
            return Ok(Some((base, Instant::now())));
        }
        if started.elapsed() > TIMEOUT {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(1));
    }
}
