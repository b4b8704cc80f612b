//! A full disk: appends fail with a clear error, the store refuses further
//! writes until reopened, and reopening finds every append that returned.
//! Uses a real 4 MiB tmpfs mounted by the test (needs root, as in CI); where
//! mounting is not allowed the test says so and checks nothing.

use std::process::Command;

use hyper_core::{Error, Store};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn block(i: u64) -> Vec<u8> {
    (0..16_384u64).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("full_disk: cannot mount a tmpfs here (not root?); nothing checked");
        return;
    }
    let _mount = Mount(dir.path().to_path_buf());
    let store_dir = dir.path().join("store");

    let mut confirmed = 0u64;
    let failure = {
        let store = Store::open(&store_dir).expect("open");
        let core = store.named("full").expect("core");
        loop {
            let batch: Vec<Vec<u8>> = (confirmed..confirmed + 8).map(block).collect();
            match core.append_batch(&batch) {
                Ok(out) => confirmed = out.length,
                Err(e) => {
                    // The handle keeps refusing writes after the failure.
                    let again = core.append(b"x");
                    eprintln!("full_disk: first error {e}; then {again:?}");
                    assert!(again.is_err(), "a write after the failure succeeded");
                    assert_eq!(core.info().expect("info").length, confirmed);
                    break e;
                }
            }
            assert!(confirmed < 10_000, "the 4 MiB disk never filled");
        }
    };
    assert!(
        matches!(failure, Error::Storage(_) | Error::Io(_)),
        "a full disk must be a storage error, got {failure:?}"
    );
    assert!(!failure.to_string().is_empty());
    assert!(confirmed > 0, "nothing fitted before the disk filled");

    // Free nothing, reopen: every confirmed append is there and verifies.
    let store = Store::open(&store_dir).expect("reopen a full store");
    let core = store.named("full").expect("core");
    let info = core.info().expect("info");
    assert!(
        info.length >= confirmed,
        "lost appends: {} < {confirmed}",
        info.length
    );
    hyper_tests::assert_blocks(&core, block);
}
