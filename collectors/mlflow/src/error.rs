//! [`MlflowError`]: everything that can go wrong talking to a tracking server, with the retry
//! class the engine needs ([`MlflowError::kind`]).
//!
//! Mapping: HTTP 5xx, 408, 429, timeouts and connection failures are
//! [`CollectErrorKind::Transient`]; 401/403 and other 4xx are [`CollectErrorKind::Permanent`];
//! 404 (and MLflow's `RESOURCE_DOES_NOT_EXIST` under any status) is
//! [`CollectErrorKind::NotFound`]. Messages name the endpoint, never the token.

use aims_collect::{CollectError, CollectErrorKind, ConfigError};

/// An error of the MLflow source.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The source configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The bearer token could not be read (`token_env` unset, `token_file` unreadable or empty).
    #[error("source {id:?}: token: {reason}")]
    Token {
        /// The source id.
        id: String,
        /// Why (never the token itself).
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The request did not get a response (connect, timeout, body read).
    #[error("{endpoint}: request failed: {source}")]
    Request {
        /// The endpoint, e.g. `GET registered-models/search`.
        endpoint: String,
        /// The transport error (its URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{endpoint}: HTTP {status}{}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Http {
        /// The endpoint.
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// MLflow's `error_code`, when the body carried one.
        code: Option<String>,
        /// MLflow's `message` (truncated), when the body carried one.
        message: Option<String>,
    },
    /// The server redirected the request off the tracking server's origin (or too often); the
    /// redirect was not followed, so no credential left the origin.
    #[error(
        "{endpoint}: HTTP {status} redirect to {location} not followed: the token is only sent to the tracking_uri's origin (set tracking_uri to the server's real address)"
    )]
    Redirect {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The `Location` header (truncated).
        location: String,
    },
    /// A JSON answer larger than the configured bound.
    #[error("{endpoint}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The endpoint.
        endpoint: String,
        /// The bound.
        limit: usize,
    },
    /// A paginated call did not end properly (too many pages, a repeated page token): the
    /// listing is incomplete, so it fails rather than being taken as complete.
    #[error("{endpoint}: pagination did not end: {reason}")]
    Pagination {
        /// The endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// A listing limit was reached, so the listing would be incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// A success response whose body is not the JSON MLflow documents.
    #[error("{endpoint}: unexpected response body: {source}")]
    Decode {
        /// The endpoint.
        endpoint: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Canonical JSON encoding of a synthesised document failed.
    #[error("encoding {what}: {reason}")]
    Encode {
        /// Which document.
        what: String,
        /// Why.
        reason: String,
    },
    /// The registry entry the artifact refers to no longer exists.
    #[error("not found: {0}")]
    NotFound(String),
    /// The artifact reference was not produced by this collector.
    #[error("not an artifact of this MLflow source: {0}")]
    ForeignArtifact(String),
}

impl MlflowError {
    /// The retry class (see the module docs).
    pub fn kind(&self) -> CollectErrorKind {
        match self {
            Self::Config(_)
            | Self::Token { .. }
            | Self::Client(_)
            | Self::Decode { .. }
            | Self::Encode { .. }
            | Self::ForeignArtifact(_)
            | Self::Redirect { .. } => CollectErrorKind::Permanent,
            Self::TooLarge { .. } | Self::Pagination { .. } | Self::Incomplete(_) => {
                CollectErrorKind::Transient
            }
            Self::Request { source, .. } => {
                if source.is_builder() || source.is_redirect() {
                    CollectErrorKind::Permanent
                } else {
                    CollectErrorKind::Transient
                }
            }
            Self::Http { status, code, .. } => http_kind(*status, code.as_deref()),
            Self::NotFound(_) => CollectErrorKind::NotFound,
        }
    }
}

fn http_kind(status: u16, code: Option<&str>) -> CollectErrorKind {
    if code == Some("RESOURCE_DOES_NOT_EXIST") {
        return CollectErrorKind::NotFound;
    }
    match status {
        404 => CollectErrorKind::NotFound,
        408 | 429 => CollectErrorKind::Transient,
        s if s >= 500 => CollectErrorKind::Transient,
        _ => CollectErrorKind::Permanent,
    }
}

impl MlflowError {
    /// Whether the tracking server itself said the object does not exist (MLflow's typed
    /// `RESOURCE_DOES_NOT_EXIST` answer). Only that is taken as evidence of removal while
    /// listing; a bare 404 (a proxy, a wrong path) or an empty answer is not (issue 18, A2).
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Http { code: Some(c), .. } if c == "RESOURCE_DOES_NOT_EXIST")
    }
}

impl From<MlflowError> for CollectError {
    fn from(e: MlflowError) -> Self {
        let kind = e.kind();
        CollectError::source(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: Option<&str>) -> MlflowError {
        MlflowError::Http {
            endpoint: "GET x".into(),
            status,
            code: code.map(str::to_owned),
            message: Some("m".into()),
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(http(500, None).kind(), CollectErrorKind::Transient);
        assert_eq!(http(503, None).kind(), CollectErrorKind::Transient);
        assert_eq!(http(429, None).kind(), CollectErrorKind::Transient);
        assert_eq!(http(401, None).kind(), CollectErrorKind::Permanent);
        assert_eq!(http(403, None).kind(), CollectErrorKind::Permanent);
        assert_eq!(http(404, None).kind(), CollectErrorKind::NotFound);
        assert_eq!(
            http(400, Some("RESOURCE_DOES_NOT_EXIST")).kind(),
            CollectErrorKind::NotFound
        );
        assert_eq!(
            http(400, Some("INVALID_PARAMETER_VALUE")).kind(),
            CollectErrorKind::Permanent
        );
        let ce: CollectError = http(502, None).into();
        assert_eq!(ce.kind(), CollectErrorKind::Transient);
        assert!(ce.to_string().contains("HTTP 502"), "{ce}");
    }
}
