//! The manifest: who may sign a core, and how many of them must.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::codec::{Reader, Writer};
use crate::error::{Result, VerifyError};
use crate::hash;
use crate::keys::{CoreKey, Hash, KeyPair, PublicKey, Signature};

/// The manifest format this crate writes and reads.
pub const MANIFEST_VERSION: u8 = 1;

/// Why [`Manifest::quorum`] or a store refuses a manifest.
pub(crate) const INVALID: &str =
    "invalid manifest: signers must be 1..=255 distinct keys and quorum 1..=signers";

/// A fixed beginning of the log: the first `length` blocks must hash to
/// `hash` (the roots hash). Lengths up to it need no signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prologue {
    /// Roots hash of the tree at `length`.
    pub hash: Hash,
    /// Number of blocks in the prologue.
    pub length: u64,
}

impl Prologue {
    /// The prologue of a tree of `length` blocks with these `roots` (as
    /// [`Core::state_at`](crate::Core::state_at) gives them).
    pub fn of(length: u64, roots: &[crate::tree::Node]) -> Self {
        Prologue {
            hash: hash::roots(roots),
            length,
        }
    }
}

/// Describes a core: its signers, the quorum, an optional prologue. The
/// core key is the hash of its encoding, so it cannot change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u8,
    /// The ed25519 keys allowed to sign, at most 255.
    pub signers: Vec<PublicKey>,
    /// How many distinct signers must sign each state (at least 1).
    pub quorum: u8,
    /// An optional fixed prefix of the log.
    pub prologue: Option<Prologue>,
}

/// One signer's signature over a state, naming the signer by its position
/// in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerSignature {
    /// Index into [`Manifest::signers`].
    pub signer: u8,
    /// The signature.
    pub signature: Signature,
}

impl Manifest {
    /// The common case: one signer, quorum one.
    pub fn single(signer: PublicKey) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            signers: vec![signer],
            quorum: 1,
            prologue: None,
        }
    }

    /// Several signers of which `quorum` must sign.
    pub fn quorum(signers: Vec<PublicKey>, quorum: u8) -> Result<Self> {
        let m = Manifest {
            version: MANIFEST_VERSION,
            signers,
            quorum,
            prologue: None,
        };
        m.validate()
            .map_err(|_| crate::Error::InvalidArgument(INVALID))?;
        Ok(m)
    }

    /// Checks what [`Manifest::decode`] checks: a known version, 1..=255
    /// distinct signers, a quorum in `1..=signers`, a prologue below
    /// [`MAX_LENGTH`](crate::MAX_LENGTH).
    pub(crate) fn validate(&self) -> Result<(), VerifyError> {
        let ok = self.version == MANIFEST_VERSION
            && self
                .prologue
                .is_none_or(|p| p.length < crate::proof::MAX_LENGTH)
            && !self.signers.is_empty()
            && self.signers.len() <= 255
            && self.quorum >= 1
            && usize::from(self.quorum) <= self.signers.len()
            && self.distinct_signers();
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Malformed("manifest"))
        }
    }

    /// Whether no key is listed twice (a key listed twice would count
    /// twice towards the quorum).
    fn distinct_signers(&self) -> bool {
        let mut keys: Vec<&PublicKey> = self.signers.iter().collect();
        keys.sort_unstable();
        keys.windows(2).all(|w| w.first() != w.get(1))
    }

    /// Byte layout: version `u8`, signer count `u8`, each signer's 32-byte
    /// key, quorum `u8`, prologue flag `u8` (0 or 1), then if set the
    /// 32-byte roots hash and the length as little-endian `u64`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.version).u8(self.signers.len() as u8);
        for s in &self.signers {
            w.raw(&s.0);
        }
        w.u8(self.quorum);
        match &self.prologue {
            None => w.u8(0),
            Some(p) => w.u8(1).raw(&p.hash.0).u64(p.length),
        };
        w.0
    }

    /// Decodes [`Manifest::encode`]; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, VerifyError> {
        let bad = VerifyError::Malformed("manifest");
        let mut r = Reader::new(bytes);
        let version = r.u8().ok_or(bad.clone())?;
        let count = r.u8().ok_or(bad.clone())?;
        let signers = (0..count)
            .map(|_| r.array().map(PublicKey))
            .collect::<Option<Vec<_>>>()
            .ok_or(bad.clone())?;
        let quorum = r.u8().ok_or(bad.clone())?;
        let prologue = match r.u8() {
            Some(0) => None,
            Some(1) => Some(Prologue {
                hash: Hash(r.array().ok_or(bad.clone())?),
                length: r.u64().ok_or(bad.clone())?,
            }),
            _ => return Err(bad),
        };
        if !r.is_empty() {
            return Err(bad);
        }
        let m = Manifest {
            version,
            signers,
            quorum,
            prologue,
        };
        m.validate()?;
        Ok(m)
    }

    /// The core key this manifest defines.
    pub fn key(&self) -> CoreKey {
        CoreKey(hash::manifest(&self.encode()))
    }

    /// Signs a state with every given key pair that is a signer here.
    pub fn sign(&self, message: &[u8; 32], pairs: &[KeyPair]) -> Vec<SignerSignature> {
        let mut out = Vec::new();
        for pair in pairs {
            let public = pair.public_key();
            if let Some(pos) = self.signers.iter().position(|s| *s == public) {
                out.push(SignerSignature {
                    signer: pos as u8,
                    signature: pair.sign(message),
                });
            }
        }
        out
    }

    /// Checks that at least `quorum` distinct signers signed `message`.
    /// More signatures than signers are refused unchecked, and checking
    /// stops once the quorum is reached, so a padded list costs at most
    /// `signers` signature checks.
    pub fn verify(&self, message: &[u8; 32], sigs: &[SignerSignature]) -> Result<(), VerifyError> {
        if sigs.len() > self.signers.len() {
            return Err(VerifyError::TooManySignatures {
                count: sigs.len(),
                signers: self.signers.len(),
            });
        }
        let mut seen = [false; 256];
        let mut valid = 0usize;
        for s in sigs {
            if valid >= usize::from(self.quorum) {
                break;
            }
            let i = usize::from(s.signer);
            let (Some(key), Some(slot)) = (self.signers.get(i), seen.get_mut(i)) else {
                continue;
            };
            if !*slot && key.verify(message, &s.signature) {
                *slot = true;
                valid += 1;
            }
        }
        if valid >= usize::from(self.quorum) {
            Ok(())
        } else {
            Err(VerifyError::Signature {
                valid,
                quorum: usize::from(self.quorum),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_snapshot_and_round_trip() {
        let m = Manifest::single(PublicKey([1; 32]));
        let enc = m.encode();
        assert_eq!(enc.len(), 1 + 1 + 32 + 1 + 1);
        assert_eq!(&enc[..2], &[1, 1]);
        assert_eq!(Manifest::decode(&enc), Ok(m));
        assert!(Manifest::decode(&enc[..enc.len() - 1]).is_err());
        let mut extra = enc.clone();
        extra.push(0);
        assert!(Manifest::decode(&extra).is_err());
    }

    #[test]
    fn quorum_needs_distinct_signers() {
        let pairs: Vec<KeyPair> = (0..3u8).map(|i| KeyPair::from_seed([i; 32])).collect();
        let m = Manifest::quorum(pairs.iter().map(|p| p.public_key()).collect(), 2).expect("valid");
        let msg = [9u8; 32];
        let one = m.sign(&msg, &pairs[..1]);
        assert_eq!(
            m.verify(&msg, &one),
            Err(VerifyError::Signature {
                valid: 1,
                quorum: 2
            })
        );
        let twice = [one[0], one[0]];
        assert!(m.verify(&msg, &twice).is_err());
        let two = m.sign(&msg, &pairs[1..]);
        assert_eq!(m.verify(&msg, &two), Ok(()));
        assert!(Manifest::quorum(vec![PublicKey([0; 32])], 2).is_err());
        // Padding past the signer count is refused before any check; the
        // quorum reached, later signatures are not looked at.
        let padded = [two[0], two[1], two[0], two[1]];
        assert_eq!(
            m.verify(&msg, &padded),
            Err(VerifyError::TooManySignatures {
                count: 4,
                signers: 3
            })
        );
        let mut garbage = two[0];
        garbage.signature.0[0] ^= 1;
        assert_eq!(m.verify(&msg, &[two[0], two[1], garbage]), Ok(()));
    }

    #[test]
    fn a_key_listed_twice_is_refused() {
        let a = KeyPair::from_seed([1; 32]).public_key();
        let b = KeyPair::from_seed([2; 32]).public_key();
        assert!(Manifest::quorum(vec![a, b, a], 2).is_err());
        let twice = Manifest {
            version: MANIFEST_VERSION,
            signers: vec![a, b, a],
            quorum: 2,
            prologue: None,
        };
        assert_eq!(
            Manifest::decode(&twice.encode()),
            Err(VerifyError::Malformed("manifest"))
        );
        assert!(Manifest::quorum(vec![a, b], 2).is_ok());
    }
}
