//! The poll cycle shared by every source: list → diff against the cursor → fetch only what
//! changed → SHA-256 while streaming → parse → classify → evidence records and a new cursor.
//!
//! Invariants:
//! - An unchanged source costs one `list` and no `fetch` (same version token → skipped).
//! - Changed artifacts are fetched [`FETCH_CONCURRENCY`] at a time (IO waits overlap hashing) and
//!   their results taken in listing order: records, cursor and errors are those of a sequential
//!   poll.
//! - Content is never buffered whole: it is read in [`CHUNK_SIZE`] chunks, each chunk is hashed
//!   as it arrives (≈50 µs per chunk, short enough to stay on the async thread), and only the
//!   first `max_parse_bytes` are kept for the parser. Larger artifacts are hashed but not parsed
//!   (`metadata.parse_skipped = "too large"`). Parsing big buffers runs on the blocking pool.
//! - A fetch stream is read no further than the listing said (issue 18, A4): an artifact listed
//!   with a size fails (an error of that artifact) as soon as its stream yields one byte more,
//!   and also when it ends short; an artifact listed without a size is read up to
//!   [`MAX_UNSIZED_ARTIFACT_BYTES`]. A hostile or broken source can therefore not make the agent
//!   hash more than it announced, and a record's size is always the listed one.
//! - A changed version token with identical bytes (same SHA-256) updates the cursor silently.
//! - A locator in the cursor but absent from the listing yields exactly one `gone` record and
//!   leaves the cursor.
//! - A failed fetch of one artifact is reported in [`PollStats::errors`] and keeps that
//!   artifact's old cursor entry, so it is retried next cycle; it never aborts the poll. A failed
//!   `list` aborts the poll (nothing can be diffed) and the caller keeps its old cursor.
//! - The engine does not persist anything: the caller writes the records to its spool first and
//!   only then saves [`PollOutcome::cursor`] (at-least-once; the server deduplicates).

use std::collections::BTreeSet;

use aims_catalog::{Catalog, Facts, UNCLASSIFIED};
use aims_model::{
    ContentHash, EvidenceRecord, ListedArtifact, RECORD_VERSION, RecordError, RecordEvent,
    Timestamp,
};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::collector::{ArtifactRef, CollectError, Collector};
use crate::cursor::{Cursor, CursorEntry};
use crate::formats::{self, Parsed};
use crate::system::SystemRule;

/// Bytes read (and hashed) per step.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Default cap on the bytes of one artifact kept in memory for parsing.
pub const DEFAULT_MAX_PARSE_BYTES: usize = 4 * 1024 * 1024;
/// Buffers larger than this are parsed on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;
/// Metadata larger than this (canonical JSON) is replaced by a stub so records stay valid.
const MAX_METADATA_BYTES: usize = 32 * 1024;
/// Most bytes read from an artifact whose listing gave no size (synthesised API documents,
/// sources that cannot tell): more fails the artifact.
pub const MAX_UNSIZED_ARTIFACT_BYTES: u64 = 1024 * 1024 * 1024;

/// Everything a poll needs besides the collector and the cursor.
#[derive(Clone, Copy, Debug)]
pub struct PollContext<'a> {
    /// The agent id written into records.
    pub agent_id: &'a str,
    /// Classification rules.
    pub catalog: &'a Catalog,
    /// How this source names systems.
    pub system_rule: &'a SystemRule,
    /// `observed_at` of every record of this cycle.
    pub now: Timestamp,
    /// Bytes of an artifact kept for parsing ([`DEFAULT_MAX_PARSE_BYTES`]).
    pub max_parse_bytes: usize,
}

/// Counters of one poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Artifacts the listing returned.
    pub listed: usize,
    /// Artifacts whose content was fetched.
    pub fetched: usize,
    /// Artifacts skipped because their version token had not changed.
    pub unchanged: usize,
    /// Artifacts skipped because no system could be resolved for them.
    pub skipped: usize,
    /// `gone` records emitted.
    pub gone: usize,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
    /// One line per artifact that could not be collected (`locator: error`).
    pub errors: Vec<String>,
}

/// The result of one poll.
#[derive(Clone, Debug)]
pub struct PollOutcome {
    /// New evidence, in listing order, then `gone` records in locator order.
    pub records: Vec<EvidenceRecord>,
    /// The cursor to persist once the records are safely spooled.
    pub cursor: Cursor,
    /// Every listed artifact whose content is known as of this listing (unchanged since the
    /// cursor, or fetched now), with that content's SHA-256: what a confirmation may claim the
    /// source still holds. Artifacts that failed to fetch or have no system are left out.
    pub confirmable: Vec<ListedArtifact>,
    /// Counters.
    pub stats: PollStats,
}

/// Runs one poll cycle of `collector` against `cursor`.
pub async fn poll(
    collector: &dyn Collector,
    cursor: &Cursor,
    ctx: &PollContext<'_>,
) -> Result<PollOutcome, CollectError> {
    let source = collector.source();
    let span = tracing::info_span!(
        "poll",
        collector.id = %source.id,
        collector.kind = %source.source_type,
    );
    poll_inner(collector, cursor, ctx).instrument(span).await
}

async fn poll_inner(
    collector: &dyn Collector,
    cursor: &Cursor,
    ctx: &PollContext<'_>,
) -> Result<PollOutcome, CollectError> {
    let listing = collector.list().await.inspect_err(|e| {
        tracing::warn!(error = %e, kind = ?e.kind(), "list failed");
    })?;
    let mut stats = PollStats {
        listed: listing.len(),
        ..PollStats::default()
    };
    let mut next = cursor.clone();
    let mut records = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut confirmable = Vec::new();

    // First the decisions (cheap, in listing order), then the fetches, a few at a time.
    let mut steps = Vec::new();
    for artifact in &listing {
        if !seen.insert(artifact.locator.as_str()) {
            tracing::warn!(locator = %artifact.locator, "duplicate locator in listing, ignored");
            continue;
        }
        let Some(system) = ctx
            .system_rule
            .resolve(&artifact.path, artifact.system.as_deref())
        else {
            tracing::debug!(path = %artifact.path, "no system for path, skipped");
            stats.skipped += 1;
            // Not gone at the source, just not ours any more: forget it without a record.
            next.entries.remove(&artifact.locator);
            continue;
        };
        let old = cursor.entries.get(&artifact.locator);
        if let Some(o) = old.filter(|o| o.version == artifact.version && o.system == system) {
            stats.unchanged += 1;
            steps.push(Step::Unchanged(ListedArtifact {
                locator: artifact.locator.clone(),
                sha256: o.sha256.clone(),
            }));
            continue;
        }
        steps.push(Step::Fetch {
            artifact,
            system,
            old,
        });
    }

    // A named async fn and an explicit queue (not a closure over a stream): the poll future
    // must stay `Send` for callers that spawn it.
    let mut steps = steps.into_iter();
    let mut outcomes = futures_util::stream::FuturesOrdered::new();
    for step in steps.by_ref().take(FETCH_CONCURRENCY) {
        outcomes.push_back(run_step(collector, ctx, step));
    }
    while let Some(outcome) = outcomes.next().await {
        if let Some(step) = steps.next() {
            outcomes.push_back(run_step(collector, ctx, step));
        }
        let (artifact, system, old, result) = match outcome {
            Outcome::Unchanged(listed) => {
                confirmable.push(listed);
                continue;
            }
            Outcome::Fetched {
                artifact,
                system,
                old,
                result,
                counters,
            } => {
                stats.fetched += counters.fetched;
                stats.bytes_hashed += counters.bytes_hashed;
                (artifact, system, old, result)
            }
        };
        match result {
            Ok((record, entry)) => {
                let same_bytes =
                    old.is_some_and(|o| o.sha256 == entry.sha256 && o.system == system);
                if same_bytes {
                    tracing::debug!(locator = %artifact.locator, "version changed, content did not");
                } else {
                    records.push(record);
                }
                confirmable.push(ListedArtifact {
                    locator: artifact.locator.clone(),
                    sha256: entry.sha256.clone(),
                });
                next.entries.insert(artifact.locator.clone(), entry);
            }
            Err(e) => {
                tracing::warn!(locator = %artifact.locator, error = %e, "artifact not collected, will retry");
                stats.errors.push(format!("{}: {e}", artifact.locator));
            }
        }
    }
    drop(outcomes);

    for (locator, entry) in &cursor.entries {
        if seen.contains(locator.as_str()) {
            continue;
        }
        records.push(gone_record(collector, locator, entry, ctx));
        next.entries.remove(locator);
        stats.gone += 1;
    }

    tracing::info!(
        listed = stats.listed,
        fetched = stats.fetched,
        unchanged = stats.unchanged,
        skipped = stats.skipped,
        gone = stats.gone,
        bytes_hashed = stats.bytes_hashed,
        errors = stats.errors.len(),
        records = records.len(),
        "poll finished"
    );
    Ok(PollOutcome {
        records,
        cursor: next,
        confirmable,
        stats,
    })
}

/// Artifacts fetched at once. One artifact's wait (a blocking-pool hop to open a file, a pipe
/// to git, a network round trip) overlaps another's hashing and parsing; results are still taken
/// in listing order, so records and cursors are what a one-at-a-time poll produces. Bounds the
/// memory of a poll to this many read buffers and parse heads.
pub const FETCH_CONCURRENCY: usize = 4;

/// What the engine does with one listed artifact.
enum Step<'a> {
    /// Same version as in the cursor: nothing to read.
    Unchanged(ListedArtifact),
    /// New or changed: fetch, hash, parse.
    Fetch {
        artifact: &'a ArtifactRef,
        system: String,
        old: Option<&'a CursorEntry>,
    },
}

/// A [`Step`] carried out.
// At most FETCH_CONCURRENCY of these exist at once: boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum Outcome<'a> {
    Unchanged(ListedArtifact),
    Fetched {
        artifact: &'a ArtifactRef,
        system: String,
        old: Option<&'a CursorEntry>,
        result: Result<(EvidenceRecord, CursorEntry), ArtifactError>,
        /// `fetched` and `bytes_hashed` of this artifact.
        counters: PollStats,
    },
}

/// Carries out one [`Step`].
async fn run_step<'a>(
    collector: &'a dyn Collector,
    ctx: &'a PollContext<'a>,
    step: Step<'a>,
) -> Outcome<'a> {
    match step {
        Step::Unchanged(listed) => Outcome::Unchanged(listed),
        Step::Fetch {
            artifact,
            system,
            old,
        } => {
            let mut counters = PollStats::default();
            let result = collect_one(collector, artifact, &system, ctx, &mut counters).await;
            Outcome::Fetched {
                artifact,
                system,
                old,
                result,
                counters,
            }
        }
    }
}

/// Why one artifact could not be collected.
#[derive(Debug, thiserror::Error)]
enum ArtifactError {
    #[error("fetch failed: {0}")]
    Fetch(#[from] CollectError),
    #[error("read failed after {read} bytes: {source}")]
    Read {
        read: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("the source served more than the {listed} bytes its listing announced")]
    Longer { listed: u64 },
    #[error("the source served {read} bytes, its listing announced {listed}")]
    Shorter { read: u64, listed: u64 },
    #[error("larger than {limit} bytes, the limit for an artifact listed without a size")]
    Unsized { limit: u64 },
    #[error("record rejected: {0}")]
    Record(#[from] RecordError),
}

/// Fetches, hashes, parses and classifies one artifact into its record and cursor entry.
async fn collect_one(
    collector: &dyn Collector,
    artifact: &ArtifactRef,
    system: &str,
    ctx: &PollContext<'_>,
    stats: &mut PollStats,
) -> Result<(EvidenceRecord, CursorEntry), ArtifactError> {
    let mut reader = collector.fetch(artifact).await?;
    stats.fetched += 1;
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut size: u64 = 0;
    // Never read past the announced size (plus the one byte that proves the stream is longer).
    let limit = artifact.size.unwrap_or(MAX_UNSIZED_ARTIFACT_BYTES);
    loop {
        if size > limit {
            stats.bytes_hashed += limit;
            return Err(match artifact.size {
                Some(listed) => ArtifactError::Longer { listed },
                None => ArtifactError::Unsized { limit },
            });
        }
        let want = usize::try_from(limit.saturating_add(1) - size)
            .unwrap_or(usize::MAX)
            .min(CHUNK_SIZE);
        let n = match reader.read(&mut buf[..want]).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                stats.bytes_hashed += size;
                return Err(ArtifactError::Read { read: size, source });
            }
        };
        let mut chunk = &buf[..n];
        size += n as u64;
        if size > limit {
            // The extra byte (`want` allows one) is not part of the listed state: not hashed.
            let extra = usize::try_from(size - limit).unwrap_or(n).min(n);
            chunk = &chunk[..n - extra];
            hasher.update(chunk);
            crate::progress::add_bytes(chunk.len() as u64);
            continue;
        }
        hasher.update(chunk);
        crate::progress::add_bytes(n as u64);
        // Keep one byte beyond the limit so "exactly at the limit" is still parsed.
        if head.len() <= ctx.max_parse_bytes {
            let room = ctx.max_parse_bytes + 1 - head.len();
            head.extend_from_slice(&chunk[..n.min(room)]);
        }
    }
    stats.bytes_hashed += size;
    crate::progress::add_file();
    let sha256 = ContentHash::from_digest(&hasher.finalize());
    if let Some(listed) = artifact.size
        && listed != size
    {
        return Err(ArtifactError::Shorter { read: size, listed });
    }

    let too_large = head.len() > ctx.max_parse_bytes;
    let parsed = if too_large {
        Parsed::default()
    } else {
        parse_off_thread(artifact.path.clone(), head).await
    };

    let extra = match collector.fetch_metadata(artifact).await {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(locator = %artifact.locator, error = %e, "fetch metadata unavailable");
            Default::default()
        }
    };

    // A collector that synthesises documents (registry entries, API objects) names their format.
    let format_hint = artifact
        .extra
        .get("format")
        .or_else(|| extra.extra.get("format"))
        .and_then(Value::as_str);
    let format = format_hint.or(parsed.format.as_deref());
    let facts = Facts {
        path: &artifact.path,
        format,
        keys: &parsed.keys,
        fields: &parsed.fields,
    };
    let kind = ctx
        .catalog
        .classify(&facts)
        .unwrap_or(UNCLASSIFIED)
        .to_owned();

    let mut metadata = parsed.metadata.clone();
    for (k, v) in artifact.extra.iter().chain(extra.extra.iter()) {
        metadata.insert(k.clone(), v.clone());
    }
    metadata.insert("path".into(), Value::String(artifact.path.clone()));
    if let Some(f) = format {
        metadata.insert("format".into(), Value::String(f.to_owned()));
    }
    if let Some(e) = &parsed.parse_error {
        metadata.insert("parse_error".into(), Value::String(e.clone()));
    }
    if too_large {
        metadata.insert("parse_skipped".into(), Value::String("too large".into()));
    }
    let metadata = bound_metadata(metadata, artifact, format);

    let mut record = EvidenceRecord {
        v: RECORD_VERSION,
        agent: ctx.agent_id.to_owned(),
        source: collector.source().clone(),
        locator: artifact.locator.clone(),
        version: artifact.version.clone(),
        sha256: sha256.clone(),
        size,
        observed_at: ctx.now,
        system: system.to_owned(),
        kind: kind.clone(),
        metadata,
        event: RecordEvent::Observed,
        artifact_time: parsed
            .artifact_time
            .or(extra.artifact_time)
            .or(artifact.artifact_time),
    };
    // Parsed fields may carry NUL or bidi controls, which the server refuses: keep the artifact,
    // neutralise the characters.
    aims_model::record::sanitize_metadata(&mut record.metadata);
    if let Err(RecordError::TooLarge { .. }) = record.validate() {
        record.metadata = stub_metadata(artifact, format);
    }
    record.validate()?;
    tracing::debug!(locator = %artifact.locator, sha256 = %sha256, size, kind = %kind, system, "artifact collected");

    let entry = CursorEntry {
        version: artifact.version.clone(),
        sha256,
        size,
        kind,
        system: system.to_owned(),
        path: artifact.path.clone(),
    };
    Ok((record, entry))
}

async fn parse_off_thread(path: String, bytes: Vec<u8>) -> Parsed {
    if bytes.len() <= INLINE_PARSE_BYTES {
        return formats::parse(&path, &bytes);
    }
    match tokio::task::spawn_blocking(move || formats::parse(&path, &bytes)).await {
        Ok(p) => p,
        Err(e) => Parsed {
            parse_error: Some(format!("parser failed: {e}")),
            ..Parsed::default()
        },
    }
}

fn stub_metadata(artifact: &ArtifactRef, format: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("path".into(), Value::String(artifact.path.clone()));
    if let Some(f) = format {
        m.insert("format".into(), Value::String(f.to_owned()));
    }
    m.insert("metadata_truncated".into(), Value::Bool(true));
    m
}

/// Replaces oversized metadata by a stub that still names the path and format.
fn bound_metadata(
    metadata: Map<String, Value>,
    artifact: &ArtifactRef,
    format: Option<&str>,
) -> Map<String, Value> {
    let len = serde_json::to_vec(&metadata).map_or(usize::MAX, |v| v.len());
    if len <= MAX_METADATA_BYTES {
        return metadata;
    }
    tracing::debug!(locator = %artifact.locator, bytes = len, "metadata too large, truncated");
    stub_metadata(artifact, format)
}

fn gone_record(
    collector: &dyn Collector,
    locator: &str,
    entry: &CursorEntry,
    ctx: &PollContext<'_>,
) -> EvidenceRecord {
    tracing::info!(locator, system = %entry.system, kind = %entry.kind, "artifact gone");
    let mut metadata = Map::new();
    metadata.insert("path".into(), Value::String(entry.path.clone()));
    EvidenceRecord {
        v: RECORD_VERSION,
        agent: ctx.agent_id.to_owned(),
        source: collector.source().clone(),
        locator: locator.to_owned(),
        version: entry.version.clone(),
        sha256: entry.sha256.clone(),
        size: entry.size,
        observed_at: ctx.now,
        system: entry.system.clone(),
        kind: entry.kind.clone(),
        metadata,
        event: RecordEvent::Gone,
        artifact_time: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use aims_model::{SourceRef, SourceType};
    use async_trait::async_trait;

    use super::*;
    use crate::collector::{ArtifactReader, CollectErrorKind};
    use crate::system::PathPattern;
    use crate::testkit::{CountingCollector, catalog};

    /// An in-memory source: path → (version, bytes).
    struct Memory {
        source: SourceRef,
        files: Mutex<BTreeMap<String, (String, Vec<u8>)>>,
        fail_list: Mutex<bool>,
    }

    impl Memory {
        fn new(files: &[(&str, &str, &[u8])]) -> Self {
            Self {
                source: SourceRef {
                    id: "mem".into(),
                    source_type: SourceType::Dir,
                },
                files: Mutex::new(
                    files
                        .iter()
                        .map(|(p, v, b)| ((*p).to_owned(), ((*v).to_owned(), b.to_vec())))
                        .collect(),
                ),
                fail_list: Mutex::new(false),
            }
        }
    }

    #[async_trait]
    impl Collector for Memory {
        fn source(&self) -> &SourceRef {
            &self.source
        }
        async fn check(&self) -> Result<(), CollectError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
            if *self.fail_list.lock().unwrap() {
                return Err(CollectError::transient("unreachable"));
            }
            Ok(self
                .files
                .lock()
                .unwrap()
                .iter()
                .map(|(p, (v, b))| {
                    let mut a = ArtifactRef::new(p.clone(), format!("mem://{p}"), v.clone());
                    a.size = Some(b.len() as u64);
                    a
                })
                .collect())
        }
        async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
            let files = self.files.lock().unwrap();
            let (_, b) = files
                .get(&artifact.path)
                .ok_or_else(|| CollectError::not_found(artifact.path.clone()))?;
            Ok(Box::new(std::io::Cursor::new(b.clone())))
        }
    }

    fn rule() -> SystemRule {
        SystemRule::FromPath(PathPattern::parse("systems/{system}/**").unwrap())
    }

    async fn run(c: &dyn Collector, cursor: &Cursor, max: usize) -> PollOutcome {
        let cat = catalog();
        let rule = rule();
        let ctx = PollContext {
            agent_id: "a1",
            catalog: &cat,
            system_rule: &rule,
            now: Timestamp::parse_utc("2026-11-20T10:00:00Z").unwrap(),
            max_parse_bytes: max,
        };
        poll(c, cursor, &ctx).await.unwrap()
    }

    #[tokio::test]
    async fn classifies_and_fills_records() {
        let val = br#"{"kind":"validation_report","model":{"name":"m","version":"2"},"evaluated_at":"2026-11-19T00:00:00Z"}"#;
        let mem = Memory::new(&[
            ("systems/fraud/val.json", "1", val),
            ("systems/fraud/blob.bin", "1", b"\x00\x01"),
            ("README.md", "1", b"# not ours"),
        ]);
        let out = run(&mem, &Cursor::new(), DEFAULT_MAX_PARSE_BYTES).await;
        assert_eq!(out.stats.listed, 3);
        assert_eq!(out.stats.skipped, 1);
        assert_eq!(out.records.len(), 2);
        let r = out
            .records
            .iter()
            .find(|r| r.locator.ends_with("val.json"))
            .unwrap();
        assert_eq!(r.kind, "validation_report");
        assert_eq!(r.system, "fraud");
        assert_eq!(r.sha256, ContentHash::of(val));
        assert_eq!(r.size, val.len() as u64);
        assert_eq!(r.metadata["format"], "json");
        assert_eq!(r.metadata["model"]["version"], "2");
        assert_eq!(
            r.artifact_time.unwrap().to_string(),
            "2026-11-19T00:00:00.000Z"
        );
        let b = out
            .records
            .iter()
            .find(|r| r.locator.ends_with("blob.bin"))
            .unwrap();
        assert_eq!(b.kind, UNCLASSIFIED);
        assert_eq!(out.stats.bytes_hashed, (val.len() + 2) as u64);
    }

    #[tokio::test]
    async fn same_bytes_new_version_updates_cursor_silently() {
        let mem = Memory::new(&[("systems/a/x.json", "1", b"{}")]);
        let first = run(&mem, &Cursor::new(), DEFAULT_MAX_PARSE_BYTES).await;
        mem.files
            .lock()
            .unwrap()
            .get_mut("systems/a/x.json")
            .unwrap()
            .0 = "2".into();
        let c = CountingCollector::new(Box::new(mem));
        let second = run(&c, &first.cursor, DEFAULT_MAX_PARSE_BYTES).await;
        assert_eq!(c.fetches(), 1);
        assert!(second.records.is_empty());
        assert_eq!(second.cursor.entries["mem://systems/a/x.json"].version, "2");
    }

    #[tokio::test]
    async fn too_large_is_hashed_not_parsed() {
        let big = format!(
            "{{\"kind\":\"validation_report\",\"pad\":\"{}\"}}",
            "x".repeat(300_000)
        );
        let mem = Memory::new(&[("systems/a/big.json", "1", big.as_bytes())]);
        let out = run(&mem, &Cursor::new(), 100_000).await;
        let r = &out.records[0];
        assert_eq!(r.metadata["parse_skipped"], "too large");
        assert_eq!(r.sha256, ContentHash::of(big.as_bytes()));
        assert_eq!(r.size, big.len() as u64);
        // At the limit exactly it is still parsed (and off the async thread).
        let out = run(&mem, &Cursor::new(), big.len()).await;
        assert_eq!(out.records[0].kind, "validation_report");
    }

    #[tokio::test]
    async fn list_error_aborts_and_fetch_error_keeps_old_entry() {
        let mem = Memory::new(&[
            ("systems/a/x.json", "1", b"{}"),
            ("systems/a/y.json", "1", b"[]"),
        ]);
        let first = run(&mem, &Cursor::new(), DEFAULT_MAX_PARSE_BYTES).await;
        *mem.fail_list.lock().unwrap() = true;
        let cat = catalog();
        let rule = rule();
        let ctx = PollContext {
            agent_id: "a1",
            catalog: &cat,
            system_rule: &rule,
            now: Timestamp::now(),
            max_parse_bytes: 10,
        };
        let err = poll(&mem, &first.cursor, &ctx).await.unwrap_err();
        assert_eq!(err.kind(), CollectErrorKind::Transient);
        *mem.fail_list.lock().unwrap() = false;
        {
            let mut files = mem.files.lock().unwrap();
            files.get_mut("systems/a/x.json").unwrap().0 = "2".into();
            files.get_mut("systems/a/x.json").unwrap().1 = b"{\"a\":1}".to_vec();
        }
        let c = CountingCollector::new(Box::new(mem));
        c.fail_path(Some("systems/a/x.json".into()));
        let out = run(&c, &first.cursor, DEFAULT_MAX_PARSE_BYTES).await;
        assert_eq!(out.stats.errors.len(), 1);
        assert!(out.records.is_empty());
        assert_eq!(out.cursor, first.cursor, "old entry kept for the retry");
    }

    /// A source whose listing announces one size and whose stream serves another.
    struct Liar {
        source: SourceRef,
        listed: Option<u64>,
        served: u64,
        reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    /// Counts the bytes handed out by an inner reader.
    struct Counted<R> {
        inner: R,
        reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<R> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
            let n = (buf.filled().len() - before) as u64;
            self.reads
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            r
        }
    }

    #[async_trait]
    impl Collector for Liar {
        fn source(&self) -> &SourceRef {
            &self.source
        }
        async fn check(&self) -> Result<(), CollectError> {
            Ok(())
        }
        async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
            let mut a = ArtifactRef::new("systems/a/report.json", "mem://report", "1");
            a.size = self.listed;
            Ok(vec![a])
        }
        async fn fetch(&self, _: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
            use tokio::io::AsyncReadExt as _;
            Ok(Box::new(Counted {
                inner: tokio::io::repeat(b'x').take(self.served),
                reads: self.reads.clone(),
            }))
        }
    }

    /// Issue 18, A4: an artifact listed at 28 bytes and served as 2 GB was hashed whole. The
    /// engine reads no more than the listed size plus one byte and fails that artifact; a short
    /// stream fails it too.
    #[tokio::test]
    async fn issue_18_a4_fetch_streams_stop_at_the_listed_size() {
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let liar = |listed, served| Liar {
            source: SourceRef {
                id: "liar".into(),
                source_type: SourceType::Dir,
            },
            listed,
            served,
            reads: reads.clone(),
        };
        let two_gb = 2 * 1024 * 1024 * 1024;
        let out = run(&liar(Some(28), two_gb), &Cursor::new(), 1024).await;
        assert!(out.records.is_empty(), "no record of an oversized stream");
        assert!(
            out.cursor.entries.is_empty(),
            "nothing remembered, retried next cycle"
        );
        assert_eq!(out.stats.errors.len(), 1);
        assert!(
            out.stats.errors[0].contains("more than the 28 bytes its listing announced"),
            "{:?}",
            out.stats.errors
        );
        let read = reads.swap(0, std::sync::atomic::Ordering::Relaxed);
        assert!(read <= 29, "read {read} bytes of a stream listed at 28");
        assert_eq!(out.stats.bytes_hashed, 28);

        let out = run(&liar(Some(28), 10), &Cursor::new(), 1024).await;
        assert!(out.records.is_empty());
        assert!(
            out.stats.errors[0].contains("served 10 bytes, its listing announced 28"),
            "{:?}",
            out.stats.errors
        );

        let out = run(&liar(Some(28), 28), &Cursor::new(), 1024).await;
        assert_eq!(out.records.len(), 1, "{:?}", out.stats.errors);
        assert_eq!(out.records[0].size, 28);
        // Without a listed size the same bound is MAX_UNSIZED_ARTIFACT_BYTES (not exercised
        // here: it would hash a gigabyte).
        let out = run(&liar(None, 5), &Cursor::new(), 1024).await;
        assert_eq!(out.records.len(), 1, "{:?}", out.stats.errors);
    }
}
