//! `hyper-cli` processes inside the NAT lab's hosts (`netlab.rs`), for the
//! NAT tests (kept out of `netlab.rs`, which the benches include too).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::netlab::Host;

/// A child process killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hyper-cli ARGS...` in `host` and waits for a stdout line that
/// starts with `ready`.
pub fn start(host: &Host, args: &[&str], ready: &str) -> Process {
    start_reading(host, args, ready).0
}

/// [`start`], also returning the stdout lines up to `ready`.
pub fn start_reading(host: &Host, args: &[&str], ready: &str) -> (Process, Vec<String>) {
    let mut child = host
        .command(env!("CARGO_BIN_EXE_hyper-cli"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hyper-cli");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("hyper-cli {args:?} ended before printing {ready:?}"))
            .expect("utf-8");
        let done = line.starts_with(ready);
        seen.push(line);
        if done {
            break;
        }
    }
    // Keep draining stdout so the process never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (Process(child), seen)
}

/// A `hyper-cli dht node` in `host` listening on `addr` (with `relay_of`,
/// a relay node that bootstraps from that address), once it is listening.
pub fn dht_node(host: &Host, addr: &str, relay_of: Option<&str>) -> Process {
    let mut args = vec!["dht", "node", "--listen", addr];
    if let Some(boot) = relay_of {
        args.extend(["--relay", "--bootstrap", boot]);
    }
    start(host, &args, "dht node listening")
}
