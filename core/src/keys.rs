//! Key, hash and signature newtypes, with hex display and parsing.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::hash;

macro_rules! bytes_newtype {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses exactly `$len` bytes; `None` for any other length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses exactly `2 * $len` hex characters.
            fn from_str(s: &str) -> Result<Self> {
                decode_hex(s).map(Self).ok_or(Error::InvalidArgument(concat!(
                    stringify!($name),
                    " must be ",
                    stringify!($len),
                    " bytes of hex"
                )))
            }
        }
    };
}

bytes_newtype!(
    /// A 32-byte BLAKE3 hash.
    Hash,
    32
);
bytes_newtype!(
    /// A core's key: the BLAKE3 hash of its manifest. Knowing it lets a peer
    /// read and verify the core.
    CoreKey,
    32
);
bytes_newtype!(
    /// The hash of a core key that travels on the network and in the DHT; it
    /// names a core without revealing its key.
    DiscoveryKey,
    32
);
bytes_newtype!(
    /// An ed25519 public key (the compressed point).
    PublicKey,
    32
);
bytes_newtype!(
    /// An ed25519 signature.
    Signature,
    64
);

/// A 32-byte secret newtype: built from bytes or hex, shown only through
/// an explicit `to_hex`, never by `Debug`.
macro_rules! secret_newtype {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl $name {
            /// From its 32 bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// A new random one from the operating system's secure generator.
            pub fn generate() -> $crate::Result<Self> {
                Ok(Self($crate::keys::random_bytes()?))
            }

            /// The bytes; keep them secret.
            pub fn to_bytes(&self) -> [u8; 32] {
                self.0
            }

            /// As 64 hex characters (what `FromStr` parses); keep it secret.
            pub fn to_hex(&self) -> String {
                self.0.iter().map(|b| format!("{b:02x}")).collect()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;

            /// Parses exactly 64 hex characters (surrounding whitespace is
            /// ignored).
            fn from_str(s: &str) -> $crate::Result<Self> {
                $crate::keys::decode_hex(s.trim())
                    .map(Self)
                    .ok_or($crate::Error::InvalidArgument(concat!(
                        $what,
                        " must be 32 bytes of hex"
                    )))
            }
        }
    };
}
pub(crate) use secret_newtype;

secret_newtype!(
    /// A store's 32-byte secret seed, from which its named cores derive
    /// their key pairs ([`Store::export_seed`](crate::Store::export_seed),
    /// [`Store::from_seed`](crate::Store::from_seed)). Whoever holds it can
    /// write to every named core of the store. `Debug` never shows it.
    StoreSeed,
    "a store seed"
);

pub(crate) fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = (pair.first()?.to_ascii_lowercase() as char).to_digit(16)?;
        let lo = (pair.get(1)?.to_ascii_lowercase() as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

impl CoreKey {
    /// The discovery key of this core.
    pub fn discovery_key(&self) -> DiscoveryKey {
        DiscoveryKey(hash::discovery(self))
    }
}

impl PublicKey {
    /// Whether `signature` is a valid strict ed25519 signature of `message`
    /// by this key. A key that is not a valid curve point verifies nothing.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).is_ok()
    }
}

/// An ed25519 key pair that can sign a core's state.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A key pair from a 32-byte secret seed; the same seed gives the same pair.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// A new random key pair from the operating system's generator.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_seed(random_bytes()?))
    }

    /// The secret seed; keep it secret.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public_key())
    }
}

/// 32 bytes from the operating system's secure random generator.
pub fn random_bytes() -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let key = CoreKey([0xab; 32]);
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<CoreKey>().expect("valid hex"), key);
        assert!(matches!(
            "abc".parse::<CoreKey>(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            "zz".repeat(32).parse::<CoreKey>(),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn sign_and_verify() {
        let pair = KeyPair::from_seed([7; 32]);
        let sig = pair.sign(b"hello");
        assert!(pair.public_key().verify(b"hello", &sig));
        assert!(!pair.public_key().verify(b"hellO", &sig));
        let mut bad = sig;
        bad.0[3] ^= 1;
        assert!(!pair.public_key().verify(b"hello", &bad));
    }
}
