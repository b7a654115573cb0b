//! What the agent tells the server about its sources besides evidence: a heartbeat after every
//! poll, and a confirmation of the unchanged artifacts when one is due (see [`crate::confirm`]).
//! Both are sent only by the loops in this module's siblings; neither ever blocks a poll.

use std::time::Duration;

use aims_collect::SourceConfig;
use aims_model::wire::{HeartbeatRequest, SourceHeartbeat};

use super::Agent;
use super::source_loop::{CycleError, task};
use crate::confirm::{self, PendingConfirmation};
use crate::report::SourceReport;

/// Sends the confirmation of `pending` if its source is due one (see [`crate::confirm`]);
/// returns how many artifacts it covered, or the error to report.
pub(super) async fn confirm_if_due(
    agent: &Agent,
    pending: &PendingConfirmation,
) -> Result<usize, CycleError> {
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
pub(super) fn heartbeat_of(src: &SourceConfig, r: &SourceReport) -> Option<SourceHeartbeat> {
    Some(SourceHeartbeat {
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
pub(super) async fn send_heartbeats(agent: &Agent, beats: Vec<SourceHeartbeat>) {
    if beats.is_empty() {
        return;
    }
    let req = HeartbeatRequest {
        agent: agent.cfg.agent.id.clone(),
        sources: beats,
    };
    if let Err(e) = agent.shipper.heartbeat(&req).await {
        tracing::warn!(error = %e, "heartbeat not delivered");
    }
}
