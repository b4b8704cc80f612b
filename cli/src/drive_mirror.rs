//! `hyper-cli drive mirror`: what each side names (a folder, a drive of
//! the store, or a peer's drive), the plan, its report (lines or JSON, a
//! bar on a terminal) and the live mode that follows a source folder.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use hyper_core::{CoreKey, Store};
use hyper_drive::mirror::{self, MirrorOptions, Op, Plan, Side};
use hyper_drive::{Drive, Fetch, Folder};

use crate::CliError;
use crate::drive_cmd::{ReadFrom, local_drive, with_drive};

/// A mirror side as the user named it.
enum Named {
    Drive(Drive),
    Remote(CoreKey),
    Folder(Folder),
}

/// Which end of a mirror a side is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Copied from; `remote` when read from a peer (`--connect`).
    Source { remote: bool },
    /// Copied to.
    Destination,
}

/// Where mirror sides are looked up: the store's drives, if it has a store.
#[derive(Clone, Copy)]
pub(crate) struct Sides<'a> {
    /// The store's folder (named when a side needs the store).
    pub(crate) dir: &'a Path,
    /// The store, if there is one.
    pub(crate) store: Option<&'a Store>,
}

impl<'a> Sides<'a> {
    /// The store, for a side that must be a drive in it.
    fn store(self) -> Result<&'a Store, CliError> {
        self.store
            .ok_or_else(|| CliError::NoStore(self.dir.to_path_buf()))
    }

    /// The side `arg` names: a path with '/' or starting with '.' is a
    /// folder; a key is a peer's drive for a source read with `--connect`;
    /// else a drive of the store, or a folder if the store has none of that
    /// name. Without a store, a source that is no folder here is an error
    /// naming the store (it may have meant a drive), never an empty mirror.
    fn side(self, arg: &str, role: Role) -> Result<Named, CliError> {
        if arg.contains('/') || arg.starts_with('.') {
            return Ok(Named::Folder(Folder::new(arg)));
        }
        if role == (Role::Source { remote: true })
            && let Ok(key) = arg.parse::<CoreKey>()
        {
            return Ok(Named::Remote(key));
        }
        let Some(store) = self.store else {
            if role != Role::Destination && !Path::new(arg).exists() {
                return Err(CliError::NoStore(self.dir.to_path_buf()));
            }
            return Ok(Named::Folder(Folder::new(arg)));
        };
        match local_drive(store, arg) {
            Ok(d) => Ok(Named::Drive(d)),
            Err(CliError::NoSuchCore(_)) => Ok(Named::Folder(Folder::new(arg))),
            Err(e) => Err(e),
        }
    }
}

/// A local side to mirror from or to.
fn dest_side(n: &Named) -> Result<Side<'_>, CliError> {
    match n {
        Named::Drive(d) => Ok(Side::Drive(d)),
        Named::Folder(f) => Ok(Side::Folder(f)),
        Named::Remote(k) => Err(CliError::NoSuchCore(k.to_string())),
    }
}

/// `drive mirror SRC DST`: plans and applies (or with `--dry-run` only
/// reports) the mirror, then with `--live` again after each burst of
/// changes in the source folder, until stopped.
pub(crate) fn mirror_cmd(
    sides: Sides<'_>,
    src: &str,
    dst: &str,
    options: &MirrorOptions,
    json: bool,
    live: bool,
    read: &ReadFrom,
) -> Result<(), CliError> {
    let dst = sides.side(dst, Role::Destination)?;
    let src_named = sides.side(
        src,
        Role::Source {
            remote: read.remote(),
        },
    )?;
    if live && !matches!(src_named, Named::Folder(_)) {
        return Err(CliError::LiveSource);
    }
    let progress = std::io::stderr().is_terminal() && !json;
    let report = move |plan: &Plan, source: Side<'_>, dest: Side<'_>| -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        // A bar of the bytes copied, on a terminal; cleared when done.
        let bar = progress.then(crate::progress::bytes_bar);
        for path in &plan.skipped {
            eprintln!(
                "hyper-cli: skipped {} (its name is not UTF-8)",
                path.display()
            );
        }
        let summary = mirror::apply(plan, source, dest, options, |e| {
            let a = &e.action;
            let line = if json {
                serde_json::json!({
                    "op": a.op.name(),
                    "path": a.path.as_str(),
                    "bytes_added": a.bytes_added,
                    "bytes_removed": a.bytes_removed,
                })
                .to_string()
            } else {
                format!("{} {}", a.op.name(), a.path)
            };
            if a.op != Op::Equal || json {
                let mut print = || writeln!(out, "{line}");
                let _ = match &bar {
                    Some(bar) => bar.suspend(print),
                    None => print(),
                };
            }
            if let Some(bar) = &bar {
                bar.set_length(e.total_bytes);
                bar.set_position(e.done_bytes);
                bar.set_message(a.path.to_string());
            }
        })?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let o = serde_json::json!({
            "add": summary.add,
            "change": summary.change,
            "remove": summary.remove,
            "equal": summary.equal,
            "bytes_added": summary.bytes_added,
            "bytes_removed": summary.bytes_removed,
            "dry_run": options.dry_run,
        });
        if json {
            writeln!(out, "{}", o)?;
        } else {
            writeln!(
                out,
                "{} added, {} changed, {} removed, {} equal; {} bytes copied, {} removed{}",
                summary.add,
                summary.change,
                summary.remove,
                summary.equal,
                summary.bytes_added,
                summary.bytes_removed,
                if options.dry_run { " (dry run)" } else { "" }
            )?;
        }
        Ok(())
    };
    match src_named {
        Named::Remote(key) => {
            with_drive(sides.store()?, &key.to_string(), read, async |d, fetch| {
                let Some(fetch) = fetch else {
                    return Err(CliError::NoSuchCore(key.to_string()));
                };
                // The whole bee (every entry), then the blocks of what changes.
                fetch
                    .fetch_ranges(
                        d.metadata(),
                        std::slice::from_ref(&(0..d.metadata().info()?.length)),
                    )
                    .await?;
                let dest = dest_side(&dst)?;
                if options.compare_bytes {
                    // The byte compare reads what tier 1 calls equal: fetch it.
                    let quick = MirrorOptions {
                        compare_bytes: false,
                        ..options.clone()
                    };
                    for a in mirror::plan(Side::Drive(d), dest, &quick)?.actions {
                        if a.op == Op::Equal
                            && let Some(e) = d.entry(a.path.as_str())?
                        {
                            fetch.fetch_ranges(d.blobs(), &e.blocks()).await?;
                        }
                    }
                }
                let plan = mirror::plan(Side::Drive(d), dest, options)?;
                if !options.dry_run {
                    mirror::fetch_blocks(&plan, d, fetch).await?;
                }
                report(&plan, Side::Drive(d), dest)
            })
        }
        local => {
            let local = match (local, read.version) {
                (Named::Drive(d), Some(v)) => Named::Drive(d.checkout(v)?),
                (other, _) => other,
            };
            let source = dest_side(&local)?;
            let dest = dest_side(&dst)?;
            let plan = mirror::plan(source, dest, options)?;
            report(&plan, source, dest)?;
            if !live {
                return Ok(());
            }
            let Named::Folder(folder) = &local else {
                return Err(CliError::LiveSource);
            };
            // Mirror again after every burst of changes in the source.
            let (tx, rx) = std::sync::mpsc::channel();
            let mut watcher =
                notify::recommended_watcher(tx).map_err(|e| watch_error(folder, e))?;
            notify::Watcher::watch(
                &mut watcher,
                folder.root(),
                notify::RecursiveMode::Recursive,
            )
            .map_err(|e| watch_error(folder, e))?;
            while let Ok(first) = rx.recv() {
                first.map_err(|e| watch_error(folder, e))?;
                while rx.recv_timeout(LIVE_SETTLE).is_ok() {}
                let plan = mirror::plan(source, dest, options)?;
                if plan.actions.iter().any(|a| a.op != Op::Equal) {
                    report(&plan, source, dest)?;
                }
            }
            Ok(())
        }
    }
}

/// How long a live mirror waits for a burst of changes to end.
const LIVE_SETTLE: Duration = Duration::from_millis(200);

fn watch_error(folder: &Folder, e: notify::Error) -> CliError {
    CliError::Drive(hyper_drive::Error::Io {
        path: folder.root().to_path_buf(),
        source: std::io::Error::other(e),
    })
}
