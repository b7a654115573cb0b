//! Artifact parsers: bytes → classification facts ([`Parsed::format`], keys, fields) and record
//! metadata.
//!
//! Recognised formats (the `format` names the catalog rules use):
//! - `hf_card`: Markdown with YAML front matter (`---` … `---` at the top), Hugging Face model and
//!   dataset cards and any other front-matter document.
//! - `croissant`: Croissant JSON-LD dataset descriptions.
//! - `great_expectations`: Great Expectations validation results.
//! - `openlineage`: OpenLineage run events.
//! - `dvc_lock`: `dvc.lock` files (recognised by file name).
//! - `codeowners`: `CODEOWNERS` files (by name): the ownership rules, for assigning findings.
//! - `json` / `yaml`: any other JSON or YAML document; the project's own formats (DESIGN §3b,
//!   `kind: validation_report | deployment_approval | monitoring_report`) get normalised metadata.
//!
//! Invariants:
//! - Parsing never fails: an unparsable artifact yields a [`Parsed`] with `parse_error` set, and the
//!   artifact is still hashed and recorded.
//! - Metadata is bounded: lists are capped at [`MAX_LIST`] entries and strings at
//!   [`MAX_STRING`] bytes, so a record stays far below the ledger's entry size limit.
//! - Pure functions, no IO; the engine decides how many bytes are parsed at all.

pub mod codeowners;
mod documents;
mod ecosystem;
mod hf_card;

use std::collections::{BTreeMap, BTreeSet};

use aims_model::Timestamp;
use serde_json::{Map, Value};

/// Longest list kept in metadata.
pub const MAX_LIST: usize = 100;
/// Longest string kept in metadata (longer strings are cut at a char boundary).
pub const MAX_STRING: usize = 512;

/// What a parser learned about an artifact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// Recognised format name, if any.
    pub format: Option<String>,
    /// Top-level keys of the document or of its front matter.
    pub keys: BTreeSet<String>,
    /// Top-level string fields (`kind`, `name`…).
    pub fields: BTreeMap<String, String>,
    /// Metadata for the evidence record.
    pub metadata: Map<String, Value>,
    /// The artifact's own date (evaluated_at, approved_at, generated_at, eventTime…).
    pub artifact_time: Option<Timestamp>,
    /// Why parsing failed, when it did.
    pub parse_error: Option<String>,
}

impl Parsed {
    fn error(message: impl Into<String>) -> Self {
        Self {
            parse_error: Some(truncate(message.into())),
            ..Self::default()
        }
    }
}

/// Parses an artifact at source-relative `path`. Never fails (see the module docs).
pub fn parse(path: &str, bytes: &[u8]) -> Parsed {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");

    if lower == "codeowners" {
        return codeowners::parse(bytes);
    }
    if lower == "dvc.lock" {
        return match parse_yaml(bytes) {
            Ok(v) => ecosystem::dvc_lock(&v),
            Err(e) => Parsed::error(e),
        };
    }
    match ext {
        "md" | "markdown" | "mdx" => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return Parsed::error("not valid UTF-8");
            };
            hf_card::parse_markdown(text)
        }
        "json" | "jsonld" => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => structured(&v, "json"),
            Err(e) => Parsed::error(format!("invalid JSON: {e}")),
        },
        "yaml" | "yml" => match parse_yaml(bytes) {
            Ok(v) => structured(&v, "yaml"),
            Err(e) => Parsed::error(e),
        },
        _ => sniff(bytes),
    }
}

/// Unknown extension: a document that plainly looks like JSON is parsed as JSON; anything else
/// is left unparsed without an error (binary weights, CSV, code).
fn sniff(bytes: &[u8]) -> Parsed {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| bytes[i]);
    if start == Some(b'{')
        && let Ok(v) = serde_json::from_slice::<Value>(bytes)
    {
        return structured(&v, "json");
    }
    Parsed::default()
}

/// Dispatches a parsed JSON/YAML document to the most specific recogniser.
fn structured(v: &Value, container: &str) -> Parsed {
    let Some(obj) = v.as_object() else {
        return Parsed {
            format: Some(container.to_owned()),
            ..Parsed::default()
        };
    };
    let mut p = if ecosystem::is_croissant(obj) {
        ecosystem::croissant(obj)
    } else if ecosystem::is_great_expectations(obj) {
        ecosystem::great_expectations(obj)
    } else if ecosystem::is_openlineage(obj) {
        ecosystem::openlineage(obj)
    } else {
        documents::document(obj, container)
    };
    p.keys = obj.keys().cloned().collect();
    p.fields = string_fields(obj);
    p
}

/// Parses the first YAML document into JSON values (non-string keys are stringified).
pub(crate) fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    use serde::Deserialize;
    let Some(doc) = serde_yaml::Deserializer::from_slice(bytes).next() else {
        return Ok(Value::Null);
    };
    let y = serde_yaml::Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
    Ok(yaml_to_json(y))
}

fn yaml_to_json(y: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (yaml_key(k), yaml_to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn yaml_key(k: serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s,
        other => match yaml_to_json(other) {
            Value::String(s) => s,
            v => v.to_string(),
        },
    }
}

/// Top-level string fields.
fn string_fields(obj: &Map<String, Value>) -> BTreeMap<String, String> {
    obj.iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect()
}

/// Cuts a string to [`MAX_STRING`] bytes at a char boundary.
pub(crate) fn truncate(mut s: String) -> String {
    if s.len() > MAX_STRING {
        let mut end = MAX_STRING;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A scalar as a string (`3` → `"3"`), for versions and names people write unquoted.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(truncate(s.clone())),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string, or a list of scalars kept as a list of strings.
pub(crate) fn string_or_list(v: &Value) -> Option<Value> {
    match v {
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .filter_map(scalar_string)
                .take(MAX_LIST)
                .map(Value::String)
                .collect(),
        )),
        other => scalar_string(other).map(Value::String),
    }
}

/// Copies `key` from `src` into `dst` as a string or a list of strings.
pub(crate) fn copy_str_or_list(src: &Map<String, Value>, key: &str, dst: &mut Map<String, Value>) {
    if let Some(v) = src.get(key).and_then(string_or_list) {
        dst.insert(key.to_owned(), v);
    }
}

/// A number from a JSON number or a numeric string.
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The first key of `keys` present in `obj` that holds a parsable date.
pub(crate) fn first_time(obj: &Map<String, Value>, keys: &[&str]) -> Option<Timestamp> {
    keys.iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_str))
        .find_map(Timestamp::parse_lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsable_json_is_kept_with_an_error() {
        let p = parse("reports/x.json", b"{\"a\": ");
        assert!(p.parse_error.as_deref().unwrap().contains("invalid JSON"));
        assert_eq!(p.format, None);
    }

    #[test]
    fn binary_and_unknown_are_silent() {
        let p = parse("weights.bin", &[0, 159, 146, 150]);
        assert_eq!(p, Parsed::default());
        let p = parse("Makefile", b"all:\n\ttrue\n");
        assert_eq!(p, Parsed::default());
    }

    #[test]
    fn sniffs_json_without_extension() {
        let p = parse("report", b"  {\"kind\": \"x\"}");
        assert_eq!(p.format.as_deref(), Some("json"));
        assert_eq!(p.fields["kind"], "x");
    }

    #[test]
    fn yaml_multi_doc_and_odd_keys() {
        let p = parse("a.yaml", b"1: one\nkind: thing\n---\nother: doc\n");
        assert_eq!(p.format.as_deref(), Some("yaml"));
        assert!(p.keys.contains("1") && p.keys.contains("kind"));
        assert!(!p.keys.contains("other"));
        let bad = parse("a.yml", b"a: [\n");
        assert!(bad.parse_error.is_some());
    }

    #[test]
    fn scalar_json_is_json_without_keys() {
        let p = parse("a.json", b"[1,2]");
        assert_eq!(p.format.as_deref(), Some("json"));
        assert!(p.keys.is_empty());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(MAX_STRING);
        let t = truncate(s);
        assert!(t.len() <= MAX_STRING && t.chars().all(|c| c == 'é'));
    }
}
