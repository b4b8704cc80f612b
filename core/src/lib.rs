//! hyper-core: the signed append-only log.
pub mod bitfield;
mod codec;
mod error;
pub mod flat;
mod hash;
mod keys;
mod manifest;
mod proof;
mod tree;
mod verify;

pub use error::{Corruption, Error, Result, VerifyError};
pub use keys::{CoreKey, DiscoveryKey, Hash, KeyPair, PublicKey, Signature};
pub use manifest::{Manifest, Prologue, SignerSignature};
pub use proof::*;
pub use tree::Node;
pub use verify::{Verified, Verifier};
