//! The `notifications:` settings: a list of [`SinkConfig`] entries (serde, read by the server's
//! layered `config` from YAML, TOML or JSON), each turned into a validated [`Sink`] by
//! [`build_sinks`], and the delivery knobs of [`NotifySettings`].
//!
//! ```yaml
//! notifications:
//!   - type: webhook
//!     url: https://hooks.example/aims
//!     secret_file: /run/secrets/aims-hook     # or secret_env: AIMS_HOOK_SECRET, or secret: …
//!     events: [finding.opened, finding.resolved]
//!     systems: [fraud-scoring]
//!   - type: github
//!     repo: acme/ml-compliance
//!     token_file: /run/secrets/gh-token       # or token_env / token
//!     labels: [compliance]
//!   - type: slack
//!     url_env: AIMS_SLACK_WEBHOOK              # or url_file / url
//! ```
//!
//! Validation happens once, before the server listens: URLs parse and are http(s), each secret
//! comes from exactly one of its three settings and is not empty (a file's content loses one
//! trailing newline), event names are known, the GitHub repository is `owner/name`, and sink
//! names (default `<type>-<index>`) are unique. Every error names the setting
//! (`notifications[0].secret_file: /x/y: No such file or directory (os error 2)`).
//!
//! Secrets (webhook secrets, GitHub tokens, Slack webhook URLs, which carry their own token) are
//! held by a type whose `Debug` prints `"<redacted>"`, and they are never logged.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::deliver::DelivererOptions;
use crate::error::ConfigError;
use crate::event::EventType;

/// The default GitHub API.
pub const DEFAULT_GITHUB_API: &str = "https://api.github.com";

/// The label every issue this crate opens carries (the GitHub sink also finds its issues by it).
pub const GITHUB_LABEL: &str = "aims";

/// One entry of `notifications:`; `type` selects the sink. An unknown `type` or an unknown
/// field is a deserialisation error naming it.
#[derive(Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// A signed JSON POST.
    Webhook {
        /// The sink's name (default `webhook-<index>`).
        name: Option<String>,
        /// Where to POST (http or https).
        url: String,
        /// The HMAC key, inline (prefer `secret_file` or `secret_env`).
        secret: Option<String>,
        /// A file holding the HMAC key.
        secret_file: Option<PathBuf>,
        /// An environment variable holding the HMAC key.
        secret_env: Option<String>,
        /// Only these events (default: all).
        events: Option<Vec<String>>,
        /// Only these systems (default: all).
        systems: Option<Vec<String>>,
        /// `evidence.expiring` reaches this sink this many days before a window closes
        /// (default: `notify.warn_days`).
        warn_days: Option<u32>,
    },
    /// One GitHub issue per finding.
    Github {
        /// The sink's name (default `github-<index>`).
        name: Option<String>,
        /// `owner/name` of the repository the issues go to.
        repo: String,
        /// The token, inline (prefer `token_file` or `token_env`).
        token: Option<String>,
        /// A file holding the token.
        token_file: Option<PathBuf>,
        /// An environment variable holding the token.
        token_env: Option<String>,
        /// The REST API root (default `https://api.github.com`; GitHub Enterprise:
        /// `https://HOST/api/v3`).
        api_url: Option<String>,
        /// Labels added to every issue (besides `aims`, `aims:<kind>` and `control:<id>`).
        labels: Option<Vec<String>>,
        /// Only these events (default: all).
        events: Option<Vec<String>>,
        /// Only these systems (default: all).
        systems: Option<Vec<String>>,
        /// `evidence.expiring` reaches this sink this many days before a window closes
        /// (default: `notify.warn_days`).
        warn_days: Option<u32>,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The sink's name (default `slack-<index>`).
        name: Option<String>,
        /// The incoming-webhook URL, inline (it is a secret: prefer `url_file` or `url_env`).
        url: Option<String>,
        /// A file holding the webhook URL.
        url_file: Option<PathBuf>,
        /// An environment variable holding the webhook URL.
        url_env: Option<String>,
        /// Only these events (default: all).
        events: Option<Vec<String>>,
        /// Only these systems (default: all).
        systems: Option<Vec<String>>,
        /// `evidence.expiring` reaches this sink this many days before a window closes
        /// (default: `notify.warn_days`).
        warn_days: Option<u32>,
    },
}

impl SinkConfig {
    /// The sink's own `warn_days`, if set.
    pub fn warn_days(&self) -> Option<u32> {
        match self {
            Self::Webhook { warn_days, .. }
            | Self::Github { warn_days, .. }
            | Self::Slack { warn_days, .. } => *warn_days,
        }
    }
}

/// `Some(<redacted>)` or `None`: shows whether a secret is set, never its value.
fn redacted<T>(v: &Option<T>) -> Option<&'static str> {
    v.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Webhook {
                name,
                url,
                secret,
                secret_file,
                secret_env,
                events,
                systems,
                warn_days,
            } => f
                .debug_struct("Webhook")
                .field("name", name)
                .field("url", &origin_of(url))
                .field("secret", &redacted(secret))
                .field("secret_file", secret_file)
                .field("secret_env", secret_env)
                .field("events", events)
                .field("systems", systems)
                .field("warn_days", warn_days)
                .finish(),
            Self::Github {
                name,
                repo,
                token,
                token_file,
                token_env,
                api_url,
                labels,
                events,
                systems,
                warn_days,
            } => f
                .debug_struct("Github")
                .field("name", name)
                .field("repo", repo)
                .field("token", &redacted(token))
                .field("token_file", token_file)
                .field("token_env", token_env)
                .field("api_url", &api_url.as_deref().map(origin_of))
                .field("labels", labels)
                .field("events", events)
                .field("systems", systems)
                .field("warn_days", warn_days)
                .finish(),
            Self::Slack {
                name,
                url,
                url_file,
                url_env,
                events,
                systems,
                warn_days,
            } => f
                .debug_struct("Slack")
                .field("name", name)
                .field("url", &redacted(url))
                .field("url_file", url_file)
                .field("url_env", url_env)
                .field("events", events)
                .field("systems", systems)
                .field("warn_days", warn_days)
                .finish(),
        }
    }
}

/// `scheme://host:port` of a URL (no path, query or credentials, which may hold tokens).
fn origin_of(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// A secret value; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A validated webhook sink.
#[derive(Clone)]
pub(crate) struct WebhookSink {
    pub(crate) url: Url,
    pub(crate) secret: Secret,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The origin only: a receiver may take a token in the path or query.
        f.debug_struct("WebhookSink")
            .field("url", &self.url.origin().ascii_serialization())
            .field("secret", &self.secret)
            .finish()
    }
}

/// A validated GitHub sink.
#[derive(Clone, Debug)]
pub(crate) struct GithubSink {
    /// The API root, without a trailing slash in its path.
    pub(crate) api: Url,
    pub(crate) owner: String,
    pub(crate) repo: String,
    pub(crate) token: Secret,
    pub(crate) labels: Vec<String>,
}

/// A validated Slack sink: the whole URL is the secret.
#[derive(Clone, Debug)]
pub(crate) struct SlackSink {
    pub(crate) url: Secret,
}

/// What a sink delivers to.
#[derive(Clone, Debug)]
pub(crate) enum SinkKind {
    Webhook(WebhookSink),
    Github(GithubSink),
    Slack(SlackSink),
}

/// The `events` and `systems` filters (`None`: everything).
#[derive(Clone, Debug, Default)]
struct Filter {
    events: Option<BTreeSet<EventType>>,
    systems: Option<BTreeSet<String>>,
}

/// A validated sink, ready for [`crate::Deliverer::deliver`]. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct Sink {
    name: String,
    pub(crate) kind: SinkKind,
    filter: Filter,
    warn_days: Option<u32>,
}

impl Sink {
    /// Validates entry `index` of `notifications:` (see the module docs). Reads secret files
    /// and environment variables.
    pub fn from_config(config: &SinkConfig, index: usize) -> Result<Self, ConfigError> {
        let at = |field: &str, reason: String| ConfigError::at(index, field, reason);
        let (name, kind_name, events, systems, warn_days) = match config {
            SinkConfig::Webhook {
                name,
                events,
                systems,
                warn_days,
                ..
            } => (name, "webhook", events, systems, warn_days),
            SinkConfig::Github {
                name,
                events,
                systems,
                warn_days,
                ..
            } => (name, "github", events, systems, warn_days),
            SinkConfig::Slack {
                name,
                events,
                systems,
                warn_days,
                ..
            } => (name, "slack", events, systems, warn_days),
        };
        if let Some(d) = warn_days
            && !(1..=365).contains(d)
        {
            return Err(at("warn_days", "must be between 1 and 365".into()));
        }
        let name = match name {
            Some(n) => {
                check_name(n).map_err(|r| at("name", r))?;
                n.clone()
            }
            None => format!("{kind_name}-{index}"),
        };
        let filter = Filter {
            events: match events {
                None => None,
                Some(list) => Some(parse_events(list, index)?),
            },
            systems: match systems {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(at(
                        "systems",
                        "empty list: leave it out to receive every system".into(),
                    ));
                }
                Some(list) => Some(list.iter().cloned().collect()),
            },
        };
        let kind = match config {
            SinkConfig::Webhook {
                url,
                secret,
                secret_file,
                secret_env,
                ..
            } => {
                let url = http_url(url).map_err(|r| at("url", r))?;
                let secret = secret_from(
                    index,
                    ["secret", "secret_file", "secret_env"],
                    secret.as_deref(),
                    secret_file.as_deref(),
                    secret_env.as_deref(),
                )?;
                SinkKind::Webhook(WebhookSink { url, secret })
            }
            SinkConfig::Github {
                repo,
                token,
                token_file,
                token_env,
                api_url,
                labels,
                ..
            } => {
                let (owner, repo) = owner_repo(repo).map_err(|r| at("repo", r))?;
                let api = http_url(api_url.as_deref().unwrap_or(DEFAULT_GITHUB_API))
                    .map_err(|r| at("api_url", r))?;
                let token = secret_from(
                    index,
                    ["token", "token_file", "token_env"],
                    token.as_deref(),
                    token_file.as_deref(),
                    token_env.as_deref(),
                )?;
                let labels = labels.clone().unwrap_or_default();
                for (i, l) in labels.iter().enumerate() {
                    check_label(l).map_err(|r| at(&format!("labels[{i}]"), r))?;
                }
                SinkKind::Github(GithubSink {
                    api,
                    owner,
                    repo,
                    token,
                    labels,
                })
            }
            SinkConfig::Slack {
                url,
                url_file,
                url_env,
                ..
            } => {
                let fields = ["url", "url_file", "url_env"];
                let url = secret_from(
                    index,
                    fields,
                    url.as_deref(),
                    url_file.as_deref(),
                    url_env.as_deref(),
                )?;
                // Name the setting the URL came from; the URL itself is a secret.
                let field = if url_file.is_some() {
                    "url_file"
                } else if url_env.is_some() {
                    "url_env"
                } else {
                    "url"
                };
                http_url(url.expose()).map_err(|r| at(field, r))?;
                SinkKind::Slack(SlackSink { url })
            }
        };
        Ok(Self {
            name,
            kind,
            filter,
            warn_days: *warn_days,
        })
    }

    /// The sink's name (`<type>-<index>` unless configured): unique among the sinks.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `webhook`, `github` or `slack`.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Github(_) => "github",
            SinkKind::Slack(_) => "slack",
        }
    }

    /// Days before a window closes that this sink hears `evidence.expiring` (`None`: the
    /// server's `notify.warn_days`).
    pub fn warn_days(&self) -> Option<u32> {
        self.warn_days
    }

    /// Whether this sink receives `event` about `system`. `test` always passes. With a
    /// `systems` filter, an event without a system (a silent source that reports for no
    /// particular system) does not pass.
    pub fn wants(&self, event: EventType, system: Option<&str>) -> bool {
        if event == EventType::Test {
            return true;
        }
        if let Some(events) = &self.filter.events
            && !events.contains(&event)
        {
            return false;
        }
        match (&self.filter.systems, system) {
            (None, _) => true,
            (Some(systems), Some(s)) => systems.contains(s),
            (Some(_), None) => false,
        }
    }
}

/// Validates every entry of `notifications:` and checks that the names are unique.
pub fn build_sinks(configs: &[SinkConfig]) -> Result<Vec<Sink>, ConfigError> {
    let mut sinks: Vec<Sink> = Vec::with_capacity(configs.len());
    for (index, c) in configs.iter().enumerate() {
        let sink = Sink::from_config(c, index)?;
        if let Some(first) = sinks.iter().position(|s| s.name == sink.name) {
            return Err(ConfigError::at(
                index,
                "name",
                format!(
                    "{:?} is already the name of notifications[{first}]; sink names must be unique",
                    sink.name
                ),
            ));
        }
        sinks.push(sink);
    }
    Ok(sinks)
}

fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{n:?}: only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    Ok(())
}

fn check_label(l: &str) -> Result<(), String> {
    if l.trim().is_empty() {
        return Err("empty label".into());
    }
    if l.chars().count() > 50 {
        return Err(format!("{l:?}: GitHub labels have at most 50 characters"));
    }
    Ok(())
}

fn parse_events(list: &[String], index: usize) -> Result<BTreeSet<EventType>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::at(
            index,
            "events",
            "empty list: leave it out to receive every event",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            e.parse::<EventType>()
                .map_err(|err| ConfigError::at(index, &format!("events[{i}]"), err.to_string()))
        })
        .collect()
}

/// An absolute http(s) URL with a host and no credentials.
fn http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not supported (use http or https)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported".into());
    }
    Ok(url)
}

/// `owner/name` with GitHub's character sets.
fn owner_repo(s: &str) -> Result<(String, String), String> {
    let bad = || format!("{s:?} is not owner/name");
    let (owner, name) = s.split_once('/').ok_or_else(bad)?;
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if owner_ok && name_ok {
        Ok((owner.to_owned(), name.to_owned()))
    } else {
        Err(bad())
    }
}

/// The secret set by exactly one of `fields` = (inline, file, env).
fn secret_from(
    index: usize,
    fields: [&str; 3],
    inline: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Secret, ConfigError> {
    let [f_inline, f_file, f_env] = fields;
    let set: Vec<&str> = [
        (inline.is_some(), f_inline),
        (file.is_some(), f_file),
        (env.is_some(), f_env),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    match set.as_slice() {
        [] => {
            return Err(ConfigError::at(
                index,
                f_inline,
                format!("missing: set one of {f_inline}, {f_file} or {f_env}"),
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err(ConfigError::at(
                index,
                second,
                format!(
                    "conflicts with {first}: set exactly one of {f_inline}, {f_file} or {f_env}"
                ),
            ));
        }
    }
    let (field, value) = if let Some(v) = inline {
        (f_inline, v.to_owned())
    } else if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::at(index, f_file, format!("{}: {e}", path.display())))?;
        (f_file, text)
    } else if let Some(var) = env {
        let v = std::env::var(var).map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
            };
            ConfigError::at(index, f_env, format!("variable {var} {why}"))
        })?;
        (f_env, v)
    } else {
        return Err(ConfigError::at(index, f_inline, "missing"));
    };
    let value = strip_newline(value);
    if value.trim().is_empty() {
        let what = match (file, env) {
            (Some(p), _) if field == f_file => format!("{}: empty", p.display()),
            (_, Some(v)) if field == f_env => format!("variable {v} is empty"),
            _ => "empty".to_owned(),
        };
        return Err(ConfigError::at(index, field, what));
    }
    Ok(Secret(value))
}

/// Drops one trailing newline (`\n` or `\r\n`), as editors and `echo` leave it.
fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Delivery knobs, for a `notify:` settings section (every field has a default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Days before a freshness window closes that `evidence.expiring` is sent (default 14).
    pub warn_days: u32,
    /// An event still undelivered this long after its first attempt is a dead letter
    /// (default 86400: one day).
    pub max_age_secs: u64,
    /// Total time for one HTTP request, connect to last byte (default 10).
    pub timeout_secs: u64,
    /// Largest response body read from a webhook or Slack (default 65536).
    pub max_response_bytes: usize,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            warn_days: 14,
            max_age_secs: 86_400,
            timeout_secs: 10,
            max_response_bytes: 64 * 1024,
        }
    }
}

impl NotifySettings {
    /// Checks the ranges; errors name `notify.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: &str| ConfigError::Invalid {
            setting: format!("notify.{field}"),
            reason: reason.to_owned(),
        };
        if self.warn_days == 0 || self.warn_days > 365 {
            return Err(bad("warn_days", "must be between 1 and 365"));
        }
        if self.max_age_secs < 60 {
            return Err(bad("max_age_secs", "must be at least 60"));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(bad("timeout_secs", "must be between 1 and 300"));
        }
        if self.max_response_bytes < 1024 {
            return Err(bad("max_response_bytes", "must be at least 1024"));
        }
        Ok(())
    }

    /// The dead-letter age.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs)
    }

    /// The options for [`crate::Deliverer::new`].
    pub fn deliverer_options(&self) -> DelivererOptions {
        DelivererOptions {
            timeout: Duration::from_secs(self.timeout_secs),
            max_response_bytes: self.max_response_bytes,
            ..DelivererOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_newline() {
        assert_eq!(strip_newline("s\n".into()), "s");
        assert_eq!(strip_newline("s\r\n".into()), "s");
        assert_eq!(strip_newline("s\n\n".into()), "s\n");
        assert_eq!(strip_newline("s".into()), "s");
    }

    #[test]
    fn repos() {
        assert!(owner_repo("acme/fraud.ml_x-1").is_ok());
        for bad in [
            "acme", "acme/", "/x", "a/b/c", "ac me/x", "acme/..", "a_b/c",
        ] {
            assert!(owner_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(http_url("https://h.example/x?y=1").is_ok());
        assert!(http_url("ftp://h/x").unwrap_err().contains("ftp"));
        assert!(
            http_url("not a url")
                .unwrap_err()
                .contains("not a valid URL")
        );
        assert!(
            http_url("https://u:p@h/")
                .unwrap_err()
                .contains("credentials")
        );
    }

    #[test]
    fn settings_defaults() {
        let s: NotifySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, NotifySettings::default());
        assert_eq!(s.warn_days, 14);
        assert!(s.validate().is_ok());
        let bad = NotifySettings {
            warn_days: 0,
            ..NotifySettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().setting(), "notify.warn_days");
        assert_eq!(s.deliverer_options().timeout, Duration::from_secs(10));
    }
}
