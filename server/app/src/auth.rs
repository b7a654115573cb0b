//! Bearer tokens and dashboard sessions.
//!
//! A token is `aims_` + 43 characters of base64url (32 random bytes). The database holds
//! `hex(SHA-256(token))`; lookup is by that hash, so comparing secrets never happens in code and
//! no timing side channel exposes a prefix.
//!
//! Browsers never hold a token (issue 18 M8): `/login` (or `/?token=`) exchanges a read-capable
//! token for a random session id, stored hashed server-side with the token's name and role and
//! an expiry ([`SESSION_TTL_SECS`], never past the token's own). The session cookie is
//! `HttpOnly; SameSite=Strict; Path=/`, plus `Secure` (and the `__Host-` name prefix) when the
//! server speaks TLS. A session follows its token: revoking or expiring the token ends it.
//!
//! Which credential each request may use (issue 18 M7): the `Authorization: Bearer` header
//! anywhere; the session cookie only on `GET`/`HEAD` (dashboard pages and API reads), so no
//! `/v1` write route can be driven by a browser's ambient cookie. The dashboard's admin forms
//! (`forms.rs`) take the session through [`session_of`] and a per-session form token
//! (`csrf.rs`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use sha2::{Digest, Sha256};

use aims_model::Timestamp;
use aims_store::{NewSession, Role, TokenInfo, TokenScope};

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "aims_session";

/// Name of the session cookie under TLS: the `__Host-` prefix makes browsers refuse it unless it
/// is `Secure`, has `Path=/` and no `Domain`, so a sibling host cannot plant one.
pub const SESSION_COOKIE_TLS: &str = "__Host-aims_session";

/// How long a dashboard session lasts (12 h), unless its token expires earlier.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

/// The session cookie's name for a server with or without TLS.
pub fn session_cookie_name(tls: bool) -> &'static str {
    if tls {
        SESSION_COOKIE_TLS
    } else {
        SESSION_COOKIE
    }
}

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

/// Generates a new session id (32 random bytes, base64url).
pub fn generate_session_id() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
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
    /// Fails with 403 unless the token is an admin's (compliance records: statements of
    /// applicability, uploads, acknowledgements).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a {} token cannot write compliance records; use an admin token",
                self.role.as_str()
            )))
        }
    }

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

    /// Fails with 403 naming the first record this token's scope does not allow (its agent,
    /// source or AI system).
    pub fn require_scope(&self, records: &[aims_model::EvidenceRecord]) -> Result<(), ApiError> {
        for (i, r) in records.iter().enumerate() {
            if let Some(why) = self.scope.refusal_for_record(r) {
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

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let h = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// The session id in the request's session cookie, if any (only the name for this server's
/// scheme counts).
pub fn session_cookie(headers: &HeaderMap, tls: bool) -> Option<String> {
    let name = session_cookie_name(tls);
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == name
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
    let info = token_info(state, token).await?;
    Ok(Principal {
        name: info.name,
        role: info.role,
        scope: info.scope,
    })
}

async fn token_info(state: &AppState, token: &str) -> Result<TokenInfo, ApiError> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::unauthorized("invalid bearer token"));
    }
    let info = state.store.token_by_hash(&token_hash(token)).await?;
    let Some(info) = info else {
        return Err(ApiError::unauthorized("unknown bearer token"));
    };
    if info.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this token was revoked"));
    }
    if info.expires_at.is_some_and(|e| e <= Timestamp::now()) {
        return Err(ApiError::unauthorized("this token has expired"));
    }
    Ok(info)
}

/// Resolves a session id to the principal of its token, refusing unknown, expired and revoked
/// sessions and sessions whose token is no longer valid.
pub async fn authenticate_session(state: &AppState, id: &str) -> Result<Principal, ApiError> {
    let well_formed = id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::unauthorized("invalid session"));
    }
    let Some(s) = state.store.session_by_hash(&token_hash(id)).await? else {
        return Err(ApiError::unauthorized("unknown session; sign in again"));
    };
    if !s.is_valid_at(Timestamp::now()) {
        return Err(ApiError::unauthorized(
            "this session has ended (expired, signed out or its token revoked); sign in again",
        ));
    }
    Ok(Principal {
        name: s.token.name,
        role: s.token.role,
        scope: s.token.scope,
    })
}

/// The session of a dashboard request and its principal: the session id from the cookie, or
/// `None` when the request carries no session (a bearer header does not count: forms and their
/// tokens belong to a browser's session, see `csrf.rs`).
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, Principal)>, ApiError> {
    if bearer(headers).is_some() {
        return Ok(None);
    }
    let Some(id) = session_cookie(headers, state.tls) else {
        return Ok(None);
    };
    let principal = authenticate_session(state, &id).await?;
    Ok(Some((id, principal)))
}

/// A new dashboard session for a read-capable token: the session is stored and the
/// `Set-Cookie` value returned. 401 for an invalid token, 403 for a token that cannot read.
pub async fn start_session(state: &AppState, token: &str) -> Result<String, ApiError> {
    let info = token_info(state, token).await?;
    if !info.role.can_read() {
        return Err(ApiError::forbidden(format!(
            "a {} token cannot read the dashboard; use a viewer or auditor token",
            info.role.as_str()
        )));
    }
    let id = generate_session_id().map_err(ApiError::internal)?;
    let now = Timestamp::now();
    let mut expires_at =
        Timestamp::from_datetime(now.as_datetime() + chrono::Duration::seconds(SESSION_TTL_SECS));
    if let Some(e) = info.expires_at
        && e < expires_at
    {
        expires_at = e;
    }
    state
        .store
        .create_session(&NewSession {
            id_hash: token_hash(&id),
            token_hash: token_hash(token),
            token_name: info.name.clone(),
            role: info.role,
            created_at: now,
            expires_at,
        })
        .await?;
    tracing::info!(token.name = %info.name, "dashboard session started");
    let max_age = (expires_at.as_datetime() - now.as_datetime())
        .num_seconds()
        .max(0);
    Ok(session_set_cookie(state.tls, &id, max_age))
}

/// Ends the session named by the request's cookie (if any) and returns the `Set-Cookie` value
/// that clears it.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(id) = session_cookie(headers, state.tls) {
        state.store.delete_session(&token_hash(&id)).await?;
    }
    Ok(session_set_cookie(state.tls, "", 0))
}

/// The `Set-Cookie` value for a session id we generated (nothing a client sent ever goes here).
fn session_set_cookie(tls: bool, id: &str, max_age: i64) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        session_cookie_name(tls)
    )
}

/// The principal of a request: its bearer token, else (on `GET`/`HEAD` only) its session.
pub async fn request_principal(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    if let Some(token) = bearer(headers) {
        return authenticate(state, &token).await;
    }
    if method == Method::GET || method == Method::HEAD {
        if let Some(id) = session_cookie(headers, state.tls) {
            return authenticate_session(state, &id).await;
        }
        return Err(ApiError::unauthorized(
            "missing bearer token: send Authorization: Bearer <token>",
        ));
    }
    Err(ApiError::unauthorized(
        "missing bearer token: send Authorization: Bearer <token> (the dashboard session cookie \
         is accepted on GET only)",
    ))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        request_principal(state, &parts.method, &parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_18_l_cookie_only_carries_generated_ids() {
        let id = generate_session_id().unwrap();
        assert_eq!(id.len(), 43);
        let c = session_set_cookie(false, &id, 60);
        assert_eq!(
            c,
            format!("aims_session={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60")
        );
        let c = session_set_cookie(true, &id, 60);
        assert!(
            c.starts_with("__Host-aims_session=") && c.ends_with("; Secure"),
            "{c}"
        );
    }

    #[test]
    fn session_cookie_is_read_by_its_scheme_name() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=b; aims_session=xyz; __Host-aims_session=tls"
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&h, false).as_deref(), Some("xyz"));
        assert_eq!(session_cookie(&h, true).as_deref(), Some("tls"));
        h.insert(
            axum::http::header::COOKIE,
            "aims_token=old".parse().unwrap(),
        );
        assert_eq!(
            session_cookie(&h, false),
            None,
            "the old token cookie is ignored"
        );
    }
}
