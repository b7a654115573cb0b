//! The auditor's export (integrity.md §6.8): a deterministic `bundle.tar.gz` that `aims-verify`,
//! `sha256sum`, `openssl` and the stdlib script `server/verify/scripts/merkle.py` can check
//! offline.
//!
//! The bundle is anchored to the newest checkpoint when the export starts; entries appended
//! later are not included. Layout (every file mode 0644, mtime = the checkpoint's cosigned time,
//! paths sorted, so the same checkpoint and scope always give byte-identical archives):
//!
//! | path | content |
//! |---|---|
//! | `MANIFEST.json` | format, origin, size, root, time, catalog version and hash, scope, counts, files |
//! | `SHA256SUMS` | `sha256sum` lines over every other file |
//! | `trust/policy.txt`, `trust/{log,clock}.pub.pem` | convenience copies only (pin your own) |
//! | `checkpoint` | the signed note (log signature + clock cosignature) |
//! | `checkpoint.body` | the exact signed text |
//! | `checkpoint.sig` | the log's 64-byte Ed25519 signature (key ID stripped) |
//! | `checkpoint.cosig.msg`, `checkpoint.cosig.sig` | the `cosignature/v1` message and signature |
//! | `log/entries.jsonl` | line i = the stored bytes of leaf i (full); partial: the system's entries |
//! | `log/index.txt` | partial exports: the leaf index of each line |
//! | `proofs/<record_id>.tlog-proof` | partial exports (or `receipts`): one receipt per entry |
//! | `consistency/<m>-<n>.txt` | with `since=m`: the RFC 6962 consistency proof, base64 per line |
//! | `confirmations/<sha256>.json` | the listing each confirmation entry names |
//! | `oscal/assessment-results.json`, `oscal/catalog.json` | OSCAL 1.2.3 |
//! | `report/period.json` | with a period: the period report |
//! | `catalog/*.yaml` | the catalog data the assessment used |
//! | `README.md` | the layout and the commands that check the bundle |
//!
//! A full export needs no receipts: the verifier recomputes the root from every entry.
//!
//! Streaming (issue 17, issue 18 L): two passes over the ledger read it page by page
//! ([`scan`]: root and scope; [`build`]: the files and the replayed assessment); files are
//! staged on disk ([`staging`]) and the archive is streamed from them. Over HTTP the archive goes
//! through a bounded channel to the response body: when the client leaves, the channel closes and
//! the export stops at its next page or chunk, and its staging directory is removed.

mod build;
mod readme;
mod scan;
mod staging;

use std::collections::HashMap;
use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use aims_catalog::Catalog;
use aims_ledger::bundle as layout;
use aims_model::Timestamp;

use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};
use crate::{AppState, ServerError, Settings, keys, oscal};

pub use staging::{ChannelWriter, Staging};

/// `format` of MANIFEST.json.
pub const FORMAT: &str = layout::FORMAT;
/// Entries read from the store per query.
const PAGE: u64 = 1000;

/// What to export. The default is the whole log, with blobs and without receipts.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Only this AI system's entries (a `partial` export); `None` exports the whole log.
    pub system: Option<String>,
    /// Include the consistency proof from this earlier tree size to the bundle's.
    pub since: Option<u64>,
    /// An audit period `[from, to)`: the bundle carries its report at `report/period.json`
    /// (computed from the bundled entries; `to` is capped at the checkpoint's time).
    pub period: Option<(Timestamp, Timestamp)>,
    /// A receipt (inclusion proof) per entry also in a full export (partial exports always
    /// have them).
    pub receipts: bool,
    /// Carry the bytes of uploaded documents under `blobs/sha256/` (default).
    pub blobs: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            system: None,
            since: None,
            period: None,
            receipts: false,
            blobs: true,
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request cannot be served as asked (unknown system, bad `since`).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing matches (no evidence for the system).
    #[error("{0}")]
    NotFound(String),
    /// No checkpoint yet.
    #[error("no checkpoint has been signed yet: start the server once")]
    NoCheckpoint,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] aims_store::StoreError),
    /// The stored ledger contradicts its checkpoint or cannot be read back.
    #[error("ledger: {0}")]
    Ledger(String),
    /// Writing the archive failed.
    #[error("archive: {0}")]
    Archive(#[from] std::io::Error),
    /// The client went away; the export stopped.
    #[error("cancelled: the client went away")]
    Cancelled,
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::BadRequest(m) => ApiError::bad_request("invalid_query", m),
            ExportError::NotFound(m) => ApiError::not_found(m),
            ExportError::NoCheckpoint => ApiError::unavailable(e.to_string()),
            ExportError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

fn ledger_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Ledger(e.to_string())
}

/// Stops an export whose reader went away: checked before every page the export reads.
#[derive(Clone, Default)]
pub struct Cancel(Option<mpsc::Sender<std::io::Result<Bytes>>>);

impl Cancel {
    /// Never cancelled (the CLI, benchmarks).
    pub fn never() -> Self {
        Self(None)
    }

    fn check(&self) -> Result<(), ExportError> {
        match &self.0 {
            Some(tx) if tx.is_closed() => Err(ExportError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// The anchor of an export and what the request asks, checked before anything is written (so
/// an HTTP client gets a 4xx/503 rather than a broken stream).
async fn start(state: &AppState, opts: &ExportOptions) -> Result<scan::Anchor, ExportError> {
    let stored = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or(ExportError::NoCheckpoint)?;
    let anchor = scan::anchor(state, stored)?;
    let size = anchor.stored.size;
    if let Some(m) = opts.since
        && (m == 0 || m > size)
    {
        return Err(ExportError::BadRequest(format!(
            "since must be between 1 and the checkpoint size {size}, got {m}"
        )));
    }
    // The period's report covers [from, min(to, checkpoint)): it must not be empty.
    if let Some((from, to)) = opts.period {
        let time = build::checkpoint_time(&anchor)?;
        if from >= to.min(time) {
            return Err(ExportError::BadRequest(format!(
                "the period must start before the checkpoint's time {time}"
            )));
        }
    }
    if let Some(system) = &opts.system
        && !state.store.system_ids().await?.contains(system)
    {
        return Err(ExportError::NotFound(format!(
            "no evidence for system {system:?}"
        )));
    }
    Ok(anchor)
}

/// The OSCAL assessment results alone (`GET /v1/export/oscal`), anchored like the bundle.
pub async fn assessment_results(
    state: &AppState,
    opts: &ExportOptions,
) -> Result<Value, ExportError> {
    let anchor = start(state, opts).await?;
    let cancel = Cancel::never();
    let selection = scan::scan(state, &anchor, opts.system.as_deref(), &cancel).await?;
    let built = build::build(state, opts, &anchor, &selection, None, &cancel).await?;
    Ok(built.oscal.0)
}

/// Writes the bundle for `opts` as `bundle.tar.gz` bytes to `out` (a file, a channel); returns
/// `out` and the number of bytes written.
pub async fn export_bundle<W: Write + Send + 'static>(
    state: &AppState,
    opts: &ExportOptions,
    out: W,
) -> Result<(W, u64), ExportError> {
    let anchor = start(state, opts).await?;
    let staging = stage(state, opts, &anchor, &Cancel::never()).await?;
    archive(staging, anchor.time, out).await
}

/// Builds every file of the bundle in a staging directory.
async fn stage(
    state: &AppState,
    opts: &ExportOptions,
    anchor: &scan::Anchor,
    cancel: &Cancel,
) -> Result<Staging, ExportError> {
    let selection = scan::scan(state, anchor, opts.system.as_deref(), cancel).await?;
    let mut staging = Staging::new()?;
    let built = build::build(state, opts, anchor, &selection, Some(&mut staging), cancel).await?;
    let time = build::checkpoint_time(anchor)?;
    let size = anchor.stored.size;

    let (log, clock) = state.keys.signers();
    staging.put(layout::BUNDLED_POLICY, state.keys.trust_policy().as_bytes())?;
    staging.put("trust/log.pub.pem", log.public_key_pem().as_bytes())?;
    staging.put("trust/clock.pub.pem", clock.public_key_pem().as_bytes())?;
    staging.put(layout::CHECKPOINT, anchor.stored.note.as_bytes())?;
    staging.put(layout::CHECKPOINT_BODY, anchor.body.as_bytes())?;
    staging.put(layout::CHECKPOINT_SIG, &anchor.log_sig)?;
    staging.put(layout::COSIG_MSG, anchor.cosig_msg.as_bytes())?;
    staging.put(layout::COSIG_SIG, &anchor.cosig_sig)?;
    staging.put(layout::OSCAL_AR, &pretty_json(&built.oscal.0)?)?;
    let mut period = None;
    if let Some((report, from, to)) = &built.period {
        staging.put(layout::PERIOD_REPORT, &pretty_json(report)?)?;
        period = Some(layout::ManifestPeriod {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    staging.put(
        "oscal/catalog.json",
        &pretty_json(&oscal::catalog(&state.catalog))?,
    )?;
    let mut catalog_files = Vec::new();
    for (name, text) in state.catalog.data_files() {
        let path = format!("catalog/{name}");
        staging.put(&path, text.as_bytes())?;
        catalog_files.push(path);
    }
    staging.put("README.md", readme::readme(state, anchor, opts).as_bytes())?;

    // The typed manifest the verifier parses: writer and reader share one definition.
    let manifest = layout::Manifest {
        format: layout::FORMAT.to_owned(),
        generator: concat!("aims-server ", env!("CARGO_PKG_VERSION")).to_owned(),
        origin: state.keys.origin().to_owned(),
        tree_size: size,
        root: B64.encode(anchor.stored.root),
        checkpoint_time: time.to_string(),
        checkpoint_unix: anchor.time,
        catalog: layout::ManifestCatalog {
            version: state.catalog.version().to_owned(),
            framework: state.catalog.framework().to_owned(),
            sha256: state.catalog.hash().as_str().to_owned(),
            files: catalog_files,
        },
        scope: if opts.system.is_some() {
            layout::Scope::Partial
        } else {
            layout::Scope::Full
        },
        system: opts.system.clone(),
        since: opts.since,
        period,
        counts: layout::ManifestCounts {
            entries: built.entries,
            proofs: built.proofs,
            blobs: built.blobs,
            observations: built.oscal.1 as u64,
            confirmations: built.confirmations,
            listings: built.listings,
        },
        files: staging.paths().map(str::to_owned).collect(),
    };
    let manifest = serde_json::to_value(&manifest).map_err(ledger_err)?;
    staging.put(layout::MANIFEST, &pretty_json(&manifest)?)?;
    let sums = staging.sums();
    staging.put(layout::SHA256SUMS, sums.as_bytes())?;
    Ok(staging)
}

/// Streams the staged bundle as tar.gz into `out` on a blocking thread.
async fn archive<W: Write + Send + 'static>(
    staging: Staging,
    mtime: u64,
    out: W,
) -> Result<(W, u64), ExportError> {
    tokio::task::spawn_blocking(move || {
        let mut counted = Counting { inner: out, n: 0 };
        counted = staging.write_tar_gz(counted, mtime)?;
        Ok((counted.inner, counted.n))
    })
    .await
    .map_err(|e| ledger_err(format!("archive task failed: {e}")))?
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pretty_json(v: &Value) -> Result<Vec<u8>, ExportError> {
    let mut out = serde_json::to_vec_pretty(v).map_err(ledger_err)?;
    out.push(b'\n');
    Ok(out)
}

/// Chunks of the archive buffered between the export and a slow client (at 64 KiB each).
const CHANNEL_CHUNKS: usize = 16;

/// Starts the export of `opts` for an HTTP response: the checks that can refuse the request
/// run first; then the bundle is staged and streamed to the returned body. Errors after that
/// point abort the body (the client sees a truncated transfer, never a valid-looking bundle);
/// a client that leaves stops the export.
pub async fn stream_bundle(state: AppState, opts: ExportOptions) -> Result<Body, ExportError> {
    let anchor = start(&state, &opts).await?;
    tracing::info!(
        size = anchor.stored.size,
        system = opts.system.as_deref().unwrap_or("*"),
        "export started"
    );
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_CHUNKS);
    let cancel = Cancel(Some(tx.clone()));
    tokio::spawn(async move {
        let result = async {
            let staging = stage(&state, &opts, &anchor, &cancel).await?;
            archive(staging, anchor.time, ChannelWriter::new(tx.clone())).await
        }
        .await;
        match result {
            Ok((_, n)) => tracing::info!(bytes = n, "export streamed"),
            Err(ExportError::Cancelled) => tracing::info!("export cancelled: the client left"),
            Err(ExportError::Archive(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::info!("export cancelled: the client left")
            }
            Err(e) => {
                tracing::error!(error = %e, "export failed while streaming");
                let _ = tx
                    .send(Err(std::io::Error::other(format!("export failed: {e}"))))
                    .await;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(Body::from_stream(stream))
}

// ---- HTTP ----------------------------------------------------------------------------------------

fn export_options(q: &HashMap<String, String>) -> Result<ExportOptions, ApiError> {
    for k in q.keys() {
        if !["system", "since", "from", "to", "receipts", "blobs"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "unknown parameter {k:?} (expected system, since, from, to, receipts, blobs)"
                ),
            ));
        }
    }
    let period = match (q.get("from"), q.get("to")) {
        (None, None) => None,
        (Some(from), to) => Some(crate::history::parse_period(
            from,
            to.map(String::as_str),
            Timestamp::now(),
        )?),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "from: required when to is given",
            ));
        }
    };
    let system = match q.get("system") {
        Some(s) => {
            aims_model::record::validate_ident("system", s)
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
            Some(s.clone())
        }
        None => None,
    };
    let since = q
        .get("since")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_query", "since must be a positive integer")
            })
        })
        .transpose()?;
    let flag = |name: &str, default: bool| match q.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be true or false"),
        )),
    };
    Ok(ExportOptions {
        system,
        since,
        period,
        receipts: flag("receipts", false)?,
        blobs: flag("blobs", true)?,
    })
}

/// `GET /v1/export[?system=ID][&since=M][&from=&to=][&receipts=true]`: the bundle (auditor or
/// admin), streamed.
pub async fn get_export(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require_export()?;
    crate::assess::flush(&state).await?;
    let opts = export_options(&q)?;
    let body = stream_bundle(state, opts).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=bundle.tar.gz",
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /v1/export/oscal[?system=ID]`: the OSCAL assessment results alone (auditor or admin),
/// anchored to the newest checkpoint like the bundle.
pub async fn get_export_oscal(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require_export()?;
    crate::assess::flush(&state).await?;
    let opts = export_options(&q)?;
    if opts.since.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "since applies to the bundle only",
        ));
    }
    Ok(Json(assessment_results(&state, &opts).await?))
}

/// Where a bundle keeps confirmation listings, by digest: `confirmations/<sha256>.json`.
pub const LISTINGS_DIR: &str = layout::LISTINGS_DIR;

// ---- CLI -----------------------------------------------------------------------------------------

/// The state `aims-server export` needs, opened without signing anything and without creating a
/// database or keys that do not exist (a mistyped `--database` fails instead of exporting an
/// empty log). A running server may hold the same SQLite file: WAL allows a concurrent reader.
pub async fn open_state(settings: &Settings) -> Result<AppState, ServerError> {
    let db = aims_store::DatabaseUrl::parse(&settings.database).map_err(|source| {
        ServerError::Store {
            url: aims_store::redact_url(&settings.database),
            source,
        }
    })?;
    if let Some(path) = db.sqlite_path()
        && !path.exists()
    {
        return Err(ServerError::Startup(format!(
            "database {} does not exist",
            path.display()
        )));
    }
    let dir = settings.keys_dir();
    if std::env::var_os("AIMS_SERVER_LOG_KEY").is_none() && !dir.join("log.key").exists() {
        return Err(ServerError::Startup(format!(
            "no log key in {}: is --database (or keys_dir) right?",
            dir.display()
        )));
    }
    let store = crate::open_store(&settings.database).await?;
    let catalog = match &settings.catalog_dir {
        Some(d) => Catalog::load_dir(d)?,
        None => Catalog::embedded()?,
    };
    let keys = keys::LogKeys::load_or_create(&dir, &settings.origin)?;
    Ok(AppState::new(store, catalog, keys, settings))
}
