//! The documents the collector synthesises from API objects, and the metadata it derives.
//!
//! An API object is not a file, so the collector decides which bytes are "the artifact": a JSON
//! document built from the raw GitHub objects. The same function builds a document during
//! `list` (to compute its version) and during `fetch`, so both see the same bytes for the same
//! state of GitHub. Volatile fields are left out where they would change the bytes without a
//! change of substance (a pull request's `updated_at` moves with every comment), so the SHA-256
//! of a document changes only when the evidence does.
//!
//! Documents (serialised with `serde_json`, keys in a fixed order):
//! - deployment: `{"deployment": <deployment>, "statuses": [<status>, …]}` (newest status first);
//! - run approvals: `{"workflow_run_id": N, "approvals": [<environment approval>, …]}`;
//! - pull request: `{"pull_request": {…selected fields…}, "reviews": [{…selected fields…}]}`;
//! - branch protection: `{"branch": B, "protected": true, "protection": <protection>}` or
//!   `{"branch": B, "protected": false}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Serialises a document (infallible for `Value`s; an empty object if it ever failed).
pub(crate) fn to_bytes(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap_or_else(|_| b"{}".to_vec())
}

/// `sha256:<first 32 hex digits>` of `bytes`: a version token for synthesised documents.
pub(crate) fn digest_token(bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    format!("sha256:{}", &hex[..32])
}

pub(crate) fn deployment(deployment: &Value, statuses: &[Value]) -> Value {
    json!({"deployment": deployment, "statuses": statuses})
}

pub(crate) fn run_approvals(run_id: u64, approvals: &Value) -> Value {
    json!({"workflow_run_id": run_id, "approvals": approvals})
}

pub(crate) fn protection(branch: &str, protection: Option<&Value>) -> Value {
    match protection {
        Some(p) => json!({"branch": branch, "protected": true, "protection": p}),
        None => json!({"branch": branch, "protected": false}),
    }
}

/// `fields` of `v`, plus `user.login` as `user` when present.
fn select(v: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(x) = v.get(*f) {
            out.insert((*f).to_owned(), x.clone());
        }
    }
    if let Some(login) = v.pointer("/user/login") {
        out.insert("user".into(), login.clone());
    }
    Value::Object(out)
}

pub(crate) fn pull_request(pr: &Value, reviews: &[Value]) -> Value {
    let mut p = select(
        pr,
        &[
            "url",
            "html_url",
            "id",
            "node_id",
            "number",
            "state",
            "title",
            "created_at",
            "closed_at",
            "merged_at",
            "merge_commit_sha",
        ],
    );
    if let Value::Object(m) = &mut p {
        for side in ["base", "head"] {
            m.insert(
                side.into(),
                json!({
                    "ref": pr.pointer(&format!("/{side}/ref")).cloned().unwrap_or(Value::Null),
                    "sha": pr.pointer(&format!("/{side}/sha")).cloned().unwrap_or(Value::Null),
                }),
            );
        }
    }
    let reviews: Vec<Value> = reviews
        .iter()
        .map(|r| {
            select(
                r,
                &[
                    "id",
                    "node_id",
                    "state",
                    "submitted_at",
                    "commit_id",
                    "html_url",
                    "author_association",
                ],
            )
        })
        .collect();
    json!({"pull_request": p, "reviews": reviews})
}

/// Logins whose latest decisive review (approve, request changes, dismissed) is an approval —
/// GitHub's own rule for "approved by"; plain comments do not override an approval.
pub(crate) fn approvers(reviews: &[Value]) -> Vec<String> {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for r in reviews {
        let (Some(login), Some(state)) = (
            r.pointer("/user/login").and_then(Value::as_str),
            r.get("state").and_then(Value::as_str),
        ) else {
            continue;
        };
        if state == "COMMENTED" || state == "PENDING" {
            continue;
        }
        latest.insert(login.to_owned(), state.to_owned());
    }
    latest
        .into_iter()
        .filter(|(_, s)| s == "APPROVED")
        .map(|(l, _)| l)
        .collect()
}

/// `model {name, version}` from a deployment payload (`{"model": {"name", "version"}}`,
/// `{"model": "name"}` or flat `model_name` / `model_version`; a JSON string payload is parsed).
pub(crate) fn model_from_payload(payload: &Value) -> Option<Value> {
    let parsed;
    let payload = match payload {
        Value::String(s) if !s.is_empty() => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    let scalar = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let (name, version) = match payload.get("model") {
        Some(m @ Value::Object(_)) => (scalar(m.get("name")), scalar(m.get("version"))),
        Some(m) => (scalar(Some(m)), scalar(payload.get("model_version"))),
        None => (
            scalar(payload.get("model_name")),
            scalar(payload.get("model_version")),
        ),
    };
    let mut out = Map::new();
    out.insert("name".into(), Value::String(name?));
    if let Some(v) = version {
        out.insert("version".into(), Value::String(v));
    }
    Some(Value::Object(out))
}

/// The workflow run id in an Actions URL (`…/actions/runs/{id}` or `…/actions/runs/{id}/job/…`).
pub(crate) fn run_id_from_url(url: &str) -> Option<u64> {
    let (_, rest) = url.split_once("/actions/runs/")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// When a deployment that waited for reviewers went on: the `created_at` of the first status
/// after its last `waiting` status (statuses are given newest first).
pub(crate) fn resumed_at(statuses: &[Value]) -> Option<String> {
    let state = |s: &Value| s.get("state").and_then(Value::as_str).map(str::to_owned);
    let oldest_first: Vec<&Value> = statuses.iter().rev().collect();
    let last_waiting = oldest_first
        .iter()
        .rposition(|s| state(s).as_deref() == Some("waiting"))?;
    oldest_first
        .get(last_waiting + 1)
        .and_then(|s| s.get("created_at"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_follow_latest_decisive_review() {
        let r = |login: &str, state: &str| json!({"user": {"login": login}, "state": state});
        let reviews = [
            r("a", "CHANGES_REQUESTED"),
            r("a", "APPROVED"),
            r("b", "APPROVED"),
            r("b", "COMMENTED"),
            r("c", "APPROVED"),
            r("c", "DISMISSED"),
        ];
        assert_eq!(approvers(&reviews), vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn model_payloads() {
        assert_eq!(
            model_from_payload(&json!({"model": {"name": "fraud", "version": 3}})),
            Some(json!({"name": "fraud", "version": "3"}))
        );
        assert_eq!(
            model_from_payload(&json!("{\"model_name\":\"m\",\"model_version\":\"7\"}")),
            Some(json!({"name": "m", "version": "7"}))
        );
        assert_eq!(model_from_payload(&json!({})), None);
        assert_eq!(model_from_payload(&json!("")), None);
    }

    #[test]
    fn run_ids_and_resume_time() {
        assert_eq!(
            run_id_from_url("https://github.com/o/r/actions/runs/42/job/7"),
            Some(42)
        );
        assert_eq!(run_id_from_url("https://example.com/deploy/1"), None);
        let s = |state: &str, t: &str| json!({"state": state, "created_at": t});
        let statuses = [
            s("success", "T3"),
            s("in_progress", "T2"),
            s("waiting", "T1"),
        ];
        assert_eq!(resumed_at(&statuses).as_deref(), Some("T2"));
        assert_eq!(resumed_at(&[s("success", "T1")]), None);
    }
}
