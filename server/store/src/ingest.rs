//! The ingest rules every store applies, as a pure function over what the ledger already holds.
//!
//! A store, holding its append lock, looks up (a) which of the batch's record IDs are already
//! leaves and (b) the newest entry for each (source id, locator) in the batch, then calls [`plan`],
//! which decides per record, in input order:
//! - **Known record** (same `record_id`, in the ledger or earlier in the batch): answered with the
//!   old index, nothing appended.
//! - **Re-observation**: the newest entry for the same artifact has the same sha256 and event (an
//!   agent that crashed between spooling and saving its cursor polls again with a new
//!   `observed_at`): answered with that entry's index, nothing appended.
//! - **Otherwise** a new leaf at the next dense index, with `prev` = the newest entry for the same
//!   artifact (if any).
//!
//! Looking everything up before deciding is equivalent to looking up record by record, because
//! inside the batch the plan itself tracks what it appended.

use std::collections::HashMap;

use aims_model::tlog::merkle::Hash;
use aims_model::{EvidenceRecord, RecordId, Timestamp};

use crate::StoreError;
use crate::ledger::{entry_bytes, leaf_hash};

/// The newest ledger entry for one (source id, locator).
#[derive(Clone, Debug)]
pub(crate) struct Newest {
    pub(crate) idx: u64,
    pub(crate) sha256: String,
    pub(crate) event: String,
}

/// The (source id, locator) an artifact is known by.
pub(crate) type ArtifactKey = (String, String);

/// One leaf to append.
pub(crate) struct NewLeaf<'a> {
    pub(crate) idx: u64,
    pub(crate) record_id: String,
    pub(crate) leaf: Hash,
    pub(crate) entry: Vec<u8>,
    pub(crate) record: &'a EvidenceRecord,
    pub(crate) prev: Option<u64>,
}

/// What an ingest does.
pub(crate) struct Plan<'a> {
    /// `(record_id, leaf_index, duplicate)` per input record.
    pub(crate) results: Vec<(RecordId, u64, bool)>,
    /// The new leaves, in index order starting at the old tree size.
    pub(crate) leaves: Vec<NewLeaf<'a>>,
    /// Systems that received new records, in first-seen order.
    pub(crate) touched: Vec<String>,
}

impl Plan<'_> {
    /// The leaf hashes of the new leaves, in order.
    pub(crate) fn leaf_hashes(&self) -> Vec<Hash> {
        self.leaves.iter().map(|l| l.leaf).collect()
    }
}

/// The record ID of every record, in order.
pub(crate) fn record_ids(records: &[EvidenceRecord]) -> Result<Vec<RecordId>, StoreError> {
    records
        .iter()
        .map(|r| {
            r.record_id()
                .map_err(|e| StoreError::Encoding(e.to_string()))
        })
        .collect()
}

/// The artifact key of a record.
pub(crate) fn artifact_key(record: &EvidenceRecord) -> ArtifactKey {
    (record.source.id.clone(), record.locator.clone())
}

/// Decides the batch. `ids` are [`record_ids`] of `records`; `held` maps record IDs already in the
/// ledger to their index; `newest` holds the newest ledger entry per artifact key of the batch
/// (absent: the artifact has no entry yet); `start` is the tree size before the batch.
pub(crate) fn plan<'a>(
    records: &'a [EvidenceRecord],
    ids: Vec<RecordId>,
    agent: &str,
    received_at: Timestamp,
    start: u64,
    held: &HashMap<String, u64>,
    newest: &HashMap<ArtifactKey, Newest>,
) -> Result<Plan<'a>, StoreError> {
    let mut next = start;
    let mut results = Vec::with_capacity(records.len());
    let mut leaves: Vec<NewLeaf<'a>> = Vec::new();
    let mut batch_ids: HashMap<String, u64> = HashMap::new();
    let mut batch_newest: HashMap<ArtifactKey, Newest> = HashMap::new();
    let mut touched: Vec<String> = Vec::new();
    for (record, id) in records.iter().zip(ids) {
        if let Some(&idx) = batch_ids.get(id.as_str()).or_else(|| held.get(id.as_str())) {
            results.push((id, idx, true));
            continue;
        }
        let key = artifact_key(record);
        let prev = batch_newest.get(&key).or_else(|| newest.get(&key));
        if let Some(p) = prev
            && p.sha256 == record.sha256.as_str()
            && p.event == record.event.as_str()
        {
            results.push((id, p.idx, true));
            continue;
        }
        let prev = prev.map(|p| p.idx);
        let entry = entry_bytes(record, agent, received_at, prev)?;
        let idx = next;
        leaves.push(NewLeaf {
            idx,
            record_id: id.as_str().to_owned(),
            leaf: leaf_hash(&entry),
            entry,
            record,
            prev,
        });
        batch_ids.insert(id.as_str().to_owned(), idx);
        batch_newest.insert(
            key,
            Newest {
                idx,
                sha256: record.sha256.as_str().to_owned(),
                event: record.event.as_str().to_owned(),
            },
        );
        if !touched.contains(&record.system) {
            touched.push(record.system.clone());
        }
        results.push((id, idx, false));
        next += 1;
    }
    Ok(Plan {
        results,
        leaves,
        touched,
    })
}
