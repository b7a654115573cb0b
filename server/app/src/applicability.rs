//! The statement of applicability (DESIGN §12.3; ISO/IEC 42001 clause 6.1.3).
//!
//! - `PUT /v1/systems/{id}/applicability` (admin), body
//!   `{"controls":{"A.6.2.8":{"applicable":false,"justification":"…"}}}` (and/or
//!   `"groups":{"A.10":{…}}` for every control of an objective at once): each changed decision
//!   becomes one ledger record of source type `manual` (who = the admin token's name, when = the
//!   receipt, why = the justification; see `aims_model::applicability`). A decision equal to the
//!   one in force writes nothing. All of one request are appended in one transaction.
//! - `GET /v1/systems/{id}/applicability` (viewer, auditor, admin): the decision in force per
//!   control, with who made it, when, and its record and leaf.
//!
//! `aims-server applicability set` calls [`set_statements`] on the store directly.
//! Excluded controls have status `excluded` with the justification as reason everywhere the
//! assessment is shown (API, dashboard, OSCAL, history, and `aims-verify`'s recomputation).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use aims_model::applicability::{Applicability, applicability_record, current_statements};
use aims_model::{RecordId, Timestamp};

use crate::AppState;
use crate::api::{check_json_content_type, parse_json, read_body};
use crate::auth::Principal;
use crate::error::ApiError;

/// Most controls one request may decide (Annex A has 38).
const MAX_CONTROLS: usize = 100;

/// Body of `PUT /v1/systems/{id}/applicability`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicabilityRequest {
    /// Control ID → decision.
    #[serde(default)]
    pub controls: BTreeMap<String, Applicability>,
    /// Objective (group) ID such as `A.10` → one decision for each of its controls; a control
    /// named in `controls` too keeps its own decision.
    #[serde(default)]
    pub groups: BTreeMap<String, Applicability>,
}

/// The decisions of `controls` and `groups` (expanded to their controls, the explicit ones
/// winning), or a 400 naming an unknown group.
pub fn expand_groups(
    catalog: &aims_catalog::Catalog,
    controls: &BTreeMap<String, Applicability>,
    groups: &BTreeMap<String, Applicability>,
) -> Result<BTreeMap<String, Applicability>, ApiError> {
    let mut out = BTreeMap::new();
    for (group, decision) in groups {
        let members: Vec<&str> = catalog
            .controls()
            .iter()
            .filter(|c| &c.group == group)
            .map(|c| c.id.as_str())
            .collect();
        if members.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "groups.{group}: not an Annex A objective of catalog {} (A.2 … A.10)",
                    catalog.version()
                ),
            ));
        }
        for c in members {
            out.insert(c.to_owned(), decision.clone());
        }
    }
    out.extend(controls.iter().map(|(c, d)| (c.clone(), d.clone())));
    Ok(out)
}

/// One decision in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatementView {
    /// Whether the control applies.
    pub applicable: bool,
    /// Why.
    pub justification: String,
    /// Who decided (the admin token's name).
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// The statement's record.
    pub record_id: RecordId,
    /// Its ledger leaf.
    pub leaf_index: u64,
}

/// `GET`/`PUT /v1/systems/{id}/applicability`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicabilityResponse {
    /// The AI system.
    pub system: String,
    /// Control ID → the decision in force (controls never decided are absent: they apply).
    pub controls: BTreeMap<String, StatementView>,
    /// Ledger leaves written by this request (PUT only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<u64>,
}

/// The decisions in force for `system`.
pub async fn statements(state: &AppState, system: &str) -> Result<ApplicabilityResponse, ApiError> {
    aims_model::record::validate_ident("system", system)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let history = state.store.history(system).await?;
    let controls = current_statements(history.iter(), |e| &e.record)
        .into_iter()
        .map(|(control, (d, e))| {
            (
                control.to_owned(),
                StatementView {
                    applicable: d.applicable,
                    justification: d.justification,
                    by: e.record.agent.clone(),
                    at: e.received_at,
                    record_id: e.record_id.clone(),
                    leaf_index: e.leaf_index,
                },
            )
        })
        .collect();
    Ok(ApplicabilityResponse {
        system: system.to_owned(),
        controls,
        written: Vec::new(),
    })
}

/// Records `decisions` for `system`, made by `by` at `now`: validates every control against
/// the catalog and every justification, appends the changed ones in one transaction, and marks
/// the system for re-assessment. Returns the decisions now in force.
pub async fn set_statements(
    state: &AppState,
    by: &str,
    system: &str,
    decisions: &BTreeMap<String, Applicability>,
    now: Timestamp,
) -> Result<ApplicabilityResponse, ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_request", m);
    if decisions.is_empty() {
        return Err(bad(
            "controls: name at least one control (or groups: an objective)".into(),
        ));
    }
    if decisions.len() > MAX_CONTROLS {
        return Err(bad(format!("controls: at most {MAX_CONTROLS} per request")));
    }
    let current = statements(state, system).await?;
    let mut records = Vec::new();
    for (control, decision) in decisions {
        if !state.catalog.is_control(control) {
            return Err(bad(format!(
                "controls.{control}: not an Annex A control of catalog {}",
                state.catalog.version()
            )));
        }
        decision
            .validate()
            .map_err(|e| bad(format!("controls.{control}: {e}")))?;
        let unchanged = current.controls.get(control).is_some_and(|c| {
            c.applicable == decision.applicable && c.justification == decision.justification.trim()
        });
        if unchanged {
            continue;
        }
        records.push(
            applicability_record(system, control, decision, by, now)
                .map_err(|e| bad(format!("controls.{control}: {e}")))?,
        );
    }
    let written = crate::manual::append(state, by, &records, now).await?;
    if !written.is_empty() {
        tracing::info!(
            by,
            system,
            statements = written.len(),
            "statement of applicability changed"
        );
    }
    let mut out = statements(state, system).await?;
    out.written = written;
    Ok(out)
}

/// `GET /v1/systems/{id}/applicability`.
pub async fn get_applicability(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApplicabilityResponse>, ApiError> {
    principal.require_read()?;
    Ok(Json(statements(&state, &id).await?))
}

/// `PUT /v1/systems/{id}/applicability`.
#[tracing::instrument(name = "applicability", skip_all, fields(by = %principal.name))]
pub async fn put_applicability(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ApplicabilityResponse>, ApiError> {
    principal.require_admin()?;
    check_json_content_type(&headers)?;
    let bytes = read_body(&headers, body, state.limits.max_body_bytes).await?;
    let req: ApplicabilityRequest = parse_json(&bytes)?;
    let decisions = expand_groups(&state.catalog, &req.controls, &req.groups)?;
    Ok(Json(
        set_statements(&state, &principal.name, &id, &decisions, Timestamp::now()).await?,
    ))
}
