//! Assessment behaviour: freshness, missing, changed, failed, gone, inconsistent, determinism.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use aims_catalog::{Catalog, Evidence, SystemAssessment, assess};
use aims_model::{ContentHash, ControlStatus, EvidenceRecord, FindingKind, Timestamp};
use serde_json::{Value, json};

const SYSTEM: &str = "fraud-scoring";

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_utc(s).unwrap()
}

/// Builds a ledger history; `push` appends with increasing leaf indices.
#[derive(Default)]
struct History(Vec<Evidence>);

impl History {
    fn push(
        &mut self,
        locator: &str,
        kind: &str,
        content: &str,
        at: &str,
        metadata: Value,
    ) -> &mut Self {
        self.push_event(locator, kind, content, at, metadata, "observed")
    }

    fn push_event(
        &mut self,
        locator: &str,
        kind: &str,
        content: &str,
        at: &str,
        metadata: Value,
        event: &str,
    ) -> &mut Self {
        let record: EvidenceRecord = serde_json::from_value(json!({
            "v": 1, "agent": "test", "source": {"id": "repo", "type": "git"},
            "locator": locator, "version": content,
            "sha256": ContentHash::of(content.as_bytes()).as_str(),
            "size": content.len(), "observed_at": at, "artifact_time": at,
            "system": SYSTEM, "kind": kind, "metadata": metadata, "event": event,
        }))
        .unwrap();
        let leaf_index = self.0.len() as u64;
        self.0.push(Evidence {
            record_id: record.record_id().unwrap(),
            leaf_index,
            record,
        });
        self
    }

    fn gone(&mut self, locator: &str, kind: &str, content: &str, at: &str) -> &mut Self {
        self.push_event(locator, kind, content, at, json!({}), "gone")
    }
}

fn model(version: &str) -> Value {
    json!({"name": "fraud-model", "version": version})
}

fn passing_validation() -> Value {
    json!({"model": model("3"), "decision": "pass",
           "metrics": [{"name": "auc", "value": 0.91, "threshold": 0.85, "direction": "min"}]})
}

/// Every required kind, all dated 2026-11-20, consistent with each other.
fn healthy() -> History {
    let mut h = History::default();
    let at = "2026-11-20T10:00:00Z";
    h.push(
        "git#docs/requirements.md",
        "requirements_spec",
        "req v1",
        at,
        json!({}),
    )
    .push(
        "git#docs/adr/0001.md",
        "design_record",
        "adr v1",
        at,
        json!({}),
    )
    .push(
        "git#CODEOWNERS",
        "process_control",
        "owners v1",
        at,
        json!({}),
    )
    .push(
        "git#dvc.yaml",
        "pipeline_definition",
        "pipe v1",
        at,
        json!({}),
    )
    .push("git#dvc.lock", "lineage_record", "lock v1", at, json!({}))
    .push(
        "git#data/applications/README.md",
        "dataset_card",
        "card v1",
        at,
        json!({}),
    )
    .push(
        "git#gx/result.json",
        "data_quality_report",
        "gx v1",
        at,
        json!({"success": true}),
    )
    .push(
        "git#logging.yaml",
        "event_log_config",
        "log v1",
        at,
        json!({}),
    )
    .push(
        "git#model/README.md",
        "model_card",
        "model card v1",
        at,
        json!({}),
    )
    .push(
        "git#reports/validation.json",
        "validation_report",
        "val v1",
        "2026-11-20T11:00:00Z",
        passing_validation(),
    )
    .push(
        "git#approvals/prod.yaml",
        "deployment_approval",
        "appr v1",
        "2026-11-21T09:00:00Z",
        json!({"model": model("3"), "environment": "production"}),
    )
    .push(
        "s3://mon/latest.json",
        "monitoring_report",
        "mon v1",
        "2026-11-22T00:00:00Z",
        json!({"model": model("3")}),
    );
    h
}

fn run(h: &History, now: &str) -> SystemAssessment {
    assess(&Catalog::embedded().unwrap(), SYSTEM, &h.0, ts(now))
}

fn status(a: &SystemAssessment, control: &str) -> ControlStatus {
    a.controls
        .iter()
        .find(|c| c.control == control)
        .map(|c| c.status)
        .unwrap()
}

fn kinds(a: &SystemAssessment) -> Vec<FindingKind> {
    a.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn healthy_system_is_fresh() {
    let a = run(&healthy(), "2026-11-23T00:00:00Z");
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    for c in &a.controls {
        if c.control == "A.6.1.2" {
            assert_eq!(c.status, ControlStatus::NotApplicable);
        } else {
            assert_eq!(
                c.status,
                ControlStatus::Fresh,
                "{}: {}",
                c.control,
                c.reason
            );
        }
        assert!(!c.reason.is_empty());
    }
    let ids: Vec<&str> = a.controls.iter().map(|c| c.control.as_str()).collect();
    // 14 dashboard controls plus the secondary controls that evidence maps to, in ID order.
    assert_eq!(
        ids,
        [
            "A.3.2", "A.4.3", "A.4.4", "A.6.1.2", "A.6.1.3", "A.6.2.2", "A.6.2.3", "A.6.2.4",
            "A.6.2.5", "A.6.2.6", "A.6.2.7", "A.6.2.8", "A.7.2", "A.7.3", "A.7.4", "A.7.5",
            "A.7.6", "A.8.2", "A.8.4", "A.9.4"
        ]
    );
    let v = a.controls.iter().find(|c| c.control == "A.6.2.5").unwrap();
    // Approval (primary) and validation (also) both support A.6.2.5, newest first.
    assert_eq!(v.evidence.len(), 2);
    assert_eq!(v.evidence[0].kind, "deployment_approval");
    assert_eq!(v.evidence[1].kind, "validation_report");
    // Collected by an agent, never refreshed or confirmed yet: level 4, with a reason.
    for c in a
        .controls
        .iter()
        .filter(|c| c.status == ControlStatus::Fresh)
    {
        assert!(c.maturity >= 3, "{c:?}");
        assert!(!c.maturity_reason.is_empty());
    }
    let v = a.controls.iter().find(|c| c.control == "A.6.2.4").unwrap();
    assert_eq!(v.maturity, 4, "{v:?}");
}

/// Issue 16: a fresh control says until when (stale strictly after that instant); other
/// statuses say nothing.
#[test]
fn fresh_until_is_when_the_window_closes() {
    let h = healthy();
    let a = run(&h, "2026-11-23T00:00:00Z");
    let v = a.controls.iter().find(|c| c.control == "A.6.2.4").unwrap();
    // The validation of 2026-11-20 11:00 under the requirement's 90-day window.
    let until = ts("2027-02-18T11:00:00Z");
    assert_eq!(v.fresh_until, Some(until), "{v:?}");
    for c in &a.controls {
        assert_eq!(
            c.fresh_until.is_some(),
            c.status == ControlStatus::Fresh,
            "{c:?}"
        );
    }
    assert_eq!(
        status(&run(&h, "2027-02-18T11:00:00Z"), "A.6.2.4"),
        ControlStatus::Fresh
    );
    let after = run(&h, "2027-02-18T11:00:00.001Z");
    assert_eq!(status(&after, "A.6.2.4"), ControlStatus::Stale);
    let v = after
        .controls
        .iter()
        .find(|c| c.control == "A.6.2.4")
        .unwrap();
    assert_eq!(v.fresh_until, None);
}

#[test]
fn stale_validation() {
    let mut h2 = History::default();
    for e in &healthy().0 {
        if e.record.kind != "validation_report" {
            h2.0.push(e.clone());
        }
    }
    h2.push(
        "git#reports/validation.json",
        "validation_report",
        "val old",
        "2026-08-15T00:00:00Z",
        passing_validation(),
    );
    let a = run(&h2, "2026-11-23T00:00:00Z"); // 100 days later
    let stale: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Stale)
        .collect();
    assert_eq!(stale.len(), 1, "{:#?}", a.findings);
    assert_eq!(stale[0].controls, ["A.6.2.4"]);
    assert_eq!(stale[0].since, ts("2026-11-13T00:00:00Z"));
    assert!(stale[0].message.contains("90-day"), "{}", stale[0].message);
    assert_eq!(status(&a, "A.6.2.4"), ControlStatus::Stale);
}

#[test]
fn failed_metric_drifts_the_control() {
    let mut h = healthy();
    h.push(
        "git#reports/validation.json",
        "validation_report",
        "val v2",
        "2026-11-22T10:00:00Z",
        json!({"model": model("4"), "decision": "pass",
               "metrics": [{"name": "auc", "value": 0.8, "threshold": 0.85, "direction": "min"}]}),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    let failed: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", a.findings);
    assert_eq!(failed[0].controls, ["A.6.2.4"]);
    assert!(
        failed[0].message.contains("auc")
            && failed[0].message.contains("0.8")
            && failed[0].message.contains("0.85"),
        "{}",
        failed[0].message
    );
    assert_eq!(status(&a, "A.6.2.4"), ControlStatus::Drifted);
}

#[test]
fn explicit_passed_false_and_decision_fail() {
    let mut h = healthy();
    h.push("git#gx/result.json", "data_quality_report", "gx v2", "2026-11-22T00:00:00Z",
           json!({"metrics": [{"name": "null_rate", "value": 0.2, "threshold": 0.1, "direction": "max", "passed": false}]}));
    h.push(
        "s3://mon/latest.json",
        "monitoring_report",
        "mon v2",
        "2026-11-22T12:00:00Z",
        json!({"decision": "FAIL"}),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    let failed: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Failed)
        .collect();
    assert_eq!(failed.len(), 2, "{:#?}", a.findings);
    assert_eq!(status(&a, "A.7.4"), ControlStatus::Drifted);
    assert_eq!(status(&a, "A.6.2.6"), ControlStatus::Drifted);
}

#[test]
fn dataset_card_changed_after_validation() {
    let mut h = healthy();
    h.push(
        "git#data/applications/README.md",
        "dataset_card",
        "card v2",
        "2026-11-22T08:00:00Z",
        json!({"license": "cc-by-4.0"}),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    let changed: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Changed)
        .collect();
    assert_eq!(changed.len(), 1, "{:#?}", a.findings);
    let f = changed[0];
    assert_eq!(f.controls, ["A.6.2.4", "A.7.3"]);
    assert_eq!(f.since, ts("2026-11-22T08:00:00Z"));
    assert_eq!(f.evidence.len(), 2);
    assert!(
        f.message.contains("2026-11-22") && f.message.contains("2026-11-20"),
        "{}",
        f.message
    );
    // Issue 16: the message names the parsed fields that changed, in one sentence.
    assert!(
        f.message
            .ends_with(" that relied on it; fields changed: license."),
        "{}",
        f.message
    );
    assert_eq!(status(&a, "A.7.3"), ControlStatus::Drifted);
    assert_eq!(status(&a, "A.6.2.4"), ControlStatus::Drifted);

    // A new validation after the change clears it.
    h.push(
        "git#reports/validation.json",
        "validation_report",
        "val v2",
        "2026-11-22T12:00:00Z",
        passing_validation(),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert!(
        !kinds(&a).contains(&FindingKind::Changed),
        "{:#?}",
        a.findings
    );
}

fn changed_message(h: &History) -> String {
    let a = run(h, "2026-11-23T00:00:00Z");
    let changed: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Changed)
        .collect();
    assert_eq!(changed.len(), 1, "{:#?}", a.findings);
    changed[0].message.clone()
}

/// Issue 16 item 2: the fields a `changed` finding names are those that differ from the content
/// the validation relied on (not only the latest edit), at most five named, the rest counted.
#[test]
fn changed_finding_names_the_fields_changed_since_the_review() {
    let card = "git#data/applications/README.md";
    let v1 = json!({"license": "mit", "source_datasets": ["applications"],
                    "splits": [{"name": "train", "num_examples": 100}, {"name": "eval", "num_examples": 20}]});
    // Revalidated at 12:00 after an edit at 11:00 (v1b), then edited twice: the message
    // compares v1b, the content the validation relied on, with the current one.
    let mut h = healthy();
    h.push(card, "dataset_card", "card v1b", "2026-11-20T11:00:00Z", v1)
        .push(
            "git#reports/validation.json",
            "validation_report",
            "val v1b",
            "2026-11-20T12:00:00Z",
            passing_validation(),
        )
        .push(
            card,
            "dataset_card",
            "card v2",
            "2026-11-21T08:00:00Z",
            json!({"license": "apache-2.0", "source_datasets": ["applications"],
                   "splits": [{"name": "train", "num_examples": 100}, {"name": "eval", "num_examples": 20}]}),
        )
        .push(
            card,
            "dataset_card",
            "card v3",
            "2026-11-22T08:00:00Z",
            json!({"license": "apache-2.0", "source_datasets": ["applications", "bureau"],
                   "splits": [{"name": "train", "num_examples": 150}, {"name": "eval", "num_examples": 20}]}),
        );
    let m = changed_message(&h);
    assert!(
        m.ends_with("; fields changed: license, source_datasets and splits[train].num_examples."),
        "{m}"
    );
    assert!(m.contains(" changed on 2026-11-22 "), "{m}");

    // Many fields: five named, the rest counted.
    let many: serde_json::Map<String, Value> = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|k| ((*k).to_owned(), json!(1)))
        .collect();
    let mut h = healthy();
    h.push(
        card,
        "dataset_card",
        "card v2",
        "2026-11-22T08:00:00Z",
        Value::Object(many),
    );
    let m = changed_message(&h);
    assert!(
        m.ends_with("; fields changed: a, b, c, d, e and 2 more."),
        "{m}"
    );

    // Only the text changed: said so.
    let mut h = healthy();
    h.push(
        card,
        "dataset_card",
        "card v2",
        "2026-11-22T08:00:00Z",
        json!({}),
    );
    let m = changed_message(&h);
    assert!(
        m.ends_with("; no parsed field differs, only the content."),
        "{m}"
    );
}

#[test]
fn gone_artifact() {
    let mut h = healthy();
    h.gone(
        "git#model/README.md",
        "model_card",
        "model card v1",
        "2026-11-22T00:00:00Z",
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    let gone: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Gone)
        .collect();
    assert_eq!(gone.len(), 1, "{:#?}", a.findings);
    assert_eq!(gone[0].controls, ["A.6.2.7"]);
    assert!(
        gone[0]
            .message
            .contains("removed from its source on 2026-11-22"),
        "{}",
        gone[0].message
    );
    // The only model card is gone: A.6.2.7 is missing, and says why.
    let missing: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Missing)
        .collect();
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].message.contains("removed at the source"),
        "{}",
        missing[0].message
    );
    assert_eq!(status(&a, "A.6.2.7"), ControlStatus::Missing);
    // The gone card no longer counts as current evidence.
    let v = a.controls.iter().find(|c| c.control == "A.6.2.7").unwrap();
    assert!(v.evidence.is_empty());
}

#[test]
fn missing_kind() {
    let mut h = History::default();
    for e in &healthy().0 {
        if e.record.kind != "deployment_approval" {
            h.0.push(e.clone());
        }
    }
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(kinds(&a), [FindingKind::Missing]);
    let f = &a.findings[0];
    assert_eq!(f.controls, ["A.6.2.5"]);
    assert_eq!(
        f.message,
        "No deployment approval or registry alias assignment was ever collected for fraud-scoring; A.6.2.5 needs one."
    );
    assert_eq!(status(&a, "A.6.2.5"), ControlStatus::Missing);
}

#[test]
fn statement_of_applicability_excludes_and_can_be_withdrawn() {
    use aims_model::applicability::{Applicability, applicability_record};
    let mut h = History::default();
    for e in &healthy().0 {
        if e.record.kind != "deployment_approval" {
            h.0.push(e.clone());
        }
    }
    let state = |applicable: bool, justification: &str, at: &str, h: &mut History| {
        let d = Applicability {
            applicable,
            justification: justification.into(),
        };
        let record = applicability_record(SYSTEM, "A.6.2.5", &d, "lead", ts(at)).unwrap();
        let leaf_index = h.0.len() as u64;
        h.0.push(Evidence {
            record_id: record.record_id().unwrap(),
            leaf_index,
            record,
        });
    };
    state(
        false,
        "batch scoring only, never deployed",
        "2026-11-22T00:00:00Z",
        &mut h,
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(status(&a, "A.6.2.5"), ControlStatus::Excluded);
    let v = a.controls.iter().find(|c| c.control == "A.6.2.5").unwrap();
    assert!(v.reason.contains("batch scoring only"), "{}", v.reason);
    assert!(v.reason.contains("lead"), "{}", v.reason);
    assert!(
        kinds(&a).is_empty(),
        "the missing finding is gone: {:?}",
        a.findings
    );
    // The same record sent by an agent (any source type but `manual`) excludes nothing.
    let mut forged = h.0.pop().unwrap();
    forged.record.source.source_type = aims_model::SourceType::Git;
    forged.record_id = forged.record.record_id().unwrap();
    h.0.push(forged);
    assert_eq!(
        status(&run(&h, "2026-11-23T00:00:00Z"), "A.6.2.5"),
        ControlStatus::Missing
    );
    // Withdrawn: applicable again, missing again.
    h.0.pop();
    state(
        false,
        "batch scoring only, never deployed",
        "2026-11-22T00:00:00Z",
        &mut h,
    );
    state(true, "", "2026-11-22T12:00:00Z", &mut h);
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(status(&a, "A.6.2.5"), ControlStatus::Missing);
    assert_eq!(kinds(&a), [FindingKind::Missing]);
}

#[test]
fn acknowledged_finding_stops_setting_status_until_it_expires() {
    use aims_model::acknowledgement::{AcknowledgeRequest, acknowledgement_record};
    let mut h = History::default();
    for e in &healthy().0 {
        if e.record.kind != "deployment_approval" {
            h.0.push(e.clone());
        }
    }
    let a = run(&h, "2026-11-23T00:00:00Z");
    let missing = a.findings[0].clone();
    let req = AcknowledgeRequest {
        reason: "approval board meets in January".into(),
        expires_at: ts("2026-12-01T00:00:00Z"),
    };
    let record = acknowledgement_record(
        SYSTEM,
        &missing.id,
        &req,
        "lead",
        ts("2026-11-22T00:00:00Z"),
    )
    .unwrap();
    let leaf_index = h.0.len() as u64;
    h.0.push(Evidence {
        record_id: record.record_id().unwrap(),
        leaf_index,
        record,
    });
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(a.findings.len(), 1);
    assert_eq!(a.findings[0].id, missing.id);
    assert_eq!(a.findings[0].acknowledged.as_ref().unwrap().by, "lead");
    assert_ne!(status(&a, "A.6.2.5"), ControlStatus::Missing);
    let v = a.controls.iter().find(|c| c.control == "A.6.2.5").unwrap();
    assert!(v.reason.contains("Accepted risk"), "{}", v.reason);
    // At its expiry the finding sets the status again.
    let a = run(&h, "2026-12-01T00:00:00Z");
    assert!(a.findings[0].acknowledged.is_none());
    assert_eq!(status(&a, "A.6.2.5"), ControlStatus::Missing);
}

#[test]
fn empty_history_is_all_missing() {
    let a = run(&History::default(), "2026-11-23T00:00:00Z");
    assert_eq!(a.controls.len(), 14);
    for c in &a.controls {
        let want = if c.control == "A.6.1.2" {
            ControlStatus::NotApplicable
        } else {
            ControlStatus::Missing
        };
        assert_eq!(c.status, want, "{}", c.control);
    }
}

#[test]
fn approval_of_an_unvalidated_version_is_inconsistent() {
    let mut h = healthy();
    h.push(
        "git#approvals/prod.yaml",
        "deployment_approval",
        "appr v2",
        "2026-11-22T09:00:00Z",
        json!({"model": model("4"), "environment": "production"}),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(kinds(&a), [FindingKind::Inconsistent], "{:#?}", a.findings);
    assert!(
        a.findings[0].message.contains("version 4") && a.findings[0].message.contains("version 3")
    );
    assert_eq!(status(&a, "A.6.2.5"), ControlStatus::Drifted);

    // An approval dated before the validation it relies on.
    let mut h = History::default();
    for e in &healthy().0 {
        if e.record.kind != "deployment_approval" {
            h.0.push(e.clone());
        }
    }
    h.push(
        "git#approvals/prod.yaml",
        "deployment_approval",
        "appr early",
        "2026-11-19T09:00:00Z",
        json!({"model": model("3")}),
    );
    let a = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(kinds(&a), [FindingKind::Inconsistent], "{:#?}", a.findings);
    assert!(a.findings[0].message.contains("predates"));
}

#[test]
fn deterministic_and_monotone_in_time() {
    let mut h = healthy();
    h.push(
        "git#data/applications/README.md",
        "dataset_card",
        "card v2",
        "2026-11-22T08:00:00Z",
        json!({}),
    );
    let a1 = run(&h, "2026-11-23T00:00:00Z");
    let a2 = run(&h, "2026-11-23T00:00:00Z");
    assert_eq!(a1, a2);
    assert_eq!(
        serde_json::to_string(&a1).unwrap(),
        serde_json::to_string(&a2).unwrap()
    );

    // Shuffled input order gives the same result (ledger order comes from leaf_index).
    let mut rev = History(h.0.clone());
    rev.0.reverse();
    assert_eq!(run(&rev, "2026-11-23T00:00:00Z"), a1);

    // Moving the clock forward only turns fresh into stale.
    let mut prev = a1;
    for now in [
        "2026-12-01T00:00:00Z",
        "2027-01-15T00:00:00Z",
        "2027-06-01T00:00:00Z",
        "2028-01-01T00:00:00Z",
    ] {
        let next = run(&h, now);
        for (p, n) in prev.controls.iter().zip(&next.controls) {
            assert_eq!(p.control, n.control);
            if p.status != n.status {
                assert_eq!(
                    (p.status, n.status),
                    (ControlStatus::Fresh, ControlStatus::Stale),
                    "{} at {now}",
                    p.control
                );
            }
        }
        prev = next;
    }
    let last = run(&h, "2028-01-01T00:00:00Z");
    assert_eq!(status(&last, "A.6.2.2"), ControlStatus::Stale);
}

#[test]
fn findings_are_sorted_and_other_systems_ignored() {
    let mut h = healthy();
    h.gone(
        "git#dvc.lock",
        "lineage_record",
        "lock v1",
        "2026-11-22T00:00:00Z",
    );
    h.push(
        "git#data/applications/README.md",
        "dataset_card",
        "card v2",
        "2026-11-22T08:00:00Z",
        json!({}),
    );
    let mut other = h.0[0].clone();
    other.record.system = "other".into();
    other.record.kind = "model_card".into();
    other.leaf_index = 999;
    h.0.push(other);
    let a = run(&h, "2027-06-01T00:00:00Z");
    let ks = kinds(&a);
    let mut sorted = ks.clone();
    sorted.sort();
    assert_eq!(ks, sorted);
    assert!(
        ks.contains(&FindingKind::Gone)
            && ks.contains(&FindingKind::Changed)
            && ks.contains(&FindingKind::Stale)
    );
    for c in &a.controls {
        assert!(c.evidence.len() <= aims_catalog::MAX_EVIDENCE_PER_CONTROL);
        for f in &c.findings {
            assert!(f.controls.contains(&c.control));
        }
    }
}
