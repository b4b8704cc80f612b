//! Driving real `hyper-cli` processes for L2 (many readers) and L4 (soak),
//! and reading what a process holds from `/proc/PID`: CPU time, resident
//! memory and open file descriptors by type.
//!
//! Shared by `hyper-bench` and the soak test of hyper-cli
//! (`cli/tests/soak.rs` includes this file), so it needs std and libc only.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Any failure here, with a message naming its subject.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// A result of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Open file descriptors of a process, by what they point at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fds {
    /// Regular files and folders (the store, logs).
    pub files: u64,
    /// TCP, UDP and Unix sockets.
    pub sockets: u64,
    /// Pipes (stdin/stdout of the process, wake-up pipes).
    pub pipes: u64,
    /// Everything else: epoll, eventfd, timerfd, /dev nodes.
    pub other: u64,
}

impl Fds {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.files + self.sockets + self.pipes + self.other
    }
}

/// What a process holds at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// CPU time used so far, user + system (utime + stime), in seconds.
    pub cpu_secs: f64,
    /// Resident memory (VmRSS), KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: Fds,
}

/// Reads `/proc/PID/{stat,status,fd}` of the live process `pid`.
pub fn usage(pid: u32) -> Result<Usage> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(proc.join("stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    let cpu_secs = cpu_of(&stat).ok_or_else(|| format!("/proc/{pid}/stat unreadable: {stat}"))?;
    let status = std::fs::read_to_string(proc.join("status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))?;
    let mut fds = Fds::default();
    let dir =
        std::fs::read_dir(proc.join("fd")).map_err(|e| format!("listing /proc/{pid}/fd: {e}"))?;
    for entry in dir.flatten() {
        // An fd closed between the listing and the read is not counted.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target.starts_with("socket:") {
            fds.sockets += 1;
        } else if target.starts_with("pipe:") {
            fds.pipes += 1;
        } else if target.starts_with('/') && !target.starts_with("/dev/") {
            fds.files += 1;
        } else {
            fds.other += 1;
        }
    }
    Ok(Usage {
        cpu_secs,
        rss_kib,
        fds,
    })
}

/// utime + stime in seconds from the text of `/proc/PID/stat` (fields 14
/// and 15, counted after the command name, which may hold spaces).
fn cpu_of(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// A child process, stopped (SIGTERM, then reaped) when dropped.
pub struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it as a user would (SIGTERM) and waits for it to end.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill sends a signal to our own child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let _ = self.child.wait();
        }
    }

    /// Waits for it to end; its stdout, an error naming it if it failed.
    pub fn finish(mut self) -> Result<String> {
        let mut out = String::new();
        if let Some(stdout) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut out)?;
        }
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("{} ended with {status}: {out}", self.what).into());
        }
        Ok(out)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The `hyper-cli` binary to run, away from any DHT (no
/// `$HYPER_BOOTSTRAP`) and the local network (`--no-local` where it
/// applies).
pub struct Cli {
    exe: PathBuf,
}

impl Cli {
    /// Runs the binary at `exe`.
    pub fn new(exe: impl Into<PathBuf>) -> Cli {
        Cli { exe: exe.into() }
    }

    fn command(&self, store: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .arg("--store")
            .arg(store)
            .args(args)
            .env_remove("HYPER_BOOTSTRAP")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `hyper-cli --store STORE ARGS` with `stdin` written to it; its
    /// stdout, or an error with the command and its stderr.
    pub fn run(&self, store: &Path, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
        let mut child = self
            .command(store, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.exe.display()))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "hyper-cli --store {} {}: {}",
                store.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(out.stdout)
    }

    /// A number field of the JSON line `core info KEY --json` prints.
    pub fn info(&self, store: &Path, key: &str, field: &str) -> Result<u64> {
        let out = self.run(store, &["core", "info", key, "--json"], b"")?;
        let text = String::from_utf8_lossy(&out);
        json_number(&text, field)
            .map(|n| n as u64)
            .ok_or_else(|| format!("no {field} in core info of {key}: {text}").into())
    }

    /// `hyper-cli seed KEY --listen 127.0.0.1:0 --no-local` once it
    /// listens, and the address it printed.
    pub fn seed(&self, store: &Path, key: &str) -> Result<(Proc, String)> {
        let mut child = self
            .command(
                store,
                &["seed", key, "--listen", "127.0.0.1:0", "--no-local"],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.exe.display()))?;
        let stdout = child.stdout.take().ok_or("seed has no stdout")?;
        let proc = Proc {
            child,
            what: format!("seed of {}", store.display()),
        };
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(line) => {
                    if let Some(addr) = line?.strip_prefix("listening on ") {
                        break addr.to_string();
                    }
                }
                None => return Err(format!("seed of {} ended early", store.display()).into()),
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok((proc, addr))
    }

    /// Starts `hyper-cli --store STORE clone KEY --connect ADDR` with
    /// `extra` arguments (stdout piped, stderr dropped).
    pub fn clone_from(&self, store: &Path, key: &str, addr: &str, extra: &[&str]) -> Result<Proc> {
        let mut args = vec!["clone", key, "--connect", addr, "--quiet"];
        args.extend_from_slice(extra);
        let child = self
            .command(store, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.exe.display()))?;
        Ok(Proc {
            child,
            what: format!("clone into {}", store.display()),
        })
    }
}

/// The number after `"field":` in a JSON line (the flat objects
/// `hyper-cli --json` prints).
pub fn json_number(text: &str, field: &str) -> Option<f64> {
    let start = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let rest = &text[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// L2's outcome: readers cloning one core from one seeder at once.
#[derive(Debug)]
pub struct Readers {
    /// The seeder's CPU time while they ran, seconds.
    pub seeder_cpu_secs: f64,
    /// Each reader's download time, as it printed it, seconds.
    pub reader_secs: Vec<f64>,
    /// From the first start to the last end, seconds.
    pub wall_secs: f64,
}

/// Seeds core `key` of the store `seeder_store` in a fresh seeder process,
/// then runs `readers` clones of it at once, each a process with its own
/// fresh store under `readers_dir`; each must end with all `blocks`.
pub fn many_readers(
    cli: &Cli,
    seeder_store: &Path,
    key: &str,
    readers_dir: &Path,
    readers: usize,
    blocks: u64,
) -> Result<Readers> {
    let (seeder, addr) = cli.seed(seeder_store, key)?;
    let before = usage(seeder.pid())?;
    let start = Instant::now();
    let procs = (0..readers)
        .map(|i| cli.clone_from(&readers_dir.join(format!("r{i}")), key, &addr, &["--json"]))
        .collect::<Result<Vec<_>>>()?;
    let mut reader_secs = Vec::with_capacity(readers);
    for proc in procs {
        let out = proc.finish()?;
        let got = json_number(&out, "blocks").unwrap_or(0.0) as u64;
        if got != blocks {
            return Err(format!("a reader ended with {got} of {blocks} blocks: {out}").into());
        }
        reader_secs.push(json_number(&out, "seconds").ok_or("no seconds in clone's JSON")?);
    }
    let wall_secs = start.elapsed().as_secs_f64();
    let after = usage(seeder.pid())?;
    seeder.stop();
    Ok(Readers {
        seeder_cpu_secs: after.cpu_secs - before.cpu_secs,
        reader_secs,
        wall_secs,
    })
}

/// The shape of an L4 soak run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// How long the appender and the clones run.
    pub run: Duration,
    /// Each clone is stopped and started again this often (the clones
    /// spread evenly over the period).
    pub reconnect_every: Duration,
    /// The seeder is sampled this often.
    pub sample_every: Duration,
    /// Lines appended (each a block, through the seeder's store socket)
    /// this often, by a `core append` process.
    pub append_every: Duration,
    /// Blocks per append.
    pub blocks_per_append: usize,
    /// Live clones.
    pub clones: usize,
    /// How long the clones get, after the last append, to catch up.
    pub catch_up: Duration,
}

/// One sample of the seeder.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the seeder started serving.
    pub at: f64,
    /// What it held then.
    pub usage: Usage,
}

/// L4's outcome.
#[derive(Debug)]
pub struct Soak {
    /// The seeder, sampled every `Plan::sample_every`.
    pub samples: Vec<Sample>,
    /// Clone restarts.
    pub reconnects: u64,
    /// `core append` runs.
    pub appends: u64,
    /// The core's length at the end.
    pub length: u64,
    /// Clones whose `core cat` at the end equals the seeder's, byte for
    /// byte.
    pub identical: usize,
}

/// Name of the soak's core in the seeder's store.
const CORE: &str = "data";

/// Runs L4 in `dir`: a seeder of a core that `core append` processes grow
/// through the seeder's store socket, and `plan.clones` live clones
/// (`clone --live`), each stopped and started again every
/// `plan.reconnect_every`. At the end every clone must hold the seeder's
/// length (else an error naming it) and is compared byte for byte.
pub fn soak(cli: &Cli, dir: &Path, plan: &Plan) -> Result<Soak> {
    let seeder_store = dir.join("seeder");
    let key =
        String::from_utf8(cli.run(&seeder_store, &["core", "create", "--name", CORE], b"")?)?
            .trim()
            .to_string();
    let mut next_block = 0u64;
    let mut append = |n: usize| -> Result<()> {
        let lines: String = (0..n)
            .map(|_| {
                next_block += 1;
                format!("block {next_block:08} of the soak, padded to one line of text\n")
            })
            .collect();
        cli.run(&seeder_store, &["core", "append", CORE], lines.as_bytes())
            .map(drop)
    };
    append(100)?;
    let (seeder, addr) = cli.seed(&seeder_store, CORE)?;
    let clone_store = |i: usize| dir.join(format!("clone{i}"));
    let start_clone = |i: usize| cli.clone_from(&clone_store(i), &key, &addr, &["--live"]);
    let mut clones = (0..plan.clones)
        .map(|i| start_clone(i).map(Some))
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let spread = plan.reconnect_every / plan.clones.max(1) as u32;
    let mut next_restart: Vec<Duration> = (0..plan.clones)
        .map(|i| plan.reconnect_every + spread * i as u32)
        .collect();
    let (mut next_sample, mut next_append) = (Duration::ZERO, Duration::ZERO);
    let mut outcome = Soak {
        samples: Vec::new(),
        reconnects: 0,
        appends: 0,
        length: 0,
        identical: 0,
    };
    loop {
        let now = started.elapsed();
        if now >= plan.run {
            break;
        }
        if now >= next_sample {
            outcome.samples.push(Sample {
                at: now.as_secs_f64(),
                usage: usage(seeder.pid())?,
            });
            next_sample += plan.sample_every;
        }
        if now >= next_append {
            append(plan.blocks_per_append)?;
            outcome.appends += 1;
            next_append += plan.append_every;
        }
        for (i, at) in next_restart.iter_mut().enumerate() {
            if now >= *at {
                // The old process lets go of its store before the new
                // one opens it.
                if let Some(old) = clones[i].take() {
                    old.stop();
                }
                clones[i] = Some(start_clone(i)?);
                outcome.reconnects += 1;
                *at += plan.reconnect_every;
            }
        }
        let wake = next_restart
            .iter()
            .copied()
            .chain([next_sample, next_append, plan.run])
            .min()
            .unwrap_or(plan.run);
        std::thread::sleep(wake.saturating_sub(started.elapsed()));
    }
    outcome.length = cli.info(&seeder_store, CORE, "length")?;
    let deadline = Instant::now() + plan.catch_up;
    for i in 0..plan.clones {
        while cli
            .info(&clone_store(i), &key, "blocks_stored")
            .unwrap_or(0)
            < outcome.length
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "clone {i} ({}) did not reach length {} within {:?}",
                    clone_store(i).display(),
                    outcome.length,
                    plan.catch_up
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let want = cli.run(&seeder_store, &["core", "cat", CORE], b"")?;
    for i in 0..plan.clones {
        if cli.run(&clone_store(i), &["core", "cat", &key], b"")? == want {
            outcome.identical += 1;
        }
    }
    drop(clones);
    seeder.stop();
    Ok(outcome)
}

/// How a figure of the seeder moved after warm-up.
#[derive(Clone, Copy, Debug)]
pub struct Growth {
    /// Mean over the first quarter of the samples after warm-up.
    pub first: f64,
    /// Mean over the last quarter.
    pub last: f64,
    /// The highest sample after warm-up.
    pub peak: f64,
}

impl Growth {
    /// The figures of `samples` taken at or after `warmup` seconds; none
    /// with fewer than 4 such samples.
    pub fn of(samples: &[Sample], warmup: f64, figure: impl Fn(&Usage) -> f64) -> Option<Growth> {
        let after: Vec<f64> = samples
            .iter()
            .filter(|s| s.at >= warmup)
            .map(|s| figure(&s.usage))
            .collect();
        let quarter = after.len() / 4;
        if quarter == 0 {
            return None;
        }
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        Some(Growth {
            first: mean(&after[..quarter]),
            last: mean(&after[after.len() - quarter..]),
            peak: after.iter().copied().fold(f64::MIN, f64::max),
        })
    }

    /// The last quarter's mean over the first's, minus one (0.1 is 10%
    /// growth).
    pub fn drift(&self) -> f64 {
        self.last / self.first - 1.0
    }

    /// The highest sample over the first quarter's mean, minus one.
    pub fn peak_rise(&self) -> f64 {
        self.peak / self.first - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        // Fields 14 and 15 (utime, stime) are 250 and 50 ticks.
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        assert_eq!(cpu_of(stat), Some(300.0 / ticks));
        assert_eq!(cpu_of("4242 (x) S 1 2"), None, "too few fields");
        assert_eq!(cpu_of("no parenthesis at all"), None);
    }

    #[test]
    fn this_process_is_read_from_proc_and_an_open_file_is_counted() {
        let me = std::process::id();
        let before = usage(me).expect("own /proc");
        assert!(before.rss_kib > 0);
        let file = tempfile::tempfile().expect("a file");
        let after = usage(me).expect("own /proc");
        assert!(
            after.fds.files > before.fds.files,
            "{before:?} -> {after:?}"
        );
        drop(file);
        let err = usage(u32::MAX).expect_err("no such process");
        assert!(err.to_string().contains(&u32::MAX.to_string()), "{err}");
    }

    #[test]
    fn json_numbers_are_found_by_field_name() {
        let line = r#"{"key":"ab","blocks":100000,"seconds":4.75,"fork":0}"#;
        assert_eq!(json_number(line, "blocks"), Some(100000.0));
        assert_eq!(json_number(line, "seconds"), Some(4.75));
        assert_eq!(json_number(line, "fork"), Some(0.0));
        assert_eq!(json_number(line, "key"), None, "not a number");
        assert_eq!(json_number(line, "length"), None);
    }

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                at: i as f64,
                usage: Usage {
                    rss_kib: v as u64,
                    ..Usage::default()
                },
            })
            .collect()
    }

    #[test]
    fn growth_compares_the_last_quarter_after_warm_up_with_the_first() {
        let rss = |u: &Usage| u.rss_kib as f64;
        // Warm-up (the first 4 samples) climbs; after it the figure is flat
        // but for one spike.
        let flat = samples(&[1.0, 50.0, 90.0, 99.0, 100.0, 100.0, 130.0, 100.0]);
        let g = Growth::of(&flat, 4.0, rss).expect("4 samples after warm-up");
        assert_eq!((g.first, g.last, g.peak), (100.0, 100.0, 130.0));
        assert_eq!(g.drift(), 0.0);
        assert!((g.peak_rise() - 0.3).abs() < 1e-9);
        // A steady leak: 100 -> 200 over 8 samples.
        let leak: Vec<f64> = (0..8).map(|i| 100.0 + 100.0 * i as f64 / 7.0).collect();
        let g = Growth::of(&samples(&leak), 0.0, rss).expect("8 samples");
        assert!(g.drift() > 0.5, "{g:?}");
        assert!(
            Growth::of(&flat, 5.0, rss).is_none(),
            "3 samples are too few"
        );
    }
}
