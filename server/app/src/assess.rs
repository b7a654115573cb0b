//! Keeps the materialised status current: after each ingest for the systems it touched, and on
//! a timer for every system (staleness advances with the clock even when nothing arrives).

use std::time::Duration;

use aims_model::Timestamp;
use aims_store::StoredAssessment;

use crate::AppState;
use crate::error::ApiError;

/// Sources silent at `now`, by (agent, source id): read once per assessment pass, not once per
/// system.
type Silent = std::collections::HashMap<(String, String), Timestamp>;

async fn silent_sources(state: &AppState, now: Timestamp) -> Result<Silent, ApiError> {
    Ok(state
        .store
        .sources(now)
        .await?
        .into_iter()
        .filter_map(|s| Some(((s.agent, s.source), s.silent_since?)))
        .collect())
}

/// The status of `system` for a reader: the stored one, or, when the system has evidence but no
/// stored status yet (a replica that just started, before its first periodic pass reached it),
/// assessed now. `None` when the system has no evidence at all.
pub async fn controls_of(
    state: &AppState,
    system: &str,
) -> Result<Option<Vec<aims_model::wire::ControlView>>, ApiError> {
    if let Some(c) = state.store.system_controls(system).await? {
        return Ok(Some(c));
    }
    let now = Timestamp::now();
    let silent = silent_sources(state, now).await?;
    if !assess_if_any(state, system, &silent, now).await? {
        return Ok(None);
    }
    Ok(state.store.system_controls(system).await?)
}

/// Re-assesses one system from its full history and stores the result; returns whether the
/// system has any evidence (a system without any is left alone: no empty status row for an id
/// nobody wrote).
async fn assess_if_any(
    state: &AppState,
    system: &str,
    silent: &Silent,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let _guard = state.assess_lock.lock().await;
    let history = state.store.history(system).await?;
    if history.is_empty() {
        return Ok(false);
    }
    // What another replica's ingest would change: this process's timeline is then stale.
    state.timelines.observe(
        system,
        (
            history.len(),
            history.iter().map(|e| e.leaf_index).max(),
            history.iter().filter_map(|e| e.confirmed_at).max(),
        ),
    );
    let mut obs = aims_catalog::Observations::default();
    let evidence: Vec<aims_catalog::Evidence> = history
        .into_iter()
        .map(|e| {
            if let Some(c) = e.confirmed_at {
                obs.confirmed.insert(e.leaf_index, c);
            }
            obs.received.insert(e.leaf_index, e.received_at);
            let key = (e.record.agent.clone(), e.record.source.id.clone());
            if let Some(since) = silent.get(&key) {
                obs.silent.insert(key, *since);
            }
            aims_catalog::Evidence {
                record_id: e.record_id,
                leaf_index: e.leaf_index,
                record: e.record,
            }
        })
        .collect();
    let catalog = state.catalog.clone();
    let sys = system.to_owned();
    let count = evidence.len() as u64;
    // Assessment is CPU work proportional to the history; keep it off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        aims_catalog::assess_with(&catalog, &sys, &evidence, now, &obs)
    })
    .await
    .map_err(ApiError::internal)?;
    // Notification events are recorded whether or not a sink is configured now (a sink added
    // later starts from its own floor), in the transaction that replaces the findings.
    let expiring = crate::notify::expiring_events(system, &result.controls, now, state.warn_days);
    state
        .store
        .put_assessment(&StoredAssessment {
            system: system.to_owned(),
            assessed_at: result.assessed_at,
            evidence: count,
            controls: result.controls,
            findings: result.findings,
            events: Some(expiring),
        })
        .await?;
    Ok(true)
}

/// Notes systems whose evidence changed; they are re-assessed by [`flush`] (called by readers
/// before they read status, and by the timer), so a burst of ingests costs one assessment.
pub async fn mark_dirty(state: &AppState, systems: &[String]) {
    if systems.is_empty() {
        return;
    }
    state.timelines.mark_stale(systems);
    let mut dirty = state.dirty.lock().await;
    dirty.extend(systems.iter().cloned());
}

/// Re-assesses every system marked dirty since the last flush. Returns only once every system
/// marked before the call is assessed, including by a flush that was already running.
pub async fn flush(state: &AppState) -> Result<(), ApiError> {
    let _flushing = state.flushing.lock().await;
    let systems: Vec<String> = std::mem::take(&mut *state.dirty.lock().await)
        .into_iter()
        .collect();
    if systems.is_empty() {
        return Ok(());
    }
    let now = Timestamp::now();
    let silent = match silent_sources(state, now).await {
        Ok(s) => s,
        Err(e) => {
            state.dirty.lock().await.extend(systems);
            return Err(e);
        }
    };
    for (i, system) in systems.iter().enumerate() {
        if let Err(e) = assess_if_any(state, system, &silent, now).await {
            // Put back what was not done, so the next flush retries it.
            state
                .dirty
                .lock()
                .await
                .extend(systems[i..].iter().cloned());
            return Err(e);
        }
    }
    Ok(())
}

/// Re-assesses every system; errors are logged per system and do not stop the others. Records
/// a `source.silent` event for every source silent now (once per silence: the key names when
/// it began).
pub async fn reassess_all(state: &AppState) -> Result<usize, ApiError> {
    let ids = state.store.system_ids().await?;
    let now = Timestamp::now();
    let sources = state.store.sources(now).await?;
    let events: Vec<_> = sources
        .iter()
        .filter_map(|s| crate::notify::silent_event(s, s.silent_since?))
        .collect();
    if !events.is_empty() {
        state.store.put_events(&events).await?;
    }
    let silent: Silent = sources
        .into_iter()
        .filter_map(|s| Some(((s.agent, s.source), s.silent_since?)))
        .collect();
    let mut n = 0;
    for id in &ids {
        match assess_if_any(state, id, &silent, now).await {
            Ok(_) => n += 1,
            Err(e) => tracing::warn!(system = %id, status = %e.status(), "re-assessment failed"),
        }
    }
    Ok(n)
}

/// Runs [`reassess_all`] every `every` until `shutdown` resolves.
pub async fn ticker(
    state: AppState,
    every: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quick = tokio::time::interval(std::time::Duration::from_secs(1));
    quick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warmed = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(e) = reassess_all(&state).await {
                    tracing::warn!(status = %e.status(), "periodic re-assessment failed");
                }
                if !warmed {
                    // After the start-up assessment, materialise every system's history in the
                    // background so the first dashboard read does not.
                    warmed = true;
                    let state = state.clone();
                    tokio::spawn(async move {
                        let started = std::time::Instant::now();
                        match crate::timelines::warm(&state).await {
                            Ok(n) => tracing::info!(systems = n, ms = started.elapsed().as_millis() as u64, "timelines built"),
                            Err(e) => tracing::warn!(status = %e.status(), "building timelines failed"),
                        }
                    });
                }
            }
            _ = quick.tick() => {
                if let Err(e) = flush(&state).await {
                    tracing::warn!(status = %e.status(), "deferred re-assessment failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}
