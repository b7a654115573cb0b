//! Recognition rules: what kind of evidence an artifact is, from its path and parsed content.
//!
//! The collector works out the [`Facts`] of an artifact (relative path, detected format,
//! top-level keys and string fields of the document or its front matter) and asks
//! [`crate::Catalog::classify`]; rules are tried in `rules.yaml` order and the first whose
//! conditions all hold decides.

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// What a collector knows about one artifact when classifying it.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// Artifact path relative to the source root, such as `systems/fraud/model_card.md`.
    pub path: &'a str,
    /// Detected content format (`hf_card`, `json`, `yaml`, `croissant`, …), if any.
    pub format: Option<&'a str>,
    /// Top-level keys of the parsed document or front matter.
    pub keys: &'a BTreeSet<String>,
    /// Top-level string fields of the parsed document or front matter.
    pub fields: &'a BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default)]
    pub(crate) name: Option<String>,
    pub(crate) kind: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    keys_any: Vec<String>,
    #[serde(default)]
    keys_all: Vec<String>,
    #[serde(default)]
    field_equals: BTreeMap<String, String>,
}

/// One compiled recognition rule. All conditions that are given must hold.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Optional name used in messages.
    pub name: Option<String>,
    /// The kind assigned when the rule matches.
    pub kind: String,
    /// Path globs (any may match); empty = no path condition.
    pub paths: Vec<String>,
    /// Required detected format; `None` = no format condition.
    pub format: Option<String>,
    /// At least one of these keys must be present; empty = no condition.
    pub keys_any: Vec<String>,
    /// All of these keys must be present; empty = no condition.
    pub keys_all: Vec<String>,
    /// These top-level string fields must have exactly these values.
    pub field_equals: BTreeMap<String, String>,
    globs: Option<GlobSet>,
}

/// Normalises a relative path for matching: forward slashes, no leading `./` or `/`.
fn normalise(path: &str) -> String {
    let p = path.replace('\\', "/");
    let mut s = p.as_str();
    loop {
        if let Some(rest) = s.strip_prefix("./") {
            s = rest;
        } else if let Some(rest) = s.strip_prefix('/') {
            s = rest;
        } else {
            break;
        }
    }
    s.to_owned()
}

impl Rule {
    pub(crate) fn compile(raw: RawRule) -> Result<Rule, String> {
        if raw.paths.is_empty()
            && raw.format.is_none()
            && raw.keys_any.is_empty()
            && raw.keys_all.is_empty()
            && raw.field_equals.is_empty()
        {
            return Err("a rule needs at least one condition (paths, format, keys_any, keys_all or field_equals)".into());
        }
        let globs = if raw.paths.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for p in &raw.paths {
                let g = GlobBuilder::new(p)
                    .case_insensitive(true)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("glob {p:?} does not compile: {e}"))?;
                b.add(g);
            }
            Some(
                b.build()
                    .map_err(|e| format!("globs do not compile: {e}"))?,
            )
        };
        Ok(Rule {
            name: raw.name,
            kind: raw.kind,
            paths: raw.paths,
            format: raw.format,
            keys_any: raw.keys_any,
            keys_all: raw.keys_all,
            field_equals: raw.field_equals,
            globs,
        })
    }

    /// True when every condition of the rule holds for `facts`.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        if let Some(f) = &self.format
            && !facts.format.is_some_and(|d| d.eq_ignore_ascii_case(f))
        {
            return false;
        }
        if !self.keys_any.is_empty() && !self.keys_any.iter().any(|k| facts.keys.contains(k)) {
            return false;
        }
        if !self.keys_all.iter().all(|k| facts.keys.contains(k)) {
            return false;
        }
        if !self
            .field_equals
            .iter()
            .all(|(k, v)| facts.fields.get(k) == Some(v))
        {
            return false;
        }
        if let Some(g) = &self.globs
            && !g.is_match(normalise(facts.path))
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;

    fn classify(
        path: &str,
        format: Option<&str>,
        keys: &[&str],
        fields: &[(&str, &str)],
    ) -> Option<String> {
        let c = Catalog::embedded().unwrap();
        let keys: BTreeSet<String> = keys.iter().map(|s| s.to_string()).collect();
        let fields: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.classify(&Facts {
            path,
            format,
            keys: &keys,
            fields: &fields,
        })
        .map(str::to_owned)
    }

    #[test]
    fn content_rules() {
        assert_eq!(
            classify(
                "data/applications/README.md",
                Some("hf_card"),
                &["license", "task_categories", "size_categories"],
                &[]
            )
            .as_deref(),
            Some("dataset_card")
        );
        assert_eq!(
            classify(
                "README.md",
                Some("hf_card"),
                &["license", "base_model", "pipeline_tag"],
                &[]
            )
            .as_deref(),
            Some("model_card")
        );
        assert_eq!(
            classify(
                "out/eval.json",
                Some("json"),
                &["kind", "model"],
                &[("kind", "validation_report")]
            )
            .as_deref(),
            Some("validation_report")
        );
        assert_eq!(
            classify("gx/run.json", Some("great_expectations"), &[], &[]).as_deref(),
            Some("data_quality_report")
        );
        assert_eq!(
            classify(
                "meta.json",
                Some("json"),
                &["@context", "recordSet", "name"],
                &[]
            )
            .as_deref(),
            Some("dataset_card")
        );
    }

    #[test]
    fn path_rules() {
        assert_eq!(
            classify("dvc.lock", None, &[], &[]).as_deref(),
            Some("lineage_record")
        );
        assert_eq!(
            classify("systems/fraud/dvc.lock", None, &[], &[]).as_deref(),
            Some("lineage_record")
        );
        assert_eq!(
            classify("./pipelines/dvc.yaml", None, &[], &[]).as_deref(),
            Some("pipeline_definition")
        );
        assert_eq!(
            classify("docs/adr/0001-use-xgboost.md", None, &[], &[]).as_deref(),
            Some("design_record")
        );
        assert_eq!(
            classify("docs/adr/old/0001.md", None, &[], &[]).as_deref(),
            None
        );
        assert_eq!(
            classify(".github/CODEOWNERS", None, &[], &[]).as_deref(),
            Some("process_control")
        );
        assert_eq!(
            classify("docs/requirements-v2.md", None, &[], &[]).as_deref(),
            Some("requirements_spec")
        );
        assert_eq!(
            classify("requirements.txt", None, &[], &[]).as_deref(),
            None
        );
        assert_eq!(
            classify("src/main.py", Some("text"), &[], &[]).as_deref(),
            None
        );
    }

    #[test]
    fn all_conditions_must_hold() {
        let raw: RawRule =
            serde_yaml::from_str("{kind: x, paths: ['**/*.json'], format: json}").unwrap();
        let r = Rule::compile(raw).unwrap();
        let keys = BTreeSet::new();
        let fields = BTreeMap::new();
        let f = |path, format| Facts {
            path,
            format,
            keys: &keys,
            fields: &fields,
        };
        assert!(r.matches(&f("a/b.json", Some("json"))));
        assert!(!r.matches(&f("a/b.json", Some("yaml"))));
        assert!(!r.matches(&f("a/b.yaml", Some("json"))));
        assert!(Rule::compile(serde_yaml::from_str("{kind: x}").unwrap()).is_err());
        assert!(
            Rule::compile(serde_yaml::from_str("{kind: x, paths: ['a/[b']}").unwrap()).is_err()
        );
    }
}
