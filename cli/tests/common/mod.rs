//! Running the real `hyper-cli` binary from the integration tests.
#![allow(dead_code)] // each test binary uses some of them

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub mod netlab;

/// `hyper-cli --store STORE ARGS...` with `stdin` written to it.
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
    child.wait_with_output().expect("wait")
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
