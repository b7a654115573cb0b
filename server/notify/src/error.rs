//! The errors of this crate: [`ConfigError`] for sink settings that cannot be used (each names
//! the setting, e.g. `notifications[0].secret_file`), [`NotifyError`] for building the HTTP
//! client. Delivery itself never errors: it returns an [`crate::Outcome`].
//!
//! No message ever contains a secret: settings errors name the file or the variable a secret
//! comes from, never its value.

/// A sink setting that cannot be used; `serve` refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One setting is wrong.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting's path, e.g. `notifications[2].url`.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// `notifications[index].field: reason`.
    pub(crate) fn at(index: usize, field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting: format!("notifications[{index}].{field}"),
            reason: reason.into(),
        }
    }

    /// The setting's path.
    pub fn setting(&self) -> &str {
        match self {
            Self::Invalid { setting, .. } => setting,
        }
    }
}

/// The deliverer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// reqwest refused the client settings (TLS backend, timeouts).
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}
