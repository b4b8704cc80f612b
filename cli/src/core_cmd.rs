//! `hyper-cli core …`: create, append to, read and inspect cores.

use std::io::{BufRead, Write};
use std::time::Duration;

use clap::Subcommand;
use data_encoding::BASE64;
use hyper_core::{Core, CoreKey, EncryptionKey, Error, KeyPair, Store};
use serde::{Deserialize, Serialize};

use crate::encoding::Encoding;
use crate::local::{Reply, Request, ask_holder};
use crate::output::json_line;
use crate::store::{Access, open_durable};
use crate::{CliError, Global};

/// Lines appended per batch (one transaction, one signature) when reading stdin.
const STDIN_BATCH: usize = 1000;

/// `hyper-cli core ...`
#[derive(Subcommand)]
pub enum CoreCommand {
    /// Create a writable core and print its key.
    Create {
        /// Name it (the same name in the same store gives the same key); not
        /// empty, and not a 64-hex core key.
        #[arg(long)]
        name: Option<String>,
        /// Encrypt its blocks with a new random key, printed once: seeders
        /// need only the core key, readers need both.
        #[arg(long)]
        encrypted: bool,
    },
    /// Append each DATA argument as a block; with none, each line of stdin
    /// (its newline kept; with --hex/--base64, each line decoded) as a block.
    Append {
        /// Core key (64 hex characters) or name.
        key: String,
        /// Blocks to append, one per argument.
        data: Vec<String>,
        #[command(flatten)]
        encoding: Encoding,
        /// Append even to a core that holds a bee (which breaks the bee).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Write block INDEX to stdout (with --hex/--base64, encoded and ending
    /// in a newline); with --connect, fetch it from that peer if it is not
    /// stored here (only that block and its proof move).
    Get {
        /// Core key (64 hex characters), name, or share ticket.
        key: String,
        /// The block's index, from 0.
        index: u64,
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        encoding: Encoding,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Write the blocks START..END to stdout (with --hex/--base64, one
    /// encoded block per line); with --connect, blocks not stored here are
    /// fetched from that peer first.
    Cat {
        /// Core key (64 hex characters), name, or share ticket.
        key: String,
        /// The first block.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// The block after the last [default: the length].
        #[arg(long)]
        end: Option<u64>,
        /// After the last block, wait for appends and write them as they
        /// come (until stopped), like `tail -f`.
        #[arg(short, long, conflicts_with_all = ["end", "connect"])]
        follow: bool,
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        encoding: Encoding,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Show key, discovery key, length, byte length, fork, what is stored
    /// locally.
    Info {
        /// Core key (64 hex characters) or name.
        key: String,
        /// One JSON object (fields as in the README).
        #[arg(long)]
        json: bool,
    },
    /// List the cores in the store: key, length, blocks stored here,
    /// rw/ro, name.
    List {
        /// JSON lines: one object per core.
        #[arg(long)]
        json: bool,
    },
    /// Print the secret of the core's signing key pair (64 hex characters),
    /// for `core import-key` on another machine. Keep it secret.
    ExportKey {
        /// Core key (64 hex characters) or name.
        key: String,
    },
    /// Make the core of a secret from `core export-key` writable here: a
    /// clone of it becomes writable and keeps its blocks (clone first, or
    /// new appends fork the log). The secret is read from stdin when not
    /// given, which keeps it out of the process list. With the encryption
    /// key of an encrypted core, plain appends are refused from then on.
    ImportKey {
        /// The secret (64 hex characters) [default: read from stdin].
        secret: Option<String>,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Drop the local copies of blocks START..END (proofs and the tree
    /// stay); prints the bytes freed.
    Clear {
        /// Core key (64 hex characters) or name.
        key: String,
        /// The first block to drop.
        start: u64,
        /// The block after the last one to drop.
        end: u64,
    },
    /// Delete the core and all its data from the store, then compact the
    /// store file; prints the file size before and after.
    Purge {
        /// Core key (64 hex characters) or name.
        key: String,
    },
}

/// Reading blocks from a peer when they are not stored here.
#[derive(clap::Args)]
pub struct Remote {
    /// Address of a peer that seeds the core (HOST:PORT); a core not in the
    /// local store must then be named by its hex key.
    #[arg(long, value_name = "ADDR", value_parser = crate::args::address)]
    pub connect: Option<String>,
    /// Give up on the peer after this many seconds (connecting included).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

impl Remote {
    /// `--timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// `--encryption-key`, for the commands that read or append blocks.
#[derive(clap::Args)]
pub struct EncryptionArg {
    /// The core's encryption key (64 hex characters) [default:
    /// $HYPER_ENCRYPTION_KEY]; only for encrypted cores.
    #[arg(long, value_name = "HEX")]
    encryption_key: Option<String>,
}

impl EncryptionArg {
    /// The key from the flag or the environment, if any.
    fn key(&self) -> Result<Option<EncryptionKey>, CliError> {
        let text = match &self.encryption_key {
            Some(k) => Some(k.clone()),
            None => std::env::var("HYPER_ENCRYPTION_KEY").ok(),
        };
        Ok(text.map(|t| t.parse::<EncryptionKey>()).transpose()?)
    }

    /// `core`, decrypting and encrypting with the key if one was given.
    fn apply(&self, core: Core) -> Result<Core, CliError> {
        Ok(match self.key()? {
            Some(k) => core.with_encryption(&k)?,
            None => core,
        })
    }
}

/// Finds a core by hex key or by name.
pub fn open_core(store: &Store, key: &str) -> Result<Core, CliError> {
    let found = match key.parse::<CoreKey>() {
        Ok(k) => match store.core(&k) {
            Ok(core) => Some(core),
            Err(Error::UnknownCore(_)) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => store.by_name(key)?,
    };
    found.ok_or_else(|| CliError::NoSuchCore(key.to_string()))
}

/// Checks a name for a new core: not empty, not a core key (which would
/// always be read as the key).
pub fn check_name(name: &str) -> Result<(), CliError> {
    let why = if name.trim().is_empty() {
        "it is empty"
    } else if name.parse::<CoreKey>().is_ok() {
        "it is a core key (64 hex characters), and a key always names the core it is"
    } else {
        return Ok(());
    };
    Err(CliError::BadName {
        name: name.to_string(),
        why,
    })
}

/// Whether block 0 of `core` is a bee's header: raw appends would break it.
pub fn holds_a_bee(core: &Core) -> Result<bool, CliError> {
    use prost::Message as _;
    if core.info()?.length == 0 {
        return Ok(false);
    }
    let first = match core.get(0) {
        Ok(block) => block,
        Err(Error::NotAvailable { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    Ok(hyper_bee::messages::Header::decode(first.as_slice())
        .is_ok_and(|h| h.protocol == hyper_bee::PROTOCOL))
}

/// Runs a `core` subcommand.
pub fn run(global: &Global, mut cmd: CoreCommand) -> Result<(), CliError> {
    let dir = global.store()?;
    // A share ticket names the core and the peer to read from.
    if let CoreCommand::Get { key, remote, .. } | CoreCommand::Cat { key, remote, .. } = &mut cmd {
        let target = crate::ticket::target(key, remote.connect.as_deref(), None)?;
        (*key, remote.connect) = (target.key, target.connect);
    }
    let mut out = std::io::stdout().lock();
    match cmd {
        CoreCommand::Create { name, encrypted } => {
            let store = open_durable(dir, Access::Write)?;
            let core = match name {
                Some(n) => {
                    check_name(&n)?;
                    store.named(&n)?
                }
                None => store.create_core()?,
            };
            if encrypted {
                let secret = EncryptionKey::generate()?;
                core.with_encryption(&secret)?;
                writeln!(out, "key:            {}", core.key())?;
                writeln!(out, "encryption key: {}", secret.to_hex())?;
            } else {
                writeln!(out, "{}", core.key())?;
            }
        }
        CoreCommand::Append {
            key,
            data,
            encoding,
            force,
            encryption,
        } => {
            let store = match open_durable(dir, Access::Write) {
                Err(CliError::StoreLocked(_)) if encryption.key()?.is_none() => {
                    return append_through_holder(dir, key, data, encoding, force);
                }
                store => store?,
            };
            let core = encryption.apply(open_core(&store, &key)?)?;
            if !force && holds_a_bee(&core)? {
                return Err(CliError::StructuredCore(key));
            }
            let before = core.info()?.length;
            let outcome = if data.is_empty() {
                append_stdin(&core, encoding)?
            } else {
                let blocks = data
                    .iter()
                    .enumerate()
                    .map(|(i, d)| encoding.arg(d, &format!("DATA argument {}", i + 1)))
                    .collect::<Result<Vec<_>, _>>()?;
                append(&core, &blocks, 0)?
            };
            writeln!(
                out,
                "appended {} blocks: length {}, {} bytes",
                outcome.length - before,
                outcome.length,
                outcome.byte_length
            )?;
        }
        CoreCommand::Get {
            key,
            index,
            remote,
            encoding,
            encryption,
        } => {
            let block = match &remote.connect {
                Some(addr) => crate::net_cmd::get(
                    dir,
                    &key,
                    index,
                    addr,
                    encryption.key()?.as_ref(),
                    remote.timeout(),
                )?,
                None => {
                    let store = open_durable(dir, Access::Read)?;
                    let core = encryption.apply(open_core(&store, &key)?)?;
                    local_block(&core, index)?
                }
            };
            write_block(&mut out, &block, encoding)?;
        }
        CoreCommand::Cat {
            key,
            start,
            end,
            follow,
            remote,
            encoding,
            encryption,
        } => {
            if let Some(end) = end.filter(|&end| end < start) {
                return Err(CliError::Usage(format!(
                    "--start {start} is past --end {end}"
                )));
            }
            let (core, store) = match &remote.connect {
                Some(addr) => (
                    crate::net_cmd::fetch_range(
                        dir,
                        &key,
                        start..end.unwrap_or(u64::MAX),
                        addr,
                        remote.timeout(),
                    )?,
                    None,
                ),
                None => match open_durable(dir, Access::Read) {
                    Err(CliError::StoreLocked(_)) => {
                        let request = Request::Cat {
                            key,
                            start,
                            end,
                            follow,
                        };
                        return ask_holder(dir, &request, |reply| {
                            if let Reply::Blocks(blocks) = reply {
                                for block in blocks {
                                    let block = BASE64.decode(block.as_bytes()).map_err(|e| {
                                        CliError::Remote(format!("a bad block: {e}"))
                                    })?;
                                    write_block(&mut out, &block, encoding)?;
                                }
                            }
                            Ok(out.flush()?)
                        });
                    }
                    store => {
                        let store = store?;
                        (open_core(&store, &key)?, Some(store))
                    }
                },
            };
            let core = encryption.apply(core)?;
            if let (true, Some(store)) = (follow, store) {
                // Appends come through this process's socket meanwhile.
                let status = crate::local::Status {
                    pid: std::process::id(),
                    command: "core cat --follow".into(),
                    ..Default::default()
                };
                crate::local::serve(
                    store,
                    std::sync::Arc::new(std::sync::Mutex::new(status)),
                    None,
                );
            }
            each_chunk(&core, start, end, follow, |blocks| {
                for block in blocks {
                    write_block(&mut out, &block, encoding)?;
                }
                Ok(out.flush()?)
            })?;
        }
        CoreCommand::Info { key, json } => match open_durable(dir, Access::Read) {
            Err(CliError::StoreLocked(_)) => {
                let request = Request::Info { key };
                ask_holder(dir, &request, |reply| match reply {
                    Reply::Info(info) => print_info(&mut out, &info, json),
                    _ => Ok(()),
                })?;
            }
            store => {
                let store = store?;
                print_info(&mut out, &info_of(&store, &open_core(&store, &key)?)?, json)?;
            }
        },
        CoreCommand::List { json } => match open_durable(dir, Access::Read) {
            Err(CliError::StoreLocked(_)) => {
                ask_holder(dir, &Request::List, |reply| match reply {
                    Reply::Entry(entry) => print_entry(&mut out, &entry, json),
                    _ => Ok(()),
                })?;
            }
            store => {
                for entry in list_of(&store?)? {
                    print_entry(&mut out, &entry, json)?;
                }
            }
        },
        CoreCommand::ExportKey { key } => {
            let store = open_durable(dir, Access::Read)?;
            let core = open_core(&store, &key)?;
            let pairs = core.export_key_pairs()?;
            let [pair] = pairs.as_slice() else {
                return Err(CliError::Core(Error::InvalidArgument(
                    "export-key needs a core with exactly one signing key here",
                )));
            };
            let secret: String = pair.seed().iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "{secret}")?;
        }
        CoreCommand::ImportKey { secret, encryption } => {
            let store = open_durable(dir, Access::Write)?;
            let text = match secret {
                Some(s) => s,
                None => std::io::read_to_string(std::io::stdin().lock())?,
            };
            let seed = text
                .trim()
                .parse::<hyper_core::Hash>()
                .map_err(|_| Error::InvalidArgument("a key secret must be 32 bytes of hex"))?;
            let core = encryption.apply(store.import_key_pair(KeyPair::from_seed(seed.0))?)?;
            let info = core.info()?;
            writeln!(out, "{}: writable here, length {}", core.key(), info.length)?;
        }
        CoreCommand::Clear { key, start, end } => {
            let store = open_durable(dir, Access::Write)?;
            let core = open_core(&store, &key)?;
            let freed = core.clear(start..end)?;
            writeln!(out, "cleared blocks {start}..{end}: {freed} bytes freed")?;
        }
        CoreCommand::Purge { key } => {
            let mut store = open_durable(dir, Access::Write)?;
            let core_key = open_core(&store, &key)?.key();
            let before = store.file_size()?;
            store.delete(&core_key)?;
            store.compact()?;
            writeln!(
                out,
                "deleted {core_key}; store file {before} -> {} bytes",
                store.file_size()?
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Block `index` of a local core; a block of a sparse replica that is not
/// here says how to fetch it.
pub fn local_block(core: &Core, index: u64) -> Result<Vec<u8>, CliError> {
    core.get(index).map_err(|e| match e {
        Error::NotAvailable { index } => CliError::NotStored {
            key: core.key().to_string(),
            index,
        },
        e => e.into(),
    })
}

/// How often `core cat --follow` looks for appends.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Blocks handed on at once by [`each_chunk`].
const CHUNK: u64 = 256;

/// Hands the blocks `start..end` of `core` (to its length with no end) to
/// `each`, a chunk at a time; with `follow`, then every block appended,
/// until `each` fails (a closed stdout or socket). A block not stored here
/// is [`CliError::NotStored`], an end past the length out of bounds.
pub fn each_chunk(
    core: &Core,
    start: u64,
    end: Option<u64>,
    follow: bool,
    mut each: impl FnMut(Vec<Vec<u8>>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let length = core.info()?.length;
    if let Some(end) = end.filter(|&end| end > length) {
        return Err(Error::OutOfBounds {
            index: end - 1,
            length,
        }
        .into());
    }
    let mut at = start;
    loop {
        let stop = end.unwrap_or(core.info()?.length).max(at);
        while at < stop {
            let next = stop.min(at + CHUNK);
            let blocks = core
                .blocks(at..next)?
                .map(|b| match b {
                    Ok((_, block)) => Ok(block),
                    Err(Error::NotAvailable { index }) => Err(CliError::NotStored {
                        key: core.key().to_string(),
                        index,
                    }),
                    Err(e) => Err(e.into()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            each(blocks)?;
            at = next;
        }
        if !follow {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// A block as it is, or encoded on a line of its own.
fn write_block(out: &mut impl Write, block: &[u8], encoding: Encoding) -> Result<(), CliError> {
    out.write_all(&encoding.encode(block))?;
    if encoding.is_text() {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `core info --json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct InfoJson {
    key: String,
    discovery_key: String,
    name: Option<String>,
    length: u64,
    byte_length: u64,
    fork: u64,
    contiguous_length: u64,
    blocks_stored: u64,
    bytes_stored: u64,
    bytes_on_disk: u64,
    store_file_bytes: u64,
    writable: bool,
}

/// What `core info` shows of `core`.
pub fn info_of(store: &Store, core: &Core) -> Result<InfoJson, CliError> {
    let info = core.info()?;
    let key = core.key();
    Ok(InfoJson {
        key: key.to_string(),
        discovery_key: core.discovery_key().to_string(),
        name: store
            .list()?
            .into_iter()
            .find(|e| e.key == key)
            .and_then(|e| e.name),
        length: info.length,
        byte_length: info.byte_length,
        fork: info.fork,
        contiguous_length: info.contiguous_length,
        blocks_stored: info.blocks_stored,
        bytes_stored: info.bytes_stored,
        bytes_on_disk: core.disk_usage()?,
        store_file_bytes: store.file_size()?,
        writable: info.writable,
    })
}

fn print_info(out: &mut impl Write, o: &InfoJson, json: bool) -> Result<(), CliError> {
    if json {
        return json_line(out, o);
    }
    writeln!(out, "key:               {}", o.key)?;
    writeln!(out, "discovery key:     {}", o.discovery_key)?;
    writeln!(
        out,
        "name:              {}",
        o.name.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "length:            {}", o.length)?;
    writeln!(out, "byte length:       {}", o.byte_length)?;
    writeln!(out, "fork:              {}", o.fork)?;
    writeln!(out, "contiguous length: {}", o.contiguous_length)?;
    writeln!(out, "blocks stored:     {}", o.blocks_stored)?;
    writeln!(out, "bytes stored:      {}", o.bytes_stored)?;
    writeln!(out, "bytes on disk:     {}", o.bytes_on_disk)?;
    writeln!(out, "store file:        {} bytes", o.store_file_bytes)?;
    writeln!(out, "writable:          {}", o.writable)?;
    Ok(())
}

/// A line of `core list --json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct ListJson {
    key: String,
    name: Option<String>,
    length: u64,
    blocks_stored: u64,
    writable: bool,
}

/// The lines of `core list`.
pub fn list_of(store: &Store) -> Result<Vec<ListJson>, CliError> {
    store
        .list()?
        .into_iter()
        .map(|entry| {
            Ok(ListJson {
                blocks_stored: store.core(&entry.key)?.info()?.blocks_stored,
                key: entry.key.to_string(),
                name: entry.name,
                length: entry.length,
                writable: entry.writable,
            })
        })
        .collect()
}

fn print_entry(out: &mut impl Write, entry: &ListJson, json: bool) -> Result<(), CliError> {
    if json {
        return json_line(out, entry);
    }
    writeln!(
        out,
        "{}  {:>10} blocks  {:>10} stored  {}  {}",
        entry.key,
        entry.length,
        entry.blocks_stored,
        if entry.writable { "rw" } else { "ro" },
        entry.name.as_deref().unwrap_or("-")
    )?;
    Ok(())
}

/// `core append` while another process holds the store: the blocks go to
/// it (arguments, or stdin lines as [`append_stdin`] reads them).
fn append_through_holder(
    dir: &std::path::Path,
    key: String,
    data: Vec<String>,
    encoding: Encoding,
    force: bool,
) -> Result<(), CliError> {
    let blocks = if data.is_empty() {
        read_lines(encoding)?
    } else {
        data.iter()
            .enumerate()
            .map(|(i, d)| encoding.arg(d, &format!("DATA argument {}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?
    };
    let request = Request::Append {
        key,
        blocks: blocks.iter().map(|b| BASE64.encode(b)).collect(),
        force,
    };
    let mut out = std::io::stdout().lock();
    ask_holder(dir, &request, |reply| {
        if let Reply::Appended(count, length, bytes) = reply {
            writeln!(
                out,
                "appended {count} blocks: length {length}, {bytes} bytes"
            )?;
        }
        Ok(())
    })
}

/// Appends `blocks`, which start at block `first` of the input; a failure
/// says which blocks of the input did not go in.
fn append(
    core: &Core,
    blocks: &[Vec<u8>],
    first: u64,
) -> Result<hyper_core::AppendOutcome, CliError> {
    core.append_batch(blocks).map_err(|error| CliError::Append {
        first,
        count: blocks.len(),
        error,
    })
}

/// Appends stdin line by line (newlines kept, or each line decoded), in
/// batches.
fn append_stdin(core: &Core, encoding: Encoding) -> Result<hyper_core::AppendOutcome, CliError> {
    let mut input = std::io::stdin().lock();
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(STDIN_BATCH);
    let info = core.info()?;
    let mut outcome = hyper_core::AppendOutcome {
        length: info.length,
        byte_length: info.byte_length,
    };
    let mut lines = 0u64;
    loop {
        let mut line = Vec::new();
        let n = input.read_until(b'\n', &mut line)?;
        if n > 0 {
            lines += 1;
            match decode_line(line, lines, encoding) {
                Ok(block) => batch.push(block),
                Err(why) => {
                    if !batch.is_empty() {
                        append(core, &batch, lines - 1 - batch.len() as u64)?;
                    }
                    return Err(CliError::Usage(format!(
                        "{why}; the {} lines before it were appended",
                        lines - 1
                    )));
                }
            }
        }
        if batch.len() == STDIN_BATCH || (n == 0 && !batch.is_empty()) {
            outcome = append(core, &batch, lines - batch.len() as u64)?;
            batch.clear();
        }
        if n == 0 {
            return Ok(outcome);
        }
    }
}

/// A line of stdin as a block: as it is (newline kept), or decoded
/// (without its line end); `number` names it in the error.
fn decode_line(line: Vec<u8>, number: u64, encoding: Encoding) -> Result<Vec<u8>, String> {
    if !encoding.is_text() {
        return Ok(line);
    }
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    encoding.decode(text, &format!("line {number}"))
}

/// Every line of stdin as a block (see [`decode_line`]); a bad line is an
/// error and nothing is kept.
fn read_lines(encoding: Encoding) -> Result<Vec<Vec<u8>>, CliError> {
    let mut input = std::io::stdin().lock();
    let mut blocks = Vec::new();
    for number in 1.. {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        blocks.push(decode_line(line, number, encoding).map_err(CliError::Usage)?);
    }
    Ok(blocks)
}
