//! Evidence an admin uploads by hand (DESIGN §12.3, `POST /v1/uploads`): policies, impact
//! assessments, supplier reviews and other documents no agent collects. The upload is an
//! ordinary `manual` record whose SHA-256 and size are those of the uploaded bytes (kept by the
//! server under that digest and served at `GET /v1/blobs/{sha256}`), at the locator
//! `aims:upload/<system>/<name>`, so a second upload of the same name is the next version of the
//! same artifact (`prev` links them) and drift and freshness apply as to collected evidence.
//! `agent` is the uploader's token name; `expires_at`, when given, ends the evidence's freshness
//! instead of its kind's window.

use serde_json::{Map, Value};

use crate::manual::{SERVER_KINDS, SERVER_SOURCE_ID};
use crate::record::{
    ContentHash, EvidenceRecord, RECORD_VERSION, RecordError, RecordEvent, SourceRef, SourceType,
    is_deceptive, validate_ident,
};
use crate::time::Timestamp;

/// Locators of uploads start with this.
pub const UPLOAD_LOCATOR_PREFIX: &str = "aims:upload/";
/// Longest file name accepted.
pub const MAX_NAME_BYTES: usize = 255;

/// What an upload states besides its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    /// The AI system.
    pub system: String,
    /// The evidence kind (a catalog kind).
    pub kind: String,
    /// The file name (no path).
    pub name: String,
    /// SHA-256 of the bytes.
    pub sha256: ContentHash,
    /// Their size.
    pub size: u64,
    /// The document's own date, if known (given, or parsed from it).
    pub artifact_time: Option<Timestamp>,
    /// When this evidence stops being fresh, overriding the kind's window.
    pub expires_at: Option<Timestamp>,
    /// Who uploaded it (the admin token's name).
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Fields parsed from the document (as for collected files).
    pub metadata: Map<String, Value>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A file name an upload may carry: 1–255 bytes, no path separators, not `.` or `..`, no
/// control or bidirectional characters.
pub fn validate_name(name: &str) -> Result<(), RecordError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid("name", format!("1 to {MAX_NAME_BYTES} bytes")));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(invalid("name", "a file name, without path separators"));
    }
    if name.chars().any(|c| c.is_control() || is_deceptive(c)) {
        return Err(invalid(
            "name",
            "control characters and bidirectional controls are not allowed",
        ));
    }
    Ok(())
}

/// The ledger record of an upload.
pub fn upload_record(u: &Upload) -> Result<EvidenceRecord, RecordError> {
    validate_ident("system", &u.system)?;
    validate_ident("kind", &u.kind)?;
    validate_name(&u.name)?;
    if SERVER_KINDS.contains(&u.kind.as_str()) {
        return Err(invalid("kind", "this kind is written by the server only"));
    }
    if let Some(t) = u.expires_at
        && t <= u.at
    {
        return Err(invalid("expires_at", "must be in the future"));
    }
    let mut metadata = u.metadata.clone();
    metadata.insert("name".into(), u.name.clone().into());
    metadata.insert("uploaded_by".into(), u.by.clone().into());
    if let Some(t) = u.expires_at {
        metadata.insert("expires_at".into(), t.to_string().into());
    }
    let record = EvidenceRecord {
        v: RECORD_VERSION,
        agent: u.by.clone(),
        source: SourceRef {
            id: SERVER_SOURCE_ID.into(),
            source_type: SourceType::Manual,
        },
        locator: format!("{UPLOAD_LOCATOR_PREFIX}{}/{}", u.system, u.name),
        version: u.sha256.as_str()[..16].to_owned(),
        sha256: u.sha256.clone(),
        size: u.size,
        observed_at: u.at,
        system: u.system.clone(),
        kind: u.kind.clone(),
        metadata,
        event: RecordEvent::Observed,
        artifact_time: u.artifact_time,
    };
    record.validate()?;
    Ok(record)
}

/// Whether `r` is an upload (a `manual` record at an upload locator): its bytes are a blob.
pub fn is_upload(r: &EvidenceRecord) -> bool {
    r.source.source_type == SourceType::Manual && r.locator.starts_with(UPLOAD_LOCATOR_PREFIX)
}

/// The expiry an upload set for itself, overriding its kind's freshness window.
pub fn upload_expiry(r: &EvidenceRecord) -> Option<Timestamp> {
    if !is_upload(r) {
        return None;
    }
    r.metadata
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|s| Timestamp::parse_utc(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> Upload {
        Upload {
            system: "fraud-scoring".into(),
            kind: "ai_policy".into(),
            name: "ai-policy-2026.pdf".into(),
            sha256: ContentHash::of(b"policy"),
            size: 6,
            artifact_time: None,
            expires_at: None,
            by: "compliance-admin".into(),
            at: Timestamp::now(),
            metadata: Map::new(),
        }
    }

    #[test]
    fn an_upload_is_a_manual_record_of_its_bytes() -> Result<(), RecordError> {
        let mut u = upload();
        u.expires_at = Timestamp::from_unix_millis(u.at.unix_millis() + 86_400_000);
        let r = upload_record(&u)?;
        assert_eq!(r.locator, "aims:upload/fraud-scoring/ai-policy-2026.pdf");
        assert_eq!(r.sha256, ContentHash::of(b"policy"));
        assert_eq!(r.source.source_type, SourceType::Manual);
        assert!(is_upload(&r));
        assert_eq!(upload_expiry(&r), u.expires_at);
        Ok(())
    }

    #[test]
    fn bad_uploads_are_refused() {
        for name in ["", "a/b", "..\\x", "..", "a\u{202e}b", "a\nb"] {
            let mut u = upload();
            u.name = name.into();
            assert!(upload_record(&u).is_err(), "{name:?}");
        }
        let mut u = upload();
        u.kind = crate::applicability::APPLICABILITY_KIND.into();
        assert!(upload_record(&u).is_err());
        let mut u = upload();
        u.expires_at = Some(u.at);
        assert!(upload_record(&u).is_err());
    }
}
