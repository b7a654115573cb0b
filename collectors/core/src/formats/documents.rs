//! Generic JSON/YAML documents and the project's own formats (DESIGN §3b).
//!
//! For `kind: validation_report | deployment_approval | monitoring_report` the metadata is
//! normalised whatever the spelling in the file (numbers or strings for versions, a single
//! approver or a list):
//! `model {name, version}`, `dataset {name, revision, sha256}`,
//! `metrics [{name, value, threshold, direction, passed}]`, `decision`, `approved_by` (list),
//! `environment`, `window`, `evaluator`. `passed` is computed when absent: `direction: min` means
//! the value must be at least the threshold, `max` at most; without a direction or threshold it
//! stays `null` rather than guessing. `artifact_time` comes from `evaluated_at`, `approved_at` or
//! `generated_at`. Any other document keeps only `kind`, `name`, `title`, `version`.

use serde_json::{Map, Value, json};

use super::{MAX_LIST, Parsed, first_time, number, scalar_string, string_or_list};

/// The `kind` values whose metadata is normalised here.
pub const OWN_KINDS: [&str; 3] = [
    "validation_report",
    "deployment_approval",
    "monitoring_report",
];

pub(super) fn document(obj: &Map<String, Value>, container: &str) -> Parsed {
    let mut m = Map::new();
    for key in ["kind", "name", "title", "version"] {
        if let Some(v) = obj.get(key).and_then(scalar_string) {
            m.insert(key.into(), Value::String(v));
        }
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut artifact_time = None;
    if OWN_KINDS.contains(&kind) {
        own_format(obj, &mut m);
        artifact_time = first_time(obj, &["evaluated_at", "approved_at", "generated_at"]);
    }
    Parsed {
        format: Some(container.to_owned()),
        metadata: m,
        artifact_time,
        ..Parsed::default()
    }
}

fn own_format(obj: &Map<String, Value>, m: &mut Map<String, Value>) {
    if let Some(model) = obj.get("model") {
        m.insert("model".into(), pick(model, &["name", "version"]));
    }
    if let Some(ds) = obj.get("dataset") {
        m.insert("dataset".into(), pick(ds, &["name", "revision", "sha256"]));
    }
    if let Some(Value::Array(metrics)) = obj.get("metrics") {
        let list: Vec<Value> = metrics.iter().take(MAX_LIST).map(metric).collect();
        m.insert("metrics".into(), Value::Array(list));
    }
    for key in ["decision", "environment", "evaluator"] {
        if let Some(v) = obj.get(key).and_then(scalar_string) {
            m.insert(key.into(), Value::String(v));
        }
    }
    if let Some(v) = obj.get("approved_by").and_then(string_or_list) {
        let list = match v {
            Value::String(s) => Value::Array(vec![Value::String(s)]),
            other => other,
        };
        m.insert("approved_by".into(), list);
    }
    if let Some(w) = obj.get("window") {
        let window = match w {
            Value::Object(_) => pick(w, &["start", "end", "from", "to", "duration"]),
            other => scalar_string(other).map_or(Value::Null, Value::String),
        };
        m.insert("window".into(), window);
    }
    for key in ["evaluated_at", "approved_at", "generated_at"] {
        if let Some(v) = obj.get(key).and_then(scalar_string) {
            m.insert(key.into(), Value::String(v));
        }
    }
}

/// An object with just `fields`, each as a string (or null when absent).
fn pick(v: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(s) = v.get(*f).and_then(scalar_string) {
            out.insert((*f).into(), Value::String(s));
        }
    }
    if out.is_empty()
        && let Some(s) = scalar_string(v)
    {
        // `model: credit-risk` — a bare name.
        out.insert("name".into(), Value::String(s));
    }
    Value::Object(out)
}

fn metric(v: &Value) -> Value {
    let name = v.get("name").and_then(scalar_string);
    let value = v.get("value").and_then(number);
    let threshold = v.get("threshold").and_then(number);
    let direction = v
        .get("direction")
        .and_then(Value::as_str)
        .map(|d| super::truncate(d.to_ascii_lowercase()));
    let computed = match (value, threshold, direction.as_deref()) {
        (Some(x), Some(t), Some("min")) => Some(x >= t),
        (Some(x), Some(t), Some("max")) => Some(x <= t),
        _ => None,
    };
    let passed = v.get("passed").and_then(Value::as_bool).or(computed);
    json!({"name": name, "value": value, "threshold": threshold, "direction": direction, "passed": passed})
}

#[cfg(test)]
mod tests {
    use crate::formats::parse;
    use serde_json::json;

    #[test]
    fn validation_report_json() {
        let doc = json!({"kind": "validation_report", "model": {"name": "credit-risk", "version": 3},
            "dataset": {"name": "applications", "revision": "2026-10-01", "sha256": "ab"},
            "metrics": [{"name": "auc", "value": 0.91, "threshold": 0.85, "direction": "min"},
                        {"name": "latency", "value": 120, "threshold": 100, "direction": "max"},
                        {"name": "note", "value": 1}],
            "decision": "pass", "evaluated_at": "2026-11-20T10:00:00Z", "evaluator": "ci/run/123"});
        let p = parse("reports/val.json", doc.to_string().as_bytes());
        assert_eq!(p.format.as_deref(), Some("json"));
        assert_eq!(p.fields["kind"], "validation_report");
        let m = &p.metadata;
        assert_eq!(m["model"], json!({"name": "credit-risk", "version": "3"}));
        assert_eq!(m["dataset"]["sha256"], "ab");
        assert_eq!(m["metrics"][0]["passed"], true);
        assert_eq!(m["metrics"][1]["passed"], false);
        assert_eq!(m["metrics"][2]["passed"], json!(null));
        assert_eq!(m["decision"], "pass");
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-11-20T10:00:00.000Z"
        );
    }

    #[test]
    fn metric_direction_is_bounded() {
        // Caught by the `formats` fuzz target's bounds check: `direction` was kept whole.
        use crate::formats::MAX_STRING;
        let doc = json!({"kind": "validation_report",
            "metrics": [{"name": "auc", "value": 0.9, "threshold": 0.8, "direction": "M".repeat(MAX_STRING + 1)}]});
        let p = parse("reports/val.json", doc.to_string().as_bytes());
        let direction = p.metadata["metrics"][0]["direction"].as_str().unwrap();
        assert_eq!(direction, "m".repeat(MAX_STRING));
        assert_eq!(p.metadata["metrics"][0]["passed"], json!(null));
    }

    #[test]
    fn deployment_approval_yaml() {
        let y = "kind: deployment_approval\nmodel: { name: credit-risk, version: \"3\" }\n\
environment: production\napproved_by: risk-officer@example.com\napproved_at: 2026-11-21T09:00:00Z\n";
        let p = parse("approvals/prod.yaml", y.as_bytes());
        assert_eq!(p.format.as_deref(), Some("yaml"));
        assert_eq!(
            p.metadata["approved_by"],
            json!(["risk-officer@example.com"])
        );
        assert_eq!(p.metadata["environment"], "production");
        assert_eq!(p.metadata["model"]["version"], "3");
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-11-21T09:00:00.000Z"
        );
    }

    #[test]
    fn monitoring_report_yaml() {
        let y = "kind: monitoring_report\nmodel: credit-risk\nwindow: {start: 2026-11-01, end: 2026-11-07}\n\
metrics:\n- {name: psi, value: 0.3, threshold: 0.2, direction: max, passed: true}\ngenerated_at: 2026-11-08T00:00:00+01:00\n";
        let p = parse("monitoring/w45.yml", y.as_bytes());
        assert_eq!(p.metadata["model"], json!({"name": "credit-risk"}));
        assert_eq!(p.metadata["window"]["end"], "2026-11-07");
        // An explicit `passed` wins over the computed one.
        assert_eq!(p.metadata["metrics"][0]["passed"], true);
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-11-07T23:00:00.000Z"
        );
    }

    #[test]
    fn plain_document_keeps_little() {
        let p = parse(
            "conf/train.yaml",
            b"name: trainer\nlr: 0.1\nlayers: [1, 2]\n",
        );
        assert_eq!(
            p.metadata,
            json!({"name": "trainer"}).as_object().unwrap().clone()
        );
        assert_eq!(p.keys.len(), 3);
        assert_eq!(p.fields.len(), 1);
        assert!(p.artifact_time.is_none());
    }
}
