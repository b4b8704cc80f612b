//! Namespaces of core names: `store.namespace("app").named("db")`.
//!
//! A namespace is a path of segments. A named core in it derives its key
//! pair from the store seed and the whole path with the name, each segment
//! length-prefixed, so no two (path, name) pairs share a key, and none
//! shares one with a root name ([`Store::named`]), which keeps its own
//! derivation and its own table. Two libraries in one store that each take
//! a namespace never collide, whatever names they pick inside it.

use redb::{TableDefinition, WriteTransaction};

use crate::core::Core;
use crate::error::Result;
use crate::keys::{CoreKey, KeyPair};
use crate::store::{Name, Store};

/// Namespaced names: [`encode`]d path and name -> core key.
pub(crate) const NS_NAMES: TableDefinition<&[u8], &[u8; 32]> =
    TableDefinition::new("namespaced_names");

/// Creates this module's tables in a new store.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(NS_NAMES)?;
    Ok(())
}

/// The path and the name, each segment as `u32` LE length then UTF-8: no
/// two distinct lists of segments encode alike.
fn encode(path: &[String], name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in path.iter().map(String::as_str).chain([name]) {
        out.extend_from_slice(&(segment.len() as u32).to_le_bytes());
        out.extend_from_slice(segment.as_bytes());
    }
    out
}

/// A namespace of names in a [`Store`], from [`Store::namespace`]. Cheap
/// to clone; it holds the store.
///
/// ```
/// use hyper_core::Store;
/// # fn main() -> hyper_core::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path())?;
/// let mail = store.namespace("mail").named("db")?;
/// let chat = store.namespace("chat").named("db")?;
/// assert_ne!(mail.key(), chat.key()); // same name, other namespace
/// assert_ne!(mail.key(), store.named("db")?.key()); // nor the root's "db"
/// // The same path and name always give the same core.
/// assert_eq!(store.namespace("mail").named("db")?.key(), mail.key());
/// let nested = store.namespace("mail").namespace("index").named("db")?;
/// assert_ne!(nested.key(), mail.key());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Namespace {
    store: Store,
    path: Vec<String>,
}

impl Store {
    /// The namespace `name` at the root of this store (see [`Namespace`]).
    pub fn namespace(&self, name: &str) -> Namespace {
        Namespace {
            store: self.clone(),
            path: vec![name.to_string()],
        }
    }
}

impl Namespace {
    /// The namespace `name` inside this one.
    pub fn namespace(&self, name: &str) -> Namespace {
        let mut path = self.path.clone();
        path.push(name.to_string());
        Namespace {
            store: self.store.clone(),
            path,
        }
    }

    /// The segments of this namespace, outermost first.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The writable core named `name` in this namespace, created on first
    /// use. Its key pair is derived from the store's secret seed, the
    /// namespace path and the name: the same path and name in the same
    /// store (or a store made from the same seed) always give the same key.
    /// [`Store::list`] shows it as the path and name joined by `/`.
    pub fn named(&self, name: &str) -> Result<Core> {
        if let Some(core) = self.by_name(name)? {
            return Ok(core);
        }
        let slot = encode(&self.path, name);
        let mut material = self.store.seed().to_vec();
        material.extend_from_slice(&slot);
        let pair = KeyPair::from_seed(blake3::derive_key(
            "hyper-core 2026 namespaced core",
            &material,
        ));
        let display = self
            .path
            .iter()
            .map(String::as_str)
            .chain([name])
            .collect::<Vec<_>>()
            .join("/");
        self.store
            .named_core(pair, Name::Namespaced { slot, display })
    }

    /// The core created under `name` in this namespace, if there is one
    /// (never creates).
    pub fn by_name(&self, name: &str) -> Result<Option<Core>> {
        let key = {
            let txn = self.store.database().begin_read()?;
            let table = match txn.open_table(NS_NAMES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            table
                .get(encode(&self.path, name).as_slice())?
                .map(|v| CoreKey(*v.value()))
        };
        key.map(|k| self.store.core(&k)).transpose()
    }
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Namespace").field(&self.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Two (path, name) lists encode alike only when they are equal.
        #[test]
        fn encoding_is_injective(
            a in prop::collection::vec("[ab/]{0,3}", 1..4),
            b in prop::collection::vec("[ab/]{0,3}", 1..4),
        ) {
            let (pa, na) = a.split_at(a.len() - 1);
            let (pb, nb) = b.split_at(b.len() - 1);
            prop_assert_eq!(encode(pa, &na[0]) == encode(pb, &nb[0]), a == b);
        }
    }

    #[test]
    fn encoding_is_unambiguous() {
        let a = encode(&["ab".into()], "c");
        let b = encode(&["a".into()], "bc");
        let c = encode(&["a".into(), "b".into()], "c");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            encode(&["app".into()], "db"),
            b"\x03\x00\x00\x00app\x02\x00\x00\x00db"
        );
    }
}
