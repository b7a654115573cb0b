//! A recorded-response GitHub for tests (feature `testkit`): JSON fixtures with the REST API's
//! real shapes (`tests/fixtures/` of this crate) served over real HTTP on 127.0.0.1:0, routed
//! by path, with `Link` pagination (`?page=N`), ETags and `304 Not Modified` on
//! `If-None-Match`, the blobs API in both media types, and a switch that answers `403` with
//! `x-ratelimit-remaining: 0` until a reset time. Every request is logged (path with query,
//! status, whether it was authenticated) so tests can count what the collector asked for.
//!
//! Used by this crate's tests and by the end-to-end suite (`tests/tests/sources.rs`), which points
//! a real `aims-agent` at [`FakeGithub::url`] through the source's `api_url`. [`FakeGithub::start`]
//! spawns the server on the caller's tokio runtime.

// A test helper: failing loudly is its job, and it only builds for tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Owner of the served repository.
pub const OWNER: &str = "acme";
/// Name of the served repository.
pub const REPO: &str = "fraud";
/// The commit `main` points to in the fixtures.
pub const COMMIT: &str = "d7c60d99a308ed6b8bb189fd2afe3054769a9df7";
const R: &str = "/repos/acme/fraud";

/// A canned response.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
}

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub path: String,
    pub path_and_query: String,
    pub status: u16,
    pub authorization: Option<String>,
}

/// The routes, the request log and the rate-limit switch.
#[derive(Default)]
pub struct ServerState {
    pub base: String,
    /// `path` for page 1, `path?page=N` for later pages.
    pub routes: HashMap<String, Route>,
    pub log: Vec<Logged>,
    /// Answer 403 (primary rate limit exhausted) until this epoch second.
    pub limited_until: Option<i64>,
}

/// The running server (it stops with the tokio runtime that started it).
pub struct FakeGithub {
    /// `http://127.0.0.1:PORT`: the `api_url` of a `github` source.
    pub url: String,
    pub state: Arc<Mutex<ServerState>>,
}

/// Why the recorded responses could not be served.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("reading fixture {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fixture {path} is not JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("fixture {name}: {what}")]
    Shape { name: String, what: &'static str },
    #[error("binding 127.0.0.1:0: {0}")]
    Bind(std::io::Error),
}

/// The recorded responses: `tests/fixtures/` of this crate.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Result<Vec<u8>, TestkitError> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).map_err(|source| TestkitError::Read { path, source })
}

/// A fixture parsed as JSON.
pub fn fixture_json(name: &str) -> Result<Value, TestkitError> {
    serde_json::from_slice(&fixture(name)?).map_err(|source| TestkitError::Json {
        path: fixtures_dir().join(name),
        source,
    })
}

/// `fixture_json(name)` as an array of objects.
fn fixture_items(name: &str) -> Result<Vec<Value>, TestkitError> {
    match fixture_json(name)? {
        Value::Array(items) => Ok(items),
        _ => Err(TestkitError::Shape {
            name: name.to_owned(),
            what: "not a JSON array",
        }),
    }
}

/// `item[key]` as a number.
fn number(name: &str, item: &Value, key: &str) -> Result<u64, TestkitError> {
    item[key].as_u64().ok_or_else(|| TestkitError::Shape {
        name: name.to_owned(),
        what: "an item without its numeric id",
    })
}

fn epoch_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn json_route(v: &Value) -> Route {
    Route {
        status: 200,
        body: format!("{v:#}").into_bytes(),
        content_type: "application/json; charset=utf-8".into(),
    }
}

impl FakeGithub {
    /// Starts the server with the standard fixtures of `acme/fraud`.
    pub async fn start() -> Result<Self, TestkitError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(TestkitError::Bind)?;
        let addr: SocketAddr = listener.local_addr().map_err(TestkitError::Bind)?;
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(ServerState {
            base: url.clone(),
            ..ServerState::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake GitHub stopped serving");
            }
        });
        let gh = Self { url, state };
        gh.load_standard()?;
        Ok(gh)
    }

    /// The shared state; a test that panicked while holding it left nothing half-written that
    /// matters to the next request, so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn load_standard(&self) -> Result<(), TestkitError> {
        self.set_json(R, &fixture_json("repo.json")?);
        self.set(
            &format!("{R}/commits/main"),
            Route {
                status: 200,
                body: fixture("commit_main.sha")?,
                content_type: "application/vnd.github.sha; charset=utf-8".into(),
            },
        );
        self.set_json(
            &format!("{R}/git/trees/{COMMIT}"),
            &fixture_json("tree_recursive.json")?,
        );
        let blobs = fixtures_dir().join("blobs");
        let read_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| TestkitError::Read { path, source }
        };
        for entry in std::fs::read_dir(&blobs).map_err(read_err(&blobs))? {
            let entry = entry.map_err(read_err(&blobs))?;
            let sha = entry.file_name().to_string_lossy().into_owned();
            self.set_blob(&sha, &fixture(&format!("blobs/{sha}"))?);
        }
        for (page, name) in [(1, "deployments_page1.json"), (2, "deployments_page2.json")] {
            let items = fixture_items(name)?;
            for d in &items {
                let id = number(name, d, "id")?;
                self.set_json(&format!("{R}/deployments/{id}"), d);
                let statuses = format!("deployment_statuses_{id}.json");
                self.set_json(
                    &format!("{R}/deployments/{id}/statuses"),
                    &fixture_json(&statuses)?,
                );
            }
            self.set_json(
                &paged(&format!("{R}/deployments"), page),
                &Value::Array(items),
            );
        }
        for run in [5432100020u64, 5432100010] {
            self.set_json(
                &format!("{R}/actions/runs/{run}/approvals"),
                &fixture_json(&format!("run_approvals_{run}.json"))?,
            );
        }
        for (page, name) in [(1, "pulls_page1.json"), (2, "pulls_page2.json")] {
            let items = fixture_items(name)?;
            for p in &items {
                let n = number(name, p, "number")?;
                self.set_json(&format!("{R}/pulls/{n}"), p);
            }
            self.set_json(&paged(&format!("{R}/pulls"), page), &Value::Array(items));
        }
        for n in [42, 40] {
            self.set_json(
                &format!("{R}/pulls/{n}/reviews"),
                &fixture_json(&format!("pull_reviews_{n}.json"))?,
            );
        }
        self.set_json(
            &format!("{R}/branches/main/protection"),
            &fixture_json("branch_protection_main.json")?,
        );
        Ok(())
    }

    /// Serves `route` at `key` (a path, or `path?page=N`).
    pub fn set(&self, key: &str, route: Route) {
        self.state().routes.insert(key.to_owned(), route);
    }

    /// Serves a JSON body at `key`.
    pub fn set_json(&self, key: &str, v: &Value) {
        self.set(key, json_route(v));
    }

    /// Serves a JSON body with `status` at `key`.
    pub fn set_status(&self, key: &str, status: u16, v: &Value) {
        let mut r = json_route(v);
        r.status = status;
        self.set(key, r);
    }

    /// Stops serving `key` (it answers 404).
    pub fn remove(&self, key: &str) {
        self.state().routes.remove(key);
    }

    /// Serves a blob of the repository.
    pub fn set_blob(&self, sha: &str, bytes: &[u8]) {
        self.set(
            &format!("{R}/git/blobs/{sha}"),
            Route {
                status: 200,
                body: bytes.to_vec(),
                content_type: "application/vnd.github.raw".into(),
            },
        );
    }

    /// A served blob.
    pub fn blob(&self, sha: &str) -> Option<Vec<u8>> {
        let s = self.state();
        s.routes
            .get(&format!("{R}/git/blobs/{sha}"))
            .map(|r| r.body.clone())
    }

    /// The recursive tree served for `commit`.
    pub fn tree(&self, commit: &str) -> Option<Value> {
        let s = self.state();
        let route = s.routes.get(&format!("{R}/git/trees/{commit}"))?;
        serde_json::from_slice(&route.body).ok()
    }

    /// The commit `main` points to now.
    pub fn current_commit(&self) -> String {
        let s = self.state();
        s.routes
            .get(&format!("{R}/commits/main"))
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default()
    }

    /// Publishes `tree` as a new commit of `main`.
    pub fn push_tree(&self, tree: &Value) -> String {
        let commit = hex::encode(Sha256::digest(tree.to_string()))[..40].to_owned();
        self.set_json(&format!("{R}/git/trees/{commit}"), tree);
        self.set(
            &format!("{R}/commits/main"),
            Route {
                status: 200,
                body: commit.clone().into_bytes(),
                content_type: "application/vnd.github.sha; charset=utf-8".into(),
            },
        );
        commit
    }

    /// Answers every request with a rate-limit 403 until `reset` (epoch seconds).
    pub fn rate_limit_until(&self, reset: i64) {
        self.state().limited_until = Some(reset);
    }

    /// Every request answered so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// How many logged requests match `pred`.
    pub fn count(&self, pred: impl Fn(&Logged) -> bool) -> usize {
        self.log().iter().filter(|l| pred(l)).count()
    }
}

/// The route key of page `page` of `path`.
pub fn paged(path: &str, page: u32) -> String {
    if page <= 1 {
        path.to_owned()
    } else {
        format!("{path}?page={page}")
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Ends a response; a header value the builder refuses becomes a 500 naming it (the fake
/// never panics inside a test's server).
trait Finish {
    fn finish(self, body: impl Into<Body>) -> Response;
}

impl Finish for axum::http::response::Builder {
    fn finish(self, body: impl Into<Body>) -> Response {
        self.body(body.into()).unwrap_or_else(|e| {
            let mut r = Response::new(Body::from(format!("testkit: invalid response: {e}")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

fn rate_headers(
    b: axum::http::response::Builder,
    remaining: u32,
    reset: i64,
) -> axum::http::response::Builder {
    b.header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", remaining.to_string())
        .header("x-ratelimit-reset", reset.to_string())
        .header("x-ratelimit-used", (5000 - remaining).to_string())
        .header("x-ratelimit-resource", "core")
        .header("x-github-api-version-selected", "2022-11-28")
}

async fn handle(
    State(state): State<Arc<Mutex<ServerState>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let pq = uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.to_string());
    let query = query_pairs(&uri);
    let page: u32 = query
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let now = epoch_secs();
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let log = |status: u16, s: &mut ServerState| {
        s.log.push(Logged {
            path: path.clone(),
            path_and_query: pq.clone(),
            status,
            authorization: authorization.clone(),
        });
    };

    if let Some(reset) = s.limited_until {
        if now < reset {
            log(403, &mut s);
            let body = json!({
                "message": "API rate limit exceeded for installation ID 4242.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
            });
            return rate_headers(Response::builder().status(403), 0, reset)
                .header("content-type", "application/json; charset=utf-8")
                .finish(body.to_string());
        }
        s.limited_until = None;
    }
    let reset = now + 3600;

    let key = paged(&path, page);
    let Some(route) = s.routes.get(&key).cloned() else {
        log(404, &mut s);
        let body = json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"});
        return rate_headers(Response::builder().status(404), 4999, reset)
            .header("content-type", "application/json; charset=utf-8")
            .finish(body.to_string());
    };
    let (body, content_type) = if path.contains("/git/blobs/") && !accept.contains("raw") {
        let sha = path.rsplit('/').next().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&route.body);
        let wrapped: Vec<String> = b64
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let v = json!({
            "sha": sha,
            "node_id": format!("B_kwDOB1vNFdoAKD{sha}"),
            "size": route.body.len(),
            "url": format!("https://api.github.com{path}"),
            "content": wrapped.join("\n") + "\n",
            "encoding": "base64",
        });
        (
            v.to_string().into_bytes(),
            "application/json; charset=utf-8".to_owned(),
        )
    } else {
        (route.body.clone(), route.content_type.clone())
    };
    if route.status != 200 {
        log(route.status, &mut s);
        return rate_headers(Response::builder().status(route.status), 4999, reset)
            .header("content-type", content_type)
            .finish(body);
    }
    let etag = format!("W/\"{}\"", hex::encode(Sha256::digest(&body)));
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        log(304, &mut s);
        return rate_headers(
            Response::builder().status(StatusCode::NOT_MODIFIED),
            4999,
            reset,
        )
        .header("etag", etag)
        .finish(Body::empty());
    }
    let mut b = rate_headers(Response::builder().status(200), 4998, reset)
        .header("content-type", content_type)
        .header("etag", etag)
        .header("cache-control", "private, max-age=60, s-maxage=60");
    if s.routes.contains_key(&paged(&path, page + 1)) {
        let mut q: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("page={}", page + 1));
        let mut last_page = page + 1;
        while s.routes.contains_key(&paged(&path, last_page + 1)) {
            last_page += 1;
        }
        let mut ql: Vec<String> = q[..q.len() - 1].to_vec();
        ql.push(format!("page={last_page}"));
        let link = format!(
            "<{}{path}?{}>; rel=\"next\", <{}{path}?{}>; rel=\"last\"",
            s.base,
            q.join("&"),
            s.base,
            ql.join("&")
        );
        b = b.header("link", link);
    }
    log(200, &mut s);
    b.finish(body)
}
