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
        /// The URL as given (no secrets expected in sqlite URLs).
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

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}
