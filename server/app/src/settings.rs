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
    /// Largest upload of manual evidence (`POST /v1/uploads`; default 50 MiB).
    pub max_upload_bytes: usize,
    /// OTLP/HTTP base URL (e.g. `http://otel-collector:4318`) to export traces and metrics to;
    /// off when unset, unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`--otlp-endpoint` overrides
    /// both).
    pub otlp_endpoint: Option<String>,
    /// Serve HTTPS with this certificate and key (rustls); plain HTTP when absent.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Connection limits and timeouts.
    pub http: HttpSettings,
    /// Serve `GET /metrics` without a token (default: a token of any role is required).
    pub metrics_public: bool,
    /// The dashboard's address as its users reach it (`https://aims.example.com`): the base of
    /// the links in notifications. Default: the address the server listens on.
    pub public_url: Option<String>,
    /// Notification sinks (DESIGN §12.4): `webhook`, `github`, `slack`, each with optional
    /// `events` and `systems` filters. Checked before `serve` listens.
    pub notifications: Vec<aims_notify::SinkConfig>,
    /// Delivery knobs: `warn_days`, `max_age_secs`, `timeout_secs`, `max_response_bytes`.
    pub notify: aims_notify::NotifySettings,
}

/// The `http` section: limits that keep slow, idle or numerous clients from exhausting the
/// server (issue 18 M2; see `serve.rs`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// A client must send a complete request head (after connecting, after the TLS handshake
    /// starts, or after the first byte of a later request) within this many seconds (1–30).
    pub header_timeout_secs: u64,
    /// A keep-alive connection with no request is closed after this many seconds; also how long
    /// a response write may make no progress.
    pub idle_timeout_secs: u64,
    /// A request body must arrive completely within this many seconds of its head (else 408).
    pub body_timeout_secs: u64,
    /// Connections served at once; at the limit the longest-waiting idle or slow-header
    /// connection is closed to make room. Default: the open-file soft limit minus
    /// [`FD_HEADROOM`], between 16 and [`MAX_DEFAULT_CONNECTIONS`].
    pub max_connections: Option<usize>,
}

/// Default `http.header_timeout_secs`.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default `http.idle_timeout_secs`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default `http.body_timeout_secs` (a 64 MiB confirmation at ~0.5 MiB/s).
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 120;
/// File descriptors kept free of connections: database pools (SQLite keeps three files per
/// connection), key files, logs, OTLP and other outgoing sockets.
pub const FD_HEADROOM: u64 = 128;
/// The largest default connection limit, however high the open-file limit.
pub const MAX_DEFAULT_CONNECTIONS: usize = 10_000;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
            max_connections: None,
        }
    }
}

impl HttpSettings {
    /// The limits to serve with; the connection limit defaults from the open-file limit.
    pub fn limits(&self) -> crate::serve::HttpLimits {
        crate::serve::HttpLimits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_secs),
            max_connections: self
                .max_connections
                .unwrap_or_else(|| default_max_connections(open_file_limit())),
        }
    }
}

/// The default connection limit for an open-file soft limit (`None`: unknown, taken as 1024).
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    let limit = open_files.unwrap_or(1024);
    let n = usize::try_from(limit.saturating_sub(FD_HEADROOM)).unwrap_or(usize::MAX);
    n.clamp(16, MAX_DEFAULT_CONNECTIONS)
}

/// The process's open-file soft limit (RLIMIT_NOFILE) from `/proc/self/limits`; `None` where
/// that is not available or says "unlimited".
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
            max_upload_bytes: crate::uploads::DEFAULT_MAX_UPLOAD_BYTES,
            otlp_endpoint: None,
            tls: None,
            http: HttpSettings::default(),
            metrics_public: false,
            public_url: None,
            notifications: Vec::new(),
            notify: aims_notify::NotifySettings::default(),
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
        if aims_store::DatabaseUrl::parse(&self.database).is_err() {
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
        if self.max_upload_bytes < 1 {
            return bad("max_upload_bytes", "must be at least 1");
        }
        if let Some(e) = &self.otlp_endpoint
            && let Err(e) = aims_telemetry::validate_endpoint(e)
        {
            return bad("otlp_endpoint", &e.to_string());
        }
        let h = &self.http;
        if !(1..=30).contains(&h.header_timeout_secs) {
            return bad("http.header_timeout_secs", "must be between 1 and 30");
        }
        if !(1..=3600).contains(&h.idle_timeout_secs) {
            return bad("http.idle_timeout_secs", "must be between 1 and 3600");
        }
        if !(1..=3600).contains(&h.body_timeout_secs) {
            return bad("http.body_timeout_secs", "must be between 1 and 3600");
        }
        if let Some(n) = h.max_connections
            && !(1..=1_000_000).contains(&n)
        {
            return bad("http.max_connections", "must be between 1 and 1000000");
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => return bad("public_url", "expected an absolute http(s) URL"),
            }
        }
        if let Err(e) = self.notify.validate() {
            return bad("notify", &e.to_string());
        }
        Ok(())
    }

    /// The key directory: configured, or `aims-keys` next to the SQLite file.
    pub fn keys_dir(&self) -> PathBuf {
        if let Some(d) = &self.keys_dir {
            return d.clone();
        }
        if let Ok(db) = aims_store::DatabaseUrl::parse(&self.database)
            && let Some(parent) = db.sqlite_path().and_then(Path::parent)
        {
            return parent.join("aims-keys");
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

    #[test]
    fn issue_18_m2_http_limits_have_sane_defaults_and_bounds() {
        let s = Settings::default();
        assert!(s.http.header_timeout_secs <= 30);
        assert!(!s.metrics_public);
        let l = s.http.limits();
        assert!(l.max_connections >= 16 && l.max_connections <= MAX_DEFAULT_CONNECTIONS);
        if let Some(fds) = open_file_limit() {
            assert!(
                (l.max_connections as u64) < fds.max(17),
                "below the fd limit"
            );
        }
        assert_eq!(default_max_connections(Some(1024)), 896);
        assert_eq!(default_max_connections(Some(100)), 16);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            MAX_DEFAULT_CONNECTIONS
        );
        assert_eq!(default_max_connections(None), 896);
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            20000                1048576              files     \n";
        assert_eq!(parse_open_file_limit(text), Some(20000));
        assert_eq!(
            parse_open_file_limit("Max open files unlimited unlimited files"),
            None
        );

        for (field, bad) in [
            ("header_timeout_secs", "header_timeout_secs: 31"),
            ("header_timeout_secs", "header_timeout_secs: 0"),
            ("idle_timeout_secs", "idle_timeout_secs: 0"),
            ("body_timeout_secs", "body_timeout_secs: 0"),
            ("max_connections", "max_connections: 0"),
        ] {
            let dir = tempfile_dir();
            let f = dir.join("s.yaml");
            std::fs::write(&f, format!("http: {{ {bad} }}\n")).unwrap();
            let e = Settings::load(Some(&f)).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
        let dir = tempfile_dir();
        let f = dir.join("s.yaml");
        std::fs::write(
            &f,
            "metrics_public: true\nhttp: { header_timeout_secs: 2, idle_timeout_secs: 3, \
             body_timeout_secs: 4, max_connections: 20 }\n",
        )
        .unwrap();
        let s = Settings::load(Some(&f)).unwrap();
        assert!(s.metrics_public);
        let l = s.http.limits();
        assert_eq!(l.max_connections, 20);
        assert_eq!(l.header_timeout.as_secs(), 2);
        assert_eq!(l.idle_timeout.as_secs(), 3);
        assert_eq!(l.body_timeout.as_secs(), 4);
        std::fs::write(&f, "http: { header_timeout: 2 }\n").unwrap();
        assert!(
            Settings::load(Some(&f)).is_err(),
            "unknown keys are refused"
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "aims-settings-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
