//! `hyper-cli`: create, inspect and read hypercores in a local store.

mod bee_cmd;
mod core_cmd;
mod drive_cmd;
mod drive_serve;
mod json;
mod net_cmd;
mod swarm_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Create, inspect and read hypercores.
#[derive(Parser)]
#[command(name = "hyper-cli", version)]
struct Cli {
    /// Store directory [default: $HYPER_STORE, else $XDG_DATA_HOME/hyper-cli,
    /// else ~/.local/share/hyper-cli]
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// What can end a command; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store or a core failed.
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
    /// Reading stdin or writing stdout failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// KEY is neither the key nor the name of a core in the store.
    #[error(
        "no core with key or name '{0}' in this store (create one with `hyper-cli core create --name NAME`, or check --store)"
    )]
    NoSuchCore(String),
    /// The bee failed (not a bee, corruption, a failed fetch).
    #[error(transparent)]
    Bee(#[from] hyper_bee::Error),
    /// `bee get` of a key the bee does not hold.
    #[error("no key '{0}'")]
    NoSuchKey(String),
    /// A key argument that must be a core key is not 64 hex characters.
    #[error("'{0}' is not a core key (64 hex characters)")]
    BadKey(String),
    /// A drive, a local folder or a mirror failed.
    #[error(transparent)]
    Drive(#[from] hyper_drive::Error),
    /// `drive mirror --live` of a source that is not a local folder.
    #[error("drive mirror --live watches a local folder: give a folder as SRC")]
    LiveSource,
    /// Replication failed (the peer, the connection, or a timeout).
    #[error(transparent)]
    Wire(#[from] hyper_wire::Error),
    /// `seed --append` needs exactly one writable core.
    #[error("seed --append needs exactly one core, writable here")]
    AppendTarget,
    /// Connected, but the peer sent nothing about the core.
    #[error(
        "the peer at {addr} sent nothing about this core in {seconds} s: it does not seem to serve it (check the key)"
    )]
    NotServed {
        /// The address.
        addr: String,
        /// How long it waited.
        seconds: u64,
    },
    /// An address argument that does not parse or resolve.
    #[error("'{0}' is not an address (IP:PORT or HOST:PORT)")]
    BadAddress(String),
    /// The DHT found no peer that served the core in time.
    #[error(
        "no peer serving this core was found through the DHT in {seconds} s (is a seeder running with the same --bootstrap nodes?)"
    )]
    NoPeers {
        /// How long it looked.
        seconds: u64,
    },
    /// The DHT or a swarm connection failed.
    #[error(transparent)]
    Swarm(#[from] hyper_swarm::Error),
    /// The peer could not be reached for the whole retry period.
    #[error("cannot reach {addr}: {error}; what was downloaded is kept, run again to resume")]
    Unreachable {
        /// The address.
        addr: String,
        /// The last connection error.
        error: hyper_wire::Error,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Work with cores (signed append-only logs).
    #[command(subcommand)]
    Core(core_cmd::CoreCommand),
    /// A key/value store (B-tree) in a core.
    #[command(subcommand)]
    Bee(bee_cmd::BeeCommand),
    /// A filesystem in two cores; mirrors to and from folders.
    #[command(subcommand)]
    Drive(drive_cmd::DriveCommand),
    /// Run a DHT node.
    #[command(subcommand)]
    Dht(swarm_cmd::DhtCommand),
    /// Serve cores to peers until stopped: announced on the DHT (found by
    /// `clone KEY` from anywhere) and/or on a TCP address (`--listen`).
    Seed {
        /// Cores to serve (key or name); none serves every core in the store.
        keys: Vec<String>,
        /// Also (or, without --bootstrap and $HYPER_BOOTSTRAP, only) serve
        /// over TCP on this address (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP,
        /// else 127.0.0.1:49737].
        #[arg(long, value_name = "IP:PORT,...")]
        bootstrap: Option<String>,
        /// While serving, append each line of stdin (newline kept) as a
        /// block to the one writable core given, so live clones follow.
        #[arg(long)]
        append: bool,
    },
    /// Download a whole core from a peer, verifying every block.
    Clone {
        /// Core key (64 hex characters).
        key: String,
        /// Address of a peer that seeds it over TCP (else the DHT finds
        /// peers).
        #[arg(long, value_name = "ADDR", conflicts_with = "bootstrap")]
        connect: Option<String>,
        /// DHT bootstrap nodes, comma-separated [default: $HYPER_BOOTSTRAP,
        /// else 127.0.0.1:49737].
        #[arg(long, value_name = "IP:PORT,...")]
        bootstrap: Option<String>,
        /// After the download, keep following appends (runs until stopped).
        #[arg(long)]
        live: bool,
        /// End with one JSON line: key, blocks, bytes, fetched, seconds,
        /// connections, length, fork (and, through the DHT, peers: key and
        /// path, direct or relay; connect_seconds: start to first
        /// connection).
        #[arg(long)]
        json: bool,
        /// Print progress lines on stderr even when stdout is not a terminal.
        #[arg(long)]
        progress: bool,
        /// Keep reconnecting (or looking for peers) for this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        retry_for: u64,
    },
}

fn default_store() -> PathBuf {
    if let Some(dir) = std::env::var_os("HYPER_STORE") {
        return dir.into();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("hyper-cli")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let store = cli.store.unwrap_or_else(default_store);
    let result = match cli.command {
        Command::Core(cmd) => core_cmd::run(&store, cmd),
        Command::Bee(cmd) => bee_cmd::run(&store, cmd),
        Command::Drive(cmd) => drive_cmd::run(&store, cmd),
        Command::Dht(cmd) => swarm_cmd::run(cmd),
        Command::Seed {
            keys,
            listen,
            bootstrap,
            append,
        } => net_cmd::seed(
            &store,
            &keys,
            net_cmd::SeedOn {
                listen: listen.as_deref(),
                bootstrap: bootstrap.as_deref(),
            },
            append,
        ),
        Command::Clone {
            key,
            connect,
            bootstrap,
            live,
            json,
            progress,
            retry_for,
        } => net_cmd::clone(
            &store,
            net_cmd::CloneOptions {
                key: &key,
                source: match connect.as_deref() {
                    Some(addr) => net_cmd::Source::Tcp(addr),
                    None => net_cmd::Source::Dht(bootstrap.as_deref()),
                },
                live,
                json,
                progress,
                retry_for: std::time::Duration::from_secs(retry_for),
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper-cli: {e}");
            ExitCode::FAILURE
        }
    }
}
