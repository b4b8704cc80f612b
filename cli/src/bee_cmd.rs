//! `hyper-cli bee …`: a B-tree key/value store in a core, local or read
//! sparsely from a seeding peer (`--connect`).

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper_bee::{Bee, Change, HistoryOptions, Item, Iter, RangeOptions, Stream};
use hyper_core::{Core, KeyPair, Store};
use hyper_wire::{ReplicatedSource, Replication, ReplicationOptions, connect_tcp};

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
            let value = match &remote.connect {
                None => Bee::open(open_core(&store, &core)?)?.get(key.as_bytes())?,
                Some(addr) => remote_read(&store, &core, addr, &remote, async |bee| {
                    Ok(bee.get_async(key.as_bytes()).await?)
                })?,
            };
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
            let print = |out: &mut std::io::StdoutLock<'_>, item: Item| {
                let (k, v) = (
                    String::from_utf8_lossy(&item.key),
                    String::from_utf8_lossy(&item.value),
                );
                if json {
                    let o = Object::default()
                        .str("key", Some(&k))
                        .str("value", Some(&v));
                    writeln!(out, "{}", o.finish())
                } else {
                    writeln!(out, "{k} {v}")
                }
            };
            each(
                &store,
                &core,
                &remote,
                &mut out,
                |bee| bee.range_iter(&options),
                |bee| bee.range_stream(&options),
                print,
            )?;
        }
        BeeCommand::History { core, json, remote } => {
            let print = |out: &mut std::io::StdoutLock<'_>, c: Change| {
                let k = String::from_utf8_lossy(&c.key);
                let v = c.value.as_deref().map(String::from_utf8_lossy);
                if json {
                    let o = Object::default()
                        .num("seq", c.seq)
                        .str("type", Some(if v.is_some() { "put" } else { "del" }))
                        .str("key", Some(&k))
                        .str("value", v.as_deref());
                    writeln!(out, "{}", o.finish())
                } else {
                    match v {
                        Some(v) => writeln!(out, "{} put {k} {v}", c.seq),
                        None => writeln!(out, "{} del {k}", c.seq),
                    }
                }
            };
            let all = HistoryOptions::default();
            each(
                &store,
                &core,
                &remote,
                &mut out,
                |bee| bee.history_iter(&all),
                |bee| bee.history_stream(&all),
                print,
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints each result of a read as it comes: from the local bee, or with
/// `--connect` from a replica that fetches the blocks ahead of the walk
/// from the peer (verified, stored).
fn each<T, W>(
    store: &Store,
    core: &str,
    remote: &Remote,
    out: &mut W,
    local: impl FnOnce(&Bee) -> hyper_bee::Result<Iter<T>>,
    streamed: impl FnOnce(&Bee) -> hyper_bee::Result<Stream<T>>,
    mut print: impl FnMut(&mut W, T) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let Some(addr) = &remote.connect else {
        for item in local(&Bee::open(open_core(store, core)?)?)? {
            print(out, item?)?;
        }
        return Ok(());
    };
    remote_read(store, core, addr, remote, async |bee| {
        let mut results = streamed(&bee)?;
        while let Some(item) = results.next().await {
            print(out, item?)?;
        }
        Ok(())
    })
}

/// Runs `read` on the bee `core` (its key) read through a replica of it
/// connected to the peer at `addr`, waiting up to `--timeout` per block.
fn remote_read<T>(
    store: &Store,
    core: &str,
    addr: &str,
    remote: &Remote,
    read: impl AsyncFnOnce(Bee) -> Result<T, CliError>,
) -> Result<T, CliError> {
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
        let source = ReplicatedSource::new(&replication, &replica);
        let _connection = connect_tcp(&replication, addr).await?;
        // The header first: it also brings the latest length.
        let bee = Bee::open_source(Arc::new(source), timeout).await?;
        let result = read(bee).await?;
        store.flush()?;
        Ok(result)
    })
}
