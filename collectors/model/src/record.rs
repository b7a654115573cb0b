//! The evidence record (DESIGN §4): what an agent saw, where, when, and the SHA-256 of its bytes.
//!
//! Identity: `record_id = hex(SHA-256(JCS(record)))`, where JCS is the RFC 8785 canonical JSON of
//! the record *as typed here* (timestamps re-serialised to millisecond `Z` form, `event` and
//! `metadata` always present). The agent and the server compute it the same way, so ingest is
//! idempotent and a record can be named before the server has seen it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// The record format version this crate writes and accepts.
pub const RECORD_VERSION: u32 = 1;

/// Upper bound on a record's canonical encoding (it must fit a tlog-tiles entry).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Why a record is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field is present but its value is not allowed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field, as named on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The canonical encoding is larger than [`MAX_RECORD_BYTES`].
    #[error("record is {size} bytes in canonical form, the limit is {MAX_RECORD_BYTES}")]
    TooLarge {
        /// Canonical size in bytes.
        size: usize,
    },
    /// Canonical encoding failed (non-finite number or similar).
    #[error("record cannot be canonicalised: {0}")]
    Canonical(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A SHA-256 digest in lowercase hex (64 characters). Only built by parsing or hashing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    /// Parses 64 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, RecordError> {
        if s.len() != 64 {
            return Err(invalid(
                "sha256",
                format!("expected 64 hex characters, got {}", s.len()),
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("sha256", "expected lowercase hex"));
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps a finished SHA-256 digest.
    pub fn from_digest(bytes: &[u8]) -> Self {
        Self(hex::encode(bytes))
    }

    /// SHA-256 of a byte slice (for small inputs; artifacts are hashed while streaming).
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_digest(&Sha256::digest(bytes))
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl FromStr for ContentHash {
    type Err = RecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A string's visitor (same errors as `String`'s) that checks the text in place.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = ContentHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ContentHash, E> {
                ContentHash::parse(s).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<ContentHash, E> {
                let s = std::str::from_utf8(b)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(b), &self))?;
                self.visit_str(s)
            }
        }
        d.deserialize_string(Text)
    }
}

/// The public ID of a record: the SHA-256 of its canonical encoding, in hex.
pub type RecordId = ContentHash;

/// The kinds of source an agent reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// A git repository (local path or remote URL).
    Git,
    /// A plain directory.
    Dir,
    /// The GitHub REST API.
    Github,
    /// An S3 bucket or S3-compatible store.
    S3,
    /// An MLflow tracking server / model registry.
    Mlflow,
    /// Written by the server for an admin (statements of applicability, uploads): never by an
    /// agent, and refused at ingest.
    Manual,
}

impl SourceType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Git => "git",
            Self::Dir => "dir",
            Self::Github => "github",
            Self::S3 => "s3",
            Self::Mlflow => "mlflow",
            Self::Manual => "manual",
        }
    }
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which configured source of which agent produced a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    /// The source's `id` from the agent configuration.
    pub id: String,
    /// The source's type.
    #[serde(rename = "type")]
    pub source_type: SourceType,
}

/// Whether the artifact was seen, or vanished at its source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordEvent {
    /// The artifact exists with this content.
    #[default]
    Observed,
    /// The artifact is no longer at its source; its earlier evidence stays in the ledger.
    Gone,
}

impl RecordEvent {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observed => "observed",
            Self::Gone => "gone",
        }
    }
}

/// One piece of evidence (DESIGN §4). Field order here is irrelevant to identity: the canonical
/// encoding sorts keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    /// Format version, always [`RECORD_VERSION`].
    pub v: u32,
    /// The agent that observed the artifact.
    pub agent: String,
    /// The configured source the artifact came from.
    pub source: SourceRef,
    /// Stable URI of the artifact (`git+https://…#path`, `s3://bucket/key`, …).
    pub locator: String,
    /// The source's cheap change token (git blob id, ETag, content sha, version timestamp).
    pub version: String,
    /// SHA-256 of the artifact bytes.
    pub sha256: ContentHash,
    /// Size of the artifact in bytes.
    pub size: u64,
    /// When the agent observed it.
    pub observed_at: Timestamp,
    /// The AI system the artifact belongs to.
    pub system: String,
    /// Evidence kind from the catalog, or `unclassified`.
    pub kind: String,
    /// Fields parsed from the artifact.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `observed` (default) or `gone`.
    #[serde(default)]
    pub event: RecordEvent,
    /// The artifact's own date (evaluated_at, approved_at, commit time), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_time: Option<Timestamp>,
}

/// Identifiers (agent, source id, system, kind): 1–128 characters of `[A-Za-z0-9._:/@-]`.
pub fn validate_ident(field: &'static str, s: &str) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > 128 {
        return Err(invalid(field, "must be 1 to 128 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:/@-".contains(&b))
    {
        return Err(invalid(
            field,
            "only letters, digits and . _ : / @ - are allowed",
        ));
    }
    Ok(())
}

/// Characters that make text display as something it is not, or that no single-line text
/// format can carry: bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069) and the Unicode line and paragraph separators (U+2028, U+2029).
pub fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Free text (locators, versions): 1 to `max` bytes, no control characters, no bidi controls,
/// no line or paragraph separators ([`is_deceptive`]).
pub fn validate_text(field: &'static str, s: &str, max: usize) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > max {
        return Err(invalid(field, format!("must be 1 to {max} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "control characters are not allowed"));
    }
    if s.chars().any(is_deceptive) {
        return Err(invalid(
            field,
            "bidirectional controls and line/paragraph separators (U+202A-U+202E, U+2066-U+2069, U+2028, U+2029) are not allowed",
        ));
    }
    Ok(())
}

/// NUL or a bidi control ([`is_deceptive`] minus the separators, which are allowed in free-form
/// metadata) anywhere in a metadata key or string.
fn metadata_problem(v: &serde_json::Value, path: &mut String) -> Option<String> {
    let bad = |s: &str| {
        s.chars()
            .any(|c| c == '\0' || (is_deceptive(c) && c != '\u{2028}' && c != '\u{2029}'))
    };
    match v {
        serde_json::Value::String(s) if bad(s) => Some(path.clone()),
        serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let r = metadata_problem(x, path);
            path.truncate(len);
            r
        }),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let r = if bad(k) {
                Some(path.clone())
            } else {
                metadata_problem(x, path)
            };
            path.truncate(len);
            r
        }),
        _ => None,
    }
}

/// Replaces NUL and bidi controls in metadata keys and strings by U+FFFD, so an artifact
/// whose fields carry them is still recorded (agents call this before validating).
pub fn sanitize_metadata(m: &mut serde_json::Map<String, serde_json::Value>) {
    fn clean(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c == '\0' || (is_deceptive(c) && c != '\u{2028}' && c != '\u{2029}') {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect()
    }
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains(|c: char| c == '\0' || is_deceptive(c)) => {
                *s = clean(s);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if let Some(mut x) = m.remove(&k) {
                        walk(&mut x);
                        m.insert(clean(&k), x);
                    }
                }
            }
            _ => {}
        }
    }
    let mut v = serde_json::Value::Object(std::mem::take(m));
    walk(&mut v);
    if let serde_json::Value::Object(o) = v {
        *m = o;
    }
}

impl EvidenceRecord {
    /// Checks everything that can be checked without a clock or a catalog.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.v != RECORD_VERSION {
            return Err(invalid(
                "v",
                format!("unsupported version {}, expected {RECORD_VERSION}", self.v),
            ));
        }
        validate_ident("agent", &self.agent)?;
        validate_ident("source.id", &self.source.id)?;
        validate_ident("system", &self.system)?;
        validate_ident("kind", &self.kind)?;
        validate_text("locator", &self.locator, 2048)?;
        validate_text("version", &self.version, 512)?;
        let mut path = "metadata".to_owned();
        let problem = self.metadata.iter().find_map(|(k, v)| {
            path.truncate("metadata".len());
            path.push('.');
            path.push_str(k);
            if k.contains([
                '\0', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
            ]) || k.contains(['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'])
            {
                return Some(path.clone());
            }
            metadata_problem(v, &mut path)
        });
        if let Some(at) = problem {
            return Err(invalid(
                "metadata",
                format!("{at}: NUL and bidirectional controls are not allowed"),
            ));
        }
        if self.size > (1u64 << 53) {
            return Err(invalid("size", "larger than 2^53"));
        }
        let len = self.canonical_bytes()?.len();
        if len > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { size: len });
        }
        Ok(())
    }

    /// RFC 8785 (JCS) canonical JSON of the record.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, RecordError> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| RecordError::Canonical(e.to_string()))
    }

    /// `hex(SHA-256(JCS(record)))`.
    pub fn record_id(&self) -> Result<RecordId, RecordError> {
        Ok(ContentHash::of(&self.canonical_bytes()?))
    }

    /// The time freshness is measured from: the artifact's own date when asked for and known,
    /// otherwise when it was observed.
    pub fn effective_time(&self, prefer_artifact_time: bool) -> Timestamp {
        match (prefer_artifact_time, self.artifact_time) {
            (true, Some(t)) => t,
            _ => self.observed_at,
        }
    }

    /// A string field of `metadata`, if present.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(serde_json::Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceRecord {
        serde_json::from_value(serde_json::json!({
            "v": 1, "agent": "cluster-a", "source": {"id": "repo", "type": "git"},
            "locator": "git+file:///srv/repo#systems/fraud/model_card.md",
            "version": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 0, "observed_at": "2026-11-20T10:00:00Z", "system": "fraud", "kind": "model_card"
        }))
        .unwrap()
    }

    #[test]
    fn canonical_form_is_stable_and_sorted() {
        let r = sample();
        let c = String::from_utf8(r.canonical_bytes().unwrap()).unwrap();
        assert!(c.starts_with(
            "{\"agent\":\"cluster-a\",\"event\":\"observed\",\"kind\":\"model_card\""
        ));
        assert!(c.contains("\"observed_at\":\"2026-11-20T10:00:00.000Z\""));
        assert_eq!(r.record_id().unwrap(), sample().record_id().unwrap());
    }

    #[test]
    fn defaults_do_not_change_identity() {
        let mut explicit = serde_json::to_value(sample()).unwrap();
        explicit["event"] = "observed".into();
        explicit["metadata"] = serde_json::json!({});
        let r2: EvidenceRecord = serde_json::from_value(explicit).unwrap();
        assert_eq!(sample().record_id().unwrap(), r2.record_id().unwrap());
    }

    #[test]
    fn issue_18_h1_deceptive_text_is_refused_and_metadata_sanitised() {
        for bad in [
            "a\u{2028}b",
            "a\u{2029}b",
            "evil\u{202E}gpj.exe",
            "x\u{2066}y",
        ] {
            let mut r = sample();
            r.locator = bad.into();
            assert!(r.validate().is_err(), "{bad:?}");
        }
        let mut r = sample();
        r.metadata
            .insert("name".into(), serde_json::json!(["ok", "a\u{0}b"]));
        let e = r.validate().unwrap_err().to_string();
        assert!(e.contains("metadata.name[1]"), "{e}");
        sanitize_metadata(&mut r.metadata);
        assert_eq!(r.metadata["name"][1], "a\u{FFFD}b");
        r.metadata.insert(
            "k\u{202E}".into(),
            serde_json::json!("line\u{2028}sep is fine"),
        );
        sanitize_metadata(&mut r.metadata);
        assert!(r.validate().is_ok());
        assert!(r.metadata.contains_key("k\u{FFFD}"));
    }

    #[test]
    fn rejects_bad_fields() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["surprise"] = 1.into();
        assert!(serde_json::from_value::<EvidenceRecord>(v).is_err());
        let mut v = serde_json::to_value(sample()).unwrap();
        v["sha256"] = "abc".into();
        assert!(serde_json::from_value::<EvidenceRecord>(v).is_err());
        let mut r = sample();
        r.locator = "a\u{7}b".into();
        assert!(r.validate().is_err());
        let mut r = sample();
        r.system = "has space".into();
        assert!(r.validate().is_err());
        assert!(sample().validate().is_ok());
    }
}
