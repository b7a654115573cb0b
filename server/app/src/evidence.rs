//! `GET /evidence/{id}` (DESIGN §12.5, issue 16 item 2): one evidence record, where it sits in
//! the ledger, and what changed since the previous version of the same artifact.
//!
//! The previous version is the entry the record's ledger entry names as `prev` (the newest entry
//! for the same source and locator when it was appended). The page compares the two:
//! - side by side, the record fields that describe the content (version, SHA-256, size, artifact
//!   date) and when each was observed and received;
//! - field by field, the parsed metadata ([`aims_model::diff`], the same difference the
//!   assessment's `changed` finding names);
//! - line by line, the content, when the server holds both versions' bytes (uploads, in the blob
//!   store), both are UTF-8 and neither is over [`MAX_DIFF_BYTES`] or [`MAX_DIFF_LINES`]. Agents
//!   ship hashes and parsed fields, not content, and the page says so rather than guess.
//!
//! Every value shown came from an artifact or an agent and goes through maud, which escapes it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use aims_model::diff::{self, FieldChange};
use aims_model::{ContentHash, Timestamp};
use aims_store::{BlobData, StoredEvidence};

use crate::AppState;
use crate::dashboard::{page, viewer};
use crate::display;
use crate::error::ApiError;

/// Largest version (in bytes) whose content is compared line by line.
pub const MAX_DIFF_BYTES: u64 = 256 * 1024;
/// Most lines a version may have for its content to be compared line by line.
pub const MAX_DIFF_LINES: usize = 2_000;
/// Unchanged lines shown around each change.
const CONTEXT_LINES: usize = 3;
/// Longest value shown in the field table (in characters); the whole value is in its `title`.
const MAX_VALUE_CHARS: usize = 120;
/// Most field names the summary sentence lists.
const MAX_NAMED_FIELDS: usize = 5;

/// `GET /evidence/{record_id}`.
pub async fn evidence_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = viewer(&state, &headers).await {
        return r;
    }
    match render(&state, &id).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let Some(ev) = state.store.evidence(id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                html! { h1 { "No evidence record " code { (id) } } },
            ),
        )
            .into_response());
    };
    let prev = match ev.prev {
        Some(leaf) => previous(state, leaf).await?,
        None => None,
    };
    let content = match &prev {
        Some(p) => Some(content_diff(state, &p.record.sha256, &ev.record.sha256).await?),
        None => None,
    };
    Ok(page(
        "Evidence",
        body(&ev, prev.as_ref(), content.as_ref(), Timestamp::now()),
    )
    .into_response())
}

/// The evidence record at ledger leaf `leaf`, if that leaf holds one.
async fn previous(state: &AppState, leaf: u64) -> Result<Option<StoredEvidence>, ApiError> {
    let Some(row) = state.store.entries(leaf, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    let entry = aims_ledger::LedgerEntry::parse(&row.entry)
        .map_err(|e| ApiError::internal(format!("leaf {leaf}: {e}")))?;
    if entry.record.is_none() {
        return Ok(None);
    }
    let id = entry
        .subject_id()
        .map_err(|e| ApiError::internal(format!("leaf {leaf}: {e}")))?;
    Ok(state.store.evidence(id.as_str()).await?)
}

/// What the page can say about the content of two versions.
#[derive(Debug, PartialEq)]
pub(crate) enum Content {
    /// The server does not hold the bytes of one or both versions.
    NotKept,
    /// A version is over [`MAX_DIFF_BYTES`] or [`MAX_DIFF_LINES`].
    TooLarge,
    /// A version is not UTF-8 text.
    NotText,
    /// Both versions have the same bytes.
    Same,
    /// The line diff, changes with [`CONTEXT_LINES`] of context.
    Lines(Vec<Row>),
}

/// The bytes the server holds for a digest, if any and not too large to compare.
enum Kept {
    Missing,
    TooLarge,
    Bytes(Vec<u8>),
}

async fn kept(state: &AppState, sha256: &ContentHash) -> Result<Kept, ApiError> {
    let Some(blob) = state.store.blob(sha256).await? else {
        return Ok(Kept::Missing);
    };
    if blob.size > MAX_DIFF_BYTES {
        return Ok(Kept::TooLarge);
    }
    let bytes = match blob.data {
        BlobData::Bytes(b) => b,
        BlobData::File(p) => {
            let mut buf = Vec::new();
            let read = match tokio::fs::File::open(&p).await {
                Ok(f) => f.take(MAX_DIFF_BYTES + 1).read_to_end(&mut buf).await,
                Err(e) => Err(e),
            };
            if let Err(e) = read {
                tracing::warn!(%sha256, error = %e, "blob listed but not readable");
                return Ok(Kept::Missing);
            }
            buf
        }
    };
    if bytes.len() as u64 > MAX_DIFF_BYTES {
        return Ok(Kept::TooLarge);
    }
    Ok(Kept::Bytes(bytes))
}

async fn content_diff(
    state: &AppState,
    old: &ContentHash,
    new: &ContentHash,
) -> Result<Content, ApiError> {
    if old == new {
        return Ok(Content::Same);
    }
    let (old, new) = match (kept(state, old).await?, kept(state, new).await?) {
        (Kept::Missing, _) | (_, Kept::Missing) => return Ok(Content::NotKept),
        (Kept::TooLarge, _) | (_, Kept::TooLarge) => return Ok(Content::TooLarge),
        (Kept::Bytes(a), Kept::Bytes(b)) => (a, b),
    };
    let (Ok(old), Ok(new)) = (String::from_utf8(old), String::from_utf8(new)) else {
        return Ok(Content::NotText);
    };
    // Up to 2,000 × 2,000 steps: off the async threads.
    tokio::task::spawn_blocking(move || match line_diff(&old, &new, MAX_DIFF_LINES) {
        Some(lines) => Content::Lines(with_context(lines, CONTEXT_LINES)),
        None => Content::TooLarge,
    })
    .await
    .map_err(ApiError::internal)
}

/// One line of a line diff: in both versions, only the old one, or only the new one, with its
/// 1-based line numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Unchanged: (old number, new number, text).
    Same(usize, usize, String),
    /// Only in the old version.
    Removed(usize, String),
    /// Only in the new version.
    Added(usize, String),
}

/// A row of the diff as shown: a line, or a run of unchanged lines left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Row {
    /// A line.
    Line(Line),
    /// This many unchanged lines, not shown.
    Skipped(usize),
}

/// The line diff of two texts (a longest common subsequence of lines, after the common prefix
/// and suffix are set aside), removals before additions where lines were replaced. `None` when
/// either text has more than `max_lines` lines.
pub(crate) fn line_diff(old: &str, new: &str, max_lines: usize) -> Option<Vec<Line>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > max_lines || b.len() > max_lines {
        return None;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..] (at most max_lines).
    let w = mb.len() + 1;
    let mut lcs = vec![0u32; (ma.len() + 1) * w];
    for i in (0..ma.len()).rev() {
        for j in (0..mb.len()).rev() {
            lcs[i * w + j] = if ma[i] == mb[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    for (k, line) in a[..prefix].iter().enumerate() {
        out.push(Line::Same(k + 1, k + 1, (*line).to_owned()));
    }
    let (mut i, mut j) = (0, 0);
    while i < ma.len() || j < mb.len() {
        let (oi, nj) = (prefix + i + 1, prefix + j + 1);
        if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
            out.push(Line::Same(oi, nj, ma[i].to_owned()));
            i += 1;
            j += 1;
        } else if j == mb.len() || (i < ma.len() && lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
            out.push(Line::Removed(oi, ma[i].to_owned()));
            i += 1;
        } else {
            out.push(Line::Added(nj, mb[j].to_owned()));
            j += 1;
        }
    }
    let (oa, ob) = (a.len() - suffix, b.len() - suffix);
    for k in 0..suffix {
        out.push(Line::Same(oa + k + 1, ob + k + 1, a[oa + k].to_owned()));
    }
    Some(out)
}

/// The changed lines with `context` unchanged lines around each change; longer unchanged runs
/// become [`Row::Skipped`].
pub(crate) fn with_context(lines: Vec<Line>, context: usize) -> Vec<Row> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| {
        // The first change at or after i - context, if within i + context.
        let from = i.saturating_sub(context);
        let at = changed.partition_point(|&c| c < from);
        changed.get(at).is_some_and(|&c| c <= i + context)
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in lines.into_iter().enumerate() {
        if matches!(line, Line::Same(..)) && !near(i) {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            out.push(Row::Skipped(skipped));
            skipped = 0;
        }
        out.push(Row::Line(line));
    }
    if skipped > 0 {
        out.push(Row::Skipped(skipped));
    }
    out
}

/// At most `max` characters of `s`, with `…` when cut.
fn truncate(s: &str, max: usize) -> Option<String> {
    let mut it = s.char_indices();
    let (cut, _) = it.nth(max)?;
    Some(format!("{}…", &s[..cut]))
}

/// A value as compact JSON text, cut to [`MAX_VALUE_CHARS`] with the whole value in the title.
fn value_cell(v: Option<&Value>) -> Markup {
    let Some(v) = v else {
        return html! { span.muted { "—" } };
    };
    let full = serde_json::to_string(v).unwrap_or_default();
    match truncate(&full, MAX_VALUE_CHARS) {
        Some(short) => html! { code title=(full) { (short) } },
        None => html! { code { (full) } },
    }
}

fn field_table(id: &str, changes: &[FieldChange]) -> Markup {
    html! {
        table #(id) {
            thead { tr { th { "Field" } th { "Change" } th { "Previous version" } th { "This version" } } }
            tbody {
                @for c in changes {
                    tr data-field=(c.path) data-change=(c.change.as_str()) {
                        td.mono { (c.path) }
                        td { (c.change.as_str()) }
                        td { (value_cell(c.old.as_ref())) }
                        td { (value_cell(c.new.as_ref())) }
                    }
                }
            }
        }
    }
}

fn short_id(e: &StoredEvidence) -> String {
    e.record_id.as_str().chars().take(12).collect()
}

/// The commit a version was read from (git and GitHub sources), as the collector recorded it.
fn commit(r: &aims_model::EvidenceRecord) -> Markup {
    match r.metadata.get("commit") {
        Some(Value::String(c)) => html! { code { (c) } },
        other => value_cell(other),
    }
}

/// The record fields side by side.
fn versions_table(prev: &StoredEvidence, ev: &StoredEvidence, now: Timestamp) -> Markup {
    let changed: Vec<&str> = diff::record_changes(&prev.record, &ev.record)
        .iter()
        .map(|c| match c.path.as_str() {
            "version" => "Version",
            "commit" => "Commit",
            "sha256" => "SHA-256",
            "size" => "Size",
            "artifact_time" => "Artifact time",
            "event" => "Event",
            "kind" => "Kind",
            "system" => "AI system",
            _ => "Locator",
        })
        .collect();
    let time = |t: Option<Timestamp>| match t {
        Some(t) => display::when(t, now),
        None => html! { "—" },
    };
    let rows: Vec<(&str, Markup, Markup)> = vec![
        (
            "Record",
            html! { a.mono href={ "/evidence/" (prev.record_id) } { (short_id(prev)) "…" } },
            html! { span.mono { (short_id(ev)) "…" } },
        ),
        (
            "Ledger leaf",
            html! { (prev.leaf_index) },
            html! { (ev.leaf_index) },
        ),
        (
            "Observed",
            time(Some(prev.record.observed_at)),
            time(Some(ev.record.observed_at)),
        ),
        (
            "Received",
            time(Some(prev.received_at)),
            time(Some(ev.received_at)),
        ),
        (
            "Artifact time",
            time(prev.record.artifact_time),
            time(ev.record.artifact_time),
        ),
        (
            "Version",
            html! { code { (prev.record.version) } },
            html! { code { (ev.record.version) } },
        ),
        ("Commit", commit(&prev.record), commit(&ev.record)),
        (
            "SHA-256",
            html! { span.mono { (prev.record.sha256) } },
            html! { span.mono { (ev.record.sha256) } },
        ),
        (
            "Size",
            html! { (prev.record.size) " bytes" },
            html! { (ev.record.size) " bytes" },
        ),
        (
            "Event",
            html! { (prev.record.event.as_str()) },
            html! { (ev.record.event.as_str()) },
        ),
        (
            "Kind",
            html! { (prev.record.kind) },
            html! { (ev.record.kind) },
        ),
        (
            "AI system",
            html! { (prev.record.system) },
            html! { (ev.record.system) },
        ),
    ];
    // The commit when a version has one; event, kind and AI system only when they differ.
    let has_commit = [prev, ev]
        .iter()
        .any(|e| e.record.metadata.contains_key("commit"));
    let always = [
        "Record",
        "Ledger leaf",
        "Observed",
        "Received",
        "Artifact time",
        "Version",
        "SHA-256",
        "Size",
    ];
    html! {
        table #versions {
            thead { tr { th { "" } th { "Previous version" } th { "This version" } th { "Differs" } } }
            tbody {
                @for (name, old, new) in rows {
                    @if always.contains(&name) || changed.contains(&name) || (name == "Commit" && has_commit) {
                        tr data-row=(name) {
                            th { (name) }
                            td { (old) }
                            td { (new) }
                            td { @if changed.contains(&name) { strong { "differs" } } }
                        }
                    }
                }
            }
        }
    }
}

fn content_section(content: &Content) -> Markup {
    html! {
        h3 { "Content" }
        @match content {
            Content::NotKept => p #content-note {
                "The server does not keep the content of this artifact (agents ship its SHA-256 and \
                 parsed fields; only uploaded documents are kept), so only the hashes and the parsed \
                 fields above are compared."
            },
            Content::TooLarge => p #content-note {
                "Too large to compare line by line (over " (MAX_DIFF_BYTES / 1024) " KiB or "
                (MAX_DIFF_LINES) " lines); the hashes and the parsed fields above are compared."
            },
            Content::NotText => p #content-note {
                "Not UTF-8 text, so not compared line by line; the hashes and the parsed fields \
                 above are compared."
            },
            Content::Same => p #content-note { "Both versions have the same content." },
            Content::Lines(rows) => {
                p.muted { "Line by line (removed lines marked −, added lines +), with "
                    (CONTEXT_LINES) " unchanged lines around each change." }
                table #content-diff {
                    thead { tr { th { "Previous" } th { "This" } th { "" } th { "Line" } } }
                    tbody {
                        @for row in rows {
                            @match row {
                                Row::Skipped(n) => tr.skipped { td colspan="4" { "⋯ " (n) " unchanged lines" } },
                                Row::Line(Line::Same(o, n, t)) => tr { td { (o) } td { (n) } td { } td { code.line { (t) } } },
                                Row::Line(Line::Removed(o, t)) => tr.del { td { (o) } td { } td { "−" } td { code.line { (t) } } },
                                Row::Line(Line::Added(n, t)) => tr.add { td { } td { (n) } td { "+" } td { code.line { (t) } } },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What changed since the previous version: the sentence, the record fields side by side, the
/// parsed fields and the content.
fn changes_section(
    prev: &StoredEvidence,
    ev: &StoredEvidence,
    content: &Content,
    now: Timestamp,
) -> Markup {
    let fields = diff::metadata_changes(&prev.record.metadata, &ev.record.metadata);
    let summary = match fields.len() {
        0 => "No parsed field differs from the previous version.".to_owned(),
        1 => format!(
            "1 parsed field differs from the previous version: {}.",
            diff::path_list(&fields, MAX_NAMED_FIELDS)
        ),
        n => format!(
            "{n} parsed fields differ from the previous version: {}.",
            diff::path_list(&fields, MAX_NAMED_FIELDS)
        ),
    };
    html! {
        p.summary #changes-summary { (summary) }
        (versions_table(prev, ev, now))
        h3 { "Parsed fields" }
        @if fields.is_empty() {
            p { "The parsed fields are the same in both versions." }
        } @else {
            (field_table("field-changes", &fields))
        }
        (content_section(content))
    }
}

/// The page body (pure, for tests).
pub(crate) fn body(
    ev: &StoredEvidence,
    prev: Option<&StoredEvidence>,
    content: Option<&Content>,
    now: Timestamp,
) -> Markup {
    let pretty = serde_json::to_string_pretty(&ev.record).unwrap_or_default();
    let short = display::short_locator(&ev.record.locator);
    html! {
        h1 { "Evidence " code { (ev.record_id) } }
        table {
            tr { th { "AI system" } td { a href={ "/systems/" (ev.record.system) } { (ev.record.system) } } }
            tr { th { "Kind" } td { (ev.record.kind) } }
            tr { th { "Artifact" } td { span.mono title=(ev.record.locator) { (short) } } }
            tr { th { "Locator" } td { code #locator { (ev.record.locator) } } }
            tr { th { "SHA-256" } td.mono { (ev.record.sha256) } }
            tr { th { "Size" } td { (ev.record.size) " bytes" } }
            tr { th { "Observed" } td { (display::when(ev.record.observed_at, now)) } }
            tr { th { "Artifact time" } td { @match ev.record.artifact_time { Some(t) => (display::when(t, now)), None => "—" } } }
            tr { th { "Ledger leaf" } td { (ev.leaf_index) " (received " (display::when(ev.received_at, now)) " from " (ev.agent) ")" } }
            tr { th { "Previous version" } td {
                @match (prev, ev.prev) {
                    (Some(p), _) => {
                        a.mono #prev-link href={ "/evidence/" (p.record_id) } { (short_id(p)) "…" }
                        " (leaf " (p.leaf_index) ", observed " (display::when(p.record.observed_at, now)) ")"
                    },
                    (None, Some(leaf)) => { "leaf " (leaf) " (not an evidence record)" },
                    (None, None) => "none: the first version of this artifact in the ledger",
                }
            } }
            tr { th { "Proof" } td { a href={ "/v1/evidence/" (ev.record_id) "/proof" } { "tlog-proof receipt" } } }
        }
        h2 #changes { "What changed" }
        @match (prev, content, ev.prev) {
            (Some(p), Some(c), _) => (changes_section(p, ev, c, now)),
            (_, _, Some(_)) => p { "Nothing to compare with: the previous entry of this artifact is not an evidence record." },
            _ => p { "Nothing to compare with: this is the first version of this artifact in the ledger." },
        }
        h2 { "Record" }
        pre.mono { (pretty) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(s: &[&str]) -> String {
        s.join("\n")
    }

    #[test]
    fn line_diff_marks_removed_added_and_same() {
        let d = line_diff(
            &lines(&["a", "b", "c", "d"]),
            &lines(&["a", "x", "c", "d", "e"]),
            100,
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                Line::Same(1, 1, "a".into()),
                Line::Removed(2, "b".into()),
                Line::Added(2, "x".into()),
                Line::Same(3, 3, "c".into()),
                Line::Same(4, 4, "d".into()),
                Line::Added(5, "e".into()),
            ]
        );
        assert!(
            line_diff("same\ntext", "same\ntext", 10)
                .unwrap()
                .iter()
                .all(|l| matches!(l, Line::Same(..)))
        );
        assert_eq!(
            line_diff("", "new", 10).unwrap(),
            vec![Line::Added(1, "new".into())]
        );
        assert_eq!(
            line_diff("old", "", 10).unwrap(),
            vec![Line::Removed(1, "old".into())]
        );
        // A common subsequence in the middle is kept, not rewritten.
        let d = line_diff(
            &lines(&["p", "k1", "k2", "q"]),
            &lines(&["r", "k1", "k2", "s"]),
            10,
        )
        .unwrap();
        assert_eq!(d.iter().filter(|l| matches!(l, Line::Same(..))).count(), 2);
    }

    #[test]
    fn line_diff_is_bounded() {
        let big: String = (0..11).map(|i| format!("{i}\n")).collect();
        assert!(line_diff(&big, "x", 10).is_none());
        assert!(line_diff("x", &big, 10).is_none());
        assert!(line_diff(&big, &big, 11).is_some());
    }

    #[test]
    fn unchanged_runs_are_folded() {
        let old: Vec<String> = (1..=20).map(|i| format!("l{i}")).collect();
        let mut new = old.clone();
        new[9] = "changed".into();
        let d = line_diff(&old.join("\n"), &new.join("\n"), 100).unwrap();
        let rows = with_context(d, 3);
        assert_eq!(rows.first(), Some(&Row::Skipped(6)));
        assert_eq!(rows.last(), Some(&Row::Skipped(7)));
        // 3 before, removed, added, 3 after, and the two folds.
        assert_eq!(rows.len(), 10, "{rows:#?}");
        assert!(rows.contains(&Row::Line(Line::Removed(10, "l10".into()))));
        assert!(rows.contains(&Row::Line(Line::Added(10, "changed".into()))));
    }

    fn stored(leaf: u64, content: &str, metadata: Value, prev: Option<u64>) -> StoredEvidence {
        let record: aims_model::EvidenceRecord = serde_json::from_value(json!({
            "v": 1, "agent": "a", "source": {"id": "repo", "type": "git"},
            "locator": "git+file:///r/pipeline#systems/x/data/README.md", "version": format!("v{leaf}"),
            "sha256": ContentHash::of(content.as_bytes()).as_str(),
            "size": content.len(), "observed_at": "2026-11-20T10:00:00Z",
            "system": "x", "kind": "dataset_card", "metadata": metadata,
        }))
        .unwrap();
        StoredEvidence {
            record_id: record.record_id().unwrap(),
            leaf_index: leaf,
            received_at: record.observed_at,
            record,
            agent: "a".into(),
            prev,
            confirmed_at: None,
        }
    }

    #[test]
    fn page_shows_the_previous_version_and_the_changed_fields_as_text() {
        let now = Timestamp::parse_utc("2026-11-23T00:00:00Z").unwrap();
        let old = stored(
            3,
            "one",
            json!({"license": "mit", "library_name": "plain", "metrics": [{"name": "auc", "value": 0.91}]}),
            None,
        );
        let long = "y".repeat(300);
        let new = stored(
            9,
            "two!",
            json!({"license": "apache-2.0", "library_name": "<script>alert(1)</script>\"",
                   "metrics": [{"name": "auc", "value": 0.88}], "notes": long}),
            Some(3),
        );
        let html = body(&new, Some(&old), Some(&Content::NotKept), now).into_string();
        assert!(
            html.contains(&format!(
                "id=\"prev-link\" href=\"/evidence/{}\"",
                old.record_id
            )),
            "{html}"
        );
        assert!(
            html.contains("4 parsed fields differ from the previous version: library_name, license, metrics[auc].value and notes."),
            "{html}"
        );
        assert!(html.contains("data-field=\"metrics[auc].value\" data-change=\"changed\""));
        assert!(html.contains("<code>0.91</code>") && html.contains("<code>0.88</code>"));
        assert!(html.contains("data-field=\"notes\" data-change=\"added\""));
        // Escaped, never markup.
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&quot;&lt;script&gt;alert(1)&lt;/script&gt;\\&quot;&quot;"),
            "{html}"
        );
        // A long value is cut, the whole of it in the title.
        assert!(
            html.contains(&format!("title=\"&quot;{long}&quot;\"")),
            "{html}"
        );
        assert!(
            html.contains(&format!("&quot;{}…</code>", "y".repeat(119))),
            "{html}"
        );
        // The record fields side by side, those that differ marked in words.
        assert!(
            html.contains("<tr data-row=\"SHA-256\"><th>SHA-256</th>"),
            "{html}"
        );
        let size_row = &html[html.find("data-row=\"Size\"").unwrap()..];
        assert!(size_row[..size_row.find("</tr>").unwrap()].contains("differs"));
        assert!(!html.contains("data-row=\"Commit\""), "no commit, no row");
        let kind_row = html.contains("data-row=\"Kind\"");
        assert!(!kind_row, "kind is shown only when it differs");
        assert!(
            html.contains("The server does not keep the content"),
            "{html}"
        );
    }

    #[test]
    fn page_without_a_previous_version_and_with_a_line_diff() {
        let now = Timestamp::parse_utc("2026-11-23T00:00:00Z").unwrap();
        let first = stored(1, "one", json!({"commit": "c1"}), None);
        let html = body(&first, None, None, now).into_string();
        assert!(
            html.contains("none: the first version of this artifact"),
            "{html}"
        );
        assert!(html.contains("Nothing to compare with"), "{html}");

        let second = stored(2, "two", json!({"commit": "c2"}), Some(1));
        let rows = with_context(line_diff("a\n<b>", "a\n<script>", 10).unwrap(), 3);
        let html = body(&second, Some(&first), Some(&Content::Lines(rows)), now).into_string();
        // The commit read from is a record field, not a parsed one.
        assert!(html.contains("No parsed field differs from the previous version."));
        let commit = &html[html.find("data-row=\"Commit\"").unwrap()..];
        let commit = &commit[..commit.find("</tr>").unwrap()];
        assert!(
            commit.contains("<code>c1</code>")
                && commit.contains("<code>c2</code>")
                && commit.contains("differs"),
            "{commit}"
        );
        assert!(html.contains("id=\"content-diff\""), "{html}");
        assert!(
            html.contains("<tr class=\"add\"><td></td><td>2</td><td>+</td><td><code class=\"line\">&lt;script&gt;</code>"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }
}
