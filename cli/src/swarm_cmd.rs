//! `hyper-cli dht node`, and finding peers through the DHT for `seed` and
//! `clone`.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Subcommand;
use hyper_swarm::{Config, Dht, Reachability};

use crate::CliError;

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
}

/// Resolves a comma-separated list of `HOST:PORT`.
fn parse_list(list: &str) -> Result<Vec<SocketAddr>, CliError> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr = item
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.find(SocketAddr::is_ipv4))
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

/// Runs a `dht` subcommand.
pub fn run(command: DhtCommand) -> Result<(), CliError> {
    match command {
        DhtCommand::Node {
            listen,
            relay,
            bootstrap,
        } => node(&listen, relay, bootstrap.as_deref()),
    }
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
