//! Evidence over time (DESIGN §12.2): status at any instant, per-control history over a period,
//! and the period report, all computed exactly from the ledger by the replay the verifier also
//! uses (`aims_catalog::{Replay, history, status_at}`).
//!
//! - `GET /v1/systems/{id}/controls?at=T`, `GET /v1/systems?at=T`, `GET /v1/findings?at=T`: the
//!   v1 shapes as the server knew them at T (entries received by T, windows measured at T).
//! - `GET /v1/systems/{id}/history?from=&to=`: per control, contiguous intervals with the reason
//!   of each and the fresh share of the period.
//! - `GET /v1/report?from=&to=[&system=][&format=csv]`: per system × control the fresh ratio, the
//!   worst status and the gaps (every interval that was not fresh).
//!
//! Bad input answers 400 naming the parameter: unparseable times, `at` in the future, `from` not
//! before `to`, periods over five years; an unknown system 404. Nothing is computed for them.
//!
//! Cost: histories and reports read each system's materialised timeline (`timelines.rs`), a clip
//! of memory between change points; `?at=` and the alias timeline replay the system's entries
//! (its records and its sources' confirmations) per request.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use aims_catalog::history::{PeriodReport, ReportSystem, report_control};
use aims_catalog::{ControlHistory, Replay};
use aims_ledger::LedgerEntry;
use aims_model::wire::{ControlView, StatusCounts, SystemSummary};
use aims_model::{ContentHash, Finding, Listing, Timestamp};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};

/// Longest period a history or report may span.
pub const MAX_PERIOD_DAYS: i64 = 5 * 366;

/// A time query parameter, or 400 naming it.
pub fn parse_time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_utc(value).map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            format!("{name}: not an RFC 3339 UTC time ({e})"),
        )
    })
}

/// `at`, refused when in the future.
pub fn parse_at(value: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    let at = parse_time("at", value)?;
    if at > now {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("at: {at} is in the future (now is {now})"),
        ));
    }
    Ok(at)
}

/// `from` and `to`, refused unless `from < to`, the period is at most five years and `from` is
/// not in the future; `to` defaults to now and is capped at now.
pub fn parse_period(
    from: &str,
    to: Option<&str>,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let from = parse_time("from", from)?;
    let to = match to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("from: {from} must be before to ({to})"),
        ));
    }
    if from > now {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("from: {from} is in the future"),
        ));
    }
    if to.as_datetime() - from.as_datetime() > chrono::TimeDelta::days(MAX_PERIOD_DAYS) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "to: the period is longer than five years".to_owned(),
        ));
    }
    Ok((from, to.min(now)))
}

/// The replay of one system's entries and its sources' confirmations; `None` when the ledger
/// holds no record of it.
pub async fn system_replay(state: &AppState, system: &str) -> Result<Option<Replay>, ApiError> {
    Ok(system_ledger(state, system)
        .await?
        .map(|(replay, _)| replay))
}

/// [`system_replay`], with the leaf and receipt of every entry read (records and
/// confirmations): what a [`aims_catalog::Timeline`] needs to advance.
pub async fn system_ledger(
    state: &AppState,
    system: &str,
) -> Result<Option<(Replay, Vec<(u64, Timestamp)>)>, ApiError> {
    let rows = state.store.system_entries(system).await?;
    let mut entries = Vec::with_capacity(rows.len());
    let mut listings: HashMap<ContentHash, Listing> = HashMap::new();
    for row in rows {
        let e = LedgerEntry::parse(&row.entry).map_err(ApiError::internal)?;
        if let Some(c) = &e.confirmation
            && !listings.contains_key(&c.digest)
        {
            let bytes = state
                .store
                .confirmation_listing(c.digest.as_str())
                .await?
                .ok_or_else(|| ApiError::internal(format!("listing {} is missing", c.digest)))?;
            let l = Listing::parse_canonical(&bytes).map_err(ApiError::internal)?;
            listings.insert(c.digest.clone(), l);
        }
        entries.push((row.index, e));
    }
    if !entries.iter().any(|(_, e)| e.record.is_some()) {
        return Ok(None);
    }
    let receipts = entries.iter().map(|(i, e)| (*i, e.received_at)).collect();
    let replay =
        Replay::new(entries.iter().map(|(i, e)| (*i, e)), &listings).map_err(ApiError::internal)?;
    Ok(Some((replay, receipts)))
}

/// The controls of `system` as of `at`; `None` when nothing of it had been received by then.
pub async fn controls_at(
    state: &AppState,
    system: &str,
    at: Timestamp,
) -> Result<Option<(Vec<ControlView>, Vec<Finding>, u64)>, ApiError> {
    let Some(replay) = system_replay(state, system).await? else {
        return Ok(None);
    };
    let catalog = state.catalog.clone();
    let sys = system.to_owned();
    tokio::task::spawn_blocking(move || {
        let a = aims_catalog::status_at(&catalog, &replay, &sys, at)?;
        let n = replay
            .as_of(at)
            .systems
            .get(&sys)
            .map_or(0, |h| h.len() as u64);
        Some((a.controls, a.findings, n))
    })
    .await
    .map_err(ApiError::internal)
}

/// `GET /v1/systems?at=T`.
pub async fn systems_at(state: &AppState, at: Timestamp) -> Result<Vec<SystemSummary>, ApiError> {
    let mut out = Vec::new();
    for id in state.store.system_ids().await? {
        if let Some((controls, _, evidence)) = controls_at(state, &id, at).await? {
            let mut counts = StatusCounts::default();
            for c in &controls {
                counts.add(c.status);
            }
            out.push(SystemSummary {
                id,
                controls: counts,
                evidence,
                assessed_at: Some(at),
            });
        }
    }
    Ok(out)
}

/// `GET /v1/findings?at=T[&system=]`.
pub async fn findings_at(
    state: &AppState,
    system: Option<&str>,
    at: Timestamp,
) -> Result<Vec<Finding>, ApiError> {
    let ids = match system {
        Some(s) => vec![s.to_owned()],
        None => state.store.system_ids().await?,
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some((_, findings, _)) = controls_at(state, &id, at).await? {
            out.extend(findings);
        }
    }
    Ok(out)
}

/// One registry alias at an instant.
#[derive(Debug, Serialize)]
pub struct AliasAt {
    /// The alias (or `stage:<Stage>` for a legacy MLflow stage).
    pub alias: String,
    /// The model version it pointed to.
    pub version: String,
    /// Since when it pointed there (the observation of the first record of that version).
    pub since: Timestamp,
    /// The record that shows it.
    pub record_id: ContentHash,
    /// The registered model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `GET /v1/systems/{id}/aliases`.
#[derive(Debug, Serialize)]
pub struct AliasesResponse {
    system: String,
    at: Timestamp,
    aliases: Vec<AliasAt>,
}

fn meta_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Which model version each registry alias of `system` pointed to at `at` ("which model was in
/// production on date X"), from the `registry_alias` records received by then; an alias whose
/// newest record says `gone` no longer exists.
pub fn aliases_at(replay: &Replay, system: &str, at: Timestamp) -> Vec<AliasAt> {
    let past = replay.as_of(at);
    let Some(history) = past.systems.get(system) else {
        return Vec::new();
    };
    // Per alias locator, the records in ledger order.
    let mut by_locator: std::collections::BTreeMap<&str, Vec<&aims_catalog::Evidence>> =
        std::collections::BTreeMap::new();
    for e in history.iter().filter(|e| e.record.kind == "registry_alias") {
        by_locator
            .entry(e.record.locator.as_str())
            .or_default()
            .push(e);
    }
    let mut out = Vec::new();
    for records in by_locator.values() {
        let Some(last) = records.last() else { continue };
        if last.record.event != aims_model::RecordEvent::Observed {
            continue;
        }
        let m = &last.record.metadata;
        let model = m.get("model");
        let version = meta_text(model.and_then(|v| v.get("version")))
            .unwrap_or_else(|| last.record.version.clone());
        let alias = meta_text(m.get("alias")).unwrap_or_else(|| {
            last.record
                .locator
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
        // The first record of the latest run pointing at this version.
        let mut since = last.record.observed_at;
        for e in records.iter().rev() {
            let v = meta_text(
                e.record
                    .metadata
                    .get("model")
                    .and_then(|v| v.get("version")),
            )
            .unwrap_or_else(|| e.record.version.clone());
            if v != version || e.record.event != aims_model::RecordEvent::Observed {
                break;
            }
            since = e.record.observed_at;
        }
        out.push(AliasAt {
            alias,
            version,
            since,
            record_id: last.record_id.clone(),
            model: meta_text(model.and_then(|v| v.get("name"))),
        });
    }
    out.sort_by(|a, b| a.alias.cmp(&b.alias));
    out
}

/// `GET /v1/systems/{id}/aliases?at=T` (default: now).
pub async fn get_aliases(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<crate::api::AtQuery>,
) -> Result<Json<AliasesResponse>, ApiError> {
    principal.require_read()?;
    let now = Timestamp::now();
    let at = match q.at() {
        Some(a) => parse_at(a, now)?,
        None => now,
    };
    let replay = system_replay(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no AI system {id:?} has evidence")))?;
    Ok(Json(AliasesResponse {
        aliases: aliases_at(&replay, &id, at),
        system: id,
        at,
    }))
}

/// Query of the history endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    from: String,
    to: Option<String>,
}

/// `GET /v1/systems/{id}/history`.
#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    system: String,
    from: Timestamp,
    to: Timestamp,
    catalog_version: String,
    controls: Vec<ControlHistory>,
}

/// The history of one system over `[from, to)`, from its materialised timeline; 404 when the
/// ledger has no record of it.
pub async fn system_history(
    state: &AppState,
    system: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<ControlHistory>, ApiError> {
    Ok(system_history_since(state, system, from, to).await?.0)
}

/// [`system_history`], plus when the server received the system's first record (before it,
/// every control reads `missing`: the dashboard's trend leaves that time out).
pub async fn system_history_since(
    state: &AppState,
    system: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<(Vec<ControlHistory>, Option<Timestamp>), ApiError> {
    let now = Timestamp::now().max(to);
    let timeline = crate::timelines::timeline(state, system, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no AI system {system:?} has evidence")))?;
    Ok((timeline.history(from, to), timeline.first_received()))
}

/// `GET /v1/systems/{id}/history?from=T1&to=T2`.
pub async fn get_history(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    principal.require_read()?;
    let (from, to) = parse_period(&q.from, q.to.as_deref(), Timestamp::now())?;
    let controls = system_history(&state, &id, from, to).await?;
    Ok(Json(HistoryResponse {
        system: id,
        from,
        to,
        catalog_version: state.catalog.version().to_owned(),
        controls,
    }))
}

/// The period report of every system (or one).
pub async fn period_report(
    state: &AppState,
    system: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Result<PeriodReport, ApiError> {
    let ids = match system {
        Some(s) => vec![s.to_owned()],
        None => state.store.system_ids().await?,
    };
    let mut systems = Vec::with_capacity(ids.len());
    for id in ids {
        let controls = system_history(state, &id, from, to).await?;
        systems.push(ReportSystem {
            system: id,
            controls: controls.into_iter().map(report_control).collect(),
        });
    }
    Ok(PeriodReport {
        from,
        to,
        catalog_version: state.catalog.version().to_owned(),
        systems,
    })
}

/// One CSV field, quoted when needed (RFC 4180).
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The report as CSV: one row per system × control (`system,control,fresh_ratio,worst_status,
/// gaps,gap_details` where the details list `status from–to: reason` separated by ` | `).
pub fn report_csv(r: &PeriodReport) -> String {
    let mut out = String::from("system,control,fresh_ratio,worst_status,gaps,gap_details\n");
    for s in &r.systems {
        for c in &s.controls {
            let details: Vec<String> = c
                .gaps
                .iter()
                .map(|g| format!("{} {}–{}: {}", g.status, g.from, g.to, g.reason))
                .collect();
            out.push_str(&format!(
                "{},{},{:.6},{},{},{}\n",
                csv_field(&s.system),
                csv_field(&c.control),
                c.fresh_ratio,
                c.worst_status,
                c.gaps.len(),
                csv_field(&details.join(" | "))
            ));
        }
    }
    out
}

/// Query of `GET /v1/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from: String,
    to: Option<String>,
    system: Option<String>,
    format: Option<String>,
}

/// `GET /v1/report?from=&to=[&system=][&format=csv|json]`.
pub async fn get_report(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    principal.require_read()?;
    let (from, to) = parse_period(&q.from, q.to.as_deref(), Timestamp::now())?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("format: {other:?} is not json or csv"),
            ));
        }
    };
    if let Some(s) = q.system.as_deref() {
        aims_model::record::validate_ident("system", s)
            .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    }
    let report = period_report(&state, q.system.as_deref(), from, to).await?;
    Ok(if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report_csv(&report),
        )
            .into_response()
    } else {
        Json(report).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_periods_name_the_parameter() {
        let now = Timestamp::parse_utc("2026-12-07T00:00:00Z").unwrap();
        let msg = |r: Result<(Timestamp, Timestamp), ApiError>| r.unwrap_err().to_string();
        assert!(msg(parse_period("yesterday", None, now)).contains("from"));
        assert!(
            msg(parse_period(
                "2026-12-01T00:00:00Z",
                Some("2026-11-01T00:00:00Z"),
                now
            ))
            .contains("from")
        );
        assert!(
            msg(parse_period(
                "2020-01-01T00:00:00Z",
                Some("2026-01-02T00:00:00Z"),
                now
            ))
            .contains("five years")
        );
        assert!(
            parse_at("2027-01-01T00:00:00Z", now)
                .unwrap_err()
                .to_string()
                .contains("future")
        );
        let (f, t) =
            parse_period("2026-12-01T00:00:00Z", Some("2027-01-01T00:00:00Z"), now).unwrap();
        assert!(f < t && t == now, "to is capped at now");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
