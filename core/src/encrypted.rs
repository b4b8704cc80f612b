//! Encrypted handles of a core ([`Core::with_encryption`]): what they
//! append is encrypted before it is hashed, what they read is decrypted
//! after it is checked against the tree. The cipher is in
//! [`crate::encryption`].

use std::sync::Arc;

use crate::core::Core;
use crate::encryption::{BlockCipher, EncryptionKey};
use crate::error::{Error, Result};
use crate::keys::CoreKey;

impl Core {
    /// A handle to this core that encrypts the blocks it appends and
    /// decrypts the blocks it reads ([`Core::get`], [`Core::blocks`],
    /// [`Snapshot::get`](crate::Snapshot::get)) with `key`. Proofs ([`Core::proofs`]) and
    /// replication ([`Core::apply`]) always carry the ciphertext, so a peer
    /// without the key stores, verifies and serves the blocks but cannot
    /// read them.
    ///
    /// The first encrypted handle of a core writable here marks the core
    /// encrypted in this store: from then on plain handles refuse to read or
    /// append ([`Error::EncryptionKeyRequired`], so plaintext never mixes
    /// into it) and another key is [`Error::WrongEncryptionKey`] at once.
    /// A writable core that already holds blocks is marked only if its
    /// first stored block decrypts with `key` ([`Error::Decrypt`]
    /// otherwise, say for a core written plain).
    /// Elsewhere (a replica) a wrong key is found at the first block read:
    /// [`Error::Decrypt`], never garbage.
    ///
    /// ```
    /// use hyper_core::{EncryptionKey, Error, Store};
    /// # fn main() -> hyper_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let key = EncryptionKey::generate()?;
    /// let log = store.create_core()?.with_encryption(&key)?;
    /// log.append(b"secret")?;
    /// assert_eq!(log.get(0)?, b"secret");
    /// // A plain handle of the same core in this store refuses to read it.
    /// let plain = store.core(&log.key())?;
    /// assert!(matches!(plain.get(0), Err(Error::EncryptionKeyRequired(_))));
    /// let other = EncryptionKey::generate()?;
    /// assert!(matches!(plain.with_encryption(&other), Err(Error::WrongEncryptionKey(_))));
    /// # Ok(()) }
    /// ```
    pub fn with_encryption(&self, key: &EncryptionKey) -> Result<Core> {
        let cipher = BlockCipher::new(key, &self.inner.key);
        let check = cipher.check;
        let handle = Core {
            inner: self.inner.clone(),
            cipher: Some(Arc::new(cipher)),
        };
        match self.inner.encrypted.get() {
            Some(known) if *known != check => Err(Error::WrongEncryptionKey(self.inner.key)),
            None if self.writable()? => {
                // A core that already holds blocks (imported, or written
                // plain) is marked only if its first stored block decrypts:
                // plaintext and ciphertext never mix in one core.
                let length = self.info()?.length;
                if let Some(first) = self.next_stored(0..length)? {
                    handle.get(first)?;
                }
                self.inner.shared.mark_encrypted(self.inner.id, &check)?;
                let _ = self.inner.encrypted.set(check);
                Ok(handle)
            }
            _ => Ok(handle),
        }
    }

    /// Whether this handle encrypts and decrypts (it came from
    /// [`Core::with_encryption`]).
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Plain reads and appends are refused on a core this store knows to be
    /// encrypted.
    pub(crate) fn plain_allowed(&self) -> Result<()> {
        if self.cipher.is_none() && self.inner.encrypted.get().is_some() {
            return Err(Error::EncryptionKeyRequired(self.inner.key));
        }
        Ok(())
    }
}

/// A stored block as its reader sees it: decrypted through `cipher`, or as
/// stored.
pub(crate) fn open_block(
    cipher: Option<&BlockCipher>,
    key: CoreKey,
    index: u64,
    block: Vec<u8>,
) -> Result<Vec<u8>> {
    match cipher {
        Some(c) => c.decrypt(key, index, block),
        None => Ok(block),
    }
}
