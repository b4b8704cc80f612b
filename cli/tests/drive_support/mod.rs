//! Helpers of the `hyper-cli drive` process tests (drive.rs, drive_serve.rs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `hyper-cli` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
}

/// A `hyper-cli drive seed` process, killed on drop.
pub struct DriveSeeder {
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: String,
}

impl Drop for DriveSeeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `hyper-cli drive seed DRIVE` on a loopback port and waits for its address.
pub fn drive_seed(store: &Path, drive: &str) -> DriveSeeder {
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .args(["drive", "seed", drive, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("an address").expect("utf-8");
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.to_string();
        }
    };
    DriveSeeder { child, addr }
}

/// The number under `key` in one JSON line.
pub fn json_num(line: &str, key: &str) -> u64 {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[at + key.len() + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

/// The string under `key` in one JSON line.
pub fn json_str(line: &str, key: &str) -> String {
    let at = line
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[at + key.len() + 4..]
        .chars()
        .take_while(|&c| c != '"')
        .collect()
}

/// `n` pseudo-random bytes from `seed` (xorshift), the same on every run.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
