//! Every shell example in the README runs, as written, against the real
//! binary: a README command that stops working fails this test. Lines that
//! run cargo are left out (the binary under test is on `PATH` instead),
//! and `/tmp/` is a fresh temporary folder.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any one example may take.
const LIMIT: Duration = Duration::from_secs(180);

/// The README's ```sh blocks, in order.
fn examples(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs one example in bash with `hyper-cli` on the path; its stdout.
fn run(example: &str, tmp: &Path) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .parent()
        .expect("bin dir");
    let body: String = example
        .lines()
        .filter(|l| !l.trim_start().starts_with("cargo "))
        .map(|l| format!("{}\n", l.replace("/tmp/", &format!("{}/", tmp.display()))))
        .collect();
    let script =
        format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n{body}");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", tmp)
        // `scripts/demo` runs the binary under test on fewer blocks.
        .env("HYPER_CLI", env!("CARGO_BIN_EXE_hyper-cli"))
        .env("DEMO_BLOCKS", "10000")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("HYPER_BOOTSTRAP")
        .env_remove("HYPER_STORE")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("example ran past {LIMIT:?}:\n{example}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("output");
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        status.success(),
        "example failed ({status}):\n{example}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

#[test]
fn every_readme_example_runs() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let examples = examples(&readme);
    assert!(examples.len() >= 3, "found {} examples", examples.len());
    let tmp = tempfile::tempdir().expect("tempdir");
    let outputs: Vec<String> = examples.iter().map(|e| run(e, tmp.path())).collect();
    // The quickstart clones through local discovery and reads the last
    // blocks; the DHT example does the same through a DHT node.
    assert!(outputs[0].contains("cloned "), "{}", outputs[0]);
    assert!(outputs[0].ends_with("9999\n10000\n"), "{}", outputs[0]);
    assert!(outputs[1].contains("cloned "), "{}", outputs[1]);
    assert!(outputs[1].ends_with("9999\n10000\n"), "{}", outputs[1]);
    let all = outputs.concat();
    assert!(
        all.contains("two"),
        "the ticket example's sparse get: {all}"
    );
    assert!(
        all.contains("\"blocks\":3"),
        "the ticket example's clone: {all}"
    );
    assert!(
        all.contains("4243\n"),
        "the sparse get of block 4242: {all}"
    );
}
