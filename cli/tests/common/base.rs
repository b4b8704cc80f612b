//! Helpers of the `hyper-cli base` tests.

use std::path::Path;

use super::{cli, ok, seed};

/// The rest of the line of `out` that starts with `name`, trimmed.
pub fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name:?} line in {out:?}"))
}

/// `base sync BASE` into the store `to` from the store `from`, which
/// seeds while it runs.
pub fn sync(from: &Path, to: &Path, base: &str) {
    let seeder = seed(from, &["--listen", "127.0.0.1:0"]);
    ok(cli(
        to,
        &["base", "sync", base, "--connect", &seeder.addr],
        None,
    ));
}

/// `base info BASE --json` in `store`.
pub fn info(store: &Path, base: &str) -> serde_json::Value {
    serde_json::from_str(&ok(cli(store, &["base", "info", base, "--json"], None))).expect("json")
}

/// A base created in `a` as `name`, joined by `b` and `b` added as a
/// writer by `a`: (base key, a's writer key, b's writer key).
pub fn two_writers(a: &Path, b: &Path, name: &str) -> (String, String, String) {
    let created = ok(cli(a, &["base", "create", "--name", name], None));
    let base = field(&created, "base").to_string();
    let a_writer = field(&created, "writer").to_string();
    sync(a, b, &base);
    let b_writer = field(&ok(cli(b, &["base", "join", &base], None)), "writer").to_string();
    ok(cli(a, &["base", "add-writer", name, &b_writer], None));
    (base, a_writer, b_writer)
}
