//! Keys, values and blocks that are not UTF-8 go in and come out unchanged
//! (`--hex`, `--base64`, or raw bytes), and `bee import` is all or nothing.

mod common;

use common::{cli, ok};

/// The stdout bytes of a command that must have succeeded.
fn bytes(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn bee_keys_and_values_that_are_not_text_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(cli(
        d,
        &["bee", "put", "db", "--hex", "00ff", "fe0a0d"],
        None,
    ));
    ok(cli(
        d,
        &["bee", "put", "db", "--base64", "AQI=", "//8="],
        None,
    ));
    ok(cli(d, &["bee", "put", "db", "text", "plain"], None));
    // Raw: the value's bytes, and nothing else.
    assert_eq!(
        bytes(cli(d, &["bee", "get", "db", "--hex", "00ff"], None)),
        b"fe0a0d\n"
    );
    assert_eq!(bytes(cli(d, &["bee", "get", "db", "text"], None)), b"plain");
    assert_eq!(
        bytes(cli(d, &["bee", "get", "db", "text", "--newline"], None)),
        b"plain\n"
    );
    assert_eq!(
        ok(cli(d, &["bee", "get", "db", "--base64", "AQI="], None)),
        "//8=\n"
    );
    assert_eq!(
        ok(cli(d, &["bee", "ls", "db", "--hex"], None)),
        "00ff fe0a0d\n0102 ffff\n74657874 706c61696e\n"
    );
    let raw = bytes(cli(d, &["bee", "ls", "db", "--lt", "text"], None));
    assert_eq!(raw, b"\x00\xff \xfe\n\r\n\x01\x02 \xff\xff\n");
    let json = ok(cli(
        d,
        &["bee", "ls", "db", "--json", "--base64", "--limit", "1"],
        None,
    ));
    assert_eq!(json, "{\"key\":\"AP8=\",\"value\":\"/goN\"}\n");
    // JSON of bytes that are not text, with no encoding: a clear error.
    let out = cli(d, &["bee", "ls", "db", "--json"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key 00ff (hex)") && err.contains("--hex"),
        "{err}"
    );
    let history = ok(cli(d, &["bee", "history", "db", "--hex"], None));
    assert_eq!(
        history,
        "1 put 00ff fe0a0d\n2 put 0102 ffff\n3 put 74657874 706c61696e\n"
    );
    ok(cli(d, &["bee", "del", "db", "--hex", "0102"], None));
    let out = cli(d, &["bee", "get", "db", "--hex", "0102"], None);
    assert!(!out.status.success());
    let out = cli(d, &["bee", "put", "db", "--hex", "zz", "00"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("KEY is not hex"),
        "{err}"
    );
}

#[test]
fn import_reports_the_bad_line_and_commits_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(cli(d, &["bee", "put", "db", "before", "1"], None));
    let mut input: Vec<u8> = (0..2500)
        .flat_map(|i| format!("k{i} v{i}\n").into_bytes())
        .collect();
    input.extend_from_slice(b"no-space-here\nlast 1\n");
    let out = cli(d, &["bee", "import", "db"], Some(&input));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2501 of the input") && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(ok(cli(d, &["bee", "ls", "db"], None)), "before 1\n");
    // Encoded lines; binary keys and values.
    let out = cli(
        d,
        &["bee", "import", "db", "--hex"],
        Some(b"00 ff\n0a0d 00\n"),
    );
    assert!(ok(out).starts_with("imported 2 entries"));
    assert_eq!(
        bytes(cli(d, &["bee", "get", "db", "--hex", "0a0d"], None)),
        b"00\n"
    );
    let out = cli(
        d,
        &["bee", "import", "db", "--hex"],
        Some(b"00 ff\n0g 00\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 2 of the input"),
        "{err}"
    );
}

#[test]
fn core_blocks_that_are_not_text_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(cli(d, &["core", "create", "--name", "bin"], None));
    ok(cli(
        d,
        &["core", "append", "bin", "--hex", "00ff", ""],
        None,
    ));
    ok(cli(
        d,
        &["core", "append", "bin", "--base64"],
        Some(b"AAEC\r\n/w==\n"),
    ));
    assert_eq!(
        bytes(cli(d, &["core", "get", "bin", "0"], None)),
        b"\x00\xff"
    );
    assert_eq!(bytes(cli(d, &["core", "get", "bin", "1"], None)), b"");
    assert_eq!(
        ok(cli(d, &["core", "get", "bin", "2", "--hex"], None)),
        "000102\n"
    );
    assert_eq!(
        ok(cli(d, &["core", "get", "bin", "3", "--base64"], None)),
        "/w==\n"
    );
    assert_eq!(
        ok(cli(d, &["core", "cat", "bin", "--hex"], None)),
        "00ff\n\n000102\nff\n"
    );
    // A bad line names itself and says what went in before it.
    let out = cli(
        d,
        &["core", "append", "bin", "--hex"],
        Some(b"01\nxyz\n02\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 2 is not hex"),
        "{err}"
    );
    assert!(err.contains("the 1 lines before it were appended"), "{err}");
    assert_eq!(
        ok(cli(d, &["core", "get", "bin", "4", "--hex"], None)),
        "01\n"
    );
}
