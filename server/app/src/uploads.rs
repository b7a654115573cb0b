//! Manual evidence (DESIGN §12.3, issue 14 item 3): `POST /v1/uploads` (admin) takes the raw
//! bytes of a document no agent collects (an AI policy, an impact assessment, a supplier
//! review), streams them to the blob store's staging area while hashing, bounded by
//! `max_upload_bytes`, parses them as collected files are parsed, keeps them by SHA-256 and
//! appends the upload's `manual` record (`aims_model::upload`) to the ledger.
//! `GET /v1/blobs/{sha256}` (viewer, auditor, admin) serves the bytes.
//!
//! Nothing is half-written: an upload that is too large, empty or interrupted leaves its staged
//! file to be removed on drop, so no blob and no record; a blob is kept only once its bytes are
//! complete, and removed again if its record cannot be appended.

use std::collections::HashMap;
use std::io::Write;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use aims_model::upload::{Upload, upload_record, validate_name};
use aims_model::{ContentHash, Timestamp};
use aims_store::BlobData;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};

/// Default `max_upload_bytes` (50 MiB).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;
/// Uploads up to this size are parsed for metadata (larger ones are kept and hashed only).
const PARSE_LIMIT: u64 = 4 * 1024 * 1024;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_upload", message)
}

/// What an upload states besides its bytes, checked (the query of `POST /v1/uploads`, or the
/// fields of the dashboard's upload form).
pub(crate) struct UploadQuery {
    system: String,
    kind: String,
    name: String,
    artifact_time: Option<Timestamp>,
    expires_at: Option<Timestamp>,
}

/// The parameters an upload takes.
pub(crate) const UPLOAD_PARAMETERS: [&str; 5] =
    ["system", "kind", "name", "artifact_time", "expires_at"];

/// Checks an upload's parameters ([`UPLOAD_PARAMETERS`]; an unknown one is refused).
pub(crate) fn upload_query(
    state: &AppState,
    q: &HashMap<String, String>,
) -> Result<UploadQuery, ApiError> {
    if let Some(k) = q.keys().find(|k| !UPLOAD_PARAMETERS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "unknown parameter {k:?} (expected {})",
                UPLOAD_PARAMETERS.join(", ")
            ),
        ));
    }
    let need = |k: &str| {
        q.get(k)
            .map(String::to_owned)
            .ok_or_else(|| bad(format!("{k}: required")))
    };
    let (system, kind, name) = (need("system")?, need("kind")?, need("name")?);
    aims_model::record::validate_ident("system", &system).map_err(|e| bad(e.to_string()))?;
    if state.catalog.kind(&kind).is_none()
        || aims_model::manual::SERVER_KINDS.contains(&kind.as_str())
    {
        return Err(bad(format!(
            "kind: {kind:?} is not an evidence kind of the catalog (GET /v1/catalog lists them)"
        )));
    }
    validate_name(&name).map_err(|e| bad(e.to_string()))?;
    let time = |k: &str| -> Result<Option<Timestamp>, ApiError> {
        q.get(k)
            .map(|v| Timestamp::parse_utc(v).map_err(|e| bad(format!("{k}: {e} (RFC 3339 UTC)"))))
            .transpose()
    };
    Ok(UploadQuery {
        system,
        kind,
        name,
        artifact_time: time("artifact_time")?,
        expires_at: time("expires_at")?,
    })
}

/// 413 when a declared body length is over the upload limit.
pub(crate) fn check_declared_length(state: &AppState, len: Option<u64>) -> Result<(), ApiError> {
    let limit = state.limits.max_upload_bytes;
    match len {
        Some(len) if len > limit as u64 => Err(ApiError::too_large(format!(
            "the upload is {len} bytes, the limit is {limit} (max_upload_bytes)"
        ))),
        _ => Ok(()),
    }
}

/// A stored upload.
#[derive(Clone, Debug)]
pub(crate) struct Uploaded {
    /// The record's ID.
    pub record_id: aims_model::RecordId,
    /// SHA-256 of the bytes.
    pub sha256: ContentHash,
    /// Their size.
    pub size: u64,
    /// The record's leaf.
    pub leaf_index: Option<u64>,
    /// The record's locator.
    pub locator: String,
}

/// Stores the upload `q` by `by` whose bytes arrive on `chunks`: streamed to the blob store's
/// staging area while hashing, bounded by `max_upload_bytes`, parsed as a collected file would
/// be, kept by SHA-256, and its `manual` record appended. Nothing is kept if any step fails.
pub(crate) async fn store_upload<S, E>(
    state: &AppState,
    by: &str,
    q: UploadQuery,
    mut chunks: S,
) -> Result<Uploaded, ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let limit = state.limits.max_upload_bytes;
    // Stream to a staged file beside the blobs, hashing as it arrives.
    let dir = state.store.blob_staging_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let staged = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(&dir)
        .map_err(ApiError::internal)?;
    let (file, path) = staged.into_parts();
    let mut out = std::io::BufWriter::new(file);
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    // The bytes are also kept in memory while the upload is small enough to parse.
    let mut head: Option<Vec<u8>> = Some(Vec::new());
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| bad(format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit as u64 {
            return Err(ApiError::too_large(format!(
                "the upload exceeds the limit of {limit} bytes (max_upload_bytes)"
            )));
        }
        hash.update(&chunk);
        out.write_all(&chunk).map_err(ApiError::internal)?;
        if size > PARSE_LIMIT {
            head = None;
        } else if let Some(h) = head.as_mut() {
            h.extend_from_slice(&chunk);
        }
    }
    out.flush().map_err(ApiError::internal)?;
    drop(out);
    if size == 0 {
        return Err(bad("the upload is empty"));
    }
    let sha256 = ContentHash::parse(&hex::encode(hash.finalize()))
        .map_err(|e| ApiError::internal(format!("digest: {e}")))?;

    // Parsed as a collected file would be (metadata, the document's own date).
    let mut metadata = serde_json::Map::new();
    let mut parsed_time = None;
    if let Some(bytes) = head {
        let parsed = aims_collect::formats::parse(&q.name, &bytes);
        metadata = parsed.metadata;
        parsed_time = parsed.artifact_time;
        if let Some(f) = parsed.format {
            metadata.insert("format".into(), f.into());
        }
    }
    let now = Timestamp::now();
    let record = upload_record(&Upload {
        system: q.system.clone(),
        kind: q.kind.clone(),
        name: q.name.clone(),
        sha256: sha256.clone(),
        size,
        artifact_time: q.artifact_time.or(parsed_time),
        expires_at: q.expires_at,
        by: by.to_owned(),
        at: now,
        metadata,
    })
    .map_err(|e| bad(e.to_string()))?;

    // The blob first (whole, under its digest), then the record; a record that cannot be
    // written takes a new blob with it.
    let staged_path = path
        .keep()
        .map_err(|e| ApiError::internal(format!("staging: {e}")))?;
    let new_blob = match state.store.put_blob(&sha256, size, &staged_path).await {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged_path).await;
            return Err(e.into());
        }
    };
    let leaves = match crate::manual::append(state, by, std::slice::from_ref(&record), now).await {
        Ok(l) => l,
        Err(e) => {
            if new_blob {
                let _ = state.store.delete_blob(&sha256).await;
            }
            return Err(e);
        }
    };
    let record_id = record
        .record_id()
        .map_err(|e| ApiError::internal(format!("record id: {e}")))?;
    tracing::info!(system = %q.system, kind = %q.kind, name = %q.name, %sha256, size, "evidence uploaded");
    Ok(Uploaded {
        record_id,
        sha256,
        size,
        leaf_index: leaves.first().copied(),
        locator: record.locator,
    })
}

/// `POST /v1/uploads?system=&kind=&name=[&artifact_time=][&expires_at=]` (admin, raw body)
/// → 201 `{"record_id","sha256","leaf_index"}`.
#[tracing::instrument(name = "upload", skip_all, fields(by = %principal.name))]
pub async fn post_upload(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let q = upload_query(&state, &q)?;
    check_declared_length(&state, crate::api::declared_length(&headers))?;
    let u = store_upload(&state, &principal.name, q, body.into_data_stream()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "record_id": u.record_id,
            "sha256": u.sha256,
            "size": u.size,
            "leaf_index": u.leaf_index,
            "locator": u.locator,
        })),
    )
        .into_response())
}

/// `GET /v1/blobs/{sha256}` (viewer, auditor, admin): the bytes of an upload.
pub async fn get_blob(
    State(state): State<AppState>,
    principal: Principal,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    principal.require_read()?;
    let sha256 = ContentHash::parse(&digest)
        .map_err(|_| ApiError::bad_request("invalid_path", "expected 64 lowercase hex digits"))?;
    let blob = state
        .store
        .blob(&sha256)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no blob {sha256}")))?;
    let body = match blob.data {
        BlobData::Bytes(b) => Body::from(b),
        BlobData::File(p) => {
            let f = tokio::fs::File::open(&p)
                .await
                .map_err(ApiError::internal)?;
            Body::from_stream(tokio_util::io::ReaderStream::new(f))
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, blob.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename={sha256}"),
            ),
        ],
        body,
    )
        .into_response())
}
