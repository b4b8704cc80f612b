//! Progress of a download (or a drive mirror): an indicatif bar on a
//! terminal (percentage, bytes, rate, ETA), progress lines on stderr when
//! asked, or nothing.
//! Rates count only what this run fetched, so resuming or re-cloning a
//! complete core never reports the bytes already here as speed.

use std::io::IsTerminal;
use std::time::Instant;

use hyper_core::Info as CoreInfo;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Nothing.
    Quiet,
    /// A bar redrawn on stderr (a terminal).
    Bar,
    /// A `progress: ...` line on stderr per update (`--progress`).
    Lines,
}

impl Style {
    /// The style for a command: `--quiet` silences, `--progress` asks for
    /// lines, else a bar when stderr is a terminal.
    pub fn choose(quiet: bool, lines: bool) -> Style {
        if quiet {
            Style::Quiet
        } else if lines {
            Style::Lines
        } else if std::io::stderr().is_terminal() {
            Style::Bar
        } else {
            Style::Quiet
        }
    }
}

/// A bar on stderr counting bytes: percentage, bytes, rate, ETA, and a
/// message (what is being done).
pub fn bytes_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(template) = ProgressStyle::with_template(
        "[{bar:30}] {percent:>3}%  {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  {msg}",
    ) {
        bar.set_style(template.progress_chars("=> "));
    }
    bar
}

/// The progress display of one download; cleared when dropped, so an error
/// printed after it starts on a line of its own.
pub struct Progress {
    style: Style,
    bar: Option<ProgressBar>,
    /// Bytes stored before this run.
    present: u64,
    started: Instant,
}

impl Progress {
    /// Starts showing progress; `present` is the bytes already stored.
    pub fn new(style: Style, present: u64) -> Self {
        let bar = (style == Style::Bar).then(bytes_bar);
        Progress {
            style,
            bar,
            present,
            started: Instant::now(),
        }
    }

    /// Shows `info` (the core as stored now).
    pub fn update(&mut self, info: &CoreInfo) {
        let fetched = info.bytes_stored.saturating_sub(self.present);
        match (self.style, &self.bar) {
            (Style::Bar, Some(bar)) => {
                // The bar counts this run's bytes: what is left to fetch.
                bar.set_length(info.byte_length.saturating_sub(self.present).max(fetched));
                bar.set_position(fetched);
                bar.set_message(format!("{}/{} blocks", info.blocks_stored, info.length));
            }
            (Style::Lines, _) => eprintln!(
                "progress: {}/{} blocks  {}  {}",
                info.blocks_stored,
                info.length,
                indicatif::HumanBytes(info.bytes_stored),
                rate(fetched, self.started.elapsed().as_secs_f64())
            ),
            _ => {}
        }
    }

    /// Removes the bar from the terminal.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `fetched` bytes in `seconds` as a rate; nothing fetched says so rather
/// than showing a rate.
pub fn rate(fetched: u64, seconds: f64) -> String {
    if fetched == 0 {
        "nothing fetched".to_string()
    } else {
        let per_second = fetched as f64 / seconds.max(1e-3);
        format!("{}/s", indicatif::HumanBytes(per_second as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_counts_only_fetched_bytes() {
        assert_eq!(rate(0, 0.0001), "nothing fetched");
        assert_eq!(rate(2 << 20, 2.0), "1.00 MiB/s");
        assert_eq!(rate(3_000, 2.0), "1.46 KiB/s");
        // A tiny time never gives an absurd rate: at most bytes per ms.
        assert_eq!(rate(1 << 10, 0.0), "1000.00 KiB/s");
    }
}
