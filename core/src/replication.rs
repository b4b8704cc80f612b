//! A core's side of replication: the proofs it builds for peers
//! ([`Core::proofs`]), what it asks them for ([`Core::missing_nodes`]),
//! and verifying and storing what they send ([`Core::apply`]).

use crate::blockstore;
use crate::core::Core;
use crate::error::{Error, Result, VerifyError};
use crate::flat;
use crate::notify::Event;
use crate::proof::{self, NodeSource, Proof, ProofRequest};
use crate::storage::{CachedNodes, TableNodes};
use crate::tree::Node;
use crate::txn::CoreTables;
use crate::verify::{Verified, Verifier};

impl Core {
    /// Builds the proof for `request` from this core's stored tree.
    pub fn proof(&self, request: &ProofRequest) -> Result<Proof> {
        self.proofs(std::slice::from_ref(request))?
            .pop()
            .unwrap_or(Err(Error::InvalidArgument("no proof built")))
    }

    /// Builds the proofs for several requests from one read view, reading
    /// each tree page and block chunk once: what a peer serving a batch of
    /// requests uses. One result per request, in order; the outer error is
    /// a failure to open the read view.
    pub fn proofs(&self, requests: &[ProofRequest]) -> Result<Vec<Result<Proof>>> {
        // State and read view taken together, under the state lock: a
        // commit of this core drops the store's view before it installs
        // its new state, so the view is at least as new as the state, and
        // no commit of this core comes between.
        let (state, manifest, truncations, view) = {
            let st = self.read_state()?;
            (
                st.header.state.clone(),
                st.header.manifest.clone(),
                st.header.truncations.clone(),
                self.inner.shared.view()?,
            )
        };
        let manifest = manifest.ok_or(Error::InvalidArgument("the manifest is not known yet"))?;
        let id = self.inner.id;
        let source = CachedNodes {
            nodes: view.nodes(id),
            pages: Default::default(),
        };
        Ok(requests
            .iter()
            .map(|request| {
                let value = match request.block {
                    Some(b) if b.index < state.length => {
                        view.read_block_checked(id, b.index, &source)?
                    }
                    _ => None,
                };
                let mut built = proof::build(&source, &state, &manifest, request, value)?;
                // Across forks the upgrade carries the fork path, so the
                // requester keeps every block it shares with this tree.
                if let (Some(u), Some(asked)) = (&mut built.upgrade, request.upgrade)
                    && asked.fork != state.fork
                {
                    let common = proof::common_length(&truncations, asked.fork, asked.start);
                    u.nodes.extend(proof::fork_path(&source, &state, common)?);
                }
                Ok(built)
            })
            .collect())
    }

    /// How many sibling levels above block `index` this core lacks: ask a
    /// peer for that many. `u64::MAX` when the block is past the known tree.
    pub fn missing_nodes(&self, index: u64) -> Result<u64> {
        Ok(self
            .missing_nodes_within(&[(index, u64::MAX)])?
            .first()
            .copied()
            .unwrap_or(u64::MAX))
    }

    /// [`Core::missing_nodes`] of several blocks, from one read view, each
    /// at most its given bound: a requester that knows a lower node is on
    /// its way (an earlier request brings it) stops there, and the walk
    /// reads no more of the tree than that.
    pub fn missing_nodes_within(&self, blocks: &[(u64, u64)]) -> Result<Vec<u64>> {
        self.with_tree(
            |h| h.state.clone(),
            |state, source| {
                blocks
                    .iter()
                    .map(|&(index, bound)| {
                        let mut cur = flat::leaf(index);
                        for count in 0..62.min(bound) {
                            if state.roots.iter().any(|r| r.index == cur)
                                || source.node(cur)?.is_some()
                            {
                                return Ok(count);
                            }
                            cur = flat::parent(cur);
                        }
                        Ok(if bound <= 62 { bound } else { u64::MAX })
                    })
                    .collect()
            },
        )
    }

    /// Verifies proofs from a peer and stores what they prove in one
    /// transaction. All or nothing: if any proof fails verification nothing
    /// is stored and the error says why.
    pub fn apply(&self, proofs: &[Proof]) -> Result<Vec<Verified>> {
        let mut st = self.write_state()?;
        if st.header.tail.is_some() {
            return Err(Error::InvalidArgument(
                "the core holds an unsigned tail: truncate it to the signed length before applying proofs",
            ));
        }
        let id = self.inner.id;
        let verified = {
            // Taken under this core's write lock: no commit of it between.
            let view = self.inner.shared.view()?;
            let mut verifier = Verifier::new(
                self.inner.key,
                st.header.manifest.clone(),
                st.header.state.clone(),
                CachedNodes {
                    nodes: view.nodes(id),
                    pages: Default::default(),
                },
            );
            proofs
                .iter()
                .map(|p| verifier.verify(p))
                .collect::<Result<Vec<_>>>()
        };
        let verified = match verified {
            Err(Error::Verify(VerifyError::Equivocation(evidence))) => {
                return Err(self.keep_evidence(evidence));
            }
            other => other?,
        };
        let mut header = st.header.clone();
        // Events in order: truncations, the new length, the blocks stored.
        let mut events = Vec::new();
        let mut downloaded = Vec::new();
        let mut base = header.state.length;
        let txn = self.inner.shared.write(self.inner.shared.durability)?;
        let result = (|| {
            let mut t = CoreTables::open(&txn)?;
            // Nodes are written once per page for the whole batch, except
            // that a fork change first writes what came before it.
            let mut pending: Vec<Node> = Vec::new();
            let mut new_blocks: Vec<(u64, &[u8])> = Vec::new();
            for (v, proof) in verified.iter().zip(proofs) {
                if let Some(m) = &v.manifest {
                    header.manifest = Some(m.clone());
                }
                if let Some(next) = &v.upgrade {
                    if v.fork_changed {
                        t.put_nodes(id, &pending)?;
                        pending.clear();
                        blockstore::write_scattered(
                            &mut t.blocks,
                            id,
                            std::mem::take(&mut new_blocks),
                        )?;
                        let new: std::collections::HashMap<u64, Node> =
                            v.nodes.iter().map(|n| (n.index, *n)).collect();
                        let local = TableNodes {
                            table: &t.nodes,
                            id,
                        };
                        let keep =
                            proof::fork_point(&local, &next.roots, &new)?.min(header.state.length);
                        let removed = t.cut_after(id, keep, &mut st.bitfield)?;
                        header.bytes_stored -= removed.min(header.bytes_stored);
                        header.truncations.push((next.fork, keep));
                        events.push(Event::Truncated {
                            fork: next.fork,
                            length: keep,
                        });
                        base = keep;
                    }
                    header.state = next.clone();
                }
                pending.extend_from_slice(&v.nodes);
                if let (Some(index), Some(b)) = (v.block, &proof.block)
                    && !st.bitfield.get(index)
                {
                    new_blocks.push((index, b.value.as_slice()));
                    downloaded.push(Event::Downloaded {
                        index,
                        bytes: b.value.len() as u64,
                    });
                    header.bytes_stored += b.value.len() as u64;
                    st.bitfield.set_range(index, index + 1, true);
                }
            }
            t.put_nodes(id, &pending)?;
            blockstore::write_scattered(&mut t.blocks, id, new_blocks)?;
            t.put_bitfield(id, &mut st.bitfield)?;
            t.put_header(id, &header)?;
            Ok(())
        })();
        if header.state.length > base {
            events.push(Event::Appended {
                length: header.state.length,
                byte_length: header.state.byte_length(),
            });
        }
        events.append(&mut downloaded);
        self.finish(st, txn, result, header, &events)?;
        Ok(verified)
    }
}
