//! A small, tolerant client for the MLflow REST API (`/api/2.0/mlflow/…`, `/get-artifact`).
//!
//! MLflow's JSON omits empty lists and unset fields (a search without matches is `{}`), sends
//! versions as strings and times as integer milliseconds. Every struct here therefore defaults
//! every field, and numbers that are `int64` in MLflow's protobufs are accepted as JSON numbers
//! or strings. Unknown fields are ignored so newer servers keep working.
//!
//! Hostile-server rules (issue 18):
//! - **Credentials stay on the tracking server's origin.** Redirects are followed only while
//!   they stay on the origin (scheme, host, port) of the tracking URI, at most
//!   [`MAX_REDIRECTS`]; a redirect elsewhere is not followed and fails the request
//!   ([`MlflowError::Redirect`], naming the `Location`), so the token is never sent to another
//!   host.
//! - **Bounded.** Every request has a connect and a total timeout ([`ApiLimits`]); JSON bodies
//!   are read up to [`ApiLimits::max_json_bytes`] (more is an error, not a truncation);
//!   paginated calls stop with an error after [`ApiLimits::max_pages`] pages or when a page
//!   token repeats, never with a truncated result.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::MlflowError;

/// Whole-request limit (large search pages and run artifact downloads included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Connect limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JSON response read.
pub const MAX_JSON_BYTES: usize = 32 * 1024 * 1024;
/// Most pages of one paginated call (100 results each) before it fails.
pub const MAX_PAGES: usize = 1000;
/// Same-origin redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// Bounds of every call (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Total time of one request, body included.
    pub request_timeout: Duration,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Largest JSON body read.
    pub max_json_bytes: usize,
    /// Most pages of one paginated call.
    pub max_pages: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            request_timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            max_json_bytes: MAX_JSON_BYTES,
            max_pages: MAX_PAGES,
        }
    }
}
/// Bytes of an error body kept for the message.
const ERROR_BODY_BYTES: usize = 8 * 1024;
/// Characters of an error message kept.
const ERROR_MESSAGE_CHARS: usize = 300;

/// A bearer token; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token (surrounding whitespace removed).
    pub fn new(token: &str) -> Self {
        Self(token.trim().to_owned())
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// `{key, value}` as MLflow sends tags and params.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value (MLflow sends strings; numbers are accepted).
    #[serde(deserialize_with = "de_string")]
    pub value: String,
}

/// `{alias, version}` in a registered model.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AliasRef {
    /// Alias name.
    pub alias: String,
    /// The version it points to.
    #[serde(deserialize_with = "de_string")]
    pub version: String,
}

/// A registered model (`registered-models/get`, `registered-models/search`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RegisteredModel {
    /// Name.
    pub name: String,
    /// Creation time, ms.
    #[serde(deserialize_with = "de_opt_i64")]
    pub creation_timestamp: Option<i64>,
    /// Last update time, ms (MLflow does not bump it for alias changes).
    #[serde(deserialize_with = "de_opt_i64")]
    pub last_updated_timestamp: Option<i64>,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<KeyValue>,
    /// Aliases (present in `get`; also in `search` on recent servers).
    pub aliases: Vec<AliasRef>,
}

/// A model version (`model-versions/search`, `model-versions/get`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ModelVersion {
    /// Registered model name.
    pub name: String,
    /// Version number, as a string.
    #[serde(deserialize_with = "de_string")]
    pub version: String,
    /// Creation time, ms.
    #[serde(deserialize_with = "de_opt_i64")]
    pub creation_timestamp: Option<i64>,
    /// Last update time, ms. Stage transitions and description edits bump it; tag changes do not.
    #[serde(deserialize_with = "de_opt_i64")]
    pub last_updated_timestamp: Option<i64>,
    /// Legacy stage (`None`, `Staging`, `Production`, `Archived`).
    pub current_stage: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Creator.
    pub user_id: Option<String>,
    /// Model source URI (`runs:/<run>/model`, `mlflow-artifacts:/…`, `s3://…`, `models:/…`).
    pub source: Option<String>,
    /// Run that produced the model.
    pub run_id: Option<String>,
    /// Link to the run.
    pub run_link: Option<String>,
    /// `READY`, `PENDING_REGISTRATION`, `FAILED_REGISTRATION`.
    pub status: Option<String>,
    /// Status message.
    pub status_message: Option<String>,
    /// MLflow 3 logged model id.
    pub model_id: Option<String>,
    /// Tags.
    pub tags: Vec<KeyValue>,
    /// Aliases (only `model-versions/get` and the alias endpoint fill this).
    pub aliases: Vec<String>,
}

impl ModelVersion {
    /// The run id, when the version names a real one (deleted versions say `REDACTED-RUN-ID`).
    pub fn run(&self) -> Option<&str> {
        self.run_id
            .as_deref()
            .filter(|r| !r.is_empty() && !r.starts_with("REDACTED"))
    }

    /// The version number for ordering (non-numeric versions sort first).
    pub fn number(&self) -> u64 {
        self.version.parse().unwrap_or(0)
    }

    /// A version tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag(&self.tags, key)
    }
}

/// The value of `key` in a tag or param list (the last one wins, as in MLflow).
pub fn tag<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a str> {
    list.iter()
        .rev()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

/// A run (`runs/get`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Run {
    /// Run info.
    pub info: RunInfo,
    /// Metrics, params and tags.
    pub data: RunData,
}

/// `run.info`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunInfo {
    /// Run id.
    pub run_id: String,
    /// Legacy run id field.
    pub run_uuid: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Run name.
    pub run_name: Option<String>,
    /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED`, `SCHEDULED`.
    pub status: Option<String>,
    /// Start time, ms.
    #[serde(deserialize_with = "de_opt_i64")]
    pub start_time: Option<i64>,
    /// End time, ms (absent while running).
    #[serde(deserialize_with = "de_opt_i64")]
    pub end_time: Option<i64>,
    /// Artifact root of the run.
    pub artifact_uri: Option<String>,
    /// `active` or `deleted`.
    pub lifecycle_stage: Option<String>,
}

/// `run.data`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunData {
    /// Latest value of each metric.
    pub metrics: Vec<Metric>,
    /// Params.
    pub params: Vec<KeyValue>,
    /// Tags.
    pub tags: Vec<KeyValue>,
}

/// One metric (latest value).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Metric {
    /// Metric name.
    pub key: String,
    /// Value; MLflow writes NaN and infinities as strings.
    pub value: serde_json::Value,
    /// When it was logged, ms.
    #[serde(deserialize_with = "de_opt_i64")]
    pub timestamp: Option<i64>,
    /// Step.
    #[serde(deserialize_with = "de_opt_i64")]
    pub step: Option<i64>,
}

impl Metric {
    /// The value when it is a finite number.
    pub fn finite_value(&self) -> Option<f64> {
        let v = match &self.value {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }?;
        v.is_finite().then_some(v)
    }
}

/// One entry of `artifacts/list`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileInfo {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Directory?
    pub is_dir: bool,
    /// Size in bytes (files only).
    #[serde(deserialize_with = "de_opt_i64")]
    pub file_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchModels {
    registered_models: Vec<RegisteredModel>,
    next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchVersions {
    model_versions: Vec<ModelVersion>,
    next_page_token: Option<String>,
}

/// A page of a paginated call.
trait HasNextPage {
    fn next_page(&self) -> Option<&str>;
}

impl HasNextPage for SearchModels {
    fn next_page(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
}

impl HasNextPage for SearchVersions {
    fn next_page(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
}

impl HasNextPage for ListArtifacts {
    fn next_page(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GetModel {
    registered_model: Option<RegisteredModel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GetVersion {
    model_version: Option<ModelVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GetRun {
    run: Option<Run>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListArtifacts {
    files: Vec<FileInfo>,
    next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error_code: Option<String>,
    message: Option<String>,
}

/// Results per search page.
const PAGE_SIZE: &str = "100";

/// The REST client of one tracking server.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    /// The tracking URI with a trailing `/`.
    base: Url,
    token: Option<SecretToken>,
    limits: ApiLimits,
}

/// Whether `a` and `b` have the same origin (scheme, host, port).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Api {
    /// Builds the client with the default [`ApiLimits`]. `base` must be an `http(s)` URL.
    pub fn new(base: Url, token: Option<SecretToken>) -> Result<Self, MlflowError> {
        Self::with_limits(base, token, ApiLimits::default())
    }

    /// Builds the client with `limits`.
    pub fn with_limits(
        base: Url,
        token: Option<SecretToken>,
        limits: ApiLimits,
    ) -> Result<Self, MlflowError> {
        crate::install_crypto_provider();
        let origin = base.clone();
        // Follow a redirect only while it stays on the tracking server's origin: the token is
        // never handed to another host (issue 18, A1). A stopped redirect is returned as the
        // 3xx answer and turned into an error naming the Location.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS || !same_origin(attempt.url(), &origin) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(limits.request_timeout)
            .connect_timeout(limits.connect_timeout)
            .redirect(policy)
            .user_agent(concat!("aims-collect-mlflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(MlflowError::Client)?;
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(Self {
            http,
            base,
            token,
            limits,
        })
    }

    /// The same client with other limits.
    pub fn relimit(&self, limits: ApiLimits) -> Result<Self, MlflowError> {
        Self::with_limits(self.base.clone(), self.token.clone(), limits)
    }

    fn url(&self, rel: &str) -> Result<Url, MlflowError> {
        self.base.join(rel).map_err(|e| MlflowError::Encode {
            what: format!("URL {rel}"),
            reason: e.to_string(),
        })
    }

    async fn send(
        &self,
        endpoint: &str,
        rel: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, MlflowError> {
        let mut url = self.url(rel)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(&t.0);
        }
        let resp = req.send().await.map_err(|e| MlflowError::Request {
            endpoint: endpoint.to_owned(),
            source: e.without_url(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(ERROR_MESSAGE_CHARS)
                        .collect::<String>()
                })
                .unwrap_or_else(|| "(none)".into());
            return Err(MlflowError::Redirect {
                endpoint: endpoint.to_owned(),
                status: status.as_u16(),
                location,
            });
        }
        let body = read_prefix(resp, ERROR_BODY_BYTES).await;
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = parsed
            .message
            .map(|m| m.chars().take(ERROR_MESSAGE_CHARS).collect::<String>());
        tracing::debug!(endpoint, status = status.as_u16(), code = ?parsed.error_code, "MLflow error response");
        Err(MlflowError::Http {
            endpoint: endpoint.to_owned(),
            status: status.as_u16(),
            code: parsed.error_code,
            message,
        })
    }

    /// `GET /api/2.0/mlflow/<path>` decoded as `T`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, MlflowError> {
        let endpoint = format!("GET {path}");
        let mut resp = self
            .send(&endpoint, &format!("api/2.0/mlflow/{path}"), query)
            .await?;
        let limit = self.limits.max_json_bytes;
        let too_large = |endpoint: String| MlflowError::TooLarge { endpoint, limit };
        if resp.content_length().is_some_and(|l| l > limit as u64) {
            return Err(too_large(endpoint));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| MlflowError::Request {
            endpoint: endpoint.clone(),
            source: e.without_url(),
        })? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large(endpoint));
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map_err(|source| MlflowError::Decode { endpoint, source })
    }

    /// Follows `next_page_token` through every page of `path` (see the module docs for the
    /// bounds): `query` is sent with each page, `page_token` added after the first. Returns each
    /// page's decoded body.
    async fn pages<T: DeserializeOwned + HasNextPage>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, MlflowError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            if out.len() >= self.limits.max_pages {
                return Err(MlflowError::Pagination {
                    endpoint: format!("GET {path}"),
                    reason: format!("more than {} pages", self.limits.max_pages),
                });
            }
            let mut q = query.to_vec();
            if let Some(t) = &token {
                q.push(("page_token", t.as_str()));
            }
            let page: T = self.get_json(path, &q).await?;
            let next = page
                .next_page()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            out.push(page);
            match next {
                None => return Ok(out),
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(MlflowError::Pagination {
                        endpoint: format!("GET {path}"),
                        reason: "a page token repeated".into(),
                    });
                }
                Some(t) => token = Some(t),
            }
        }
    }

    /// `GET /health` (no auth needed on stock servers; used as a fallback check).
    pub async fn health(&self) -> Result<(), MlflowError> {
        self.send("GET health", "health", &[]).await.map(drop)
    }

    /// One page of registered models (a cheap auth + registry check with `max_results=1`).
    pub async fn probe_registry(&self) -> Result<(), MlflowError> {
        let _: SearchModels = self
            .get_json("registered-models/search", &[("max_results", "1")])
            .await?;
        Ok(())
    }

    /// Every registered model (`registered-models/search`, all pages).
    pub async fn search_models(&self) -> Result<Vec<RegisteredModel>, MlflowError> {
        let pages: Vec<SearchModels> = self
            .pages("registered-models/search", &[("max_results", PAGE_SIZE)])
            .await?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.registered_models)
            .collect())
    }

    /// Every version of model `name` (`model-versions/search`, all pages).
    pub async fn search_versions(&self, name: &str) -> Result<Vec<ModelVersion>, MlflowError> {
        let filter = name_filter(name)?;
        let pages: Vec<SearchVersions> = self
            .pages(
                "model-versions/search",
                &[("filter", filter.as_str()), ("max_results", PAGE_SIZE)],
            )
            .await?;
        // The filter is exact, but a server that ignores it must not mix models.
        Ok(pages
            .into_iter()
            .flat_map(|p| p.model_versions)
            .filter(|v| v.name == name)
            .collect())
    }

    /// `registered-models/get`.
    pub async fn get_model(&self, name: &str) -> Result<RegisteredModel, MlflowError> {
        let r: GetModel = self
            .get_json("registered-models/get", &[("name", name)])
            .await?;
        r.registered_model
            .ok_or_else(|| MlflowError::NotFound(format!("registered model {name:?}")))
    }

    /// `model-versions/get`.
    pub async fn get_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ModelVersion, MlflowError> {
        let r: GetVersion = self
            .get_json(
                "model-versions/get",
                &[("name", name), ("version", version)],
            )
            .await?;
        r.model_version
            .ok_or_else(|| MlflowError::NotFound(format!("model {name:?} version {version}")))
    }

    /// `runs/get`.
    pub async fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        let r: GetRun = self.get_json("runs/get", &[("run_id", run_id)]).await?;
        r.run
            .ok_or_else(|| MlflowError::NotFound(format!("run {run_id}")))
    }

    /// `artifacts/list` of one directory of a run (all pages; not recursive).
    pub async fn list_artifacts(
        &self,
        run_id: &str,
        path: Option<&str>,
    ) -> Result<Vec<FileInfo>, MlflowError> {
        let mut q = vec![("run_id", run_id)];
        if let Some(p) = path {
            q.push(("path", p));
        }
        let pages: Vec<ListArtifacts> = self.pages("artifacts/list", &q).await?;
        Ok(pages.into_iter().flat_map(|p| p.files).collect())
    }

    /// Streams one run artifact (`GET /get-artifact?path=&run_uuid=`, served for local and
    /// proxied artifact roots alike).
    pub async fn artifact_stream(
        &self,
        run_id: &str,
        path: &str,
    ) -> Result<BodyReader, MlflowError> {
        let resp = self
            .send(
                "GET get-artifact",
                "get-artifact",
                &[("path", path), ("run_uuid", run_id)],
            )
            .await?;
        Ok(BodyReader::new(resp))
    }
}

/// `name='<name>'` for `model-versions/search`, quoting with `"` when the name holds `'`.
pub fn name_filter(name: &str) -> Result<String, MlflowError> {
    if !name.contains('\'') {
        Ok(format!("name='{name}'"))
    } else if !name.contains('"') {
        Ok(format!("name=\"{name}\""))
    } else {
        Err(MlflowError::Encode {
            what: format!("search filter for model {name:?}"),
            reason: "the name contains both quote characters".into(),
        })
    }
}

/// Up to `limit` bytes of a response body (errors ignored: it is only for the message).
async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// An HTTP response body as [`AsyncRead`]; a transport failure part-way is an IO error, never
/// a short EOF.
pub struct BodyReader {
    stream: ByteStream,
    chunk: Bytes,
}

impl BodyReader {
    fn new(resp: reqwest::Response) -> Self {
        Self {
            stream: Box::pin(resp.bytes_stream()),
            chunk: Bytes::new(),
        }
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                let part = self.chunk.split_to(n);
                buf.put_slice(&part);
                return Poll::Ready(Ok(()));
            }
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(c))) => self.chunk = c,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        e.without_url(),
                    )));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_shapes() {
        let s: SearchModels = serde_json::from_str("{}").unwrap();
        assert!(s.registered_models.is_empty() && s.next_page_token.is_none());
        let v: ModelVersion = serde_json::from_str(
            r#"{"name":"m","version":3,"last_updated_timestamp":"1700000000000","tags":[{"key":"k","value":"v"}]}"#,
        )
        .unwrap();
        assert_eq!(v.version, "3");
        assert_eq!(v.last_updated_timestamp, Some(1_700_000_000_000));
        assert_eq!(v.tag("k"), Some("v"));
        assert!(v.aliases.is_empty() && v.run().is_none());
        let r: GetRun = serde_json::from_str(
            r#"{"run":{"info":{"run_id":"r"},"data":{"metrics":[{"key":"a","value":"NaN"},{"key":"b","value":0.5}]}}}"#,
        )
        .unwrap();
        let run = r.run.unwrap();
        assert_eq!(run.data.metrics[0].finite_value(), None);
        assert_eq!(run.data.metrics[1].finite_value(), Some(0.5));
        let l: ListArtifacts = serde_json::from_str(r#"{"root_uri":"/x"}"#).unwrap();
        assert!(l.files.is_empty());
    }

    #[test]
    fn filters_quote() {
        assert_eq!(name_filter("m").unwrap(), "name='m'");
        assert_eq!(name_filter("it's").unwrap(), "name=\"it's\"");
        assert!(name_filter("a'\"b").is_err());
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = SecretToken::new(" s3cret\n");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.0, "s3cret");
    }
}
