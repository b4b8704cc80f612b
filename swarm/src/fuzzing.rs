//! Entry points for the coverage-guided fuzz targets (`fuzz/`, see
//! docs/FUZZING.md) into the datagram decoder, which is otherwise private.
//! Not a stable API: hidden from the docs.

pub use crate::codec::{Datagram, RelayMessage, decode as decode_datagram, relay_datagram};
