//! `hyper-cli core …`: create, append to, read and inspect cores.

use std::io::{BufRead, Write};
use std::path::Path;

use clap::Subcommand;
use hyper_core::{Core, CoreKey, EncryptionKey, Error, KeyPair, Store};

use crate::CliError;
use crate::json::Object;

/// Lines appended per batch (one transaction, one signature) when reading stdin.
const STDIN_BATCH: usize = 1000;

#[derive(Subcommand)]
pub enum CoreCommand {
    /// Create a writable core and print its key.
    Create {
        /// Name it (the same name in the same store gives the same key).
        #[arg(long)]
        name: Option<String>,
        /// Encrypt its blocks with a new random key, printed once: seeders
        /// need only the core key, readers need both.
        #[arg(long)]
        encrypted: bool,
    },
    /// Append each DATA argument as a block; with none, each line of stdin
    /// (its newline kept) as a block.
    Append {
        /// Core key (64 hex characters) or name.
        key: String,
        data: Vec<String>,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Write block INDEX to stdout; with --connect, fetch it from that peer
    /// if it is not stored here (only that block and its proof move).
    Get {
        key: String,
        index: u64,
        /// Address of a peer that seeds the core.
        #[arg(long, value_name = "ADDR")]
        connect: Option<String>,
        /// Give up on the peer after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        timeout: u64,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Write the blocks START..END to stdout.
    Cat {
        key: String,
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// [default: the length]
        #[arg(long)]
        end: Option<u64>,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Print the secret of the core's signing key pair (64 hex characters),
    /// for `core import-key` on another machine. Keep it secret.
    ExportKey { key: String },
    /// Make the core of a secret from `core export-key` writable here: a
    /// clone of it becomes writable and keeps its blocks (clone first, or
    /// new appends fork the log). The secret is read from stdin when not
    /// given, which keeps it out of the process list. With the encryption
    /// key of an encrypted core, plain appends are refused from then on.
    ImportKey {
        secret: Option<String>,
        #[command(flatten)]
        encryption: EncryptionArg,
    },
    /// Drop the local copies of blocks START..END (proofs and the tree
    /// stay); prints the bytes freed.
    Clear { key: String, start: u64, end: u64 },
    /// Delete the core and all its data from the store, then compact the
    /// store file; prints the file size before and after.
    Purge { key: String },
    /// Show length, byte length, fork, what is stored locally.
    Info {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// List the cores in the store.
    List {
        #[arg(long)]
        json: bool,
    },
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

pub fn run(dir: &Path, cmd: CoreCommand) -> Result<(), CliError> {
    if let CoreCommand::Get {
        key,
        index,
        connect: Some(addr),
        timeout,
        encryption,
    } = &cmd
    {
        if encryption.key()?.is_some() {
            return Err(CliError::Core(Error::InvalidArgument(
                "--encryption-key with --connect is not supported: clone the core (or get the block) first, then read it here with the key",
            )));
        }
        return crate::net_cmd::get(
            dir,
            key,
            *index,
            addr,
            std::time::Duration::from_secs(*timeout),
        );
    }
    let store = Store::open(dir)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        CoreCommand::Create { name, encrypted } => {
            let core = match name {
                Some(n) => store.named(&n)?,
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
            encryption,
        } => {
            let core = encryption.apply(open_core(&store, &key)?)?;
            let before = core.info()?.length;
            let outcome = if data.is_empty() {
                append_stdin(&core)?
            } else {
                core.append_batch(&data)?
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
            encryption,
            ..
        } => {
            let core = encryption.apply(open_core(&store, &key)?)?;
            out.write_all(&core.get(index)?)?;
        }
        CoreCommand::Cat {
            key,
            start,
            end,
            encryption,
        } => {
            let core = encryption.apply(open_core(&store, &key)?)?;
            let end = end.unwrap_or(core.info()?.length);
            for block in core.blocks(start..end)? {
                out.write_all(&block?.1)?;
            }
        }
        CoreCommand::Info { key, json } => {
            let core = open_core(&store, &key)?;
            let info = core.info()?;
            let disk = core.disk_usage()?;
            if json {
                let o = Object::default()
                    .str("key", Some(&core.key().to_string()))
                    .num("length", info.length)
                    .num("byte_length", info.byte_length)
                    .num("fork", info.fork)
                    .num("contiguous_length", info.contiguous_length)
                    .num("blocks_stored", info.blocks_stored)
                    .num("bytes_on_disk", disk)
                    .num("store_file_bytes", store.file_size()?)
                    .bool("writable", info.writable);
                writeln!(out, "{}", o.finish())?;
            } else {
                writeln!(out, "key:               {}", core.key())?;
                writeln!(out, "discovery key:     {}", core.discovery_key())?;
                writeln!(out, "length:            {}", info.length)?;
                writeln!(out, "byte length:       {}", info.byte_length)?;
                writeln!(out, "fork:              {}", info.fork)?;
                writeln!(out, "contiguous length: {}", info.contiguous_length)?;
                writeln!(out, "blocks stored:     {}", info.blocks_stored)?;
                writeln!(out, "bytes on disk:     {disk}")?;
                writeln!(out, "store file:        {} bytes", store.file_size()?)?;
                writeln!(out, "writable:          {}", info.writable)?;
            }
        }
        CoreCommand::List { json } => {
            for entry in store.list()? {
                if json {
                    let o = Object::default()
                        .str("key", Some(&entry.key.to_string()))
                        .str("name", entry.name.as_deref())
                        .num("length", entry.length)
                        .bool("writable", entry.writable);
                    writeln!(out, "{}", o.finish())?;
                } else {
                    writeln!(
                        out,
                        "{}  {:>10}  {}  {}",
                        entry.key,
                        entry.length,
                        if entry.writable { "rw" } else { "ro" },
                        entry.name.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
        CoreCommand::ExportKey { key } => {
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
            let core = open_core(&store, &key)?;
            let freed = core.clear(start..end)?;
            writeln!(out, "cleared blocks {start}..{end}: {freed} bytes freed")?;
        }
        CoreCommand::Purge { key } => {
            let core = open_core(&store, &key)?;
            let core_key = core.key();
            drop(core);
            let before = store.file_size()?;
            store.delete(&core_key)?;
            let mut store = store;
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

/// Appends stdin line by line (newlines kept), in batches.
fn append_stdin(core: &Core) -> Result<hyper_core::AppendOutcome, CliError> {
    let mut input = std::io::stdin().lock();
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(STDIN_BATCH);
    let info = core.info()?;
    let mut outcome = hyper_core::AppendOutcome {
        length: info.length,
        byte_length: info.byte_length,
    };
    loop {
        let mut line = Vec::new();
        let n = input.read_until(b'\n', &mut line)?;
        if n > 0 {
            batch.push(line);
        }
        if batch.len() == STDIN_BATCH || (n == 0 && !batch.is_empty()) {
            outcome = core.append_batch(&batch)?;
            batch.clear();
        }
        if n == 0 {
            return Ok(outcome);
        }
    }
}
