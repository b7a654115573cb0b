//! Compliance records the server writes for an admin (`aims_model::manual`): statements of
//! applicability ([`crate::applicability`]) and acknowledgements of findings (`POST
//! /v1/findings/{id}/acknowledge`, here). Each is appended to the ledger like evidence (one
//! transaction, a signed checkpoint), and the system is re-assessed before the answer.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use aims_model::acknowledgement::{AcknowledgeRequest, acknowledgement_record};
use aims_model::{EvidenceRecord, Finding, Timestamp};

use crate::AppState;
use crate::api::{check_json_content_type, parse_json, read_body};
use crate::auth::Principal;
use crate::error::ApiError;

/// Appends `records` for `by` at `now`; returns their leaves. The systems' status is
/// re-assessed before this returns, so the next read shows the decision.
pub async fn append(
    state: &AppState,
    by: &str,
    records: &[EvidenceRecord],
    now: Timestamp,
) -> Result<Vec<u64>, ApiError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let outcome = crate::api::append_records(state, by, records, now).await?;
    crate::assess::flush(state).await?;
    Ok(outcome.results.iter().map(|r| r.1).collect())
}

/// Accepts, for `by`, the risk of the open finding `id` as `req` says (reason; expiry after now,
/// at most 365 days ahead) and answers the finding as it is now, carrying `acknowledged`. 404
/// for a finding that is not open, 400 for a request the model refuses.
pub async fn acknowledge(
    state: &AppState,
    by: &str,
    id: &str,
    req: &AcknowledgeRequest,
) -> Result<Finding, ApiError> {
    crate::assess::flush(state).await?;
    let finding = state
        .store
        .findings(None)
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no open finding {id:?}")))?;
    let now = Timestamp::now();
    let record = acknowledgement_record(&finding.system, &finding.id, req, by, now)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    append(state, by, std::slice::from_ref(&record), now).await?;
    tracing::info!(finding = %finding.id, system = %finding.system, expires_at = %req.expires_at, "finding acknowledged");
    state
        .store
        .findings(Some(&finding.system))
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::internal("the acknowledged finding vanished on re-assessment"))
}

/// `POST /v1/findings/{id}/acknowledge` (admin), body `{"reason","expires_at"}`: see
/// [`acknowledge`].
#[tracing::instrument(name = "acknowledge", skip_all, fields(by = %principal.name))]
pub async fn post_acknowledge(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Finding>, ApiError> {
    principal.require_admin()?;
    check_json_content_type(&headers)?;
    let bytes = read_body(&headers, body, state.limits.max_body_bytes).await?;
    let req: AcknowledgeRequest = parse_json(&bytes)?;
    Ok(Json(acknowledge(&state, &principal.name, &id, &req).await?))
}
