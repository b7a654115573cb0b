//! The collector compliance harness (feature `testkit`): every source's tests run
//! [`assert_collector_compliance`] against a real instance of the source.
//!
//! It checks the engine-level guarantees that depend on a collector behaving (DESIGN §3):
//! 1. every record's `sha256`/`size` are those of the bytes the source serves;
//! 2. a second poll with the new cursor fetches nothing and emits nothing;
//! 3. a fresh collector with the cursor saved to disk and loaded again fetches nothing;
//! 4. one changed artifact is fetched exactly once and yields exactly one record;
//! 5. one removed artifact yields exactly one `gone` record (and nothing on the next poll);
//! 6. a fetch that fails part-way on one artifact is reported in `stats.errors`, the others are
//!    still collected, and the failed one is collected on the next poll.
//!
//! Fetches are counted by wrapping the collector in [`CountingCollector`], which can also inject
//! a failure for one path. Panics (it is a test helper) with a message naming the failed step.

// An assertion kit: failing loudly with a message is its job (it only builds for tests).
#![allow(clippy::panic)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use aims_catalog::Catalog;
use aims_model::{ContentHash, RecordEvent, SourceRef, Timestamp};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::collector::{ArtifactReader, ArtifactRef, CollectError, Collector, FetchMetadata};
use crate::cursor::Cursor;
use crate::engine::{DEFAULT_MAX_PARSE_BYTES, PollContext, PollOutcome, poll};
use crate::system::SystemRule;

/// Mutations of the underlying source, supplied by each source's tests.
#[async_trait]
pub trait SourceFixture: Send + Sync {
    /// Changes the bytes of exactly one existing artifact (one the system rule resolves) and
    /// returns its source-relative path.
    async fn change_one(&mut self) -> String;
    /// Removes exactly one existing artifact (a different one than `change_one` changed) and
    /// returns its path.
    async fn remove_one(&mut self) -> String;
    /// The bytes the source holds for `path`, when the fixture can tell independently of the
    /// collector (checked against the record's hash).
    async fn bytes(&self, _path: &str) -> Option<Vec<u8>> {
        None
    }
}

/// Wraps a collector, counting `fetch` calls and optionally failing one path part-way.
pub struct CountingCollector {
    inner: Box<dyn Collector>,
    fetches: Arc<AtomicUsize>,
    fail_path: Mutex<Option<String>>,
}

impl CountingCollector {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Collector>) -> Self {
        Self {
            inner,
            fetches: Arc::new(AtomicUsize::new(0)),
            fail_path: Mutex::new(None),
        }
    }

    /// `fetch` calls so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Makes reads of `path` fail after a few bytes (`None` to stop).
    pub fn fail_path(&self, path: Option<String>) {
        if let Ok(mut g) = self.fail_path.lock() {
            *g = path;
        }
    }
}

#[async_trait]
impl Collector for CountingCollector {
    fn source(&self) -> &SourceRef {
        self.inner.source()
    }
    async fn check(&self) -> Result<(), CollectError> {
        self.inner.check().await
    }
    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        self.inner.list().await
    }
    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let reader = self.inner.fetch(artifact).await?;
        let fail = self
            .fail_path
            .lock()
            .map(|g| g.as_deref() == Some(artifact.path.as_str()))
            .unwrap_or(false);
        if fail {
            Ok(Box::new(FailingReader {
                inner: reader,
                left: 3,
            }))
        } else {
            Ok(reader)
        }
    }
    async fn fetch_metadata(&self, artifact: &ArtifactRef) -> Result<FetchMetadata, CollectError> {
        self.inner.fetch_metadata(artifact).await
    }
}

/// Serves up to `left` bytes of the real stream, then an IO error.
struct FailingReader {
    inner: ArtifactReader,
    left: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected failure",
            )));
        }
        let mut small = [0u8; 3];
        let n = self.left.min(small.len()).min(buf.remaining());
        let mut rb = ReadBuf::new(&mut small[..n]);
        match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let filled = rb.filled().len();
                buf.put_slice(rb.filled());
                self.left = if filled == 0 { 0 } else { self.left - filled };
                if filled == 0 {
                    // The artifact is shorter than the injected prefix: fail now.
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected failure",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// The catalog the harness classifies with.
pub fn catalog() -> Catalog {
    match Catalog::embedded() {
        Ok(c) => c,
        Err(e) => panic!("embedded catalog does not load: {e}"),
    }
}

/// One poll with a test context (agent `test-agent`, default parse limit).
pub async fn poll_once(
    collector: &dyn Collector,
    cursor: &Cursor,
    catalog: &Catalog,
    rule: &SystemRule,
    now: Timestamp,
) -> PollOutcome {
    let ctx = PollContext {
        agent_id: "test-agent",
        catalog,
        system_rule: rule,
        now,
        max_parse_bytes: DEFAULT_MAX_PARSE_BYTES,
    };
    match poll(collector, cursor, &ctx).await {
        Ok(o) => o,
        Err(e) => panic!("poll failed: {e}"),
    }
}

/// SHA-256 and length of everything `fetch` serves for `artifact`.
pub async fn hash_served(collector: &dyn Collector, artifact: &ArtifactRef) -> (ContentHash, u64) {
    let mut r = match collector.fetch(artifact).await {
        Ok(r) => r,
        Err(e) => panic!("fetch {} failed: {e}", artifact.locator),
    };
    let mut all = Vec::new();
    if let Err(e) = r.read_to_end(&mut all).await {
        panic!("reading {} failed: {e}", artifact.locator);
    }
    (
        ContentHash::from_digest(&Sha256::digest(&all)),
        all.len() as u64,
    )
}

fn path_of(r: &aims_model::EvidenceRecord) -> &str {
    r.meta_str("path").unwrap_or_default()
}

/// Runs the whole compliance sequence (see the module docs). `make` builds a fresh collector
/// over the same source each time it is called; `fixture` mutates the source; `rule` is the
/// source's system rule. The source must start with at least three artifacts the rule resolves.
pub async fn assert_collector_compliance<F>(
    make: F,
    fixture: &mut dyn SourceFixture,
    rule: &SystemRule,
) where
    F: Fn() -> Box<dyn Collector>,
{
    let catalog = catalog();
    let mut now = Timestamp::now();
    let mut tick = || {
        now = Timestamp::from_unix_millis(now.unix_millis() + 1000).unwrap_or(now);
        now
    };

    // 1. First poll: everything is fetched; hashes match the served bytes.
    let c = CountingCollector::new(make());
    if let Err(e) = c.check().await {
        panic!("step 1: check failed: {e}");
    }
    let t1 = tick();
    let first = poll_once(&c, &Cursor::new(), &catalog, rule, t1).await;
    assert!(
        first.stats.errors.is_empty(),
        "step 1: errors {:?}",
        first.stats.errors
    );
    let resolved = first.records.len();
    assert!(
        resolved >= 3,
        "step 1: need at least 3 artifacts with a system, got {resolved}"
    );
    assert_eq!(c.fetches(), resolved, "step 1: one fetch per artifact");
    assert_eq!(first.stats.fetched, resolved);
    assert_eq!(first.cursor.entries.len(), resolved);
    let listing = match c.list().await {
        Ok(l) => l,
        Err(e) => panic!("step 1: list failed: {e}"),
    };
    let plain = make();
    for r in &first.records {
        if let Err(e) = r.validate() {
            panic!("step 1: invalid record {}: {e}", r.locator);
        }
        assert_eq!(r.event, RecordEvent::Observed);
        assert_eq!(r.observed_at, t1);
        assert_eq!(&r.source, c.source());
        let Some(a) = listing.iter().find(|a| a.locator == r.locator) else {
            panic!("step 1: record {} not in listing", r.locator);
        };
        assert_eq!(path_of(r), a.path, "step 1: metadata.path");
        let (sha, size) = hash_served(plain.as_ref(), a).await;
        assert_eq!(r.sha256, sha, "step 1: sha256 of {}", a.path);
        assert_eq!(r.size, size, "step 1: size of {}", a.path);
        if let Some(bytes) = fixture.bytes(&a.path).await {
            assert_eq!(
                r.sha256,
                ContentHash::of(&bytes),
                "step 1: sha256 vs source bytes of {}",
                a.path
            );
            assert_eq!(r.size, bytes.len() as u64);
        }
    }

    // 2. Second poll: nothing fetched, nothing emitted.
    let second = poll_once(&c, &first.cursor, &catalog, rule, tick()).await;
    assert_eq!(
        c.fetches(),
        resolved,
        "step 2: an unchanged source must not be fetched"
    );
    assert!(
        second.records.is_empty(),
        "step 2: records {:?}",
        second.records
    );
    assert_eq!(second.stats.unchanged, resolved);
    assert_eq!(second.cursor, first.cursor);

    // 3. Fresh collector, cursor through disk.
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("step 3: tempdir: {e}"),
    };
    let cursor_path = dir.path().join("cursor.json");
    if let Err(e) = second.cursor.save(&cursor_path) {
        panic!("step 3: save cursor: {e}");
    }
    let loaded = match Cursor::load(&cursor_path) {
        Ok(c) => c,
        Err(e) => panic!("step 3: load cursor: {e}"),
    };
    assert_eq!(loaded, second.cursor, "step 3: cursor round trip");
    let c = CountingCollector::new(make());
    let third = poll_once(&c, &loaded, &catalog, rule, tick()).await;
    assert_eq!(
        c.fetches(),
        0,
        "step 3: a restarted collector must not re-fetch"
    );
    assert!(
        third.records.is_empty(),
        "step 3: records {:?}",
        third.records
    );

    // 4. One change → one fetch, one record.
    let changed = fixture.change_one().await;
    let fourth = poll_once(&c, &third.cursor, &catalog, rule, tick()).await;
    assert_eq!(
        c.fetches(),
        1,
        "step 4: exactly the changed artifact is fetched"
    );
    assert_eq!(
        fourth.records.len(),
        1,
        "step 4: records {:?}",
        fourth.records
    );
    let rec = &fourth.records[0];
    assert_eq!(
        path_of(rec),
        changed,
        "step 4: the record is for the changed path"
    );
    let before = third
        .cursor
        .entries
        .get(&rec.locator)
        .map(|e| e.sha256.clone());
    assert_ne!(Some(rec.sha256.clone()), before, "step 4: the hash changed");
    if let Some(bytes) = fixture.bytes(&changed).await {
        assert_eq!(rec.sha256, ContentHash::of(&bytes), "step 4: new hash");
    }

    // 5. One removal → one gone record, then silence.
    let removed = fixture.remove_one().await;
    let fifth = poll_once(&c, &fourth.cursor, &catalog, rule, tick()).await;
    assert_eq!(c.fetches(), 1, "step 5: a removal costs no fetch");
    assert_eq!(
        fifth.records.len(),
        1,
        "step 5: records {:?}",
        fifth.records
    );
    let gone = &fifth.records[0];
    assert_eq!(gone.event, RecordEvent::Gone, "step 5: event");
    assert_eq!(path_of(gone), removed, "step 5: gone path");
    let was = fourth.cursor.entries.get(&gone.locator);
    assert_eq!(
        Some(&gone.sha256),
        was.map(|e| &e.sha256),
        "step 5: gone keeps the last hash"
    );
    assert!(!fifth.cursor.entries.contains_key(&gone.locator));
    if let Err(e) = gone.validate() {
        panic!("step 5: invalid gone record: {e}");
    }
    let sixth = poll_once(&c, &fifth.cursor, &catalog, rule, tick()).await;
    assert!(sixth.records.is_empty(), "step 5: gone is reported once");
    assert_eq!(c.fetches(), 1);

    // 6. A failing fetch is reported and retried; the others are collected.
    let c = CountingCollector::new(make());
    let victim = match fifth.cursor.entries.values().next() {
        Some(e) => e.path.clone(),
        None => panic!("step 6: nothing left to fail"),
    };
    c.fail_path(Some(victim.clone()));
    let failing = poll_once(&c, &Cursor::new(), &catalog, rule, tick()).await;
    let remaining = fifth.cursor.entries.len();
    assert_eq!(
        failing.stats.errors.len(),
        1,
        "step 6: errors {:?}",
        failing.stats.errors
    );
    assert_eq!(
        failing.records.len(),
        remaining - 1,
        "step 6: others still collected"
    );
    assert!(failing.records.iter().all(|r| path_of(r) != victim));
    assert_eq!(
        failing.cursor.entries.len(),
        remaining - 1,
        "step 6: no cursor entry for the failure"
    );
    c.fail_path(None);
    let before = c.fetches();
    let retry = poll_once(&c, &failing.cursor, &catalog, rule, tick()).await;
    assert_eq!(
        c.fetches() - before,
        1,
        "step 6: only the failed artifact is retried"
    );
    assert_eq!(retry.records.len(), 1);
    assert_eq!(path_of(&retry.records[0]), victim);
    assert!(retry.stats.errors.is_empty());
}
