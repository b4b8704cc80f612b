//! hyper-autobase: many writers, one deterministic view.
//!
//! Every writer of a base appends [`Node`]s to a core of its own. A node
//! names the heads of the DAG its writer had seen, so the writers' logs form
//! one causal DAG. The [`Linearizer`] orders that DAG the same way on every
//! peer: causal order first, ties broken by writer key, and a prefix made
//! final (indexed) by a majority of the base's indexers. Its module docs say
//! how finality is decided and why two peers never disagree on it.
//!
//! The node format is `autobase/proto/autobase.proto`.
//!
//! ```
//! use hyper_autobase::{Head, Linearizer, Node};
//! use hyper_core::CoreKey;
//! # fn main() -> hyper_autobase::Result<()> {
//! let (a, b) = (CoreKey([1; 32]), CoreKey([2; 32]));
//! let mut lin = Linearizer::new(&[a])?; // `a` is the one indexer
//! lin.add_writer(b);
//! lin.push(&b, Node::new(Some(b"hi from b".to_vec()), vec![], 0))?;
//! // `a` saw b's node and answers it.
//! let heads = lin.heads(&a);
//! assert_eq!(heads, vec![Head { writer: b, length: 1 }]);
//! lin.push(&a, Node::new(Some(b"hi from a".to_vec()), heads, 0))?;
//! let update = lin.update();
//! let values: Vec<_> = update.tip.iter().map(|batch| batch.values[0].clone()).collect();
//! assert_eq!(values, [Some(b"hi from b".to_vec()), Some(b"hi from a".to_vec())]);
//! # Ok(()) }
//! ```

mod base;
pub mod checkpoint;
mod error;
mod linearizer;
mod node;
mod signed;

pub use base::{Apply, Base, BaseInfo, Host, MAX_ACKS, View, ViewInfo};
pub use error::{Error, Result};
pub use linearizer::{Batch, Linearizer, Update};
pub use node::{
    Head, Header, MAX_BATCH, MAX_CHECKPOINT, MAX_HEADS, MAX_INDEXERS, Node, PROTOCOL, VERSION,
    ViewSignature, writer_key_of,
};
pub use signed::MAX_REFUSALS;
