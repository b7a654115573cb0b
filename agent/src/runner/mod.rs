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
//!
//! This module builds the agent and orchestrates; [`source_loop`] is one source's cycle and its
//! `run` loop, [`shipper_loop`] the `run`-mode delivery loop, [`liveness`] the heartbeats and
//! confirmations, and [`crate::report`] what a run did.

mod liveness;
mod shipper_loop;
mod source_loop;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aims_catalog::Catalog;
use aims_collect::{Collector, SourceConfig};
use futures_util::StreamExt as _;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument as _;

use crate::config::AgentConfig;
use crate::confirm::PendingConfirmation;
use crate::shipper::{RetryPolicy, ShipError, Shipper, ShipperSettings};
use crate::spool::{Spool, SpoolError};
use liveness::{confirm_if_due, heartbeat_of, send_heartbeats};
use source_loop::{Cycled, Loops, cycle, cycle_span, record_cycle};

pub use crate::report::{RunReport, SourceReport, summary_line};
pub use source_loop::CycleError;

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

/// Polls every source once (bounded concurrency), spools, saves cursors, then ships everything
/// pending. See the module docs for the ordering contract.
pub async fn run_once(cfg: &AgentConfig, opts: &RunOptions) -> Result<RunReport, RunError> {
    let agent = Agent::build(cfg, opts).await?;
    let limit = cfg.max_concurrent_fetches.max(1);
    let polled: Vec<Cycled> = futures_util::stream::iter(agent.collectors.iter())
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
                        let error = format!("cannot build source: {e}");
                        (SourceReport::failed_now(src.id(), error), None)
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
    let loops = Loops {
        stop: stop_rx.clone(),
        wake: Arc::new(Notify::new()),
        permits: Arc::new(Semaphore::new(cfg.max_concurrent_fetches.max(1))),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (idx, (src, built)) in agent.collectors.iter().enumerate() {
        match built {
            Ok(c) => {
                let task = source_loop::source_task(agent.clone(), idx, c.clone(), loops.clone());
                tasks.spawn(task);
            }
            Err(e) => {
                tracing::error!(collector.id = %src.id(), error = %e, "source cannot be built, it will not be polled");
            }
        }
    }
    let ship_interval = opts.ship_interval.max(Duration::from_secs(1));
    tasks.spawn(shipper_loop::shipper_task(
        agent.clone(),
        stop_rx,
        loops.wake,
        ship_interval,
    ));

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
