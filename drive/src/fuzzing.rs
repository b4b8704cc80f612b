//! Entry points for the coverage-guided fuzz targets (`fuzz/`, see
//! docs/FUZZING.md) into the metadata entry decoder, which is otherwise
//! private. Not a stable API: hidden from the docs.

use crate::error::Result;
use crate::messages::Entry;

/// Decodes and checks a metadata entry stored at `path` exactly as the drive
/// does on every read: the entry, or `Error::Corrupt` naming `path`.
pub fn decode_entry(bytes: &[u8], path: &str) -> Result<Entry> {
    crate::drive::decode_entry(bytes, path)
}
