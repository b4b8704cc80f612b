//! `hyper-cli dht node`, and finding peers (the DHT, the local network) for
//! `seed` and `clone`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper_core::KeyPair;
use hyper_swarm::{Config, Dht, Family, Reachability, SwarmConfig};

use serde::Serialize;

use crate::args::{resolve, resolve_each_family, split_list};
use crate::core_cmd::open_core;
use crate::output::json_line;
use crate::store::{Access, open_durable};
use crate::{CliError, Global};

/// Bootstrap nodes when neither `--bootstrap` nor `$HYPER_BOOTSTRAP` names
/// any: a `hyper-cli dht node` on this machine's default port. There are
/// no public bootstrap nodes for this protocol; set `$HYPER_BOOTSTRAP` to
/// nodes you run.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:49737";
/// How long `dht node` waits for its bootstrap nodes before saying none
/// answered.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// The environment variable naming bootstrap nodes.
pub const BOOTSTRAP_ENV: &str = "HYPER_BOOTSTRAP";

/// `hyper-cli dht ...`
#[derive(Subcommand)]
pub enum DhtCommand {
    /// Run a DHT node until stopped: a bootstrap node for others, and with
    /// --relay a blind relay for peers that cannot punch through their NATs.
    /// One node serves one address family; list an IPv4 and an IPv6
    /// address to run one node of each (dual stack).
    Node {
        /// UDP addresses to listen on, comma-separated, one node each
        /// (e.g. 0.0.0.0:49737,[::]:49737 for both families; an IPv6
        /// address binds IPv6 only).
        #[arg(long, value_name = "IP:PORT,...", default_value = "0.0.0.0:49737", value_parser = crate::args::address_list)]
        listen: String,
        /// Also relay encrypted traffic for peers behind symmetric NATs.
        #[arg(long)]
        relay: bool,
        /// Nodes to join, comma-separated [default: $HYPER_BOOTSTRAP]; each
        /// node joins those of its family (with none of its family, it
        /// starts a network and serves at once).
        #[arg(long, value_name = "IP:PORT,...", value_parser = crate::args::address_list)]
        bootstrap: Option<String>,
    },
    /// Ask the DHT who announces a core and print each peer found: its
    /// identity, observed addresses, relays and the node holding the record.
    Lookup {
        /// Core key (64 hex characters), the name of a core in the store, or
        /// a share ticket; its discovery key is the topic.
        key: String,
        /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP,
        /// else 127.0.0.1:49737].
        #[arg(long, value_name = "IP:PORT,...", value_parser = crate::args::address_list)]
        bootstrap: Option<String>,
        /// JSON lines: one object per peer with key, addresses, relays, local
        /// (its LAN addresses), holder (no line when nobody announces).
        #[arg(long)]
        json: bool,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        timeout: u64,
    },
}

/// Resolves a comma-separated list of `HOST:PORT` (a name to an address
/// of each family it has).
fn parse_list(list: &str) -> Result<Vec<SocketAddr>, CliError> {
    let mut out = Vec::new();
    for item in split_list(list) {
        out.extend(resolve_each_family(item)?);
    }
    Ok(out)
}

/// Those of `nodes` of `family`.
fn of_family(nodes: &[SocketAddr], family: Family) -> Vec<SocketAddr> {
    nodes
        .iter()
        .filter(|a| Family::of(a) == family)
        .copied()
        .collect()
}

/// The bootstrap nodes: `flag`, else `$HYPER_BOOTSTRAP`, else
/// [`DEFAULT_BOOTSTRAP`].
pub fn bootstrap_nodes(flag: Option<&str>) -> Result<Vec<SocketAddr>, CliError> {
    match (flag, std::env::var(BOOTSTRAP_ENV).ok()) {
        (Some(list), _) => parse_list(list),
        (None, Some(list)) if !list.trim().is_empty() => parse_list(&list),
        _ => parse_list(DEFAULT_BOOTSTRAP),
    }
}

/// Whether the DHT was asked for by flag or environment.
pub fn dht_requested(flag: Option<&str>) -> bool {
    flag.is_some() || std::env::var(BOOTSTRAP_ENV).is_ok_and(|v| !v.trim().is_empty())
}

/// The nodes, for messages.
fn names(nodes: &[SocketAddr]) -> String {
    nodes
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a command that fetches (`clone`, `base sync`) finds its peers:
/// one peer at `--connect ADDR`, or the local network and the DHT.
#[derive(Args, Clone)]
pub struct PeerArgs {
    /// A peer that seeds it over TCP (HOST:PORT); without it the local
    /// network and the DHT find peers.
    #[arg(long, value_name = "ADDR", conflicts_with = "bootstrap", value_parser = crate::args::address)]
    pub connect: Option<String>,
    /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP, else
    /// 127.0.0.1:49737].
    #[arg(long, value_name = "IP:PORT,...", value_parser = crate::args::address_list)]
    pub bootstrap: Option<String>,
    /// Do not look for peers on the local network (multicast DNS).
    #[arg(long, conflicts_with = "connect")]
    pub no_local: bool,
    /// Do not look for peers on the DHT (only on the local network).
    #[arg(long, conflicts_with_all = ["bootstrap", "connect", "no_local"])]
    pub no_dht: bool,
}

impl PeerArgs {
    /// The ways to find peers without `--connect`.
    pub fn discovery(&self) -> Discovery<'_> {
        Discovery {
            bootstrap: self.bootstrap.as_deref(),
            local: !self.no_local,
            dht: !self.no_dht,
            identity_per_topic: false,
        }
    }
}

/// Which ways `seed` and `clone` find peers (`--no-local`, `--no-dht`,
/// `--bootstrap`).
#[derive(Clone, Copy)]
pub struct Discovery<'a> {
    /// DHT bootstrap nodes (`--bootstrap`).
    pub bootstrap: Option<&'a str>,
    /// Multicast DNS on the local network (off with `--no-local`).
    pub local: bool,
    /// The DHT (off with `--no-dht`).
    pub dht: bool,
    /// Each topic under a key pair of its own (`seed --identity-per-topic`).
    pub identity_per_topic: bool,
}

impl Discovery<'_> {
    /// The swarm configuration for `identity` with these layers on; no
    /// bootstrap nodes when the DHT is off.
    pub fn swarm_config(&self, identity: KeyPair) -> Result<SwarmConfig, CliError> {
        let bootstrap = if self.dht {
            bootstrap_nodes(self.bootstrap)?
        } else {
            Vec::new()
        };
        Ok(SwarmConfig {
            local: self.local,
            dht: self.dht,
            identity_per_topic: self.identity_per_topic,
            ..SwarmConfig::new(identity, bootstrap)
        })
    }
}

/// Runs a `dht` subcommand.
pub fn run(global: &Global, command: DhtCommand) -> Result<(), CliError> {
    match command {
        DhtCommand::Node {
            listen,
            relay,
            bootstrap,
        } => node(&listen, relay, bootstrap.as_deref()),
        DhtCommand::Lookup {
            key,
            bootstrap,
            json,
            timeout,
        } => {
            let target = crate::ticket::target(&key, None, bootstrap.as_deref())?;
            let (key, bootstrap) = (target.key, target.bootstrap);
            let core_key = match key.parse::<hyper_core::CoreKey>() {
                Ok(k) => k,
                Err(_) => {
                    let store = open_durable(global.store()?, Access::Read)?;
                    open_core(&store, &key)?.key()
                }
            };
            let nodes = bootstrap_nodes(bootstrap.as_deref())?;
            let timeout = Duration::from_secs(timeout);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                tokio::time::timeout(timeout, lookup(core_key, &nodes, json))
                    .await
                    .unwrap_or(Err(CliError::DhtTimeout {
                        nodes: names(&nodes),
                        seconds: timeout.as_secs(),
                    }))
            })
        }
    }
}

/// A line of `dht lookup --json`.
#[derive(Serialize)]
struct PeerJson {
    key: String,
    addresses: Vec<String>,
    relays: Vec<String>,
    local: Vec<String>,
    holder: String,
}

async fn lookup(
    core_key: hyper_core::CoreKey,
    nodes: &[SocketAddr],
    json: bool,
) -> Result<(), CliError> {
    // One lookup per family the bootstrap nodes name, at once; a peer
    // found on both is printed once (its record found first).
    let mut lookups = tokio::task::JoinSet::new();
    for family in [Family::V4, Family::V6] {
        let bootstrap = of_family(nodes, family);
        if bootstrap.is_empty() {
            continue;
        }
        let any = match family {
            Family::V4 => SocketAddr::from(([0, 0, 0, 0], 0)),
            Family::V6 => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        };
        let config = Config {
            bootstrap,
            reachability: Reachability::Ephemeral,
            ..Config::default()
        };
        let topic = core_key.discovery_key().0;
        lookups.spawn(async move {
            let dht = Dht::bind(any, config).await?;
            let status = dht.bootstrapped().await?;
            tracing::debug!(
                family = family.as_str(),
                table = status.table,
                "bootstrapped"
            );
            dht.query(hyper_swarm::QueryKind::Lookup(topic)).await
        });
    }
    let mut outcome = hyper_swarm::QueryOutcome::default();
    while let Some(done) = lookups.join_next().await {
        let Ok(found) = done else { continue };
        let found = found?;
        outcome.closest.extend(found.closest);
        outcome.requests += found.requests;
        for record in found.records {
            if !outcome
                .records
                .iter()
                .any(|r| r.public_key == record.public_key)
            {
                outcome.records.push(record);
            }
        }
    }
    if outcome.closest.is_empty() && outcome.records.is_empty() {
        return Err(CliError::NoDhtNodes {
            nodes: names(nodes),
        });
    }
    let mut out = std::io::stdout().lock();
    let list = |addrs: &[hyper_swarm::messages::Address]| -> Vec<String> {
        addrs
            .iter()
            .filter_map(hyper_swarm::socket_address)
            .map(|a| a.to_string())
            .collect()
    };
    for found in &outcome.records {
        let peer = PeerJson {
            key: found.public_key.to_string(),
            addresses: list(&found.record.addresses),
            relays: list(&found.record.relays),
            local: list(&found.record.local_addresses),
            holder: found.holder.to_string(),
        };
        if json {
            json_line(&mut out, &peer)?;
        } else {
            let or_dash = |l: &[String]| {
                if l.is_empty() {
                    "-".to_string()
                } else {
                    l.join(", ")
                }
            };
            writeln!(
                out,
                "peer {} at {} (relays: {}; record held by {})",
                peer.key,
                or_dash(&peer.addresses),
                or_dash(&peer.relays),
                peer.holder
            )?;
        }
    }
    if outcome.records.is_empty() && !json {
        writeln!(
            out,
            "no peer announces {core_key} ({} DHT nodes asked)",
            outcome.requests
        )?;
    }
    out.flush()?;
    Ok(())
}

fn node(listen: &str, relay: bool, bootstrap: Option<&str>) -> Result<(), CliError> {
    let listens = split_list(listen)
        .map(|a| with_port(resolve(a)?))
        .collect::<Result<Vec<SocketAddr>, CliError>>()?;
    if let [a, b, ..] = listens.as_slice()
        && (listens.len() > 2 || Family::of(a) == Family::of(b))
    {
        return Err(CliError::Usage(format!(
            "--listen {listen}: one address per family only (one IPv4, one IPv6)"
        )));
    }
    let bootstrap = if dht_requested(bootstrap) {
        bootstrap_nodes(bootstrap)?
    } else {
        Vec::new()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut nodes = Vec::new();
        for listen in listens {
            let bootstrap = of_family(&bootstrap, Family::of(&listen));
            nodes.push(start_node(listen, relay, bootstrap).await?);
        }
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for node in &mut nodes {
                node.check(started).await?;
            }
        }
    })
}

/// One node of `dht node` and what it has said about itself.
struct RunningNode {
    dht: Dht,
    /// Its bootstrap nodes, for messages.
    bootstrap: String,
    serving: bool,
    warned: bool,
}

/// Starts a node on `listen` joining `bootstrap` (of its family) and prints
/// `dht node listening on ADDR`.
async fn start_node(
    listen: SocketAddr,
    relay: bool,
    bootstrap: Vec<SocketAddr>,
) -> Result<RunningNode, CliError> {
    // The first node of a network has nobody to prove itself to: it serves
    // at once, at the address it listens on if that is a specific one.
    let (reachability, public_address) = if bootstrap.is_empty() {
        (
            Reachability::Public,
            (!listen.ip().is_unspecified()).then_some(listen),
        )
    } else {
        (Reachability::Auto, None)
    };
    let names = names(&bootstrap);
    let config = Config {
        bootstrap,
        reachability,
        public_address,
        relay,
        ..Config::default()
    };
    let dht = Dht::bind(listen, config)
        .await
        .map_err(|e| CliError::Listen {
            addr: listen.to_string(),
            error: Box::new(e),
        })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "dht node listening on {}{}",
        dht.local_addr(),
        if relay { " (relay)" } else { "" }
    )?;
    out.flush()?;
    Ok(RunningNode {
        dht,
        warned: names.is_empty(),
        bootstrap: names,
        serving: false,
    })
}

impl RunningNode {
    /// Says once that no bootstrap node answered, and once that it serves.
    async fn check(&mut self, started: std::time::Instant) -> Result<(), CliError> {
        let status = self.dht.status().await?;
        if !self.warned && status.table == 0 && started.elapsed() >= JOIN_WAIT {
            self.warned = true;
            eprintln!(
                "hyper-cli: no bootstrap node answered in {} s ({}); still trying (check --bootstrap)",
                JOIN_WAIT.as_secs(),
                self.bootstrap
            );
        }
        if let (false, Some(id), Some(addr)) = (self.serving, status.id, status.public_address) {
            self.serving = true;
            eprintln!("serving as node {} at {addr}", hex(&id.0[..8]));
        }
        Ok(())
    }
}

/// `listen`, with a port chosen now if it names port 0: the first node
/// claims the id of the address it serves at, and on local networks that
/// id hashes the port (the id of port 0 is nobody's, so its answers would
/// prove no id and its relay would be ignored).
fn with_port(listen: SocketAddr) -> Result<SocketAddr, CliError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    std::net::UdpSocket::bind(listen)
        .and_then(|socket| socket.local_addr())
        .map_err(|e| CliError::Listen {
            addr: listen.to_string(),
            error: Box::new(e),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
