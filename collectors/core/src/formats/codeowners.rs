//! `CODEOWNERS` (GitHub's format): who owns which paths of a repository. The record keeps the
//! rules as metadata (`owners`: `[{"pattern","owners"}]`, in file order, the last ones when
//! there are more than [`super::MAX_LIST`]); [`owners_of`] answers who owns a path, as GitHub
//! does: the last matching rule wins. The server uses it to assign the GitHub issue of a
//! finding to the owners of the artifact it is about (issue 15).
//!
//! Patterns follow GitHub's gitignore subset: a pattern with a `/` other than at its end is
//! anchored at the repository root, any other matches at any depth; a trailing `/` matches a
//! directory's contents; `*` does not cross `/`, `**` does; a pattern naming a directory also
//! owns everything below it.

use serde_json::{Map, Value, json};

use super::{MAX_LIST, Parsed, truncate};

/// Parses a CODEOWNERS file. Never fails: a line it cannot read is skipped.
pub fn parse(bytes: &[u8]) -> Parsed {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Parsed::error("not valid UTF-8");
    };
    let mut rules: Vec<Value> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let Some(pattern) = parts.next() else {
            continue;
        };
        let owners: Vec<Value> = parts
            .take_while(|p| !p.starts_with('#'))
            .map(|o| Value::String(truncate(o.to_owned())))
            .take(MAX_LIST)
            .collect();
        rules.push(json!({"pattern": truncate(pattern.to_owned()), "owners": owners}));
    }
    // Later rules win, so keep the last ones.
    let skip = rules.len().saturating_sub(MAX_LIST);
    let rules: Vec<Value> = rules.into_iter().skip(skip).collect();
    let mut metadata = Map::new();
    metadata.insert("owners".into(), Value::Array(rules));
    Parsed {
        format: Some("codeowners".into()),
        metadata,
        ..Parsed::default()
    }
}

/// The repository path a locator names (`git+…#path`, `github://o/r/blob/path`), if any.
pub fn repo_path(locator: &str) -> Option<&str> {
    if let Some((_, p)) = locator.split_once("/blob/") {
        return Some(p);
    }
    locator.rsplit_once('#').map(|(_, p)| p)
}

fn matches(pattern: &str, path: &str) -> bool {
    let dir_only = pattern.ends_with('/');
    let p = pattern.trim_end_matches('/');
    if p.is_empty() {
        return false;
    }
    let anchored = p.starts_with('/') || p.contains('/');
    let p = p.trim_start_matches('/');
    let base = if anchored {
        p.to_owned()
    } else {
        format!("**/{p}")
    };
    let mut candidates = vec![format!("{base}/**")];
    if !dir_only {
        candidates.push(base);
    }
    candidates.iter().any(|g| {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .is_ok_and(|g| g.compile_matcher().is_match(path))
    })
}

/// The owners of `path` under the rules of a CODEOWNERS record's metadata (`owners`): the last
/// matching rule's owners, as written (`@user`, `@org/team`, `user@example.com`).
pub fn owners_of(metadata: &Map<String, Value>, path: &str) -> Vec<String> {
    let Some(rules) = metadata.get("owners").and_then(Value::as_array) else {
        return Vec::new();
    };
    rules
        .iter()
        .rev()
        .find(|r| {
            r.get("pattern")
                .and_then(Value::as_str)
                .is_some_and(|p| matches(p, path))
        })
        .and_then(|r| r.get("owners").and_then(Value::as_array))
        .map(|o| {
            o.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# owners\n\
        *            @ml-lead\n\
        /systems/fraud/   @alice @acme/risk-team\n\
        *.md         @docs-writer\n\
        docs/        @bob\n\
        systems/**/validation_report.json @carol carol@example.com\n";

    fn meta() -> Map<String, Value> {
        parse(FILE.as_bytes()).metadata
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let m = meta();
        assert_eq!(owners_of(&m, "train.py"), ["@ml-lead"]);
        assert_eq!(
            owners_of(&m, "systems/fraud/model.pkl"),
            ["@alice", "@acme/risk-team"]
        );
        assert_eq!(
            owners_of(&m, "systems/fraud/model_card.md"),
            ["@docs-writer"]
        );
        assert_eq!(owners_of(&m, "a/docs/x.txt"), ["@bob"]);
        assert_eq!(
            owners_of(&m, "systems/fraud/eval/validation_report.json"),
            ["@carol", "carol@example.com"]
        );
        assert!(owners_of(&Map::new(), "x").is_empty());
    }

    #[test]
    fn locators_name_their_paths() {
        assert_eq!(
            repo_path("git+file:///srv/repo#systems/fraud/x.md"),
            Some("systems/fraud/x.md")
        );
        assert_eq!(repo_path("github://acme/ml/blob/a/b.md"), Some("a/b.md"));
        assert_eq!(repo_path("s3://bucket/key"), None);
    }
}
