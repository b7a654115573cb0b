//! Issue 14: every Annex A control is reachable by some evidence kind, and the governance kinds
//! (catalog/FORMATS.md) are recognised in their owned formats and at their usual locations,
//! without changing what the older rules recognise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, BTreeSet};

use aims_catalog::annex::ANNEX_A_CONTROLS;
use aims_catalog::{Catalog, Evidence, Facts, TimeBasis, assess};
use aims_model::{ContentHash, ControlStatus, EvidenceRecord, FindingKind, Timestamp};
use serde_json::{Map, Value, json};

const FORMATS_MD: &str = include_str!("../FORMATS.md");

/// The kinds issue 14 added, each with an owned format in FORMATS.md.
const GOVERNANCE_KINDS: [&str; 12] = [
    "ai_policy",
    "roles_assignment",
    "reporting_channel",
    "incident_report",
    "resource_inventory",
    "impact_assessment",
    "objectives_record",
    "user_information",
    "intended_use",
    "use_procedure",
    "supplier_assessment",
    "customer_agreement",
];

/// The controls no kind could reach before issue 14.
const PREVIOUSLY_UNREACHABLE: [&str; 19] = [
    "A.2.2", "A.2.3", "A.2.4", "A.3.3", "A.4.2", "A.4.5", "A.4.6", "A.5.2", "A.5.3", "A.5.4",
    "A.5.5", "A.6.1.2", "A.8.3", "A.8.5", "A.9.2", "A.9.3", "A.10.2", "A.10.3", "A.10.4",
];

fn catalog() -> Catalog {
    Catalog::embedded().unwrap()
}

/// Classifies with what the collector would know: the path, the detected format and the
/// top-level keys and string fields of the document (or its front matter).
fn classify(
    c: &Catalog,
    path: &str,
    format: Option<&str>,
    doc: &Map<String, Value>,
) -> Option<String> {
    let keys: BTreeSet<String> = doc.keys().cloned().collect();
    let fields: BTreeMap<String, String> = doc
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect();
    c.classify(&Facts {
        path,
        format,
        keys: &keys,
        fields: &fields,
    })
    .map(str::to_owned)
}

/// A file known by its path only: Markdown without front matter, PDF, DOCX… have no format;
/// YAML and JSON files are parsed, here with keys that mean nothing to any rule.
fn classify_path(c: &Catalog, path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let (format, doc) = if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        (Some("yaml"), json!({"name": "x", "items": []}))
    } else if lower.ends_with(".json") {
        (Some("json"), json!({"name": "x", "items": []}))
    } else {
        (None, json!({}))
    };
    classify(c, path, format, doc.as_object().unwrap())
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

// --- (a) reachability ------------------------------------------------------------------------

#[test]
fn every_annex_a_control_is_reachable_by_some_kind() {
    let c = catalog();
    let ids: Vec<&str> = c.controls().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ANNEX_A_CONTROLS.to_vec(),
        "the catalog lists the 38 controls"
    );
    let unreachable: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            !c.kinds()
                .iter()
                .any(|k| k.controls.iter().chain(&k.also).any(|x| x == id))
        })
        .collect();
    assert!(
        unreachable.is_empty(),
        "no evidence kind lists these controls in `controls` or `also`: {unreachable:?}"
    );
    // The same through the public lookup the assessment uses.
    for id in ids {
        assert!(
            c.kinds()
                .iter()
                .any(|k| c.controls_for_kind(&k.name).contains(&id)),
            "{id} is reachable by no kind"
        );
    }
}

#[test]
fn governance_kinds_match_the_table_in_formats_md() {
    let c = catalog();
    // | `kind` | primary | also | window | date field |
    let mut documented = BTreeMap::new();
    for line in FORMATS_MD.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 7 || !cells[4].ends_with(" d") {
            continue;
        }
        let kind = cells[1].trim_matches('`').to_owned();
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let days: u32 = cells[4].trim_end_matches(" d").parse().unwrap();
        documented.insert(kind, (list(cells[2]), list(cells[3]), days));
    }
    let names: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
    assert_eq!(names, GOVERNANCE_KINDS.into_iter().collect::<BTreeSet<_>>());
    for (name, (primary, also, days)) in &documented {
        let k = c
            .kind(name)
            .unwrap_or_else(|| panic!("kinds.yaml has no kind {name}"));
        assert_eq!(&k.controls, primary, "{name}: primary controls");
        assert_eq!(&k.also, also, "{name}: secondary controls");
        assert_eq!(k.freshness_days, *days, "{name}: window");
        assert_eq!(
            k.time,
            TimeBasis::Artifact,
            "{name}: freshness counts from the artifact"
        );
        assert!(!k.controls.is_empty(), "{name} has no primary control");
    }
    // Together they reach every control that was unreachable before.
    for id in PREVIOUSLY_UNREACHABLE {
        assert!(
            GOVERNANCE_KINDS
                .iter()
                .any(|k| c.controls_for_kind(k).contains(&id)),
            "{id}"
        );
    }
}

// --- (b) owned formats -----------------------------------------------------------------------

/// The fenced examples of FORMATS.md: (section kind, container, parsed document or front matter).
fn examples() -> Vec<(String, &'static str, Map<String, Value>)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = FORMATS_MD.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("## `") {
            section = rest.split('`').next().unwrap().to_owned();
            continue;
        }
        let container = match line.trim() {
            "```yaml" => "yaml",
            "```json" => "json",
            "```markdown" => "markdown",
            _ => continue,
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let doc: Value = match container {
            "json" => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{section}: JSON example does not parse: {e}")),
            "yaml" => serde_yaml::from_str(&body)
                .unwrap_or_else(|e| panic!("{section}: YAML example does not parse: {e}")),
            _ => {
                let fm = body
                    .strip_prefix("---\n")
                    .and_then(|r| r.split_once("\n---\n"))
                    .map(|(fm, _)| fm)
                    .unwrap_or_else(|| panic!("{section}: Markdown example has no front matter"));
                serde_yaml::from_str(fm)
                    .unwrap_or_else(|e| panic!("{section}: front matter does not parse: {e}"))
            }
        };
        let Value::Object(doc) = doc else {
            panic!("{section}: example is not a mapping")
        };
        out.push((section.clone(), container, doc));
    }
    out
}

/// Required fields per kind from the FORMATS.md tables: rows whose second cell is `yes` (one
/// field each), and `at least one` rows (a group of which one must be present).
fn required_fields() -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in FORMATS_MD.lines() {
        if let Some(rest) = line.strip_prefix("## `") {
            section = rest.split('`').next().unwrap().to_owned();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if section.is_empty()
            || cells.len() < 4
            || !(cells[2] == "yes" || cells[2] == "at least one")
        {
            continue;
        }
        let names: Vec<String> = cells[1]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_owned())
            .collect();
        if cells[2] == "yes" {
            for n in names {
                out.entry(section.clone()).or_default().push(vec![n]);
            }
        } else {
            out.entry(section.clone()).or_default().push(names);
        }
    }
    out
}

#[test]
fn formats_md_examples_are_classified_as_their_kind() {
    let c = catalog();
    let examples = examples();
    let required = required_fields();
    let mut seen = BTreeSet::new();
    for (section, container, doc) in &examples {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(
            kind, section,
            "the example under ## `{section}` has kind {kind:?}"
        );
        seen.insert(kind.to_owned());
        for group in &required[kind] {
            assert!(
                group.iter().any(|f| doc.contains_key(f)),
                "{kind} example lacks the required field(s) {group:?}"
            );
        }
        let (format, paths): (&str, [&str; 3]) = match *container {
            "json" => (
                "json",
                [
                    "governance/record.json",
                    "reports/validation/x.json",
                    "approvals/x.json",
                ],
            ),
            "yaml" => (
                "yaml",
                [
                    "governance/record.yaml",
                    "approvals/x.yaml",
                    "policies/x.yaml",
                ],
            ),
            _ => (
                "hf_card",
                [
                    "governance/record.md",
                    "docs/adr/0001-x.md",
                    "suppliers/x.md",
                ],
            ),
        };
        // The `kind` field decides wherever the file is, even inside another kind's folder.
        for path in paths {
            assert_eq!(
                classify(&c, path, Some(format), doc).as_deref(),
                Some(kind),
                "{kind} example at {path}"
            );
        }
    }
    assert_eq!(
        seen,
        GOVERNANCE_KINDS
            .iter()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>(),
        "one example per governance kind"
    );
}

#[test]
fn minimal_owned_documents_are_classified_in_every_container() {
    let c = catalog();
    for kind in GOVERNANCE_KINDS {
        let doc = obj(json!({"kind": kind, "title": "t"}));
        for (path, format) in [
            ("governance/doc.yaml", "yaml"),
            ("governance/doc.json", "json"),
            ("governance/doc.md", "hf_card"),
        ] {
            assert_eq!(
                classify(&c, path, Some(format), &doc).as_deref(),
                Some(kind),
                "{kind} in {format}"
            );
        }
        // The value must be the kind name exactly.
        let upper = obj(json!({"kind": kind.to_ascii_uppercase()}));
        assert_eq!(
            classify(&c, "governance/doc.yaml", Some("yaml"), &upper),
            None
        );
    }
}

#[test]
fn cyclonedx_bom_is_a_resource_inventory() {
    let c = catalog();
    let bom = obj(json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}));
    assert_eq!(
        classify(&c, "sbom/bom.json", Some("json"), &bom).as_deref(),
        Some("resource_inventory")
    );
}

// --- (b) typical locations -------------------------------------------------------------------

#[test]
fn typical_paths_are_classified() {
    let c = catalog();
    let cases: &[(&str, &[&str])] = &[
        (
            "ai_policy",
            &[
                "policies/ai-policy.md",
                "policies/responsible-ai.pdf",
                "policies/data/retention.docx",
                "docs/policies/acceptable-models.md",
                "systems/fraud/docs/policies/ai.md",
                "governance/policies/ai.md",
                "AI_POLICY.md",
                "handbook/responsible-ai-policy-v3.pdf",
                "docs/rai_policy.md",
            ],
        ),
        (
            "impact_assessment",
            &[
                "docs/impact-assessments/fraud-v7.md",
                "docs/impact_assessments/2026/credit.pdf",
                "impact-assessments/fraud.yaml",
                "systems/fraud/impact-assessment.md",
                "systems/fraud/ai-impact-assessment-2026.json",
                "docs/algorithmic_impact_assessment.docx",
                "compliance/impact-assessment.yml",
                "compliance/fria.pdf",
                "compliance/FRIA-credit-2026.md",
                // A telling name wins over the folder.
                "policies/impact-assessment-credit.md",
            ],
        ),
        (
            "roles_assignment",
            &[
                "docs/roles.md",
                "docs/roles-and-responsibilities.md",
                "systems/fraud/docs/roles_v2.md",
                "governance/roles_and_responsibilities.pdf",
                "governance/RACI.xlsx",
                "governance/raci-fraud.csv",
                "docs/ai-roles.yaml",
                "docs/policies/roles-and-responsibilities.md",
            ],
        ),
        (
            "reporting_channel",
            &[
                "docs/report-a-concern.md",
                "docs/reporting_concerns.md",
                "docs/raising-concerns.pdf",
                "policies/whistleblowing.md",
                "SPEAK_UP.md",
                "docs/report-adverse-effects.md",
                "docs/adverse-effects.html",
            ],
        ),
        (
            "incident_report",
            &[
                "incidents/2026-11-03-held-payments.md",
                "ops/incidents/INC-2026-014.json",
                "ops/incidents/2026/inc-15.yaml",
                "docs/postmortems/2026-11-03.md",
                "docs/post-mortems/outage.md",
                "docs/incident-report-2026-11.pdf",
                "policies/incident-communication-plan.md",
                "ops/incident_response_plan.md",
                "docs/postmortem-2026-11-03.md",
            ],
        ),
        (
            "resource_inventory",
            &[
                "docs/resource-inventory.md",
                "systems/fraud/resource_inventory.yaml",
                "docs/ai-resources.xlsx",
                "sbom/fraud.cdx.json",
                "sbom/fraud.cdx.xml",
            ],
        ),
        (
            "objectives_record",
            &[
                "docs/objectives.md",
                "governance/rai-objectives.md",
                "governance/responsible-ai-objectives-2027.pdf",
                "governance/ai_objectives.yaml",
                "policies/responsible-ai-objectives.md",
            ],
        ),
        (
            "user_information",
            &[
                "docs/user-guide.md",
                "docs/user-manual.pdf",
                "docs/instructions-for-use.md",
                "docs/transparency-note.md",
                "public/transparency_notice.html",
            ],
        ),
        (
            "intended_use",
            &[
                "docs/intended-use.md",
                "systems/fraud/intended_use.yaml",
                "intended-purpose.md",
                "docs/policies/intended-use.md",
            ],
        ),
        (
            "use_procedure",
            &[
                "docs/responsible-use.md",
                "policies/acceptable-use.md",
                "ops/human-oversight.md",
                "docs/use-procedure-case-handling.pdf",
            ],
        ),
        (
            "supplier_assessment",
            &[
                "suppliers/acme-labels.md",
                "suppliers/2026/acme.pdf",
                "docs/suppliers/acme.md",
                "docs/vendors/cloud-llm.md",
                "procurement/vendor-assessment-acme.json",
                "procurement/supplier_assessment.yaml",
                "procurement/supplier-review-2026.md",
                "procurement/vendor_due_diligence.pdf",
                "procurement/third-party-assessment.md",
            ],
        ),
        (
            "customer_agreement",
            &[
                "docs/customer-agreement.md",
                "contracts/customer_requirements_merchants.pdf",
                "docs/customer-commitments.md",
            ],
        ),
    ];
    let mut covered = BTreeSet::new();
    for (kind, paths) in cases {
        covered.insert(*kind);
        for path in *paths {
            assert_eq!(
                classify_path(&c, path).as_deref(),
                Some(*kind),
                "{path} should be a {kind}"
            );
        }
    }
    assert_eq!(
        covered,
        GOVERNANCE_KINDS.into_iter().collect::<BTreeSet<_>>()
    );
}

#[test]
fn codeowners_and_older_rules_keep_their_kind() {
    let c = catalog();
    // Paths an older rule matches keep that rule's kind, even inside the new folders.
    for (path, kind) in [
        ("CODEOWNERS", "process_control"),
        ("policies/CODEOWNERS", "process_control"),
        ("docs/policies/CODEOWNERS", "process_control"),
        (".github/pull_request_template.md", "process_control"),
        ("docs/policies/requirements.md", "requirements_spec"),
        ("docs/requirements-intended-use.md", "requirements_spec"),
        ("policies/model_card.md", "model_card"),
        ("suppliers/acme/dataset_card.md", "dataset_card"),
        ("docs/adr/0003-ai-policy.md", "design_record"),
        ("incidents/monitoring-2026-11.json", "monitoring_report"),
        (
            "impact-assessments/validation/fraud.json",
            "validation_report",
        ),
        ("suppliers/approvals/acme.yaml", "deployment_approval"),
        ("ops/incidents/logging.yaml", "event_log_config"),
        ("docs/impact-assessments/dvc.yaml", "pipeline_definition"),
        ("policies/params.yaml", "design_record"),
        ("dvc.lock", "lineage_record"),
    ] {
        assert_eq!(
            classify_path(&c, path).as_deref(),
            Some(kind),
            "{path} should still be a {kind}"
        );
    }
    // Content rules too: an older owned format or a card in a governance folder.
    let val = obj(json!({"kind": "validation_report", "model": {"name": "m", "version": "1"}}));
    assert_eq!(
        classify(&c, "policies/val.json", Some("json"), &val).as_deref(),
        Some("validation_report")
    );
    let card = obj(json!({"base_model": "x", "license": "mit"}));
    assert_eq!(
        classify(&c, "docs/policies/README.md", Some("hf_card"), &card).as_deref(),
        Some("model_card")
    );
    let gx = obj(json!({"success": true, "statistics": {}, "results": []}));
    assert_eq!(
        classify(&c, "incidents/gx.json", Some("json"), &gx).as_deref(),
        Some("data_quality_report")
    );
}

#[test]
fn lookalikes_stay_unclassified() {
    let c = catalog();
    for path in [
        "policy.txt",
        "trust/policy.txt",
        "systems/fraud/notes.txt",
        // Infrastructure policies and code.
        "policies/s3-read.json",
        "policies/require-labels.rego",
        "policies/kyverno/disallow-latest.yaml",
        "infra/iam/policies/s3-read.json",
        "infra/policies/README.md",
        "vendor/github.com/acme/policy/README.md",
        "src/suppliers/models.py",
        "suppliers/models.py",
        "suppliers/fixtures.json",
        // Ansible roles and inventories.
        "roles/web/tasks/main.yml",
        "roles/README.md",
        "inventory.yaml",
        "ansible/inventory/hosts",
        // Words that are not the documents.
        "docs/design/separation-of-concerns.md",
        "docs/reporting.md",
        "docs/resources.md",
        "churn/datasets/customers.md",
        "configs/objectives.yaml",
        "src/training/objectives.py",
        "notes/impact.md",
        "docs/usage.md",
        "src/incident_report.py",
        "data/terms-of-use.md",
    ] {
        assert_eq!(
            classify_path(&c, path),
            None,
            "{path} should stay unclassified"
        );
    }
}

// --- reachability through the assessment ------------------------------------------------------

const SYSTEM: &str = "fraud-scoring";

fn record(i: usize, kind: &str, at: &str) -> Evidence {
    let content = format!("{kind} v1");
    let record: EvidenceRecord = serde_json::from_value(json!({
        "v": 1, "agent": "test", "source": {"id": "repo", "type": "git"},
        "locator": format!("git#governance/{kind}.yaml"), "version": content,
        "sha256": ContentHash::of(content.as_bytes()).as_str(),
        "size": content.len(), "observed_at": at, "artifact_time": at,
        "system": SYSTEM, "kind": kind, "metadata": {"kind": kind},
    }))
    .unwrap();
    Evidence {
        record_id: record.record_id().unwrap(),
        leaf_index: i as u64,
        record,
    }
}

#[test]
fn governance_evidence_makes_the_other_controls_assessable() {
    let c = catalog();
    let at = "2026-11-20T10:00:00Z";
    let history: Vec<Evidence> = GOVERNANCE_KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| record(i, k, at))
        .collect();
    let status = |now: &str| {
        let a = assess(&c, SYSTEM, &history, Timestamp::parse_utc(now).unwrap());
        // Governance kinds are never required: they add no `missing` finding outside A.6/A.7.
        for f in &a.findings {
            if f.kind == FindingKind::Missing {
                assert!(
                    f.controls
                        .iter()
                        .all(|id| id.starts_with("A.6.") || id.starts_with("A.7.")),
                    "{f:?}"
                );
            }
        }
        a.controls
            .iter()
            .map(|v| (v.control.clone(), (v.status, v.reason.clone())))
            .collect::<BTreeMap<_, _>>()
    };
    let fresh = status("2026-11-21T00:00:00Z");
    for id in PREVIOUSLY_UNREACHABLE {
        let (s, reason) = &fresh[id];
        assert_eq!(*s, ControlStatus::Fresh, "{id}: {reason}");
    }
    // A year and a day later every window of 365 days has closed.
    let later = status("2027-11-21T00:00:00Z");
    for id in PREVIOUSLY_UNREACHABLE {
        let (s, reason) = &later[id];
        assert_eq!(*s, ControlStatus::Stale, "{id}: {reason}");
    }
}
