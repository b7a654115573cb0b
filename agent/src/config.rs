//! The agent configuration file (DESIGN §3a, the v1 contract).
//!
//! Loading: the file (YAML, TOML or JSON, chosen by extension) is read with the `config` crate
//! and then overlaid with `AIMS_AGENT__*` environment variables, `__` separating path segments
//! (`AIMS_AGENT__SERVER__URL`, `AIMS_AGENT__SERVER__TOKEN`, `AIMS_AGENT__AGENT__ID`,
//! `AIMS_AGENT__SPOOL_DIR`). The `config` crate lowercases environment keys, which matches the
//! lowercase field names; `sources` is a list and can only come from the file.
//!
//! Rules:
//! - `version` must be 1; unknown keys are rejected at every level (including inside sources).
//! - Exactly one of `server.token`, `server.token_file`, `server.token_env` is set, unless
//!   `AIMS_AGENT__SERVER__TOKEN` is present: the environment then wins over whatever the file says.
//! - [`AgentConfig::validate`] does no IO (no file reads, no network); resolving `token_file`
//!   or `token_env` happens later in [`ServerConfig::resolve_token`].
//! - The token is a [`SecretToken`]: its `Debug` prints `[redacted]` and it is never logged.
//!
//! Every error names the file, the field path and what is wrong.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aims_collect::SourceConfig;
use serde::Deserialize;

/// The only configuration version this agent understands.
pub const CONFIG_VERSION: u32 = 1;
/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "AIMS_AGENT";
/// Separator between path segments in environment overrides.
pub const ENV_SEPARATOR: &str = "__";
/// The environment variable that overrides the server token.
pub const ENV_TOKEN: &str = "AIMS_AGENT__SERVER__TOKEN";
/// The smallest `spool_max_bytes`: one batch of the largest size the spool writes.
pub const MIN_SPOOL_MAX_BYTES: u64 = crate::spool::MAX_BATCH_BYTES as u64;

const fn default_timeout_secs() -> u64 {
    30
}
const fn default_max_concurrent_fetches() -> usize {
    4
}
const fn default_batch_size() -> usize {
    500
}
/// Once a day: a source's unchanged artifacts are confirmed at most this often.
const fn default_confirm_interval_secs() -> u64 {
    86_400
}
/// 15 minutes: one source's poll (list, fetches, hashing) may take at most this long.
const fn default_poll_timeout_secs() -> u64 {
    900
}
/// 1 GiB of batches waiting for the server.
const fn default_spool_max_bytes() -> u64 {
    1024 * 1024 * 1024
}

/// A bearer token. `Debug` and `Display` never show it; call [`SecretToken::expose`] only where
/// it is put on the wire.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The syntaxes a configuration file can be written in, chosen by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    /// `.yaml` or `.yml`.
    Yaml,
    /// `.toml`.
    Toml,
    /// `.json`.
    Json,
}

impl ConfigFormat {
    /// The format a file's extension names (case-insensitive); `None` for any other extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yaml" | "yml") => Some(Self::Yaml),
            Some("toml") => Some(Self::Toml),
            Some("json") => Some(Self::Json),
            _ => None,
        }
    }

    fn file_format(self) -> config::FileFormat {
        match self {
            Self::Yaml => config::FileFormat::Yaml,
            Self::Toml => config::FileFormat::Toml,
            Self::Json => config::FileFormat::Json,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Must be [`CONFIG_VERSION`].
    pub version: u32,
    /// Who this agent is.
    pub agent: AgentSection,
    /// Where evidence goes.
    pub server: ServerConfig,
    /// Root of the agent's state: `spool/`, `cursors/`, `cache/`.
    pub spool_dir: PathBuf,
    /// Catalog directory overriding the embedded catalog.
    #[serde(default)]
    pub catalog_dir: Option<PathBuf>,
    /// Address for `GET /metrics` and `/healthz` in `run` mode (e.g. `0.0.0.0:9464`); off when
    /// unset.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// OTLP/HTTP base URL (e.g. `http://otel-collector:4318`): traces and metrics are exported
    /// to `{url}/v1/traces` and `{url}/v1/metrics`. Off when unset, unless
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set; `--otlp-endpoint` overrides both.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// How many sources are polled at the same time.
    #[serde(default = "default_max_concurrent_fetches")]
    pub max_concurrent_fetches: usize,
    /// Records per spool file and per `POST /v1/evidence`.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// At most this often per source, the agent confirms to the server what the source still
    /// lists unchanged (one ledger entry per source, no content download), so unchanged evidence
    /// it still sees stays fresh. Default one day; at least 1.
    #[serde(default = "default_confirm_interval_secs")]
    pub confirm_interval_secs: u64,
    /// Deadline of one source's poll cycle (listing, downloads, hashing), in seconds. A poll
    /// still running then is abandoned (it has written nothing): that source is reported
    /// failing for the cycle and the others go on. Default 900 (15 min); at least 1.
    #[serde(default = "default_poll_timeout_secs")]
    pub poll_timeout_secs: u64,
    /// Most bytes of batches the spool holds while the server does not take them. When full,
    /// new batches are not written (the oldest are kept) and the polling source's cursor does
    /// not move, so nothing is lost: those artifacts are collected again once the spool drained.
    /// Default 1 GiB; at least 1 MiB.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// The sources to poll (file only).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// The file this was loaded from (for messages).
    #[serde(skip)]
    pub file: PathBuf,
}

/// `agent:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The agent id written into every record: 1–128 of `[A-Za-z0-9._:/@-]`.
    pub id: String,
}

/// `server:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL of the collector server (`http` or `https`).
    pub url: String,
    /// The token inline (prefer `token_file` or `token_env`).
    #[serde(default)]
    pub token: Option<SecretToken>,
    /// A file holding the token (trailing whitespace is trimmed).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Extra PEM CA certificate(s) trusted in addition to the platform's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a non-loopback address (off by default: the token would travel in
    /// clear). Loopback addresses are always allowed.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// The server's trust policy (printed by `aims-server keys show`): when set, every
    /// checkpoint the server returns must carry valid log and clock signatures.
    #[serde(default)]
    pub trust_file: Option<PathBuf>,
    /// Set when `AIMS_AGENT__SERVER__TOKEN` provided the token; it then wins.
    #[serde(skip)]
    pub token_from_env: bool,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or has unknown keys or wrong types.
    #[error("{file}: {message}")]
    Load {
        /// The file.
        file: PathBuf,
        /// What went wrong (the `config` crate names the key).
        message: String,
    },
    /// A value is not acceptable.
    #[error("{file}: {field}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted field path, e.g. `server.url` or `sources[2].id`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The token could not be resolved (file unreadable, variable unset).
    #[error("{file}: {field}: {reason}")]
    Token {
        /// The file.
        file: PathBuf,
        /// Which token field.
        field: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl AgentConfig {
    /// Loads `path` overlaid with the process environment. Does not validate.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// Loads `path` overlaid with the `AIMS_AGENT__*` entries of `env` (tests pass their own
    /// map instead of mutating the process environment). Does not validate.
    pub fn load_with_env(path: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let load_err = |message: String| ConfigError::Load {
            file: path.to_path_buf(),
            message,
        };
        let format = ConfigFormat::from_path(path).ok_or_else(|| {
            load_err("unsupported file extension, expected .yaml, .yml, .toml or .json".into())
        })?;
        let text =
            std::fs::read_to_string(path).map_err(|e| load_err(format!("cannot read: {e}")))?;
        Self::from_str_with_env(&text, format, path, env)
    }

    /// Parses configuration text in `format` overlaid with the `AIMS_AGENT__*` entries of `env`.
    /// `file` is where the text came from, used in messages and kept in [`AgentConfig::file`].
    /// Does not validate. [`AgentConfig::load_with_env`] reads the file and calls this.
    pub fn from_str_with_env(
        text: &str,
        format: ConfigFormat,
        file: &Path,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let load_err = |message: String| ConfigError::Load {
            file: file.to_path_buf(),
            message,
        };
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
        let overrides: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.to_ascii_uppercase().starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let token_from_env = overrides.keys().any(|k| k.eq_ignore_ascii_case(ENV_TOKEN));
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, format.file_format()))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator(ENV_SEPARATOR)
                    .separator(ENV_SEPARATOR)
                    .source(Some(overrides)),
            )
            .build()
            .map_err(|e| load_err(redact_secrets(&e.to_string(), text, env)))?;
        let mut cfg: AgentConfig = built
            .try_deserialize()
            .map_err(|e| load_err(redact_secrets(&e.to_string(), text, env)))?;
        cfg.file = file.to_path_buf();
        cfg.server.token_from_env = token_from_env;
        Ok(cfg)
    }

    /// Loads and validates.
    pub fn load_and_validate(path: &Path) -> Result<Self, ConfigError> {
        let cfg = Self::load(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every rule that needs no IO (see the module docs).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: String| ConfigError::Invalid {
            file: self.file.clone(),
            field: field.to_owned(),
            reason,
        };
        if self.version != CONFIG_VERSION {
            return Err(bad(
                "version",
                format!(
                    "unsupported version {}, expected {CONFIG_VERSION}",
                    self.version
                ),
            ));
        }
        aims_model::record::validate_ident("agent.id", &self.agent.id)
            .map_err(|e| bad("agent.id", e.to_string()))?;
        let url = url::Url::parse(&self.server.url)
            .map_err(|e| bad("server.url", format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "server.url",
                format!("scheme must be http or https, got {}", url.scheme()),
            ));
        }
        if url.host_str().is_none() {
            return Err(bad("server.url", "has no host".into()));
        }
        if url.scheme() == "http" && !self.server.allow_insecure_http && !is_loopback(&url) {
            return Err(bad(
                "server.url",
                "plain http to a non-loopback address would send the token and evidence in clear; \
                 use https, or set server.allow_insecure_http: true (e.g. inside a service mesh)"
                    .into(),
            ));
        }
        if !self.server.token_from_env {
            let set = [
                self.server.token.is_some(),
                self.server.token_file.is_some(),
                self.server.token_env.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set != 1 {
                return Err(bad(
                    "server",
                    format!(
                        "exactly one of token, token_file, token_env must be set (found {set}), or set {ENV_TOKEN}"
                    ),
                ));
            }
        }
        if self
            .server
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(bad("server.token", "is empty".into()));
        }
        if self.server.token_env.as_ref().is_some_and(String::is_empty) {
            return Err(bad("server.token_env", "is empty".into()));
        }
        if self.server.timeout_secs == 0 {
            return Err(bad("server.timeout_secs", "must be at least 1".into()));
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err(bad("spool_dir", "is empty".into()));
        }
        if let Some(e) = &self.otlp_endpoint {
            aims_telemetry::validate_endpoint(e)
                .map_err(|e| bad("otlp_endpoint", e.to_string()))?;
        }
        if self.max_concurrent_fetches == 0 {
            return Err(bad("max_concurrent_fetches", "must be at least 1".into()));
        }
        if self.confirm_interval_secs == 0 {
            return Err(bad("confirm_interval_secs", "must be at least 1".into()));
        }
        if self.poll_timeout_secs == 0 {
            return Err(bad("poll_timeout_secs", "must be at least 1".into()));
        }
        if self.spool_max_bytes < MIN_SPOOL_MAX_BYTES {
            return Err(bad(
                "spool_max_bytes",
                format!("must be at least {MIN_SPOOL_MAX_BYTES} (one full batch)"),
            ));
        }
        let max = aims_model::wire::MAX_BATCH_RECORDS;
        if self.batch_size == 0 || self.batch_size > max {
            return Err(bad("batch_size", format!("must be 1 to {max}")));
        }
        let mut seen = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            if !seen.insert(s.id()) {
                return Err(bad(
                    &format!("sources[{i}].id"),
                    format!("duplicate source id {:?}", s.id()),
                ));
            }
            s.validate().map_err(|e| {
                bad(
                    &format!("sources[{i}].{} (source {:?})", e.field, e.id),
                    e.reason,
                )
            })?;
        }
        Ok(())
    }

    /// The per-source poll deadline.
    pub fn poll_timeout(&self) -> Duration {
        Duration::from_secs(self.poll_timeout_secs)
    }

    /// `spool_dir/spool`.
    pub fn spool_path(&self) -> PathBuf {
        self.spool_dir.join("spool")
    }

    /// `spool_dir/cursors/<source-id>.json` (ids may contain `/`, kept file-safe).
    pub fn cursor_path(&self, source_id: &str) -> PathBuf {
        self.spool_dir
            .join("cursors")
            .join(format!("{}.json", path_safe(source_id)))
    }

    /// `spool_dir/cursors/<source-id>.confirmed.json`: when the source was last confirmed.
    pub fn confirmed_path(&self, source_id: &str) -> PathBuf {
        self.spool_dir
            .join("cursors")
            .join(format!("{}.confirmed.json", path_safe(source_id)))
    }

    /// `spool_dir/cache/<source-id>`.
    pub fn cache_path(&self, source_id: &str) -> PathBuf {
        self.spool_dir.join("cache").join(path_safe(source_id))
    }
}

impl ServerConfig {
    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Resolves the token (reads `token_file` or `token_env`; this is the IO half of the rules).
    pub fn resolve_token(&self, file: &Path) -> Result<SecretToken, ConfigError> {
        let err = |field: &'static str, reason: String| ConfigError::Token {
            file: file.to_path_buf(),
            field,
            reason,
        };
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        if let Some(p) = &self.token_file {
            let s = std::fs::read_to_string(p).map_err(|e| {
                err(
                    "server.token_file",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            let s = s.trim();
            if s.is_empty() {
                return Err(err(
                    "server.token_file",
                    format!("{} is empty", p.display()),
                ));
            }
            return Ok(SecretToken::new(s));
        }
        if let Some(v) = &self.token_env {
            let s = std::env::var(v).map_err(|_| {
                err(
                    "server.token_env",
                    format!("environment variable {v} is not set"),
                )
            })?;
            if s.trim().is_empty() {
                return Err(err(
                    "server.token_env",
                    format!("environment variable {v} is empty"),
                ));
            }
            return Ok(SecretToken::new(s.trim()));
        }
        Err(err("server.token", "no token configured".into()))
    }
}

/// Whether a configuration key names a secret value (`token`, `secret`, `password`, `api_key`,
/// …). Keys that only name where a secret is (`token_file`, `token_env`) do not.
fn is_secret_key(key: &str) -> bool {
    let k = key
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase();
    if k.ends_with("_file") || k.ends_with("_env") {
        return false;
    }
    [
        "token",
        "secret",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// The values that `text` (a YAML, TOML or JSON config) and `env` give to secret keys, as
/// written (quotes stripped), for [`redact_secrets`].
fn secret_values(text: &str, env: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        // `key = value` (TOML), `key: value` (YAML, also in flow mappings), `"key": value` (JSON).
        for (i, _) in line.match_indices(['=', ':']) {
            let key = line[..i]
                .rsplit(|c: char| c == '{' || c == ',' || c.is_whitespace())
                .find(|k| !k.is_empty())
                .unwrap_or("");
            if !is_secret_key(key) {
                continue;
            }
            let value = line[i + 1..].trim_start();
            let value = value
                .split([',', '}', '#'])
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .trim();
            if value.len() >= 3 {
                out.push(value.to_owned());
            }
        }
    }
    for (k, v) in env {
        if k.to_ascii_uppercase().starts_with(ENV_PREFIX) && is_secret_key(k) && v.len() >= 3 {
            out.push(v.trim().to_owned());
        }
    }
    // Longest first, so a value containing another is replaced whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// A loader error fit to print (issue 18, L): the `config`/`toml`/`yaml` crates quote the
/// offending line, and type errors quote the value, so a syntax error on the token's line would
/// print the token. Every value the file or the environment gives to a secret key is replaced by
/// `[redacted]`, and so is the rest of any quoted line that names a secret key.
pub fn redact_secrets(message: &str, text: &str, env: &HashMap<String, String>) -> String {
    let mut out = message.to_owned();
    for v in secret_values(text, env) {
        out = out.replace(&v, "[redacted]");
    }
    out.lines()
        .map(|line| {
            for (i, _) in line.match_indices(['=', ':']) {
                let key = line[..i]
                    .rsplit(|c: char| c == '{' || c == ',' || c == '|' || c.is_whitespace())
                    .find(|k| !k.is_empty())
                    .unwrap_or("");
                if is_secret_key(key) {
                    return format!("{} [redacted]", &line[..=i]);
                }
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Source ids may contain `/`, `:` and `@`; map them to one safe path segment. Ids that needed
/// changing get a short hash of the original appended so that `a/b` and `a_b` stay distinct.
fn path_safe(id: &str) -> String {
    let safe = path_chars(id);
    if safe == id {
        safe
    } else {
        let h = aims_model::ContentHash::of(id.as_bytes());
        format!("{safe}-{}", &h.as_str()[..8])
    }
}

fn path_chars(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .replace("..", "__")
}

/// True when the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = SecretToken::new("s3cr3t");
        assert_eq!(format!("{t:?}"), "[redacted]");
        assert_eq!(format!("{t}"), "[redacted]");
    }

    #[test]
    fn path_safe_ids() {
        assert_eq!(path_safe("ml-repo"), "ml-repo");
        assert!(path_safe("team/a@b").starts_with("team_a_b-"));
        assert_ne!(path_safe("a/b"), path_safe("a_b"));
        assert!(path_safe("..").starts_with("__-"));
    }

    #[test]
    fn text_loads_like_a_file() {
        assert_eq!(
            ConfigFormat::from_path(Path::new("a.YML")),
            Some(ConfigFormat::Yaml)
        );
        assert_eq!(
            ConfigFormat::from_path(Path::new("a.toml")),
            Some(ConfigFormat::Toml)
        );
        assert_eq!(ConfigFormat::from_path(Path::new("a.ini")), None);
        let text = "version = 1\nspool_dir = \"/tmp/x\"\n[agent]\nid = \"a\"\n\
                    [server]\nurl = \"http://127.0.0.1:1\"\ntoken = \"t\"\n";
        let cfg = AgentConfig::from_str_with_env(
            text,
            ConfigFormat::Toml,
            Path::new("agent.toml"),
            &HashMap::new(),
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.file, Path::new("agent.toml"));
        let e = AgentConfig::from_str_with_env(
            "version: 1\nsurprise: 1\n",
            ConfigFormat::Yaml,
            Path::new("agent.yaml"),
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("agent.yaml: ") && e.contains("surprise"),
            "{e}"
        );
    }
}
