//! Moving a writer to another machine: export and import of a store's
//! seed and of a core's key pairs.
//!
//! A writer moves in two steps: replicate the core to the new store (so it
//! holds the signed log), then import the key pair (or make the new store
//! from the old one's seed and open the name): the replica becomes writable
//! and appends continue from its length. Importing into a store that has
//! not replicated the core gives a writable core at length 0; appending
//! there would sign a second history beside the one peers know, so
//! replicate first.

use std::path::Path;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::keys::{KeyPair, StoreSeed};
use crate::manifest::Manifest;
use crate::open;
use crate::store::{Store, StoreOptions, adopt};

impl Store {
    /// The store's secret seed: a store made from it with
    /// [`Store::from_seed`] derives the same key pair for every name (and
    /// namespace) as this one.
    pub fn export_seed(&self) -> StoreSeed {
        StoreSeed::from_bytes(self.shared.seed)
    }

    /// The store's network identity: an ed25519 key pair derived from its
    /// secret seed (in a BLAKE3 domain of its own, so it is no named core's
    /// key), the same every time the store is opened. A process serving the
    /// store keeps one identity across runs; peers that pinned it still
    /// recognise it.
    pub fn identity(&self) -> KeyPair {
        KeyPair::from_seed(blake3::derive_key(
            "hyper-core 2026 store identity",
            &self.shared.seed,
        ))
    }

    /// Opens the store in `dir`, creating it with `seed` if `dir` holds no
    /// store yet. A store that exists with another seed is
    /// [`Error::SeedMismatch`] (a seed cannot be changed under the cores
    /// already named from it).
    pub fn from_seed(
        dir: impl AsRef<Path>,
        seed: &StoreSeed,
        options: StoreOptions,
    ) -> Result<Self> {
        let store = Store::open_seeded(dir.as_ref(), options, Some(seed.to_bytes()))?;
        if store.shared.seed != seed.to_bytes() {
            return Err(Error::SeedMismatch {
                path: open::store_file(dir.as_ref()),
            });
        }
        Ok(store)
    }

    /// Imports the key pair of a single-signer core (one from
    /// [`Store::create_core`] or [`Store::named`]): the core of that key,
    /// writable here. A replica of it already in the store becomes writable
    /// and keeps everything it downloaded; otherwise a new, empty core is
    /// made. For a core with several signers use [`Core::add_signer`].
    pub fn import_key_pair(&self, pair: KeyPair) -> Result<Core> {
        self.create_with_manifest(Manifest::single(pair.public_key()), vec![pair])
    }
}

impl Core {
    /// The signing key pairs this store holds for the core (empty for a
    /// replica): what [`Store::import_key_pair`] or [`Core::add_signer`]
    /// takes on another machine. `Debug` of a [`KeyPair`] shows only its
    /// public key; [`KeyPair::seed`] gives the secret.
    pub fn export_key_pairs(&self) -> Result<Vec<KeyPair>> {
        Ok(self.read_state()?.header.signers.clone())
    }

    /// Adds a signing key pair of this core's manifest: with a quorum of
    /// them the core is writable here. The manifest must be known (a
    /// replica learns it from its first proof); a pair that is not one of
    /// its signers is [`Error::InvalidArgument`].
    pub fn add_signer(&self, pair: KeyPair) -> Result<()> {
        let manifest = self.manifest()?.ok_or(Error::InvalidArgument(
            "the core's manifest is not known yet: replicate it first",
        ))?;
        if !manifest.signers.contains(&pair.public_key()) {
            return Err(Error::InvalidArgument(
                "the key pair is not a signer of this core",
            ));
        }
        adopt(&self.inner.shared, self.clone(), None, vec![pair], None)?;
        Ok(())
    }
}
