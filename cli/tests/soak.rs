//! L4 of issue 15, the short run: two minutes of a real `hyper-cli seed`
//! whose core `core append` processes grow through its store socket while
//! three `clone --live` processes are stopped and started again every 20
//! s. The seeder's resident memory and open file descriptors must stay
//! flat after warm-up, and every clone must end byte-identical to it.
//! (`hyper-bench L4` is the 30-minute run, with the same driver.)

#[allow(dead_code)] // L2's half of the driver is the bench's
#[path = "../../benches/src/soak/procs.rs"]
mod procs;

use std::time::Duration;

use procs::{Cli, Growth, Plan};

/// Samples before this many seconds are warm-up: the seeder's allocator
/// and the redb cache settle in the first connections and appends.
const WARMUP: f64 = 30.0;
/// Growth allowed from the first quarter of the samples after warm-up to
/// the last (means of each). Chosen from measurements, see the test.
const RSS_MARGIN: f64 = 0.10;
const FDS_MARGIN: f64 = 0.10;

#[test]
fn a_seeder_stays_flat_through_appends_and_reconnecting_live_clones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = Plan {
        run: Duration::from_secs(120),
        reconnect_every: Duration::from_secs(20),
        sample_every: Duration::from_secs(1),
        append_every: Duration::from_millis(500),
        blocks_per_append: 10,
        clones: 3,
        catch_up: Duration::from_secs(60),
    };
    let cli = Cli::new(env!("CARGO_BIN_EXE_hyper-cli"));
    let run = procs::soak(&cli, dir.path(), &plan).expect("the soak ran");
    // Every clone went away and came back 5 or 6 times.
    assert!(run.reconnects >= 15, "{} reconnects", run.reconnects);
    assert_eq!(run.length, 100 + 10 * run.appends, "every append landed");
    assert_eq!(run.identical, 3, "clones equal to the seeder at the end");
    let growth = |name: &str, figure: fn(&procs::Usage) -> f64, margin: f64| {
        let g = Growth::of(&run.samples, WARMUP, figure).expect("samples after warm-up");
        let trace: Vec<String> = run
            .samples
            .iter()
            .map(|s| format!("{:.0}s {:.0}", s.at, figure(&s.usage)))
            .collect();
        eprintln!(
            "seeder {name}: first {:.1}, last {:.1}, peak {:.1}: {:+.1}%",
            g.first,
            g.last,
            g.peak,
            g.drift() * 100.0
        );
        assert!(
            g.drift() <= margin,
            "the seeder's {name} grew {:.1}% (first {:.1}, last {:.1}): {trace:?}",
            g.drift() * 100.0,
            g.first,
            g.last
        );
    };
    growth("resident memory (KiB)", |u| u.rss_kib as f64, RSS_MARGIN);
    growth("open fds", |u| u.fds.total() as f64, FDS_MARGIN);
}
