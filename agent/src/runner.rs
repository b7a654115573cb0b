//! Poll cycles and the long-running agent.
//!
//! One cycle for one source: load the cursor (`spool_dir/cursors/<id>.json`) → `aims_collect::poll`
//! → [`Spool::append`] (fsynced) → `Cursor::save` (atomic). **This order is the durability
//! contract**: the cursor only ever describes records that are already durable in the spool. A
//! crash after the append and before the cursor save re-produces those records next cycle; the
//! server deduplicates them by record id, so nothing is lost and nothing is counted twice. A
//! source whose poll fails keeps its old cursor and is reported; other sources carry on.
//!
//! Every poll has a deadline (`poll_timeout_secs`, issue 18 A5): a source that never finishes
//! (endless pagination, a body trickling one byte at a time, long rate-limit waits) is abandoned
//! when it passes — safe, since a poll writes nothing — and reported failing for that cycle. A
//! full spool (`spool_max_bytes`) refuses the cycle's records: the cursor stays, so they are
//! collected again later, and the `aims_agent_spool_full` gauge is 1.
//!
//! - [`run_once`]: every source once (at most `max_concurrent_fetches` at a time), then ship
//!   everything pending, including batches left by earlier runs.
//! - [`run`]: one tokio task per source, each on its `interval_secs` with ±10% jitter, a
//!   semaphore capping concurrent polls, and one shipper loop woken after every poll that spooled
//!   something and on a timer. On shutdown a poll in progress is abandoned (it has written
//!   nothing yet), while a spool append or cursor save in progress runs to completion on the
//!   blocking pool: no half-written file is ever left (and spool writes are atomic anyway).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aims_catalog::Catalog;
use aims_collect::{Collector, Cursor, PollContext, SourceConfig};
use aims_model::Timestamp;
use futures_util::StreamExt as _;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument as _;

use crate::config::AgentConfig;
use crate::confirm::{self, PendingConfirmation};
use crate::shipper::{RetryPolicy, ShipError, ShipReport, Shipper, ShipperSettings};
use crate::spool::{self, Spool, SpoolError};

/// Knobs that are not part of the configuration file.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Retry bounds for each shipping pass.
    pub retry: RetryPolicy,
    /// How often the shipper loop wakes on its own in [`run`].
    pub ship_interval: Duration,
    /// When set (OTLP export is on), the agent's counters are also published on this meter
    /// ([`crate::metrics::register_otel`]).
    pub meter: Option<opentelemetry::metrics::Meter>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            ship_interval: Duration::from_secs(30),
            meter: None,
        }
    }
}

/// One source's part of a [`RunReport`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// The source id.
    pub id: String,
    /// Artifacts listed.
    pub listed: usize,
    /// Artifacts fetched and hashed (changed or new).
    pub fetched: usize,
    /// Artifacts unchanged since the cursor.
    pub unchanged: usize,
    /// Artifacts gone since the cursor.
    pub gone: usize,
    /// Bytes hashed while fetching.
    pub bytes_hashed: u64,
    /// Records written to the spool.
    pub spooled: usize,
    /// Records of this source acknowledged by the server during this run.
    pub shipped: usize,
    /// Artifacts a confirmation sent during this run covered (0 when none was due).
    pub confirmed: usize,
    /// When the poll ran.
    pub polled_at: Option<Timestamp>,
    /// Problems; non-empty means the source failed (fully or partly).
    pub errors: Vec<String>,
}

impl SourceReport {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ..Self::default()
        }
    }

    /// True when the source reported any error.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// What [`run_once`] did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// One entry per configured source, in configuration order.
    pub sources: Vec<SourceReport>,
    /// The shipping pass.
    pub ship: ShipReport,
}

impl RunReport {
    /// True when every source polled cleanly and every spooled record was acknowledged.
    pub fn success(&self) -> bool {
        self.sources.iter().all(|s| !s.failed()) && self.ship.all_delivered()
    }
}

/// Failures that stop a run as a whole (a single source failing is not one of them).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The catalog cannot be loaded.
    #[error("catalog: {0}")]
    Catalog(String),
    /// A state directory cannot be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The shipper cannot be set up or its spool failed.
    #[error(transparent)]
    Ship(#[from] ShipError),
    /// The metrics listener cannot be bound.
    #[error("metrics_listen {0}")]
    Metrics(String),
}

/// A source's collector, or why it could not be built.
type Built = Result<Arc<dyn Collector>, crate::sources::BuildError>;

/// Everything a cycle needs, built once.
struct Agent {
    cfg: AgentConfig,
    catalog: Arc<Catalog>,
    spool: Spool,
    shipper: Arc<Shipper>,
    /// One entry per configured source: the collector, or why it could not be built.
    collectors: Vec<(SourceConfig, Built)>,
    /// Confirmations waiting for their source's records to be acknowledged (`run` mode), by
    /// source id; a newer poll replaces an older one.
    pending: std::sync::Mutex<std::collections::HashMap<String, PendingConfirmation>>,
}

impl Agent {
    async fn build(cfg: &AgentConfig, opts: &RunOptions) -> Result<Self, RunError> {
        // State directories are private (0700): records, cursors and caches describe what the
        // sources hold. `spool_dir` itself keeps its mode when it already exists.
        for d in [
            cfg.spool_path(),
            cfg.spool_dir.join("cursors"),
            cfg.spool_dir.join("cache"),
        ] {
            aims_fsutil::create_private_dir_all(&d)
                .and_then(|()| aims_fsutil::make_private_dir(&d))
                .map_err(|source| RunError::Dir { path: d, source })?;
        }
        let catalog = match &cfg.catalog_dir {
            Some(dir) => Catalog::load_dir(dir)
                .map_err(|e| RunError::Catalog(format!("{}: {e}", dir.display())))?,
            None => Catalog::embedded().map_err(|e| RunError::Catalog(e.to_string()))?,
        };
        let spool =
            Spool::open_with_limit(cfg.spool_path(), cfg.batch_size, Some(cfg.spool_max_bytes))?;
        if let Some(meter) = &opts.meter {
            crate::metrics::register_otel(meter, spool.clone());
        }
        let settings = ShipperSettings::from_config(cfg, opts.retry.clone())?;
        let shipper = Arc::new(Shipper::new(settings, spool.clone())?);
        let mut collectors = Vec::with_capacity(cfg.sources.len());
        for s in &cfg.sources {
            let built = crate::sources::build_collector(s, &cfg.cache_path(s.id())).await;
            collectors.push((s.clone(), built));
        }
        Ok(Self {
            cfg: cfg.clone(),
            catalog: Arc::new(catalog),
            spool,
            shipper,
            collectors,
            pending: std::sync::Mutex::default(),
        })
    }
}

/// Why one source's cycle, or its confirmation, did not complete: reported for that source
/// (never fatal to the others).
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// A blocking task (cursor or confirmation state IO) panicked or was cancelled.
    #[error("{what} task failed: {reason}")]
    Task {
        /// Which.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The cursor file cannot be read.
    #[error("cannot load cursor: {0}")]
    Cursor(#[from] aims_collect::cursor::CursorError),
    /// The source's system rule is invalid.
    #[error("invalid system rule: {0}")]
    SystemRule(#[from] aims_collect::ConfigError),
    /// The poll passed `poll_timeout_secs`.
    #[error("poll abandoned after poll_timeout_secs ({secs} s): the source did not finish in time")]
    Deadline {
        /// The deadline.
        secs: u64,
    },
    /// The poll failed.
    #[error("poll failed: {0}")]
    Poll(#[from] aims_collect::CollectError),
    /// The confirmation state or request cannot be made.
    #[error("confirmation state: {0}")]
    Confirm(#[from] confirm::ConfirmError),
    /// The server did not take the confirmation.
    #[error(transparent)]
    Call(#[from] crate::shipper::CallError),
}

fn task(what: &'static str) -> impl Fn(tokio::task::JoinError) -> CycleError {
    move |e| CycleError::Task {
        what,
        reason: e.to_string(),
    }
}

/// The collected part of a cycle, before anything is written.
struct Polled {
    report: SourceReport,
    records: Vec<aims_model::EvidenceRecord>,
    cursor: Cursor,
    pending: PendingConfirmation,
}

/// Loads the cursor and polls. Writes nothing, so it can be abandoned at any point.
async fn poll_source(
    agent: &Agent,
    src: &SourceConfig,
    collector: &dyn Collector,
) -> Result<Polled, CycleError> {
    let id = src.id().to_owned();
    let cursor_path = agent.cfg.cursor_path(&id);
    let cursor = tokio::task::spawn_blocking(move || Cursor::load(&cursor_path))
        .await
        .map_err(task("cursor load"))??;
    let rule = src.system_rule()?;
    let now = Timestamp::now();
    let ctx = PollContext {
        agent_id: &agent.cfg.agent.id,
        catalog: &agent.catalog,
        system_rule: &rule,
        now,
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    let deadline = agent.cfg.poll_timeout();
    let outcome = tokio::time::timeout(deadline, aims_collect::poll(collector, &cursor, &ctx))
        .await
        .map_err(|_| {
            tracing::warn!(
                collector.id = %id,
                poll_timeout_secs = deadline.as_secs(),
                "poll deadline passed, poll abandoned"
            );
            CycleError::Deadline {
                secs: deadline.as_secs(),
            }
        })??;
    let s = &outcome.stats;
    let mut report = SourceReport::new(&id);
    report.listed = s.listed;
    report.fetched = s.fetched;
    report.unchanged = s.unchanged;
    report.gone = s.gone;
    report.bytes_hashed = s.bytes_hashed;
    report.errors.extend(s.errors.iter().cloned());
    report.polled_at = Some(now);
    Ok(Polled {
        report,
        records: outcome.records,
        cursor: outcome.cursor,
        pending: PendingConfirmation {
            source: src.source_ref(),
            observed_at: now,
            artifacts: outcome.confirmable,
            unchanged: s.unchanged,
        },
    })
}

/// Appends to the spool, then saves the cursor: in this order, and each step to completion
/// (both run on the blocking pool, which finishes them even if the caller is cancelled). The
/// poll's confirmation is returned only when its records are durable.
async fn commit(
    agent: &Agent,
    id: &str,
    polled: Polled,
) -> (SourceReport, Option<PendingConfirmation>) {
    let Polled {
        mut report,
        records,
        cursor,
        pending,
    } = polled;
    let n = records.len();
    let sid = id.to_owned();
    if n > 0 {
        match spool::blocking(&agent.spool, move |s| s.append(&sid, &records)).await {
            Ok(paths) => {
                report.spooled = n;
                tracing::info!(collector.id = %id, records = n, files = paths.len(), "records spooled");
            }
            Err(e @ SpoolError::Full { .. }) => {
                // Nothing written: the old cursor makes a later cycle produce them again.
                tracing::error!(
                    collector.id = %id,
                    records = n,
                    error = %e,
                    "spool full, records not written and cursor not advanced"
                );
                report.errors.push(e.to_string());
                return (report, None);
            }
            Err(e) => {
                // Nothing durable: keep the old cursor so the next cycle produces them again.
                tracing::error!(collector.id = %id, error = %e, "spool write failed, cursor not advanced");
                report.errors.push(format!("spool write failed: {e}"));
                return (report, None);
            }
        }
    }
    let path = agent.cfg.cursor_path(id);
    let saved = tokio::task::spawn_blocking(move || cursor.save(&path))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = saved {
        // The records are durable; an old cursor only means they are sent again (deduplicated).
        tracing::warn!(collector.id = %id, error = %e, "cursor save failed, records will be re-sent");
        report.errors.push(format!("cursor save failed: {e}"));
    }
    (report, Some(pending))
}

/// The span of one poll cycle; [`record_cycle`] fills in its outcome.
fn cycle_span(src: &SourceConfig) -> tracing::Span {
    tracing::info_span!(
        "poll_cycle",
        collector.id = %src.id(),
        collector.kind = %src.source_type(),
        listed = tracing::field::Empty,
        fetched = tracing::field::Empty,
        spooled = tracing::field::Empty,
        errors = tracing::field::Empty,
    )
}

fn record_cycle(span: &tracing::Span, r: &SourceReport) {
    span.record("listed", r.listed);
    span.record("fetched", r.fetched);
    span.record("spooled", r.spooled);
    span.record("errors", r.errors.len());
}

async fn cycle(
    agent: &Agent,
    src: &SourceConfig,
    collector: &dyn Collector,
) -> (SourceReport, Option<PendingConfirmation>) {
    let id = src.id();
    let (report, pending) = match poll_source(agent, src, collector).await {
        Ok(polled) => commit(agent, id, polled).await,
        Err(e) => {
            tracing::warn!(collector.id = %id, error = %e, "source poll failed");
            let mut r = SourceReport::new(id);
            r.errors.push(e.to_string());
            r.polled_at = Some(Timestamp::now());
            (r, None)
        }
    };
    crate::metrics::record_poll(&report);
    (report, pending)
}

/// Sends the confirmation of `pending` if its source is due one (see [`crate::confirm`]);
/// returns how many artifacts it covered, or the error to report.
async fn confirm_if_due(agent: &Agent, pending: &PendingConfirmation) -> Result<usize, CycleError> {
    let id = pending.source.id.clone();
    let path = agent.cfg.confirmed_path(&id);
    let interval = Duration::from_secs(agent.cfg.confirm_interval_secs.max(1));
    let at = pending.observed_at;
    let p = path.clone();
    let due = tokio::task::spawn_blocking(move || confirm::due(&p, at, interval))
        .await
        .map_err(task("confirmation state"))??;
    if !due {
        return Ok(0);
    }
    if pending.unchanged == 0 {
        // Everything listed was just shipped as new records: they are observations already.
        let p = path.clone();
        tokio::task::spawn_blocking(move || confirm::save(&p, at))
            .await
            .map_err(task("confirmation state"))??;
        return Ok(0);
    }
    let req = confirm::request(&agent.cfg.agent.id, pending)?;
    let resp = agent.shipper.confirm(&req).await?;
    tokio::task::spawn_blocking(move || confirm::save(&path, at))
        .await
        .map_err(task("confirmation state"))??;
    tracing::info!(
        collector.id = %id,
        artifacts = req.artifacts.len(),
        matched = resp.matched,
        leaf = resp.leaf_index,
        "source confirmed"
    );
    Ok(req.artifacts.len())
}

/// The heartbeat of one poll.
fn heartbeat_of(src: &SourceConfig, r: &SourceReport) -> Option<aims_model::wire::SourceHeartbeat> {
    Some(aims_model::wire::SourceHeartbeat {
        source: src.source_ref(),
        interval_secs: src.interval_secs(),
        polled_at: r.polled_at?,
        ok: !r.failed(),
        error: r.failed().then(|| confirm::redact(&r.errors.join("; "))),
        listed: r.listed as u64,
        records: r.spooled as u64,
    })
}

/// Reports polls to the server; a failure is logged, never fatal (the server also learns of the
/// source from its evidence and confirmations).
async fn send_heartbeats(agent: &Agent, beats: Vec<aims_model::wire::SourceHeartbeat>) {
    if beats.is_empty() {
        return;
    }
    let req = aims_model::wire::HeartbeatRequest {
        agent: agent.cfg.agent.id.clone(),
        sources: beats,
    };
    if let Err(e) = agent.shipper.heartbeat(&req).await {
        tracing::warn!(error = %e, "heartbeat not delivered");
    }
}

/// Polls every source once (bounded concurrency), spools, saves cursors, then ships everything
/// pending. See the module docs for the ordering contract.
pub async fn run_once(cfg: &AgentConfig, opts: &RunOptions) -> Result<RunReport, RunError> {
    let agent = Agent::build(cfg, opts).await?;
    let limit = cfg.max_concurrent_fetches.max(1);
    let polled: Vec<(SourceReport, Option<PendingConfirmation>)> = futures_util::stream::iter(
        agent.collectors.iter(),
    )
    .map(|(src, built)| {
        let agent = &agent;
        async move {
            match built {
                Ok(c) => {
                    let span = cycle_span(src);
                    let out = cycle(agent, src, c.as_ref()).instrument(span.clone()).await;
                    record_cycle(&span, &out.0);
                    out
                }
                Err(e) => {
                    tracing::warn!(collector.id = %src.id(), error = %e, "source cannot be built");
                    let mut r = SourceReport::new(src.id());
                    r.errors.push(format!("cannot build source: {e}"));
                    r.polled_at = Some(Timestamp::now());
                    (r, None)
                }
            }
        }
    })
    .buffered(limit)
    .collect()
    .await;
    let ship = agent.shipper.ship_pending().await?;
    crate::metrics::record_ship(&ship);
    let mut sources = Vec::with_capacity(polled.len());
    // The polls first (a source that was silent is heard of before its confirmation).
    let beats = polled
        .iter()
        .zip(&agent.collectors)
        .filter_map(|((s, _), (src, _))| heartbeat_of(src, s))
        .collect();
    send_heartbeats(&agent, beats).await;
    // Confirmations go only once every spooled record is in the ledger.
    let drained = ship.files_remaining == 0;
    for (mut s, pending) in polled {
        s.shipped = ship.acked_by_source.get(&s.id).copied().unwrap_or(0);
        if let Some(p) = pending.filter(|_| drained) {
            match confirm_if_due(&agent, &p).await {
                Ok(n) => s.confirmed = n,
                Err(e) => {
                    tracing::warn!(collector.id = %s.id, error = %e, "confirmation failed");
                    s.errors.push(format!("confirmation failed: {e}"));
                }
            }
        }
        sources.push(s);
    }
    Ok(RunReport { sources, ship })
}

/// Runs until `shutdown` completes: one task per source on its interval (±10% jitter) and one
/// shipper loop. Returns after every task has stopped.
pub async fn run(
    cfg: &AgentConfig,
    opts: &RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let agent = Arc::new(Agent::build(cfg, opts).await?);
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(addr) = &cfg.metrics_listen {
        crate::metrics::serve(addr, agent.spool.clone(), stop_rx.clone())
            .await
            .map_err(|e| RunError::Metrics(format!("{addr}: {e}")))?;
    }
    let wake = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(cfg.max_concurrent_fetches.max(1)));
    let mut tasks = tokio::task::JoinSet::new();

    for (idx, (src, built)) in agent.collectors.iter().enumerate() {
        let collector = match built {
            Ok(c) => c.clone(),
            Err(e) => {
                tracing::error!(collector.id = %src.id(), error = %e, "source cannot be built, it will not be polled");
                continue;
            }
        };
        let agent = agent.clone();
        let mut stop = stop_rx.clone();
        let wake = wake.clone();
        let permits = permits.clone();
        let interval = Duration::from_secs(src.interval_secs().max(1));
        tasks.spawn(async move {
            let Some((src, _)) = agent.collectors.get(idx) else {
                return;
            };
            let id = src.id().to_owned();
            tracing::info!(collector.id = %id, interval_secs = interval.as_secs(), "source task started");
            loop {
                let (span, polled) = {
                    let permit = tokio::select! {
                        p = permits.clone().acquire_owned() => p,
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    let Ok(_permit) = permit else { break };
                    let span = cycle_span(src);
                    let polled = tokio::select! {
                        r = poll_source(&agent, src, collector.as_ref()).instrument(span.clone()) => r,
                        // Abandoning the poll is safe: it has written nothing.
                        _ = stop.wait_for(|s| *s) => break,
                    };
                    (span, polled)
                };
                let (report, pending) = match polled {
                    // Not cancellable: spool append then cursor save, to completion.
                    Ok(p) => commit(&agent, &id, p).instrument(span.clone()).await,
                    Err(e) => {
                        tracing::warn!(collector.id = %id, error = %e, "source poll failed");
                        let mut r = SourceReport::new(&id);
                        r.errors.push(e.to_string());
                        r.polled_at = Some(Timestamp::now());
                        (r, None)
                    }
                };
                if let Some(p) = pending
                    && let Ok(mut map) = agent.pending.lock()
                {
                    map.insert(id.clone(), p);
                }
                send_heartbeats(&agent, heartbeat_of(src, &report).into_iter().collect()).await;
                crate::metrics::record_poll(&report);
                record_cycle(&span, &report);
                drop(span);
                tracing::info!(
                    collector.id = %id,
                    listed = report.listed,
                    fetched = report.fetched,
                    unchanged = report.unchanged,
                    gone = report.gone,
                    spooled = report.spooled,
                    errors = report.errors.len(),
                    "poll cycle done"
                );
                // The shipper also sends the confirmations that are due.
                wake.notify_one();
                let delay = jittered(interval);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            tracing::info!(collector.id = %id, "source task stopped");
        });
    }

    {
        let agent = agent.clone();
        let mut stop = stop_rx.clone();
        let wake = wake.clone();
        let ship_interval = opts.ship_interval.max(Duration::from_secs(1));
        tasks.spawn(async move {
            let mut failures = 0u32;
            // The first pass runs at once: it drains batches left by an earlier process.
            let mut first = true;
            loop {
                if !first {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(ship_interval) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                first = false;
                let res = tokio::select! {
                    r = agent.shipper.ship_pending() => r,
                    // Cancelling mid-request is safe: a batch is deleted only after its ack,
                    // and spool file operations finish on the blocking pool.
                    _ = stop.wait_for(|s| *s) => break,
                };
                if let Ok(r) = &res {
                    crate::metrics::record_ship(r);
                }
                let pause = match res {
                    Ok(r) if r.files_remaining == 0 => {
                        failures = 0;
                        // Every record is in the ledger: send the confirmations waiting on it.
                        let waiting: Vec<PendingConfirmation> = agent
                            .pending
                            .lock()
                            .map(|mut m| m.drain().map(|(_, p)| p).collect())
                            .unwrap_or_default();
                        for p in waiting {
                            if let Err(e) = confirm_if_due(&agent, &p).await {
                                tracing::warn!(collector.id = %p.source.id, error = %e, "confirmation failed, retried after the next poll");
                            }
                        }
                        Duration::ZERO
                    }
                    Ok(r) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(
                            remaining = r.files_remaining,
                            errors = r.errors.len(),
                            "shipping incomplete, backing off"
                        );
                        backoff_between_passes(failures)
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::error!(error = %e, "shipping failed");
                        backoff_between_passes(failures)
                    }
                };
                if !pause.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
            tracing::info!("shipper stopped");
        });
    }

    shutdown.await;
    tracing::info!("shutdown requested, finishing current writes");
    let _ = stop_tx.send(true);
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "agent task failed");
        }
    }
    Ok(())
}

/// `d` ± 10%, uniformly.
fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 10;
    if spread == 0 {
        return d;
    }
    let r = getrandom::u64().unwrap_or(0) % (2 * spread + 1);
    Duration::from_millis(ms - spread + r)
}

/// Pause between failed shipping passes: 5 s doubling, capped at 5 min.
fn backoff_between_passes(failures: u32) -> Duration {
    Duration::from_secs(5)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(6))
        .min(Duration::from_secs(300))
}

/// Per-source one-line summary, e.g. `ml-repo: 12 listed, 3 fetched, 9 unchanged, 0 gone, 3 shipped`.
pub fn summary_line(s: &SourceReport) -> String {
    let mut line = format!(
        "{}: {} listed, {} fetched, {} unchanged, {} gone, {} shipped",
        s.id, s.listed, s.fetched, s.unchanged, s.gone, s.shipped
    );
    if s.confirmed > 0 {
        line.push_str(&format!(", {} confirmed", s.confirmed));
    }
    if s.spooled != s.shipped {
        line.push_str(&format!(" ({} spooled)", s.spooled));
    }
    if !s.errors.is_empty() {
        line.push_str(&format!(
            ", {} errors: {}",
            s.errors.len(),
            s.errors.join("; ")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(300));
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
        }
        assert_eq!(jittered(Duration::from_millis(5)), Duration::from_millis(5));
    }

    #[test]
    fn pass_backoff_is_capped() {
        assert_eq!(backoff_between_passes(1), Duration::from_secs(5));
        assert_eq!(backoff_between_passes(2), Duration::from_secs(10));
        assert_eq!(backoff_between_passes(50), Duration::from_secs(300));
    }
}
