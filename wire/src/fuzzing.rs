//! Entry points for the coverage-guided fuzz targets (`fuzz/`, see
//! docs/FUZZING.md) into decoders that are otherwise private. Not a stable
//! API: hidden from the docs.

use hyper_core::PublicKey;

use crate::error::Result;

/// Checks a Noise handshake payload as the handshake does: decodes the
/// `Handshake` message and verifies its identity signature over
/// `IDENTITY_CONTEXT ‖ remote_static`. The proven identity, or a typed
/// error (`Error::Decode`, `Error::Identity`).
pub fn check_identity_payload(payload: &[u8], remote_static: Option<&[u8]>) -> Result<PublicKey> {
    crate::stream::check_identity(payload, remote_static)
}
