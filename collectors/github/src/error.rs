//! [`GithubError`]: everything that can go wrong building or running the GitHub collector, with
//! [`GithubError::kind`] telling the caller whether retrying can help.
//!
//! Messages never contain the token: the token is only ever handed to octocrab, and URLs in
//! messages are API paths (no credentials can appear in them).

use aims_collect::{CollectError, CollectErrorKind};

/// An error of the GitHub source.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The configuration cannot be used (missing token variable, unreadable token file…).
    #[error("{field}: {reason}")]
    Config {
        /// The offending field, e.g. `token_env`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// octocrab could not build its HTTP client.
    #[error("building the GitHub client: {0}")]
    Client(#[source] octocrab::Error),
    /// The request did not produce a response (connection refused, TLS, timeout).
    #[error("GET {path}: {source}")]
    Http {
        /// The API path requested.
        path: String,
        /// The transport error.
        #[source]
        source: octocrab::Error,
    },
    /// GitHub answered with an error status.
    #[error("GET {path}: HTTP {status}: {message}")]
    Status {
        /// The API path requested.
        path: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's `message`, or the start of the body.
        message: String,
    },
    /// The rate limit is exhausted and the reset is further away than the configured maximum
    /// wait (or the limit kept being hit after waiting).
    #[error("GET {path}: rate limited until {reset} (waiting is capped at {max_wait_secs} s)")]
    RateLimited {
        /// The API path requested.
        path: String,
        /// When GitHub says the limit resets (RFC 3339), or how long it asked to wait.
        reset: String,
        /// The configured cap on one wait.
        max_wait_secs: u64,
    },
    /// The API redirected off its origin or base path (or too often); the redirect was not
    /// followed, so the token stayed with the configured API.
    #[error(
        "GET {path}: HTTP {status} redirect to {location} not followed: the token is only sent to api_url"
    )]
    Redirect {
        /// The API path requested.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The `Location` header (truncated).
        location: String,
    },
    /// The request did not complete within its total time limit.
    #[error("GET {path}: no complete answer within {secs} s")]
    Timeout {
        /// The API path requested.
        path: String,
        /// The limit.
        secs: u64,
    },
    /// The response body is not what the API documents.
    #[error("GET {path}: unexpected response: {reason}")]
    Decode {
        /// The API path requested.
        path: String,
        /// What did not parse.
        reason: String,
    },
    /// A locator this collector did not produce.
    #[error("not a locator of this source: {0}")]
    Locator(String),
    /// Local IO (the on-disk ETag cache).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

impl GithubError {
    /// Whether retrying can help.
    pub fn kind(&self) -> CollectErrorKind {
        match self {
            Self::Config { .. } | Self::Client(_) | Self::Locator(_) | Self::Redirect { .. } => {
                CollectErrorKind::Permanent
            }
            Self::Http { .. }
            | Self::RateLimited { .. }
            | Self::Io { .. }
            | Self::Timeout { .. } => CollectErrorKind::Transient,
            Self::Status { status, .. } => match status {
                404 | 410 => CollectErrorKind::NotFound,
                408 | 429 | 500..=599 => CollectErrorKind::Transient,
                _ => CollectErrorKind::Permanent,
            },
            // A truncated or garbled body is more likely a proxy hiccup than a changed API.
            Self::Decode { .. } => CollectErrorKind::Transient,
        }
    }

    /// Whether GitHub said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Status {
                status: 404 | 410,
                ..
            }
        )
    }
}

impl From<GithubError> for CollectError {
    fn from(e: GithubError) -> Self {
        CollectError::source(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let status = |status| GithubError::Status {
            path: "/x".into(),
            status,
            message: String::new(),
        };
        assert_eq!(status(404).kind(), CollectErrorKind::NotFound);
        assert_eq!(status(401).kind(), CollectErrorKind::Permanent);
        assert_eq!(status(403).kind(), CollectErrorKind::Permanent);
        assert_eq!(status(502).kind(), CollectErrorKind::Transient);
        let rl = GithubError::RateLimited {
            path: "/x".into(),
            reset: "2026-01-01T00:00:00Z".into(),
            max_wait_secs: 900,
        };
        assert_eq!(rl.kind(), CollectErrorKind::Transient);
        assert!(rl.to_string().contains("2026-01-01T00:00:00Z"));
        let c: CollectError = status(404).into();
        assert_eq!(c.kind(), CollectErrorKind::NotFound);
    }
}
