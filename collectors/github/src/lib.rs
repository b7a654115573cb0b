//! aims-collect-github: the `github` source (DESIGN §3a, §10), built with [`build`].
//!
//! One source is one repository. Its listing holds the files of the configured ref (evidence
//! documents kept in the repository, classified by the catalog's path and content rules exactly
//! like the `git` source) and four kinds of lifecycle records that only the API knows about:
//! deployments, environment deployment approvals (A.6.2.5), merged pull requests with their
//! reviews and the default branch's protection (both A.6.1.3). See [`collector`] for locators,
//! version tokens and documents, [`api`] for conditional requests and rate limits.
//!
//! The client is octocrab (hyper + rustls on ring), pointed at `api_url` through `base_uri`,
//! so GitHub Enterprise Server (`https://HOST/api/v3`) and the tests' recorded-response server
//! work the same way. octocrab has no typed support for run approvals, branch protection or
//! conditional requests, so every call goes through its raw `GET` with our own decoding.
//!
//! Tokens come from `token_env` or `token_file` (neither: unauthenticated, 60 requests an hour).
//! A token is handed to octocrab and never logged or put into an error message.
//!
//! Feature `testkit`: [`testkit::FakeGithub`], recorded REST responses served over real HTTP,
//! for this crate's tests and the end-to-end suite.

pub mod api;
pub mod collector;
mod documents;
pub mod error;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::path::Path;
use std::time::Duration;

use aims_collect::GithubSource;
use sha2::{Digest, Sha256};

pub use collector::{GithubCollector, Limits};
pub use error::GithubError;

/// The public API (`api_url` default).
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Connect timeout of the HTTP client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of the HTTP client (per read, so large blobs still stream).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn read_token(cfg: &GithubSource) -> Result<Option<String>, GithubError> {
    let token = match (&cfg.token_env, &cfg.token_file) {
        (Some(var), _) => match std::env::var(var) {
            Ok(t) => t,
            Err(_) => {
                return Err(GithubError::Config {
                    field: "token_env",
                    reason: format!("environment variable {var} is not set or not UTF-8"),
                });
            }
        },
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| GithubError::Config {
            field: "token_file",
            reason: format!("reading {}: {e}", file.display()),
        })?,
        (None, None) => return Ok(None),
    };
    let token = token.trim().to_owned();
    let field = if cfg.token_env.is_some() {
        "token_env"
    } else {
        "token_file"
    };
    if token.is_empty() {
        return Err(GithubError::Config {
            field,
            reason: "the token is empty".into(),
        });
    }
    // octocrab turns the token into a header value and panics on characters a header cannot
    // hold: refuse them here (without echoing the token).
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GithubError::Config {
            field,
            reason: "the token contains characters that cannot be sent in a header".into(),
        });
    }
    Ok(Some(token))
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the collector for `cfg` (which the caller has validated). Reads the token (from the
/// environment or its file) but does no network IO. ETags and listing state are kept in memory
/// and in `cache_dir/github/<id>-<hash>.json`, so a restarted agent's first poll is as cheap
/// as any other.
pub fn build(cfg: &GithubSource, cache_dir: &Path) -> Result<GithubCollector, GithubError> {
    let api_url = cfg
        .api_url
        .as_deref()
        .unwrap_or(DEFAULT_API_URL)
        .trim_end_matches('/')
        .to_owned();
    let token = read_token(cfg)?;
    let builder = octocrab::Octocrab::builder()
        .base_uri(api_url.as_str())
        .map_err(GithubError::Client)?
        // Rate limits are handled by `api` (bounded waits); octocrab's retries would hot-loop
        // on 429s and double the waits.
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(READ_TIMEOUT));
    let builder = match token {
        Some(t) => builder.personal_token(t),
        None => builder,
    };
    let client = builder.build().map_err(GithubError::Client)?;
    let key = hex::encode(Sha256::digest(
        format!("{api_url}\n{}\n{}", cfg.owner, cfg.repo).as_bytes(),
    ));
    let cache_file =
        cache_dir
            .join("github")
            .join(format!("{}-{}.json", sanitize(&cfg.id), &key[..16]));
    let api = api::Api::new(
        client,
        &api_url,
        api::DEFAULT_MAX_RATE_LIMIT_WAIT,
        Some(cache_file),
    );
    tracing::debug!(source = %cfg.id, owner = %cfg.owner, repo = %cfg.repo, "github collector built");
    Ok(GithubCollector::new(
        &cfg.id,
        &cfg.owner,
        &cfg.repo,
        cfg.git_ref.clone(),
        api,
    ))
}
