//! Just enough JSON output for `--json` flags.

use std::fmt::Write as _;

/// A JSON object built field by field, in order.
#[derive(Default)]
pub struct Object(String);

impl Object {
    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    pub fn float(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value:.6}");
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => string(&mut self.0, v),
            None => self.0.push_str("null"),
        }
        self
    }

    /// An array of strings.
    pub fn strs(mut self, key: &str, values: &[String]) -> Self {
        self.key(key);
        self.0.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            string(&mut self.0, value);
        }
        self.0.push(']');
        self
    }

    /// An array of objects.
    pub fn objects(mut self, key: &str, values: Vec<Object>) -> Self {
        self.key(key);
        self.0.push('[');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(&value.finish());
        }
        self.0.push(']');
        self
    }

    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        string(&mut self.0, key);
        self.0.push(':');
    }

    pub fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
