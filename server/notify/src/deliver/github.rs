//! The `github` sink: one issue per finding (and one per silent source) in `repo`, kept up to
//! date by comments, through the REST API at `api_url` (plain HTTPS requests with
//! `Authorization: Bearer <token>`, API version 2022-11-28; no redirects, so the token only
//! reaches that origin).
//!
//! **Finding an issue again.** Each issue body carries a hidden marker,
//! `<!-- aims-finding:<finding id> -->` or `<!-- aims-source:<agent>/<source> -->`, and every
//! issue gets the label `aims`. Before creating, the sink looks for the marker in two places:
//! 1. the search API, `GET /search/issues?q=repo:OWNER/NAME is:issue in:body "aims-finding:<id>"`,
//!    which covers the whole history of the repository but is indexed with a delay;
//! 2. the newest 50 issues labelled `aims` (`GET /repos/OWNER/NAME/issues?labels=aims&state=all
//!    &sort=created&direction=desc`), which is immediately consistent and covers issues opened
//!    moments ago (a `finding.acknowledged` right after the `finding.opened`).
//!
//! A hit is an issue whose body contains the exact marker (the oldest one if several). So a
//! restart or a second replica retrying an event never opens a second issue for a finding.
//! The body also carries `<!-- aims-delivery:<id> -->`, so a retry of the delivery that created
//! the issue does nothing more. Comments are not de-duplicated: a retry after a lost answer may
//! comment twice (delivery is at least once).
//!
//! **Per event.**
//! - `finding.opened`: create the issue (title `aims: <kind> on <system> (<controls>)`; labels:
//!   the configured ones, `aims`, `aims:<kind>`, `control:<id>` per control; assignees: the
//!   finding's `owners`, retried without them if GitHub refuses them), or comment on the
//!   existing one, reopening it if it was closed.
//! - `finding.acknowledged`, `evidence.expiring`: comment on the finding's issue (created if
//!   there is none).
//! - `finding.resolved`: comment and close (`state_reason: completed`); nothing if there is no
//!   issue or it is already closed.
//! - `source.silent`: like `finding.opened`, keyed by the source.
//! - `test`: `GET /repos/OWNER/NAME` (the token can see the repository); creates nothing.
//!
//! **Errors.** 403 with `x-ratelimit-remaining: 0`, a 403 naming a secondary rate limit, and
//! 429 are `Retry` with `after` from `Retry-After` or `x-ratelimit-reset`; 5xx, 408 and
//! transport errors `Retry` (the search API allows 30 requests a minute, so a burst of new
//! findings waits for its reset); 422 `Failed` with GitHub's message and its `errors`; any other
//! 4xx (401 bad token, 404 no access) `Failed`.

use chrono::Utc;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use url::Url;

use super::{Deliverer, Outcome, read_limited, redirect_reason, retry_after, retryable, send};
use crate::backoff::MAX_RETRY_AFTER;
use crate::config::{GITHUB_LABEL, GithubSink};
use crate::event::{EventType, FindingPayload, Notification, SourcePayload, finding_summary};

/// The REST API version requested.
const API_VERSION: &str = "2022-11-28";
/// GitHub's limits: issue titles, labels, assignees.
const MAX_TITLE_CHARS: usize = 256;
const MAX_LABEL_CHARS: usize = 50;
const MAX_ASSIGNEES: usize = 10;
/// Evidence records listed in an issue body.
const MAX_EVIDENCE_ROWS: usize = 20;
/// A secondary rate limit without a `Retry-After`: GitHub asks for at least a minute.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// An early return: the outcome of the whole delivery.
type Step<T> = Result<T, Outcome>;

/// The fields of an issue this sink reads (search items and list entries have the same shape).
#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    state: String,
    #[serde(default)]
    body: Option<String>,
    /// Present on pull requests, which the issues endpoints also return.
    #[serde(default)]
    pull_request: Option<Value>,
}

impl Issue {
    fn has(&self, marker: &str) -> bool {
        self.pull_request.is_none() && self.body.as_deref().is_some_and(|b| b.contains(marker))
    }

    fn is_closed(&self) -> bool {
        self.state == "closed"
    }
}

/// `GET /search/issues`.
#[derive(Debug, Deserialize)]
struct SearchResult {
    #[serde(default)]
    items: Vec<Issue>,
}

/// A key as it may stand inside an HTML comment (no `<`, `>`, quotes or line breaks).
fn key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '<' | '>' | '"') && !c.is_control())
        .collect()
}

/// The hidden marker of a finding's issue.
fn finding_marker(id: &str) -> String {
    format!("<!-- aims-finding:{} -->", key(id))
}

/// The searchable text of a silent source's marker.
fn source_key(s: &SourcePayload) -> String {
    format!("aims-source:{}/{}", key(&s.agent), key(&s.source))
}

/// The hidden marker of a delivery.
fn delivery_marker(delivery: &str) -> String {
    format!("<!-- aims-delivery:{} -->", key(delivery))
}

/// One delivery's view of the API.
struct Api<'a> {
    d: &'a Deliverer,
    gh: &'a GithubSink,
}

/// One delivery attempt.
pub(super) async fn deliver(d: &Deliverer, gh: &GithubSink, n: &Notification) -> Outcome {
    let api = Api { d, gh };
    let result = match (n.event, &n.finding, &n.source) {
        (EventType::Test, _, _) => api.check_repo().await,
        (EventType::SourceSilent, _, Some(s)) => api.source_silent(n, s).await,
        (EventType::SourceSilent, _, None) => {
            Err(Outcome::failed("source.silent without a source"))
        }
        (_, Some(f), _) => api.finding(n, f).await,
        (event, None, _) => Err(Outcome::failed(format!("{event} without a finding"))),
    };
    match result {
        Ok(detail) => Outcome::Delivered { detail },
        Err(outcome) => outcome,
    }
}

impl Api<'_> {
    async fn check_repo(&self) -> Step<String> {
        let url = self.repo_url(&[])?;
        self.call(Method::GET, url, None).await?;
        Ok(format!(
            "repository {}/{} reachable",
            self.gh.owner, self.gh.repo
        ))
    }

    async fn finding(&self, n: &Notification, f: &FindingPayload) -> Step<String> {
        let marker = finding_marker(&f.id);
        let existing = self
            .find_issue(&marker, &format!("aims-finding:{}", key(&f.id)))
            .await?;
        let Some(issue) = existing else {
            if n.event == EventType::FindingResolved {
                return Ok(format!("no issue for finding {}; nothing to close", f.id));
            }
            return self.create_finding_issue(n, f, &marker).await;
        };
        let number = issue.number;
        if issue.has(&delivery_marker(&n.delivery)) {
            return Ok(format!("issue #{number} was opened by this delivery"));
        }
        match n.event {
            EventType::FindingResolved if issue.is_closed() => {
                Ok(format!("issue #{number} already closed"))
            }
            EventType::FindingResolved => {
                self.comment(number, &finding_comment(n, f)).await?;
                self.set_state(
                    number,
                    json!({"state": "closed", "state_reason": "completed"}),
                )
                .await?;
                Ok(format!("commented on and closed issue #{number}"))
            }
            EventType::FindingOpened if issue.is_closed() => {
                self.set_state(number, json!({"state": "open"})).await?;
                self.comment(number, &finding_comment(n, f)).await?;
                Ok(format!("reopened issue #{number}"))
            }
            _ => {
                self.comment(number, &finding_comment(n, f)).await?;
                Ok(format!("commented on issue #{number}"))
            }
        }
    }

    async fn source_silent(&self, n: &Notification, s: &SourcePayload) -> Step<String> {
        let phrase = source_key(s);
        let marker = format!("<!-- {phrase} -->");
        match self.find_issue(&marker, &phrase).await? {
            None => {
                let mut labels = self.gh.labels.clone();
                labels.push(GITHUB_LABEL.to_owned());
                labels.push("aims:source-silent".to_owned());
                let issue = json!({
                    "title": title(&format!("source silent: {}/{}", s.agent, s.source)),
                    "body": source_body(n, s, &marker),
                    "labels": dedup_labels(labels),
                });
                let number = self.create(&issue).await?;
                Ok(format!("opened issue #{number}"))
            }
            Some(issue) if issue.has(&delivery_marker(&n.delivery)) => Ok(format!(
                "issue #{} was opened by this delivery",
                issue.number
            )),
            Some(issue) => {
                let reopen = issue.is_closed();
                if reopen {
                    self.set_state(issue.number, json!({"state": "open"}))
                        .await?;
                }
                let body = format!(
                    "Still silent since {}: {}\n\n[Sources]({})\n{}",
                    md(&s.silent_since),
                    md(&s.message),
                    s.links.dashboard,
                    delivery_marker(&n.delivery)
                );
                self.comment(issue.number, &body).await?;
                Ok(format!(
                    "{} issue #{}",
                    if reopen { "reopened" } else { "commented on" },
                    issue.number
                ))
            }
        }
    }

    async fn create_finding_issue(
        &self,
        n: &Notification,
        f: &FindingPayload,
        marker: &str,
    ) -> Step<String> {
        let mut labels = self.gh.labels.clone();
        labels.push(GITHUB_LABEL.to_owned());
        labels.push(format!("aims:{}", f.kind));
        labels.extend(f.controls.iter().map(|c| format!("control:{c}")));
        let assignees = assignees(&f.owners);
        let mut issue = json!({
            "title": title(&finding_summary(f)),
            "body": finding_body(n, f, marker),
            "labels": dedup_labels(labels),
        });
        if assignees.is_empty() {
            let number = self.create(&issue).await?;
            return Ok(format!("opened issue #{number}"));
        }
        issue["assignees"] = json!(assignees);
        match self.create(&issue).await {
            Ok(number) => Ok(format!("opened issue #{number}")),
            // An owner who cannot be assigned (no access, a team) fails the whole request
            // with 422 naming the `assignees` field; the issue matters more than the
            // assignment. Any other 422 stays a failure.
            Err(Outcome::Failed { reason })
                if reason.contains("HTTP 422") && reason.contains("assignee") =>
            {
                tracing::warn!(%reason, "GitHub refused the assignees; opening the issue without");
                if let Some(map) = issue.as_object_mut() {
                    map.remove("assignees");
                }
                let number = self.create(&issue).await?;
                Ok(format!(
                    "opened issue #{number} (without assignees: {reason})"
                ))
            }
            Err(other) => Err(other),
        }
    }

    /// The issue carrying `marker` (see the module docs); `phrase` is the marker's searchable
    /// text.
    async fn find_issue(&self, marker: &str, phrase: &str) -> Step<Option<Issue>> {
        let mut url = self.url(&["search", "issues"])?;
        let q = format!(
            "repo:{}/{} is:issue in:body \"{}\"",
            self.gh.owner, self.gh.repo, phrase
        );
        url.query_pairs_mut()
            .append_pair("q", &q)
            .append_pair("per_page", "20");
        let found: SearchResult = decode(self.call(Method::GET, url, None).await?, "search")?;
        if let Some(issue) = oldest_with(found.items, marker) {
            return Ok(Some(issue));
        }
        let mut url = self.repo_url(&["issues"])?;
        url.query_pairs_mut()
            .append_pair("labels", GITHUB_LABEL)
            .append_pair("state", "all")
            .append_pair("sort", "created")
            .append_pair("direction", "desc")
            .append_pair("per_page", "50");
        let recent: Vec<Issue> = decode(self.call(Method::GET, url, None).await?, "issue list")?;
        Ok(oldest_with(recent, marker))
    }

    async fn create(&self, issue: &Value) -> Step<u64> {
        let url = self.repo_url(&["issues"])?;
        let created: Issue = decode(
            self.call(Method::POST, url, Some(issue)).await?,
            "created issue",
        )?;
        Ok(created.number)
    }

    async fn comment(&self, number: u64, body: &str) -> Step<()> {
        let n = number.to_string();
        let url = self.repo_url(&["issues", &n, "comments"])?;
        self.call(Method::POST, url, Some(&json!({ "body": body })))
            .await?;
        Ok(())
    }

    async fn set_state(&self, number: u64, patch: Value) -> Step<()> {
        let n = number.to_string();
        let url = self.repo_url(&["issues", &n])?;
        self.call(Method::PATCH, url, Some(&patch)).await?;
        Ok(())
    }

    /// `api_url` + `segments`, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Step<Url> {
        let mut url = self.gh.api.clone();
        url.set_query(None);
        url.set_fragment(None);
        match url.path_segments_mut() {
            Ok(mut path) => {
                path.pop_if_empty().extend(segments);
            }
            Err(()) => return Err(Outcome::failed("api_url cannot take a path")),
        }
        Ok(url)
    }

    /// `repos/OWNER/NAME` + `tail`.
    fn repo_url(&self, tail: &[&str]) -> Step<Url> {
        let mut segments = vec!["repos", self.gh.owner.as_str(), self.gh.repo.as_str()];
        segments.extend_from_slice(tail);
        self.url(&segments)
    }

    /// One API request; any answer but a 2xx with JSON (or nothing) ends the delivery with
    /// the outcome it calls for.
    async fn call(&self, method: Method, url: Url, body: Option<&Value>) -> Step<Value> {
        let what = format!("{method} {}", url.path());
        let mut req = self
            .d
            .client
            .request(method, url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .bearer_auth(self.gh.token.expose());
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = send(req).await.map_err(|o| prefixed(o, &what))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if status.is_redirection() {
            return Err(Outcome::failed(format!(
                "{what}: {}",
                redirect_reason(status, &headers)
            )));
        }
        let limit = self.d.options.max_api_response_bytes;
        let answer = read_limited(resp, limit).await;
        if status.is_success() {
            if answer.truncated {
                return Err(Outcome::retry(format!(
                    "{what}: answer larger than {limit} bytes"
                )));
            }
            if let Some(e) = answer.error {
                return Err(Outcome::retry(format!("{what}: reading the answer: {e}")));
            }
            if answer.bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&answer.bytes).map_err(|e| {
                Outcome::retry(format!("{what}: HTTP {}: not JSON: {e}", status.as_u16()))
            });
        }
        let message = api_message(&answer.bytes);
        let reason = format!("{what}: HTTP {}: {message}", status.as_u16());
        if let Some(after) = rate_limit_wait(status, &headers, &message) {
            return Err(Outcome::Retry {
                after: Some(after),
                reason: format!("{reason} (rate limited)"),
            });
        }
        if retryable(status) {
            return Err(Outcome::Retry {
                after: retry_after(&headers),
                reason,
            });
        }
        Err(Outcome::Failed { reason })
    }
}

/// The outcome with `what` (the request) in front of its reason.
fn prefixed(o: Outcome, what: &str) -> Outcome {
    match o {
        Outcome::Retry { after, reason } => Outcome::Retry {
            after,
            reason: format!("{what}: {reason}"),
        },
        Outcome::Failed { reason } => Outcome::Failed {
            reason: format!("{what}: {reason}"),
        },
        delivered @ Outcome::Delivered { .. } => delivered,
    }
}

/// A 2xx answer in the shape the API documents.
fn decode<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Step<T> {
    serde_json::from_value(v)
        .map_err(|e| Outcome::retry(format!("unexpected {what} answer from GitHub: {e}")))
}

/// The lowest-numbered issue carrying `marker`.
fn oldest_with(issues: Vec<Issue>, marker: &str) -> Option<Issue> {
    issues
        .into_iter()
        .filter(|i| i.has(marker))
        .min_by_key(|i| i.number)
}

/// How long GitHub asks to wait, when the answer is a rate limit (primary: 403 or 429 with
/// `x-ratelimit-remaining: 0`; secondary: 403/429 with `Retry-After` or saying so).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, message: &str) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let says_so = message.to_ascii_lowercase().contains("rate limit");
    let after = retry_after(headers);
    let limited = match status.as_u16() {
        429 => true,
        403 => exhausted || says_so || after.is_some(),
        _ => false,
    };
    if !limited {
        return None;
    }
    if let Some(after) = after {
        return Some(after);
    }
    if exhausted
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())
    {
        let secs = u64::try_from(reset - Utc::now().timestamp())
            .unwrap_or(0)
            .max(1);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    Some(SECONDARY_LIMIT_WAIT)
}

/// GitHub's error `message` and its `errors` (`Validation Failed: Issue.title missing_field`),
/// or the start of the body.
fn api_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let s = super::snippet(body);
        return if s.is_empty() { "(no body)".into() } else { s };
    };
    let mut msg = v["message"].as_str().unwrap_or("(no message)").to_owned();
    let details: Vec<String> = v["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => match other["message"].as_str() {
                        Some(m) => m.to_owned(),
                        None => format!(
                            "{}.{} {}",
                            other["resource"].as_str().unwrap_or("?"),
                            other["field"].as_str().unwrap_or("?"),
                            other["code"].as_str().unwrap_or("invalid")
                        ),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        msg.push_str(": ");
        msg.push_str(&details.join("; "));
    }
    super::snippet(msg.as_bytes())
}

/// Text from the payload, safe inside Markdown: no HTML (so no fake markers), no mentions, no
/// formatting, one line.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A zero-width space after `@` keeps GitHub from notifying whoever it names.
            '@' => out.push_str("@\u{200B}"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `aims: <summary>`, within GitHub's title limit.
fn title(summary: &str) -> String {
    let t: String = format!("aims: {summary}")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    t.chars().take(MAX_TITLE_CHARS).collect()
}

/// Labels within GitHub's length limit, each once, in order.
fn dedup_labels(labels: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        let l: String = l.chars().take(MAX_LABEL_CHARS).collect();
        if !l.trim().is_empty() && !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// GitHub logins from `owners` (`@alice` → `alice`); teams (`@org/team`) and anything else
/// that is not a login are left out.
fn assignees(owners: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in owners {
        let login = o.trim().trim_start_matches('@');
        let valid = !login.is_empty()
            && login.len() <= 39
            && login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid && !out.iter().any(|x| x.eq_ignore_ascii_case(login)) {
            out.push(login.to_owned());
        }
    }
    out.truncate(MAX_ASSIGNEES);
    out
}

/// The body of a finding's issue.
/// An owner as CODEOWNERS writes one (`@user`, `@org/team`, an e-mail address) and nothing
/// else, so it can go into Markdown as is (GitHub then notifies them).
fn is_owner_handle(o: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@');
    !o.is_empty()
        && o.len() <= 100
        && o.chars().all(plain)
        && (o.starts_with('@') || o.contains('@'))
}

fn finding_body(n: &Notification, f: &FindingPayload, marker: &str) -> String {
    let controls = if f.controls.is_empty() {
        String::new()
    } else {
        format!(", controls {}", md(&f.controls.join(", ")))
    };
    let mut b = format!(
        "{marker}\n**Finding `{}`** on system **{}**{controls}, since {}.\n\n> {}\n\n[Dashboard]({})\n",
        f.kind.replace('`', "'"),
        md(&f.system),
        md(&f.since),
        md(&f.message),
        f.links.dashboard,
    );
    if !f.evidence.is_empty() {
        b.push_str("\n| Evidence record | Inclusion proof |\n|---|---|\n");
        for (i, id) in f.evidence.iter().enumerate().take(MAX_EVIDENCE_ROWS) {
            let ev = f.links.evidence.get(i).map(String::as_str).unwrap_or("");
            let proof = f.links.proofs.get(i).map(String::as_str).unwrap_or("");
            b.push_str(&format!("| [{}]({ev}) | [proof]({proof}) |\n", md(id)));
        }
        if f.evidence.len() > MAX_EVIDENCE_ROWS {
            b.push_str(&format!(
                "\nand {} more records.\n",
                f.evidence.len() - MAX_EVIDENCE_ROWS
            ));
        }
    }
    let owners: Vec<&str> = f
        .owners
        .iter()
        .map(String::as_str)
        .filter(|o| is_owner_handle(o))
        .collect();
    if !owners.is_empty() {
        b.push_str(&format!("\nOwners (CODEOWNERS): {}\n", owners.join(" ")));
    }
    if n.event != EventType::FindingOpened {
        b.push('\n');
        b.push_str(&event_note(n, f));
        b.push('\n');
    }
    b.push_str(
        "\n<sub>Opened by aims-server: it comments here when the finding changes and closes \
         this issue when the finding resolves.</sub>\n",
    );
    b.push_str(&delivery_marker(&n.delivery));
    b
}

/// What an event says about a finding, for a comment or a new issue's body.
fn event_note(n: &Notification, f: &FindingPayload) -> String {
    match n.event {
        EventType::FindingResolved => format!("**Resolved**: {}", md(&f.message)),
        EventType::FindingAcknowledged => {
            let field = |k: &str| {
                f.acknowledged
                    .as_ref()
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map(md)
            };
            let by = field("by").unwrap_or_else(|| "an admin".into());
            let until = field("expires_at").unwrap_or_else(|| "further notice".into());
            let reason = field("reason").unwrap_or_default();
            format!("**Acknowledged** by {by} until {until}: {reason}")
        }
        EventType::EvidenceExpiring => format!(
            "**Evidence expiring**: the freshness window closes at {}. {}",
            f.expires_at
                .as_deref()
                .map(md)
                .unwrap_or_else(|| "soon".into()),
            md(&f.message)
        ),
        EventType::FindingOpened => format!(
            "**Reported again** (since {}): {}",
            md(&f.since),
            md(&f.message)
        ),
        EventType::SourceSilent | EventType::Test => md(&f.message),
    }
}

/// A comment on a finding's issue.
fn finding_comment(n: &Notification, f: &FindingPayload) -> String {
    format!(
        "{}\n\n[Dashboard]({})\n{}",
        event_note(n, f),
        f.links.dashboard,
        delivery_marker(&n.delivery)
    )
}

/// The body of a silent source's issue.
fn source_body(n: &Notification, s: &SourcePayload, marker: &str) -> String {
    let system = s
        .system
        .as_deref()
        .map(|x| format!(" (system **{}**)", md(x)))
        .unwrap_or_default();
    let seen = s
        .last_seen
        .as_deref()
        .map(|x| format!(" Last seen {}.", md(x)))
        .unwrap_or_default();
    format!(
        "{marker}\n**Source `{}/{}`**{system} silent since {}.{seen}\n\n> {}\n\n[Sources]({})\n\n\
         <sub>Opened by aims-server.</sub>\n{}",
        s.agent.replace('`', "'"),
        s.source.replace('`', "'"),
        md(&s.silent_since),
        md(&s.message),
        s.links.dashboard,
        delivery_marker(&n.delivery)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn markdown_is_neutralised() {
        assert_eq!(
            md("<!-- x --> @bob *b*"),
            "&lt;!-- x --&gt; @\u{200B}bob \\*b\\*"
        );
        assert_eq!(md("a\nb"), "a b");
    }

    #[test]
    fn assignees_are_logins() {
        let owners = ["@alice", "bob", "@acme/ml-team", "Alice", "", "x y"].map(String::from);
        assert_eq!(assignees(&owners), ["alice", "bob"]);
    }

    #[test]
    fn labels_are_bounded_and_unique() {
        let long = "x".repeat(80);
        let l = dedup_labels(vec!["aims".into(), "aims".into(), long, " ".into()]);
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].len(), 50);
    }

    #[test]
    fn api_messages() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"},{"message":"x is bad"},"plain"],"documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(
            api_message(body),
            "Validation Failed: Issue.title missing_field; x is bad; plain"
        );
        assert_eq!(api_message(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(api_message(b""), "(no body)");
    }

    #[test]
    fn rate_limits() {
        let forbidden = StatusCode::FORBIDDEN;
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(forbidden, &h, "Resource not accessible"),
            None
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (Utc::now().timestamp() + 120).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let wait = rate_limit_wait(forbidden, &h, "API rate limit exceeded").unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        let secondary = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(
                forbidden,
                &secondary,
                "You have exceeded a secondary rate limit"
            ),
            Some(SECONDARY_LIMIT_WAIT)
        );
        let mut ra = HeaderMap::new();
        ra.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &ra, ""),
            Some(Duration::from_secs(7))
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &h, ""), None);
    }
}
