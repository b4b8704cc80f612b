//! Block encryption: XChaCha20 under a per-core subkey, applied before a
//! block is hashed, so the Merkle tree and the writer's signature cover the
//! ciphertext (see "Block encryption" in docs/ARCHITECTURE.md for why the
//! construction is safe).
//!
//! A stored encrypted block is framed as
//!
//! | bytes | field                                                      |
//! |-------|------------------------------------------------------------|
//! | 8     | fork the block was written in, `u64` LE                    |
//! | 8     | salt: random bytes, one draw per append batch              |
//! | 8     | key check: the first 8 bytes of the block's key stream     |
//! | rest  | the plaintext XORed with the key stream from byte 64 on    |
//!
//! and its 24-byte XChaCha20 nonce is the block index (`u64` LE), the fork
//! and the salt. The key check lets a reader with a wrong key (or a key
//! for a core that is not encrypted) fail with a clear error instead of
//! returning garbage; it says nothing about the plaintext. Pure logic: the
//! marker a writer's store keeps (see [`key_check`]) is stored by `store`.

use chacha20::XChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use redb::TableDefinition;

use crate::error::{Error, Result};
use crate::keys::{CoreKey, random_bytes};

/// Bytes an encrypted block takes beyond its plaintext (the framing).
pub const ENCRYPTION_OVERHEAD: usize = 24;

/// Where the key stream for the block's bytes starts: the first 64-byte
/// ChaCha block gives the key check and nothing else.
const DATA_OFFSET: u64 = 64;

/// Writer stores record which of their cores are encrypted: core id -> the
/// [`key_check`] of the encryption key. Created on first use; a store
/// without the table has no encrypted cores.
pub(crate) const ENCRYPTED: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("encrypted");

crate::keys::secret_newtype!(
    /// A core's 32-byte encryption key. Whoever holds it reads the core's
    /// blocks; peers that hold only the core key replicate, verify and
    /// serve the ciphertext. `Debug` never shows the key;
    /// [`EncryptionKey::to_hex`] does, when asked.
    EncryptionKey,
    "an encryption key"
);

/// The value a writer's store keeps to recognise the right key for a core
/// without keeping the key: a one-way derivation, separate from the
/// cipher's subkey.
pub(crate) fn key_check(key: &EncryptionKey, core: &CoreKey) -> [u8; 32] {
    derive("hyper-core 2026 encryption key check", key, core)
}

fn derive(context: &str, key: &EncryptionKey, core: &CoreKey) -> [u8; 32] {
    let mut material = [0u8; 64];
    let (k, c) = material.split_at_mut(32);
    k.copy_from_slice(&key.0);
    c.copy_from_slice(&core.0);
    blake3::derive_key(context, &material)
}

/// Encrypts and decrypts the blocks of one core.
pub(crate) struct BlockCipher {
    subkey: [u8; 32],
    /// [`key_check`] of the key the subkey came from.
    pub check: [u8; 32],
}

impl BlockCipher {
    /// The cipher of `core` under `key`: the subkey is a BLAKE3 derive-key
    /// of the encryption key and the core key, so one encryption key used
    /// for many cores never repeats a key stream between them.
    pub fn new(key: &EncryptionKey, core: &CoreKey) -> Self {
        Self {
            subkey: derive("hyper-core 2026 block encryption", key, core),
            check: key_check(key, core),
        }
    }

    fn stream(&self, index: u64, fork: &[u8], salt: &[u8]) -> XChaCha20 {
        let mut nonce = [0u8; 24];
        let (i, rest) = nonce.split_at_mut(8);
        let (f, s) = rest.split_at_mut(8);
        i.copy_from_slice(&index.to_le_bytes());
        f.copy_from_slice(fork);
        s.copy_from_slice(salt);
        XChaCha20::new(&self.subkey.into(), &nonce.into())
    }

    /// Block `index` written in `fork`, framed as the module docs say.
    pub fn encrypt(&self, index: u64, fork: u64, salt: [u8; 8], plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCRYPTION_OVERHEAD + plain.len());
        out.extend_from_slice(&fork.to_le_bytes());
        out.extend_from_slice(&salt);
        let mut stream = self.stream(index, &fork.to_le_bytes(), &salt);
        let mut check = [0u8; 8];
        stream.apply_keystream(&mut check);
        out.extend_from_slice(&check);
        out.extend_from_slice(plain);
        stream.seek(DATA_OFFSET);
        if let Some(data) = out.get_mut(ENCRYPTION_OVERHEAD..) {
            stream.apply_keystream(data);
        }
        out
    }

    /// The plaintext of stored block `index`; [`Error::Decrypt`] when the
    /// key check does not match (a wrong key, or a block that was never
    /// encrypted).
    pub fn decrypt(&self, core: CoreKey, index: u64, mut framed: Vec<u8>) -> Result<Vec<u8>> {
        let wrong = Error::Decrypt { core, index };
        let (Some(fork), Some(salt), Some(check)) =
            (framed.get(..8), framed.get(8..16), framed.get(16..24))
        else {
            return Err(wrong);
        };
        let mut stream = self.stream(index, fork, salt);
        let mut expected = [0u8; 8];
        stream.apply_keystream(&mut expected);
        if expected != check {
            return Err(wrong);
        }
        framed.drain(..ENCRYPTION_OVERHEAD);
        stream.seek(DATA_OFFSET);
        stream.apply_keystream(&mut framed);
        Ok(framed)
    }
}

/// A fresh salt for one append batch.
pub(crate) fn salt() -> Result<[u8; 8]> {
    let r = random_bytes()?;
    let mut out = [0u8; 8];
    out.copy_from_slice(r.get(..8).unwrap_or(&[0; 8]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher(k: u8, c: u8) -> BlockCipher {
        BlockCipher::new(&EncryptionKey([k; 32]), &CoreKey([c; 32]))
    }

    #[test]
    fn snapshot_of_framing() {
        let framed = cipher(1, 2).encrypt(3, 4, [5; 8], b"hello");
        let hex: String = framed.iter().map(|b| format!("{b:02x}")).collect();
        // fork 4 | salt | key check | "hello" encrypted.
        assert_eq!(
            hex,
            "0400000000000000\
             0505050505050505\
             712cc6cd505f86d8\
             0f55cb2f7e"
        );
        assert_eq!(
            cipher(1, 2)
                .decrypt(CoreKey([2; 32]), 3, framed)
                .expect("decrypt"),
            b"hello"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let key = EncryptionKey([0xab; 32]);
        assert_eq!(format!("{key:?}"), "EncryptionKey(..)");
        assert_eq!(key.to_hex().parse::<EncryptionKey>().expect("hex"), key);
        assert!("zz".parse::<EncryptionKey>().is_err());
    }

    proptest! {
        #[test]
        fn round_trip_and_wrong_keys_fail(
            plain in prop::collection::vec(any::<u8>(), 0..300),
            index in any::<u64>(),
            fork in any::<u64>(),
            salt in any::<[u8; 8]>(),
        ) {
            let framed = cipher(7, 8).encrypt(index, fork, salt, &plain);
            prop_assert_eq!(framed.len(), plain.len() + ENCRYPTION_OVERHEAD);
            let core = CoreKey([8; 32]);
            prop_assert_eq!(cipher(7, 8).decrypt(core, index, framed.clone()).expect("decrypt"), plain.clone());
            // Another key, another core, or another index: a clear error.
            prop_assert!(cipher(9, 8).decrypt(core, index, framed.clone()).is_err());
            prop_assert!(cipher(7, 9).decrypt(core, index, framed.clone()).is_err());
            prop_assert!(cipher(7, 8).decrypt(core, index ^ 1, framed).is_err());
        }

        #[test]
        fn decrypting_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = cipher(1, 1).decrypt(CoreKey([1; 32]), 0, bytes);
        }

        #[test]
        fn distinct_nonces_give_distinct_streams(fork in 0u64..1000, salt in any::<[u8; 8]>()) {
            let zeros = [0u8; 64];
            let a = cipher(1, 1).encrypt(5, fork, salt, &zeros);
            let b = cipher(1, 1).encrypt(5, fork + 1, salt, &zeros);
            prop_assert_ne!(a.get(24..), b.get(24..));
        }
    }
}
