//! The [`Collector`] trait: the only thing a new source has to implement.
//!
//! A collector is deliberately thin. It knows how to talk to one source and nothing about
//! cursors, hashing, parsing or classification; the [`crate::engine`] does all of that the same
//! way for every source.
//!
//! Contract:
//! - `list` returns cheap metadata only (no content downloads). Its `version` token must change
//!   whenever the bytes change (git blob id, ETag, content sha, size+mtime); it may also change
//!   when they do not (the engine then compares SHA-256 and emits nothing).
//! - `fetch` returns the artifact's bytes as a stream; the engine reads it in chunks and never
//!   buffers the whole artifact. A stream that fails part-way must return an IO error rather than
//!   a short EOF.
//! - `locator` is stable for the artifact across versions (it is the cursor key).
//! - Methods may be called concurrently for different artifacts; collectors do not retry: the
//!   caller decides using [`CollectError::kind`].

use async_trait::async_trait;

use aims_model::{SourceRef, Timestamp};

/// One artifact as a listing sees it: where it is and a cheap token telling whether it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactRef {
    /// Path relative to the source root (`/`-separated); system rules and catalog rules match it.
    pub path: String,
    /// Stable URI of the artifact; the cursor key and the record's `locator`.
    pub locator: String,
    /// Cheap change token (blob id, ETag, `size-mtime`).
    pub version: String,
    /// Size announced by the listing, when known (the record uses the bytes actually read).
    pub size: Option<u64>,
    /// The AI system the listing itself knows (e.g. an MLflow registered model name).
    pub system: Option<String>,
    /// The artifact's own date, when the listing knows it.
    pub artifact_time: Option<Timestamp>,
    /// Metadata the listing already knows (commit id, branch…), merged into the record.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ArtifactRef {
    /// An artifact with just a path, locator and version.
    pub fn new(
        path: impl Into<String>,
        locator: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            locator: locator.into(),
            version: version.into(),
            size: None,
            system: None,
            artifact_time: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// Metadata that is only worth computing for artifacts that are actually fetched (for git, the
/// time of the last commit touching the file). Returned by [`Collector::fetch_metadata`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FetchMetadata {
    /// The artifact's own date; overrides the listing's, loses to a date parsed from the content.
    pub artifact_time: Option<Timestamp>,
    /// Extra metadata merged into the record (after the listing's `extra`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What a caller can do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollectErrorKind {
    /// Worth retrying later (network, timeouts, 5xx, a busy resource).
    Transient,
    /// Retrying will not help until someone changes the configuration or the source.
    Permanent,
    /// The thing asked for does not exist (artifact, branch, bucket).
    NotFound,
}

/// An error talking to a source.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Local IO failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `reading /data/x.json`.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The artifact, ref or container does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was missing.
        what: String,
    },
    /// A failure worth retrying.
    #[error("{message}")]
    Transient {
        /// What failed.
        message: String,
    },
    /// A failure that will not go away by itself.
    #[error("{message}")]
    Permanent {
        /// What failed.
        message: String,
    },
    /// A source-specific error with an explicit kind (keeps the error chain).
    #[error("{source}")]
    Source {
        /// Retry class.
        kind: CollectErrorKind,
        /// The source's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CollectError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A transient error.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
        }
    }

    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    /// A not-found error.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// Wraps a source-specific error.
    pub fn source(
        kind: CollectErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Source {
            kind,
            source: Box::new(source),
        }
    }

    /// Whether retrying can help.
    pub fn kind(&self) -> CollectErrorKind {
        match self {
            Self::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => CollectErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::Unsupported => CollectErrorKind::Permanent,
                _ => CollectErrorKind::Transient,
            },
            Self::NotFound { .. } => CollectErrorKind::NotFound,
            Self::Transient { .. } => CollectErrorKind::Transient,
            Self::Permanent { .. } => CollectErrorKind::Permanent,
            Self::Source { kind, .. } => *kind,
        }
    }
}

/// A readable artifact body.
pub type ArtifactReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// A source of artifacts. Object safe: the agent holds `Box<dyn Collector>`.
#[async_trait]
pub trait Collector: Send + Sync {
    /// The configured source (id and type) records are attributed to.
    fn source(&self) -> &SourceRef;

    /// Connectivity and permissions check with no side effects on the source.
    async fn check(&self) -> Result<(), CollectError>;

    /// Every artifact currently at the source, with cheap metadata only (no content reads).
    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError>;

    /// The artifact's bytes as a stream.
    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError>;

    /// Extra metadata computed only for artifacts that were fetched (default: none). Called by
    /// the engine after a successful fetch; a failure here is logged and does not fail the fetch.
    async fn fetch_metadata(&self, _artifact: &ArtifactRef) -> Result<FetchMetadata, CollectError> {
        Ok(FetchMetadata::default())
    }
}
