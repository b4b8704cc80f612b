//! `hyper-cli drive …`: drives (a metadata bee and a blobs core), local or
//! read sparsely from a seeding peer (`--connect`), and mirrors between
//! drives and folders.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper_core::{CoreKey, Durability, Store};
use hyper_drive::fetch::ReplicationFetch;
use hyper_drive::mirror::{MirrorOptions, Op};
use hyper_drive::{ChildKind, Drive, DrivePath, Entry, Fetch, FileMeta, Folder, Ignore, Kind};
use hyper_swarm::{JoinOptions, Swarm};
use serde::{Deserialize, Serialize};

use crate::local::Request;
use crate::net_cmd::runtime;
use crate::store::{Access, open};
use crate::{CliError, Global};

#[derive(Subcommand, Serialize, Deserialize, Debug)]
pub enum DriveCommand {
    /// Create a drive; prints its key.
    Create {
        /// Name it (the same name in the same store gives the same drive).
        #[arg(long)]
        name: Option<String>,
    },
    /// Write FILE (or stdin, `-` or none) to PATH; a name creates the drive
    /// on first use.
    Put {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// The path in the drive (`/`-separated, from its root).
        path: String,
        /// The local file to read [default: stdin; `-` too].
        file: Option<String>,
    },
    /// List a folder (folders end with '/'), or with -r every file below it.
    Ls {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// The path in the drive (`/`-separated, from its root).
        #[arg(default_value = "/")]
        path: String,
        /// Every file and symlink of the subtree.
        #[arg(short, long)]
        recursive: bool,
        /// One JSON object per line: path, kind, size, mode, mtime_ns (0
        /// before 1970), hash, target.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        read: ReadFrom,
    },
    /// Write a file (or bytes START..END of it, half-open) to stdout.
    Cat {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// The path in the drive (`/`-separated, from its root).
        path: String,
        /// First byte.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// End (exclusive); default the file's end.
        #[arg(long)]
        end: Option<u64>,
        #[command(flatten)]
        read: ReadFrom,
    },
    /// Remove a file or symlink; with -r, everything below a folder too.
    Rm {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// The path in the drive (`/`-separated, from its root).
        path: String,
        /// Remove a folder and everything below it.
        #[arg(short, long)]
        recursive: bool,
    },
    /// Key, blobs key, version, files, bytes, blocks (stored here), writable.
    Info {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        read: ReadFrom,
    },
    /// What changed since VERSION: "add|change|remove PATH" per line.
    Diff {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// The version to compare with.
        since: u64,
        /// One JSON object per line: op, path, size.
        #[arg(long)]
        json: bool,
    },
    /// Mirror SRC onto DST; each is a folder or a drive key or name (a path
    /// with '/' or starting with '.' is always a folder).
    Mirror {
        /// Where to copy from: a folder, or a drive (key or name).
        src: String,
        /// Where to copy to: a folder, or a drive (key or name).
        dst: String,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove what DST has and SRC does not.
        #[arg(long)]
        prune: bool,
        /// Leave out paths matching this gitignore-style pattern (again for
        /// more); a folder source's .hyperignore adds its own.
        #[arg(long, value_name = "GLOB")]
        ignore: Vec<String>,
        /// Also compare the bytes of files whose size, mtime and mode are
        /// equal on both sides (as rsync's --checksum): finds a file edited
        /// in place that kept its size and mtime, but reads every such file
        /// on both sides (from peers too, with --connect).
        #[arg(short = 'c', long)]
        checksum: bool,
        /// One JSON object per path (op, path, bytes_added, bytes_removed),
        /// then a summary.
        #[arg(long)]
        json: bool,
        /// Then keep watching the source folder and mirror each change,
        /// until stopped.
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        read: ReadFrom,
    },
    /// Serve the drive over HTTP until stopped: files with content types
    /// and byte ranges, folder listings, index.html; with --connect, each
    /// file fetched from the peer when asked for.
    Serve {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// Address to serve HTTP on (port 0 picks one).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        read: ReadFrom,
    },
    /// Serve both cores of the drive to peers until stopped (as `seed`).
    Seed {
        /// The drive: its key (64 hex characters) or the name it was created with.
        drive: String,
        /// TCP address to serve on (port 0 picks one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// DHT bootstrap nodes, comma-separated.
        #[arg(long, value_name = "IP:PORT,...")]
        bootstrap: Option<String>,
    },
}

/// Which view to read, and from where.
#[derive(Args, Serialize, Deserialize, Debug)]
pub struct ReadFrom {
    /// Read the drive as it was at this version.
    #[arg(long, value_name = "V")]
    pub(crate) version: Option<u64>,
    /// Read sparsely from a peer that seeds the drive (DRIVE must be its
    /// key or a ticket): only the blocks the read needs move.
    #[arg(long, value_name = "ADDR", value_parser = crate::args::address)]
    connect: Option<String>,
    /// Read sparsely from the peers the DHT finds for the drive, through
    /// these bootstrap nodes (comma-separated; a ticket brings its own).
    #[arg(long, value_name = "IP:PORT,...", conflicts_with = "connect", value_parser = crate::args::address_list)]
    bootstrap: Option<String>,
    /// Give up on a block after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

impl ReadFrom {
    /// Whether the drive is read from peers (`--connect`, `--bootstrap`).
    pub(crate) fn remote(&self) -> bool {
        self.connect.is_some() || self.bootstrap.is_some()
    }

    /// A share ticket in `drive` (if it is one) becomes its key, and says
    /// where to read from unless a flag does.
    fn take_ticket(&mut self, drive: &mut String) -> Result<(), CliError> {
        if let Some(ticket) = crate::ticket::Ticket::parse(drive)? {
            *drive = ticket.key.to_string();
            crate::ticket::apply(&ticket, &mut self.connect, &mut self.bootstrap);
        }
        Ok(())
    }
}

/// The drive named by a key or a name in the store.
pub(crate) fn local_drive(store: &Store, name: &str) -> Result<Drive, CliError> {
    let core = crate::core_cmd::open_core(store, name)?;
    Ok(Drive::open(store, &core.key())?)
}

/// The drive to write: an existing one, or a name created on first use.
fn writable_drive(store: &Store, name: &str) -> Result<Drive, CliError> {
    match local_drive(store, name) {
        Err(CliError::NoSuchCore(n)) if n.parse::<CoreKey>().is_err() => {
            Ok(Drive::named(store, &n)?)
        }
        other => other,
    }
}

/// Runs `op` on the drive: the local one (at `--version`), or with
/// `--connect`, a replica that fetches what `op` needs; `op` gets the fetch
/// to bring blocks ahead (None when local).
pub(crate) fn with_drive<T>(
    store: &Store,
    name: &str,
    read: &ReadFrom,
    op: impl AsyncFnOnce(&Drive, Option<&ReplicationFetch>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let checkout = |d: Drive| -> Result<Drive, CliError> {
        Ok(match read.version {
            Some(v) => d.checkout(v)?,
            None => d,
        })
    };
    if !read.remote() {
        let drive = checkout(local_drive(store, name)?)?;
        return runtime()?.block_on(op(&drive, None));
    }
    let key: CoreKey = name
        .parse()
        .map_err(|_| CliError::BadKey(name.to_string()))?;
    let timeout = Duration::from_secs(read.timeout);
    runtime()?.block_on(async {
        let replication = crate::net_cmd::reader(store)?;
        replication.add_core(&store.replica(&key)?);
        // A connection replicates until the replication ends; a swarm only
        // while a handle of it is kept.
        let _swarm = match &read.connect {
            Some(addr) => {
                crate::net_cmd::connect_within(&replication, addr, timeout).await?;
                None
            }
            None => {
                Some(through_dht(&replication, &key, read.bootstrap.as_deref(), timeout).await?)
            }
        };
        let fetch = ReplicationFetch::new(replication.clone(), timeout);
        let drive = hyper_drive::fetch::open_replica(store, &key, &fetch).await?;
        // Both cores over the one connection.
        replication.add_core(drive.blobs());
        // The newest version the peer has (the header fetch may be older).
        let latest = replication
            .get(
                drive.metadata(),
                drive.metadata().info()?.length.max(1) - 1,
                fetch.timeout,
            )
            .await;
        latest?;
        let drive = checkout(drive)?;
        let result = op(&drive, Some(&fetch)).await;
        store.flush()?;
        result
    })
}

/// A swarm that looks the drive `key` up on the DHT through `bootstrap`
/// and replicates with every peer found; once one is connected (within
/// `timeout`, else [`CliError::NoPeers`]).
async fn through_dht(
    replication: &hyper_wire::Replication,
    key: &CoreKey,
    bootstrap: Option<&str>,
    timeout: Duration,
) -> Result<Swarm, CliError> {
    let discovery = crate::swarm_cmd::Discovery {
        bootstrap,
        local: false,
        dht: true,
        identity_per_topic: false,
    };
    let swarm = Swarm::new(discovery.swarm_config(hyper_core::KeyPair::generate()?)?).await?;
    swarm.replicate(replication.clone());
    swarm.join(
        key.discovery_key().0,
        JoinOptions {
            server: false,
            client: true,
        },
    );
    let started = std::time::Instant::now();
    while replication.peers().await.is_empty() {
        if started.elapsed() > timeout {
            return Err(CliError::NoPeers {
                key: key.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(swarm)
}

/// What `cmd` does with its store: writes (and creates it) for the
/// commands that change a drive or store what a peer sends (`--connect`),
/// else reads (a missing store is an error, never made; a mirror into a
/// drive needs the drive, so its store, to exist). Every commit is fsynced:
/// `drive serve --connect` runs until it is killed.
fn access(cmd: &DriveCommand) -> Access {
    use DriveCommand::*;
    match cmd {
        Create { .. } | Put { .. } | Rm { .. } => Access::Write,
        Ls { read, .. }
        | Cat { read, .. }
        | Info { read, .. }
        | Mirror { read, .. }
        | Serve { read, .. }
            if read.remote() =>
        {
            Access::Write
        }
        _ => Access::Read,
    }
}

pub fn run(global: &Global, mut cmd: DriveCommand) -> Result<(), CliError> {
    let dir = global.store()?;
    // A share ticket names the drive and where to read it from.
    match &mut cmd {
        DriveCommand::Ls { drive, read, .. }
        | DriveCommand::Cat { drive, read, .. }
        | DriveCommand::Info { drive, read, .. }
        | DriveCommand::Serve { drive, read, .. }
        | DriveCommand::Mirror {
            src: drive, read, ..
        } => read.take_ticket(drive)?,
        _ => {}
    }
    let access = access(&cmd);
    let durability = Durability::Immediate;
    let cmd = match cmd {
        DriveCommand::Mirror {
            src,
            dst,
            dry_run,
            prune,
            ignore,
            checksum,
            json,
            live,
            read,
        } => {
            let options = MirrorOptions {
                dry_run,
                prune,
                ignore: Ignore::new(&ignore)?,
                compare_bytes: checksum,
            };
            // From a folder to a folder needs no store.
            let store = match crate::store::open_streaming(dir, access, durability) {
                Err(CliError::NoStore(_)) => None,
                store => Some(store?),
            };
            let sides = crate::drive_mirror::Sides {
                dir,
                store: store.as_ref(),
            };
            return crate::drive_mirror::mirror_cmd(sides, &src, &dst, &options, json, live, &read);
        }
        cmd => cmd,
    };
    if let DriveCommand::Seed {
        drive,
        listen,
        bootstrap,
    } = &cmd
    {
        // Closed again before `seed` opens the store for good.
        let d = local_drive(&open(dir, access, durability)?, drive)?;
        let keys = [d.key().to_string(), d.blobs().key().to_string()];
        drop(d);
        let args =
            crate::net_cmd::SeedArgs::for_cores(keys.to_vec(), listen.clone(), bootstrap.clone());
        return crate::net_cmd::seed(global, args);
    }
    if let DriveCommand::Serve {
        drive,
        listen,
        read,
    } = cmd
    {
        let store = open(dir, access, durability)?;
        return with_drive(&store, &drive, &read, async |d, fetch| {
            crate::drive_serve::serve(d.clone(), fetch.cloned(), &listen).await
        });
    }
    let mut out = std::io::stdout().lock();
    match open(dir, access, durability) {
        Ok(store) => execute(&store, cmd, std::io::stdin().lock(), &mut out)?,
        // A process holds the store: it runs a local command (a read from
        // peers needs the store's writer here).
        Err(CliError::StoreLocked(_)) if !cmd.remote() => forward(dir, cmd, &mut out)?,
        Err(e) => return Err(e),
    }
    out.flush()?;
    Ok(())
}

impl DriveCommand {
    /// Whether it changes a drive (the holder of a store runs one at a time).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            DriveCommand::Create { .. } | DriveCommand::Put { .. } | DriveCommand::Rm { .. }
        )
    }

    /// Whether it reads from peers.
    fn remote(&self) -> bool {
        use DriveCommand::*;
        match self {
            Ls { read, .. } | Cat { read, .. } | Info { read, .. } => read.remote(),
            _ => false,
        }
    }
}

/// Sends `cmd` to the process holding the store in `dir`, with `put`'s
/// input (a FILE becomes its absolute path, which the holder opens; stdin
/// is read here and sent), and writes what it prints to `out`.
fn forward(dir: &Path, mut cmd: DriveCommand, out: &mut impl Write) -> Result<(), CliError> {
    let mut stdin = None;
    if let DriveCommand::Put { file, .. } = &mut cmd {
        match file.as_deref() {
            None | Some("-") => stdin = Some(crate::local::stdin_base64()?),
            Some(f) => {
                let absolute = std::path::absolute(f).map_err(|e| hyper_drive::Error::Io {
                    path: f.into(),
                    source: e,
                })?;
                *file = Some(absolute.display().to_string());
            }
        }
    }
    let request = Request::Drive {
        command: cmd,
        stdin,
    };
    crate::local::run_through_holder(dir, &request, out)
}

/// Runs a local `cmd` (not `mirror`, `seed` or `serve`) on `store`, with
/// `put`'s stdin from `input` and what it prints to `out` (here, or in the
/// process holding the store for another invocation).
pub fn execute<W: Write>(
    store: &Store,
    cmd: DriveCommand,
    input: impl Read,
    out: &mut W,
) -> Result<(), CliError> {
    match cmd {
        DriveCommand::Create { name } => {
            let drive = match name {
                Some(n) => Drive::named(store, &n)?,
                None => Drive::create(store)?,
            };
            writeln!(out, "{}", drive.key())?;
        }
        DriveCommand::Put { drive, path, file } => {
            let drive = writable_drive(store, &drive)?;
            put(&drive, &path, file.as_deref(), input)?;
        }
        DriveCommand::Rm {
            drive,
            path,
            recursive,
        } => {
            let drive = local_drive(store, &drive)?;
            let target = DrivePath::new(&path)?;
            let mut batch = drive.batch();
            let mut removed = 0;
            if drive.entry(target.as_str())?.is_some() {
                batch.del(target.as_str())?;
                removed += 1;
            }
            let below = drive.list(target.as_str(), true, None)?;
            if !below.is_empty() && !recursive {
                return Err(hyper_drive::Error::IsAFolder(target.to_string()).into());
            }
            for (p, _) in &below {
                batch.del(p.as_str())?;
                removed += 1;
            }
            if removed == 0 {
                return Err(hyper_drive::Error::NotFound(target.to_string()).into());
            }
            batch.commit()?;
        }
        DriveCommand::Ls {
            drive,
            path,
            recursive,
            json,
            read,
        } => {
            let lines = with_drive(store, &drive, &read, async |d, fetch| {
                let rows = match fetch {
                    Some(f) => d.with_fetch(f, |d| ls_rows(d, &path, recursive)).await?,
                    None => ls_rows(d, &path, recursive)?,
                };
                Ok(rows)
            })?;
            for (p, entry) in lines {
                writeln!(out, "{}", ls_line(&p, entry.as_ref(), json))?;
            }
        }
        DriveCommand::Cat {
            drive,
            path,
            start,
            end,
            read,
        } => {
            with_drive(store, &drive, &read, async |d, fetch| {
                let stream = match fetch {
                    Some(f) => {
                        let s = d
                            .with_fetch(f, |d| d.read_stream(&path, start, end))
                            .await?;
                        f.fetch_ranges(d.blobs(), s.blocks()).await?;
                        s
                    }
                    None => d.read_stream(&path, start, end)?,
                };
                copy_stream(stream, out)
            })?;
        }
        DriveCommand::Info { drive, json, read } => {
            let (key, blobs, info) = with_drive(store, &drive, &read, async |d, fetch| {
                let info = match fetch {
                    Some(f) => d.with_fetch(f, Drive::info).await?,
                    None => d.info()?,
                };
                Ok((d.key(), d.blobs().key(), info))
            })?;
            if json {
                let o = serde_json::json!({
                    "key": &key.to_string(),
                    "blobs_key": &blobs.to_string(),
                    "version": info.version,
                    "files": info.files,
                    "bytes": info.bytes,
                    "blocks": info.blocks,
                    "blocks_stored": info.blocks_stored,
                    "writable": info.writable,
                });
                writeln!(out, "{}", o)?;
            } else {
                writeln!(out, "key:           {key}")?;
                writeln!(out, "blobs key:     {blobs}")?;
                writeln!(out, "version:       {}", info.version)?;
                writeln!(out, "files:         {}", info.files)?;
                writeln!(out, "bytes:         {}", info.bytes)?;
                writeln!(out, "blocks:        {}", info.blocks)?;
                writeln!(out, "blocks stored: {}", info.blocks_stored)?;
                writeln!(out, "writable:      {}", info.writable)?;
            }
        }
        DriveCommand::Diff { drive, since, json } => {
            let drive = local_drive(store, &drive)?;
            for d in drive.diff(since, "/")? {
                let op = match (&d.now, &d.then) {
                    (Some(_), None) => Op::Add,
                    (None, _) => Op::Remove,
                    (Some(_), Some(_)) => Op::Change,
                };
                let size = d.now.as_ref().map_or(0, |e| e.size);
                if json {
                    let o = serde_json::json!({
                        "op": op.name(),
                        "path": d.path.as_str(),
                        "size": size,
                    });
                    writeln!(out, "{}", o)?;
                } else {
                    writeln!(out, "{} {}", op.name(), d.path)?;
                }
            }
        }
        DriveCommand::Seed { .. } | DriveCommand::Mirror { .. } | DriveCommand::Serve { .. } => {
            return Err(CliError::Usage(
                "drive seed, mirror and serve run on their own".into(),
            ));
        }
    }
    out.flush()?;
    Ok(())
}

/// Streams FILE (or `stdin`) into the drive at `path`, keeping a file's mode
/// and mtime.
fn put(drive: &Drive, path: &str, file: Option<&str>, stdin: impl Read) -> Result<(), CliError> {
    let mut w = drive.write_stream(true)?;
    let (mut input, meta): (Box<dyn Read + '_>, FileMeta) = match file {
        None | Some("-") => (Box::new(stdin), FileMeta::default()),
        Some(f) => {
            let local = Folder::new(Path::new(f).parent().unwrap_or(Path::new(".")));
            let name = Path::new(f)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let stat = local.stat(&DrivePath::file(name)?)?;
            let file = std::fs::File::open(f).map_err(|e| hyper_drive::Error::Io {
                path: f.into(),
                source: e,
            })?;
            let meta = match stat {
                Some(s) => FileMeta {
                    mode: s.mode,
                    mtime_ns: s.mtime_ns,
                    metadata: Vec::new(),
                },
                None => FileMeta::default(),
            };
            (Box::new(file), meta)
        }
    };
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n])?;
    }
    let content = w.finish()?;
    let mut batch = drive.batch();
    batch.put_entry(path, content.entry(&meta))?;
    batch.commit()?;
    Ok(())
}

/// `ls` rows: (path, entry; `None` for a folder).
fn ls_rows(
    d: &Drive,
    path: &str,
    recursive: bool,
) -> hyper_drive::Result<Vec<(String, Option<Entry>)>> {
    let folder = DrivePath::new(path)?;
    if recursive {
        return Ok(d
            .list(folder.as_str(), true, None)?
            .into_iter()
            .map(|(p, e)| (p.to_string(), Some(e)))
            .collect());
    }
    let mut rows = Vec::new();
    for child in d.readdir(folder.as_str())? {
        let p = folder.child(&child.name)?;
        let entry = match child.kind {
            ChildKind::Folder => None,
            _ => d.entry(p.as_str())?,
        };
        rows.push((p.to_string(), entry));
    }
    if rows.is_empty()
        && let Some(e) = d.entry(folder.as_str())?
    {
        rows.push((folder.to_string(), Some(e)));
    }
    Ok(rows)
}

fn ls_line(path: &str, entry: Option<&Entry>, json: bool) -> String {
    let Some(e) = entry else {
        return if json {
            serde_json::json!({
                "path": path,
                "kind": "folder",
            })
            .to_string()
        } else {
            format!("{path}/")
        };
    };
    let kind = match e.kind() {
        Kind::File => "file",
        Kind::Symlink => "symlink",
    };
    if json {
        return serde_json::json!({
            "path": path,
            "kind": kind,
            "size": e.size,
            "mode": u64::from(e.mode),
            "mtime_ns": u64::try_from(e.mtime_ns).unwrap_or(0),
            "hash": &e.hash_hex(),
            "target": (e.kind() == Kind::Symlink).then_some(e.target.as_str()),
        })
        .to_string();
    }
    match e.kind() {
        Kind::Symlink => format!("{path} -> {}", e.target),
        Kind::File => format!("{path}  {}  {:o}", e.size, e.mode),
    }
}

fn copy_stream(mut stream: hyper_drive::ReadStream, out: &mut impl Write) -> Result<(), CliError> {
    while let Some(chunk) = stream.next_chunk()? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}
