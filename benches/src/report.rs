//! One JSON line per result, fields in the order they are added.

use std::fmt::Write as _;
use std::io::Write as _;

/// A JSON object printed as one line on stdout.
pub struct Line(String);

impl Line {
    /// Starts a line for `workload`, run by this implementation.
    pub fn new(workload: &str) -> Self {
        let mut l = Line(String::from("{"));
        l.text("workload", workload).text("impl", "rust");
        l
    }

    pub fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        let _ = write!(self.0, "\"{value}\"");
        self
    }

    pub fn int(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// A figure rounded to three decimals.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Self {
        self.key(key);
        let _ = write!(self.0, "{}", (value * 1000.0).round() / 1000.0);
        self
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{key}\":");
    }

    /// Prints the line, with `"scale"` when the run was scaled down. A
    /// closed stdout is an error for the caller, not a panic.
    pub fn print(&mut self, scale: u64) -> std::io::Result<()> {
        if scale != 1 {
            self.int("scale", scale);
        }
        self.0.push('}');
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.0)?;
        out.flush()
    }
}
