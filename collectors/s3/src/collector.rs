//! The `s3` source: the objects under one prefix of one bucket (AWS S3 or an S3-compatible store
//! such as MinIO or moto).
//!
//! **Listing** (`list`) is `ListObjectsV2` paged with continuation tokens (or, with
//! `versions: true`, `ListObjectVersions` paged with key/version-id markers, keeping only each
//! key's latest version and dropping keys whose latest version is a delete marker). Listings
//! carry everything the poll engine needs, so **an unchanged prefix costs list requests only**
//! (⌈objects / page size⌉ of them) and no content download. Per object:
//! - `version` token: the ETag without its quotes, or `etag@version-id` in versions mode (an
//!   object whose listing has no ETag falls back to `size-lastmodifiedmillis`);
//! - `path`: the key relative to `prefix` (a leading `/` left by a prefix without a trailing
//!   slash is dropped; a key equal to the prefix keeps its full key);
//! - `locator`: `s3://bucket/key`, stable across versions (it is the cursor key, see
//!   [`aims_collect::Collector`]); bytes that would make it ambiguous (control characters, space,
//!   `%`, `?`, `#`) are percent-encoded. In versions mode the exact version is named by
//!   `extra.version_id` and `extra.versioned_locator` (`s3://bucket/key?versionId=…`);
//! - `size`, `artifact_time` (LastModified) and `extra`: `key`, `etag`, `last_modified`
//!   (RFC 3339), `storage_class`, plus `version_id` / `versioned_locator` in versions mode.
//!
//! Keys ending in `/` are "directory markers" made by consoles and are skipped.
//!
//! **Fetching** (`fetch`) is `GetObject` with `If-Match: <listed ETag>` (and the listed version
//! id in versions mode), streamed straight from the HTTP body ([`ByteStream::into_async_read`]):
//! the object is never buffered. An object overwritten between `list` and `fetch` fails with
//! 412 (transient) instead of yielding a record whose bytes do not match its version token; the
//! engine keeps the old cursor entry and the next cycle lists and fetches the new version. A body
//! that stalls for [`BODY_IDLE_TIMEOUT`] fails with `TimedOut` rather than hanging the poll, and
//! one still streaming after [`BODY_TOTAL_TIMEOUT`] fails the same way (a trickling body).
//!
//! **Hostile endpoints** (issue 18). A listing is complete or an error: pagination stops with an
//! error after [`DEFAULT_MAX_PAGES`] pages or when a continuation token (or marker pair) comes
//! back a second time, never with a truncated result that would make the engine report the rest
//! gone. The SDK does not follow redirects: a 3xx (another region, a redirecting proxy) is an
//! error of the request, and the signed request is never re-sent to the `Location`. Each request
//! attempt has a total limit and the whole operation (retries included) another.
//!
//! **Check** (`check`) is `HeadBucket`: it proves the endpoint, the credentials and the bucket.
//!
//! Retries: the SDK's standard retry (3 attempts with backoff and jitter, unless the AWS
//! configuration chain says otherwise, e.g. `AWS_MAX_ATTEMPTS`) applies to each request,
//! so one throttled page does not throw away a long listing. Anything that still fails is
//! returned with its [`S3Error::kind`]; retrying the cycle is the caller's business. The
//! collector counts the requests it makes ([`S3Collector::requests`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use aims_collect::collector::ArtifactReader;
use aims_collect::{ArtifactRef, CollectError, Collector, S3Source, SourceConfig};
use aims_model::{SourceRef, SourceType, Timestamp};
use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::error::S3Error;

/// Keys per listing request (S3's maximum).
pub const DEFAULT_PAGE_SIZE: i32 = 1000;
/// Region used with a custom `endpoint` when neither the source nor the SDK chain names one
/// (S3-compatible stores generally ignore it, but SigV4 needs one).
pub const FALLBACK_REGION: &str = "us-east-1";
/// A fetched body that delivers no byte for this long fails with `TimedOut`.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A fetched body still streaming after this long fails with `TimedOut`.
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Most listing pages of one `list` (10 million keys at the default page size).
pub const DEFAULT_MAX_PAGES: usize = 10_000;
/// One operation, SDK retries included (a listing page, a GetObject up to its headers).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to the first response byte of a request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// One attempt of one request (a listing page; a GetObject up to its response headers).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Requests an [`S3Collector`] has made since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `ListObjectsV2` / `ListObjectVersions` pages.
    pub list: u64,
    /// `GetObject` requests (content downloads started).
    pub get: u64,
    /// `HeadBucket` requests.
    pub head: u64,
}

#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
}

/// A collector over the objects under one prefix of one bucket.
#[derive(Debug)]
pub struct S3Collector {
    source: SourceRef,
    client: Client,
    bucket: String,
    prefix: String,
    versions: bool,
    page_size: i32,
    max_pages: usize,
    counters: Counters,
}

/// Loads the AWS configuration (region from `cfg` or the SDK chain; credentials from the
/// standard chain: environment, shared config/credentials profiles including `credential_process`
/// and assume-role, web identity tokens (Kubernetes IRSA), ECS container credentials, EC2 IMDS)
/// and builds the collector. Validates `cfg` first. Talks to the network only to resolve a
/// region the configuration does not name (IMDS); credentials are resolved lazily.
pub async fn build(cfg: &S3Source) -> Result<S3Collector, S3Error> {
    validate(cfg)?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    S3Collector::new(cfg, &sdk)
}

fn validate(cfg: &S3Source) -> Result<(), S3Error> {
    SourceConfig::S3(cfg.clone())
        .validate()
        .map_err(|e| S3Error::Config {
            id: cfg.id.clone(),
            reason: format!("{}: {}", e.field, e.reason),
        })
}

impl S3Collector {
    /// Builds the collector from validated configuration and an already loaded SDK
    /// configuration (credentials, retry and HTTP settings come from `sdk`; `region`,
    /// `endpoint` and `force_path_style` from `cfg` win). No IO.
    pub fn new(cfg: &S3Source, sdk: &SdkConfig) -> Result<Self, S3Error> {
        validate(cfg)?;
        let mut b = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(cfg.force_path_style)
            // The chain's retry settings (AWS_MAX_ATTEMPTS, profile) or standard with 3 attempts.
            .retry_config(
                sdk.retry_config()
                    .cloned()
                    .unwrap_or_else(|| RetryConfig::standard().with_max_attempts(3)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &cfg.endpoint {
            b = b.endpoint_url(endpoint.clone());
        }
        // The source's region wins, then the SDK chain's; a custom endpoint may go without.
        let region = match (&cfg.region, sdk.region()) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => r.as_ref().to_owned(),
            (None, None) if cfg.endpoint.is_some() => FALLBACK_REGION.to_owned(),
            (None, None) => {
                return Err(S3Error::Config {
                    id: cfg.id.clone(),
                    reason: "no region: set `region` in the source, or AWS_REGION or a profile \
                             region for the agent"
                        .into(),
                });
            }
        };
        b = b.region(Region::new(region.clone()));
        tracing::debug!(
            source = %cfg.id,
            bucket = %cfg.bucket,
            prefix = %cfg.prefix,
            region = %region,
            custom_endpoint = cfg.endpoint.is_some(),
            path_style = cfg.force_path_style,
            versions = cfg.versions,
            "s3 collector configured"
        );
        Ok(Self {
            source: SourceRef {
                id: cfg.id.clone(),
                source_type: SourceType::S3,
            },
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.clone(),
            versions: cfg.versions,
            page_size: DEFAULT_PAGE_SIZE,
            max_pages: DEFAULT_MAX_PAGES,
            counters: Counters::default(),
        })
    }

    /// Sets the keys requested per listing page (1 to 1000; default [`DEFAULT_PAGE_SIZE`]).
    /// Smaller pages only make listings cost more requests; tests use it to exercise paging.
    pub fn with_page_size(mut self, keys: i32) -> Self {
        self.page_size = keys.clamp(1, DEFAULT_PAGE_SIZE);
        self
    }

    /// Sets the most listing pages one `list` reads before failing (default
    /// [`DEFAULT_MAX_PAGES`]).
    pub fn with_max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    fn too_many_pages(&self, op: &'static str) -> S3Error {
        S3Error::Protocol {
            op,
            target: self.list_target(),
            reason: format!(
                "more than {} listing pages: the listing is not taken as complete",
                self.max_pages
            ),
        }
    }

    fn malformed(&self, op: &'static str, what: &str) -> S3Error {
        S3Error::Protocol {
            op,
            target: self.list_target(),
            reason: format!("the listing holds {what}: not taken as complete"),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The S3 client (for callers that need one more call with the same configuration).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests made so far (each page, GET and HEAD counts once, SDK-internal retries not).
    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            list: self.counters.list.load(Ordering::Relaxed),
            get: self.counters.get.load(Ordering::Relaxed),
            head: self.counters.head.load(Ordering::Relaxed),
        }
    }

    fn list_target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The artifact for one listed object, or `None` for directory markers and keys outside the
    /// prefix.
    fn artifact(&self, obj: Listed<'_>) -> Option<ArtifactRef> {
        let key = obj.key;
        if key.ends_with('/') || !key.starts_with(&self.prefix) {
            return None;
        }
        let rel = key[self.prefix.len()..].trim_start_matches('/');
        let path = if rel.is_empty() { key } else { rel };
        let etag = obj
            .etag
            .map(|e| e.trim_matches('"'))
            .filter(|e| !e.is_empty());
        let millis = obj.last_modified.and_then(|t| t.to_millis().ok());
        let time = millis.and_then(Timestamp::from_unix_millis);
        let base = match etag {
            Some(e) => e.to_owned(),
            None => format!(
                "{}-{}",
                obj.size.unwrap_or_default(),
                millis.unwrap_or_default()
            ),
        };
        let locator = format!("s3://{}/{}", self.bucket, encode_key(key));
        let version = match obj.version_id {
            Some(v) => format!("{base}@{v}"),
            None => base,
        };
        let mut a = ArtifactRef::new(path, locator.clone(), version);
        a.size = obj.size.and_then(|s| u64::try_from(s).ok());
        a.artifact_time = time;
        let mut extra = Map::new();
        extra.insert("key".into(), Value::String(key.to_owned()));
        if let Some(e) = etag {
            extra.insert("etag".into(), Value::String(e.to_owned()));
        }
        if let Some(t) = time {
            extra.insert("last_modified".into(), Value::String(t.to_string()));
        }
        if let Some(c) = obj.storage_class {
            extra.insert("storage_class".into(), Value::String(c.to_owned()));
        }
        if let Some(v) = obj.version_id {
            extra.insert("version_id".into(), Value::String(v.to_owned()));
            extra.insert(
                "versioned_locator".into(),
                Value::String(format!("{locator}?versionId={}", encode_query(v))),
            );
        }
        a.extra = extra;
        Some(a)
    }

    async fn list_current(&self) -> Result<Vec<ArtifactRef>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for page_no in 0.. {
            if page_no >= self.max_pages {
                return Err(self.too_many_pages("ListObjectsV2"));
            }
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .max_keys(self.page_size);
            if !self.prefix.is_empty() {
                req = req.prefix(&self.prefix);
            }
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            self.counters.list.fetch_add(1, Ordering::Relaxed);
            let page = req
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("ListObjectsV2", self.list_target(), false, e))?;
            for o in page.contents() {
                // An entry without a key is a broken answer: skipping it would read as removal.
                let Some(key) = o.key() else {
                    return Err(self.malformed("ListObjectsV2", "an object without a key"));
                };
                let listed = Listed {
                    key,
                    etag: o.e_tag(),
                    size: o.size(),
                    last_modified: o.last_modified(),
                    storage_class: o.storage_class().map(|c| c.as_str()),
                    version_id: None,
                };
                out.extend(self.artifact(listed));
            }
            tracing::trace!(bucket = %self.bucket, keys = page.contents().len(), "listed page");
            if page.is_truncated() != Some(true) {
                break;
            }
            match page.next_continuation_token() {
                Some(t) if seen.insert(t.to_owned()) => token = Some(t.to_owned()),
                _ => {
                    return Err(S3Error::Protocol {
                        op: "ListObjectsV2",
                        target: self.list_target(),
                        reason: "truncated listing without a new continuation token (missing or \
                                 repeated)"
                            .into(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn list_versions(&self) -> Result<Vec<ArtifactRef>, S3Error> {
        let mut out = Vec::new();
        let mut markers: Option<(String, Option<String>)> = None;
        let mut seen = std::collections::HashSet::new();
        for page_no in 0.. {
            if page_no >= self.max_pages {
                return Err(self.too_many_pages("ListObjectVersions"));
            }
            let mut req = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .max_keys(self.page_size);
            if !self.prefix.is_empty() {
                req = req.prefix(&self.prefix);
            }
            if let Some((k, v)) = &markers {
                req = req.key_marker(k);
                if let Some(v) = v {
                    req = req.version_id_marker(v);
                }
            }
            self.counters.list.fetch_add(1, Ordering::Relaxed);
            let page = req.send().await.map_err(|e| {
                S3Error::from_sdk("ListObjectVersions", self.list_target(), false, e)
            })?;
            // Only latest versions are current artifacts; a key whose latest entry is a delete
            // marker is simply absent (so the engine reports it gone).
            for v in page.versions() {
                // Entries without IsLatest or a key are a broken answer: skipping them would read
                // as removal.
                let Some(latest) = v.is_latest() else {
                    return Err(self.malformed("ListObjectVersions", "a version without IsLatest"));
                };
                if !latest {
                    continue;
                }
                let Some(key) = v.key() else {
                    return Err(self.malformed("ListObjectVersions", "a version without a key"));
                };
                let listed = Listed {
                    key,
                    etag: v.e_tag(),
                    size: v.size(),
                    last_modified: v.last_modified(),
                    storage_class: v.storage_class().map(|c| c.as_str()),
                    version_id: Some(v.version_id().unwrap_or("null")),
                };
                out.extend(self.artifact(listed));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            let next = page.next_key_marker().map(|k| {
                (
                    k.to_owned(),
                    page.next_version_id_marker().map(str::to_owned),
                )
            });
            match next {
                Some(n) if seen.insert(n.clone()) => markers = Some(n),
                _ => {
                    return Err(S3Error::Protocol {
                        op: "ListObjectVersions",
                        target: self.list_target(),
                        reason: "truncated listing without new markers".into(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The fields of one listing entry the collector uses (ListObjectsV2 and ListObjectVersions).
struct Listed<'a> {
    key: &'a str,
    etag: Option<&'a str>,
    size: Option<i64>,
    last_modified: Option<&'a DateTime>,
    storage_class: Option<&'a str>,
    version_id: Option<&'a str>,
}

/// Percent-encodes the bytes of a key that would make an `s3://` locator ambiguous or invalid.
fn encode_key(key: &str) -> String {
    encode(key, |c| {
        c.is_control() || matches!(c, ' ' | '%' | '?' | '#')
    })
}

fn encode_query(v: &str) -> String {
    encode(v, |c| {
        c.is_control() || matches!(c, ' ' | '%' | '?' | '#' | '&' | '=' | '+')
    })
}

fn encode(s: &str, special: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if special(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn extra_str<'a>(a: &'a ArtifactRef, field: &str) -> Option<&'a str> {
    a.extra.get(field).and_then(Value::as_str)
}

#[async_trait]
impl Collector for S3Collector {
    fn source(&self) -> &SourceRef {
        &self.source
    }

    async fn check(&self) -> Result<(), CollectError> {
        self.counters.head.fetch_add(1, Ordering::Relaxed);
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                S3Error::from_sdk("HeadBucket", format!("s3://{}", self.bucket), false, e)
            })?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        let listed = if self.versions {
            self.list_versions().await
        } else {
            self.list_current().await
        };
        let list = listed.inspect_err(|e| {
            tracing::debug!(bucket = %self.bucket, prefix = %self.prefix, error = %e, "listing failed");
        })?;
        tracing::debug!(
            bucket = %self.bucket,
            prefix = %self.prefix,
            objects = list.len(),
            list_requests = self.counters.list.load(Ordering::Relaxed),
            "listed prefix"
        );
        Ok(list)
    }

    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        let Some(key) = extra_str(artifact, "key") else {
            return Err(CollectError::permanent(format!(
                "{}: not listed by this s3 collector (no key)",
                artifact.locator
            )));
        };
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(etag) = extra_str(artifact, "etag") {
            req = req.if_match(format!("\"{etag}\""));
        }
        if let Some(v) = extra_str(artifact, "version_id") {
            req = req.version_id(v);
        }
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let out = req.send().await.map_err(|e| {
            S3Error::from_sdk("GetObject", format!("s3://{}/{key}", self.bucket), true, e)
        })?;
        tracing::trace!(locator = %artifact.locator, length = ?out.content_length(), "streaming object");
        Ok(Box::new(aims_collect::DeadlineReader::new(
            IdleTimeout::new(body_reader(out.body)),
            BODY_TOTAL_TIMEOUT,
        )))
    }
}

fn body_reader(body: ByteStream) -> Pin<Box<dyn AsyncBufRead + Send>> {
    Box::pin(body.into_async_read())
}

/// Fails a read that makes no progress for [`BODY_IDLE_TIMEOUT`].
struct IdleTimeout<R> {
    inner: R,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<R> IdleTimeout<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep(BODY_IDLE_TIMEOUT)),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleTimeout<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let deadline = tokio::time::Instant::now() + BODY_IDLE_TIMEOUT;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(r)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data from S3 for {} s", BODY_IDLE_TIMEOUT.as_secs()),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(prefix: &str, versions: bool) -> S3Collector {
        let cfg = S3Source {
            id: "bucket".into(),
            bucket: "evidence".into(),
            prefix: prefix.into(),
            region: Some("eu-west-1".into()),
            endpoint: None,
            force_path_style: false,
            versions,
            system: Some("fraud".into()),
            system_from_path: None,
            interval_secs: 300,
        };
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        S3Collector::new(&cfg, &sdk).unwrap()
    }

    fn listed<'a>(key: &'a str, version_id: Option<&'a str>) -> Listed<'a> {
        Listed {
            key,
            etag: Some("\"abc123\""),
            size: Some(42),
            last_modified: None,
            storage_class: Some("STANDARD"),
            version_id,
        }
    }

    #[test]
    fn artifact_fields() {
        let c = collector("fraud/", false);
        let a = c
            .artifact(listed("fraud/cards/model card.md", None))
            .unwrap();
        assert_eq!(a.path, "cards/model card.md");
        assert_eq!(a.locator, "s3://evidence/fraud/cards/model%20card.md");
        assert_eq!(a.version, "abc123");
        assert_eq!(a.size, Some(42));
        assert_eq!(extra_str(&a, "etag"), Some("abc123"));
        assert_eq!(extra_str(&a, "key"), Some("fraud/cards/model card.md"));
        assert_eq!(extra_str(&a, "storage_class"), Some("STANDARD"));
        assert!(a.extra.get("version_id").is_none());
        assert!(
            c.artifact(listed("fraud/cards/", None)).is_none(),
            "directory marker"
        );
        assert!(
            c.artifact(listed("other/x", None)).is_none(),
            "outside prefix"
        );
    }

    #[test]
    fn versioned_artifact_keeps_a_stable_locator() {
        let c = collector("fraud", true);
        let a = c.artifact(listed("fraud/a.json", Some("v1&2"))).unwrap();
        assert_eq!(a.path, "a.json", "leading slash dropped");
        assert_eq!(a.locator, "s3://evidence/fraud/a.json");
        assert_eq!(a.version, "abc123@v1&2");
        assert_eq!(
            extra_str(&a, "versioned_locator"),
            Some("s3://evidence/fraud/a.json?versionId=v1%262")
        );
        let whole = c.artifact(listed("fraud", Some("v"))).unwrap();
        assert_eq!(whole.path, "fraud", "key equal to the prefix keeps its key");
    }

    #[test]
    fn missing_etag_falls_back_to_size_and_time() {
        let c = collector("", false);
        let mut l = listed("a", None);
        l.etag = None;
        let t = DateTime::from_millis(1_700_000_000_000);
        l.last_modified = Some(&t);
        let a = c.artifact(l).unwrap();
        assert_eq!(a.version, "42-1700000000000");
        assert!(a.extra.get("etag").is_none());
        assert_eq!(
            extra_str(&a, "last_modified"),
            Some(
                Timestamp::from_unix_millis(1_700_000_000_000)
                    .unwrap()
                    .to_string()
                    .as_str()
            )
        );
    }

    #[test]
    fn no_region_without_endpoint_is_a_config_error() {
        let mut cfg = S3Source {
            id: "b".into(),
            bucket: "evidence".into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            force_path_style: false,
            versions: false,
            system: Some("fraud".into()),
            system_from_path: None,
            interval_secs: 300,
        };
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let e = S3Collector::new(&cfg, &sdk).unwrap_err();
        assert!(e.to_string().contains("no region"), "{e}");
        cfg.endpoint = Some("http://127.0.0.1:9".into());
        S3Collector::new(&cfg, &sdk).unwrap();
        cfg.bucket = "ab".into();
        let e = S3Collector::new(&cfg, &sdk).unwrap_err();
        assert!(e.to_string().contains("bucket"), "{e}");
    }
}
