//! The HTTP layer: octocrab's raw `GET` plus what the typed API does not give us — conditional
//! requests, `Link` pagination, rate-limit waits and streamed bodies.
//!
//! **Conditional requests.** Every JSON `GET` made by a listing goes through
//! [`Api::get_cached`]: the ETag and body of the last `200` per (Accept, path) are remembered, the
//! next request sends `If-None-Match`, and a `304 Not Modified` returns the remembered body (and
//! `Link`). GitHub does not count `304`s against the rate limit, so an unchanged repository costs
//! a handful of free requests per poll. The remembered responses can be persisted to a file (see
//! [`Api::save`]) so a restarted agent keeps its ETags; entries not used by the last listing are
//! dropped when saving, which bounds the file to one listing's worth of responses.
//!
//! **Rate limits.** A `403`/`429` carrying `retry-after` waits that many seconds; one carrying
//! `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset` (epoch seconds). A wait longer than
//! the configured maximum (default [`DEFAULT_MAX_RATE_LIMIT_WAIT`], one minute) is not
//! attempted: the request fails with [`GithubError::RateLimited`] naming the reset time (a
//! transient error, so the next poll tries again). At most [`MAX_RATE_LIMIT_WAITS`] waits per request, and every wait is at least one
//! second, so a misbehaving server can never make this loop hot. octocrab's own retry layer is
//! switched off so waits are not doubled. Other `403`s (permissions) are returned as errors.
//!
//! **Bodies.** JSON bodies are read whole but bounded ([`MAX_JSON_BODY`], more is an error);
//! artifact bodies are streamed ([`Api::stream`]), never buffered.
//!
//! **Time.** Every request has a total limit ([`REQUEST_TIMEOUT`], response and JSON body) on top
//! of octocrab's connect and per-read timeouts; a streamed artifact must finish within
//! [`DOWNLOAD_TIMEOUT`].
//!
//! **Redirects** (issue 18, A1). octocrab is built without its redirect layer (which re-sent the
//! token after a cross-host hop followed by a same-host one). This layer follows a redirect only
//! when its `Location` is on the API's origin and under its base path (a renamed repository's
//! `301`), at most [`MAX_REDIRECTS`] times, re-issued through octocrab so the token is attached
//! exactly as for any API request; any other redirect fails the request
//! ([`GithubError::Redirect`], naming the `Location`) and nothing is sent to the other host.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aims_collect::ArtifactReader;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::header::{ACCEPT, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, LINK};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyDataStream, BodyExt, Limited};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::GithubError;

/// `Accept` for JSON resources.
pub const ACCEPT_JSON: &str = "application/vnd.github+json";
/// `Accept` that makes the blobs API answer with the raw bytes.
pub const ACCEPT_RAW: &str = "application/vnd.github.raw+json";
/// `Accept` that makes the commits API answer with just the commit id.
pub const ACCEPT_SHA: &str = "application/vnd.github.sha";
/// The REST API version requested.
pub const API_VERSION: &str = "2022-11-28";
/// Largest JSON body read (a recursive tree is at most 100,000 entries, ~7 MB, by GitHub's own
/// limit).
pub const MAX_JSON_BODY: usize = 32 * 1024 * 1024;
/// Rate-limit waits per request before giving up.
pub const MAX_RATE_LIMIT_WAITS: u32 = 3;
/// Default cap on one rate-limit wait (`retry-after` or the reset time).
pub const DEFAULT_MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Total time of one request: the response, and for JSON the whole body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Total time of one streamed artifact download.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Same-origin redirects followed per request.
pub const MAX_REDIRECTS: u32 = 5;
/// Wait for a `429` that names neither `retry-after` nor a reset (GitHub's advice: a minute).
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Version of the on-disk cache file.
const CACHE_FILE_VERSION: u32 = 1;

type Body = BoxBody<Bytes, octocrab::Error>;

/// A remembered response.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CachedResponse {
    etag: String,
    body: String,
    next: Option<String>,
}

#[derive(Debug, Default)]
struct CacheState {
    entries: HashMap<String, CachedResponse>,
    /// Keys used since the last save (what the file keeps).
    touched: HashSet<String>,
    /// Whether the file was read (lazily, on first use).
    loaded: bool,
}

/// The cache file: responses plus whatever the collector asks to keep with them.
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: HashMap<String, CachedResponse>,
    #[serde(default)]
    state: serde_json::Value,
}

/// One response body with its `next` page, if any.
#[derive(Clone, Debug)]
pub struct Page {
    /// The body (from the network or, after a `304`, from the cache).
    pub body: Bytes,
    /// The relative path of the next page (`Link: <…>; rel="next"`).
    pub next: Option<String>,
    /// Whether the body came from the cache after a `304`.
    pub not_modified: bool,
}

/// A thin client for the REST API at one base URL.
pub struct Api {
    client: octocrab::Octocrab,
    /// The API base URL without a trailing `/` (used to make `Link` URLs relative).
    base: String,
    max_wait: Duration,
    max_json_bytes: usize,
    cache: Mutex<CacheState>,
    cache_file: Option<PathBuf>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The octocrab client holds the token: never print it.
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("max_wait", &self.max_wait)
            .field("cache_file", &self.cache_file)
            .finish_non_exhaustive()
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// How long a rate-limited response asks us to wait, and a human-readable "until".
/// `None` when the response is not a rate-limit answer (e.g. a permissions `403`).
fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    now_ms: i64,
) -> Option<(Duration, String)> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let at_least_1s = |d: Duration| d.max(Duration::from_secs(1));
    if let Some(secs) = header_str(headers, "retry-after").and_then(|s| s.parse::<u64>().ok()) {
        let wait = at_least_1s(Duration::from_secs(secs));
        return Some((wait, format!("{secs} s from now (retry-after)")));
    }
    let remaining =
        header_str(headers, "x-ratelimit-remaining").and_then(|s| s.parse::<u64>().ok());
    let reset = header_str(headers, "x-ratelimit-reset").and_then(|s| s.parse::<i64>().ok());
    match (remaining, reset) {
        (Some(0), Some(reset)) => {
            let ms = reset.saturating_mul(1000).saturating_sub(now_ms).max(0);
            let wait = at_least_1s(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
            let until = chrono::DateTime::from_timestamp(reset, 0)
                .map_or_else(|| reset.to_string(), |t| t.to_rfc3339());
            Some((wait, until))
        }
        _ if status == StatusCode::TOO_MANY_REQUESTS => Some((
            SECONDARY_LIMIT_WAIT,
            "60 s from now (secondary rate limit)".into(),
        )),
        _ => None,
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = header_str(headers, LINK.as_str())?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// GitHub's `message` from an error body, or the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

impl Api {
    /// Wraps a built octocrab client whose `base_uri` is `base`.
    pub fn new(
        client: octocrab::Octocrab,
        base: &str,
        max_wait: Duration,
        cache_file: Option<PathBuf>,
    ) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            max_wait,
            max_json_bytes: MAX_JSON_BODY,
            cache: Mutex::new(CacheState::default()),
            cache_file,
        }
    }

    /// Changes the cap on one rate-limit wait.
    pub fn set_max_wait(&mut self, max_wait: Duration) {
        self.max_wait = max_wait;
    }

    /// Changes the largest JSON body read.
    pub fn set_max_json_bytes(&mut self, bytes: usize) {
        self.max_json_bytes = bytes;
    }

    /// Turns a `Link` target into a path relative to the base URL; refuses other hosts.
    fn relative(&self, link: &str) -> Result<String, GithubError> {
        if let Some(rest) = link.strip_prefix(&self.base)
            && (rest.starts_with('/') || rest.starts_with('?'))
        {
            return Ok(rest.to_owned());
        }
        // A path on the same host; `//host/…` is another host.
        if link.starts_with('/') && !link.starts_with("//") {
            return Ok(link.to_owned());
        }
        Err(GithubError::Decode {
            path: link.to_owned(),
            reason: "pagination link outside the API base URL".into(),
        })
    }

    /// One `GET`, waiting out rate limits (see the module docs).
    async fn send(
        &self,
        path: &str,
        accept: &str,
        etag: Option<&str>,
    ) -> Result<Response<Body>, GithubError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(accept).map_err(|e| self.decode(path, e))?,
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(tag) = etag
            && let Ok(v) = HeaderValue::from_str(tag)
        {
            headers.insert(IF_NONE_MATCH, v);
        }
        let mut waits = 0;
        let mut redirects = 0;
        let mut target = path.to_owned();
        loop {
            let resp = tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.client
                    ._get_with_headers(&target, Some(headers.clone())),
            )
            .await
            .map_err(|_| GithubError::Timeout {
                path: path.to_owned(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })?
            .map_err(|source| GithubError::Http {
                path: path.to_owned(),
                source,
            })?;
            let status = resp.status();
            tracing::debug!(path, status = status.as_u16(), "github request");
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default();
                match self.relative(&location) {
                    Ok(next) if redirects < MAX_REDIRECTS && !location.is_empty() => {
                        redirects += 1;
                        tracing::debug!(path, next = %next, "same-origin redirect followed");
                        target = next;
                        continue;
                    }
                    _ => {
                        return Err(GithubError::Redirect {
                            path: path.to_owned(),
                            status: status.as_u16(),
                            location: location.chars().take(300).collect(),
                        });
                    }
                }
            }
            let Some((wait, until)) = rate_limit_wait(status, resp.headers(), now_millis()) else {
                return Ok(resp);
            };
            if wait > self.max_wait || waits >= MAX_RATE_LIMIT_WAITS {
                tracing::warn!(path, until = %until, wait_secs = wait.as_secs(), "rate limited, giving up for this poll");
                return Err(GithubError::RateLimited {
                    path: path.to_owned(),
                    reset: until,
                    max_wait_secs: self.max_wait.as_secs(),
                });
            }
            waits += 1;
            tracing::warn!(path, until = %until, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "rate limited, waiting");
            drop(resp);
            tokio::time::sleep(wait).await;
        }
    }

    fn decode(&self, path: &str, e: impl std::fmt::Display) -> GithubError {
        GithubError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }

    /// Reads a whole (bounded in size and time) body.
    async fn read_body(&self, path: &str, resp: Response<Body>) -> Result<Bytes, GithubError> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            Limited::new(resp.into_body(), self.max_json_bytes).collect(),
        )
        .await
        .map_err(|_| GithubError::Timeout {
            path: path.to_owned(),
            secs: REQUEST_TIMEOUT.as_secs(),
        })?
        .map(|c| c.to_bytes())
        .map_err(|e| {
            self.decode(
                path,
                format!("reading body (at most {} bytes): {e}", self.max_json_bytes),
            )
        })
    }

    /// Turns a non-success response into an error (reading a bounded part of the body).
    async fn status_error(&self, path: &str, resp: Response<Body>) -> GithubError {
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        GithubError::Status {
            path: path.to_owned(),
            status,
            message: error_message(&body),
        }
    }

    async fn ensure_loaded(&self) {
        let Some(file) = &self.cache_file else {
            return;
        };
        if self.cache.lock().map(|c| c.loaded).unwrap_or(true) {
            return;
        }
        let read = tokio::fs::read(file).await;
        let parsed = match read {
            Ok(bytes) => match serde_json::from_slice::<CacheFile>(&bytes) {
                Ok(f) if f.version == CACHE_FILE_VERSION => Some(f),
                Ok(_) | Err(_) => {
                    tracing::warn!(file = %file.display(), "github cache file unreadable, starting empty");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "github cache file unreadable, starting empty");
                None
            }
        };
        if let Ok(mut c) = self.cache.lock()
            && !c.loaded
        {
            c.loaded = true;
            if let Some(f) = parsed {
                c.entries = f.entries;
            }
        }
    }

    /// The collector state saved with the cache (`Null` when there is none).
    pub async fn load_state(&self) -> serde_json::Value {
        let Some(file) = &self.cache_file else {
            return serde_json::Value::Null;
        };
        self.ensure_loaded().await;
        match tokio::fs::read(file).await {
            Ok(bytes) => serde_json::from_slice::<CacheFile>(&bytes)
                .map(|f| f.state)
                .unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// A `GET` answered from the cache when GitHub says `304 Not Modified`.
    pub async fn get_cached(&self, path: &str, accept: &str) -> Result<Page, GithubError> {
        self.ensure_loaded().await;
        let key = format!("{accept} {path}");
        let etag = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.entries.get(&key).map(|e| e.etag.clone()));
        let resp = self.send(path, accept, etag.as_deref()).await?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            let cached = self.cache.lock().ok().and_then(|mut c| {
                c.touched.insert(key.clone());
                c.entries.get(&key).cloned()
            });
            return match cached {
                Some(e) => Ok(Page {
                    body: Bytes::from(e.body),
                    next: e.next,
                    not_modified: true,
                }),
                None => {
                    Err(self.decode(path, "304 Not Modified for a request without a cached body"))
                }
            };
        }
        if !status.is_success() {
            return Err(self.status_error(path, resp).await);
        }
        let new_etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let next = match next_link(resp.headers()) {
            Some(l) => Some(self.relative(&l)?),
            None => None,
        };
        let body = self.read_body(path, resp).await?;
        if let Ok(mut c) = self.cache.lock() {
            match (new_etag, std::str::from_utf8(&body)) {
                (Some(etag), Ok(text)) => {
                    c.entries.insert(
                        key.clone(),
                        CachedResponse {
                            etag,
                            body: text.to_owned(),
                            next: next.clone(),
                        },
                    );
                    c.touched.insert(key);
                }
                _ => {
                    c.entries.remove(&key);
                }
            }
        }
        Ok(Page {
            body,
            next,
            not_modified: false,
        })
    }

    /// A cached JSON `GET` decoded into `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, GithubError> {
        let page = self.get_cached(path, ACCEPT_JSON).await?;
        serde_json::from_slice(&page.body).map_err(|e| self.decode(path, e))
    }

    /// Every item of a paginated JSON array, following `Link: rel="next"` for at most
    /// `max_pages` pages. Returns the items and whether the listing is complete (no page left).
    /// `key` picks the array out of an object body (e.g. `workflow_runs`); `None` for arrays.
    pub async fn get_pages(
        &self,
        first: &str,
        key: Option<&str>,
        max_pages: usize,
    ) -> Result<(Vec<serde_json::Value>, bool), GithubError> {
        let mut items = Vec::new();
        let mut next = Some(first.to_owned());
        let mut pages = 0;
        while let Some(path) = next.take() {
            if pages >= max_pages {
                tracing::debug!(first, pages, "page limit reached, listing is partial");
                return Ok((items, false));
            }
            pages += 1;
            let page = self.get_cached(&path, ACCEPT_JSON).await?;
            let mut v: serde_json::Value =
                serde_json::from_slice(&page.body).map_err(|e| self.decode(&path, e))?;
            if let Some(k) = key {
                v = v
                    .get_mut(k)
                    .map(serde_json::Value::take)
                    .unwrap_or_default();
            }
            match v {
                serde_json::Value::Array(a) => items.extend(a),
                _ => return Err(self.decode(&path, "expected a JSON array")),
            }
            next = page.next;
        }
        Ok((items, true))
    }

    /// The body of `path` as a stream (errors for any non-success status).
    pub async fn stream(&self, path: &str, accept: &str) -> Result<ArtifactReader, GithubError> {
        let resp = self.send(path, accept, None).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(path, resp).await);
        }
        let stream =
            BodyDataStream::new(resp.into_body()).map_err(|e| std::io::Error::other(e.to_string()));
        Ok(Box::new(aims_collect::DeadlineReader::new(
            tokio_util::io::StreamReader::new(stream),
            DOWNLOAD_TIMEOUT,
        )))
    }

    /// Persists the responses used since the last save, plus `state`, to the cache file
    /// (temp file, fsync, rename). Responses not used since the last save are forgotten.
    pub async fn save(&self, state: serde_json::Value) -> Result<(), GithubError> {
        let Some(file) = &self.cache_file else {
            if let Ok(mut c) = self.cache.lock() {
                let touched = std::mem::take(&mut c.touched);
                c.entries.retain(|k, _| touched.contains(k));
            }
            return Ok(());
        };
        let entries = match self.cache.lock() {
            Ok(mut c) => {
                let touched = std::mem::take(&mut c.touched);
                c.entries.retain(|k, _| touched.contains(k));
                c.entries.clone()
            }
            Err(_) => return Ok(()),
        };
        let data = serde_json::to_vec(&CacheFile {
            version: CACHE_FILE_VERSION,
            entries,
            state,
        })
        .map_err(|e| GithubError::Io {
            context: "encoding the github cache".into(),
            source: std::io::Error::other(e),
        })?;
        // 0600 in a 0700 directory, fsynced and renamed (the shared durable write).
        let path = file.clone();
        let written = tokio::task::spawn_blocking(move || aims_fsutil::write_atomic(&path, &data))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        written.map_err(|source| GithubError::Io {
            context: format!("writing {}", file.display()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_next_link() {
        let h = headers(&[(
            "link",
            "<https://api.github.com/repositories/1/deployments?page=2>; rel=\"next\", \
             <https://api.github.com/repositories/1/deployments?page=5>; rel=\"last\"",
        )]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/deployments?page=2")
        );
        let h = headers(&[("link", "<https://x/y?page=1>; rel=\"prev\"")]);
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn rate_limit_waits() {
        let now = 1_000_000_000;
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000002"),
        ]);
        let (w, until) = rate_limit_wait(StatusCode::FORBIDDEN, &h, now).unwrap();
        assert_eq!(w, Duration::from_secs(2));
        assert!(until.starts_with("1970-01-12T"), "{until}");
        // A reset in the past still waits a second: never a hot loop.
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "10")]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, now).unwrap().0,
            Duration::from_secs(1)
        );
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &h, now)
                .unwrap()
                .0,
            Duration::from_secs(7)
        );
        // A permissions 403 is not a rate limit.
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        assert!(rate_limit_wait(StatusCode::FORBIDDEN, &h, now).is_none());
        assert!(rate_limit_wait(StatusCode::NOT_FOUND, &HeaderMap::new(), now).is_none());
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now)
                .unwrap()
                .0,
            SECONDARY_LIMIT_WAIT
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"message":"Not Found","documentation_url":"x"}"#),
            "Not Found"
        );
        assert_eq!(error_message(b"oops"), "oops");
    }
}
