//! The ledger entry: what one leaf of the server's Merkle tree holds. Defined once, here, for
//! the server that writes entries and the verifier that reads them back byte for byte.
//!
//! `entry = JCS({"v":1,"type":T,<body>,"agent":<principal>,"received_at":<time>,"prev":<leaf or
//! null>})`, leaf hash = SHA-256(0x00 ‖ entry) ([`crate::merkle::leaf_hash`]).
//!
//! | type | body | `prev` links |
//! |---|---|---|
//! | `evidence` | `"record": EvidenceRecord` | the previous entry for the same (source id, locator) |
//! | `confirmation` | `"confirmation": Confirmation` | the previous confirmation of the same source id |
//!
//! `prev` makes an export that leaves out a version of an artifact (or a confirmation of a
//! source) detectable. Evidence entries are byte-identical to those written before
//! confirmations existed: the absent body is omitted, never `null`.

use serde::{Deserialize, Serialize};

use aims_model::confirmation::Confirmation;
use aims_model::record::{ContentHash, EvidenceRecord, RecordError};
use aims_model::time::Timestamp;

/// The entry format version.
pub const ENTRY_VERSION: u32 = 1;

/// What an entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// An evidence record.
    Evidence,
    /// A confirmation that a source still lists unchanged artifacts.
    Confirmation,
}

impl EntryType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evidence => "evidence",
            Self::Confirmation => "confirmation",
        }
    }
}

/// One ledger entry, as serialised into its leaf.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// Entry format version, [`ENTRY_VERSION`].
    pub v: u32,
    /// What the entry is about; names which body field is present.
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// The record, exactly as accepted (`evidence` entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<EvidenceRecord>,
    /// The confirmation (`confirmation` entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
    /// The authenticated principal that sent it (the token's name).
    pub agent: String,
    /// When the server accepted it.
    pub received_at: Timestamp,
    /// The previous leaf of the same chain (see the module docs).
    pub prev: Option<u64>,
}

/// Why entry bytes are not a valid entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Not JSON of the entry's shape.
    #[error("not a ledger entry: {0}")]
    Shape(String),
    /// The version is not one this crate reads.
    #[error("unsupported entry version {0}")]
    Version(u32),
    /// The body does not match the type.
    #[error("a {0} entry must carry exactly its own body")]
    Body(&'static str),
    /// Canonical encoding failed.
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl LedgerEntry {
    /// An evidence entry.
    pub fn evidence(
        record: EvidenceRecord,
        agent: &str,
        received_at: Timestamp,
        prev: Option<u64>,
    ) -> Self {
        Self {
            v: ENTRY_VERSION,
            entry_type: EntryType::Evidence,
            record: Some(record),
            confirmation: None,
            agent: agent.to_owned(),
            received_at,
            prev,
        }
    }

    /// A confirmation entry.
    pub fn confirmation(
        confirmation: Confirmation,
        agent: &str,
        received_at: Timestamp,
        prev: Option<u64>,
    ) -> Self {
        Self {
            v: ENTRY_VERSION,
            entry_type: EntryType::Confirmation,
            record: None,
            confirmation: Some(confirmation),
            agent: agent.to_owned(),
            received_at,
            prev,
        }
    }

    /// Parses entry bytes and checks version and body (not canonical form: see
    /// [`Self::canonical_bytes`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        let e: Self =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Shape(e.to_string()))?;
        e.check()?;
        Ok(e)
    }

    /// Version and body agree with the type.
    pub fn check(&self) -> Result<(), EntryError> {
        if self.v != ENTRY_VERSION {
            return Err(EntryError::Version(self.v));
        }
        match (self.entry_type, &self.record, &self.confirmation) {
            (EntryType::Evidence, Some(_), None) | (EntryType::Confirmation, None, Some(_)) => {
                Ok(())
            }
            (t, _, _) => Err(EntryError::Body(t.as_str())),
        }
    }

    /// The RFC 8785 bytes that the leaf hashes.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, RecordError> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| RecordError::Canonical(e.to_string()))
    }

    /// The id of what the entry carries: the record id or the confirmation id.
    pub fn subject_id(&self) -> Result<ContentHash, EntryError> {
        match (&self.record, &self.confirmation) {
            (Some(r), _) => Ok(r.record_id()?),
            (None, Some(c)) => Ok(c.confirmation_id()?),
            (None, None) => Err(EntryError::Body(self.entry_type.as_str())),
        }
    }

    /// The chain `prev` follows: `(source id, locator)` for evidence, `(source id, "")` for
    /// confirmations (a locator is never empty, so the two never meet).
    pub fn chain_key(&self) -> Option<(String, String)> {
        match (&self.record, &self.confirmation) {
            (Some(r), _) => Some((r.source.id.clone(), r.locator.clone())),
            (None, Some(c)) => Some((c.source.id.clone(), String::new())),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_entries_keep_their_v1_bytes() {
        let record: EvidenceRecord = serde_json::from_value(serde_json::json!({
            "v": 1, "agent": "a", "source": {"id": "s", "type": "dir"}, "locator": "l",
            "version": "1", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 0, "observed_at": "2026-11-20T10:00:00Z", "system": "x", "kind": "model_card"
        }))
        .unwrap();
        let t = Timestamp::parse_utc("2026-11-20T10:00:01Z").unwrap();
        let e = LedgerEntry::evidence(record, "tok", t, None);
        let bytes = String::from_utf8(e.canonical_bytes().unwrap()).unwrap();
        assert!(
            bytes.starts_with("{\"agent\":\"tok\",\"prev\":null,\"received_at\":"),
            "{bytes}"
        );
        assert!(
            bytes.ends_with(",\"type\":\"evidence\",\"v\":1}"),
            "{bytes}"
        );
        assert!(!bytes.contains("confirmation"));
        assert_eq!(LedgerEntry::parse(bytes.as_bytes()).unwrap(), e);
        let bad = bytes.replace("\"type\":\"evidence\"", "\"type\":\"confirmation\"");
        assert!(LedgerEntry::parse(bad.as_bytes()).is_err());
    }
}
