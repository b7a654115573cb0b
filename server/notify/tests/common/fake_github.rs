//! A stateful fake of GitHub's issues API over real HTTP on 127.0.0.1:0, in the style of the
//! GitHub collector's testkit: every answer is built from a recorded response in
//! `tests/fixtures/` (issue, label, user, comment, search result, 401, 404, 403 rate limit,
//! 422 validation error) with GitHub's real shapes and rate-limit headers. It serves
//! `acme/fraud` at the root and under `/api/v3` (GitHub Enterprise), keeps issues and
//! comments in memory, logs every request, and can be told to rate-limit, to fail the next
//! requests, to let search lag behind (as GitHub's index does) or to redirect.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

pub const OWNER: &str = "acme";
pub const REPO: &str = "fraud";
pub const TOKEN: &str = "ghp_n0t4r34lt0k3nbutl0ng3n0ugh0000000000";
const R: &str = "/repos/acme/fraud";

/// An issue as the fake keeps it.
#[derive(Clone, Debug, Default)]
pub struct IssueRec {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub comments: Vec<String>,
}

/// One request answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: Method,
    pub path_and_query: String,
    pub status: u16,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct GhState {
    issues: Vec<IssueRec>,
    log: Vec<Logged>,
    /// Answer 403 (primary rate limit exhausted) until this epoch second.
    limited_until: Option<i64>,
    /// Search finds nothing (the index has not caught up).
    search_lag: bool,
    /// Logins that can be assigned.
    users: Vec<String>,
    /// Answers for the next requests, before any routing.
    fail_next: VecDeque<(u16, Value)>,
    /// Answer every request with a 301 to this URL.
    redirect_to: Option<String>,
}

/// The running fake (it stops with the test's runtime).
pub struct FakeGithub {
    /// `http://127.0.0.1:PORT`: the `api_url` of a `github` sink.
    pub url: String,
    state: Arc<Mutex<GhState>>,
}

/// A recorded GitHub response body. Embedded (`include_str!` is relative to this file), so the
/// end-to-end suite of the workspace (tests/tests/notify.rs) can use this fake too.
pub fn fixture(name: &str) -> Value {
    let text = match name {
        "bad_credentials.json" => include_str!("../fixtures/bad_credentials.json"),
        "comment.json" => include_str!("../fixtures/comment.json"),
        "issue.json" => include_str!("../fixtures/issue.json"),
        "label.json" => include_str!("../fixtures/label.json"),
        "not_found.json" => include_str!("../fixtures/not_found.json"),
        "rate_limited.json" => include_str!("../fixtures/rate_limited.json"),
        "repo.json" => include_str!("../fixtures/repo.json"),
        "search_issues.json" => include_str!("../fixtures/search_issues.json"),
        "user.json" => include_str!("../fixtures/user.json"),
        "validation_failed.json" => include_str!("../fixtures/validation_failed.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn epoch_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl FakeGithub {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(GhState {
            users: vec!["alice".into(), "bob".into()],
            ..GhState::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, state }
    }

    fn lock(&self) -> MutexGuard<'_, GhState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn issues(&self) -> Vec<IssueRec> {
        self.lock().issues.clone()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    pub fn rate_limit_until(&self, reset: i64) {
        self.lock().limited_until = Some(reset);
    }

    pub fn set_search_lag(&self, lag: bool) {
        self.lock().search_lag = lag;
    }

    pub fn fail_next(&self, status: u16, body: Value) {
        self.lock().fail_next.push_back((status, body));
    }

    pub fn redirect_to(&self, url: &str) {
        self.lock().redirect_to = Some(url.to_owned());
    }

    /// The YAML of a `github` sink pointing here.
    pub fn sink_yaml(&self, extra: &str) -> String {
        format!(
            "- type: github\n  repo: {OWNER}/{REPO}\n  token: {TOKEN}\n  api_url: {}\n{extra}",
            self.url
        )
    }
}

fn user(login: &str) -> Value {
    let mut u = fixture("user.json");
    u["login"] = json!(login);
    u["url"] = json!(format!("https://api.github.com/users/{login}"));
    u["html_url"] = json!(format!("https://github.com/{login}"));
    u
}

fn render(issue: &IssueRec) -> Value {
    let n = issue.number;
    let mut v = fixture("issue.json");
    let api = format!("https://api.github.com{R}/issues/{n}");
    v["url"] = json!(api);
    v["labels_url"] = json!(format!("{api}/labels{{/name}}"));
    v["comments_url"] = json!(format!("{api}/comments"));
    v["events_url"] = json!(format!("{api}/events"));
    v["timeline_url"] = json!(format!("{api}/timeline"));
    v["html_url"] = json!(format!("https://github.com/acme/fraud/issues/{n}"));
    v["id"] = json!(2_000_000 + n);
    v["number"] = json!(n);
    v["title"] = json!(issue.title);
    v["body"] = json!(issue.body);
    v["labels"] = Value::Array(
        issue
            .labels
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut l = fixture("label.json");
                l["id"] = json!(208_045_946 + i as u64);
                l["name"] = json!(name);
                l["url"] = json!(format!("https://api.github.com{R}/labels/{name}"));
                l
            })
            .collect(),
    );
    v["assignees"] = Value::Array(issue.assignees.iter().map(|a| user(a)).collect());
    v["assignee"] = issue.assignees.first().map_or(Value::Null, |a| user(a));
    v["state"] = json!(issue.state);
    v["state_reason"] = json!(issue.state_reason);
    v["comments"] = json!(issue.comments.len());
    if issue.state == "closed" {
        v["closed_at"] = json!("2026-11-20T11:00:00Z");
    }
    v
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn respond(status: u16, remaining: u32, reset: i64, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json; charset=utf-8")
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", remaining.to_string())
        .header("x-ratelimit-reset", reset.to_string())
        .header("x-ratelimit-used", (5000 - remaining).to_string())
        .header("x-ratelimit-resource", "core")
        .header("x-github-api-version-selected", "2022-11-28")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn handle(
    State(state): State<Arc<Mutex<GhState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path_and_query = uri
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let (status, resp) = route(&mut s, &method, &uri, authorization.as_deref(), &body);
    s.log.push(Logged {
        method,
        path_and_query,
        status,
        authorization,
    });
    resp
}

fn route(
    s: &mut GhState,
    method: &Method,
    uri: &Uri,
    authorization: Option<&str>,
    body: &[u8],
) -> (u16, Response) {
    let now = epoch_secs();
    let reset = now + 3600;
    let answer = |status: u16, v: &Value| (status, respond(status, 4990, reset, v));
    if let Some(to) = &s.redirect_to {
        let r = Response::builder()
            .status(301)
            .header("location", format!("{to}{}", uri.path()))
            .body(Body::empty())
            .unwrap();
        return (301, r);
    }
    if authorization != Some(format!("Bearer {TOKEN}").as_str()) {
        return answer(401, &fixture("bad_credentials.json"));
    }
    if let Some(until) = s.limited_until {
        if now < until {
            return (403, respond(403, 0, until, &fixture("rate_limited.json")));
        }
        s.limited_until = None;
    }
    if let Some((status, v)) = s.fail_next.pop_front() {
        return answer(status, &v);
    }
    let path = uri.path().strip_prefix("/api/v3").unwrap_or(uri.path());
    let q = query(uri);
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let tail: Vec<&str> = path
        .strip_prefix(R)
        .map(|t| t.split('/').filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    match (method.as_str(), path) {
        ("GET", R) => return answer(200, &fixture("repo.json")),
        ("GET", "/search/issues") => {
            let q = param(&q, "q").unwrap_or("");
            let phrase = q.split('"').nth(1).unwrap_or("\u{0}");
            let items: Vec<Value> = if s.search_lag || !q.contains("repo:acme/fraud") {
                Vec::new()
            } else {
                s.issues
                    .iter()
                    .filter(|i| i.body.contains(phrase))
                    .map(|i| {
                        let mut v = render(i);
                        v["score"] = json!(1.0);
                        v
                    })
                    .collect()
            };
            let mut v = fixture("search_issues.json");
            v["total_count"] = json!(items.len());
            v["items"] = Value::Array(items);
            return answer(200, &v);
        }
        _ => {}
    }
    if !path.starts_with(R) {
        return answer(404, &fixture("not_found.json"));
    }
    match (method.as_str(), tail.as_slice()) {
        ("GET", ["issues"]) => {
            let labels: Vec<&str> = param(&q, "labels")
                .map(|l| l.split(',').collect())
                .unwrap_or_default();
            let state = param(&q, "state").unwrap_or("open");
            let per_page: usize = param(&q, "per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30);
            let mut list: Vec<&IssueRec> = s
                .issues
                .iter()
                .filter(|i| labels.iter().all(|l| i.labels.iter().any(|x| x == l)))
                .filter(|i| state == "all" || i.state == state)
                .collect();
            list.sort_by_key(|i| std::cmp::Reverse(i.number));
            let items: Vec<Value> = list.into_iter().take(per_page).map(render).collect();
            answer(200, &Value::Array(items))
        }
        ("POST", ["issues"]) => {
            let Some(title) = json_body["title"].as_str().filter(|t| !t.is_empty()) else {
                let mut v = fixture("validation_failed.json");
                v["errors"] =
                    json!([{"resource": "Issue", "field": "title", "code": "missing_field"}]);
                return answer(422, &v);
            };
            let assignees: Vec<String> = json_body["assignees"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(bad) = assignees.iter().find(|a| !s.users.contains(a)) {
                let mut v = fixture("validation_failed.json");
                v["errors"][0]["value"] = json!(bad);
                return answer(422, &v);
            }
            let issue = IssueRec {
                number: s.issues.len() as u64 + 1,
                title: title.to_owned(),
                body: json_body["body"].as_str().unwrap_or("").to_owned(),
                labels: json_body["labels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                assignees,
                state: "open".into(),
                ..IssueRec::default()
            };
            let v = render(&issue);
            s.issues.push(issue);
            answer(201, &v)
        }
        ("POST", ["issues", n, "comments"]) => {
            let Some(issue) = find(s, n) else {
                return answer(404, &fixture("not_found.json"));
            };
            let text = json_body["body"].as_str().unwrap_or("").to_owned();
            issue.comments.push(text.clone());
            let number = issue.number;
            let id = issue.comments.len() as u64;
            let mut v = fixture("comment.json");
            v["id"] = json!(id);
            v["body"] = json!(text);
            v["html_url"] = json!(format!(
                "https://github.com/acme/fraud/issues/{number}#issuecomment-{id}"
            ));
            v["issue_url"] = json!(format!("https://api.github.com{R}/issues/{number}"));
            answer(201, &v)
        }
        ("PATCH", ["issues", n]) => {
            let Some(issue) = find(s, n) else {
                return answer(404, &fixture("not_found.json"));
            };
            if let Some(state) = json_body["state"].as_str() {
                issue.state = state.to_owned();
                issue.state_reason = match state {
                    "closed" => Some(
                        json_body["state_reason"]
                            .as_str()
                            .unwrap_or("completed")
                            .to_owned(),
                    ),
                    _ => Some("reopened".to_owned()),
                };
            }
            let v = render(issue);
            answer(200, &v)
        }
        _ => answer(404, &fixture("not_found.json")),
    }
}

fn find<'a>(s: &'a mut GhState, n: &str) -> Option<&'a mut IssueRec> {
    let n: u64 = n.parse().ok()?;
    s.issues.iter_mut().find(|i| i.number == n)
}
