//! Day-two commands between real `hyper-cli` processes: an encrypted core
//! served by a blind seeder in its own process to a reader that decrypts,
//! moving a writer with export-key / import-key, clear and purge.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::ok;

fn run(store: &Path, args: &[&str], stdin: &[u8]) -> Output {
    common::cli(store, args, Some(stdin))
}

/// A failed command's one-line error.
fn err(out: Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stderr).expect("utf-8");
    assert!(text.starts_with("hyper-cli: "), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

/// `args` with `--encryption-key SECRET` after them.
fn keyed<'a>(args: &[&'a str], secret: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--encryption-key", secret]);
    all
}

/// Three stores, each in its own tempdir.
fn three_dirs() -> [tempfile::TempDir; 3] {
    std::array::from_fn(|_| tempfile::tempdir().expect("tempdir"))
}

fn seed(store: &Path, key: &str) -> common::Seeder {
    common::seed(store, &[key, "--listen", "127.0.0.1:0"])
}

fn clone(store: &Path, key: &str, addr: &str) {
    ok(run(store, &["clone", key, "--connect", addr], b""));
}

/// The value after `label` on its line of `text`.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} in {text}"))
        .trim()
        .to_string()
}

#[test]
fn an_encrypted_core_through_a_blind_seeder_process() {
    let [a, b, c] = three_dirs();
    let created = ok(run(
        a.path(),
        &["core", "create", "--name", "private", "--encrypted"],
        b"",
    ));
    let key = field(&created, "key:");
    let secret = field(&created, "encryption key:");
    assert_eq!((key.len(), secret.len()), (64, 64));
    let lines: Vec<String> = (0..200).map(|i| format!("secret line {i:04}\n")).collect();
    let plaintext = lines.concat();
    ok(run(
        a.path(),
        &["core", "append", &key, "--encryption-key", &secret],
        plaintext.as_bytes(),
    ));
    // The writer's own store refuses a read without the key.
    let e = err(run(a.path(), &["core", "cat", &key], b""));
    assert!(e.contains("encrypted"), "{e}");
    assert_eq!(
        ok(run(
            a.path(),
            &["core", "cat", &key, "--encryption-key", &secret],
            b""
        )),
        plaintext
    );

    // B is a blind seeder: it clones and serves with the core key only.
    let seeder_a = seed(a.path(), "private");
    clone(b.path(), &key, &seeder_a.addr);
    drop(seeder_a);
    let stored = run(b.path(), &["core", "cat", &key], b"");
    assert!(stored.status.success());
    assert!(stored.stdout.len() > plaintext.len());
    assert!(
        !stored.stdout.windows(11).any(|w| w == b"secret line"),
        "the blind seeder holds plaintext"
    );
    let seeder_b = seed(b.path(), &key);

    // D reads one block sparsely from the blind seeder with the key; a
    // wrong key fetches and verifies the ciphertext but refuses it.
    let d = tempfile::tempdir().expect("tempdir");
    let wrong = "ab".repeat(32);
    let get = |index: &str, secret: &str| {
        let args = ["core", "get", &key, index, "--connect", &seeder_b.addr];
        run(d.path(), &keyed(&args, secret), b"")
    };
    assert_eq!(ok(get("9", &secret)), lines[9]);
    let e = err(get("10", &wrong));
    assert!(e.contains("does not decrypt"), "{e}");
    assert_eq!(ok(get("10", &secret)), lines[10]);

    // C clones from the blind seeder and reads with the key, from the flag
    // or from $HYPER_ENCRYPTION_KEY.
    clone(c.path(), &key, &seeder_b.addr);
    drop(seeder_b);
    assert_eq!(
        ok(run(
            c.path(),
            &["core", "cat", &key, "--encryption-key", &secret],
            b""
        )),
        plaintext
    );
    let from_env = Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
        .arg("--store")
        .arg(c.path())
        .args(["core", "get", &key, "7"])
        .env("HYPER_ENCRYPTION_KEY", &secret)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(ok(from_env), lines[7]);
    let e = err(run(
        c.path(),
        &["core", "get", &key, "7", "--encryption-key", &wrong],
        b"",
    ));
    assert!(e.contains("does not decrypt"), "{e}");
    let e = err(run(
        c.path(),
        &["core", "get", &key, "7", "--encryption-key", "xyz"],
        b"",
    ));
    assert!(e.contains("encryption key"), "{e}");
}

#[test]
fn a_writer_moves_with_export_key_and_import_key() {
    let [a, b, c] = three_dirs();
    let key = ok(run(a.path(), &["core", "create", "--name", "log"], b""));
    let key = key.trim().to_string();
    ok(run(
        a.path(),
        &["core", "append", &key, "one", "two", "three"],
        b"",
    ));
    let secret = ok(run(a.path(), &["core", "export-key", &key], b""));
    assert_eq!(secret.trim().len(), 64);
    // Neither the info nor the list of the writer shows the secret.
    let info = ok(run(a.path(), &["core", "info", &key], b""));
    let list = ok(run(a.path(), &["core", "list"], b""));
    assert!(!info.contains(secret.trim()) && !list.contains(secret.trim()));

    let seeder_a = seed(a.path(), "log");
    clone(b.path(), &key, &seeder_a.addr);
    drop(seeder_a);
    let e = err(run(b.path(), &["core", "append", &key, "four"], b""));
    assert!(e.contains("not writable"), "{e}");
    let imported = ok(run(b.path(), &["core", "import-key"], secret.as_bytes()));
    assert_eq!(imported.trim(), format!("{key}: writable here, length 3"));
    ok(run(b.path(), &["core", "append", &key, "four"], b""));

    let seeder_b = seed(b.path(), &key);
    clone(c.path(), &key, &seeder_b.addr);
    drop(seeder_b);
    assert_eq!(
        ok(run(c.path(), &["core", "cat", &key], b"")),
        "onetwothreefour"
    );
    let e = err(run(c.path(), &["core", "import-key", "nothex"], b""));
    assert!(e.contains("32 bytes of hex"), "{e}");
}

#[test]
fn clear_and_purge_free_space() {
    let dir = tempfile::tempdir().expect("store");
    let key = ok(run(dir.path(), &["core", "create"], b""));
    let key = key.trim().to_string();
    let line = format!("{}\n", "x".repeat(999));
    ok(run(
        dir.path(),
        &["core", "append", &key],
        line.repeat(400).as_bytes(),
    ));
    let keep = ok(run(dir.path(), &["core", "create", "--name", "keep"], b""));
    ok(run(dir.path(), &["core", "append", "keep", "kept"], b""));
    let disk = |text: &str| {
        field(text, "bytes on disk:")
            .parse::<u64>()
            .expect("number")
    };
    let before = disk(&ok(run(dir.path(), &["core", "info", &key], b"")));

    let out = ok(run(dir.path(), &["core", "clear", &key, "0", "300"], b""));
    assert_eq!(out.trim(), "cleared blocks 0..300: 300000 bytes freed");
    let info = ok(run(dir.path(), &["core", "info", &key], b""));
    assert!(disk(&info) < before - 290_000, "{before} -> {info}");
    assert_eq!(field(&info, "blocks stored:"), "100");
    let e = err(run(dir.path(), &["core", "get", &key, "10"], b""));
    assert!(e.contains("is not stored here"), "{e}");

    let out = ok(run(dir.path(), &["core", "purge", &key], b""));
    let sizes: Vec<u64> = out
        .trim()
        .rsplit_once("store file ")
        .expect("sizes")
        .1
        .trim_end_matches(" bytes")
        .split(" -> ")
        .map(|n| n.parse().expect("number"))
        .collect();
    assert!(sizes[1] < sizes[0], "{out}");
    let list = ok(run(dir.path(), &["core", "list"], b""));
    assert!(!list.contains(&key) && list.contains(keep.trim()), "{list}");
    let e = err(run(dir.path(), &["core", "info", &key], b""));
    assert!(e.contains("no core"), "{e}");
}

#[test]
fn an_encrypted_writer_moves_and_keeps_refusing_plain_appends() {
    let [a, b, _c] = three_dirs();
    let created = ok(run(a.path(), &["core", "create", "--encrypted"], b""));
    let (key, secret) = (field(&created, "key:"), field(&created, "encryption key:"));
    let args = keyed(&["core", "append", &key, "one", "two"], &secret);
    ok(run(a.path(), &args, b""));
    let pair = ok(run(a.path(), &["core", "export-key", &key], b""));
    let seeder = seed(a.path(), &key);
    clone(b.path(), &key, &seeder.addr);
    drop(seeder);
    let args = keyed(&["core", "import-key"], &secret);
    let out = ok(run(b.path(), &args, pair.as_bytes()));
    assert_eq!(out.trim(), format!("{key}: writable here, length 2"));
    let e = err(run(b.path(), &["core", "append", &key, "leak"], b""));
    assert!(e.contains("encrypted"), "{e}");
    let args = keyed(&["core", "append", &key, "three"], &secret);
    ok(run(b.path(), &args, b""));
    let args = keyed(&["core", "cat", &key], &secret);
    assert_eq!(ok(run(b.path(), &args, b"")), "onetwothree");
}

/// `seed` keeps one identity per store across runs; another store has
/// another.
#[test]
fn seed_keeps_one_identity_per_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = |store: &Path| {
        let _ = run(store, &["core", "create", "--name", "x"], b"");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyper-cli"))
            .arg("--store")
            .arg(store)
            .args(["seed", "x", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("seed");
        let stdout = child.stdout.take().expect("stdout");
        let line = std::io::BufRead::lines(std::io::BufReader::new(stdout))
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("identity ").map(str::to_string))
            .expect("an identity line");
        let _ = child.kill();
        let _ = child.wait();
        line
    };
    let a = dir.path().join("a");
    let first = identity(&a);
    assert_eq!(
        identity(&a),
        first,
        "a second run of seed kept its identity"
    );
    assert_ne!(identity(&dir.path().join("b")), first);
}
