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

use aims_ledger::LedgerEntry;
use aims_ledger::merkle::{Hash, leaf_hash};
use aims_model::{Confirmation, EvidenceRecord, RecordId, Timestamp};

use crate::StoreError;

/// The newest ledger entry for one (source id, locator).
#[derive(Clone, Debug)]
pub(crate) struct Newest {
    pub(crate) idx: u64,
    pub(crate) sha256: String,
    pub(crate) event: String,
    pub(crate) system: String,
}

/// `ledger_entries.event` of a confirmation entry (records are `observed` or `gone`).
pub(crate) const CONFIRMED: &str = "confirmed";

/// The (source id, locator) an artifact is known by.
pub(crate) type ArtifactKey = (String, String);

/// One leaf to append: the entry bytes and the columns `ledger_entries` indexes them by.
/// Confirmation entries have an empty locator, system and kind, event [`CONFIRMED`] and the
/// listing digest as `sha256`.
pub(crate) struct NewLeaf {
    pub(crate) idx: u64,
    /// The record id or confirmation id.
    pub(crate) record_id: String,
    pub(crate) leaf: Hash,
    pub(crate) entry: Vec<u8>,
    pub(crate) source_id: String,
    pub(crate) locator: String,
    pub(crate) system: String,
    pub(crate) kind: String,
    pub(crate) event: &'static str,
    pub(crate) sha256: String,
    pub(crate) observed_at: String,
    pub(crate) prev: Option<u64>,
}

impl NewLeaf {
    /// The leaf of an evidence entry.
    fn evidence(
        idx: u64,
        record_id: &RecordId,
        record: &EvidenceRecord,
        agent: &str,
        received_at: Timestamp,
        prev: Option<u64>,
    ) -> Result<Self, StoreError> {
        let entry = entry_bytes(record, agent, received_at, prev)?;
        Ok(Self {
            idx,
            record_id: record_id.as_str().to_owned(),
            leaf: leaf_hash(&entry),
            entry,
            source_id: record.source.id.clone(),
            locator: record.locator.clone(),
            system: record.system.clone(),
            kind: record.kind.clone(),
            event: record.event.as_str(),
            sha256: record.sha256.as_str().to_owned(),
            observed_at: record.observed_at.to_string(),
            prev,
        })
    }

    /// The leaf of a confirmation entry; `prev` is the source's previous confirmation.
    pub(crate) fn confirmation(
        idx: u64,
        confirmation: &Confirmation,
        agent: &str,
        received_at: Timestamp,
        prev: Option<u64>,
    ) -> Result<Self, StoreError> {
        let id = confirmation
            .confirmation_id()
            .map_err(|e| StoreError::Encoding(e.to_string()))?;
        let entry = LedgerEntry::confirmation(confirmation.clone(), agent, received_at, prev)
            .canonical_bytes()
            .map_err(|e| StoreError::Encoding(e.to_string()))?;
        Ok(Self {
            idx,
            record_id: id.as_str().to_owned(),
            leaf: leaf_hash(&entry),
            entry,
            source_id: confirmation.source.id.clone(),
            locator: String::new(),
            system: String::new(),
            kind: String::new(),
            event: CONFIRMED,
            sha256: confirmation.digest.as_str().to_owned(),
            observed_at: confirmation.observed_at.to_string(),
            prev,
        })
    }
}

/// The canonical bytes of an evidence entry (what its leaf hashes).
pub fn entry_bytes(
    record: &EvidenceRecord,
    agent: &str,
    received_at: Timestamp,
    prev: Option<u64>,
) -> Result<Vec<u8>, StoreError> {
    LedgerEntry::evidence(record.clone(), agent, received_at, prev)
        .canonical_bytes()
        .map_err(|e| StoreError::Encoding(e.to_string()))
}

/// What an ingest does.
pub(crate) struct Plan {
    /// `(record_id, leaf_index, duplicate)` per input record.
    pub(crate) results: Vec<(RecordId, u64, bool)>,
    /// The new leaves, in index order starting at the old tree size.
    pub(crate) leaves: Vec<NewLeaf>,
    /// Systems that received new records, in first-seen order.
    pub(crate) touched: Vec<String>,
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
pub(crate) fn plan(
    records: &[EvidenceRecord],
    ids: Vec<RecordId>,
    agent: &str,
    received_at: Timestamp,
    start: u64,
    held: &HashMap<String, u64>,
    newest: &HashMap<ArtifactKey, Newest>,
) -> Result<Plan, StoreError> {
    let mut next = start;
    let mut results = Vec::with_capacity(records.len());
    let mut leaves: Vec<NewLeaf> = Vec::new();
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
        let idx = next;
        leaves.push(NewLeaf::evidence(
            idx,
            &id,
            record,
            agent,
            received_at,
            prev,
        )?);
        batch_ids.insert(id.as_str().to_owned(), idx);
        batch_newest.insert(
            key,
            Newest {
                idx,
                sha256: record.sha256.as_str().to_owned(),
                event: record.event.as_str().to_owned(),
                system: record.system.clone(),
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

/// The artifacts whose newest entry a batch's plan needs: those of the records the ledger does
/// not hold yet (by record id), each once.
pub(crate) fn keys_to_look_up(
    records: &[EvidenceRecord],
    ids: &[RecordId],
    held: &HashMap<String, u64>,
) -> Vec<ArtifactKey> {
    let mut looked: std::collections::HashSet<ArtifactKey> = std::collections::HashSet::new();
    records
        .iter()
        .zip(ids)
        .filter(|(_, id)| !held.contains_key(id.as_str()))
        .map(|(record, _)| artifact_key(record))
        .filter(|key| looked.insert(key.clone()))
        .collect()
}

/// Which listed artifacts of a confirmation the ledger holds with the listed content (their
/// newest entry is `observed` with that SHA-256), and the systems those entries belong to.
/// `newest` holds the newest entry per (source id, locator) of the listing.
pub(crate) fn matched<'a>(
    confirmation: &Confirmation,
    artifacts: &'a [aims_model::ListedArtifact],
    newest: &HashMap<ArtifactKey, Newest>,
) -> (Vec<&'a aims_model::ListedArtifact>, Vec<String>) {
    let mut touched: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for a in artifacts {
        let key = (confirmation.source.id.clone(), a.locator.clone());
        let Some(n) = newest.get(&key) else { continue };
        if n.event == aims_model::RecordEvent::Observed.as_str() && n.sha256 == a.sha256.as_str() {
            out.push(a);
            if !touched.contains(&n.system) {
                touched.push(n.system.clone());
            }
        }
    }
    (out, touched)
}
