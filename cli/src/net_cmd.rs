//! `hyper-cli seed`, `hyper-cli clone` and `hyper-cli core get --connect`:
//! replication over TCP, or with peers found through the DHT.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hyper_core::{Core, CoreKey, Durability, KeyPair, PublicKey, Store, StoreOptions};
use hyper_swarm::{JoinOptions, Path as PeerPath, Swarm, SwarmConfig};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, ServeEvent, connect_tcp, listen_tcp,
    serve_tcp_with,
};

use crate::CliError;
use crate::core_cmd::open_core;
use crate::json::Object;
use crate::swarm_cmd::{bootstrap_nodes, dht_requested};

/// How long `seed` waits for its first announcements before saying so.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(15);

/// Where `seed` serves.
pub struct SeedOn<'a> {
    /// A TCP address (`--listen`).
    pub listen: Option<&'a str>,
    /// DHT bootstrap nodes (`--bootstrap`).
    pub bootstrap: Option<&'a str>,
}

impl SeedOn<'_> {
    /// The DHT is used unless only `--listen` was asked for.
    fn dht(&self) -> bool {
        dht_requested(self.bootstrap) || self.listen.is_none()
    }
}

/// How often progress is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// Wait between reconnect attempts.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A store for replication: verified data is committed without an fsync per
/// batch (a crash loses at most the last batches, which are fetched again);
/// [`Store::flush`] makes it durable before the command reports success.
fn open_store(dir: &Path) -> Result<Store, CliError> {
    Ok(Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
        },
    )?)
}

/// One event-loop thread (store batches run on tokio's blocking pool):
/// fewer cross-thread wake-ups per round trip than a multi-thread runtime.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn parse_key(key: &str) -> Result<CoreKey, CliError> {
    key.parse::<CoreKey>()
        .map_err(|_| CliError::BadKey(key.to_string()))
}

/// `hyper-cli seed KEY... [--listen ADDR] [--bootstrap NODES]`: serves
/// cores until stopped.
pub fn seed(dir: &Path, keys: &[String], on: SeedOn<'_>, append: bool) -> Result<(), CliError> {
    // Appends are the writer's own data: fsynced per batch, like
    // `core append`. Serving alone only stores what peers send.
    let store = if append {
        Store::open(dir)?
    } else {
        open_store(dir)?
    };
    let cores = keys
        .iter()
        .map(|k| open_core(&store, k))
        .collect::<Result<Vec<Core>, CliError>>()?;
    if append {
        match cores.as_slice() {
            [core] if core.writable()? => {
                let core = core.clone();
                std::thread::spawn(move || {
                    if let Err(e) = append_lines(&core) {
                        eprintln!("hyper-cli: appending stdin failed: {e}");
                    }
                });
            }
            _ => return Err(CliError::AppendTarget),
        }
    }
    runtime()?.block_on(async {
        let identity = KeyPair::generate()?;
        let replication = Replication::new(
            store.clone(),
            identity.clone(),
            ReplicationOptions {
                all_cores: cores.is_empty(),
                ..ReplicationOptions::default()
            },
        );
        let mut out = std::io::stdout().lock();
        for core in &cores {
            replication.add_core(core);
            let info = core.info()?;
            writeln!(
                out,
                "seeding {} ({} blocks, {} bytes)",
                core.key(),
                info.length,
                info.byte_length
            )?;
        }
        if cores.is_empty() {
            for entry in store.list()? {
                writeln!(out, "seeding {} ({} blocks)", entry.key, entry.length)?;
            }
        }
        writeln!(out, "identity {}", replication.identity())?;
        out.flush()?;
        drop(out);
        // Keeps the swarm (and its announcements) alive while serving.
        let _swarm = if on.dht() {
            let topics: Vec<CoreKey> = if cores.is_empty() {
                store.list()?.into_iter().map(|e| e.key).collect()
            } else {
                cores.iter().map(Core::key).collect()
            };
            Some(announce(identity, &on, &replication, &topics).await?)
        } else {
            None
        };
        let Some(listen) = on.listen else {
            return std::future::pending().await;
        };
        let (listener, addr) = listen_tcp(listen).await?;
        // The address last: a script may stop reading after it. Nothing
        // else goes to stdout from here on (peer events go to stderr).
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        // Deadlines, connection caps and accept back-off: see hyper_wire::Limits.
        let _ = serve_tcp_with(&replication, listener, |event| match event {
            ServeEvent::Connected { addr, identity } => {
                eprintln!("peer {addr} connected ({identity})")
            }
            ServeEvent::Ended {
                addr,
                result: Ok(()),
            } => eprintln!("peer {addr} disconnected"),
            ServeEvent::Ended {
                addr,
                result: Err(e),
            } => eprintln!("peer {addr} dropped: {e}"),
            ServeEvent::HandshakeFailed { addr, error } => {
                eprintln!("peer {addr}: handshake failed: {error}")
            }
            ServeEvent::Refused { addr, reason } => eprintln!("peer {addr} refused: {reason}"),
            ServeEvent::AcceptFailed(e) => eprintln!("hyper-cli: accepting failed (retrying): {e}"),
            _ => {}
        })
        .await;
        Ok(())
    })
}

/// Joins the DHT as `identity`, announces each of `topics`' discovery keys
/// and replicates over every connection; prints `announced KEY` per core
/// once stored on DHT nodes.
async fn announce(
    identity: KeyPair,
    on: &SeedOn<'_>,
    replication: &Replication,
    keys: &[CoreKey],
) -> Result<Swarm, CliError> {
    let swarm = Swarm::new(SwarmConfig::new(identity, bootstrap_nodes(on.bootstrap)?)).await?;
    swarm.replicate(replication.clone());
    for key in keys {
        swarm.join(
            key.discovery_key().0,
            JoinOptions {
                server: true,
                client: false,
            },
        );
    }
    let mut out = std::io::stdout().lock();
    match tokio::time::timeout(ANNOUNCE_WAIT, swarm.flush()).await {
        Ok(flushed) => {
            flushed?;
            for key in keys {
                writeln!(out, "announced {key} on the DHT")?;
            }
        }
        Err(_) => eprintln!(
            "hyper-cli: no DHT node stored the announcements in {} s; still trying (check --bootstrap)",
            ANNOUNCE_WAIT.as_secs()
        ),
    }
    out.flush()?;
    Ok(swarm)
}

/// Appends stdin lines to `core` as they come: each batch is every line
/// already read (at most 1,000), so a fast producer gets batches and a slow
/// one gets each line at once. Peers hear of each batch right away.
fn append_lines(core: &Core) -> Result<(), CliError> {
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    loop {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut line = Vec::new();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            batch.push(line);
            let more_buffered = input.buffer().contains(&b'\n');
            if !more_buffered || batch.len() >= 1000 {
                break;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        core.append_batch(&batch)?;
    }
}

/// Where `clone` finds peers.
pub enum Source<'a> {
    /// One peer at a TCP address (`--connect`).
    Tcp(&'a str),
    /// Peers found through the DHT (`--bootstrap`, or its defaults).
    Dht(Option<&'a str>),
}

/// Options of `hyper-cli clone`.
pub struct CloneOptions<'a> {
    pub key: &'a str,
    pub source: Source<'a>,
    pub live: bool,
    pub json: bool,
    /// Progress lines on stderr even when stdout is not a terminal.
    pub progress: bool,
    pub retry_for: Duration,
}

/// The download in progress, shared by both ways of finding peers.
struct Download<'a, F> {
    replication: &'a Replication,
    core: &'a Core,
    done: std::pin::Pin<&'a mut F>,
    progress: Progress,
    started: Instant,
    retry_for: Duration,
}

/// The peers a clone used.
struct Peers {
    connections: u64,
    /// Through the DHT: each peer's key and path.
    found: Vec<(PublicKey, PeerPath)>,
    /// Through the DHT: seconds from the start (lookup included) to the
    /// first authenticated connection.
    connect_seconds: Option<f64>,
}

/// `hyper-cli clone KEY (--connect ADDR | --bootstrap NODES)`: downloads
/// the whole core.
pub fn clone(dir: &Path, options: CloneOptions<'_>) -> Result<(), CliError> {
    let key = parse_key(options.key)?;
    let store = open_store(dir)?;
    let core = store.replica(&key)?;
    store.flush()?;
    let present = core.info()?.blocks_stored;
    runtime()?.block_on(async {
        let identity = KeyPair::generate()?;
        let replication = Replication::new(store.clone(), identity.clone(), ReplicationOptions::default());
        replication.add_core(&core);
        let range = if options.live {
            DownloadRange::live()
        } else {
            DownloadRange::all()
        };
        let done = replication.download(&core, range);
        tokio::pin!(done);
        let progress = Progress::new(if options.progress {
            ProgressStyle::Lines
        } else if std::io::stdout().is_terminal() && !options.json {
            ProgressStyle::Bar
        } else {
            ProgressStyle::Quiet
        });
        let mut download = Download {
            replication: &replication,
            core: &core,
            done,
            progress,
            started: Instant::now(),
            retry_for: options.retry_for,
        };
        let peers = match options.source {
            Source::Tcp(addr) => Peers {
                connections: over_tcp(&mut download, addr).await?,
                found: Vec::new(),
                connect_seconds: None,
            },
            Source::Dht(bootstrap) => over_dht(&mut download, identity, bootstrap).await?,
        };
        download.progress.clear();
        store.flush()?;
        let info = core.info()?;
        let seconds = download.started.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        if options.json {
            let mut o = Object::default()
                .str("key", Some(&key.to_string()))
                .num("blocks", info.blocks_stored)
                .num("bytes", info.bytes_stored)
                .num("fetched", info.blocks_stored - present.min(info.blocks_stored))
                .float("seconds", seconds)
                .num("connections", peers.connections)
                .num("length", info.length)
                .num("fork", info.fork);
            if matches!(options.source, Source::Dht(_)) {
                let found = peers
                    .found
                    .iter()
                    .map(|(key, path)| {
                        Object::default()
                            .str("key", Some(&key.to_string()))
                            .str("path", Some(path.as_str()))
                    })
                    .collect();
                o = o.objects("peers", found);
                if let Some(connect) = peers.connect_seconds {
                    o = o.float("connect_seconds", connect);
                }
            }
            writeln!(out, "{}", o.finish())?;
        } else {
            writeln!(
                out,
                "cloned {key}: {} blocks, {} bytes ({} fetched, {} already here) in {seconds:.2} s, {:.1} MB/s",
                info.blocks_stored,
                info.bytes_stored,
                info.blocks_stored - present.min(info.blocks_stored),
                present,
                info.bytes_stored as f64 / 1e6 / seconds.max(1e-9),
            )?;
        }
        out.flush()?;
        Ok(())
    })
}

/// Downloads from the peer at `addr`, reconnecting while it is lost for
/// less than the retry time; the connections made.
async fn over_tcp<F>(d: &mut Download<'_, F>, addr: &str) -> Result<u64, CliError>
where
    F: std::future::Future<Output = hyper_wire::Result<()>>,
{
    let mut connections = 0u64;
    let mut last_contact = Instant::now();
    loop {
        let connection = match connect_tcp(d.replication, addr).await {
            Ok(c) => {
                connections += 1;
                last_contact = Instant::now();
                Some(c)
            }
            Err(e) => {
                if last_contact.elapsed() > d.retry_for {
                    return Err(CliError::Unreachable {
                        addr: addr.to_string(),
                        error: e,
                    });
                }
                None
            }
        };
        let closed = async {
            match connection {
                Some(c) => c.closed().await,
                None => {
                    tokio::time::sleep(RECONNECT_EVERY).await;
                    Ok(())
                }
            }
        };
        tokio::pin!(closed);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let ended = loop {
            tokio::select! {
                done = &mut d.done => break Some(done),
                why = &mut closed => {
                    if let Err(e) = why {
                        d.progress.clear();
                        eprintln!("hyper-cli: connection to {addr} lost: {e}; reconnecting");
                    }
                    break None;
                }
                _ = tick.tick() => {
                    d.progress.draw(d.core, d.started)?;
                    // Connected, yet nothing about the core arrived: a
                    // peer without it never answers its open (by design
                    // it cannot tell), so give up after the retry time.
                    if connections > 0
                        && last_contact.elapsed() > d.retry_for
                        && d.replication.synced_peers(d.core).await == 0
                    {
                        d.progress.clear();
                        return Err(CliError::NotServed {
                            addr: addr.to_string(),
                            seconds: d.retry_for.as_secs(),
                        });
                    }
                }
            }
        };
        match ended {
            Some(done) => return done.map(|()| connections).map_err(CliError::from),
            None => {
                if connections > 0 {
                    last_contact = Instant::now();
                }
                tokio::time::sleep(RECONNECT_EVERY / 4).await;
            }
        }
    }
}

/// Downloads from whoever the DHT finds under the core's discovery key;
/// fails if nobody is found within the retry time.
async fn over_dht<F>(
    d: &mut Download<'_, F>,
    identity: KeyPair,
    bootstrap: Option<&str>,
) -> Result<Peers, CliError>
where
    F: std::future::Future<Output = hyper_wire::Result<()>>,
{
    let swarm = Swarm::new(SwarmConfig::new(identity, bootstrap_nodes(bootstrap)?)).await?;
    let Some(mut incoming) = swarm.connections() else {
        return Err(CliError::Swarm(hyper_swarm::Error::Stopped));
    };
    swarm.join(
        d.core.key().discovery_key().0,
        JoinOptions {
            server: false,
            client: true,
        },
    );
    let mut peers = Peers {
        connections: 0,
        found: Vec::new(),
        connect_seconds: None,
    };
    let looking = Instant::now();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            done = &mut d.done => return done.map(|()| peers).map_err(CliError::from),
            Some(connection) = incoming.recv() => {
                peers.connections += 1;
                peers
                    .connect_seconds
                    .get_or_insert_with(|| d.started.elapsed().as_secs_f64());
                if !peers.found.iter().any(|(k, _)| *k == connection.remote) {
                    peers.found.push((connection.remote, connection.path));
                }
                let replication = d.replication.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection.replicate(&replication).await {
                        eprintln!("hyper-cli: peer connection ended: {e}");
                    }
                });
            }
            _ = tick.tick() => {
                d.progress.draw(d.core, d.started)?;
                if looking.elapsed() > d.retry_for && d.replication.synced_peers(d.core).await == 0 {
                    d.progress.clear();
                    return Err(CliError::NoPeers { seconds: d.retry_for.as_secs() });
                }
            }
        }
    }
}

/// `hyper-cli core get KEY INDEX --connect ADDR`: one block, fetched
/// sparsely if it is not stored here.
pub fn get(
    dir: &Path,
    key: &str,
    index: u64,
    connect: &str,
    timeout: Duration,
) -> Result<(), CliError> {
    let store = open_store(dir)?;
    let core = match open_core(&store, key) {
        Ok(core) => core,
        Err(CliError::NoSuchCore(_)) => store.replica(&parse_key(key)?)?,
        Err(e) => return Err(e),
    };
    // Only a block that is not here goes to the network; other local
    // errors (I/O, corruption) are reported as they are.
    let block = match core.get(index) {
        Ok(block) => block,
        Err(hyper_core::Error::NotAvailable { .. } | hyper_core::Error::OutOfBounds { .. }) => {
            runtime()?.block_on(async {
                let replication = Replication::new(
                    store.clone(),
                    KeyPair::generate()?,
                    ReplicationOptions::default(),
                );
                replication.add_core(&core);
                let _connection = connect_tcp(&replication, connect).await?;
                let block = replication.get(&core, index, timeout).await?;
                store.flush()?;
                Ok::<_, CliError>(block)
            })?
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&block)?;
    out.flush()?;
    Ok(())
}

/// How `clone` shows progress.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ProgressStyle {
    /// Nothing (stdout is not a terminal).
    Quiet,
    /// One redrawn line on stdout (a terminal).
    Bar,
    /// A line per update on stderr (`--progress`).
    Lines,
}

/// Progress of a download: blocks, bytes and rate.
struct Progress {
    style: ProgressStyle,
    drawn: bool,
}

impl Progress {
    fn new(style: ProgressStyle) -> Self {
        Progress {
            style,
            drawn: false,
        }
    }

    fn draw(&mut self, core: &Core, started: Instant) -> Result<(), CliError> {
        if self.style == ProgressStyle::Quiet {
            return Ok(());
        }
        let info = core.info()?;
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "{}/{} blocks  {:.1} MB  {:.1} MB/s",
            info.blocks_stored,
            info.length,
            info.bytes_stored as f64 / 1e6,
            info.bytes_stored as f64 / 1e6 / seconds
        );
        if self.style == ProgressStyle::Lines {
            eprintln!("progress: {line}");
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        write!(out, "\r\x1b[K{line}")?;
        out.flush()?;
        self.drawn = true;
        Ok(())
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
            self.drawn = false;
        }
    }
}
