//! The `run`-mode delivery loop: ships pending batches when a poll spooled something and on a
//! timer, backs off after failed passes, and sends the confirmations that wait for every spooled
//! record to be acknowledged.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::Agent;
use super::liveness::confirm_if_due;
use crate::confirm::PendingConfirmation;

/// Runs shipping passes until `stop` becomes true: the first at once (it drains batches left by
/// an earlier process), then whenever `wake` fires or `ship_interval` passes.
pub(super) async fn shipper_task(
    agent: Arc<Agent>,
    mut stop: watch::Receiver<bool>,
    wake: Arc<Notify>,
    ship_interval: Duration,
) {
    let mut failures = 0u32;
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
                send_waiting_confirmations(&agent).await;
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
}

/// Every record is in the ledger: sends the confirmations waiting on it (a failed one is
/// offered again after its source's next poll).
async fn send_waiting_confirmations(agent: &Agent) {
    let waiting: Vec<PendingConfirmation> = agent
        .pending
        .lock()
        .map(|mut m| m.drain().map(|(_, p)| p).collect())
        .unwrap_or_default();
    for p in waiting {
        if let Err(e) = confirm_if_due(agent, &p).await {
            tracing::warn!(collector.id = %p.source.id, error = %e, "confirmation failed, retried after the next poll");
        }
    }
}

/// Pause between failed shipping passes: 5 s doubling, capped at 5 min.
fn backoff_between_passes(failures: u32) -> Duration {
    Duration::from_secs(5)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(6))
        .min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_backoff_is_capped() {
        assert_eq!(backoff_between_passes(1), Duration::from_secs(5));
        assert_eq!(backoff_between_passes(2), Duration::from_secs(10));
        assert_eq!(backoff_between_passes(50), Duration::from_secs(300));
    }
}
