//! `hyper-cli clone`: download a whole core over TCP or from peers found
//! through the DHT, verifying every block; every wait ends within
//! `--retry-for`.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use hyper_core::{Core, Durability, KeyPair, PublicKey, Store};
use hyper_swarm::{JoinOptions, Path as PeerPath, Swarm};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions};
use serde::Serialize;

use crate::net_cmd::{
    PROGRESS_EVERY, RECONNECT_EVERY, Stall, connect_to, forget_if_empty, parse_key, runtime,
};
use crate::output::json_line;
use crate::peers::TcpPeers;
use crate::progress::{Progress, Style, rate};
use crate::store::{Access, open};
use crate::swarm_cmd::{Discovery, PeerArgs};
use crate::ticket::Ticket;
use crate::{CliError, Global};

/// `hyper-cli clone`.
#[derive(Args)]
pub struct CloneArgs {
    /// Core key (64 hex characters) or share ticket (which also says where
    /// to find the seeder); a drive's key clones both of its cores.
    key: String,
    #[command(flatten)]
    peers: PeerArgs,
    /// After the download, keep following appends (runs until stopped).
    #[arg(long)]
    live: bool,
    /// End with one JSON object (fields as in the README).
    #[arg(long)]
    json: bool,
    /// Print progress lines on stderr even when it is not a terminal (not
    /// with --quiet).
    #[arg(long)]
    progress: bool,
    /// Keep reconnecting, looking for peers, or waiting for missing blocks
    /// for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    retry_for: u64,
}

/// The download in progress, shared by both ways of finding peers.
struct Download<'a, F> {
    replication: &'a Replication,
    core: &'a Core,
    done: std::pin::Pin<&'a mut F>,
    progress: Progress,
    stall: Stall,
    retry_for: Duration,
}

impl<F> Download<'_, F> {
    /// Redraws progress; an error once blocks are missing and no peer sent
    /// any for the retry time.
    fn tick(&mut self) -> Result<(), CliError> {
        let info = self.core.info()?;
        self.progress.update(&info);
        if self.stall.stalled(&info) {
            return Err(self.stall.error(self.core)?);
        }
        Ok(())
    }
}

/// The peers a clone used.
struct Peers {
    connections: u64,
    /// Through the DHT: each peer's key, path and address.
    found: Vec<(PublicKey, PeerPath, std::net::SocketAddr)>,
    /// Through the DHT: seconds from the start (lookup included) to the
    /// first authenticated connection.
    connect_seconds: Option<f64>,
}

/// A peer in `clone --json`.
#[derive(Serialize)]
struct PeerJson {
    key: String,
    path: &'static str,
    /// Where the connection goes (the relay's address for a relayed one).
    address: String,
}

/// `clone --json`.
#[derive(Serialize)]
struct CloneJson {
    key: String,
    blocks: u64,
    bytes: u64,
    fetched: u64,
    fetched_bytes: u64,
    seconds: f64,
    connections: u64,
    length: u64,
    fork: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<Vec<PeerJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_seconds: Option<f64>,
}

/// `hyper-cli clone KEY (--connect ADDR | --bootstrap NODES)`: downloads
/// the whole core.
pub fn clone(global: &Global, mut args: CloneArgs) -> Result<(), CliError> {
    if global.quiet && args.progress {
        return Err(CliError::Usage(
            "--progress and --quiet contradict each other".into(),
        ));
    }
    // A ticket says where to look unless a flag does: its DHT nodes (which
    // find the seeder wherever it is), else its direct address.
    if let Some(ticket) = Ticket::parse(&args.key)? {
        args.key = ticket.key.to_string();
        crate::ticket::apply(&ticket, &mut args.peers.connect, &mut args.peers.bootstrap);
    }
    let key = parse_key(&args.key)?;
    let store = open(global.store()?, Access::Write, Durability::Eventual)?;
    let made = store.core(&key).is_err();
    let core = store.replica(&key)?;
    // While it runs (for good, with --live), other invocations on this
    // store go through it.
    let holder = CloneStatus {
        status: std::sync::Arc::new(std::sync::Mutex::new(crate::local::Status {
            pid: std::process::id(),
            command: if args.live { "clone --live" } else { "clone" }.into(),
            ..Default::default()
        })),
        serving: crate::peers::ServingNow::default(),
        tcp: crate::peers::TcpPeers::default(),
    };
    let peers = crate::peers::live_status(holder.tcp.clone(), holder.serving.clone());
    crate::local::serve(store.clone(), holder.status.clone(), Some(peers));
    let result = clone_into(&store, &core, global, &args, &holder);
    ended(&store, &core, made, result)?;
    // A drive's key: its blobs core (named by the drive's signed header,
    // here now) comes next, from the same peers.
    if let Ok(drive) = hyper_drive::Drive::open(&store, &key) {
        let blobs = drive.blobs().clone();
        let made = blobs.info()?.blocks_stored == 0;
        let result = clone_into(&store, &blobs, global, &args, &holder);
        ended(&store, &blobs, made, result)?;
    }
    Ok(())
}

/// After cloning `core` (made by this clone if `made`) ended with
/// `result`: a core that failed before any block arrived is forgotten;
/// what did arrive, and the evidence of an equivocation, is made durable
/// (the clone commits without an fsync per batch) before the error is
/// returned.
fn ended(
    store: &Store,
    core: &Core,
    made: bool,
    result: Result<(), CliError>,
) -> Result<(), CliError> {
    let Err(error) = result else {
        return Ok(());
    };
    forget_if_empty(store, core, made);
    store.flush()?;
    Err(error)
}

/// What `hyper-cli status` reads of a running clone.
struct CloneStatus {
    status: std::sync::Arc<std::sync::Mutex<crate::local::Status>>,
    serving: crate::peers::ServingNow,
    /// The peer `--connect` reached, while connected.
    tcp: crate::peers::TcpPeers,
}

impl CloneStatus {
    /// The clone replicates through `replication` (and `swarm`) now.
    fn replicating(&self, store: &Store, replication: &Replication, swarm: Option<&Swarm>) {
        if let Ok(mut status) = self.status.lock() {
            status.identity = replication.identity().to_string();
        }
        if let Ok(mut serving) = self.serving.lock() {
            *serving = Some(crate::peers::Serving {
                runtime: tokio::runtime::Handle::current(),
                store: store.clone(),
                replication: replication.clone(),
                swarm: swarm.cloned(),
            });
        }
    }
}

fn clone_into(
    store: &Store,
    core: &Core,
    global: &Global,
    args: &CloneArgs,
    holder: &CloneStatus,
) -> Result<(), CliError> {
    let key = core.key();
    store.flush()?;
    let before = core.info()?;
    let retry_for = Duration::from_secs(args.retry_for);
    runtime()?.block_on(async {
        let identity = KeyPair::generate()?;
        let replication =
            Replication::new(store.clone(), identity.clone(), ReplicationOptions::default());
        replication.add_core(core);
        let range = if args.live {
            DownloadRange::live()
        } else {
            DownloadRange::all()
        };
        let done = replication.download(core, range);
        tokio::pin!(done);
        let started = Instant::now();
        let mut download = Download {
            replication: &replication,
            core,
            done,
            progress: Progress::new(
                Style::choose(global.quiet, args.progress),
                before.bytes_stored,
            ),
            stall: Stall::new(retry_for),
            retry_for,
        };
        let peers = match &args.peers.connect {
            Some(addr) => {
                holder.replicating(store, &replication, None);
                Peers {
                    connections: over_tcp(&mut download, addr, &holder.tcp).await?,
                    found: Vec::new(),
                    connect_seconds: None,
                }
            }
            None => {
                let swarm = Swarm::new(args.peers.discovery().swarm_config(identity)?).await?;
                holder.replicating(store, &replication, Some(&swarm));
                let peers = over_swarm(&mut download, &swarm, args.peers.discovery()).await?;
                // The swarm ends here (a drive's blobs core gets its own).
                holder.replicating(store, &replication, None);
                peers
            }
        };
        download.progress.clear();
        store.flush()?;
        let info = core.info()?;
        let seconds = started.elapsed().as_secs_f64();
        let fetched = info.blocks_stored - before.blocks_stored.min(info.blocks_stored);
        let fetched_bytes = info.bytes_stored - before.bytes_stored.min(info.bytes_stored);
        let mut out = std::io::stdout().lock();
        if args.json {
            let through_swarm = args.peers.connect.is_none();
            let o = CloneJson {
                key: key.to_string(),
                blocks: info.blocks_stored,
                bytes: info.bytes_stored,
                fetched,
                fetched_bytes,
                seconds,
                connections: peers.connections,
                length: info.length,
                fork: info.fork,
                peers: through_swarm.then(|| {
                    peers
                        .found
                        .iter()
                        .map(|(key, path, address)| PeerJson {
                            key: key.to_string(),
                            path: path.as_str(),
                            address: address.to_string(),
                        })
                        .collect()
                }),
                connect_seconds: peers.connect_seconds,
            };
            json_line(&mut out, &o)?;
        } else {
            writeln!(
                out,
                "cloned {key}: {} blocks, {} bytes ({fetched} fetched, {} already here) in {seconds:.2} s, {}",
                info.blocks_stored,
                info.bytes_stored,
                before.blocks_stored,
                rate(fetched_bytes, seconds),
            )?;
        }
        out.flush()?;
        Ok(())
    })
}

/// Downloads from the peer at `addr`, reconnecting while it is lost for
/// less than the retry time, with the peer in `tcp` while connected; the
/// connections made.
async fn over_tcp<F>(d: &mut Download<'_, F>, addr: &str, tcp: &TcpPeers) -> Result<u64, CliError>
where
    F: std::future::Future<Output = hyper_wire::Result<()>>,
{
    let mut connections = 0u64;
    let mut last_contact = Instant::now();
    // Since when every connection ended with the peer breaking the
    // protocol and no block stored: a peer that accepts and then lies
    // must not keep the clone reconnecting for good.
    let mut failing = Failing::default();
    loop {
        let left = d.retry_for.saturating_sub(last_contact.elapsed());
        if let Ok(mut peers) = tcp.lock() {
            peers.clear();
        }
        let connection = match connect_to(d.replication, addr, left.max(RECONNECT_EVERY)).await {
            Ok((c, at)) => {
                connections += 1;
                last_contact = Instant::now();
                if let Ok(mut peers) = tcp.lock() {
                    peers.push((at, c.remote_identity()));
                }
                Some(c)
            }
            Err(e @ CliError::BadAddress { .. }) => return Err(e),
            Err(e) => {
                if last_contact.elapsed() > d.retry_for {
                    d.progress.clear();
                    return Err(match e {
                        CliError::Connect { addr, error } => CliError::Unreachable { addr, error },
                        e => e,
                    });
                }
                tracing::debug!(error = %e, "retrying");
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
                        failing.ended(d.core, addr, e, d.retry_for)?;
                    } else {
                        failing = Failing::default();
                    }
                    break None;
                }
                _ = tick.tick() => {
                    d.tick()?;
                    // Connected, yet nothing about the core arrived: a
                    // peer without it never answers its open (by design
                    // it cannot tell), so give up after the retry time.
                    if connections > 0
                        && last_contact.elapsed() > d.retry_for
                        && d.replication.synced_peers(d.core).await == 0
                    {
                        return Err(CliError::NotServed {
                            addr: addr.to_string(),
                            key: d.core.key().to_string(),
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

/// Connections to one peer that ended in an error while no block
/// arrived, and since when.
#[derive(Default)]
struct Failing {
    since: Option<(Instant, u64)>,
}

impl Failing {
    /// A connection to `addr` ended with `error`: it ends the clone if the
    /// writer equivocated (conclusive, and the evidence is kept) or if
    /// connections kept ending with the peer breaking the protocol (or
    /// lying) and no block stored for `retry_for`; else the clone
    /// reconnects.
    fn ended(
        &mut self,
        core: &Core,
        addr: &str,
        error: hyper_wire::Error,
        retry_for: Duration,
    ) -> Result<(), CliError> {
        let key = core.key().to_string();
        if let hyper_wire::Error::Verify(hyper_core::VerifyError::Equivocation(e)) = &error {
            return Err(CliError::Equivocation {
                key,
                addr: addr.to_string(),
                fork: e.local.fork,
                local: e.local.length,
                remote: e.remote.length,
            });
        }
        if broke_the_protocol(&error) {
            let stored = core.info()?.blocks_stored;
            let since = match self.since {
                Some((since, before)) if before == stored => since,
                _ => Instant::now(),
            };
            self.since = Some((since, stored));
            if since.elapsed() > retry_for {
                return Err(CliError::PeerFailed {
                    addr: addr.to_string(),
                    key,
                    seconds: retry_for.as_secs(),
                    error,
                });
            }
        } else {
            // A network failure (a reset, a restarted seeder, a deadline)
            // is retried as any lost connection is.
            self.since = None;
        }
        eprintln!("hyper-cli: connection to {addr} lost: {error}; reconnecting");
        Ok(())
    }
}

/// Whether a connection ended because the peer broke the protocol or sent
/// what fails verification (not because the network or a deadline did).
fn broke_the_protocol(error: &hyper_wire::Error) -> bool {
    use hyper_wire::Error as E;
    matches!(
        error,
        E::BadLength
            | E::Decode(_)
            | E::Malformed(_)
            | E::Noise(_)
            | E::Identity
            | E::Verify(_)
            | E::Manifest(_)
            | E::FrameTooLarge { .. }
    )
}

/// Downloads from whoever the local network or the DHT finds under the
/// core's discovery key; fails if nobody is found within the retry time.
async fn over_swarm<F>(
    d: &mut Download<'_, F>,
    swarm: &Swarm,
    discovery: Discovery<'_>,
) -> Result<Peers, CliError>
where
    F: std::future::Future<Output = hyper_wire::Result<()>>,
{
    if let (true, Some(why)) = (discovery.local, swarm.local_error()) {
        eprintln!("hyper-cli: local discovery is off: {why}");
    }
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
    let started = Instant::now();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            done = &mut d.done => return done.map(|()| peers).map_err(CliError::from),
            Some(connection) = incoming.recv() => {
                tracing::debug!(peer = %connection.remote, path = connection.path.as_str(), "peer found");
                peers.connections += 1;
                peers
                    .connect_seconds
                    .get_or_insert_with(|| started.elapsed().as_secs_f64());
                if !peers.found.iter().any(|(k, ..)| *k == connection.remote) {
                    let address = connection.remote_address();
                    peers.found.push((connection.remote, connection.path, address));
                }
                let replication = d.replication.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection.replicate(&replication).await {
                        tracing::debug!(error = %e, "peer connection ended");
                    }
                });
            }
            _ = tick.tick() => {
                d.tick()?;
                if looking.elapsed() > d.retry_for && d.replication.synced_peers(d.core).await == 0 {
                    return Err(CliError::NoPeers {
                        key: d.core.key().to_string(),
                        seconds: d.retry_for.as_secs(),
                    });
                }
            }
        }
    }
}
