//! Statements of applicability (DESIGN §12.3; ISO/IEC 42001 clause 6.1.3) as ledger records.
//!
//! An admin's decision that a control does or does not apply to an AI system is written by the
//! server as an ordinary [`EvidenceRecord`] of source type `manual`: one locator per (system,
//! control), so the ledger keeps every change with who (`agent`, the admin's token name), when
//! (`observed_at` and the entry's receipt) and why (`metadata.justification`), exports carry it,
//! and `aims-verify` replays it like any other record. The newest statement per locator wins.
//!
//! Only the server writes `manual` records (ingest refuses them from agents), and assessment
//! honours a statement only when its source type is `manual`, so an agent cannot exclude a
//! control by sending a record of this kind.

use serde::{Deserialize, Serialize};

use crate::manual::{check_free_text, server_record};
use crate::record::{EvidenceRecord, RecordError, RecordEvent, SourceType, validate_ident};
use crate::time::Timestamp;

/// The evidence kind of a statement of applicability.
pub const APPLICABILITY_KIND: &str = "applicability_statement";

/// Locators of statements: `aims:applicability/<system>/<control>`.
const LOCATOR_PREFIX: &str = "aims:applicability/";

/// Longest justification accepted, in bytes.
pub const MAX_JUSTIFICATION_BYTES: usize = 4096;

/// One decision about one control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    /// Whether the control applies to the system.
    pub applicable: bool,
    /// Why (required when the control does not apply).
    #[serde(default)]
    pub justification: String,
}

impl Applicability {
    /// A control that does not apply needs a justification; every justification is bounded
    /// printable text (line breaks and tabs allowed).
    pub fn validate(&self) -> Result<(), RecordError> {
        let j = self.justification.trim();
        if !self.applicable && j.is_empty() {
            return Err(RecordError::Invalid {
                field: "justification",
                reason: "a control that does not apply needs a justification".into(),
            });
        }
        check_free_text(
            "justification",
            &self.justification,
            MAX_JUSTIFICATION_BYTES,
        )?;
        Ok(())
    }
}

/// The record that states `decision` for `control` of `system`, made by `by` at `at`.
pub fn applicability_record(
    system: &str,
    control: &str,
    decision: &Applicability,
    by: &str,
    at: Timestamp,
) -> Result<EvidenceRecord, RecordError> {
    validate_ident("control", control)?;
    decision.validate()?;
    let justification = decision.justification.trim();
    let mut metadata = serde_json::Map::new();
    metadata.insert("control".into(), control.into());
    metadata.insert("applicable".into(), decision.applicable.into());
    metadata.insert("justification".into(), justification.into());
    server_record(
        system,
        format!("{LOCATOR_PREFIX}{system}/{control}"),
        APPLICABILITY_KIND,
        by,
        at,
        metadata,
    )
}

/// The (control, decision) a record states, when it is a statement of applicability written by
/// the server; `None` for every other record.
pub fn applicability_of(record: &EvidenceRecord) -> Option<(&str, Applicability)> {
    if record.source.source_type != SourceType::Manual
        || record.kind != APPLICABILITY_KIND
        || record.event != RecordEvent::Observed
    {
        return None;
    }
    let control = record.metadata.get("control")?.as_str()?;
    let applicable = record.metadata.get("applicable")?.as_bool()?;
    let justification = record
        .metadata
        .get("justification")
        .and_then(|j| j.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((
        control,
        Applicability {
            applicable,
            justification,
        },
    ))
}

/// The statement in force per control: of `items` (in ledger order), the newest statement of
/// applicability for each control ([`applicability_of`]); other records are skipped.
pub fn current_statements<'a, T>(
    items: impl IntoIterator<Item = &'a T>,
    record: impl Fn(&T) -> &EvidenceRecord,
) -> std::collections::BTreeMap<&'a str, (Applicability, &'a T)> {
    let mut out = std::collections::BTreeMap::new();
    for item in items {
        if let Some((control, decision)) = applicability_of(record(item)) {
            out.insert(control, (decision, item));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        Timestamp::parse_utc("2026-12-07T10:00:00Z").unwrap()
    }

    #[test]
    fn a_statement_round_trips_through_its_record() {
        let d = Applicability {
            applicable: false,
            justification: "in-house system, no third-party suppliers".into(),
        };
        let r = applicability_record("fraud", "A.10.3", &d, "lead", at()).unwrap();
        assert_eq!(r.locator, "aims:applicability/fraud/A.10.3");
        assert_eq!(r.agent, "lead");
        let (control, back) = applicability_of(&r).unwrap();
        assert_eq!(control, "A.10.3");
        assert_eq!(back, d);
        // The same statement twice is the same record (ingest is idempotent).
        let again = applicability_record("fraud", "A.10.3", &d, "lead", at()).unwrap();
        assert_eq!(r.record_id().unwrap(), again.record_id().unwrap());
    }

    #[test]
    fn exclusions_need_a_justification_and_agents_cannot_forge_one() {
        let none = Applicability {
            applicable: false,
            justification: "  ".into(),
        };
        assert!(applicability_record("s", "A.6.2.8", &none, "a", at()).is_err());
        let bidi = Applicability {
            applicable: false,
            justification: "fine\u{202E}txet".into(),
        };
        assert!(applicability_record("s", "A.6.2.8", &bidi, "a", at()).is_err());
        let ok = Applicability {
            applicable: false,
            justification: "why".into(),
        };
        let mut r = applicability_record("s", "A.6.2.8", &ok, "a", at()).unwrap();
        r.source.source_type = SourceType::Git;
        assert!(applicability_of(&r).is_none());
    }
}
