//! One store, several commands: the process that holds a store (a `seed`)
//! serves other `hyper-cli` invocations on it through a unix socket inside
//! the store folder, readable and writable by the store's owner only, so
//! `core info/list/cat/append` and `hyper-cli status` work while it runs.
//! The holder stays the only process that opens the database.
//!
//! Protocol: the client sends one JSON line (a [`Request`]); the server
//! answers with JSON lines ([`Reply`]), the last one `done` or `error`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use data_encoding::BASE64;
use hyper_core::Store;
use serde::{Deserialize, Serialize};

use crate::CliError;
use crate::core_cmd::{InfoJson, ListJson, open_core};
use crate::peers::{PeerStatus, PeersNow};

/// Held by the one bee or drive write the holder runs at a time for its
/// clients.
static WRITER: Mutex<()> = Mutex::new(());

/// The socket's file name inside the store folder.
const SOCKET: &str = "hyper-cli.sock";

/// What a client asks for.
#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `core info KEY`.
    Info {
        /// The core: key or name.
        key: String,
    },
    /// `core list`.
    List,
    /// `core cat KEY --start --end [--follow]`.
    Cat {
        /// The core: key or name.
        key: String,
        /// The first block.
        start: u64,
        /// The block after the last (else the length).
        end: Option<u64>,
        /// Then every block appended, until the client goes.
        #[serde(default)]
        follow: bool,
    },
    /// `core append KEY` with these blocks (base64).
    Append {
        /// The core: key or name.
        key: String,
        /// The blocks, base64.
        blocks: Vec<String>,
        /// Append even to a bee's core.
        force: bool,
    },
    /// `hyper-cli status`.
    Status,
    /// A `bee` command, run by the holder as it would run here.
    Bee {
        /// The command.
        command: crate::bee_cmd::BeeCommand,
        /// `bee import`'s input, base64.
        stdin: Option<String>,
    },
    /// A local `drive` command, run by the holder as it would run here
    /// (`put FILE` names the file by its absolute path).
    Drive {
        /// The command.
        command: crate::drive_cmd::DriveCommand,
        /// `drive put`'s stdin, base64.
        stdin: Option<String>,
    },
}

/// One line of an answer.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// A core's info.
    Info(InfoJson),
    /// One core of the list.
    Entry(ListJson),
    /// Blocks, base64.
    Blocks(Vec<String>),
    /// The core after an append: blocks appended, length, byte length.
    Appended(u64, u64, u64),
    /// What the holder is doing.
    Status(Status),
    /// Bytes a command printed, base64.
    Output(String),
    /// The end of a successful answer.
    Done,
    /// The request failed: why.
    Error(String),
    /// The request's arguments were wrong (here exit status 2, as for the
    /// same command run on an unheld store): why.
    Usage(String),
}

/// What `hyper-cli status` shows.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Status {
    /// The holding process.
    pub pid: u32,
    /// What it runs.
    pub command: String,
    /// Its identity, as peers see it.
    pub identity: String,
    /// Where it listens over TCP, if it does.
    pub listening: Option<String>,
    /// Its peers now: how each is connected and what moved with it.
    pub peers: Vec<PeerStatus>,
    /// The cores it serves: key, length, blocks stored.
    pub cores: Vec<(String, u64, u64)>,
    /// Its swarm's topics and counters, if it runs one.
    #[serde(default)]
    pub swarm: Option<crate::peers::SwarmJson>,
}

/// The socket of the store in `dir`.
fn socket(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// Serves requests on `store` until the process ends, from a thread of its
/// own; `status` is kept up to date by the holder (cores are read fresh,
/// and the peers from `peers` if given). A socket that cannot be made is
/// said on stderr and the command goes on (other invocations then find the
/// store locked).
pub fn serve(store: Store, status: Arc<Mutex<Status>>, peers: Option<PeersNow>) {
    if let Err(e) = listen(store, status, peers) {
        eprintln!("hyper-cli: other commands cannot use this store while this one runs: {e}");
    }
}

fn listen(
    store: Store,
    status: Arc<Mutex<Status>>,
    peers: Option<PeersNow>,
) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket(store.path());
    // A socket left by a holder that was killed.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|error| CliError::Listen {
        addr: path.display().to_string(),
        error: Box::new(error),
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (store, status, peers) = (store.clone(), status.clone(), peers.clone());
            std::thread::spawn(move || {
                if let Err(e) = answer(&store, &status, peers.as_ref(), stream) {
                    tracing::debug!(error = %e, "local request failed");
                }
            });
        }
    });
    Ok(())
}

fn answer(
    store: &Store,
    status: &Mutex<Status>,
    peers: Option<&PeersNow>,
    stream: UnixStream,
) -> Result<(), CliError> {
    // Bytes, not text: a line that is not UTF-8 gets an error answer too.
    let mut line = Vec::new();
    BufReader::new(&stream).read_until(b'\n', &mut line)?;
    let mut out = std::io::BufWriter::new(&stream);
    let result = match serde_json::from_slice::<Request>(&line) {
        Ok(request) => handle(store, status, peers, request, &mut out),
        Err(e) => Err(CliError::Usage(format!("bad local request: {e}"))),
    };
    let last = match result {
        Ok(()) => Reply::Done,
        Err(CliError::Usage(why)) => Reply::Usage(why),
        Err(e) => Reply::Error(e.to_string()),
    };
    crate::output::json_line(&mut out, &last)?;
    out.flush()?;
    Ok(())
}

fn handle(
    store: &Store,
    status: &Mutex<Status>,
    peers: Option<&PeersNow>,
    request: Request,
    out: &mut impl Write,
) -> Result<(), CliError> {
    // Each reply reaches the client at once (a followed cat waits between).
    let mut send = |reply: Reply| {
        crate::output::json_line(out, &reply)?;
        Ok::<_, CliError>(out.flush()?)
    };
    match request {
        Request::Info { key } => send(Reply::Info(crate::core_cmd::info_of(
            store,
            &open_core(store, &key)?,
        )?)),
        Request::List => {
            for entry in crate::core_cmd::list_of(store)? {
                send(Reply::Entry(entry))?;
            }
            Ok(())
        }
        Request::Cat {
            key,
            start,
            end,
            follow,
        } => {
            let core = open_core(store, &key)?;
            crate::core_cmd::each_chunk(&core, start, end, follow, |blocks| {
                send(Reply::Blocks(
                    blocks.iter().map(|b| BASE64.encode(b)).collect(),
                ))
            })
        }
        Request::Append { key, blocks, force } => {
            let core = open_core(store, &key)?;
            if !force && crate::core_cmd::holds_a_bee(&core)? {
                return Err(CliError::StructuredCore(key));
            }
            let blocks = blocks
                .iter()
                .map(|b| BASE64.decode(b.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::Usage(format!("bad block in local request: {e}")))?;
            let outcome = core.append_batch(&blocks)?;
            // The holder may commit without fsync (a seeder does): the
            // client's data is durable before it hears so.
            store.flush()?;
            send(Reply::Appended(
                blocks.len() as u64,
                outcome.length,
                outcome.byte_length,
            ))
        }
        Request::Bee { command, stdin } => {
            let writes = command.writes();
            run_command(store, writes, stdin, &mut send, |input, output| {
                crate::bee_cmd::execute(store, command, input, output)
            })
        }
        Request::Drive { command, stdin } => {
            let writes = command.writes();
            run_command(store, writes, stdin, &mut send, |input, output| {
                crate::drive_cmd::execute(store, command, input, output)
            })
        }
        Request::Status => {
            let mut now = status.lock().map(|s| s.clone()).unwrap_or_default();
            if let Some(peers) = peers {
                let live = peers();
                (now.peers, now.swarm) = (live.peers, live.swarm);
            }
            now.cores = store
                .list()?
                .into_iter()
                .map(|e| {
                    let stored = store
                        .core(&e.key)
                        .and_then(|c| c.info())
                        .map_or(0, |i| i.blocks_stored);
                    (e.key.to_string(), e.length, stored)
                })
                .collect();
            send(Reply::Status(now))
        }
    }
}

/// Runs a client's bee or drive command: `stdin` (base64) as its input,
/// what it prints sent as it comes. Writes run one at a time (a bee write
/// reads the tree and appends its new root: two at once would lose one;
/// reads go on meanwhile), and are durable before the client hears they
/// are done (the holder may commit without fsync).
fn run_command<F: FnMut(Reply) -> Result<(), CliError>>(
    store: &Store,
    writes: bool,
    stdin: Option<String>,
    send: &mut F,
    run: impl FnOnce(&[u8], &mut Output<'_, F>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let input = BASE64
        .decode(stdin.unwrap_or_default().as_bytes())
        .map_err(|e| CliError::Usage(format!("bad input in local request: {e}")))?;
    let mut output = Output {
        send,
        pending: Vec::new(),
    };
    let _one_writer = writes.then(|| {
        WRITER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    });
    run(input.as_slice(), &mut output)?;
    output.flush()?;
    store.flush()?;
    Ok(())
}

/// What a command run for a client prints: sent on as [`Reply::Output`]
/// lines of at most [`OUTPUT_CHUNK`] bytes.
struct Output<'a, F: FnMut(Reply) -> Result<(), CliError>> {
    send: &'a mut F,
    pending: Vec<u8>,
}

/// The most bytes of output one [`Reply::Output`] carries.
const OUTPUT_CHUNK: usize = 64 * 1024;

impl<F: FnMut(Reply) -> Result<(), CliError>> Write for Output<'_, F> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= OUTPUT_CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for chunk in self.pending.chunks(OUTPUT_CHUNK) {
            (self.send)(Reply::Output(BASE64.encode(chunk))).map_err(std::io::Error::other)?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Sends `request` to the process holding the store in `dir` and hands
/// each reply to `each`; `None` if no process serves the store.
pub fn ask(
    dir: &Path,
    request: &Request,
    mut each: impl FnMut(Reply) -> Result<(), CliError>,
) -> Result<Option<()>, CliError> {
    let Ok(mut stream) = UnixStream::connect(socket(dir)) else {
        return Ok(None);
    };
    tracing::debug!(?request, "asking the process that holds the store");
    crate::output::json_line(&mut stream, request)?;
    for line in BufReader::new(&stream).lines() {
        let reply: Reply = serde_json::from_str(&line?)
            .map_err(|e| CliError::Usage(format!("bad answer from the store's process: {e}")))?;
        match reply {
            Reply::Done => return Ok(Some(())),
            Reply::Error(e) => return Err(CliError::Remote(e)),
            Reply::Usage(why) => return Err(CliError::Usage(why)),
            reply => each(reply)?,
        }
    }
    Err(CliError::Remote(
        "the process holding the store stopped answering".into(),
    ))
}

/// [`ask`], or the store's lock error if no process serves it.
pub fn ask_holder(
    dir: &Path,
    request: &Request,
    each: impl FnMut(Reply) -> Result<(), CliError>,
) -> Result<(), CliError> {
    ask(dir, request, each)?.ok_or_else(|| CliError::StoreLocked(dir.to_path_buf()))
}

/// Sends a bee or drive command to the process holding the store in
/// `dir` and writes what it prints to `out`, byte for byte.
pub fn run_through_holder(
    dir: &Path,
    request: &Request,
    out: &mut impl Write,
) -> Result<(), CliError> {
    ask_holder(dir, request, |reply| match reply {
        Reply::Output(bytes) => {
            let bytes = BASE64.decode(bytes.as_bytes()).map_err(|e| {
                CliError::Remote(format!("bad output from the store's process: {e}"))
            })?;
            Ok(out.write_all(&bytes)?)
        }
        _ => Ok(()),
    })
}

/// This process's whole stdin, base64, for a command the holder runs.
pub fn stdin_base64() -> Result<String, CliError> {
    let mut input = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)?;
    Ok(BASE64.encode(&input))
}

/// `hyper-cli status`.
pub fn status(dir: &Path, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let mut shown = false;
    let answered = ask(dir, &Request::Status, |reply| {
        if let Reply::Status(s) = reply {
            shown = true;
            if json {
                return crate::output::json_line(&mut out, &s);
            }
            writeln!(
                out,
                "process {} ({}) holds {}",
                s.pid,
                s.command,
                dir.display()
            )?;
            writeln!(out, "identity {}", s.identity)?;
            if let Some(addr) = &s.listening {
                writeln!(out, "listening on {addr}")?;
            }
            writeln!(out, "{} peers", s.peers.len())?;
            for p in &s.peers {
                writeln!(
                    out,
                    "peer {} at {} ({} {}): {} bytes up in {} blocks, {} bytes down in {} blocks",
                    p.identity,
                    p.address,
                    p.transport,
                    p.path,
                    p.bytes_up,
                    p.blocks_up,
                    p.bytes_down,
                    p.blocks_down
                )?;
            }
            if let Some(w) = &s.swarm {
                let by_path = |c: &crate::peers::PathJson| {
                    format!("{} direct, {} relay, {} local", c.direct, c.relay, c.local)
                };
                writeln!(
                    out,
                    "swarm: connects tried {}; made {}; {} accepted; {} punches ({} failed); {} address changes",
                    by_path(&w.tried),
                    by_path(&w.made),
                    w.accepted,
                    w.punches,
                    w.punch_failures,
                    w.address_changes
                )?;
                let families = if w.families.is_empty() {
                    "none".to_string()
                } else {
                    w.families.join(", ")
                };
                writeln!(
                    out,
                    "swarm: DHT on {families}; made {} over ipv4, {} over ipv6",
                    w.made_by_family.ipv4, w.made_by_family.ipv6
                )?;
                for t in &w.topics {
                    let role = match (t.server, t.client) {
                        (true, true) => "announced and looked up",
                        (true, false) => "announced",
                        (false, _) => "looked up",
                    };
                    let on = if t.announced_on.is_empty() {
                        String::new()
                    } else {
                        format!(" (on {})", t.announced_on.join(", "))
                    };
                    writeln!(out, "topic {}: {role}{on}, {} peers", t.topic, t.peers)?;
                }
            }
            for (key, length, stored) in &s.cores {
                writeln!(out, "core {key}: {stored} of {length} blocks stored")?;
            }
        }
        Ok(())
    })?;
    if answered.is_none() || !shown {
        return Err(CliError::NoHolder(dir.to_path_buf()));
    }
    Ok(())
}
