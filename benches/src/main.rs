//! `hyper-bench`: runs the workloads of the benchmark suite and prints one
//! JSON line per workload and configuration.
//!
//! Usage: `hyper-bench W1 W3 …` or `hyper-bench all` (also S1, S2: the
//! swarm's DHT lookups on the simulated network and a node's CPU per
//! request, see `dht.rs`; S4: a full clone through the swarm against the
//! same over TCP, see `swarm_clone.rs`, `S4-1K` and `S4-64K` run one block
//! size of it; W7-mirror: mirroring a real source
//! tree beside rsync, see `mirror.rs`; and, by name only, W7-mem: a 4 GiB
//! file's peak memory through a mirror, see `mirror.rs`; W8-reorder: the
//! merge of three writers' partitioned appends (`W8-reorder-1`, `-100`: one append shape only), see `reorder.rs`; S3: connect time
//! per NAT pair in the namespace lab, root only, see `nat.rs`; L1 and L3: a
//! big core and many cores, see `scale.rs`; L2 and L4: many readers and the
//! soak, see `soak.rs`). `BENCH_SCALE=N`
//! divides every block and operation count by N (for smoke runs); lines of a
//! scaled run carry `"scale": N`. MB is 1,000,000 bytes, as on the
//! JavaScript side (`benches/reference-js`).

mod autobase;
mod bee;
mod dht;
mod drive;
mod mirror;
mod nat;
mod reorder;
mod replicate;
mod report;
mod scale;
mod soak;
mod swarm_clone;
mod workloads;

use std::process::ExitCode;

/// Workloads this build can run, in the order `all` runs them.
const RUNNABLE: [&str; 12] = [
    "W1",
    "W2",
    "W3",
    "W4",
    "W5",
    "W6",
    "W7",
    "W7-MIRROR",
    "W8",
    "S1",
    "S2",
    "S4",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Internal: the serving processes of W4/W5 and S4 (TCP), of S4's swarm
    // side, and L1's fresh process that reopens the big core.
    if let [cmd, dir] = args.as_slice() {
        let dir = std::path::Path::new(dir);
        let run = match cmd.as_str() {
            "serve" => Some(replicate::serve(dir)),
            "serve-swarm" => Some(swarm_clone::serve(dir)),
            "l1-open" => Some(scale::open_probe(dir)),
            _ => None,
        };
        if let Some(result) = run {
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hyper-bench {cmd}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: hyper-bench all | W1 W2 W3 ... W7-mirror ... S1 S2 S4 | W7-mem W8-reorder[-1|-100] S3 S4-1K S4-64K L1 L2 L3 L4  (BENCH_SCALE=N divides the counts)"
        );
        return ExitCode::from(2);
    }
    let scale = match std::env::var("BENCH_SCALE").map(|s| s.parse::<u64>()) {
        Err(_) => 1,
        Ok(Ok(n)) if n >= 1 => n,
        Ok(_) => {
            eprintln!("hyper-bench: BENCH_SCALE must be a whole number >= 1");
            return ExitCode::from(2);
        }
    };
    let mut ids: Vec<String> = Vec::new();
    for a in &args {
        if a.eq_ignore_ascii_case("all") {
            ids.extend(RUNNABLE.iter().map(|s| s.to_string()));
        } else {
            ids.push(a.to_ascii_uppercase());
        }
    }
    for id in &ids {
        let result = match id.as_str() {
            "W1" => workloads::append(scale, workloads::Append::SMALL),
            "W2" => workloads::append(scale, workloads::Append::LARGE),
            "W3" => workloads::read(scale),
            "W4" => replicate::full(scale),
            "W5" => replicate::sparse(scale),
            "W6" => bee::run(scale),
            "W7" => drive::run(scale),
            "W7-MIRROR" => mirror::run(scale),
            "W7-MEM" => mirror::memory(scale),
            "S1" => dht::lookups(scale),
            "S2" => dht::requests(scale),
            "S3" => nat::connect(scale),
            "S4" => swarm_clone::run(scale),
            "S4-1K" => swarm_clone::run_shapes(scale, &[workloads::Append::SMALL]),
            "S4-64K" => swarm_clone::run_shapes(scale, &[workloads::Append::LARGE]),
            "W8" => autobase::run(scale),
            "W8-REORDER" => reorder::run(scale, None),
            "W8-REORDER-1" => reorder::run(scale, Some(1)),
            "W8-REORDER-100" => reorder::run(scale, Some(100)),
            "L1" => scale::big_core(scale),
            "L2" => soak::readers(scale),
            "L3" => scale::many_cores(scale),
            "L4" => soak::soak(scale),
            other => {
                eprintln!(
                    "hyper-bench: unknown workload {other}; runnable: {}",
                    RUNNABLE.join(" ")
                        + " W7-MEM W8-REORDER W8-REORDER-1 W8-REORDER-100 S3 S4-1K S4-64K L1 L2 L3 L4"
                );
                return ExitCode::from(2);
            }
        };
        if let Err(e) = result {
            eprintln!("hyper-bench: {id} failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
