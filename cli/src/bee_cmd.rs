//! `hyper-cli bee …`: a B-tree key/value store in a core, local or read
//! sparsely from a seeding peer (`--connect`).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper_bee::{Bee, Change, Item, RangeOptions, with_fetch};
use hyper_core::{Core, KeyPair, Store};
use hyper_wire::{Replication, ReplicationOptions, connect_tcp};

use crate::CliError;
use crate::core_cmd::open_core;
use crate::json::Object;

/// Lines written per batch by `bee import`.
const IMPORT_BATCH: usize = 1000;

#[derive(Subcommand)]
pub enum BeeCommand {
    /// Set key K to value V.
    Put {
        core: String,
        key: String,
        value: String,
    },
    /// Print the value of key K.
    Get {
        core: String,
        key: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove key K.
    Del { core: String, key: String },
    /// List entries in key order, one per line ("KEY VALUE").
    Ls {
        core: String,
        #[arg(long)]
        gt: Option<String>,
        #[arg(long)]
        gte: Option<String>,
        #[arg(long)]
        lt: Option<String>,
        #[arg(long)]
        lte: Option<String>,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// At most N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON object per line: key, value.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print every write, oldest first: "SEQ put KEY VALUE" or "SEQ del KEY".
    History {
        core: String,
        /// One JSON object per line: seq, type, key, value.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Load lines "KEY VALUE" (split at the first space) from stdin, in
    /// batches of 1,000.
    Import { core: String },
}

/// Reading from a peer instead of the local store.
#[derive(Args)]
pub struct Remote {
    /// Read sparsely from a peer that seeds the core (CORE must be its key).
    #[arg(long, value_name = "ADDR")]
    connect: Option<String>,
    /// Give up on a block after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

/// The bee to write to: a core by key, or by name, created (writable) on
/// first use of the name.
fn writable_bee(store: &Store, core: &str) -> Result<Bee, CliError> {
    let core = match open_core(store, core) {
        Err(CliError::NoSuchCore(name)) if name.parse::<hyper_core::CoreKey>().is_err() => {
            store.named(&name)?
        }
        other => other?,
    };
    Ok(Bee::open(core)?)
}

pub fn run(dir: &Path, cmd: BeeCommand) -> Result<(), CliError> {
    let store = Store::open(dir)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        BeeCommand::Put { core, key, value } => {
            let bee = writable_bee(&store, &core)?;
            bee.put(key.as_bytes(), value.as_bytes())?;
        }
        BeeCommand::Del { core, key } => {
            let bee = Bee::open(open_core(&store, &core)?)?;
            if !bee.del(key.as_bytes())? {
                eprintln!("hyper-cli: no key '{key}'");
            }
        }
        BeeCommand::Import { core } => {
            let bee = writable_bee(&store, &core)?;
            let mut count = 0u64;
            let mut batch = bee.batch();
            let mut pending = 0;
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                let (k, v) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                batch.put(k.as_bytes(), v.as_bytes());
                pending += 1;
                count += 1;
                if pending == IMPORT_BATCH {
                    batch.commit()?;
                    batch = bee.batch();
                    pending = 0;
                }
            }
            batch.commit()?;
            writeln!(out, "imported {count} entries: version {}", bee.version()?)?;
        }
        BeeCommand::Get { core, key, remote } => {
            let value = read(&store, &core, &remote, |bee| bee.get(key.as_bytes()))?;
            match value {
                Some(v) => {
                    out.write_all(&v)?;
                    writeln!(out)?;
                }
                None => return Err(CliError::NoSuchKey(key)),
            }
        }
        BeeCommand::Ls {
            core,
            gt,
            gte,
            lt,
            lte,
            reverse,
            limit,
            json,
            remote,
        } => {
            let options = RangeOptions {
                gt: gt.map(String::into_bytes),
                gte: gte.map(String::into_bytes),
                lt: lt.map(String::into_bytes),
                lte: lte.map(String::into_bytes),
                reverse,
                limit,
            };
            let items: Vec<Item> = read(&store, &core, &remote, |bee| bee.range(&options))?;
            for item in items {
                let (k, v) = (
                    String::from_utf8_lossy(&item.key),
                    String::from_utf8_lossy(&item.value),
                );
                if json {
                    let o = Object::default()
                        .str("key", Some(&k))
                        .str("value", Some(&v));
                    writeln!(out, "{}", o.finish())?;
                } else {
                    writeln!(out, "{k} {v}")?;
                }
            }
        }
        BeeCommand::History { core, json, remote } => {
            let changes: Vec<Change> = read(&store, &core, &remote, |bee| {
                bee.history(0..u64::MAX, false)
            })?;
            for c in changes {
                let k = String::from_utf8_lossy(&c.key);
                let v = c.value.as_deref().map(String::from_utf8_lossy);
                if json {
                    let o = Object::default()
                        .num("seq", c.seq)
                        .str("type", Some(if v.is_some() { "put" } else { "del" }))
                        .str("key", Some(&k))
                        .str("value", v.as_deref());
                    writeln!(out, "{}", o.finish())?;
                } else {
                    match v {
                        Some(v) => writeln!(out, "{} put {k} {v}", c.seq)?,
                        None => writeln!(out, "{} del {k}", c.seq)?,
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs a read on the local bee, or with `--connect`, on a replica that
/// fetches each block the read needs from the peer (verified, stored).
fn read<T>(
    store: &Store,
    core: &str,
    remote: &Remote,
    op: impl Fn(&Bee) -> hyper_bee::Result<T>,
) -> Result<T, CliError> {
    let Some(addr) = &remote.connect else {
        let bee = Bee::open(open_core(store, core)?)?;
        return Ok(op(&bee)?);
    };
    let key = core
        .parse()
        .map_err(|_| CliError::BadKey(core.to_string()))?;
    let replica: Core = store.replica(&key)?;
    let timeout = Duration::from_secs(remote.timeout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let replication = Replication::new(
            store.clone(),
            KeyPair::generate()?,
            ReplicationOptions::default(),
        );
        replication.add_core(&replica);
        let _connection = connect_tcp(&replication, addr.as_str()).await?;
        // The header first: it also brings the latest length.
        replication.get(&replica, 0, timeout).await?;
        let bee = Bee::open(replica.clone())?;
        let result = with_fetch(
            || op(&bee),
            |seq| {
                let (replication, replica) = (replication.clone(), replica.clone());
                async move { replication.get(&replica, seq, timeout).await.map(|_| ()) }
            },
            |e| hyper_bee::Error::Fetch(Box::new(e)),
        )
        .await?;
        store.flush()?;
        Ok(result)
    })
}
