//! Markdown with YAML front matter (`hf_card`): Hugging Face model and dataset cards, and any
//! other front-matter document (requirements, ADRs).
//!
//! Front matter is recognised only at the very top of the file (an optional UTF-8 BOM, then a
//! line `---`, closed by a line `---` or `...`). Markdown without front matter has no format and
//! no error. Metadata keeps the fields the assessment uses: license, datasets, base_model,
//! pipeline_tag, library_name, language, `model-index` flattened to
//! `metrics: [{name, value, dataset}]` plus `model_name`, `dataset_info` split sizes, and the
//! dataset-card fields (source_datasets, task_categories, annotations_creators, size_categories).

use serde_json::{Map, Value, json};

use super::{MAX_LIST, Parsed, copy_str_or_list, number, scalar_string, string_fields};

/// Splits off the front matter; `None` when the text has none.
fn front_matter(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if trimmed == "---" || trimmed == "..." {
            return Some(&rest[..offset]);
        }
        offset += line.len();
    }
    None
}

/// Parses a Markdown document.
pub(super) fn parse_markdown(text: &str) -> Parsed {
    let Some(fm) = front_matter(text) else {
        return Parsed::default();
    };
    let value = match super::parse_yaml(fm.as_bytes()) {
        Ok(v) => v,
        Err(e) => return Parsed::error(format!("front matter: {e}")),
    };
    let obj = match value {
        Value::Object(o) => o,
        Value::Null => Map::new(),
        _ => return Parsed::error("front matter is not a mapping"),
    };
    Parsed {
        format: Some("hf_card".into()),
        keys: obj.keys().cloned().collect(),
        fields: string_fields(&obj),
        metadata: card_metadata(&obj),
        artifact_time: super::first_time(&obj, &["date", "last_modified", "updated_at"]),
        parse_error: None,
    }
}

fn card_metadata(fm: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    for key in [
        "license",
        "datasets",
        "base_model",
        "pipeline_tag",
        "library_name",
        "language",
        "source_datasets",
        "task_categories",
        "annotations_creators",
        "size_categories",
        "kind",
        "title",
        "status",
    ] {
        copy_str_or_list(fm, key, &mut m);
    }
    if let Some(Value::Array(index)) = fm.get("model-index") {
        model_index(index, &mut m);
    }
    if let Some(info) = fm.get("dataset_info") {
        dataset_info(info, &mut m);
    }
    m
}

/// `model-index: [{name, results: [{task, dataset: {name, type}, metrics: [{type, name, value}]}]}]`
fn model_index(index: &[Value], m: &mut Map<String, Value>) {
    let mut metrics = Vec::new();
    for model in index {
        if let Some(name) = model.get("name").and_then(scalar_string) {
            m.entry("model_name").or_insert(Value::String(name));
        }
        let results = model.get("results").and_then(Value::as_array);
        for result in results.into_iter().flatten() {
            let dataset = result.get("dataset").and_then(|d| {
                d.get("name")
                    .or_else(|| d.get("type"))
                    .and_then(scalar_string)
            });
            let list = result.get("metrics").and_then(Value::as_array);
            for metric in list.into_iter().flatten() {
                let name = metric
                    .get("name")
                    .or_else(|| metric.get("type"))
                    .and_then(scalar_string);
                let value = metric.get("value").and_then(number);
                if let Some(name) = name {
                    metrics.push(json!({"name": name, "value": value, "dataset": dataset}));
                }
            }
        }
    }
    if !metrics.is_empty() {
        metrics.truncate(MAX_LIST);
        m.insert("metrics".into(), Value::Array(metrics));
    }
}

/// `dataset_info` (one config or a list of configs) → `splits: [{config, name, num_examples}]`
/// and the total `dataset_size`.
fn dataset_info(info: &Value, m: &mut Map<String, Value>) {
    let configs: Vec<&Value> = match info {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut splits = Vec::new();
    let mut total: Option<f64> = None;
    for cfg in configs {
        let config = cfg.get("config_name").and_then(scalar_string);
        if let Some(size) = cfg.get("dataset_size").and_then(number) {
            total = Some(total.unwrap_or(0.0) + size);
        }
        let list = cfg.get("splits").and_then(Value::as_array);
        for split in list.into_iter().flatten() {
            splits.push(json!({
                "config": config,
                "name": split.get("name").and_then(scalar_string),
                "num_examples": split.get("num_examples").and_then(Value::as_u64),
            }));
        }
    }
    splits.truncate(MAX_LIST);
    if !splits.is_empty() {
        m.insert("splits".into(), Value::Array(splits));
    }
    if let Some(t) = total {
        m.insert("dataset_size".into(), json!(t as u64));
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::parse;
    use serde_json::json;

    const MODEL_CARD: &str = "---\nlicense: apache-2.0\nbase_model: bert-base-uncased\n\
pipeline_tag: text-classification\nlibrary_name: transformers\ndatasets:\n- applications\n\
model-index:\n- name: credit-risk\n  results:\n  - task: {type: text-classification}\n    \
dataset: {name: applications, type: csv}\n    metrics:\n    - {type: auc, value: 0.91}\n    \
- {type: f1, name: F1, value: '0.8'}\n---\n# Credit risk\n\nText.\n";

    #[test]
    fn model_card() {
        let p = parse("systems/fraud/README.md", MODEL_CARD.as_bytes());
        assert_eq!(p.format.as_deref(), Some("hf_card"));
        assert!(p.keys.contains("model-index") && p.keys.contains("base_model"));
        assert_eq!(p.fields["pipeline_tag"], "text-classification");
        let m = &p.metadata;
        assert_eq!(m["license"], "apache-2.0");
        assert_eq!(m["datasets"], json!(["applications"]));
        assert_eq!(m["model_name"], "credit-risk");
        assert_eq!(
            m["metrics"],
            json!([{"name": "auc", "value": 0.91, "dataset": "applications"},
                   {"name": "F1", "value": 0.8, "dataset": "applications"}])
        );
        assert!(p.parse_error.is_none());
    }

    #[test]
    fn dataset_card() {
        let text = "---\r\nannotations_creators: [expert-generated]\r\nsource_datasets: [original]\r\n\
task_categories: [tabular-classification]\r\nlicense: cc-by-4.0\r\ndataset_info:\r\n  \
features: []\r\n  splits:\r\n  - {name: train, num_bytes: 10, num_examples: 900}\r\n  \
- {name: test, num_examples: 100}\r\n  dataset_size: 1234\r\n---\r\nbody";
        let p = parse("data/card.md", text.as_bytes());
        assert_eq!(p.format.as_deref(), Some("hf_card"));
        assert!(p.keys.contains("dataset_info"));
        assert_eq!(p.metadata["source_datasets"], json!(["original"]));
        assert_eq!(p.metadata["splits"][0]["num_examples"], 900);
        assert_eq!(p.metadata["dataset_size"], 1234);
    }

    #[test]
    fn markdown_without_front_matter_and_broken_front_matter() {
        let p = parse("README.md", b"# Hello\n---\nx: 1\n---\n");
        assert_eq!(p.format, None);
        assert!(p.parse_error.is_none());
        let p = parse("README.md", b"---\nx: [\n---\n");
        assert!(p.parse_error.unwrap().contains("front matter"));
        let p = parse("README.md", b"---\nx: 1\nno end");
        assert_eq!(p.format, None);
    }

    #[test]
    fn requirements_front_matter_has_keys_and_date() {
        let p = parse(
            "docs/requirements-fraud.md",
            b"---\nkind: requirements_spec\ntitle: Fraud\ndate: 2026-10-01\n---\ntext",
        );
        assert_eq!(p.fields["kind"], "requirements_spec");
        assert_eq!(
            p.artifact_time.unwrap().to_string(),
            "2026-10-01T00:00:00.000Z"
        );
    }
}
