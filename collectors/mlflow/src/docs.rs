//! The JSON documents this source serves as artifact bytes. Each is a pure function of registry
//! state and is encoded with RFC 8785 (JCS), so the same state always hashes the same.
//!
//! - **Model version** ([`version_document`]): the version object as the registry returns it,
//!   restricted to a fixed set of fields (`name`, `version`, `creation_timestamp`,
//!   `last_updated_timestamp`, `current_stage`, `description`, `user_id`, `source`, `run_id`,
//!   `run_link`, `status`, `status_message`, `model_id`, `tags` sorted by key) plus its sorted
//!   `aliases`. Fields MLflow may add later are left out until chosen, so a server upgrade does
//!   not change every hash; empty strings are dropped because `get` and `search` disagree on
//!   whether to send them.
//! - **Alias** ([`alias_document`]): `{kind: registry_alias, model {name, version}, alias,
//!   environment, stage?, registry_last_updated?}`. MLflow keeps no time for alias changes;
//!   `registry_last_updated` is the registered model's `last_updated_timestamp` when the alias
//!   was observed.
//! - **Run validation** ([`validation_document`]): the project's validation report (DESIGN §3b)
//!   built from a finished run: `kind: validation_report`, `model {name, version}`, `metrics
//!   [{name, value, threshold?, direction?}]`, `decision?`, `evaluated_at` (run end),
//!   `evaluator`, `run_id`. Thresholds come from version tags, then run params, named
//!   `threshold.<metric>` or `<metric>_threshold`; the direction from `direction.<metric>`
//!   (`min` or `max`, default `min`); the decision from a `validation_status` or `decision` tag
//!   on the version, then on the run.

use std::collections::BTreeMap;

use aims_model::Timestamp;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::{KeyValue, ModelVersion, Run, tag};
use crate::error::MlflowError;

/// RFC 3339 (UTC, milliseconds) of an MLflow millisecond time.
pub fn rfc3339(ms: i64) -> Option<String> {
    Timestamp::from_unix_millis(ms).map(|t| t.to_string())
}

/// JCS bytes of `doc`.
pub fn canonical(doc: &Value, what: &str) -> Result<Vec<u8>, MlflowError> {
    serde_json_canonicalizer::to_vec(doc).map_err(|e| MlflowError::Encode {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// The first 16 hex digits of SHA-256 (for version tokens, not for evidence).
pub fn short_hash(bytes: &[u8]) -> String {
    let mut h = hex::encode(Sha256::digest(bytes));
    h.truncate(16);
    h
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    if let Some(s) = v.filter(|s| !s.is_empty()) {
        m.insert(key.into(), Value::String(s.to_owned()));
    }
}

fn put_i64(m: &mut Map<String, Value>, key: &str, v: Option<i64>) {
    if let Some(n) = v {
        m.insert(key.into(), Value::from(n));
    }
}

/// Tags as a sorted, de-duplicated `[{key, value}]` list (the last value of a key wins).
fn tag_list(tags: &[KeyValue]) -> Value {
    let map: BTreeMap<&str, &str> = tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    Value::Array(
        map.into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// Tags as a `{key: value}` map (for record metadata).
pub fn tag_map(tags: &[KeyValue]) -> Map<String, Value> {
    tags.iter()
        .map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect()
}

/// The model version document (see the module docs).
pub fn version_document(v: &ModelVersion, aliases: &[String]) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "name", Some(&v.name));
    put_str(&mut m, "version", Some(&v.version));
    put_i64(&mut m, "creation_timestamp", v.creation_timestamp);
    put_i64(&mut m, "last_updated_timestamp", v.last_updated_timestamp);
    put_str(&mut m, "current_stage", v.current_stage.as_deref());
    put_str(&mut m, "description", v.description.as_deref());
    put_str(&mut m, "user_id", v.user_id.as_deref());
    put_str(&mut m, "source", v.source.as_deref());
    put_str(&mut m, "run_id", v.run_id.as_deref());
    put_str(&mut m, "run_link", v.run_link.as_deref());
    put_str(&mut m, "status", v.status.as_deref());
    put_str(&mut m, "status_message", v.status_message.as_deref());
    put_str(&mut m, "model_id", v.model_id.as_deref());
    m.insert("tags".into(), tag_list(&v.tags));
    let mut a: Vec<&str> = aliases.iter().map(String::as_str).collect();
    a.sort_unstable();
    a.dedup();
    m.insert("aliases".into(), json!(a));
    Value::Object(m)
}

/// The alias document; `stage` is set for a legacy stage pseudo-alias.
pub fn alias_document(
    model: &str,
    version: &str,
    alias: &str,
    stage: Option<&str>,
    registry_last_updated: Option<i64>,
) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("registry_alias"));
    m.insert("model".into(), json!({"name": model, "version": version}));
    m.insert("alias".into(), json!(alias));
    m.insert("environment".into(), json!(stage.unwrap_or(alias)));
    if let Some(s) = stage {
        m.insert("stage".into(), json!(s));
    }
    if let Some(t) = registry_last_updated.and_then(rfc3339) {
        m.insert("registry_last_updated".into(), json!(t));
    }
    Value::Object(m)
}

/// Looks `key` up in the version's tags, then the run's params.
fn setting<'a>(v: &'a ModelVersion, run: &'a Run, keys: &[String]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.tag(k))
        .or_else(|| keys.iter().find_map(|k| tag(&run.data.params, k)))
}

/// The validation report derived from `run` for model version `v`, or `None` when the run has
/// not ended or has no finite metric.
pub fn validation_document(v: &ModelVersion, run: &Run, evaluator: &str) -> Option<Value> {
    let end = run.info.end_time?;
    let mut metrics: BTreeMap<&str, f64> = BTreeMap::new();
    for m in &run.data.metrics {
        match m.finite_value() {
            Some(x) => {
                metrics.insert(m.key.as_str(), x);
            }
            None => tracing::debug!(metric = %m.key, "non-finite metric left out"),
        }
    }
    if metrics.is_empty() {
        return None;
    }
    let list: Vec<Value> = metrics
        .into_iter()
        .map(|(name, value)| {
            let mut o = Map::new();
            o.insert("name".into(), json!(name));
            o.insert("value".into(), json!(value));
            let threshold = setting(
                v,
                run,
                &[format!("threshold.{name}"), format!("{name}_threshold")],
            )
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite());
            if let Some(t) = threshold {
                o.insert("threshold".into(), json!(t));
                let dir = setting(v, run, &[format!("direction.{name}")])
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| d == "min" || d == "max")
                    .unwrap_or_else(|| "min".to_owned());
                o.insert("direction".into(), json!(dir));
            }
            Value::Object(o)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("validation_report"));
    doc.insert(
        "model".into(),
        json!({"name": v.name, "version": v.version}),
    );
    doc.insert("metrics".into(), Value::Array(list));
    let decision = ["validation_status", "decision"]
        .iter()
        .find_map(|k| v.tag(k))
        .or_else(|| {
            ["validation_status", "decision"]
                .iter()
                .find_map(|k| tag(&run.data.tags, k))
        })
        .filter(|d| !d.trim().is_empty());
    if let Some(d) = decision {
        doc.insert("decision".into(), json!(d.trim()));
    }
    doc.insert("evaluated_at".into(), json!(rfc3339(end)?));
    doc.insert("evaluator".into(), json!(evaluator));
    let run_id = if run.info.run_id.is_empty() {
        &run.info.run_uuid
    } else {
        &run.info.run_id
    };
    doc.insert("run_id".into(), json!(run_id));
    Some(Value::Object(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Metric, RunData, RunInfo};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
        }
    }

    fn version() -> ModelVersion {
        ModelVersion {
            name: "credit".into(),
            version: "3".into(),
            creation_timestamp: Some(1),
            last_updated_timestamp: Some(2),
            current_stage: Some("None".into()),
            description: Some(String::new()),
            run_id: Some("r1".into()),
            tags: vec![
                kv("z", "1"),
                kv("threshold.auc", "0.85"),
                kv("latency_threshold", "100"),
                kv("direction.latency", "MAX"),
                kv("validation_status", "pass"),
            ],
            ..ModelVersion::default()
        }
    }

    fn run() -> Run {
        Run {
            info: RunInfo {
                run_id: "r1".into(),
                end_time: Some(1_795_000_000_000),
                ..RunInfo::default()
            },
            data: RunData {
                metrics: vec![
                    Metric {
                        key: "auc".into(),
                        value: json!(0.91),
                        ..Metric::default()
                    },
                    Metric {
                        key: "latency".into(),
                        value: json!(120),
                        ..Metric::default()
                    },
                    Metric {
                        key: "f1".into(),
                        value: json!(0.5),
                        ..Metric::default()
                    },
                    Metric {
                        key: "bad".into(),
                        value: json!("NaN"),
                        ..Metric::default()
                    },
                ],
                params: vec![kv("threshold.f1", "0.4"), kv("threshold.auc", "0.1")],
                tags: vec![],
            },
        }
    }

    #[test]
    fn version_doc_is_stable_and_sorted() {
        let v = version();
        let d = version_document(&v, &["b".into(), "a".into(), "a".into()]);
        assert_eq!(d["aliases"], json!(["a", "b"]));
        assert_eq!(d["tags"][0]["key"], "direction.latency");
        assert!(d.get("description").is_none(), "empty strings dropped");
        let mut shuffled = v.clone();
        shuffled.tags.reverse();
        let d2 = version_document(&shuffled, &["a".into(), "b".into()]);
        assert_eq!(
            canonical(&d, "x").unwrap(),
            canonical(&d2, "x").unwrap(),
            "tag order does not matter"
        );
    }

    #[test]
    fn validation_doc() {
        let d = validation_document(&version(), &run(), "mlflow://h/runs/r1").unwrap();
        assert_eq!(d["kind"], "validation_report");
        assert_eq!(d["model"], json!({"name": "credit", "version": "3"}));
        assert_eq!(d["decision"], "pass");
        assert_eq!(d["evaluated_at"], rfc3339(1_795_000_000_000).unwrap());
        let m = d["metrics"].as_array().unwrap();
        assert_eq!(m.len(), 3, "NaN left out: {m:?}");
        // Sorted by name: auc, f1, latency. Version tags win over run params.
        assert_eq!(
            m[0],
            json!({"name": "auc", "value": 0.91, "threshold": 0.85, "direction": "min"})
        );
        assert_eq!(
            m[1],
            json!({"name": "f1", "value": 0.5, "threshold": 0.4, "direction": "min"})
        );
        assert_eq!(
            m[2],
            json!({"name": "latency", "value": 120.0, "threshold": 100.0, "direction": "max"})
        );
        let mut running = run();
        running.info.end_time = None;
        assert!(validation_document(&version(), &running, "e").is_none());
        let mut empty = run();
        empty.data.metrics.clear();
        assert!(validation_document(&version(), &empty, "e").is_none());
    }

    #[test]
    fn alias_doc() {
        let d = alias_document("m", "2", "champion", None, Some(1_795_000_000_000));
        assert_eq!(d["kind"], "registry_alias");
        assert_eq!(d["model"]["version"], "2");
        assert_eq!(d["environment"], "champion");
        let s = alias_document("m", "2", "stage:Production", Some("Production"), None);
        assert_eq!(s["environment"], "Production");
        assert_eq!(s["stage"], "Production");
        assert!(s.get("registry_last_updated").is_none());
    }
}
