//! `hyper-cli`: create, inspect and read hypercores in a local store.

mod core_cmd;
mod json;

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
}

#[derive(Subcommand)]
enum Command {
    /// Work with cores (signed append-only logs).
    #[command(subcommand)]
    Core(core_cmd::CoreCommand),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper-cli: {e}");
            ExitCode::FAILURE
        }
    }
}
