//! Evidence of equivocation kept in the store: two conflicting signed
//! states of one core (see [`Equivocation`]).

use redb::ReadableTable;

use crate::core::Core;
use crate::error::{Error, Result, VerifyError};
use crate::storage::{EVIDENCE, decode_evidence, encode_evidence};
use crate::verify::Equivocation;

impl Core {
    /// Stores the first evidence of equivocation found for this core (two
    /// conflicting signed states) and returns the error that reports it.
    pub(crate) fn keep_evidence(&self, evidence: Box<Equivocation>) -> Error {
        let stored = (|| {
            let txn = self.inner.shared.write(self.inner.shared.durability)?;
            {
                let mut t = txn.open_table(EVIDENCE)?;
                if t.get(self.inner.id)?.is_none() {
                    t.insert(self.inner.id, encode_evidence(&evidence).as_slice())?;
                }
            }
            txn.commit()?;
            Ok::<_, Error>(())
        })();
        match stored {
            Ok(()) => VerifyError::Equivocation(evidence).into(),
            Err(e) => e,
        }
    }

    /// The evidence of equivocation kept for this core: two signed states
    /// at one fork that cannot belong to one history (the writer signed
    /// both). `None` while no peer has brought any. The first evidence
    /// found is kept; the core goes on trusting its own state.
    pub fn equivocation(&self) -> Result<Option<Equivocation>> {
        let _st = self.read_state()?;
        let txn = self.inner.shared.db.begin_read()?;
        let table = match txn.open_table(EVIDENCE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        table
            .get(self.inner.id)?
            .map(|v| decode_evidence(v.value()))
            .transpose()
    }
}
