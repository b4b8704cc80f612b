//! Entry points for the coverage-guided fuzz targets (`fuzz/`, see
//! docs/FUZZING.md) into the B-tree over decoded entries, which is
//! otherwise private. Not a stable API: hidden from the docs.

pub use crate::tree::{EntrySource, NodeRef, del, get, key_value, load, put, root_of};
