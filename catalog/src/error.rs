//! Errors raised while loading and validating catalog data.

use std::path::PathBuf;

/// Why a catalog could not be loaded. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML or does not have the expected shape.
    #[error("{file}: {source}")]
    Parse {
        /// The data file name, such as `rules.yaml`.
        file: String,
        /// The parser's message (with line and column).
        #[source]
        source: serde_yaml::Error,
    },
    /// A file parses but one of its entries breaks a rule of the catalog.
    #[error("{file}: {entry}: {reason}")]
    Invalid {
        /// The data file name, such as `controls.yaml`.
        file: String,
        /// The offending entry, such as `control A.6.2.1` or `rule #3 (adrs)`.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl CatalogError {
    /// Shorthand for [`CatalogError::Invalid`].
    pub(crate) fn invalid(file: &str, entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            entry: entry.into(),
            reason: reason.into(),
        }
    }
}
