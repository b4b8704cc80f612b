//! L2 (many readers) and L4 (soak) of issue 15's scale workloads, run with
//! real `hyper-cli` processes over TCP loopback: found next to this binary
//! (`cargo build --release -p hyper-cli`), or at `$HYPER_CLI`.
//!
//! - L2: one `seed` process, then 1 and 16 `clone` processes of its
//!   100,000 x 1 KiB core at once, each with a fresh store. Reported: the
//!   seeder's CPU time (utime + stime, `/proc/PID/stat`) per MB served with
//!   each, their ratio (goal <= 1.2), and the readers' download times
//!   (goal: the slowest within 2x of the fastest).
//! - L4: a seeder of a core grown by `core append` processes through its
//!   store socket, three `clone --live` processes each stopped and started
//!   again every minute, for 30 minutes (`SOAK_SECS` sets it; `BENCH_SCALE`
//!   divides it). Reported: the seeder's resident memory and open file
//!   descriptors after warm-up (the first sixth), as growth from the first
//!   quarter of the samples to the last (goal <= 10%), and whether every
//!   clone's blocks equal the seeder's. `SOAK_SAMPLES=FILE` also writes
//!   every sample as CSV.

pub(crate) mod procs;

use std::path::PathBuf;
use std::time::Duration;

use hyper_core::{Durability, Store};
use procs::{Cli, Growth, Plan};

use crate::report::Line;
use crate::workloads::{Append, MB, Result, fill, random_blocks};

/// The `hyper-cli` binary: `$HYPER_CLI`, else the one beside this binary.
fn cli() -> Result<Cli> {
    let exe = match std::env::var_os("HYPER_CLI") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name("hyper-cli"),
    };
    if !exe.is_file() {
        return Err(format!(
            "no hyper-cli at {} (build it: cargo build --release -p hyper-cli, or set HYPER_CLI)",
            exe.display()
        )
        .into());
    }
    Ok(Cli::new(exe))
}

/// L2: the seeder's CPU per MB served to 1 reader, then to 16 at once.
pub fn readers(scale: u64) -> Result<()> {
    let cli = cli()?;
    let count = Append::SMALL.blocks / scale;
    let seeder = tempfile::tempdir()?;
    let blocks = random_blocks(count, Append::SMALL.block_size, 1);
    fill(
        seeder.path(),
        &blocks,
        Append::SMALL.batch,
        Durability::Eventual,
    )?;
    drop(blocks);
    let key = Store::open(seeder.path())?
        .named("bench")?
        .key()
        .to_string();
    let mut cpu_per_mb = Vec::new();
    for readers in [1usize, 16] {
        let dir = tempfile::tempdir()?;
        let run = procs::many_readers(&cli, seeder.path(), &key, dir.path(), readers, count)
            .map_err(|e| e.to_string())?;
        let served = (readers as u64 * count) as f64 * Append::SMALL.block_size as f64 / MB;
        let per_mb = run.seeder_cpu_secs / served;
        cpu_per_mb.push(per_mb);
        let fastest = run.reader_secs.iter().copied().fold(f64::MAX, f64::min);
        let slowest = run.reader_secs.iter().copied().fold(0.0, f64::max);
        let mut line = Line::new("L2");
        line.int("readers", readers as u64)
            .int("blocks", count)
            .num("mb_served", served)
            .num("seeder_cpu_secs", run.seeder_cpu_secs)
            .num("seeder_cpu_ms_per_mb", per_mb * 1000.0)
            .num("wall_secs", run.wall_secs)
            .num("mb_per_sec", served / run.wall_secs)
            .num("fastest_secs", fastest)
            .num("slowest_secs", slowest)
            .num("slowest_over_fastest", slowest / fastest);
        if let [one, many] = cpu_per_mb.as_slice() {
            line.num("cpu_per_mb_over_one_reader", many / one);
        }
        line.print(scale)?;
    }
    Ok(())
}

/// L4: 30 minutes (or `SOAK_SECS`) divided by `scale` of a seeder with a
/// live appender and three reconnecting live clones.
pub fn soak(scale: u64) -> Result<()> {
    let cli = cli()?;
    let secs = match std::env::var("SOAK_SECS") {
        Ok(s) => s
            .parse::<u64>()
            .map_err(|_| format!("SOAK_SECS must be a whole number of seconds, not {s:?}"))?,
        Err(_) => 1800,
    } / scale;
    let secs = secs.max(30);
    let plan = Plan {
        run: Duration::from_secs(secs),
        reconnect_every: Duration::from_secs(60.min(secs / 6)),
        sample_every: Duration::from_secs(2),
        append_every: Duration::from_millis(500),
        blocks_per_append: 10,
        clones: 3,
        catch_up: Duration::from_secs(60),
    };
    let dir = tempfile::tempdir()?;
    let run = procs::soak(&cli, dir.path(), &plan).map_err(|e| e.to_string())?;
    if let Some(path) = std::env::var_os("SOAK_SAMPLES") {
        let mut csv = String::from("at_secs,cpu_secs,rss_kib,fds,files,sockets,pipes,other\n");
        for s in &run.samples {
            let (u, f) = (&s.usage, &s.usage.fds);
            csv += &format!(
                "{:.1},{:.2},{},{},{},{},{},{}\n",
                s.at,
                u.cpu_secs,
                u.rss_kib,
                f.total(),
                f.files,
                f.sockets,
                f.pipes,
                f.other
            );
        }
        std::fs::write(&path, csv)?;
    }
    let warmup = secs as f64 / 6.0;
    let rss = Growth::of(&run.samples, warmup, |u| u.rss_kib as f64);
    let fds = Growth::of(&run.samples, warmup, |u| u.fds.total() as f64);
    let (Some(rss), Some(fds)) = (rss, fds) else {
        return Err("too few samples after warm-up".into());
    };
    let cpu = run.samples.last().map_or(0.0, |s| s.usage.cpu_secs);
    Line::new("L4")
        .int("seconds", secs)
        .int("clones", plan.clones as u64)
        .int("reconnects", run.reconnects)
        .int("appends", run.appends)
        .int("length", run.length)
        .int("samples", run.samples.len() as u64)
        .num("warmup_secs", warmup)
        .num("rss_kib_first", rss.first)
        .num("rss_kib_last", rss.last)
        .num("rss_growth", rss.drift())
        .num("rss_peak_rise", rss.peak_rise())
        .num("fds_first", fds.first)
        .num("fds_last", fds.last)
        .num("fds_growth", fds.drift())
        .num("fds_peak", fds.peak)
        .num("seeder_cpu_secs", cpu)
        .int("clones_identical", run.identical as u64)
        .print(scale)?;
    if run.identical != plan.clones {
        return Err(format!(
            "{} of {} clones differ",
            plan.clones - run.identical,
            plan.clones
        )
        .into());
    }
    Ok(())
}
