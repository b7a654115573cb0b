//! Server settings: an optional YAML/TOML file (`--config`), then `AIMS_SERVER__*` environment
//! variables, then command-line flags. Validated without IO.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default request body limit for ingest (4 MiB: ~2,000 typical records).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Default body limit of `POST /v1/confirmations` (64 MiB: a listing of ~500,000 artifacts).
pub const DEFAULT_MAX_CONFIRMATION_BYTES: usize = 64 * 1024 * 1024;

/// The server's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// File format version (1).
    pub version: u32,
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// `sqlite://PATH`.
    pub database: String,
    /// The ledger's origin line (and log key name), e.g. `aims.example.com/ledger`.
    pub origin: String,
    /// Where the log and clock keys live (default: `aims-keys` beside a SQLite file).
    pub keys_dir: Option<PathBuf>,
    /// Catalog override directory.
    pub catalog_dir: Option<PathBuf>,
    /// Re-assess every system this often, so staleness advances without new evidence.
    pub assess_interval_secs: u64,
    /// Largest ingest body.
    pub max_body_bytes: usize,
    /// Largest confirmation body (a whole source listing).
    pub max_confirmation_bytes: usize,
    /// OTLP/HTTP base URL (e.g. `http://otel-collector:4318`) to export traces and metrics to;
    /// off when unset, unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`--otlp-endpoint` overrides
    /// both).
    pub otlp_endpoint: Option<String>,
    /// Serve HTTPS with this certificate and key (rustls); plain HTTP when absent.
    pub tls: Option<crate::tls::TlsSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: 1,
            listen: "127.0.0.1:8080".to_owned(),
            database: "sqlite://aims.db".to_owned(),
            origin: "aims-evidence.local/ledger".to_owned(),
            keys_dir: None,
            catalog_dir: None,
            assess_interval_secs: 60,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_confirmation_bytes: DEFAULT_MAX_CONFIRMATION_BYTES,
            otlp_endpoint: None,
            tls: None,
        }
    }
}

/// A settings problem.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Reading or parsing failed.
    #[error("cannot read server settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is not acceptable.
    #[error("invalid server setting {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Settings {
    /// Loads `file` (if any) layered with `AIMS_SERVER__*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut b = config::Config::builder();
        if let Some(f) = file {
            b = b.add_source(config::File::from(f).required(true));
        }
        b = b.add_source(
            config::Environment::with_prefix("AIMS_SERVER")
                .prefix_separator("__")
                .separator("__"),
        );
        let s: Settings = b.build()?.try_deserialize()?;
        s.validate()?;
        Ok(s)
    }

    /// Checks values without IO.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |field, reason: &str| {
            Err(SettingsError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.version != 1 {
            return bad("version", "must be 1");
        }
        if !self.database.starts_with("sqlite:") && !self.database.starts_with("postgres") {
            return bad("database", "expected sqlite://PATH or postgres://…");
        }
        if self.origin.is_empty()
            || self.origin.contains(char::is_whitespace)
            || self.origin.contains('+')
        {
            return bad("origin", "must be non-empty with no spaces or '+'");
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.max_confirmation_bytes < 1024 {
            return bad("max_confirmation_bytes", "must be at least 1024");
        }
        if let Some(e) = &self.otlp_endpoint
            && let Err(e) = aims_telemetry::validate_endpoint(e)
        {
            return bad("otlp_endpoint", &e.to_string());
        }
        Ok(())
    }

    /// The key directory: configured, or `aims-keys` next to the SQLite file.
    pub fn keys_dir(&self) -> PathBuf {
        if let Some(d) = &self.keys_dir {
            return d.clone();
        }
        if let Some(path) = self
            .database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = Path::new(path).parent() {
                return parent.join("aims-keys");
            }
        }
        PathBuf::from("aims-keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_endpoint_is_optional_and_checked() {
        let mut s = Settings::default();
        assert!(s.validate().is_ok());
        s.otlp_endpoint = Some("http://127.0.0.1:4318".to_owned());
        assert!(s.validate().is_ok());
        s.otlp_endpoint = Some("127.0.0.1:4318".to_owned());
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("otlp_endpoint"), "{e}");
    }
}
