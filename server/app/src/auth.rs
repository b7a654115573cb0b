//! Bearer tokens: generated here, stored only as SHA-256, looked up per request.
//!
//! A token is `aims_` + 43 characters of base64url (32 random bytes). The database holds
//! `hex(SHA-256(token))`; lookup is by that hash, so comparing secrets never happens in code and
//! no timing side channel exposes a prefix. Browsers present the same token in an HttpOnly cookie
//! set by `/login`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};

use aims_model::Timestamp;
use aims_store::{Role, TokenInfo, TokenScope};

use crate::AppState;
use crate::error::ApiError;

/// Name of the dashboard cookie.
pub const COOKIE: &str = "aims_token";

/// Generates a new secret token.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(format!(
        "aims_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    ))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Token name.
    pub name: String,
    /// Token role.
    pub role: Role,
    /// What an agent token may write.
    pub scope: TokenScope,
}

impl Principal {
    /// Fails with 403 unless the role may read.
    pub fn require_read(&self) -> Result<(), ApiError> {
        if self.role.can_read() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token cannot read; use a viewer or auditor token",
                self.role.as_str()
            )))
        }
    }

    /// Fails with 403 unless the role may export.
    pub fn require_export(&self) -> Result<(), ApiError> {
        if self.role.can_export() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token cannot export; use an auditor token",
                self.role.as_str()
            )))
        }
    }

    /// Fails with 403 naming the first record this token's scope does not allow.
    pub fn require_scope(&self, records: &[aims_model::EvidenceRecord]) -> Result<(), ApiError> {
        for (i, r) in records.iter().enumerate() {
            if let Some(why) = self.scope.refusal(&r.agent, &r.source.id) {
                return Err(ApiError::forbidden(format!("records[{i}]: {why}")));
            }
        }
        Ok(())
    }

    /// Fails with 403 when this token's scope does not allow `agent` and `source` (`what` names
    /// the part of the request, e.g. `confirmation`).
    pub fn require_source_scope(
        &self,
        agent: &str,
        source: &str,
        what: &str,
    ) -> Result<(), ApiError> {
        match self.scope.refusal(agent, source) {
            Some(why) => Err(ApiError::forbidden(format!("{what}: {why}"))),
            None => Ok(()),
        }
    }

    /// Fails with 403 unless the role may write evidence.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role.can_write_evidence() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token cannot write evidence; use an agent token",
                self.role.as_str()
            )))
        }
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// The dashboard cookie's token, if any.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == COOKIE
                && !val.is_empty()
            {
                return Some(val.to_owned());
            }
        }
    }
    None
}

/// Resolves a token to a principal, refusing unknown, expired and revoked tokens.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::unauthorized("invalid bearer token"));
    }
    let info: Option<TokenInfo> = state.store.token_by_hash(&token_hash(token)).await?;
    let Some(info) = info else {
        return Err(ApiError::unauthorized("unknown bearer token"));
    };
    if info.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this token was revoked"));
    }
    if info.expires_at.is_some_and(|e| e <= Timestamp::now()) {
        return Err(ApiError::unauthorized("this token has expired"));
    }
    Ok(Principal {
        name: info.name,
        role: info.role,
        scope: info.scope,
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)
            .or_else(|| cookie_token(&parts.headers))
            .ok_or_else(|| {
                ApiError::unauthorized("missing bearer token: send Authorization: Bearer <token>")
            })?;
        authenticate(state, &token).await
    }
}
