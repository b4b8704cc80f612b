//! Running the real `hyper-cli` binary from the integration tests.
#![allow(dead_code)] // each test binary uses some of them

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub mod base;
pub mod lab_process;
pub mod netlab;

/// The longest one [`cli`] command may run: past it the process is killed
/// and the test fails naming it, instead of hanging the suite.
pub const COMMAND_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// `hyper-cli --store STORE ARGS...` with `stdin` written to it. Panics if
/// it runs past [`COMMAND_LIMIT`].
pub fn cli(store: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hyper-cli");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    // A watchdog that kills the process at the limit; told to stop (the
    // sender dropped) as soon as the process ends.
    let pid = child.id().to_string();
    let (finished, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let fired =
            watch.recv_timeout(COMMAND_LIMIT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
        if fired {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        fired
    });
    let output = child.wait_with_output().expect("wait");
    drop(finished);
    if watchdog.join().unwrap_or(false) {
        panic!("hyper-cli {args:?} ran past {COMMAND_LIMIT:?} and was killed");
    }
    output
}

/// The stdout of a command that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A `hyper-cli seed` process (stdin piped, for `--append`); killed on drop.
pub struct Seeder {
    pub child: Child,
    /// The address it printed.
    pub addr: String,
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hyper-cli --store STORE seed ARGS...` and waits for the address,
/// the last line a seeder prints.
pub fn seed(store: &Path, args: &[&str]) -> Seeder {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(store)
        .arg("seed")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn seed");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("seed printed its address")
            .expect("utf-8");
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_string();
        }
    };
    Seeder { child, addr }
}

/// A child process killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` (stdout piped, stdin and stderr closed) and waits for
/// a stdout line starting with `ready`; the process and the rest of that
/// line. Stdout keeps being drained afterwards.
pub fn start_until(command: Command, ready: &str) -> (Running, String) {
    let (process, lines) = start_lines(command, ready, 1);
    let rest = lines
        .last()
        .and_then(|l| l.strip_prefix(ready))
        .unwrap_or_default()
        .trim()
        .to_string();
    (process, rest)
}

/// How long [`start_lines`] waits for a process's ready lines: past it
/// the test fails naming the command, instead of hanging the suite.
pub const READY_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Spawns `command` (stdout piped, stdin and stderr closed) and reads
/// stdout until `count` lines have started with `last`; the process and
/// every line up to there. Stdout keeps being drained afterwards. Panics
/// (killing the process) if they do not come within [`READY_LIMIT`].
pub fn start_lines(mut command: Command, last: &str, count: usize) -> (Running, Vec<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hyper-cli");
    let stdout = child.stdout.take().expect("stdout");
    let process = Running(child);
    let (lines, received) = std::sync::mpsc::channel();
    // Reads every line, also after the wait (a full pipe would block the
    // process); nobody listens to them then.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = lines.send(line);
        }
    });
    let deadline = std::time::Instant::now() + READY_LIMIT;
    let mut seen: Vec<String> = Vec::new();
    while seen.iter().filter(|l| l.starts_with(last)).count() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line.expect("utf-8")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("{command:?} printed no {last:?} within {READY_LIMIT:?}: {seen:?}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{command:?} ended before {last:?}: {seen:?}")
            }
        }
    }
    (process, seen)
}

/// A DHT bootstrap node on loopback (no `$HYPER_BOOTSTRAP`): the process
/// and its address.
pub fn dht_node() -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyper-cli"));
    command
        .args(["dht", "node", "--listen", "127.0.0.1:0"])
        .env_remove("HYPER_BOOTSTRAP");
    let (node, rest) = start_until(command, "dht node listening on ");
    let addr = rest
        .split_whitespace()
        .next()
        .expect("the node's address")
        .to_string();
    (node, addr)
}

/// A writer store at `store` holding one core named `data` of `lines`
/// lines (`line 0`, `line 1`, ...); its key.
pub fn writer_of(store: &Path, lines: usize) -> String {
    writer_with(
        store,
        &(0..lines)
            .map(|i| format!("line {i}\n"))
            .collect::<String>(),
    )
}

/// A writer store at `store` holding one core named `data`, a block per
/// line of `text`; its key.
pub fn writer_with(store: &Path, text: &str) -> String {
    let key = ok(cli(store, &["core", "create", "--name", "data"], None));
    ok(cli(
        store,
        &["core", "append", "data"],
        Some(text.as_bytes()),
    ));
    key.trim().to_string()
}
