//! The card and report parsers: bytes through `aims_collect::parse` (the engine's only entry) under
//! a file name picked by the first byte, so every recogniser is reached: Hugging Face cards
//! (Markdown front matter), Croissant, Great Expectations, OpenLineage, `dvc.lock`, our own
//! JSON/YAML report formats, and the JSON sniffing of files without an extension.
//!
//! Never panics; and the documented bounds hold: every string in the metadata is at most
//! `MAX_STRING` bytes, every list at most `MAX_LIST` entries, the error message is bounded, and
//! the metadata has a canonical (RFC 8785) form, as the record built from it needs.
#![no_main]

use aims_collect::formats::{MAX_LIST, MAX_STRING};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PATHS: &[&str] = &[
    "systems/a/model/README.md",
    "systems/a/data/README.markdown",
    "docs/adr/0001-decision.mdx",
    "systems/a/data/croissant.json",
    "systems/a/data/croissant.jsonld",
    "systems/a/reports/data_quality/ge_result.json",
    "lineage/run-event.json",
    "systems/a/reports/validation/model-v4.json",
    "systems/a/reports/monitoring/weekly.json",
    "systems/a/approvals/production.yaml",
    "systems/a/params.yml",
    "systems/a/dvc.lock",
    "systems/a/DVC.LOCK",
    "systems/a/report",
    "systems/a/weights.bin",
];

fn check_bounds(v: &Value, at: &str) {
    match v {
        Value::String(s) => assert!(s.len() <= MAX_STRING, "{at}: string of {} bytes", s.len()),
        Value::Array(a) => {
            assert!(a.len() <= MAX_LIST, "{at}: list of {} entries", a.len());
            for (i, x) in a.iter().enumerate() {
                check_bounds(x, &format!("{at}[{i}]"));
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                check_bounds(x, &format!("{at}.{k}"));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector) % PATHS.len()];
    let parsed = aims_collect::parse(path, bytes);
    if let Some(e) = &parsed.parse_error {
        assert!(e.len() <= MAX_STRING, "parse_error of {} bytes", e.len());
    }
    for (k, v) in &parsed.metadata {
        check_bounds(v, k);
    }
    if let Err(e) = canonical_check(&parsed.metadata) {
        panic!("metadata has no canonical form: {e}");
    }
});

fn canonical_check(m: &serde_json::Map<String, Value>) -> Result<(), String> {
    // The record's canonical encoding is what the engine computes for every artifact.
    let record = aims_model::EvidenceRecord {
        v: aims_model::RECORD_VERSION,
        agent: "fuzz".into(),
        source: aims_model::SourceRef {
            id: "src".into(),
            source_type: aims_model::SourceType::Dir,
        },
        locator: "file:///fuzz".into(),
        version: "1".into(),
        sha256: aims_model::ContentHash::of(b""),
        size: 0,
        observed_at: aims_model::Timestamp::from_unix_secs(0).ok_or("epoch")?,
        system: "sys".into(),
        kind: "unclassified".into(),
        metadata: m.clone(),
        event: aims_model::RecordEvent::Observed,
        artifact_time: None,
    };
    record
        .canonical_bytes()
        .map(drop)
        .map_err(|e| e.to_string())
}
