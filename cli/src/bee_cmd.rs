//! `hyper-cli bee …`: a B-tree key/value store in a core, local or read
//! sparsely from a seeding peer (`--connect`).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper_bee::{Bee, Change, HistoryOptions, Item, Iter, RangeOptions, Stream};
use hyper_core::{Core, Store};
use hyper_wire::ReplicatedSource;
use serde::{Deserialize, Serialize};

use crate::core_cmd::{check_name, open_core};
use crate::encoding::Encoding;
use crate::local::Request;
use crate::output::json_line;
use crate::store::{Access, open_durable};
use crate::{CliError, Global};

/// `hyper-cli bee ...` (serialized to go through the store socket).
#[derive(Subcommand, Serialize, Deserialize, Debug)]
pub enum BeeCommand {
    /// Set key K to value V (a core name creates the core on first use).
    Put {
        /// Core key (64 hex characters) or name.
        core: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Write the value of key K to stdout, byte for byte (with --hex or
    /// --base64: encoded, then a newline).
    Get {
        /// Core key (64 hex characters), name, or share ticket.
        core: String,
        /// The key.
        key: String,
        /// End the value with a newline.
        #[arg(short = 'n', long)]
        newline: bool,
        #[command(flatten)]
        encoding: Encoding,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove key K (a key that is not there is an error).
    Del {
        /// Core key (64 hex characters) or name.
        core: String,
        /// The key.
        key: String,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// List entries in key order, one per line ("KEY VALUE").
    Ls {
        /// Core key (64 hex characters), name, or share ticket.
        core: String,
        /// Only keys after A.
        #[arg(long, value_name = "A", conflicts_with = "gte")]
        gt: Option<String>,
        /// Only keys from A on.
        #[arg(long, value_name = "A")]
        gte: Option<String>,
        /// Only keys before B.
        #[arg(long, value_name = "B", conflicts_with = "lte")]
        lt: Option<String>,
        /// Only keys up to B.
        #[arg(long, value_name = "B")]
        lte: Option<String>,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// At most N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// JSON lines: one object per entry with key, value.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        encoding: Encoding,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print every write, oldest first: "SEQ put KEY VALUE" or "SEQ del KEY".
    History {
        /// Core key (64 hex characters), name, or share ticket.
        core: String,
        /// JSON lines: one object per write with seq, type, key, value.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        encoding: Encoding,
        #[command(flatten)]
        remote: Remote,
    },
    /// Load lines "KEY VALUE" (split at the first space; with --hex or
    /// --base64 both encoded) from stdin, in one batch: a bad line imports
    /// nothing.
    Import {
        /// Core key (64 hex characters) or name.
        core: String,
        #[command(flatten)]
        encoding: Encoding,
    },
}

impl BeeCommand {
    /// Whether it changes the bee (put, del, import).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            BeeCommand::Put { .. } | BeeCommand::Del { .. } | BeeCommand::Import { .. }
        )
    }
}

/// Reading from a peer instead of the local store.
#[derive(Args, Serialize, Deserialize, Debug)]
pub struct Remote {
    /// Read sparsely from a peer that seeds the core (HOST:PORT; CORE must
    /// be its key).
    #[arg(long, value_name = "ADDR", value_parser = crate::args::address)]
    connect: Option<String>,
    /// Give up on connecting, or on a block, after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

/// The bee to write to: a core by key, or by name, created (writable) on
/// first use of the name.
fn writable_bee(store: &Store, core: &str) -> Result<Bee, CliError> {
    let core = match open_core(store, core) {
        Err(CliError::NoSuchCore(name)) if name.parse::<hyper_core::CoreKey>().is_err() => {
            check_name(&name)?;
            store.named(&name)?
        }
        other => other?,
    };
    Ok(Bee::open(core)?)
}

/// A line of `bee ls --json`.
#[derive(Serialize)]
struct EntryJson {
    key: String,
    value: String,
}

/// A line of `bee history --json`.
#[derive(Serialize)]
struct ChangeJson {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    key: String,
    value: Option<String>,
}

/// Runs a `bee` subcommand.
pub fn run(global: &Global, mut cmd: BeeCommand) -> Result<(), CliError> {
    let dir = global.store()?;
    // A share ticket names the core and the peer to read from.
    if let BeeCommand::Get { core, remote, .. }
    | BeeCommand::Ls { core, remote, .. }
    | BeeCommand::History { core, remote, .. } = &mut cmd
    {
        let target = crate::ticket::target(core, remote.connect.as_deref(), None)?;
        (*core, remote.connect) = (target.key, target.connect);
    }
    let access = match &cmd {
        BeeCommand::Get { remote, .. }
        | BeeCommand::Ls { remote, .. }
        | BeeCommand::History { remote, .. }
            if remote.connect.is_none() =>
        {
            Access::Read
        }
        _ => Access::Write,
    };
    let mut out = std::io::stdout().lock();
    match open_durable(dir, access) {
        Ok(store) => execute(&store, cmd, std::io::stdin().lock(), &mut out)?,
        // A process holds the store: it runs the command.
        Err(CliError::StoreLocked(_)) => {
            let stdin = match cmd {
                BeeCommand::Import { .. } => Some(crate::local::stdin_base64()?),
                _ => None,
            };
            let request = Request::Bee {
                command: cmd,
                stdin,
            };
            crate::local::run_through_holder(dir, &request, &mut out)?;
        }
        Err(e) => return Err(e),
    }
    out.flush()?;
    Ok(())
}

/// Runs `cmd` on `store`, reading `bee import`'s lines from `input` and
/// writing what it prints to `out` (here, or in the process holding the
/// store for another invocation).
pub fn execute<W: Write>(
    store: &Store,
    cmd: BeeCommand,
    input: impl BufRead,
    out: &mut W,
) -> Result<(), CliError> {
    match cmd {
        BeeCommand::Put {
            core,
            key,
            value,
            encoding,
        } => {
            let bee = writable_bee(store, &core)?;
            bee.put(&encoding.arg(&key, "KEY")?, &encoding.arg(&value, "VALUE")?)?;
        }
        BeeCommand::Del {
            core,
            key,
            encoding,
        } => {
            let bee = Bee::open(open_core(store, &core)?)?;
            if !bee.del(&encoding.arg(&key, "KEY")?)? {
                return Err(CliError::NoSuchKey(key));
            }
        }
        BeeCommand::Import { core, encoding } => {
            let entries = read_import(input, encoding)?;
            let bee = writable_bee(store, &core)?;
            let mut batch = bee.batch();
            for (k, v) in &entries {
                batch.put(k, v);
            }
            batch.commit()?;
            writeln!(
                out,
                "imported {} entries: version {}",
                entries.len(),
                bee.version()?
            )?;
        }
        BeeCommand::Get {
            core,
            key,
            newline,
            encoding,
            remote,
        } => {
            let wanted = encoding.arg(&key, "KEY")?;
            let value = match &remote.connect {
                None => local(store, &core, |bee| bee.get(&wanted))?,
                Some(addr) => remote_read(store, &core, addr, &remote, async |bee| {
                    Ok(bee.get_async(&wanted).await?)
                })?,
            };
            match value {
                Some(v) => {
                    out.write_all(&encoding.encode(&v))?;
                    if newline || encoding.is_text() {
                        writeln!(out)?;
                    }
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
            encoding,
            remote,
        } => {
            let bound =
                |b: Option<String>, what: &str| b.map(|b| encoding.arg(&b, what)).transpose();
            let options = RangeOptions {
                gt: bound(gt, "--gt")?,
                gte: bound(gte, "--gte")?,
                lt: bound(lt, "--lt")?,
                lte: bound(lte, "--lte")?,
                reverse,
                limit,
            };
            let print = |out: &mut W, item: Item| -> Result<(), CliError> {
                if json {
                    let key = encoding.text(&item.key, || describe_key(&item.key))?;
                    let value = encoding.text(&item.value, || {
                        format!("the value of {}", describe_key(&item.key))
                    })?;
                    json_line(out, &EntryJson { key, value })?;
                } else {
                    out.write_all(&encoding.encode(&item.key))?;
                    out.write_all(b" ")?;
                    out.write_all(&encoding.encode(&item.value))?;
                    out.write_all(b"\n")?;
                }
                Ok(())
            };
            each(
                store,
                &core,
                &remote,
                out,
                |bee| bee.range_iter(&options),
                |bee| bee.range_stream(&options),
                print,
            )?;
        }
        BeeCommand::History {
            core,
            json,
            encoding,
            remote,
        } => {
            let print = |out: &mut W, c: Change| -> Result<(), CliError> {
                let kind = if c.value.is_some() { "put" } else { "del" };
                if json {
                    let key = encoding.text(&c.key, || describe_key(&c.key))?;
                    let value = c
                        .value
                        .as_deref()
                        .map(|v| {
                            encoding.text(v, || format!("the value of {}", describe_key(&c.key)))
                        })
                        .transpose()?;
                    json_line(
                        out,
                        &ChangeJson {
                            seq: c.seq,
                            kind,
                            key,
                            value,
                        },
                    )?;
                } else {
                    write!(out, "{} {kind} ", c.seq)?;
                    out.write_all(&encoding.encode(&c.key))?;
                    if let Some(v) = &c.value {
                        out.write_all(b" ")?;
                        out.write_all(&encoding.encode(v))?;
                    }
                    out.write_all(b"\n")?;
                }
                Ok(())
            };
            let all = HistoryOptions::default();
            each(
                store,
                &core,
                &remote,
                out,
                |bee| bee.history_iter(&all),
                |bee| bee.history_stream(&all),
                print,
            )?;
        }
    }
    Ok(())
}

/// A key in an error message: as text if it is, else in hex.
fn describe_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) => format!("key '{text}'"),
        Err(_) => format!("key {} (hex)", data_encoding::HEXLOWER.encode(key)),
    }
}

/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// The entries of `bee import` input: each line `KEY VALUE`, split at the
/// first space, decoded (empty lines skipped); a bad line is an error
/// naming its number.
fn read_import(input: impl BufRead, encoding: Encoding) -> Result<Vec<Entry>, CliError> {
    let mut entries = Vec::new();
    for (number, line) in (1u64..).zip(input.split(b'\n')) {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| CliError::BadLine { line: number, why };
        let Some(space) = line.iter().position(|&b| b == b' ') else {
            return Err(bad("no space between the key and the value".into()));
        };
        let (key, value) = (&line[..space], &line[space + 1..]);
        if key.is_empty() {
            return Err(bad("the key is empty".into()));
        }
        entries.push((
            encoding.decode(key, "the key").map_err(bad)?,
            encoding.decode(value, "the value").map_err(bad)?,
        ));
    }
    Ok(entries)
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
    mut print: impl FnMut(&mut W, T) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let Some(addr) = &remote.connect else {
        let bee = Bee::open(open_core(store, core)?)?;
        for item in local(&bee).map_err(|e| not_stored(&bee, e))? {
            print(out, item.map_err(|e| not_stored(&bee, e))?)?;
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

/// A read of the local bee `core`: a block a sparse replica lacks is
/// [`CliError::NotStored`], which says how to fetch it.
fn local<T>(
    store: &Store,
    core: &str,
    op: impl FnOnce(&Bee) -> hyper_bee::Result<T>,
) -> Result<T, CliError> {
    let bee = Bee::open(open_core(store, core)?)?;
    op(&bee).map_err(|e| not_stored(&bee, e))
}

fn not_stored(bee: &Bee, e: hyper_bee::Error) -> CliError {
    match e {
        hyper_bee::Error::Missing(index) => CliError::NotStored {
            key: bee.core().key().to_string(),
            index,
        },
        e => e.into(),
    }
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
    let made = store.core(&key).is_err();
    let replica: Core = store.replica(&key)?;
    let result = read_remote(store, &replica, addr, remote, read);
    if result.is_err() {
        crate::net_cmd::forget_if_empty(store, &replica, made);
    }
    result
}

/// [`remote_read`] once the replica is there.
fn read_remote<T>(
    store: &Store,
    replica: &Core,
    addr: &str,
    remote: &Remote,
    read: impl AsyncFnOnce(Bee) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let timeout = Duration::from_secs(remote.timeout);
    crate::net_cmd::runtime()?.block_on(async {
        let replication = crate::net_cmd::reader(store)?;
        let source = ReplicatedSource::new(&replication, replica);
        let _connection = crate::net_cmd::connect_within(&replication, addr, timeout).await?;
        // The header first: it also brings the latest length.
        let bee = Bee::open_source(Arc::new(source), timeout).await?;
        let result = read(bee).await?;
        store.flush()?;
        Ok(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lines_split_at_the_first_space_and_bad_ones_are_named() {
        let raw = Encoding::default();
        let entries = read_import(&b"a 1\nb two words\r\nc \n"[..], raw).expect("good input");
        assert_eq!(
            entries,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"two words".to_vec()),
                (b"c".to_vec(), Vec::new()),
            ]
        );
        let err = read_import(&b"a 1\nnospace\n"[..], raw).expect_err("bad line");
        assert!(err.to_string().starts_with("line 2 of the input"), "{err}");
        let hex = Encoding {
            hex: true,
            base64: false,
        };
        assert_eq!(
            read_import(&b"00ff 0a\n"[..], hex).expect("hex"),
            vec![(vec![0, 255], vec![10])]
        );
        let err = read_import(&b"00 0a\nzz 00\n"[..], hex).expect_err("bad hex");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
