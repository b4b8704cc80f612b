//! `hyper-cli`: create, inspect, read, seed and clone hypercores.

mod args;
mod base_cmd;
mod base_sync;
mod bee_cmd;
mod clone_cmd;
mod core_cmd;
mod drive_cmd;
mod drive_mirror;
mod drive_serve;
mod encoding;
mod error;
mod local;
mod net_cmd;
mod output;
mod peers;
mod progress;
mod store;
mod swarm_cmd;
mod ticket;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use error::CliError;

/// Create, inspect, read, seed and clone hypercores (signed append-only
/// logs), and key/value stores in them.
#[derive(Parser)]
#[command(name = "hyper-cli", version)]
struct Cli {
    /// Store directory [default: $HYPER_STORE, else $XDG_DATA_HOME/hyper-cli,
    /// else ~/.local/share/hyper-cli]. Only commands that write create it.
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Log what happens on stderr: -v debug, -vv trace ($RUST_LOG, when set,
    /// chooses instead).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bars or progress lines.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
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
    /// A base: many writers, one deterministic view (hyper-autobase).
    #[command(subcommand)]
    Base(base_cmd::BaseCommand),
    /// Run a DHT node, or ask the DHT who announces a core.
    #[command(subcommand)]
    Dht(swarm_cmd::DhtCommand),
    /// Serve cores to peers until stopped: announced on the DHT (found by
    /// `clone KEY` from anywhere) and/or on a TCP address (`--listen`).
    Seed(net_cmd::SeedArgs),
    /// Download a whole core from a peer, verifying every block.
    Clone(clone_cmd::CloneArgs),
    /// Show what the process holding the store (a running `seed` or
    /// `clone`) is doing:
    /// its identity, TCP peers, and the cores with what is stored.
    Status {
        /// One JSON object: pid, command, identity, listening, peers, cores
        /// (each [key, length, blocks stored]).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (for example:
    /// `hyper-cli completions bash > /etc/bash_completion.d/hyper-cli`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Settings every command gets.
pub struct Global {
    /// The store directory, if there is one.
    store: Option<PathBuf>,
    /// `--quiet`: no progress output.
    pub quiet: bool,
}

impl Global {
    /// The store directory, or why there is none.
    pub fn store(&self) -> Result<&std::path::Path, CliError> {
        self.store.as_deref().ok_or(CliError::NoHome)
    }
}

/// Logs go to stderr: `$RUST_LOG` if set, else nothing below errors of
/// this tool, `-v` debug and `-vv` trace for the hyper crates.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => {
                "hyper_cli=debug,hyper_wire=debug,hyper_swarm=debug,hyper_core=debug,hyper_bee=debug"
            }
            _ => {
                "debug,hyper_cli=trace,hyper_wire=trace,hyper_swarm=trace,hyper_core=trace,hyper_bee=trace"
            }
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// clap's error as one line: its message, then its tips (such as a similar
/// argument) after a `;`.
fn one_line(error: &clap::Error) -> String {
    let text = error.to_string();
    if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap shows the whole help: name the subcommands instead.
        let commands: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        return format!(
            "a subcommand is missing: one of {} (see --help)",
            commands.join(", ")
        );
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_string();
    for tip in lines.filter_map(|l| l.strip_prefix("tip: ")) {
        line.push_str("; ");
        line.push_str(tip);
    }
    if let Some(usage) = error
        .context()
        .find_map(|(kind, value)| (kind == clap::error::ContextKind::Usage).then_some(value))
    {
        let usage = usage.to_string();
        let usage = usage.trim().trim_start_matches("Usage: ");
        line.push_str(&format!(" (usage: {usage}; see --help)"));
    } else {
        line.push_str(" (see --help)");
    }
    line
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: to stdout, success.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hyper-cli: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    init_logging(cli.verbose);
    let uses_store = !matches!(
        cli.command,
        Command::Dht(swarm_cmd::DhtCommand::Node { .. }) | Command::Completions { .. }
    );
    if cli.store.is_some() && !uses_store {
        eprintln!("hyper-cli: --store does not apply to this command (it keeps no store)");
        return ExitCode::from(2);
    }
    let global = Global {
        store: store::locate(cli.store),
        quiet: cli.quiet,
    };
    let result = match cli.command {
        Command::Core(cmd) => core_cmd::run(&global, cmd),
        Command::Bee(cmd) => bee_cmd::run(&global, cmd),
        Command::Base(cmd) => base_cmd::run(&global, cmd),
        Command::Drive(cmd) => drive_cmd::run(&global, cmd),
        Command::Dht(cmd) => swarm_cmd::run(&global, cmd),
        Command::Seed(args) => net_cmd::seed(&global, args),
        Command::Clone(args) => clone_cmd::clone(&global, args),
        Command::Status { json } => global.store().and_then(|dir| local::status(dir, json)),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hyper-cli",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyper-cli: {e}");
            // Arguments that contradict each other are bad arguments too.
            ExitCode::from(if matches!(e, CliError::Usage(_)) {
                2
            } else {
                1
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_consistent_and_every_one_has_help() {
        let command = Cli::command();
        command.clone().debug_assert();
        fn walk(command: &clap::Command, path: &str) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{path} {id} has no help text");
            }
            for sub in command.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no help",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&command, "hyper-cli");
    }
}
