//! What changed between two versions of one artifact (issue 16 item 2, DESIGN §12.5): a
//! field-level difference of the parsed metadata, and of the record fields that describe the
//! content (version, SHA-256, size, artifact date).
//!
//! Pure and deterministic, so the evidence page and the assessment's `changed` finding name the
//! same fields in the same order:
//! - objects are compared key by key, in sorted key order, and nested keys are named by dotted
//!   paths (`model.version`);
//! - a list of objects that each carry a distinct string `name` (metrics, splits) is compared
//!   element by element, each named by its `name` in brackets (`metrics[auc].value`), in sorted
//!   name order;
//! - any other list is compared as one value: `source_datasets` changed, old list → new list;
//! - a value whose type changed, or a scalar that differs, is one change at its path; a key or
//!   named element present on one side only is one addition or removal, with its whole value.
//!
//! Identical inputs give no changes. Nothing here does IO or allocates beyond the output.
//!
//! The `commit` a git or GitHub collector adds to the metadata says where the version was read
//! from and differs in every version, so it is compared with the record fields
//! ([`record_changes`]), not among the parsed fields ([`PROVENANCE_KEYS`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::record::EvidenceRecord;

/// How one field differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Only the newer version has it.
    Added,
    /// Only the older version has it.
    Removed,
    /// Both have it, with different values.
    Changed,
}

impl Change {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// One field that differs between two versions.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// Where: `license`, `model.version`, `metrics[auc].value`.
    pub path: String,
    /// Added, removed or changed.
    pub change: Change,
    /// The older value (`None` when added).
    pub old: Option<Value>,
    /// The newer value (`None` when removed).
    pub new: Option<Value>,
}

/// Metadata keys a collector adds about where it read a version rather than parsing them from
/// it; they change with every version, so [`metadata_changes`] leaves them to
/// [`record_changes`].
pub const PROVENANCE_KEYS: &[&str] = &["commit"];

/// The fields of the parsed metadata that differ from `old` to `new`, in path order (see the
/// module docs), [`PROVENANCE_KEYS`] left out.
pub fn metadata_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<FieldChange> {
    let parsed = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| !PROVENANCE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut out = Vec::new();
    diff_objects("", &parsed(old), &parsed(new), &mut out);
    out
}

/// The record fields that describe the artifact's version and differ from `old` to `new`:
/// `version`, the metadata's `commit` ([`PROVENANCE_KEYS`]), `sha256`, `size`,
/// `artifact_time`, and, should they differ, `event`, `kind`, `system` and `locator`. When it
/// was observed, by which agent, and the parsed metadata (see [`metadata_changes`]) are not
/// among them.
pub fn record_changes(old: &EvidenceRecord, new: &EvidenceRecord) -> Vec<FieldChange> {
    let fields = |r: &EvidenceRecord| -> [(&'static str, Option<Value>); 9] {
        [
            ("version", Some(Value::from(r.version.as_str()))),
            ("commit", r.metadata.get("commit").cloned()),
            ("sha256", Some(Value::from(r.sha256.as_str()))),
            ("size", Some(Value::from(r.size))),
            (
                "artifact_time",
                r.artifact_time.map(|t| Value::from(t.to_string())),
            ),
            ("event", Some(Value::from(r.event.as_str()))),
            ("kind", Some(Value::from(r.kind.as_str()))),
            ("system", Some(Value::from(r.system.as_str()))),
            ("locator", Some(Value::from(r.locator.as_str()))),
        ]
    };
    fields(old)
        .into_iter()
        .zip(fields(new))
        .filter_map(|((path, old), (_, new))| {
            let change = match (&old, &new) {
                (None, None) => return None,
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Removed,
                (Some(a), Some(b)) if a == b => return None,
                (Some(_), Some(_)) => Change::Changed,
            };
            Some(FieldChange {
                path: path.to_owned(),
                change,
                old,
                new,
            })
        })
        .collect()
}

/// The paths of `changes` as one phrase for a sentence: `a, b and c`, at most `max` of them named
/// (`a, b, c and 4 more`). Empty when there are none.
pub fn path_list(changes: &[FieldChange], max: usize) -> String {
    let max = max.max(1);
    let names: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    match names.len() {
        0 => String::new(),
        1 => names[0].to_owned(),
        n if n <= max => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("{} and {} more", names[..max].join(", "), n - max),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn diff_objects(
    prefix: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<FieldChange>,
) {
    let keys: BTreeSet<&str> = old.keys().chain(new.keys()).map(String::as_str).collect();
    for key in keys {
        diff_values(join(prefix, key), old.get(key), new.get(key), out);
    }
}

/// The elements of a list keyed by their `name`, when every element is an object with a string
/// `name` and no name repeats.
fn named(list: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    let mut map = BTreeMap::new();
    for v in list {
        let name = v.as_object()?.get("name")?.as_str()?;
        if map.insert(name, v).is_some() {
            return None;
        }
    }
    Some(map)
}

fn diff_values(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    let (old, new) = match (old, new) {
        (None, None) => return,
        (None, Some(n)) => {
            out.push(FieldChange {
                path,
                change: Change::Added,
                old: None,
                new: Some(n.clone()),
            });
            return;
        }
        (Some(o), None) => {
            out.push(FieldChange {
                path,
                change: Change::Removed,
                old: Some(o.clone()),
                new: None,
            });
            return;
        }
        (Some(o), Some(n)) => (o, n),
    };
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => diff_objects(&path, a, b, out),
        (Value::Array(a), Value::Array(b)) if !a.is_empty() && !b.is_empty() => {
            match (named(a), named(b)) {
                (Some(a), Some(b)) => {
                    let names: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
                    for name in names {
                        diff_values(
                            format!("{path}[{name}]"),
                            a.get(name).copied(),
                            b.get(name).copied(),
                            out,
                        );
                    }
                }
                _ => out.push(changed(path, old, new)),
            }
        }
        _ => out.push(changed(path, old, new)),
    }
}

fn changed(path: String, old: &Value, new: &Value) -> FieldChange {
    FieldChange {
        path,
        change: Change::Changed,
        old: Some(old.clone()),
        new: Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn diff(old: Value, new: Value) -> Vec<(String, Change, Option<Value>, Option<Value>)> {
        metadata_changes(&map(old), &map(new))
            .into_iter()
            .map(|c| (c.path, c.change, c.old, c.new))
            .collect()
    }

    #[test]
    fn identical_metadata_has_no_changes() {
        let m = json!({"license": "mit", "metrics": [{"name": "auc", "value": 0.9}], "x": {"y": [1, 2]}});
        assert!(diff(m.clone(), m).is_empty());
        assert!(diff(json!({}), json!({})).is_empty());
    }

    #[test]
    fn added_removed_and_changed_keys() {
        let d = diff(
            json!({"license": "mit", "title": "Card", "status": "draft"}),
            json!({"license": "apache-2.0", "status": "draft", "language": "en"}),
        );
        assert_eq!(
            d,
            vec![
                ("language".into(), Change::Added, None, Some(json!("en"))),
                (
                    "license".into(),
                    Change::Changed,
                    Some(json!("mit")),
                    Some(json!("apache-2.0"))
                ),
                ("title".into(), Change::Removed, Some(json!("Card")), None),
            ]
        );
    }

    #[test]
    fn nested_objects_are_named_by_dotted_paths() {
        let d = diff(
            json!({"model": {"name": "fraud", "version": "3"}, "dataset": {"sha256": "aa"}}),
            json!({"model": {"name": "fraud", "version": "4"}, "dataset": {"sha256": "aa", "rows": 5}}),
        );
        let paths: Vec<&str> = d.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(paths, ["dataset.rows", "model.version"]);
        assert_eq!(d[1].2, Some(json!("3")));
        assert_eq!(d[1].3, Some(json!("4")));
        // A type change is one change at its path, not a descent.
        let d = diff(json!({"model": {"name": "m"}}), json!({"model": "m"}));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].0.as_str(), d[0].1), ("model", Change::Changed));
    }

    #[test]
    fn the_commit_read_from_is_not_a_parsed_field() {
        let d = diff(
            json!({"commit": "aaa", "license": "mit"}),
            json!({"commit": "bbb", "license": "mit"}),
        );
        assert!(d.is_empty(), "{d:?}");
        let mut a = record("one", "v1", None);
        let mut b = a.clone();
        a.metadata.insert("commit".into(), json!("aaa"));
        b.metadata.insert("commit".into(), json!("bbb"));
        let c = record_changes(&a, &b);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].path.as_str(), c[0].old.clone(), c[0].new.clone()),
            ("commit", Some(json!("aaa")), Some(json!("bbb")))
        );
    }

    #[test]
    fn plain_lists_are_compared_as_values() {
        let d = diff(
            json!({"source_datasets": ["a", "b"], "same": [1, 2]}),
            json!({"source_datasets": ["a", "b", "c"], "same": [1, 2]}),
        );
        assert_eq!(
            d,
            vec![(
                "source_datasets".into(),
                Change::Changed,
                Some(json!(["a", "b"])),
                Some(json!(["a", "b", "c"]))
            )]
        );
        // Order matters in a list.
        assert_eq!(diff(json!({"l": [1, 2]}), json!({"l": [2, 1]})).len(), 1);
        // Objects without distinct names are plain values too.
        let d = diff(
            json!({"s": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]}),
            json!({"s": [{"name": "x", "v": 1}, {"name": "x", "v": 3}]}),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "s");
    }

    #[test]
    fn named_lists_are_compared_by_name() {
        let d = diff(
            json!({"metrics": [{"name": "auc", "value": 0.91}, {"name": "f1", "value": 0.8}]}),
            json!({"metrics": [{"name": "recall", "value": 0.7}, {"name": "auc", "value": 0.88}]}),
        );
        assert_eq!(
            d,
            vec![
                (
                    "metrics[auc].value".into(),
                    Change::Changed,
                    Some(json!(0.91)),
                    Some(json!(0.88))
                ),
                (
                    "metrics[f1]".into(),
                    Change::Removed,
                    Some(json!({"name": "f1", "value": 0.8})),
                    None
                ),
                (
                    "metrics[recall]".into(),
                    Change::Added,
                    None,
                    Some(json!({"name": "recall", "value": 0.7}))
                ),
            ]
        );
        // Reordering a named list changes nothing.
        assert!(
            diff(
                json!({"m": [{"name": "a"}, {"name": "b"}]}),
                json!({"m": [{"name": "b"}, {"name": "a"}]})
            )
            .is_empty()
        );
    }

    #[test]
    fn order_is_deterministic() {
        let a = json!({"z": 1, "a": {"k": 1, "b": 2}, "m": [{"name": "q", "v": 1}, {"name": "c", "v": 1}]});
        let b = json!({"z": 2, "a": {"k": 2, "b": 3}, "m": [{"name": "c", "v": 2}, {"name": "q", "v": 2}]});
        let paths: Vec<String> = diff(a.clone(), b.clone())
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(paths, ["a.b", "a.k", "m[c].v", "m[q].v", "z"]);
        let again: Vec<String> = diff(a, b).into_iter().map(|c| c.0).collect();
        assert_eq!(paths, again);
    }

    fn record(content: &str, version: &str, at: Option<&str>) -> EvidenceRecord {
        let mut v = json!({
            "v": 1, "agent": "a", "source": {"id": "repo", "type": "git"},
            "locator": "git+file:///r#card.md", "version": version,
            "sha256": crate::ContentHash::of(content.as_bytes()).as_str(),
            "size": content.len(), "observed_at": "2026-11-20T10:00:00Z",
            "system": "s", "kind": "dataset_card",
        });
        if let Some(t) = at {
            v["artifact_time"] = json!(t);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn record_fields_that_describe_the_content() {
        let a = record("one", "v1", None);
        let mut later = a.clone();
        later.observed_at = crate::Timestamp::parse_utc("2026-11-21T10:00:00Z").unwrap();
        assert!(
            record_changes(&a, &later).is_empty(),
            "observation time is not a change"
        );
        let b = record("three", "v2", Some("2026-11-21T00:00:00Z"));
        let c = record_changes(&a, &b);
        let got: Vec<(&str, Change)> = c.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(
            got,
            [
                ("version", Change::Changed),
                ("sha256", Change::Changed),
                ("size", Change::Changed),
                ("artifact_time", Change::Added),
            ]
        );
        assert_eq!(c[2].old, Some(json!(3)));
        assert_eq!(c[2].new, Some(json!(5)));
        assert_eq!(c[3].new, Some(json!("2026-11-21T00:00:00.000Z")));
    }

    #[test]
    fn path_lists_for_sentences() {
        let changes: Vec<FieldChange> = ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .map(|p| FieldChange {
                path: (*p).to_owned(),
                change: Change::Changed,
                old: None,
                new: None,
            })
            .collect();
        assert_eq!(path_list(&changes[..0], 5), "");
        assert_eq!(path_list(&changes[..1], 5), "a");
        assert_eq!(path_list(&changes[..2], 5), "a and b");
        assert_eq!(path_list(&changes[..5], 5), "a, b, c, d and e");
        assert_eq!(path_list(&changes, 5), "a, b, c, d, e and 2 more");
    }
}
