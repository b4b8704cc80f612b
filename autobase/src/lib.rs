//! hyper-autobase: many writers, one deterministic view.
//!
//! Every writer of a base appends [`Node`]s to a core of its own. A node
//! names the heads of the DAG its writer had seen, so the writers' logs form
//! one causal DAG. The [`Linearizer`] orders that DAG the same way on every
//! peer: causal order first, ties broken by writer key, and a prefix made
//! final (indexed) by a majority of the base's indexers. Its module docs say
//! how finality is decided and why two peers never disagree on it.
//!
//! The node format is `autobase/proto/autobase.proto`. A whole application
//! on a base, a multi-writer chat between terminals, is
//! `autobase/examples/chat.rs` (`cargo run -p hyper-autobase --example chat
//! -- --store DIR create`).
//!
//! Each batch's last node states the batch's [`Causal`] facts (depth,
//! highest round, round set), checked by every peer. They let a
//! [`Linearizer`] start from a [`Frontier`] of the indexed prefix
//! ([`Linearizer::from_frontier`]) and order later batches as one that
//! holds the whole history: the pure half of fast-forward.
//!
//! A store that only reads a base (a device before it joins, a mirror
//! or seeder of a base it does not write) opens it with [`Base::read`]:
//! no writer core of its own, the same order and views as any peer, and
//! signed cores it can serve.
//!
//! # The system core
//!
//! Every base also has a *system core* ([`Base::signed_system`]), signed
//! as the views' cores are: one [`SystemEntry`] per leader commit of the
//! indexed prefix that indexed a value or changed the indexers ([`Linearizer::commits`]), holding
//! the [`Frontier`] just after it ([`Linearizer::frontier_at_commit`]),
//! the membership ([`Member`]) and each view's state ([`ViewState`])
//! there. Entries are a function of the indexed prefix alone, so every
//! peer writes the same bytes, and a quorum of indexers signs them
//! ([`SystemInfo::signed_length`]). [`Base::signed_state`] decodes the
//! newest signed entry: what a peer far behind needs to start from.
//!
//! # Fast-forward
//!
//! A base that holds none of the order (or [`FAST_FORWARD_AFTER`] batches
//! less than a signed state this store holds) opens from the newest
//! signed system entry whose views' signed cores are stored that far: its
//! views become the signed views at the entry's lengths (checked against
//! the entry's tree hashes), its linearizer starts from the entry's
//! frontier, and the batches before it are never applied here
//! ([`BaseInfo::fast_forwarded`]); a reopen resumes from the same start.
//! What it needs of the writer cores after that is [`Base::needed`]: a
//! sync fetches the base's [`Base::signed_cores`] first, then only those
//! blocks. [`Base::fast_forward`] jumps a live base.
//!
//! # Changing the indexers
//!
//! The application's `apply` adds and removes indexers as it does writers
//! ([`Host::add_writer`]`(key, true)`, [`Host::remove_writer`]; the base
//! always keeps one). A change takes effect for finality at the commit
//! that indexes the batch that made it (a new indexer at the commit that
//! indexes a batch of its own after that: until then it is pending, so a
//! key no device writes never holds finality back), the same point on
//! every peer: the
//! base's [`Linearizer`] waits after each commit that indexes a value
//! until the base has applied it and confirmed the indexers after it
//! ([`Linearizer::confirm`]), and a new set starts a new *epoch*, whose
//! rounds count only the new indexers' batches of that epoch (the
//! linearizer's module docs say why peers still agree). Each epoch has
//! signed cores of its own, signed by its indexers; the system entry of
//! the commit that changed them, signed by the old ones, names the new
//! indexers and their signing keys, so a peer that trusts only block 0 of
//! the base follows the chain to the newest epoch ([`Base::signed_cores`]
//! grows as it does). [`BaseInfo::indexers`] is the current set.
//!
//! # Checkpoints, trust and liveness
//!
//! Each view also has a *signed core* ([`Base::signed_view`]) whose
//! manifest lists the indexers' signing keys (from block 0 of the base,
//! or from the system entry that changed them) with quorum `n / 2 + 1`:
//! the same key on every peer. Every peer appends
//! the view's indexed (final) entries to it as an unsigned tail; each
//! indexer signs the state it reached and ships the signature in the
//! checkpoint of its next node ([`ViewSignature`]); any peer adds the
//! signatures it can check against its own copy, and the view's
//! [`ViewInfo::signed_length`] moves once a quorum signed the same length.
//! A peer trusts no signature it cannot verify over its own state, and
//! none from a writer that is not an indexer; peers are served only the
//! signed part. [`Base::ack`] with the timer fired appends an ack carrying
//! a checkpoint when an indexer has indexed more than it signed, so
//! `signed_length` follows `indexed_length`.
//!
//! Liveness: writes and the optimistic view go on with any number of
//! indexers offline; finality (`indexed_length`) and so `signed_length`
//! need a majority of the indexers online and acking, and move again once a
//! majority is back. The system core is signed and trusted the same way.
//! The [`checkpoint`] module docs give the details.
//!
//! ```
//! use hyper_autobase::{Head, Linearizer, Node};
//! use hyper_core::CoreKey;
//! # fn main() -> hyper_autobase::Result<()> {
//! let (a, b) = (CoreKey([1; 32]), CoreKey([2; 32]));
//! let mut lin = Linearizer::new(&[a])?; // `a` is the one indexer
//! lin.add_writer(b);
//! // The node ending a batch states the batch's causal facts.
//! let causal = lin.causal_for(&b, &[])?;
//! lin.push(&b, Node::new(Some(b"hi from b".to_vec()), vec![], 0).with_causal(causal))?;
//! // `a` saw b's node and answers it.
//! let heads = lin.heads(&a);
//! assert_eq!(heads, vec![Head { writer: b, length: 1 }]);
//! let causal = lin.causal_for(&a, &heads)?;
//! lin.push(&a, Node::new(Some(b"hi from a".to_vec()), heads, 0).with_causal(causal))?;
//! let update = lin.update();
//! let values: Vec<_> = update.tip.iter().map(|batch| batch.values[0].clone()).collect();
//! assert_eq!(values, [Some(b"hi from b".to_vec()), Some(b"hi from a".to_vec())]);
//! # Ok(()) }
//! ```

mod base;
pub mod checkpoint;
mod error;
mod host;
mod linearizer;
mod node;
mod signed;
mod system;
mod undo;
mod view;

pub use base::{
    Base, BaseInfo, FAST_FORWARD_AFTER, HOLD_BACK, MAX_ACKS, Needed, RECORD_LAG, ViewInfo,
};
pub use error::{Error, Result};
pub use host::{Apply, Host};
pub use linearizer::{Batch, Commit, Frontier, FrontierWriter, Linearizer, Update};
pub use node::{
    Causal, Head, Header, MAX_BATCH, MAX_CHECKPOINT, MAX_HEADS, MAX_INDEXERS, Node, PROTOCOL,
    VERSION, ViewSignature, writer_key_of,
};
pub use signed::MAX_REFUSALS;
pub use system::{Member, SystemEntry, SystemInfo, ViewState};
pub use view::View;
