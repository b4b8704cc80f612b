//! `hyper-cli bee ls/history --connect` of a whole bee, against a seeding
//! process, print exactly what the local reads print, and take at most 3x
//! as long as `clone` followed by the local read (real processes, TCP on
//! loopback).

use std::io::Write;
use std::time::Instant;

mod common;

use common::{cli, ok};

#[test]
fn a_remote_ls_and_history_match_the_local_ones_within_3x_of_a_clone() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let writer = dirs[0].path();
    let mut lines = Vec::new();
    for i in 0..5000u32 {
        let k = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        writeln!(lines, "{k:016x} value {i}").expect("write");
    }
    ok(cli(writer, &["bee", "import", "db"], Some(&lines)));
    ok(cli(
        writer,
        &["bee", "del", "db", &format!("{:016x}", 0)],
        None,
    ));
    let local_ls = ok(cli(writer, &["bee", "ls", "db"], None));
    let local_history = ok(cli(writer, &["bee", "history", "db"], None));
    assert_eq!(local_ls.lines().count(), 4999);
    let key = ok(cli(writer, &["core", "create", "--name", "db"], None));
    let key = key.trim();
    let seeder = common::seed(writer, &[key, "--listen", "127.0.0.1:0"]);
    let addr = seeder.addr.clone();

    let start = Instant::now();
    let ls = ok(cli(
        dirs[1].path(),
        &["bee", "ls", key, "--connect", &addr],
        None,
    ));
    let ls_secs = start.elapsed().as_secs_f64();
    assert_eq!(ls, local_ls);

    let start = Instant::now();
    let history = ok(cli(
        dirs[2].path(),
        &["bee", "history", key, "--connect", &addr],
        None,
    ));
    let history_secs = start.elapsed().as_secs_f64();
    assert_eq!(history, local_history);

    let start = Instant::now();
    ok(cli(
        dirs[3].path(),
        &["clone", key, "--connect", &addr],
        None,
    ));
    let cloned = start.elapsed().as_secs_f64();
    let start = Instant::now();
    assert_eq!(ok(cli(dirs[3].path(), &["bee", "ls", key], None)), local_ls);
    let clone_ls = cloned + start.elapsed().as_secs_f64();
    let start = Instant::now();
    assert_eq!(
        ok(cli(dirs[3].path(), &["bee", "history", key], None)),
        local_history
    );
    let clone_history = cloned + start.elapsed().as_secs_f64();
    eprintln!(
        "5,000 keys: remote ls {ls_secs:.2} s, history {history_secs:.2} s; \
         clone then ls {clone_ls:.2} s, then history {clone_history:.2} s"
    );
    // Process start-up is in both; allow it once more.
    assert!(
        ls_secs <= 3.0 * clone_ls + 0.3,
        "ls {ls_secs} vs {clone_ls}"
    );
    assert!(
        history_secs <= 3.0 * clone_history + 0.3,
        "history {history_secs} vs {clone_history}"
    );
    drop(seeder);
}
