//! `hyper-cli dht node`, and finding peers (the DHT, the local network) for
//! `seed` and `clone`.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Subcommand;
use hyper_core::KeyPair;
use hyper_swarm::{Config, Dht, Reachability, SwarmConfig};

use crate::CliError;
use crate::json::Object;

/// Bootstrap nodes when neither `--bootstrap` nor `$HYPER_BOOTSTRAP` names
/// any: a `hyper-cli dht node` on this machine's default port. There are
/// no public bootstrap nodes for this protocol; set `$HYPER_BOOTSTRAP` to
/// nodes you run.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:49737";
/// The environment variable naming bootstrap nodes.
pub const BOOTSTRAP_ENV: &str = "HYPER_BOOTSTRAP";

/// `hyper-cli dht ...`
#[derive(Subcommand)]
pub enum DhtCommand {
    /// Run a DHT node until stopped: a bootstrap node for others, and with
    /// --relay a blind relay for peers that cannot punch through their NATs.
    Node {
        /// UDP address to listen on.
        #[arg(long, value_name = "IP:PORT", default_value = "0.0.0.0:49737")]
        listen: String,
        /// Also relay encrypted traffic for peers behind symmetric NATs.
        #[arg(long)]
        relay: bool,
        /// Nodes to join, comma-separated [default: $HYPER_BOOTSTRAP; none:
        /// this node starts a network and serves at once].
        #[arg(long, value_name = "IP:PORT,...")]
        bootstrap: Option<String>,
    },
    /// Ask the DHT who announces a core (by its key) and print each peer
    /// found: its identity, observed addresses, relays and the node
    /// holding the record.
    Lookup {
        /// Core key (64 hex characters); its discovery key is the topic.
        key: String,
        /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP,
        /// else 127.0.0.1:49737].
        #[arg(long, value_name = "IP:PORT,...")]
        bootstrap: Option<String>,
        /// One JSON object per peer: key, addresses, relays, local (its LAN
        /// addresses), holder.
        #[arg(long)]
        json: bool,
    },
}

/// Resolves a comma-separated list of `HOST:PORT`.
fn parse_list(list: &str) -> Result<Vec<SocketAddr>, CliError> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr = item
            .to_socket_addrs()
            .ok()
            .and_then(|a| a.min_by_key(SocketAddr::is_ipv6))
            .ok_or_else(|| CliError::BadAddress(item.to_string()))?;
        out.push(addr);
    }
    Ok(out)
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
            ..SwarmConfig::new(identity, bootstrap)
        })
    }
}

/// Runs a `dht` subcommand.
pub fn run(command: DhtCommand) -> Result<(), CliError> {
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
        } => lookup(&key, bootstrap.as_deref(), json),
    }
}

fn lookup(key: &str, bootstrap: Option<&str>, json: bool) -> Result<(), CliError> {
    let core_key = key
        .parse::<hyper_core::CoreKey>()
        .map_err(|_| CliError::BadKey(key.to_string()))?;
    let config = Config {
        bootstrap: bootstrap_nodes(bootstrap)?,
        reachability: Reachability::Ephemeral,
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let any = match config.bootstrap.first() {
            Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let dht = Dht::bind(any, config).await?;
        dht.bootstrapped().await?;
        let outcome = dht
            .query(hyper_swarm::QueryKind::Lookup(core_key.discovery_key().0))
            .await?;
        let mut out = std::io::stdout().lock();
        let list = |addrs: &[hyper_swarm::messages::Address]| -> Vec<String> {
            addrs
                .iter()
                .filter_map(hyper_swarm::socket_address)
                .map(|a| a.to_string())
                .collect()
        };
        for found in &outcome.records {
            let addresses = list(&found.record.addresses);
            let relays = list(&found.record.relays);
            let local = list(&found.record.local_addresses);
            if json {
                let line = Object::default()
                    .str("key", Some(&found.public_key.to_string()))
                    .strs("addresses", &addresses)
                    .strs("relays", &relays)
                    .strs("local", &local)
                    .str("holder", Some(&found.holder.to_string()))
                    .finish();
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "peer {} at {} (relays: {}; record held by {})",
                    found.public_key,
                    if addresses.is_empty() {
                        "-".to_string()
                    } else {
                        addresses.join(", ")
                    },
                    if relays.is_empty() {
                        "-".to_string()
                    } else {
                        relays.join(", ")
                    },
                    found.holder
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
    })
}

fn node(listen: &str, relay: bool, bootstrap: Option<&str>) -> Result<(), CliError> {
    let listen = parse_list(listen)?
        .first()
        .copied()
        .ok_or_else(|| CliError::BadAddress(listen.to_string()))?;
    let bootstrap = if dht_requested(bootstrap) {
        bootstrap_nodes(bootstrap)?
    } else {
        Vec::new()
    };
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config {
            bootstrap,
            reachability,
            public_address,
            relay,
            ..Config::default()
        };
        let dht = Dht::bind(listen, config).await?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "dht node listening on {}{}",
            dht.local_addr(),
            if relay { " (relay)" } else { "" }
        )?;
        out.flush()?;
        drop(out);
        let mut serving = false;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let status = dht.status().await?;
            if let (false, Some(id), Some(addr)) = (serving, status.id, status.public_address) {
                serving = true;
                eprintln!("serving as node {} at {addr}", hex(&id.0[..8]));
            }
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
