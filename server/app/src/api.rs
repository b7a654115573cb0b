//! The v1 JSON API (DESIGN §7): ingest and the read endpoints.

use std::collections::HashSet;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use serde::Deserialize;

use aims_catalog::Catalog;
use aims_model::wire::{
    Accepted, ControlsResponse, FindingsResponse, IngestRequest, IngestResponse, MAX_BATCH_RECORDS,
    SystemsResponse,
};
use aims_model::{EvidenceRecord, Timestamp};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};

/// How far in the future an `observed_at` may be (clock skew between agent and server).
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Reads a request body up to `limit` bytes, answering 413 past it.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = declared_length(headers)
        && len > limit as u64
    {
        // Read and discard a moderately oversized body before answering, so clients that write
        // the whole request before reading the response get the 413 instead of a broken pipe.
        // Past DRAIN_LIMIT the connection is simply closed after the answer.
        if len <= DRAIN_LIMIT {
            let _ = axum::body::to_bytes(body, DRAIN_LIMIT as usize).await;
        }
        return Err(ApiError::too_large(format!(
            "request body is {len} bytes, the limit is {limit}"
        )));
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::too_large(format!("request body exceeds the limit of {limit} bytes"))
    })
}

/// The body length a request declares (`Content-Length`), if it declares a valid one.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// Largest oversized body read (and discarded) before a 413 is answered.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Refuses (415) a body that is not declared as JSON: a missing `Content-Type`, or one that does
/// not parse as the media type `application/json` (parameters such as `charset` allowed;
/// `application/jsonfoo` refused). Agents always send it.
pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Err(ApiError::unsupported_media(
            "a JSON body needs Content-Type: application/json",
        )),
        Some(ct) if crate::http_util::is_json_media_type(ct) => Ok(()),
        Some(ct) => Err(ApiError::unsupported_media(format!(
            "content-type {ct:?} is not application/json"
        ))),
    }
}

/// Parses a JSON body, naming the field path of the first problem (400 `invalid_json` for
/// syntax, `invalid_request` for shape).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_json_as(bytes, "invalid_request")
}

/// [`parse_json`] with the code used for a shape problem inside the body.
fn parse_json_as<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    shape_code: &'static str,
) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            "malformed JSON"
        } else {
            "invalid request"
        };
        if path == "." || path.is_empty() {
            ApiError::bad_request("invalid_json", format!("{what}: {inner}"))
        } else {
            ApiError::bad_request(shape_code, format!("{what} at {path}: {inner}"))
        }
    })
}

/// Parses and validates an ingest body against `catalog`'s kinds; every problem names the record
/// index and field.
pub fn parse_batch(
    catalog: &Catalog,
    bytes: &[u8],
    now: Timestamp,
) -> Result<Vec<EvidenceRecord>, ApiError> {
    let req: IngestRequest = parse_json_as(bytes, "invalid_record")?;
    if req.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::too_large(format!(
            "batch has {} records, the limit is {MAX_BATCH_RECORDS}",
            req.records.len()
        )));
    }
    let mut seen = HashSet::new();
    let horizon = now.as_datetime() + chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS);
    for (i, r) in req.records.iter().enumerate() {
        r.validate()
            .map_err(|e| ApiError::bad_request("invalid_record", format!("records[{i}]: {e}")))?;
        if r.observed_at.as_datetime() > horizon {
            return Err(ApiError::bad_request(
                "invalid_record",
                format!(
                    "records[{i}]: observed_at {} is in the future",
                    r.observed_at
                ),
            ));
        }
        if r.source.source_type == aims_model::SourceType::Manual
            || aims_model::manual::SERVER_KINDS.contains(&r.kind.as_str())
        {
            // Only the server writes these, for an admin (statements of applicability, uploads).
            return Err(ApiError::bad_request(
                "invalid_record",
                format!(
                    "records[{i}]: source type \"manual\" and the kinds {:?} are written by the \
                     server for an admin, never ingested",
                    aims_model::manual::SERVER_KINDS
                ),
            ));
        }
        if r.kind != aims_catalog::UNCLASSIFIED && catalog.kind(&r.kind).is_none() {
            return Err(ApiError::bad_request(
                "invalid_record",
                format!("records[{i}]: kind {:?} is not in the catalog", r.kind),
            ));
        }
        let id = r
            .record_id()
            .map_err(|e| ApiError::bad_request("invalid_record", format!("records[{i}]: {e}")))?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::bad_request(
                "duplicate_record",
                format!("records[{i}] repeats record {id} of the same batch"),
            ));
        }
    }
    Ok(req.records)
}

/// `POST /v1/evidence`.
#[tracing::instrument(
    name = "ingest",
    skip_all,
    fields(
        agent = %principal.name,
        records = tracing::field::Empty,
        accepted = tracing::field::Empty,
        duplicates = tracing::field::Empty,
        status = tracing::field::Empty,
    )
)]
pub async fn post_evidence(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    let started = std::time::Instant::now();
    let result = ingest(&state, &principal, &headers, body).await;
    let (status, accepted, dups) = match &result {
        Ok(Json(r)) => (
            200,
            (r.accepted.len() - r.duplicates) as u64,
            r.duplicates as u64,
        ),
        Err(e) => (e.status().as_u16(), 0, 0),
    };
    let span = tracing::Span::current();
    span.record("accepted", accepted)
        .record("duplicates", dups)
        .record("status", status);
    state
        .metrics
        .ingest(status, started.elapsed(), accepted, dups);
    result
}

/// Appends `records` for `agent` at `now` (evidence from an agent, or the decisions the
/// server writes for an admin): refuses while the ledger is unsound, remembers the new signed
/// head once committed, and marks the systems touched for re-assessment, which is deferred and
/// coalesced (readers flush it first, a timer catches up).
pub(crate) async fn append_records(
    state: &AppState,
    agent: &str,
    records: &[EvidenceRecord],
    now: Timestamp,
) -> Result<aims_store::IngestOutcome, ApiError> {
    crate::proofs::require_sound_ledger(state)?;
    let outcome = state
        .store
        .ingest(agent, records, now, state.keys.as_ref())
        .await?;
    if let Some(cp) = &outcome.checkpoint {
        state.keys.remember(cp.size, &cp.root);
    }
    crate::assess::mark_dirty(state, &outcome.systems_touched).await;
    Ok(outcome)
}

async fn ingest(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<IngestResponse>, ApiError> {
    principal.require_write()?;
    check_json_content_type(headers)?;
    crate::proofs::require_sound_ledger(state)?;
    let bytes = read_body(headers, body, state.limits.max_body_bytes).await?;
    let now = Timestamp::now();
    let records = parse_batch(&state.catalog, &bytes, now)?;
    principal.require_scope(&records)?;
    tracing::Span::current().record("records", records.len());
    let outcome = append_records(state, &principal.name, &records, now).await?;
    let duplicates = outcome.results.iter().filter(|r| r.2).count();
    tracing::info!(
        agent = %principal.name,
        records = records.len(),
        duplicates,
        tree_size = outcome.tree_size,
        "evidence ingested"
    );
    Ok(Json(IngestResponse {
        accepted: outcome
            .results
            .into_iter()
            .map(|(record_id, leaf_index, duplicate)| Accepted {
                record_id,
                leaf_index,
                duplicate,
            })
            .collect(),
        duplicates,
        tree_size: outcome.tree_size,
        checkpoint: outcome.checkpoint.map(|c| c.note),
    }))
}

/// `?at=T` of the read endpoints: the answer as the server knew it at T (DESIGN §12.2).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    at: Option<String>,
}

impl AtQuery {
    /// The `at` parameter as given.
    pub fn at(&self) -> Option<&str> {
        self.at.as_deref()
    }
}

/// `GET /v1/systems[?at=T]`.
pub async fn get_systems(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> Result<Json<SystemsResponse>, ApiError> {
    principal.require_read()?;
    if let Some(at) = q.at.as_deref() {
        let at = crate::history::parse_at(at, Timestamp::now())?;
        return Ok(Json(SystemsResponse {
            systems: crate::history::systems_at(&state, at).await?,
        }));
    }
    crate::assess::flush(&state).await?;
    Ok(Json(SystemsResponse {
        systems: state.store.systems().await?,
    }))
}

/// `GET /v1/systems/{id}/controls[?at=T]`.
pub async fn get_controls(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> Result<Json<ControlsResponse>, ApiError> {
    principal.require_read()?;
    if let Some(at) = q.at.as_deref() {
        let at = crate::history::parse_at(at, Timestamp::now())?;
        let (controls, _, _) = crate::history::controls_at(&state, &id, at)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("no AI system {id:?} had evidence at {at}"))
            })?;
        return Ok(Json(ControlsResponse {
            system: id,
            controls,
        }));
    }
    crate::assess::flush(&state).await?;
    let controls = crate::assess::controls_of(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no AI system {id:?} has evidence")))?;
    Ok(Json(ControlsResponse {
        system: id,
        controls,
    }))
}

/// Query of `GET /v1/findings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    system: Option<String>,
    kind: Option<String>,
    at: Option<String>,
}

/// `GET /v1/findings[?system=ID][&kind=K]`.
pub async fn get_findings(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<FindingsQuery>,
) -> Result<Json<FindingsResponse>, ApiError> {
    principal.require_read()?;
    if let Some(system) = q.system.as_deref() {
        aims_model::record::validate_ident("system", system)
            .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    }
    let mut findings = match q.at.as_deref() {
        Some(at) => {
            let at = crate::history::parse_at(at, Timestamp::now())?;
            crate::history::findings_at(&state, q.system.as_deref(), at).await?
        }
        None => {
            crate::assess::flush(&state).await?;
            state.store.findings(q.system.as_deref()).await?
        }
    };
    if let Some(kind) = q.kind.as_deref() {
        let k = aims_model::FindingKind::parse(kind).ok_or_else(|| {
            ApiError::bad_request("invalid_query", format!("unknown finding kind {kind:?}"))
        })?;
        findings.retain(|f| f.kind == k);
    }
    Ok(Json(FindingsResponse { findings }))
}

/// `GET /v1/evidence/{record_id}`: the record, its leaf index and its inclusion proof against the
/// newest checkpoint.
pub async fn get_evidence(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    principal.require_read()?;
    if aims_model::ContentHash::parse(&id).is_err() {
        return Err(ApiError::bad_request(
            "invalid_record_id",
            "a record id is 64 lowercase hex characters",
        ));
    }
    let ev = state
        .store
        .evidence(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no evidence record {id}")))?;
    let proof = crate::proofs::inclusion_for(&state, ev.leaf_index).await?;
    Ok(Json(serde_json::json!({
        "record_id": ev.record_id,
        "leaf_index": ev.leaf_index,
        "record": ev.record,
        "agent": ev.agent,
        "received_at": ev.received_at,
        "prev": ev.prev,
        "proof": proof,
    })))
}

/// One control in `GET /v1/catalog`.
#[derive(Debug, serde::Serialize)]
pub struct CatalogControl {
    id: String,
    title: String,
    group: String,
    /// Evidence kinds that support it (primary or secondary).
    kinds: Vec<String>,
    crosswalks: aims_catalog::Crosswalks,
}

/// `GET /v1/catalog`.
#[derive(Debug, serde::Serialize)]
pub struct CatalogResponse {
    version: String,
    framework: String,
    sha256: String,
    controls: Vec<CatalogControl>,
}

/// `GET /v1/catalog`: the 38 controls with the kinds that reach each and their crosswalks to the
/// NIST AI RMF and the EU AI Act (DESIGN §12.3).
pub async fn get_catalog(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<CatalogResponse>, ApiError> {
    principal.require_read()?;
    let c = &state.catalog;
    Ok(Json(CatalogResponse {
        version: c.version().to_owned(),
        framework: c.framework().to_owned(),
        sha256: c.hash().as_str().to_owned(),
        controls: c
            .controls()
            .iter()
            .map(|ctl| CatalogControl {
                id: ctl.id.clone(),
                title: ctl.title.clone(),
                group: ctl.group.clone(),
                kinds: c
                    .kinds()
                    .iter()
                    .filter(|k| k.controls.contains(&ctl.id) || k.also.contains(&ctl.id))
                    .map(|k| k.name.clone())
                    .collect(),
                crosswalks: ctl.crosswalks.clone(),
            })
            .collect(),
    }))
}
