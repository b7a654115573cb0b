//! Records the server writes itself, for an admin (DESIGN §12.3): statements of applicability
//! ([`crate::applicability`]), acknowledgements of findings ([`crate::acknowledgement`]) and
//! uploads. They are ordinary evidence records of source `{id: aims-server, type: manual}`, so
//! the ledger, history, exports and the verifier's recomputation carry them like any other;
//! `agent` is the admin's token name (who), `observed_at` the decision time (when), and the
//! metadata says what and why. The SHA-256 is over the JCS of `{"system", ...metadata}`.
//!
//! Only the server writes `manual` records: ingest refuses them, and assessment honours a
//! decision only when its source type is `manual`.

use crate::record::{
    ContentHash, EvidenceRecord, RECORD_VERSION, RecordError, RecordEvent, SourceRef, SourceType,
    is_deceptive, validate_ident,
};
use crate::time::Timestamp;

/// The source id of every record the server writes itself.
pub const SERVER_SOURCE_ID: &str = "aims-server";

/// The kinds only the server writes.
pub const SERVER_KINDS: &[&str] = &[
    crate::applicability::APPLICABILITY_KIND,
    crate::acknowledgement::ACKNOWLEDGEMENT_KIND,
];

/// Bounded free text for a person (justifications, reasons): at most `max` bytes, no control
/// characters but line breaks and tabs, no bidirectional controls.
pub(crate) fn check_free_text(field: &'static str, s: &str, max: usize) -> Result<(), RecordError> {
    if s.len() > max {
        return Err(RecordError::Invalid {
            field,
            reason: format!("at most {max} bytes"),
        });
    }
    if s.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_deceptive(c))
    {
        return Err(RecordError::Invalid {
            field,
            reason: "control characters and bidirectional controls are not allowed".into(),
        });
    }
    Ok(())
}

/// A `manual` record about `system` at `locator`, decided by `by` at `at`, stating `metadata`.
pub(crate) fn server_record(
    system: &str,
    locator: String,
    kind: &str,
    by: &str,
    at: Timestamp,
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Result<EvidenceRecord, RecordError> {
    validate_ident("system", system)?;
    let mut content = metadata.clone();
    content.insert("system".into(), system.into());
    let content = serde_json_canonicalizer::to_vec(&content)
        .map_err(|e| RecordError::Canonical(e.to_string()))?;
    let sha256 = ContentHash::of(&content);
    let record = EvidenceRecord {
        v: RECORD_VERSION,
        agent: by.to_owned(),
        source: SourceRef {
            id: SERVER_SOURCE_ID.into(),
            source_type: SourceType::Manual,
        },
        locator,
        version: sha256.as_str()[..16].to_owned(),
        sha256,
        size: content.len() as u64,
        observed_at: at,
        system: system.to_owned(),
        kind: kind.to_owned(),
        metadata,
        event: RecordEvent::Observed,
        artifact_time: None,
    };
    record.validate()?;
    Ok(record)
}
