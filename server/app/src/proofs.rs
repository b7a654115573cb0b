//! The transparency-log API (DESIGN §7, integrity.md §6.7), `/v1/log/*` and
//! `/v1/evidence/{id}/proof`: signed checkpoints, inclusion and consistency proofs, and
//! per-record `c2sp.org/tlog-proof@v1` receipts; and the start-up and per-write checks that the
//! ledger still agrees with the checkpoints these keys signed.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use aims_ledger::merkle;
use aims_ledger::proof_file::TlogProof;
use aims_model::wire::{ConsistencyProofResponse, EmbeddedInclusion, InclusionProofResponse};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};

/// Makes sure the newest checkpoint covers the whole tree, refusing to start if the database
/// contradicts a checkpoint these keys signed before (rollback or a swapped database). Errors
/// say what is wrong (they stop `serve` and are printed).
pub async fn ensure_checkpoint(state: &AppState) -> Result<(), crate::integrity::IntegrityError> {
    use crate::integrity::IntegrityError;
    let size = state.store.tree_size().await?;
    let root = state.store.tree_root(size).await?;
    if let Some((ls, lr)) = state.keys.last_signed() {
        if ls > size {
            return Err(IntegrityError::Root(format!(
                "the database holds {size} entries but this log already signed a checkpoint of size {ls}: \
                 was the database rolled back?"
            )));
        }
        let old_root = state.store.tree_root(ls).await?;
        if old_root != lr {
            return Err(IntegrityError::Root(format!(
                "the database's tree at size {ls} differs from the checkpoint signed at that size"
            )));
        }
        if ls > 0 && ls < size {
            let proof = state.store.consistency_proof(ls, size).await?;
            merkle::verify_consistency(ls, size, &proof, &lr, &root).map_err(|e| {
                IntegrityError::Root(format!(
                    "the database's tree at size {size} is not consistent with the checkpoint signed at size {ls}: {e}"
                ))
            })?;
        }
    }
    let note = state
        .keys
        .sign_checkpoint(size, &root)
        .map_err(|e| IntegrityError::Root(format!("cannot sign the checkpoint: {e}")))?;
    state
        .store
        .put_checkpoint(&aims_store::StoredCheckpoint {
            size,
            root,
            note,
            created_at: aims_model::Timestamp::now(),
        })
        .await?;
    state.keys.remember(size, &root);
    tracing::info!(size, origin = state.keys.origin(), "checkpoint signed");
    Ok(())
}

/// Refuses to append (503) once the background ledger check found the stored ledger altered:
/// signing on top of it would vouch for it.
pub fn require_sound_ledger(state: &AppState) -> Result<(), ApiError> {
    match state.integrity.failure() {
        Some(reason) => Err(ApiError::unavailable(format!(
            "the ledger failed its integrity check and the server no longer signs: {reason}"
        ))),
        None => Ok(()),
    }
}

fn b64s(hs: &[merkle::Hash]) -> Vec<String> {
    hs.iter().map(|h| B64.encode(h)).collect()
}

fn param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be a non-negative integer"),
                )
            })
        })
        .transpose()
}

/// `GET /v1/log/checkpoint`: the newest signed checkpoint, as text.
pub async fn get_checkpoint(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    // Any authenticated role: agents check consistency on every acknowledgement, and
    // proofs reveal only hashes.
    let _ = &principal;
    let cp = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::unavailable("no checkpoint has been signed yet"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
        .into_response())
}

/// `GET /v1/log/proof/inclusion?index=&size=` (size defaults to the newest checkpoint).
pub async fn get_inclusion(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // Any authenticated role: agents check consistency on every acknowledgement, and
    // proofs reveal only hashes.
    let _ = &principal;
    let index = param(&q, "index")?
        .ok_or_else(|| ApiError::bad_request("invalid_query", "index is required"))?;
    let tree = state.store.tree_size().await?;
    let size = param(&q, "size")?.unwrap_or(tree);
    if index >= size {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("index {index} must be below size {size}"),
        ));
    }
    if size > tree {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("size {size} is larger than the tree ({tree})"),
        ));
    }
    let hashes = state.store.inclusion_proof(index, size).await?;
    Ok(Json(
        serde_json::to_value(InclusionProofResponse {
            index,
            size,
            hashes: b64s(&hashes),
        })
        .map_err(ApiError::internal)?,
    ))
}

/// `GET /v1/log/proof/consistency?from=&to=`.
pub async fn get_consistency(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // Any authenticated role: agents check consistency on every acknowledgement, and
    // proofs reveal only hashes.
    let _ = &principal;
    let from = param(&q, "from")?
        .ok_or_else(|| ApiError::bad_request("invalid_query", "from is required"))?;
    let tree = state.store.tree_size().await?;
    let to = param(&q, "to")?.unwrap_or(tree);
    if from == 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must be at least 1",
        ));
    }
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("from {from} is larger than to {to}"),
        ));
    }
    if to > tree {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("to {to} is larger than the tree ({tree})"),
        ));
    }
    let hashes = state.store.consistency_proof(from, to).await?;
    Ok(Json(
        serde_json::to_value(ConsistencyProofResponse {
            from,
            to,
            hashes: b64s(&hashes),
        })
        .map_err(ApiError::internal)?,
    ))
}

/// The inclusion proof of a leaf against the newest checkpoint, as embedded in
/// `GET /v1/evidence/{id}`.
pub async fn inclusion_for(state: &AppState, index: u64) -> Result<Value, ApiError> {
    let cp = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::unavailable("no checkpoint has been signed yet"))?;
    if index >= cp.size {
        return Ok(Value::Null);
    }
    let hashes = state.store.inclusion_proof(index, cp.size).await?;
    serde_json::to_value(EmbeddedInclusion {
        size: cp.size,
        hashes: b64s(&hashes),
        checkpoint: cp.note,
    })
    .map_err(ApiError::internal)
}

/// `GET /v1/evidence/{id}/proof`: a `c2sp.org/tlog-proof@v1` receipt for one record.
pub async fn get_tlog_proof(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_read()?;
    let ev = state
        .store
        .evidence(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no evidence record {id}")))?;
    let cp = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::unavailable("no checkpoint has been signed yet"))?;
    let hashes = state.store.inclusion_proof(ev.leaf_index, cp.size).await?;
    let proof = TlogProof {
        extra: None,
        index: ev.leaf_index,
        hashes,
        checkpoint_note: cp.note,
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        proof.encode(),
    )
        .into_response())
}
