//! Child process for the crash test: appends batches of deterministic
//! blocks to the core named "crash" forever, printing the length after each
//! `append_batch` returned. The parent kills it with SIGKILL.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: crash-writer STORE_DIR")?;
    let store = hyper_core::Store::open(&dir)?;
    let core = store.named("crash")?;
    let mut out = std::io::stdout().lock();
    loop {
        let start = core.info()?.length;
        let batch: Vec<Vec<u8>> = (start..start + 37).map(hyper_tests::crash_block).collect();
        let outcome = core.append_batch(&batch)?;
        writeln!(out, "{}", outcome.length)?;
        out.flush()?;
    }
}
