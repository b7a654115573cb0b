//! Formats of the wider ML tooling ecosystem: Croissant, Great Expectations, OpenLineage and
//! `dvc.lock`.
//!
//! Each recogniser is a cheap structural test on the top-level object; the first that matches
//! wins (Croissant, then Great Expectations, then OpenLineage). `dvc.lock` is recognised by its
//! file name only. Metadata keeps names, digests and outcomes, capped at [`MAX_LIST`] entries.

use serde_json::{Map, Value, json};

use super::{MAX_LIST, Parsed, copy_str_or_list, first_time, number, scalar_string};

fn text_contains(v: Option<&Value>, needle: &str) -> bool {
    match v {
        Some(Value::String(s)) => s.to_ascii_lowercase().contains(needle),
        Some(other @ (Value::Object(_) | Value::Array(_))) => {
            other.to_string().to_ascii_lowercase().contains(needle)
        }
        _ => false,
    }
}

/// `@context` mentioning Croissant, or `conformsTo` an MLCommons Croissant spec.
pub(super) fn is_croissant(obj: &Map<String, Value>) -> bool {
    text_contains(obj.get("@context"), "croissant")
        || text_contains(obj.get("conformsTo"), "mlcommons.org/croissant")
        || text_contains(obj.get("dct:conformsTo"), "mlcommons.org/croissant")
}

pub(super) fn croissant(obj: &Map<String, Value>) -> Parsed {
    let mut m = Map::new();
    for key in ["name", "version", "url", "license", "conformsTo"] {
        copy_str_or_list(obj, key, &mut m);
    }
    if let Some(Value::Array(files)) = obj.get("distribution") {
        let list: Vec<Value> = files
            .iter()
            .take(MAX_LIST)
            .map(|f| {
                json!({
                    "name": f.get("name").or_else(|| f.get("@id")).and_then(scalar_string),
                    "content_url": f.get("contentUrl").and_then(scalar_string),
                    "sha256": f.get("sha256").and_then(scalar_string),
                    "md5": f.get("md5").and_then(scalar_string),
                })
            })
            .collect();
        m.insert("distribution".into(), Value::Array(list));
    }
    if let Some(Value::Array(sets)) = obj.get("recordSet") {
        m.insert("record_sets".into(), json!(sets.len()));
    }
    Parsed {
        format: Some("croissant".into()),
        metadata: m,
        artifact_time: first_time(obj, &["dateModified", "datePublished", "dateCreated"]),
        ..Parsed::default()
    }
}

/// A validation result: `success` (bool), `results` (list) and `statistics` (object).
pub(super) fn is_great_expectations(obj: &Map<String, Value>) -> bool {
    obj.get("success").is_some_and(Value::is_boolean)
        && obj.get("results").is_some_and(Value::is_array)
        && obj.get("statistics").is_some_and(Value::is_object)
}

pub(super) fn great_expectations(obj: &Map<String, Value>) -> Parsed {
    let mut m = Map::new();
    m.insert(
        "success".into(),
        obj.get("success").cloned().unwrap_or(Value::Null),
    );
    let stats = obj.get("statistics");
    let stat = |k: &str| stats.and_then(|s| s.get(k)).and_then(number);
    for (out, key) in [
        ("evaluated", "evaluated_expectations"),
        ("successful", "successful_expectations"),
        ("unsuccessful", "unsuccessful_expectations"),
        ("success_percent", "success_percent"),
    ] {
        if let Some(n) = stat(key) {
            m.insert(out.into(), json!(n));
        }
    }
    let meta = obj.get("meta");
    let suite = obj
        .get("suite_name")
        .or_else(|| meta.and_then(|x| x.get("expectation_suite_name")))
        .and_then(scalar_string);
    if let Some(s) = suite {
        m.insert("suite".into(), Value::String(s));
    }
    let asset = meta
        .and_then(|x| x.get("active_batch_definition"))
        .and_then(|b| b.get("data_asset_name"))
        .and_then(scalar_string);
    if let Some(a) = asset {
        m.insert("data_asset".into(), Value::String(a));
    }
    let failed: Vec<Value> = obj
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("success") == Some(&Value::Bool(false)))
        .filter_map(|r| {
            let cfg = r.get("expectation_config")?;
            cfg.get("expectation_type")
                .or_else(|| cfg.get("type"))
                .and_then(scalar_string)
        })
        .take(MAX_LIST)
        .map(Value::String)
        .collect();
    if !failed.is_empty() {
        m.insert("failed_expectations".into(), Value::Array(failed));
    }
    let run_time = meta
        .and_then(|x| x.get("run_id"))
        .and_then(|r| r.get("run_time"))
        .and_then(Value::as_str)
        .and_then(aims_model::Timestamp::parse_lenient)
        .or_else(|| {
            meta.and_then(Value::as_object)
                .and_then(|x| first_time(x, &["validation_time"]))
        });
    if let Some(t) = run_time {
        m.insert("run_time".into(), Value::String(t.to_string()));
    }
    Parsed {
        format: Some("great_expectations".into()),
        metadata: m,
        artifact_time: run_time,
        ..Parsed::default()
    }
}

/// A run event: `eventType`, `eventTime`, `run`, `job`.
pub(super) fn is_openlineage(obj: &Map<String, Value>) -> bool {
    ["eventType", "eventTime", "run", "job"]
        .iter()
        .all(|k| obj.contains_key(*k))
}

pub(super) fn openlineage(obj: &Map<String, Value>) -> Parsed {
    let datasets = |key: &str| -> Value {
        Value::Array(
            obj.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(MAX_LIST)
                .map(|d| {
                    json!({
                        "namespace": d.get("namespace").and_then(scalar_string),
                        "name": d.get("name").and_then(scalar_string),
                    })
                })
                .collect(),
        )
    };
    let mut m = Map::new();
    m.insert(
        "event_type".into(),
        obj.get("eventType").and_then(scalar_string).into(),
    );
    m.insert(
        "run_id".into(),
        obj.get("run")
            .and_then(|r| r.get("runId"))
            .and_then(scalar_string)
            .into(),
    );
    let job = obj.get("job");
    m.insert(
        "job".into(),
        json!({
            "namespace": job.and_then(|j| j.get("namespace")).and_then(scalar_string),
            "name": job.and_then(|j| j.get("name")).and_then(scalar_string),
        }),
    );
    m.insert("inputs".into(), datasets("inputs"));
    m.insert("outputs".into(), datasets("outputs"));
    if let Some(p) = obj.get("producer").and_then(scalar_string) {
        m.insert("producer".into(), Value::String(p));
    }
    Parsed {
        format: Some("openlineage".into()),
        metadata: m,
        artifact_time: first_time(obj, &["eventTime"]),
        ..Parsed::default()
    }
}

/// `dvc.lock`: `schema` + `stages: {name: {cmd, deps: [{path, md5|hash…}], outs: […]}}`; the
/// schema-1 layout (stages at the top level) is accepted too.
pub(super) fn dvc_lock(v: &Value) -> Parsed {
    let Some(obj) = v.as_object() else {
        return Parsed::error("dvc.lock is not a mapping");
    };
    let stages = match obj.get("stages").and_then(Value::as_object) {
        Some(s) => s,
        None => obj,
    };
    let mut names = Vec::new();
    let mut digests = Vec::new();
    for (name, stage) in stages {
        let Some(stage) = stage.as_object() else {
            continue;
        };
        // Stage names are mapping keys: bounded like every other string in the metadata.
        let name = super::truncate(name.clone());
        if !(stage.contains_key("cmd") || stage.contains_key("deps") || stage.contains_key("outs"))
        {
            continue;
        }
        names.push(Value::String(name.clone()));
        for role in ["deps", "outs"] {
            let list = stage.get(role).and_then(Value::as_array);
            for item in list.into_iter().flatten() {
                let digest = ["md5", "sha256", "etag", "checksum"]
                    .iter()
                    .find_map(|k| item.get(*k).and_then(scalar_string).map(|d| (*k, d)));
                if let (Some(path), Some((algo, digest))) =
                    (item.get("path").and_then(scalar_string), digest)
                {
                    digests.push(json!({
                        "stage": name, "role": role.trim_end_matches('s'), "path": path,
                        "algo": algo, "digest": digest, "size": item.get("size").and_then(Value::as_u64),
                    }));
                }
            }
        }
    }
    let mut m = Map::new();
    if let Some(s) = obj.get("schema").and_then(scalar_string) {
        m.insert("schema".into(), Value::String(s));
    }
    names.truncate(MAX_LIST);
    digests.truncate(MAX_LIST);
    m.insert("stages".into(), Value::Array(names));
    m.insert("digests".into(), Value::Array(digests));
    Parsed {
        format: Some("dvc_lock".into()),
        keys: obj.keys().cloned().collect(),
        fields: super::string_fields(obj),
        metadata: m,
        ..Parsed::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::parse;
    use serde_json::json;

    #[test]
    fn croissant_jsonld() {
        let doc = json!({
            "@context": {"@language": "en", "cr": "http://mlcommons.org/croissant/", "sc": "https://schema.org/"},
            "@type": "sc:Dataset", "name": "applications", "license": "cc-by-4.0",
            "conformsTo": "http://mlcommons.org/croissant/1.0", "datePublished": "2026-10-01",
            "distribution": [{"@type": "cr:FileObject", "@id": "apps.csv", "name": "apps.csv",
                "contentUrl": "data/apps.csv", "sha256": "abc"}],
            "recordSet": [{"@type": "cr:RecordSet"}]
        });
        let p = parse("data/croissant.json", doc.to_string().as_bytes());
        assert_eq!(p.format.as_deref(), Some("croissant"));
        assert_eq!(p.metadata["license"], "cc-by-4.0");
        assert_eq!(p.metadata["distribution"][0]["sha256"], "abc");
        assert_eq!(p.metadata["record_sets"], 1);
        assert!(p.keys.contains("@context"));
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-10-01T00:00:00.000Z"
        );
    }

    #[test]
    fn great_expectations_result() {
        let doc = json!({
            "success": false,
            "results": [
                {"success": true, "expectation_config": {"expectation_type": "expect_column_to_exist"}},
                {"success": false, "expectation_config": {"expectation_type": "expect_column_values_to_not_be_null"}}
            ],
            "statistics": {"evaluated_expectations": 2, "successful_expectations": 1,
                "unsuccessful_expectations": 1, "success_percent": 50.0},
            "meta": {"expectation_suite_name": "apps.warning",
                "run_id": {"run_name": "r1", "run_time": "2026-11-19T08:00:00.000000+00:00"},
                "active_batch_definition": {"data_asset_name": "applications"}}
        });
        let p = parse("dq/result.json", doc.to_string().as_bytes());
        assert_eq!(p.format.as_deref(), Some("great_expectations"));
        let m = &p.metadata;
        assert_eq!(m["success"], false);
        assert_eq!(m["evaluated"], 2.0);
        assert_eq!(m["success_percent"], 50.0);
        assert_eq!(m["suite"], "apps.warning");
        assert_eq!(m["data_asset"], "applications");
        assert_eq!(
            m["failed_expectations"],
            json!(["expect_column_values_to_not_be_null"])
        );
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-11-19T08:00:00.000Z"
        );
    }

    #[test]
    fn openlineage_event() {
        let doc = json!({
            "eventType": "COMPLETE", "eventTime": "2026-11-18T12:00:00Z",
            "run": {"runId": "d4f5"}, "job": {"namespace": "etl", "name": "build_features"},
            "inputs": [{"namespace": "s3://raw", "name": "applications"}],
            "outputs": [{"namespace": "s3://feat", "name": "features"}],
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python"
        });
        let p = parse("lineage/ev.json", doc.to_string().as_bytes());
        assert_eq!(p.format.as_deref(), Some("openlineage"));
        assert_eq!(p.metadata["job"]["name"], "build_features");
        assert_eq!(p.metadata["inputs"][0]["name"], "applications");
        assert_eq!(p.metadata["outputs"][0]["namespace"], "s3://feat");
        assert_eq!(p.metadata["run_id"], "d4f5");
        assert!(p.artifact_time.is_some());
    }

    #[test]
    fn dvc_lock_file() {
        let y = "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prepare.py\n    deps:\n    \
- path: data/raw.csv\n      hash: md5\n      md5: 1a2b\n      size: 10\n    outs:\n    \
- path: data/clean.csv\n      md5: 3c4d\n  train:\n    cmd: python train.py\n";
        let p = parse("pipelines/dvc.lock", y.as_bytes());
        assert_eq!(p.format.as_deref(), Some("dvc_lock"));
        assert!(p.keys.contains("stages"));
        assert_eq!(p.metadata["stages"], json!(["prepare", "train"]));
        assert_eq!(p.metadata["digests"][0]["digest"], "1a2b");
        assert_eq!(p.metadata["digests"][0]["role"], "dep");
        assert_eq!(p.metadata["digests"][1]["role"], "out");
        let bad = parse("dvc.lock", b"- a\n");
        assert!(bad.parse_error.is_some());
    }

    #[test]
    fn dvc_lock_stage_names_are_bounded() {
        // Caught by the `formats` fuzz target's bounds check: stage names (mapping keys) were kept
        // whole.
        use crate::formats::MAX_STRING;
        let long = "s".repeat(MAX_STRING + 100);
        let y =
            format!("stages:\n  {long}:\n    cmd: x\n    deps:\n    - path: a\n      md5: 1a2b\n");
        let p = parse("dvc.lock", y.as_bytes());
        let stage = p.metadata["stages"][0].as_str().unwrap();
        assert_eq!(stage, &long[..MAX_STRING]);
        assert_eq!(p.metadata["digests"][0]["stage"], stage);
    }
}
