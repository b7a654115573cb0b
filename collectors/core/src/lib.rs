//! aims-collect: everything a source needs except talking to the source itself.
//!
//! - [`config`]: the `sources:` entries of the agent configuration (DESIGN §3a) as one closed,
//!   serde-tagged enum, validated without IO.
//! - [`system`]: how a source names the AI system of an artifact (fixed name or path pattern).
//! - [`collector`]: the thin [`Collector`] trait a source implements (`check`, `list`, `fetch`).
//! - [`engine`]: the generic poll cycle (list → diff against the cursor → fetch only what changed
//!   → SHA-256 while streaming → parse → classify → evidence records). Sources cannot get dedup or
//!   hashing wrong because they never do either.
//! - [`cursor`]: what the engine remembers between cycles, persisted atomically.
//! - [`formats`]: best-effort parsers that turn artifact bytes into classification facts and
//!   record metadata. A parser never drops an artifact.
//! - [`sources::dir`]: the plain-directory source (std/tokio only).
//! - `testkit` (feature `testkit`): the compliance harness every source's tests run.

pub mod collector;
pub mod config;
pub mod cursor;
pub mod deadline;
pub mod engine;
pub mod formats;
pub mod progress;
pub mod sources;
pub mod system;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use collector::{
    ArtifactReader, ArtifactRef, CollectError, CollectErrorKind, Collector, FetchMetadata,
};
pub use config::{
    ConfigError, DirSource, GitSource, GithubSource, MlflowSource, PathFilter, S3Source,
    SourceConfig,
};
pub use cursor::{Cursor, CursorEntry, CursorError};
pub use deadline::DeadlineReader;
pub use engine::{
    DEFAULT_MAX_PARSE_BYTES, MAX_UNSIZED_ARTIFACT_BYTES, PollContext, PollOutcome, PollStats, poll,
};
pub use formats::{Parsed, parse};
pub use sources::dir::DirCollector;
pub use system::SystemRule;
