//! The one error type of `hyper-cli`: every failure of a command ends in a
//! [`CliError`], printed as one `hyper-cli: ...` line.

use std::path::PathBuf;

/// What can end a command; printed as one line that names its subject (the
/// path, address, key or argument it is about).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The store or a core failed.
    #[error(transparent)]
    Core(#[from] hyper_core::Error),
    /// The store at `path` could not be opened.
    #[error("cannot open the store at {}: {error}", path.display())]
    Store {
        /// The store directory.
        path: PathBuf,
        /// Why.
        error: hyper_core::Error,
    },
    /// A read command on a store directory that holds no store.
    #[error(
        "no store at {} (check --store; commands that write, such as `core create`, make one)",
        .0.display()
    )]
    NoStore(PathBuf),
    /// `--store` names something that is not a directory.
    #[error("--store {} is not a directory", .0.display())]
    StoreNotADirectory(PathBuf),
    /// Another process holds the store.
    #[error(
        "the store at {} is open in another process (stop it, or use another --store)",
        .0.display()
    )]
    StoreLocked(PathBuf),
    /// No `--store`, `$HYPER_STORE`, `$XDG_DATA_HOME` or `$HOME` to place the
    /// default store in.
    #[error("no store given and no $HOME to put one in: pass --store DIR (or set $HYPER_STORE)")]
    NoHome,
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
    /// A key the bee does not hold.
    #[error("no key '{0}'")]
    NoSuchKey(String),
    /// A drive, a local folder or a mirror failed.
    #[error(transparent)]
    Drive(#[from] hyper_drive::Error),
    /// `drive mirror --live` of a source that is not a local folder.
    #[error("drive mirror --live watches a local folder: give a folder as SRC")]
    LiveSource,
    /// The base failed (a writer's log, a view, the store).
    #[error(transparent)]
    Base(#[from] hyper_autobase::Error),
    /// BASE names no base this store created, joined or holds the first
    /// block of.
    #[error(
        "no base '{0}' in this store (create one with `hyper-cli base create`, or fetch one with `hyper-cli base sync BASEKEY`)"
    )]
    NoSuchBase(String),
    /// `base sync KEY` fetched block 0 of core KEY and it is not a base's.
    #[error(
        "core {0} is not a base: its first block is not a base's header (a plain core is fetched with `hyper-cli clone`)"
    )]
    NotABaseCore(String),
    /// `base join --signer LABEL` of a label `base signer` never made here.
    #[error(
        "no base signer '{0}' in this store (make one with `hyper-cli base signer --name {0}`)"
    )]
    NoSuchSigner(String),
    /// `base join --signer LABEL` of a signer core that writes for a base.
    #[error(
        "base signer '{label}' already writes for base {base}: make another with `hyper-cli base signer --name OTHER`"
    )]
    SignerUsed {
        /// The signer's label.
        label: String,
        /// The base it writes for.
        base: String,
    },
    /// `base create --name` of a name already used here.
    #[error("this store already has a base named '{0}'")]
    BaseExists(String),
    /// A base, writer or signer key argument that is not a key.
    #[error("'{text}' is not a {what} key (64 hex characters)")]
    BadBaseKey {
        /// What the key names.
        what: &'static str,
        /// The argument.
        text: String,
    },
    /// `base remove-writer` or `base add-writer` without `--indexer` named
    /// the base's only indexer.
    #[error(
        "writer {0} is the base's only indexer: a base keeps one (`base add-writer BASE OTHER --indexer` first)"
    )]
    LastIndexer(String),
    /// A block of the log view that is not a log entry.
    #[error("entry {0} of the base's log view is damaged")]
    BadLogEntry(u64),
    /// A key argument that must be a core key is not 64 hex characters.
    #[error("'{0}' is not a core key (64 hex characters)")]
    BadKey(String),
    /// A `--name` that can never name a core.
    #[error("'{name}' cannot be a core name: {why}")]
    BadName {
        /// The name given.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Arguments that contradict each other or are out of range.
    #[error("{0}")]
    Usage(String),
    /// Replication failed (the peer, the connection, or a timeout).
    #[error(transparent)]
    Wire(#[from] hyper_wire::Error),
    /// `seed --append` needs exactly one writable core.
    #[error("seed --append needs exactly one core, writable here")]
    AppendTarget,
    /// A raw append to a core that holds a structure (a bee).
    #[error(
        "core {0} holds a bee (block 0 is its header): a raw append would break it; use `hyper-cli bee put`, or --force"
    )]
    StructuredCore(String),
    /// Appending a batch of blocks of the input failed; the blocks before
    /// it are appended, it and those after it are not.
    #[error(
        "blocks {first} to {} of the input were not appended (the {first} before them were): {error}",
        first + *count as u64 - 1
    )]
    Append {
        /// The batch's first block in the input, from 0.
        first: u64,
        /// Blocks in the batch.
        count: usize,
        /// Why.
        error: hyper_core::Error,
    },
    /// Connected, but the peer sent nothing about the core.
    #[error(
        "the peer at {addr} sent nothing about core {key} in {seconds} s: it does not seem to serve it (check the key)"
    )]
    NotServed {
        /// The address.
        addr: String,
        /// The core.
        key: String,
        /// How long it waited.
        seconds: u64,
    },
    /// A block index the peer does not have.
    #[error("block {index} is past the end of core {key}: the peer at {addr} has {length} blocks")]
    PastPeerLength {
        /// The address.
        addr: String,
        /// The core.
        key: String,
        /// The block asked for.
        index: u64,
        /// The peer's length.
        length: u64,
    },
    /// A peer that serves the core sent nothing for a wait.
    #[error("the peer at {addr} sent no answer for {what} in {seconds} s")]
    NoAnswer {
        /// The address.
        addr: String,
        /// What was waited for.
        what: String,
        /// How long it waited.
        seconds: u64,
    },
    /// An address argument that does not parse or resolve.
    #[error("'{addr}' is not a usable address: {why}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why.
        why: String,
    },
    /// Neither the local network nor the DHT found a peer that served the
    /// core in time.
    #[error(
        "no peer serving core {key} was found on the local network or through the DHT in {seconds} s (is a seeder running, on this network or with the same --bootstrap nodes?)"
    )]
    NoPeers {
        /// The core.
        key: String,
        /// How long it looked.
        seconds: u64,
    },
    /// None of the bootstrap nodes answered.
    #[error("no DHT node answered (bootstrap nodes: {nodes}): check --bootstrap")]
    NoDhtNodes {
        /// The nodes asked.
        nodes: String,
    },
    /// A DHT query did not end within its time.
    #[error(
        "the DHT did not answer within {seconds} s (bootstrap nodes: {nodes}): check --bootstrap"
    )]
    DhtTimeout {
        /// The nodes asked.
        nodes: String,
        /// How long it waited.
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
    /// Every connection to the peer ended with it breaking the protocol
    /// (or sending what fails verification) and no block arrived for the
    /// whole retry period.
    #[error(
        "the peer at {addr} failed for core {key} on every connection for {seconds} s without sending a block: {error}; what was downloaded is kept"
    )]
    PeerFailed {
        /// The address.
        addr: String,
        /// The core.
        key: String,
        /// The retry period.
        seconds: u64,
        /// How its last connection ended.
        error: hyper_wire::Error,
    },
    /// The writer (or its quorum) signed two conflicting histories: a peer
    /// brought a validly signed state that conflicts with the one stored.
    #[error(
        "the writer of core {key} signed two conflicting histories (fork {fork}: length {local} here, {remote} from {addr}); both signed states are kept as evidence in the store, which keeps its own history"
    )]
    Equivocation {
        /// The core.
        key: String,
        /// The peer that brought the other history.
        addr: String,
        /// The fork of the state stored here.
        fork: u64,
        /// The length of the state stored here.
        local: u64,
        /// The length of the conflicting state.
        remote: u64,
    },
    /// Connecting to a peer failed.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        error: hyper_wire::Error,
    },
    /// Binding a listening socket failed.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: String,
        /// Why (for example, the port is in use).
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A clone stopped getting blocks before it had them all.
    #[error(
        "core {key} is incomplete: {stored} of {length} blocks stored, {missing} missing (first missing: block {first_missing}); no peer sent any for {seconds} s; run again to resume"
    )]
    Incomplete {
        /// The core.
        key: String,
        /// Blocks stored here.
        stored: u64,
        /// The core's length.
        length: u64,
        /// Blocks missing.
        missing: u64,
        /// The first block not stored.
        first_missing: u64,
        /// How long nothing came.
        seconds: u64,
    },
    /// A block of a sparse replica that is not stored here.
    #[error(
        "block {index} of core {key} is not stored here: fetch it with --connect ADDR (or `hyper-cli clone {key}`)"
    )]
    NotStored {
        /// The core.
        key: String,
        /// The block.
        index: u64,
    },
    /// `seed` with nothing to serve.
    #[error(
        "the store at {} has no cores to seed (create one with `hyper-cli core create`, or clone one)",
        .0.display()
    )]
    NothingToSeed(PathBuf),
    /// A line of `bee import` input that cannot be read.
    #[error("line {line} of the input: {why}; nothing was imported")]
    BadLine {
        /// The line number, from 1.
        line: u64,
        /// Why.
        why: String,
    },
    /// Text that starts like a share ticket but does not decode.
    #[error("that is not a valid share ticket: {0}")]
    BadTicket(String),
    /// The process holding the store refused a request: its reason.
    #[error("{0}")]
    Remote(String),
    /// `hyper-cli status` with no process holding the store.
    #[error("no process holds the store at {} (a running `hyper-cli seed` does)", .0.display())]
    NoHolder(PathBuf),
    /// A value that must be encoded to be printed.
    #[error("{what} is not UTF-8: use --hex or --base64")]
    NotText {
        /// What (a key or a value, and which).
        what: String,
    },
}

impl CliError {
    /// Whether this is a write to a closed stdout (as in `... | head -1`),
    /// which ends a command quietly and successfully, as `cat` does.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
