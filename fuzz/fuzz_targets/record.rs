//! The record parser: bytes as an ingest body (`POST /v1/evidence`, decoded and validated by the
//! server's own `parse_batch`) and as a single `EvidenceRecord`.
//!
//! Never panics; and for every record that decodes:
//! - its canonical (RFC 8785) bytes decode again, and canonicalising that gives the same bytes
//!   (the ledger stores these bytes and the verifier re-canonicalises them);
//! - for a valid record, the typed fields survive the canonical form unchanged, and the record
//!   encoded the way the agent sends it is accepted by the server with the same `record_id` (the
//!   agent checks the acknowledgement against its own id).
//!
//! Metadata numbers are compared through the canonical form only: JCS writes every number as an
//! IEEE 754 double, so an integer beyond 2^53 in metadata is stored rounded (by design of the
//! format, as in I-JSON).
#![no_main]

use std::sync::OnceLock;

use aims_catalog::Catalog;
use aims_model::wire::IngestRequest;
use aims_model::{EvidenceRecord, Timestamp};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::embedded().expect("the embedded catalog loads")) // allow: a fuzz harness reports a broken invariant by panicking
}

/// A fixed clock, so a crash reproduces; late enough that realistic `observed_at` values pass.
fn now() -> Timestamp {
    static NOW: OnceLock<Timestamp> = OnceLock::new();
    *NOW.get_or_init(|| Timestamp::parse_utc("2100-01-01T00:00:00Z").expect("valid timestamp")) // allow: a fuzz harness reports a broken invariant by panicking
}

/// The record with its metadata emptied: the typed fields only.
fn typed(r: &EvidenceRecord) -> EvidenceRecord {
    EvidenceRecord {
        metadata: serde_json::Map::new(),
        ..r.clone()
    }
}

fn check_canonical(r: &EvidenceRecord, valid: bool) {
    let Ok(canonical) = r.canonical_bytes() else {
        assert!(!valid, "a valid record has no canonical form: {r:?}");
        return;
    };
    let back: EvidenceRecord = match serde_json::from_slice(&canonical) {
        Ok(b) => b,
        Err(e) => panic!(
            "canonical bytes do not decode: {e}\n{}",
            String::from_utf8_lossy(&canonical)
        ),
    };
    let again = back
        .canonical_bytes()
        .expect("a decoded canonical record re-canonicalises"); // allow: a fuzz harness reports a broken invariant by panicking
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&canonical),
        "canonical form is not a fixed point"
    );
    if valid {
        assert_eq!(
            typed(&back),
            typed(r),
            "typed fields changed in canonical form"
        );
        assert!(
            back.validate().is_ok(),
            "canonical form of a valid record is invalid"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The ingest body, through exactly the server's decoding and validation.
    if let Ok(records) = aims_server::api::parse_batch(catalog(), data, now()) {
        for r in &records {
            check_canonical(r, true);
            // What the agent puts on the wire for this record must be accepted with the same id.
            let wire = serde_json::to_vec(&IngestRequest {
                records: vec![r.clone()],
            })
            .expect("a record encodes"); // allow: a fuzz harness reports a broken invariant by panicking
            let resent = match aims_server::api::parse_batch(catalog(), &wire, now()) {
                Ok(v) => v,
                Err(e) => panic!(
                    "re-encoded record refused: {e:?}\n{}",
                    String::from_utf8_lossy(&wire)
                ),
            };
            assert_eq!(resent.len(), 1);
            assert_eq!(
                resent[0].record_id().ok(),
                r.record_id().ok(),
                "record_id changed through the agent's encoding"
            );
        }
    }
    // 2. A single record.
    if let Ok(r) = serde_json::from_slice::<EvidenceRecord>(data) {
        let valid = r.validate().is_ok();
        check_canonical(&r, valid);
    }
});
