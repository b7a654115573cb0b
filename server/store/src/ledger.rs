//! The ledger entry: the server's wrapper around a record, which is what a leaf hashes.
//!
//! `entry = JCS({"v":1,"type":"evidence","record":<record>,"agent":<principal>,
//! "received_at":<time>,"prev":<leaf index or null>})`, leaf hash = SHA-256(0x00 ‖ entry).
//! `prev` links each entry to the previous one for the same (source id, locator), so an export
//! that omits a version of an artifact is detectable.

use serde::{Deserialize, Serialize};

use aims_model::{EvidenceRecord, Timestamp};

/// The wrapper, as serialised into the leaf.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// Entry format version (1).
    pub v: u32,
    /// Always `evidence` for now; other entry types (keys, catalog) may share the log later.
    #[serde(rename = "type")]
    pub entry_type: String,
    /// The record, exactly as accepted.
    pub record: EvidenceRecord,
    /// The authenticated principal that sent it.
    pub agent: String,
    /// When the server accepted it.
    pub received_at: Timestamp,
    /// Previous leaf for the same (source, locator).
    pub prev: Option<u64>,
}

/// Builds the canonical entry bytes for a record.
pub fn entry_bytes(
    record: &EvidenceRecord,
    agent: &str,
    received_at: Timestamp,
    prev: Option<u64>,
) -> Result<Vec<u8>, crate::StoreError> {
    let entry = LedgerEntry {
        v: 1,
        entry_type: "evidence".to_owned(),
        record: record.clone(),
        agent: agent.to_owned(),
        received_at,
        prev,
    };
    serde_json_canonicalizer::to_vec(&entry).map_err(|e| crate::StoreError::Encoding(e.to_string()))
}

/// SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}
