//! Store errors, with a kind the caller can branch on.

/// What sort of failure, so the server can map it to a status and decide on retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database could not be reached or is busy; retrying may help.
    Unavailable,
    /// The stored data contradicts an invariant (hash mismatch, gap in the ledger).
    Corrupt,
    /// The request conflicts with stored state.
    Conflict,
    /// Anything else.
    Internal,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data is inconsistent.
    #[error("ledger corrupt: {0}")]
    Corrupt(String),
    /// The request conflicts with what is stored.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Encoding or decoding a stored value failed.
    #[error("encoding error: {0}")]
    Encoding(String),
    /// Signing the checkpoint failed.
    #[error("checkpoint signing failed: {0}")]
    Signing(String),
    /// The database URL is not usable.
    #[error("invalid database url {url:?}: {reason}")]
    Url {
        /// The URL as given, any password redacted.
        url: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => StoreErrorKind::Unavailable,
            Self::Database(sqlx::Error::Database(e))
                if e.code().as_deref().is_some_and(retryable) =>
            {
                StoreErrorKind::Unavailable
            }
            Self::Database(_)
            | Self::Migrate(_)
            | Self::Encoding(_)
            | Self::Signing(_)
            | Self::Url { .. } => StoreErrorKind::Internal,
            Self::Corrupt(_) => StoreErrorKind::Corrupt,
            Self::Conflict(_) => StoreErrorKind::Conflict,
        }
    }
}

/// PostgreSQL SQLSTATEs after which the same request may succeed: connection exceptions (08),
/// serialization failure, deadlock, too many connections, lock not available, a terminated
/// session (for example by `idle_in_transaction_session_timeout`) and a server starting or
/// shutting down.
fn retryable(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "40001" | "40P01" | "53300" | "55P03" | "57P01" | "57P02" | "57P03" | "25P03"
        )
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}
