//! Sources and confirmation (DESIGN §12.1): what agents tell the server about their sources
//! besides evidence.
//!
//! - `POST /v1/confirmations` (agent): "source S still lists these artifacts unchanged". One
//!   ledger entry however many artifacts; the listing is kept by digest for exports. Listed
//!   artifacts whose newest record has the listed content count as observed at the
//!   confirmation's time, so unchanged evidence an agent still sees stays fresh.
//! - `POST /v1/heartbeats` (agent): how each poll went. Not in the ledger; it feeds
//!   `GET /v1/sources` (viewer): per agent and source, last poll, last confirmation, last error
//!   and `ok | failing | silent`.
//!
//! Both writes obey the token's scope exactly like evidence: a bound token may only speak for
//! its own agent id and sources (403, nothing stored).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;

use aims_model::wire::{
    ConfirmationRequest, ConfirmationResponse, HeartbeatRequest, MAX_HEARTBEAT_ERROR,
    SourcesResponse,
};
use aims_model::{Listing, Timestamp};
use aims_store::ConfirmationInput;

use crate::AppState;
use crate::api::{check_json_content_type, parse_json, read_body};
use crate::auth::Principal;
use crate::error::ApiError;

/// Most sources one heartbeat may report.
const MAX_HEARTBEAT_SOURCES: usize = 1000;
/// How far in the future a reported time may be (clock skew).
const MAX_CLOCK_SKEW_SECS: i64 = 300;

fn not_in_future(field: &str, t: Timestamp, now: Timestamp) -> Result<(), ApiError> {
    if t.as_datetime() > now.as_datetime() + chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} {t} is in the future"),
        ));
    }
    Ok(())
}

/// `POST /v1/confirmations`.
#[tracing::instrument(name = "confirm", skip_all, fields(agent = %principal.name))]
pub async fn post_confirmation(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ConfirmationResponse>, ApiError> {
    principal.require_write()?;
    check_json_content_type(&headers)?;
    crate::proofs::require_sound_ledger(&state)?;
    let bytes = read_body(&headers, body, state.limits.max_confirmation_bytes).await?;
    let now = Timestamp::now();
    let req: ConfirmationRequest = parse_json(&bytes)?;
    let c = &req.confirmation;
    c.validate()
        .map_err(|e| ApiError::bad_request("invalid_confirmation", format!("confirmation: {e}")))?;
    not_in_future("confirmation.observed_at", c.observed_at, now)?;
    principal.require_source_scope(&c.agent, &c.source.id, "confirmation")?;
    // A source may serve several systems: a token limited to some systems may confirm only when
    // it is also limited to sources (whose artifacts it may then speak for).
    if principal.scope.systems.is_some() && principal.scope.sources.is_none() {
        return Err(ApiError::forbidden(
            "confirmation: a token limited to systems must also be limited to sources (--source) to confirm listings",
        ));
    }
    let listing = Listing::new(req.artifacts);
    if listing.artifacts.len() as u64 != c.count {
        return Err(ApiError::bad_request(
            "invalid_confirmation",
            format!(
                "confirmation.count is {} but {} distinct artifacts were sent",
                c.count,
                listing.artifacts.len()
            ),
        ));
    }
    listing
        .validate()
        .map_err(|e| ApiError::bad_request("invalid_confirmation", e.to_string()))?;
    let listing_bytes = listing
        .canonical_bytes()
        .map_err(|e| ApiError::bad_request("invalid_confirmation", e.to_string()))?;
    let digest = aims_model::ContentHash::of(&listing_bytes);
    if digest != c.digest {
        return Err(ApiError::bad_request(
            "invalid_confirmation",
            format!(
                "confirmation.digest is {} but the listing sent hashes to {digest}",
                c.digest
            ),
        ));
    }
    let outcome = state
        .store
        .ingest_confirmation(
            &principal.name,
            &ConfirmationInput {
                confirmation: c,
                listing: &listing_bytes,
                artifacts: &listing.artifacts,
            },
            now,
            state.keys.as_ref(),
        )
        .await?;
    if let Some(cp) = &outcome.checkpoint {
        state.keys.remember(cp.size, &cp.root);
    }
    tracing::info!(
        agent = %c.agent,
        source = %c.source.id,
        artifacts = c.count,
        matched = outcome.matched,
        leaf = outcome.leaf_index,
        duplicate = outcome.duplicate,
        "confirmation ingested"
    );
    crate::assess::mark_dirty(&state, &outcome.systems_touched).await;
    Ok(Json(ConfirmationResponse {
        confirmation_id: outcome.confirmation_id,
        leaf_index: outcome.leaf_index,
        duplicate: outcome.duplicate,
        matched: outcome.matched,
        unmatched: outcome.unmatched,
        tree_size: outcome.tree_size,
        checkpoint: outcome.checkpoint.map(|c| c.note),
    }))
}

/// `POST /v1/heartbeats` → 204.
pub async fn post_heartbeats(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::http::StatusCode, ApiError> {
    principal.require_write()?;
    check_json_content_type(&headers)?;
    let bytes = read_body(&headers, body, state.limits.max_body_bytes).await?;
    let now = Timestamp::now();
    let req: HeartbeatRequest = parse_json(&bytes)?;
    let bad = |m: String| ApiError::bad_request("invalid_heartbeat", m);
    aims_model::record::validate_ident("agent", &req.agent).map_err(|e| bad(e.to_string()))?;
    if req.sources.len() > MAX_HEARTBEAT_SOURCES {
        return Err(bad(format!(
            "{} sources, the limit is {MAX_HEARTBEAT_SOURCES}",
            req.sources.len()
        )));
    }
    for (i, s) in req.sources.iter().enumerate() {
        aims_model::record::validate_ident("source.id", &s.source.id)
            .map_err(|e| bad(format!("sources[{i}]: {e}")))?;
        not_in_future(&format!("sources[{i}].polled_at"), s.polled_at, now)?;
        if let Some(e) = &s.error
            && (e.len() > MAX_HEARTBEAT_ERROR || e.chars().any(char::is_control))
        {
            return Err(bad(format!(
                "sources[{i}].error must be at most {MAX_HEARTBEAT_ERROR} bytes without control characters"
            )));
        }
        const MAX: u64 = 1 << 53;
        if s.interval_secs == 0 || s.interval_secs > MAX || s.listed > MAX || s.records > MAX {
            return Err(bad(format!(
                "sources[{i}]: interval_secs must be 1 to 2^53 and listed, records at most 2^53"
            )));
        }
        principal.require_source_scope(&req.agent, &s.source.id, &format!("sources[{i}]"))?;
    }
    state.store.put_heartbeats(&req.agent, &req.sources).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /v1/sources`.
pub async fn get_sources(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SourcesResponse>, ApiError> {
    principal.require_read()?;
    Ok(Json(SourcesResponse {
        sources: state.store.sources(Timestamp::now()).await?,
    }))
}
