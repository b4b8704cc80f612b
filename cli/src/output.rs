//! Writing results: JSON lines (one `serde_json` object per line, as
//! `--json` prints them).

use std::io::Write;

use serde::Serialize;

use crate::CliError;

/// Writes `value` as one line of JSON.
pub fn json_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}
