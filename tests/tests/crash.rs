//! Crash test: a child process appends batches in a loop and is killed with
//! SIGKILL at random moments; after each kill the core reopens, every block
//! verifies against the signed root, and every batch whose append returned
//! is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hyper_core::{ProofRequest, SignedState, Store, UpgradeRequest, Verifier};
use rand::{Rng, SeedableRng};

const KILLS: usize = 24;

#[test]
fn sigkill_never_loses_a_returned_append_or_leaves_a_torn_core() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut confirmed = 0u64;
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn crash-writer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(n) = line.trim().parse::<u64>()
                    && tx.send(n).is_err()
                {
                    break;
                }
            }
        });
        // Wait for the first confirmed batch, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child appended");
        confirmed = confirmed.max(first);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader thread");
        while let Ok(n) = rx.try_recv() {
            confirmed = confirmed.max(n);
        }

        let store = Store::open(dir.path()).expect("reopen after SIGKILL");
        let core = store.named("crash").expect("core");
        let info = core.info().expect("info");
        assert!(
            info.length >= confirmed,
            "round {round}: length {} lost confirmed appends up to {confirmed} (seed {seed})",
            info.length
        );
        assert_eq!(
            info.length % 37,
            0,
            "round {round}: half a batch is visible (seed {seed})"
        );
        eprintln!("crash: checking round {round} (replay with CRASH_SEED={seed})");
        hyper_tests::assert_blocks(&core, hyper_tests::crash_block);
        // The stored roots carry a valid signature: a fresh verifier that
        // knows only the key accepts the upgrade built from them.
        let proof = core
            .proof(&ProofRequest {
                upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
                manifest: true,
                ..Default::default()
            })
            .expect("proof");
        let mut v = Verifier::new(core.key(), None, SignedState::empty(), NoNodes);
        if info.length > 0 {
            v.verify(&proof).expect("stored signed state verifies");
        }
        confirmed = info.length;
    }
    assert!(confirmed > 0);
}

struct NoNodes;

impl hyper_core::NodeSource for NoNodes {
    fn node(&self, _: u64) -> hyper_core::Result<Option<hyper_core::Node>> {
        Ok(None)
    }
}
