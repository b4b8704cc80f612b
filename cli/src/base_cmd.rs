//! `hyper-cli base …`: a multi-writer base (hyper-autobase) whose values
//! this CLI applies to two views: a log of every value (`base view`) and a
//! key/value bee (`put K V` / `del K` values, read by `base get`/`base ls`).
//!
//! The CLI's values are one `Op` each (prost, below): a plain value, an
//! added or removed writer, a put or a delete. This store's writer core is
//! the core named `autobase/NAME` for a base it created (its key is the base
//! key), `autobase/BASEKEY` for a base it joined as a new writer, and
//! `autobase-signer/LABEL` for one `base signer` made before the base
//! existed (so its signing key could be named by `base create --indexer`)
//! and `base join` then used.
//!
//! A log entry is the writer's core key (32 bytes), the node's block index
//! in that core (`u64`, little-endian) and the value's bytes.

use std::io::{BufRead, Write};
use std::time::Duration;

use clap::Subcommand;
use hyper_autobase::{Apply, Base, Batch, Header, Host, View};
use hyper_bee::Bee;
use hyper_core::{Core, CoreKey, Store};
use serde::Serialize;

use crate::base_sync::Source;
use crate::output::json_line;
use crate::store::{Access, open_durable};
use crate::{CliError, Global};

/// Whether `writer` is the base's only indexer, counting the pending ones
/// (one that is leaving counts until a pending one joins).
fn only_indexer(info: &hyper_autobase::BaseInfo, writer: &CoreKey) -> bool {
    info.indexers
        .iter()
        .chain(&info.pending_indexers)
        .all(|k| k == writer)
}

/// The view of every applied value.
const LOG: &str = "log";
/// The key/value view.
const KV: &str = "kv";
/// Prefix of this store's writer core names.
const PREFIX: &str = "autobase/";
/// Prefix of the writer cores `base signer` makes before a base exists.
const SIGNER_PREFIX: &str = "autobase-signer/";

#[derive(Subcommand)]
pub enum BaseCommand {
    /// Create a base; prints the base key and this store's writer key.
    Create {
        /// Name of the base in this store [default: "base"].
        #[arg(long, default_value = "base")]
        name: String,
        /// Signing keys (ed25519, 64 hex characters) of further indexers'
        /// writer cores, as `base signer` prints them in their stores (this
        /// store's writer is always one; `base add-writer --indexer` adds
        /// more later). They sign the views' checkpoints.
        #[arg(long, value_name = "SIGNER")]
        indexer: Vec<String>,
    },
    /// Make (or show) a writer core of this store for a base that does not
    /// exist yet; prints its signing key (`signer`, for another store's
    /// `base create --indexer`) and its writer key. `base join` uses it.
    Signer {
        /// A label, to keep several (one per base) [default: "default"].
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Join BASE; prints this store's writer key. If the base names one of
    /// this store's `base signer` cores as an indexer, that core is this
    /// store's writer (an indexer from the start); else a new candidate
    /// writer, which a writer of the base adds with `base add-writer`.
    /// Block 0 of the base key's core must be here: `base sync BASE`
    /// first.
    Join {
        /// The base key (64 hex characters).
        base: String,
        /// Write with the `base signer --name LABEL` core (when it is not
        /// one of the base's indexers, it joins as a candidate writer).
        #[arg(long, value_name = "LABEL")]
        signer: Option<String>,
    },
    /// Make WRITER a writer of BASE (appends the operation): an indexer
    /// with `--indexer`, else a writer that is not one (an indexer named
    /// without `--indexer` stops being one). The indexers change once the
    /// operation is indexed, on every peer at the same point.
    AddWriter {
        /// The base key or its name here.
        base: String,
        /// The writer key `base join` printed.
        writer: String,
        /// Make it an indexer: its nodes drive finality and it signs the
        /// views' checkpoints.
        #[arg(long)]
        indexer: bool,
    },
    /// Remove WRITER from BASE: its later values are never applied (an
    /// indexer stops being one; the base keeps at least one).
    RemoveWriter {
        /// The base key or its name here.
        base: String,
        /// The writer key.
        writer: String,
    },
    /// Append the VALUEs as one batch (applied all or nothing); with none,
    /// each line of stdin is a value (`put K V` and `del K` lines also
    /// change the key/value view).
    Append {
        /// The base key or its name here.
        base: String,
        /// The values.
        values: Vec<String>,
    },
    /// Fetch every writer core of BASE (and each writer the base adds on
    /// the way) from the peer at ADDR, or from the peers that the local
    /// network and the DHT find for the base (`seed BASE` announces it);
    /// apply, and exit once this store holds everything the peers have. A
    /// writer core no peer serves is named on stderr and skipped.
    Sync {
        /// The base key or its name here.
        base: String,
        #[command(flatten)]
        peers: crate::swarm_cmd::PeerArgs,
        /// Give up on finding or connecting to a peer, or on a core, after
        /// this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        timeout: u64,
    },
    /// Print the linearized values, one per line.
    View {
        /// The base key or its name here.
        base: String,
        /// JSON lines: value, writer, seq.
        #[arg(long)]
        json: bool,
    },
    /// The base's writers, indexers and view lengths.
    Info {
        /// The base key or its name here.
        base: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the value of key K in the key/value view.
    Get {
        /// The base key or its name here.
        base: String,
        /// The key.
        key: String,
    },
    /// List the key/value view, one "KEY VALUE" per line.
    Ls {
        /// The base key or its name here.
        base: String,
    },
}

/// The CLI's value format.
#[derive(Clone, PartialEq, prost::Message)]
struct Op {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5, 6")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    /// A value for the log.
    #[prost(bytes, tag = "1")]
    Value(Vec<u8>),
    /// A writer core key to add (or to make a writer that is no indexer).
    #[prost(bytes, tag = "2")]
    AddWriter(Vec<u8>),
    /// A writer core key to add as an indexer (or to make one).
    #[prost(bytes, tag = "6")]
    AddIndexer(Vec<u8>),
    /// A writer core key to remove.
    #[prost(bytes, tag = "3")]
    RemoveWriter(Vec<u8>),
    /// A key and value for the key/value view (also logged).
    #[prost(message, tag = "4")]
    Put(Put),
    /// A key to delete from the key/value view (also logged).
    #[prost(bytes, tag = "5")]
    Del(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Put {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// The CLI's application: every value to the log, puts and deletes to the
/// bee, writer changes to the host. A value that is not an `Op` is logged
/// as it is.
#[derive(Default)]
pub(crate) struct CliApp {
    /// Values applied by this process (rebuilds and reorders included; not
    /// the batches a reopened base resumes from its undo log).
    applied: u64,
}

/// `CliApp` logs (debug) every this many values it applies, so a long
/// rebuild or reorder shows its progress.
const APPLY_LOG_EVERY: u64 = 100;

impl Apply for CliApp {
    fn apply(
        &mut self,
        batch: &Batch,
        view: &mut View<'_>,
        host: &mut Host<'_>,
    ) -> hyper_autobase::Result<()> {
        let app = |e: hyper_bee::Error| hyper_autobase::Error::Apply(Box::new(e));
        for (i, value) in batch.values.iter().enumerate() {
            let Some(value) = value else { continue };
            let seq = batch.start + 1 + i as u64;
            let op = <Op as prost::Message>::decode(value.as_slice()).ok();
            let logged = match op.and_then(|o| o.kind) {
                // A change the host refuses (the last indexer, too many)
                // does nothing.
                Some(Kind::AddWriter(k)) => {
                    if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                        let _ = host.add_writer(CoreKey(k), false);
                    }
                    None
                }
                Some(Kind::AddIndexer(k)) => {
                    if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                        let _ = host.add_writer(CoreKey(k), true);
                    }
                    None
                }
                Some(Kind::RemoveWriter(k)) => {
                    if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                        let _ = host.remove_writer(CoreKey(k));
                    }
                    None
                }
                Some(Kind::Put(p)) => {
                    Bee::open(view.core(KV)?.clone())
                        .map_err(app)?
                        .put(&p.key, &p.value)
                        .map_err(app)?;
                    Some(op_text("put", &p.key, Some(&p.value)))
                }
                Some(Kind::Del(k)) => {
                    Bee::open(view.core(KV)?.clone())
                        .map_err(app)?
                        .del(&k)
                        .map_err(app)?;
                    Some(op_text("del", &k, None))
                }
                Some(Kind::Value(v)) => Some(v),
                None => Some(value.clone()),
            };
            self.applied += 1;
            if self.applied.is_multiple_of(APPLY_LOG_EVERY) {
                tracing::debug!(
                    applied = self.applied,
                    writer = %batch.writer,
                    seq,
                    "applying the base's values"
                );
            }
            if let Some(text) = logged {
                let mut entry = batch.writer.0.to_vec();
                entry.extend_from_slice(&seq.to_le_bytes());
                entry.extend_from_slice(&text);
                view.append(LOG, &entry)?;
            }
        }
        Ok(())
    }
}

fn op_text(kind: &str, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut text = format!("{kind} ").into_bytes();
    text.extend_from_slice(key);
    if let Some(v) = value {
        text.push(b' ');
        text.extend_from_slice(v);
    }
    text
}

/// A value typed by the user as an `Op`: `put K V` and `del K` change the
/// key/value view, anything else is a plain value.
fn parse_value(text: &str) -> Op {
    let kind = if let Some(rest) = text.strip_prefix("put ") {
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        Kind::Put(Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        })
    } else if let Some(key) = text.strip_prefix("del ") {
        Kind::Del(key.as_bytes().to_vec())
    } else {
        Kind::Value(text.as_bytes().to_vec())
    };
    Op { kind: Some(kind) }
}

fn encode(op: &Op) -> Vec<u8> {
    prost::Message::encode_to_vec(op)
}

fn parse_key<K: std::str::FromStr>(text: &str, what: &'static str) -> Result<K, CliError> {
    text.parse().map_err(|_| CliError::BadBaseKey {
        what,
        text: text.to_string(),
    })
}

/// This store's writer core of a base it created or joined.
fn writer_of(base: &Base<CliApp>) -> Result<CoreKey, CliError> {
    Ok(base
        .writer_key()
        .ok_or_else(|| hyper_autobase::Error::NotAWriter(base.key().to_string()))?)
}

/// Opens the base `base` (a key, or the name it was created under here):
/// as its writer when this store created or joined it, else as a reader
/// when the base's first block is stored here.
pub(crate) fn open_base(store: &Store, base: &str) -> Result<Base<CliApp>, CliError> {
    let views = [LOG, KV];
    let Ok(key) = base.parse::<CoreKey>() else {
        let name = format!("{PREFIX}{base}");
        if store.by_name(&name)?.is_none() {
            return Err(CliError::NoSuchBase(base.to_string()));
        }
        return Ok(Base::create(store, &name, &[], &views, CliApp::default())?);
    };
    let joined = format!("{PREFIX}{key}");
    if store.by_name(&joined)?.is_some() {
        return Ok(Base::join(store, key, &joined, &views, CliApp::default())?);
    }
    if let Some(name) = joined_signer(store, &key)? {
        return Ok(Base::join(store, key, &name, &views, CliApp::default())?);
    }
    let Some(entry) = store.list()?.into_iter().find(|e| e.key == key) else {
        return Err(CliError::NoSuchBase(base.to_string()));
    };
    if let Some(name) = entry.name.filter(|n| n.starts_with(PREFIX)) {
        return Ok(Base::create(store, &name, &[], &views, CliApp::default())?);
    }
    // The base's first block is here but this store never joined: it
    // reads. A block 0 that cannot be read here (an encrypted core without
    // its key) or is no base header is a plain core's.
    let first = store.replica(&key)?;
    let is_base = first.has(0)?
        && first.get(0).ok().is_some_and(|block| {
            matches!(
                hyper_autobase::Header::decode(&block),
                Ok(hyper_autobase::Header::First { .. })
            )
        });
    if !is_base {
        return Err(CliError::NoSuchBase(base.to_string()));
    }
    Ok(Base::read(store, key, &views, CliApp::default())?)
}

/// The cores `seed BASE` serves when `base` names a base this store
/// holds: every writer core it reads, this store's own writer core (a
/// candidate not added yet included), the signed views and the signed
/// system core (what a peer fast-forwards from); `None` when
/// `base` is not a base here (a plain core).
pub fn served_cores(store: &Store, base: &str) -> Result<Option<Vec<CoreKey>>, CliError> {
    let base = match open_base(store, base) {
        Ok(b) => b,
        Err(CliError::NoSuchBase(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut keys = base.cores();
    keys.extend(base.writer_key());
    keys.extend(base.signed_cores());
    keys.sort();
    keys.dedup();
    Ok(Some(keys))
}

/// This store's `base signer` cores: (name, core), in key order.
fn signers(store: &Store) -> Result<Vec<(String, Core)>, CliError> {
    let mut out = Vec::new();
    for entry in store.list()? {
        if let Some(name) = entry.name.filter(|n| n.starts_with(SIGNER_PREFIX)) {
            out.push((name, store.core(&entry.key)?));
        }
    }
    Ok(out)
}

/// The base a signer core writes for: none while it is unused (block 0 is
/// its header, written by `base join`).
fn signer_base(core: &Core) -> Result<Option<CoreKey>, CliError> {
    if core.info()?.length == 0 {
        return Ok(None);
    }
    match Header::decode(&core.get(0)?)? {
        Header::Writer { base } => Ok(Some(base)),
        // A signer core is never a base's first core: it cannot be a base
        // of its own, and `base create` never uses one.
        _ => Err(CliError::Base(hyper_autobase::Error::NotABase(
            "a base signer core whose first block is not a writer header",
        ))),
    }
}

/// The name of the signer core that joined base `key` here, if one did.
fn joined_signer(store: &Store, key: &CoreKey) -> Result<Option<String>, CliError> {
    for (name, core) in signers(store)? {
        // A damaged signer core names no base; it must not stop the others.
        if signer_base(&core).ok().flatten() == Some(*key) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The name of the writer core `base join` uses for base `key` (whose first
/// core's block 0 is here): the core that already joined it; else the
/// signer core `label` asks for; else an unused signer core the base names
/// as an indexer; else a new core `autobase/BASEKEY`.
fn join_name(store: &Store, key: &CoreKey, label: Option<&str>) -> Result<String, CliError> {
    let joined = format!("{PREFIX}{key}");
    if store.by_name(&joined)?.is_some() {
        return Ok(joined);
    }
    if let Some(name) = joined_signer(store, key)? {
        return Ok(name);
    }
    if let Some(label) = label {
        let name = format!("{SIGNER_PREFIX}{label}");
        let core = store
            .by_name(&name)?
            .ok_or_else(|| CliError::NoSuchSigner(label.to_string()))?;
        if let Some(base) = signer_base(&core)? {
            return Err(CliError::SignerUsed {
                label: label.to_string(),
                base: base.to_string(),
            });
        }
        return Ok(name);
    }
    let header = Header::decode(&store.replica(key)?.get(0)?)?;
    let indexers = header.indexer_keys();
    for (name, core) in signers(store)? {
        if indexers.contains(&core.key()) && matches!(signer_base(&core), Ok(None)) {
            return Ok(name);
        }
    }
    Ok(joined)
}

/// A line of `base view --json`.
#[derive(Serialize)]
struct EntryJson {
    value: String,
    writer: String,
    seq: u64,
}

/// `base info --json`.
#[derive(Serialize)]
struct InfoJson {
    key: String,
    /// This store's writer core; `null` when it only reads the base.
    writer: Option<String>,
    writers: Vec<String>,
    indexers: Vec<String>,
    /// Made indexers, counted once a batch of each is indexed.
    pending_indexers: Vec<String>,
    heads: Vec<HeadJson>,
    length: u64,
    indexed_length: u64,
    signed_length: u64,
    /// Batches taken from a quorum-signed state instead of applied here.
    fast_forwarded: u64,
    hash: String,
    faulty: Vec<String>,
}

#[derive(Serialize)]
struct HeadJson {
    writer: String,
    length: u64,
}

/// The log view's entries: (writer, seq, value).
fn entries(base: &Base<CliApp>) -> Result<Vec<(CoreKey, u64, Vec<u8>)>, CliError> {
    let Some(log) = base.view(LOG) else {
        return Ok(Vec::new());
    };
    let length = log.info()?.length;
    log.blocks(0..length)?
        .map(|block| {
            let (i, block) = block?;
            let bad = || CliError::BadLogEntry(i);
            let (writer, rest) = block.split_at_checked(32).ok_or_else(bad)?;
            let (seq, value) = rest.split_at_checked(8).ok_or_else(bad)?;
            let writer = <[u8; 32]>::try_from(writer).map_err(|_| bad())?;
            let seq = <[u8; 8]>::try_from(seq).map_err(|_| bad())?;
            Ok((CoreKey(writer), u64::from_le_bytes(seq), value.to_vec()))
        })
        .collect()
}

pub fn run(global: &Global, cmd: BaseCommand) -> Result<(), CliError> {
    let dir = global.store()?;
    let access = match &cmd {
        BaseCommand::View { .. }
        | BaseCommand::Info { .. }
        | BaseCommand::Get { .. }
        | BaseCommand::Ls { .. } => Access::Read,
        _ => Access::Write,
    };
    // A read needs the store to exist; opening a base applies the nodes
    // that arrived since the last open (and rebuilds the views when their
    // undo log does not match them), so it writes the view cores too.
    let store = open_durable(dir, access)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        BaseCommand::Create { name, indexer } => {
            crate::core_cmd::check_name(&name)?;
            let indexers = indexer
                .iter()
                .map(|k| parse_key::<hyper_core::PublicKey>(k, "signer"))
                .collect::<Result<Vec<_>, _>>()?;
            let full = format!("{PREFIX}{name}");
            if store.by_name(&full)?.is_some() {
                return Err(CliError::BaseExists(name));
            }
            let base = Base::create(&store, &full, &indexers, &[LOG, KV], CliApp::default())?;
            writeln!(out, "base {}", base.key())?;
            writeln!(out, "writer {}", writer_of(&base)?)?;
        }
        BaseCommand::Signer { name } => {
            crate::core_cmd::check_name(&name)?;
            let full = format!("{SIGNER_PREFIX}{name}");
            let core = store.named(&full)?;
            writeln!(
                out,
                "signer {}",
                Base::<CliApp>::signing_key(&store, &full)?
            )?;
            writeln!(out, "writer {}", core.key())?;
            if let Some(base) = signer_base(&core)? {
                writeln!(out, "joined {base}")?;
            }
        }
        BaseCommand::Join { base, signer } => {
            let key = parse_key::<CoreKey>(&base, "base")?;
            // Nothing is written before the base's first block is here (a
            // core made too early would be the wrong one to keep).
            if !store.replica(&key)?.has(0)? {
                return Err(hyper_autobase::Error::BaseHeaderMissing(key.to_string()).into());
            }
            let name = join_name(&store, &key, signer.as_deref())?;
            let base = Base::join(&store, key, &name, &[LOG, KV], CliApp::default())?;
            let writer = writer_of(&base)?;
            writeln!(out, "writer {writer}")?;
            if base.info().indexers.contains(&writer) {
                writeln!(
                    out,
                    "indexer: the base names this writer (signer core '{}') as an indexer; no add-writer needed",
                    name.strip_prefix(SIGNER_PREFIX).unwrap_or(&name)
                )?;
            }
        }
        BaseCommand::AddWriter {
            base,
            writer,
            indexer,
        } => {
            let writer = parse_key::<CoreKey>(&writer, "writer")?;
            let mut base = open_base(&store, &base)?;
            if !indexer && only_indexer(&base.info(), &writer) {
                return Err(CliError::LastIndexer(writer.to_string()));
            }
            let key = writer.0.to_vec();
            let kind = match indexer {
                true => Kind::AddIndexer(key),
                false => Kind::AddWriter(key),
            };
            base.append(&[&encode(&Op { kind: Some(kind) })])?;
            base.ack_until_settled(true)?;
        }
        BaseCommand::RemoveWriter { base, writer } => {
            let writer = parse_key::<CoreKey>(&writer, "writer")?;
            let mut base = open_base(&store, &base)?;
            if only_indexer(&base.info(), &writer) {
                return Err(CliError::LastIndexer(writer.to_string()));
            }
            base.append(&[&encode(&Op {
                kind: Some(Kind::RemoveWriter(writer.0.to_vec())),
            })])?;
            base.ack_until_settled(true)?;
        }
        BaseCommand::Append { base, values } => {
            let mut base = open_base(&store, &base)?;
            let values = if values.is_empty() {
                std::io::stdin()
                    .lock()
                    .lines()
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                values
            };
            let ops: Vec<Vec<u8>> = values.iter().map(|v| encode(&parse_value(v))).collect();
            let blocks: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
            for chunk in blocks.chunks(hyper_autobase::MAX_BATCH as usize) {
                base.append(chunk)?;
            }
            base.ack_until_settled(true)?;
        }
        BaseCommand::Sync {
            base,
            peers,
            timeout,
        } => {
            let source = match &peers.connect {
                Some(addr) => Source::Tcp(addr),
                None => Source::Swarm(peers.discovery()),
            };
            let skipped =
                crate::base_sync::sync(&store, &base, &source, Duration::from_secs(timeout))?;
            for key in &skipped {
                eprintln!(
                    "hyper-cli: no peer served writer core {key} within {timeout} s: skipped, its values are not in the view"
                );
            }
            let mut b = open_base(&store, &base)?;
            // An indexer acks what it received so it becomes final.
            b.ack_until_settled(true)?;
            let (info, reads) = (b.info(), b.writer_key().is_none());
            writeln!(
                out,
                "synced: {} writers, {} entries, {} indexed{}{}",
                info.writers.len(),
                info.views.first().map_or(0, |v| v.length),
                info.views.first().map_or(0, |v| v.indexed_length),
                match info.fast_forwarded {
                    0 => String::new(),
                    n => format!(", {n} batches taken from the signed state"),
                },
                match skipped.len() {
                    0 => String::new(),
                    n => format!(", {n} writer cores not served"),
                }
            )?;
            if reads {
                eprintln!(
                    "hyper-cli: this store reads base {} (`hyper-cli base join {}` to write)",
                    info.key, info.key
                );
            }
        }
        BaseCommand::View { base, json } => {
            let base = open_base(&store, &base)?;
            for (writer, seq, value) in entries(&base)? {
                if json {
                    json_line(
                        &mut out,
                        &EntryJson {
                            value: String::from_utf8_lossy(&value).into_owned(),
                            writer: writer.to_string(),
                            seq,
                        },
                    )?;
                } else {
                    out.write_all(&value)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        BaseCommand::Info { base, json } => {
            let base = open_base(&store, &base)?;
            let info = base.info();
            let log = info.views.first();
            let mut hash = blake3::Hasher::new();
            for (writer, seq, value) in entries(&base)? {
                hash.update(&writer.0);
                hash.update(&seq.to_le_bytes());
                hash.update(&(value.len() as u64).to_le_bytes());
                hash.update(&value);
            }
            let o = InfoJson {
                key: info.key.to_string(),
                writer: base.writer_key().map(|k| k.to_string()),
                writers: info.writers.iter().map(CoreKey::to_string).collect(),
                indexers: info.indexers.iter().map(CoreKey::to_string).collect(),
                pending_indexers: info
                    .pending_indexers
                    .iter()
                    .map(CoreKey::to_string)
                    .collect(),
                heads: base
                    .heads()
                    .iter()
                    .map(|h| HeadJson {
                        writer: h.writer.to_string(),
                        length: h.length,
                    })
                    .collect(),
                length: log.map_or(0, |v| v.length),
                indexed_length: log.map_or(0, |v| v.indexed_length),
                signed_length: log.map_or(0, |v| v.signed_length),
                fast_forwarded: info.fast_forwarded,
                hash: hash.finalize().to_hex().to_string(),
                faulty: info
                    .faulty
                    .iter()
                    .map(|(k, why)| format!("{k}: {why}"))
                    .collect(),
            };
            if json {
                json_line(&mut out, &o)?;
            } else {
                writeln!(out, "base:           {}", o.key)?;
                match &o.writer {
                    Some(w) => writeln!(out, "this writer:    {w}")?,
                    None => writeln!(
                        out,
                        "this writer:    none (this store reads the base: `hyper-cli base join` to write)"
                    )?,
                }
                writeln!(out, "writers:        {}", o.writers.join(", "))?;
                writeln!(out, "indexers:       {}", o.indexers.join(", "))?;
                if !o.pending_indexers.is_empty() {
                    writeln!(out, "pending:        {}", o.pending_indexers.join(", "))?;
                }
                writeln!(out, "length:         {}", o.length)?;
                writeln!(out, "indexed length: {}", o.indexed_length)?;
                writeln!(out, "signed length:  {}", o.signed_length)?;
                writeln!(out, "hash:           {}", o.hash)?;
                for f in &o.faulty {
                    writeln!(out, "refused writer: {f}")?;
                }
            }
        }
        BaseCommand::Get { base, key } => {
            let base = open_base(&store, &base)?;
            let kv = base.view(KV).ok_or(CliError::NoSuchKey(key.clone()))?;
            if kv.info()?.length == 0 {
                return Err(CliError::NoSuchKey(key));
            }
            match Bee::open(kv.clone())?.get(key.as_bytes())? {
                Some(v) => {
                    out.write_all(&v)?;
                    out.write_all(b"\n")?;
                }
                None => return Err(CliError::NoSuchKey(key)),
            }
        }
        BaseCommand::Ls { base } => {
            let base = open_base(&store, &base)?;
            let Some(kv) = base
                .view(KV)
                .filter(|c| c.info().is_ok_and(|i| i.length > 0))
            else {
                return Ok(());
            };
            for item in Bee::open(kv.clone())?.range(&hyper_bee::RangeOptions::default())? {
                out.write_all(&item.key)?;
                out.write_all(b" ")?;
                out.write_all(&item.value)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
