//! W8-reorder (autobase): the cost of merging what three writers appended
//! while partitioned. The writers, stores, mesh and view are W8's
//! (`autobase.rs`): three indexers, each a [`Base`] on its own store,
//! replicating over a full mesh of Noise-encrypted TCP loopback connections.
//!
//! Setup (untimed): connected, each writer appends one op and the three
//! agree on those three ops (views the same, `signed_length` covering
//! them). Then the mesh is dropped (its runtime shut down: every connection
//! closed) and each writer, in a thread of its own, appends `ops` ops,
//! `batch` per append, acking as W8 does (`ack(false)` after each append;
//! with the other indexers away nothing becomes final). The line reports
//! that phase's length too (`partition_seconds`), as it is not free.
//!
//! Timed: from the reconnect (a new runtime, a new full mesh) until every
//! view holds all ops and each view's `signed_length` covers them; then the
//! three must agree (the same BLAKE3 hash of the view's blocks; as in W8,
//! that check is timed only when it has to be retried). Meanwhile each
//! writer loops `update`, then `ack` with the ack timer fired every
//! [`ACK_TIMER`] (the ack that carries the signature `signed_length` needs)
//! and without it in between. `ops_per_sec` and `us_per_op` count the ops
//! appended while partitioned; `undone_batches` is the most batches one
//! writer rolled back (reorders) during the merge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hyper_autobase::Base;

use crate::autobase::{Log, Mesh, WRITERS, Writers, agree, fields, op, runtime};
use crate::workloads::Result;

/// (ops per append, ops each writer appends while partitioned), in the
/// order they run: 1,000, 10,000 and 100,000 ops for both shapes.
const CONFIGS: [(usize, u64); 6] = [
    (1, 1_000),
    (1, 10_000),
    (1, 100_000),
    (100, 1_000),
    (100, 10_000),
    (100, 100_000),
];
/// How often each writer's ack timer fires during the merge.
const ACK_TIMER: Duration = Duration::from_millis(20);
/// Gives up on the setup's or the merge's convergence after this long
/// (a merge's line then says so).
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs W8-reorder for every configuration of [`CONFIGS`], or for those
/// of `only` ops per append (`hyper-bench W8-reorder-1`, `-100`).
pub fn run(scale: u64, only: Option<usize>) -> Result<()> {
    for (batch, ops) in CONFIGS {
        if only.is_none_or(|b| b == batch) {
            one(scale, batch, (ops / scale).max(1))?;
        }
    }
    Ok(())
}

fn one(scale: u64, batch: usize, ops: u64) -> Result<()> {
    let set = Writers::new()?;
    let common = WRITERS as u64;
    let target = common + ops * WRITERS as u64;
    let net = runtime()?;
    let mesh = net.block_on(Mesh::connect(&set.stores, &set.keys))?;
    let mut bases = vec![set.create()?];
    for i in 1..WRITERS {
        bases.push(set.join(i)?);
    }
    for (i, base) in bases.iter_mut().enumerate() {
        base.append(&[op(i, 0).as_slice()])?;
    }
    if converge(&mut bases, common)?.is_none() {
        return Err("W8-reorder: the writers never agreed on their first ops".into());
    }
    drop(mesh);
    net.shutdown_timeout(Duration::from_secs(1));

    let started = Instant::now();
    in_threads(&mut bases, |i, base| {
        let mut next = 1;
        while next <= ops {
            let n = (batch as u64).min(ops + 1 - next);
            let values: Vec<Vec<u8>> = (next..next + n).map(|k| op(i, k)).collect();
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            base.append(&refs)?;
            base.ack(false)?;
            next += n;
        }
        Ok(())
    })?;
    let partition_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let net = runtime()?;
    let mesh = net.block_on(Mesh::connect(&set.stores, &set.keys))?;
    let merged = converge(&mut bases, target)?;
    drop(mesh);
    net.shutdown_timeout(Duration::from_secs(1));
    let mut line = fields("W8-reorder", ops, batch);
    line.num("partition_seconds", partition_seconds);
    let Some((undone, reached)) = merged else {
        line.text("timed_out", "true")
            .int("seconds", TIMEOUT.as_secs());
        return Ok(line.print(scale)?);
    };
    let seconds = reached.duration_since(started).as_secs_f64();
    let merged_ops = (ops * WRITERS as u64) as f64;
    line.num("seconds", seconds)
        .num("ops_per_sec", merged_ops / seconds)
        .num("us_per_op", seconds * 1e6 / merged_ops)
        .int("undone_batches", undone as u64)
        .print(scale)?;
    Ok(())
}

/// Runs the writers (a thread each) until every view holds `target` ops
/// with `signed_length` covering them, then checks that the views agree
/// (updating until they do). Returns the most batches one writer undid and
/// when the last writer got there (later if the views did not agree yet:
/// when they did), or `None` after [`TIMEOUT`].
fn converge(bases: &mut [Base<Log>], target: u64) -> Result<Option<(usize, Instant)>> {
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let results = in_threads(bases, |_, base| {
        let mut undone = 0;
        let mut reached = None;
        let mut timer = Instant::now();
        while done.load(Ordering::Acquire) < WRITERS {
            undone += base.update()?.undo;
            if timer.elapsed() >= ACK_TIMER {
                base.ack(true)?;
                timer = Instant::now();
            } else {
                base.ack(false)?;
            }
            let info = base.info();
            let view = info.views.first();
            if reached.is_none()
                && view.is_some_and(|v| v.length >= target && v.signed_length >= target)
            {
                reached = Some(Instant::now());
                done.fetch_add(1, Ordering::AcqRel);
            }
            if started.elapsed() > TIMEOUT {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(1));
        }
        Ok(reached.map(|at| (undone, at)))
    })?;
    let Some(writers) = results.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let mut end = writers.iter().map(|w| w.1).max().unwrap_or(started);
    while !agree(bases, target)? {
        if started.elapsed() > TIMEOUT {
            return Err(format!(
                "W8-reorder: the views hold {target} ops, signed, but do not agree"
            )
            .into());
        }
        thread::sleep(Duration::from_millis(1));
        end = Instant::now();
    }
    let undone = writers.iter().map(|w| w.0).max().unwrap_or(0);
    Ok(Some((undone, end)))
}

/// Runs `f` on each base in a thread of its own (`f` gets the writer's
/// index); the results in writer order, or the first error, naming the
/// writer.
fn in_threads<T: Send>(
    bases: &mut [Base<Log>],
    f: impl Fn(usize, &mut Base<Log>) -> hyper_autobase::Result<T> + Sync,
) -> Result<Vec<T>> {
    let f = &f;
    let results: Vec<std::result::Result<T, String>> = thread::scope(|s| {
        let handles: Vec<_> = bases
            .iter_mut()
            .enumerate()
            .map(|(i, base)| s.spawn(move || f(i, base).map_err(|e| format!("writer {i}: {e}"))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a writer panicked".into())))
            .collect()
    });
    results
        .into_iter()
        .map(|r| r.map_err(|e| format!("W8-reorder {e}").into()))
        .collect()
}
