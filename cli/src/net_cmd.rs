//! `hyper-cli seed` and the `--connect` reads of
//! `core get`/`core cat`: replication over TCP, or with peers found through
//! the DHT (`clone` is in `clone_cmd`). Every wait is bounded by the command's own `--timeout` or
//! `--retry-for`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use hyper_core::{Core, CoreKey, Durability, EncryptionKey, KeyPair, Store};
use hyper_swarm::{JoinOptions, Swarm};
use hyper_wire::{
    Connection, DownloadRange, Replication, ReplicationOptions, ServeEvent, listen_tcp,
    serve_tcp_with,
};

use crate::core_cmd::open_core;
use crate::store::{Access, open};
use crate::swarm_cmd::{Discovery, bootstrap_nodes, dht_requested};
use crate::ticket::Ticket;
use crate::{CliError, Global};

/// How long `seed` waits for its first announcements before saying so.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(15);
/// How often progress is redrawn and stalls are checked.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// Wait between reconnect attempts.
pub(crate) const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// `hyper-cli seed`.
#[derive(Args)]
pub struct SeedArgs {
    /// Cores to serve (key or name); none serves every core in the store.
    keys: Vec<String>,
    /// Also (or, without --bootstrap and $HYPER_BOOTSTRAP, only) serve over
    /// TCP on this address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", value_parser = crate::args::address)]
    listen: Option<String>,
    /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP, else
    /// 127.0.0.1:49737].
    #[arg(long, value_name = "IP:PORT,...", value_parser = crate::args::address_list)]
    bootstrap: Option<String>,
    /// Do not announce on the local network (multicast DNS).
    #[arg(long)]
    no_local: bool,
    /// Do not announce on the DHT (only on the local network).
    #[arg(long, conflicts_with = "bootstrap")]
    no_dht: bool,
    /// Announce each core on the DHT under a key pair of its own (derived
    /// from this store's identity, the same every run), so the DHT nodes
    /// holding the announcements cannot tell the cores are seeded by one
    /// peer. Such cores are not announced on the local network.
    #[arg(long, conflicts_with = "no_dht")]
    identity_per_topic: bool,
    /// While serving, append each line of stdin (newline kept) as a block to
    /// the one writable core given, so live clones follow.
    #[arg(long)]
    append: bool,
    /// With --append: append even to a core that holds a bee.
    #[arg(long, requires = "append")]
    force: bool,
}

impl SeedArgs {
    /// Serving `keys` (as `seed KEY...` would), on `listen` and the
    /// bootstrap nodes given, local discovery and the DHT as by default.
    pub fn for_cores(keys: Vec<String>, listen: Option<String>, bootstrap: Option<String>) -> Self {
        SeedArgs {
            keys,
            listen,
            bootstrap,
            no_local: false,
            no_dht: false,
            identity_per_topic: false,
            append: false,
            force: false,
        }
    }

    /// The swarm is used unless only `--listen` was asked for, or both of
    /// its layers are off.
    fn swarm(&self) -> bool {
        (dht_requested(self.bootstrap.as_deref()) || self.listen.is_none())
            && (!self.no_local || !self.no_dht)
    }

    fn discovery(&self) -> Discovery<'_> {
        Discovery {
            bootstrap: self.bootstrap.as_deref(),
            local: !self.no_local,
            dht: !self.no_dht,
            identity_per_topic: self.identity_per_topic,
        }
    }
}

/// One event-loop thread (store batches run on tokio's blocking pool):
/// fewer cross-thread wake-ups per round trip than a multi-thread runtime.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn parse_key(key: &str) -> Result<CoreKey, CliError> {
    key.parse::<CoreKey>()
        .map_err(|_| CliError::BadKey(key.to_string()))
}

/// A replication for reading from peers, with a fresh identity (a reader
/// is not linked across runs).
pub(crate) fn reader(store: &Store) -> Result<Replication, CliError> {
    Ok(Replication::new(
        store.clone(),
        KeyPair::generate()?,
        ReplicationOptions::default(),
    ))
}

/// A [`reader`] serving `core`.
fn replication_for(store: &Store, core: &Core) -> Result<Replication, CliError> {
    let replication = reader(store)?;
    replication.add_core(core);
    Ok(replication)
}

/// How long a dial of one of several addresses waits before the next
/// address is dialled too (the first to finish its handshake is kept).
const DIAL_STAGGER: Duration = Duration::from_millis(300);

/// Dials `addrs` (one address, or a ticket's comma-separated list, most
/// preferred first) and completes the handshake within `limit`. The
/// addresses of a list are dialled one after another [`DIAL_STAGGER`]
/// apart, without waiting for a silent one; the first handshake done wins
/// and the other dials are dropped. If every one fails, the error of the
/// first address.
pub async fn connect_within(
    replication: &Replication,
    addrs: &str,
    limit: Duration,
) -> Result<Connection, CliError> {
    Ok(connect_to(replication, addrs, limit).await?.0)
}

/// [`connect_within`], also giving the address the connection went to.
#[tracing::instrument(level = "debug", skip(replication))]
pub async fn connect_to(
    replication: &Replication,
    addrs: &str,
    limit: Duration,
) -> Result<(Connection, SocketAddr), CliError> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let list: Vec<&str> = crate::args::split_list(addrs).collect();
    let mut dials: FuturesUnordered<_> = list
        .iter()
        .enumerate()
        .map(|(i, addr)| async move {
            let delay = DIAL_STAGGER.saturating_mul(i as u32).min(limit);
            tokio::time::sleep(delay).await;
            (i, connect_one(replication, addr, limit - delay).await)
        })
        .collect();
    let mut errors: Vec<(usize, CliError)> = Vec::new();
    while let Some((i, result)) = dials.next().await {
        match result {
            Ok(connection) => return Ok(connection),
            Err(e) => errors.push((i, e)),
        }
    }
    errors.sort_by_key(|(i, _)| *i);
    Err(errors
        .into_iter()
        .next()
        .map(|(_, e)| e)
        .unwrap_or_else(|| CliError::BadAddress {
            addr: addrs.to_string(),
            why: "no address in the list".into(),
        }))
}

/// Dials one `addr` and completes the handshake within `limit`; the
/// connection and the address it resolved to.
async fn connect_one(
    replication: &Replication,
    addr: &str,
    limit: Duration,
) -> Result<(Connection, SocketAddr), CliError> {
    let resolved = crate::args::resolve(addr)?;
    tracing::debug!(%resolved, "connecting");
    match tokio::time::timeout(limit, hyper_wire::connect_tcp(replication, resolved)).await {
        Ok(Ok(connection)) => {
            tracing::debug!(peer = %connection.remote_identity(), "connected");
            Ok((connection, resolved))
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "connection failed");
            Err(CliError::Connect {
                addr: addr.to_string(),
                error,
            })
        }
        Err(_) => Err(CliError::NoAnswer {
            addr: addr.to_string(),
            what: "the connection and handshake".into(),
            seconds: limit.as_secs(),
        }),
    }
}

/// Opens the core named `key` for a read from a peer: a local core, or a
/// replica made for it (removed again by [`forget_if_empty`] if nothing
/// arrives). Whether it was made here.
fn core_or_replica(store: &Store, key: &str) -> Result<(Core, bool), CliError> {
    match open_core(store, key) {
        Ok(core) => Ok((core, false)),
        Err(CliError::NoSuchCore(_)) => Ok((store.replica(&parse_key(key)?)?, true)),
        Err(e) => Err(e),
    }
}

/// Removes a replica this command made if it holds nothing (a failed clone
/// or read leaves no empty entry behind).
pub fn forget_if_empty(store: &Store, core: &Core, made: bool) {
    if made && core.info().is_ok_and(|i| i.blocks_stored == 0) {
        let _ = store.delete(&core.key());
        let _ = store.flush();
    }
}

/// Why block `index` did not come from the peer at `addr` in `waited`:
/// the peer does not serve the core, the block is past its length, or it
/// just did not answer.
async fn why_not(
    replication: &Replication,
    core: &Core,
    addr: &str,
    index: u64,
    waited: Duration,
) -> CliError {
    let key = core.key().to_string();
    if replication.synced_peers(core).await == 0 {
        return CliError::NotServed {
            addr: addr.to_string(),
            key,
            seconds: waited.as_secs(),
        };
    }
    match core.info() {
        Ok(info) if index >= info.length => CliError::PastPeerLength {
            addr: addr.to_string(),
            key,
            index,
            length: info.length,
        },
        _ => CliError::NoAnswer {
            addr: addr.to_string(),
            what: format!("block {index} of core {key}"),
            seconds: waited.as_secs(),
        },
    }
}

/// Fetches block `index` of `core` from the peer behind `replication`
/// within `limit`, or says why not.
async fn fetch_block(
    replication: &Replication,
    core: &Core,
    addr: &str,
    index: u64,
    limit: Duration,
) -> Result<Vec<u8>, CliError> {
    match replication.get(core, index, limit).await {
        Ok(block) => Ok(block),
        Err(hyper_wire::Error::Timeout) => {
            Err(why_not(replication, core, addr, index, limit).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// `hyper-cli core get KEY INDEX --connect ADDR`: one block, fetched
/// sparsely if it is not stored here, and decrypted with `encryption` if
/// one is given (the block is checked against the tree first, so a wrong
/// key is [`hyper_core::Error::Decrypt`], never garbage); everything within
/// `limit`.
pub fn get(
    dir: &Path,
    key: &str,
    index: u64,
    addr: &str,
    encryption: Option<&EncryptionKey>,
    limit: Duration,
) -> Result<Vec<u8>, CliError> {
    let store = open(dir, Access::Write, Durability::Eventual)?;
    let (core, made) = core_or_replica(&store, key)?;
    let core = match encryption {
        Some(secret) => core.with_encryption(secret)?,
        None => core,
    };
    // Only a block that is not here goes to the network; other local
    // errors (I/O, corruption) are reported as they are.
    let result = match core.get(index) {
        Ok(block) => Ok(block),
        Err(hyper_core::Error::NotAvailable { .. } | hyper_core::Error::OutOfBounds { .. }) => {
            runtime()?.block_on(async {
                let started = Instant::now();
                let replication = replication_for(&store, &core)?;
                let _connection = connect_within(&replication, addr, limit).await?;
                let left = limit.saturating_sub(started.elapsed());
                let block = fetch_block(&replication, &core, addr, index, left).await?;
                store.flush()?;
                Ok(block)
            })
        }
        Err(e) => Err(e.into()),
    };
    if result.is_err() {
        forget_if_empty(&store, &core, made);
    }
    result
}

/// `core cat --connect`: fetches the blocks of `range` (clipped to the
/// core's length) that are not stored here; the core, to read locally.
/// Gives up when no block arrives for `limit`.
pub fn fetch_range(
    dir: &Path,
    key: &str,
    range: Range<u64>,
    addr: &str,
    limit: Duration,
) -> Result<Core, CliError> {
    let store = open(dir, Access::Write, Durability::Eventual)?;
    let (core, made) = core_or_replica(&store, key)?;
    let result = runtime()?.block_on(async {
        let replication = replication_for(&store, &core)?;
        let _connection = connect_within(&replication, addr, limit).await?;
        // The first block brings the peer's length.
        if core.get(range.start).is_err() {
            fetch_block(&replication, &core, addr, range.start, limit).await?;
        }
        let end = range.end.min(core.info()?.length);
        let done = replication.download(&core, DownloadRange::range(range.start..end));
        tokio::pin!(done);
        let mut stall = Stall::new(limit);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                done = &mut done => break done?,
                _ = tick.tick() => {
                    if stall.stalled(&core.info()?) {
                        return Err(stall.error(&core)?);
                    }
                }
            }
        }
        store.flush()?;
        Ok(())
    });
    if result.is_err() {
        forget_if_empty(&store, &core, made);
    }
    result.map(|()| core)
}

/// Notices a download that has stopped getting blocks.
pub(crate) struct Stall {
    limit: Duration,
    stored: u64,
    since: Instant,
}

impl Stall {
    pub(crate) fn new(limit: Duration) -> Self {
        Stall {
            limit,
            stored: 0,
            since: Instant::now(),
        }
    }

    /// Whether blocks are missing and none arrived for the limit.
    pub(crate) fn stalled(&mut self, info: &hyper_core::Info) -> bool {
        if info.blocks_stored != self.stored || info.blocks_stored >= info.length {
            self.stored = info.blocks_stored;
            self.since = Instant::now();
            return false;
        }
        info.length > 0 && self.since.elapsed() > self.limit
    }

    /// What is missing, as an error.
    pub(crate) fn error(&self, core: &Core) -> Result<CliError, CliError> {
        let info = core.info()?;
        Ok(CliError::Incomplete {
            key: core.key().to_string(),
            stored: info.blocks_stored,
            length: info.length,
            missing: info.length - info.blocks_stored.min(info.length),
            first_missing: info.contiguous_length,
            seconds: self.limit.as_secs(),
        })
    }
}

/// `hyper-cli seed KEY... [--listen ADDR] [--bootstrap NODES]`: serves
/// cores until stopped.
pub fn seed(global: &Global, args: SeedArgs) -> Result<(), CliError> {
    let dir = global.store()?;
    // Appends are the writer's own data: fsynced per batch, like `core
    // append`. Serving alone only stores what peers send.
    let durability = if args.append {
        Durability::Immediate
    } else {
        Durability::Eventual
    };
    // A missing store has nothing to seed: never made here.
    let store = open(dir, Access::Read, durability)?;
    let mut cores = Vec::new();
    for k in &args.keys {
        // A base's key serves all of the base's cores (not with --append,
        // which appends to one core).
        match crate::base_cmd::served_cores(&store, k)? {
            Some(keys) if !args.append => {
                for key in keys {
                    let core = store.core(&key)?;
                    if !cores.iter().any(|c: &Core| c.key() == key) {
                        cores.push(core);
                    }
                }
            }
            _ => cores.push(open_core(&store, k)?),
        }
    }
    let all = if cores.is_empty() {
        store
            .list()?
            .iter()
            .map(|e| store.core(&e.key))
            .collect::<Result<Vec<Core>, _>>()?
    } else {
        cores.clone()
    };
    if all.is_empty() {
        return Err(CliError::NothingToSeed(dir.to_path_buf()));
    }
    // Other invocations on this store are served through its socket.
    let status = Arc::new(Mutex::new(crate::local::Status {
        pid: std::process::id(),
        command: if args.append { "seed --append" } else { "seed" }.into(),
        ..Default::default()
    }));
    let tcp_peers = crate::peers::TcpPeers::default();
    let serving = crate::peers::ServingNow::default();
    let peers = crate::peers::live_status(tcp_peers.clone(), serving.clone());
    crate::local::serve(store.clone(), status.clone(), Some(peers));
    if args.append {
        match cores.as_slice() {
            [core] if core.writable()? => {
                if !args.force && crate::core_cmd::holds_a_bee(core)? {
                    return Err(CliError::StructuredCore(core.key().to_string()));
                }
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
        // One identity per store, across runs (peers may pin it).
        let identity = store.identity();
        let replication = Replication::new(
            store.clone(),
            identity.clone(),
            ReplicationOptions {
                all_cores: cores.is_empty(),
                ..ReplicationOptions::default()
            },
        );
        let mut out = std::io::stdout().lock();
        for core in &all {
            if !cores.is_empty() {
                replication.add_core(core);
            }
            writeln!(out, "seeding {}", describe(core)?)?;
        }
        writeln!(out, "identity {}", replication.identity())?;
        if let Ok(mut status) = status.lock() {
            status.identity = replication.identity().to_string();
        }
        out.flush()?;
        drop(out);
        // Keeps the swarm (and its announcements) alive while serving.
        let nodes = if args.swarm() && !args.no_dht {
            bootstrap_nodes(args.bootstrap.as_deref())?
        } else {
            Vec::new()
        };
        let swarm = if args.swarm() {
            let topics: Vec<CoreKey> = all.iter().map(Core::key).collect();
            Some(announce(identity, args.discovery(), &replication, &topics).await?)
        } else {
            None
        };
        if let Ok(mut serving) = serving.lock() {
            *serving = Some(crate::peers::Serving {
                runtime: tokio::runtime::Handle::current(),
                store: store.clone(),
                replication: replication.clone(),
                swarm: swarm.clone(),
            });
        }
        let listener = match &args.listen {
            Some(listen) => {
                Some(
                    listen_tcp(listen.as_str())
                        .await
                        .map_err(|e| CliError::Listen {
                            addr: listen.clone(),
                            error: Box::new(e),
                        })?,
                )
            }
            None => None,
        };
        let direct = listener
            .as_ref()
            .map(|(_, addr)| reachable(*addr))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for core in &all {
            let ticket = Ticket {
                key: core.key(),
                addresses: direct.clone(),
                bootstrap: nodes.clone(),
            }
            .encode();
            writeln!(out, "ticket {ticket}")?;
            writeln!(out, "  on the other side: hyper-cli clone {ticket}")?;
        }
        out.flush()?;
        let Some((listener, addr)) = listener else {
            return std::future::pending().await;
        };
        if let Ok(mut status) = status.lock() {
            status.listening = Some(addr.to_string());
        }
        // The address last: a script may stop reading after it. Nothing
        // else goes to stdout from here on (peer events go to stderr).
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        // Deadlines, connection caps and accept back-off: see hyper_wire::Limits.
        let _ = serve_tcp_with(&replication, listener, move |event| match event {
            ServeEvent::Connected { addr, identity } => {
                eprintln!("peer {addr} connected ({identity})");
                if let Ok(mut peers) = tcp_peers.lock() {
                    peers.push((addr, identity));
                }
            }
            ServeEvent::Ended { addr, result } => {
                if let Ok(mut peers) = tcp_peers.lock() {
                    peers.retain(|(a, _)| *a != addr);
                }
                match result {
                    Ok(()) => eprintln!("peer {addr} disconnected"),
                    Err(e) => eprintln!("peer {addr} dropped: {e}"),
                }
            }
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

/// The addresses a ticket gives for a listener bound to `addr`: for one
/// on every interface, this host's interface addresses (see
/// [`crate::ticket::listener_addresses`]); loopback alone if they cannot
/// be listed.
fn reachable(addr: SocketAddr) -> Vec<SocketAddr> {
    let interfaces = if addr.ip().is_unspecified() {
        if_addrs::get_if_addrs()
            .inspect_err(|e| tracing::debug!(error = %e, "listing interfaces failed"))
            .unwrap_or_default()
            .iter()
            .map(if_addrs::Interface::ip)
            .collect()
    } else {
        Vec::new()
    };
    crate::ticket::listener_addresses(addr, &interfaces)
}

/// A core as `seed` announces it: blocks and bytes, and for a partial
/// replica how many of them are stored here.
fn describe(core: &Core) -> Result<String, CliError> {
    let info = core.info()?;
    Ok(if info.blocks_stored < info.length {
        format!(
            "{} ({} of {} blocks stored here, {} bytes: peers can fetch only those)",
            core.key(),
            info.blocks_stored,
            info.length,
            info.bytes_stored
        )
    } else {
        format!(
            "{} ({} blocks, {} bytes)",
            core.key(),
            info.length,
            info.byte_length
        )
    })
}

/// Joins the swarm as `identity`, announces each of `topics`' discovery
/// keys and replicates over every connection; prints `local: announced KEY
/// on the link` per core once announced there, and `announced KEY on the
/// DHT` once stored on DHT nodes.
async fn announce(
    identity: KeyPair,
    discovery: Discovery<'_>,
    replication: &Replication,
    keys: &[CoreKey],
) -> Result<Swarm, CliError> {
    let swarm = Swarm::new(discovery.swarm_config(identity)?).await?;
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
    if discovery.identity_per_topic {
        // Topics with identities of their own stay off the link; the DHT
        // sees these keys, not the store's identity.
        for key in keys {
            let own = swarm.topic_key(&key.discovery_key().0);
            writeln!(out, "identity {own} for {key} on the DHT")?;
        }
    } else if swarm.local_enabled() {
        for key in keys {
            writeln!(out, "local: announced {key} on the link")?;
        }
    } else if let Some(why) = swarm.local_error() {
        eprintln!("hyper-cli: local discovery is off: {why}");
    }
    out.flush()?;
    if !discovery.dht {
        return Ok(swarm);
    }
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
    let mut appended = 0u64;
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
        core.append_batch(&batch)
            .map_err(|error| CliError::Append {
                first: appended,
                count: batch.len(),
                error,
            })?;
        appended += batch.len() as u64;
    }
}
