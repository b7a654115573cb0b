//! Acknowledged findings — accepted risk (DESIGN §12.3) — as ledger records.
//!
//! `POST /v1/findings/{id}/acknowledge` makes the server write a `manual` record
//! ([`crate::manual`]) naming the finding, the reason and an expiry at most
//! [`MAX_ACKNOWLEDGE_DAYS`] ahead. While it holds, the finding carries `acknowledged` and no
//! longer sets its controls' status. It ends by itself: at `expires_at`, or when the evidence
//! changes (a finding's ID covers its evidence records, so changed evidence is a new finding).

use serde::{Deserialize, Serialize};

use crate::manual::{check_free_text, server_record};
use crate::record::{EvidenceRecord, RecordError, RecordEvent, SourceType};
use crate::time::Timestamp;

/// The evidence kind of an acknowledgement.
pub const ACKNOWLEDGEMENT_KIND: &str = "finding_acknowledgement";

/// Locators: `aims:acknowledgement/<system>/<finding id>`.
const LOCATOR_PREFIX: &str = "aims:acknowledgement/";

/// Longest acknowledgement, in days.
pub const MAX_ACKNOWLEDGE_DAYS: i64 = 365;

/// Longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 4096;

/// Body of `POST /v1/findings/{id}/acknowledge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// Why the risk is accepted.
    pub reason: String,
    /// Until when (after now, at most [`MAX_ACKNOWLEDGE_DAYS`] ahead).
    pub expires_at: Timestamp,
}

/// An acknowledgement in force, as a finding carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who accepted it (the admin token's name).
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
    /// Until when.
    pub expires_at: Timestamp,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// The record acknowledging finding `finding` of `system`, made by `by` at `at`.
pub fn acknowledgement_record(
    system: &str,
    finding: &str,
    req: &AcknowledgeRequest,
    by: &str,
    at: Timestamp,
) -> Result<EvidenceRecord, RecordError> {
    if finding.len() != 32 || !finding.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("finding", "a finding ID is 32 hex characters"));
    }
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(invalid("reason", "say why the risk is accepted"));
    }
    check_free_text("reason", reason, MAX_REASON_BYTES)?;
    if req.expires_at <= at {
        return Err(invalid(
            "expires_at",
            format!("{} is not in the future", req.expires_at),
        ));
    }
    let limit = at.as_datetime() + chrono::Duration::days(MAX_ACKNOWLEDGE_DAYS);
    if req.expires_at.as_datetime() > limit {
        return Err(invalid(
            "expires_at",
            format!("at most {MAX_ACKNOWLEDGE_DAYS} days ahead"),
        ));
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("finding".into(), finding.into());
    metadata.insert("reason".into(), reason.into());
    metadata.insert("expires_at".into(), req.expires_at.to_string().into());
    server_record(
        system,
        format!("{LOCATOR_PREFIX}{system}/{finding}"),
        ACKNOWLEDGEMENT_KIND,
        by,
        at,
        metadata,
    )
}

/// The (finding ID, acknowledgement) a record states, when it is an acknowledgement written by
/// the server; `None` for every other record.
pub fn acknowledgement_of(record: &EvidenceRecord) -> Option<(&str, Acknowledgement)> {
    if record.source.source_type != SourceType::Manual
        || record.kind != ACKNOWLEDGEMENT_KIND
        || record.event != RecordEvent::Observed
    {
        return None;
    }
    let finding = record.metadata.get("finding")?.as_str()?;
    let reason = record.metadata.get("reason")?.as_str()?.to_owned();
    let expires_at = Timestamp::parse_utc(record.metadata.get("expires_at")?.as_str()?).ok()?;
    Some((
        finding,
        Acknowledgement {
            by: record.agent.clone(),
            reason,
            at: record.observed_at,
            expires_at,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_utc(s).unwrap()
    }

    #[test]
    fn expiry_bounds_and_round_trip() {
        let at = t("2026-12-07T10:00:00Z");
        let id = "0123456789abcdef0123456789abcdef";
        let req = |e: &str| AcknowledgeRequest {
            reason: "vendor fix due next sprint".into(),
            expires_at: t(e),
        };
        assert!(acknowledgement_record("s", id, &req("2026-12-07T09:00:00Z"), "a", at).is_err());
        assert!(acknowledgement_record("s", id, &req("2027-12-08T10:00:00Z"), "a", at).is_err());
        assert!(acknowledgement_record("s", "xyz", &req("2027-01-07T10:00:00Z"), "a", at).is_err());
        let r = acknowledgement_record("s", id, &req("2027-01-07T10:00:00Z"), "lead", at).unwrap();
        let (f, ack) = acknowledgement_of(&r).unwrap();
        assert_eq!(f, id);
        assert_eq!(ack.by, "lead");
        assert_eq!(ack.expires_at, t("2027-01-07T10:00:00Z"));
        let mut forged = r.clone();
        forged.source.source_type = SourceType::S3;
        assert!(acknowledgement_of(&forged).is_none());
    }
}
