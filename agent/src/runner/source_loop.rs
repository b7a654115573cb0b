//! One source's cycle: load the cursor → poll → spool append → cursor save, in this order (the
//! durability contract of [`super`]), and the loop that repeats it on the source's interval in
//! `run` mode.

use std::sync::Arc;
use std::time::Duration;

use aims_collect::{Collector, Cursor, PollContext, SourceConfig};
use aims_model::Timestamp;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument as _;

use super::Agent;
use super::liveness::{heartbeat_of, send_heartbeats};
use crate::confirm::{self, PendingConfirmation};
use crate::report::SourceReport;
use crate::spool::{self, SpoolError};

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

/// Maps a failed blocking task to [`CycleError::Task`].
pub(super) fn task(what: &'static str) -> impl Fn(tokio::task::JoinError) -> CycleError {
    move |e| CycleError::Task {
        what,
        reason: e.to_string(),
    }
}

/// What a cycle hands on: the source's report, and its confirmation once its records are durable.
pub(super) type Cycled = (SourceReport, Option<PendingConfirmation>);

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
async fn commit(agent: &Agent, id: &str, polled: Polled) -> Cycled {
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

/// Commits a successful poll; reports a failed one for the source (its old cursor stays).
async fn settle(agent: &Agent, id: &str, polled: Result<Polled, CycleError>) -> Cycled {
    match polled {
        Ok(p) => commit(agent, id, p).await,
        Err(e) => {
            tracing::warn!(collector.id = %id, error = %e, "source poll failed");
            (SourceReport::failed_now(id, e.to_string()), None)
        }
    }
}

/// The span of one poll cycle; [`record_cycle`] fills in its outcome.
pub(super) fn cycle_span(src: &SourceConfig) -> tracing::Span {
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

pub(super) fn record_cycle(span: &tracing::Span, r: &SourceReport) {
    span.record("listed", r.listed);
    span.record("fetched", r.fetched);
    span.record("spooled", r.spooled);
    span.record("errors", r.errors.len());
}

/// One cycle of `src` as [`super::run_once`] runs it: poll, then commit, to completion.
pub(super) async fn cycle(agent: &Agent, src: &SourceConfig, collector: &dyn Collector) -> Cycled {
    let polled = poll_source(agent, src, collector).await;
    let (report, pending) = settle(agent, src.id(), polled).await;
    crate::metrics::record_poll(&report);
    (report, pending)
}

/// What the per-source loops of [`super::run`] share.
#[derive(Clone)]
pub(super) struct Loops {
    /// Becomes true on shutdown.
    pub stop: watch::Receiver<bool>,
    /// Wakes the shipper loop.
    pub wake: Arc<Notify>,
    /// Caps concurrent polls (`max_concurrent_fetches`).
    pub permits: Arc<Semaphore>,
}

/// The `run`-mode loop of the source at `idx` in `agent.collectors`: a cycle every
/// `interval_secs` (±10% jitter) until shutdown. A poll in progress is abandoned on shutdown (it
/// has written nothing); a commit in progress is not.
pub(super) async fn source_task(
    agent: Arc<Agent>,
    idx: usize,
    collector: Arc<dyn Collector>,
    loops: Loops,
) {
    let Loops {
        mut stop,
        wake,
        permits,
    } = loops;
    let Some((src, _)) = agent.collectors.get(idx) else {
        return;
    };
    let interval = Duration::from_secs(src.interval_secs().max(1));
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
        // Not cancellable: spool append then cursor save, to completion.
        let (report, pending) = settle(&agent, &id, polled).instrument(span.clone()).await;
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
}
