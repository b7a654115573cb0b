//! aims-collect-git: the `git` source, and [`build`], which turns any source configuration this
//! build supports (`git`, `dir`) into a [`Collector`].
//!
//! The source shells out to the `git` CLI through `tokio::process` (no libgit2): it is what
//! operators already have, it speaks every transport and credential helper, and streaming from
//! `git cat-file --batch` keeps memory flat however large a file is. See [`collector`] for the
//! repository modes and the cost of a poll, [`command`] for how git is invoked, [`batch`] for the
//! shared `cat-file --batch` processes and [`history`] for last-commit times in one `git log`
//! pass.

pub mod batch;
pub mod collector;
pub mod command;
pub mod history;

use std::path::Path;

use aims_collect::{Collector, ConfigError, DirCollector, SourceConfig};
use aims_model::SourceType;

pub use collector::GitCollector;
pub use command::GitError;

/// Why a collector could not be built from configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The source type is implemented in a crate this build does not include.
    #[error(
        "source {id:?}: type {source_type} is not supported by this build (supported: git, dir)"
    )]
    NotSupported {
        /// The source id.
        id: String,
        /// Its type.
        source_type: SourceType,
    },
    /// Setting up the git collector failed.
    #[error("source {id:?}: {source}")]
    Git {
        /// The source id.
        id: String,
        /// Why.
        #[source]
        source: GitError,
    },
    /// Setting up the dir collector failed.
    #[error("source {id:?}: {source}")]
    Dir {
        /// The source id.
        id: String,
        /// Why.
        #[source]
        source: aims_collect::CollectError,
    },
}

/// Validates `cfg` and builds its collector; `cache_dir` holds this source's remote mirrors.
/// No IO happens until the collector is used.
pub fn build(cfg: &SourceConfig, cache_dir: &Path) -> Result<Box<dyn Collector>, BuildError> {
    cfg.validate()?;
    let id = cfg.id().to_owned();
    match cfg {
        SourceConfig::Git(g) => GitCollector::new(g, cache_dir)
            .map(|c| Box::new(c) as Box<dyn Collector>)
            .map_err(|source| BuildError::Git { id, source }),
        SourceConfig::Dir(d) => DirCollector::new(d)
            .map(|c| Box::new(c) as Box<dyn Collector>)
            .map_err(|source| BuildError::Dir { id, source }),
        other @ (SourceConfig::Mlflow(_) | SourceConfig::S3(_) | SourceConfig::Github(_)) => {
            Err(BuildError::NotSupported {
                id,
                source_type: other.source_type(),
            })
        }
    }
}
