//! One delivery attempt of one [`Notification`] to one [`Sink`], classified as an [`Outcome`]
//! the outbox acts on: `Delivered` (done), `Retry` (try again after
//! [`crate::backoff::next_attempt`], honouring `after`), `Failed` (a dead letter now: the
//! receiver refused the event and would refuse it again).
//!
//! Contract, for every sink:
//! - One `reqwest` client (rustls with the ring provider), with a total time limit per request
//!   (connect to last byte, [`DelivererOptions::timeout`]) and **no redirects**: a 3xx is
//!   `Failed` naming its `Location`, and credentials (the GitHub token, the Slack URL, the
//!   signature) never reach another host.
//! - **Bounded answers**: a response body is read chunk by chunk up to
//!   [`DelivererOptions::max_response_bytes`] (GitHub's JSON up to
//!   [`DelivererOptions::max_api_response_bytes`]); beyond that the connection is dropped. A
//!   10 MB answer costs at most the limit plus one chunk, and a never-ending one is cut by the
//!   time limit. Webhook and Slack answers are classified by status alone (the body only
//!   feeds the reason), so a 2xx is `Delivered` without reading its body.
//! - Status: 2xx `Delivered`; 408, 425, 429, 5xx, connection errors and timeouts `Retry`, with
//!   `after` from `Retry-After` (seconds or HTTP-date, capped at
//!   [`crate::backoff::MAX_RETRY_AFTER`]); other 4xx `Failed`. GitHub adds its rate limits and
//!   validation errors (see [`github`]).
//! - Reasons carry the status and the start of the receiver's answer, never a URL of the sink
//!   (a Slack URL is a secret) nor any secret.
//!
//! The caller decides which sinks get an event ([`Sink::wants`]); `deliver` sends what it is
//! given.

pub mod github;
pub mod slack;
pub mod webhook;

use std::sync::Once;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};

use crate::backoff::parse_retry_after;
use crate::config::{Sink, SinkKind};
use crate::error::NotifyError;
use crate::event::Notification;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("aims-server/", env!("CARGO_PKG_VERSION"));

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver accepted the event.
    Delivered {
        /// What happened (`HTTP 200`, `opened issue #12`, …).
        detail: String,
    },
    /// Try again later.
    Retry {
        /// The wait the receiver asked for (`Retry-After`, GitHub's rate-limit reset).
        after: Option<Duration>,
        /// Why the attempt failed.
        reason: String,
    },
    /// The receiver refused the event for good; retrying would not help.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// `delivered`, `retry` or `failed` (for metrics labels).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Retry { .. } => "retry",
            Self::Failed { .. } => "failed",
        }
    }

    fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }
}

/// Limits of the deliverer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelivererOptions {
    /// Total time for one HTTP request, connect to last byte (default 10 s). A GitHub delivery
    /// makes up to four requests.
    pub timeout: Duration,
    /// Largest webhook or Slack response body read (default 64 KiB); only its start is kept
    /// for the reason.
    pub max_response_bytes: usize,
    /// Largest GitHub API response read (default 8 MiB: a search page with long issue bodies).
    pub max_api_response_bytes: usize,
}

impl Default for DelivererOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            max_api_response_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Delivers notifications; cheap to share (`reqwest::Client` is a handle to a pool).
#[derive(Clone, Debug)]
pub struct Deliverer {
    client: reqwest::Client,
    options: DelivererOptions,
}

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' ring provider as the process default once; one already installed (by this
/// or another crate) is kept.
fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        let _already = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Deliverer {
    /// Builds the HTTP client.
    pub fn new(options: DelivererOptions) -> Result<Self, NotifyError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            // Secrets go to the configured URL only (issue 18, A1).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Self { client, options })
    }

    /// The limits in force.
    pub fn options(&self) -> &DelivererOptions {
        &self.options
    }

    /// Makes one attempt to deliver `n` to `sink` (see the module docs).
    pub async fn deliver(&self, sink: &Sink, n: &Notification) -> Outcome {
        let outcome = match &sink.kind {
            SinkKind::Webhook(w) => webhook::deliver(self, w, n).await,
            SinkKind::Slack(s) => slack::deliver(self, s, n).await,
            SinkKind::Github(g) => github::deliver(self, g, n).await,
        };
        match &outcome {
            Outcome::Delivered { detail } => tracing::debug!(
                sink = sink.name(), event = %n.event, delivery = %n.delivery, %detail,
                "notification delivered"
            ),
            Outcome::Retry { after, reason } => tracing::info!(
                sink = sink.name(), event = %n.event, delivery = %n.delivery, %reason,
                after_secs = after.map(|a| a.as_secs()),
                "notification not delivered, will retry"
            ),
            Outcome::Failed { reason } => tracing::warn!(
                sink = sink.name(), event = %n.event, delivery = %n.delivery, %reason,
                "notification refused by the receiver"
            ),
        }
        outcome
    }
}

/// Sends a request; a transport failure becomes the `Outcome` to return.
async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, Outcome> {
    req.send().await.map_err(|e| {
        if e.is_builder() {
            Outcome::failed(format!("building the request: {}", error_text(e)))
        } else if e.is_timeout() {
            Outcome::retry(format!("timeout: {}", error_text(e)))
        } else if e.is_connect() {
            Outcome::retry(format!("connection failed: {}", error_text(e)))
        } else {
            Outcome::retry(format!("request failed: {}", error_text(e)))
        }
    })
}

/// An error and its sources, without the URL (a sink's URL may be a secret).
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A response body read up to a limit.
struct Body {
    bytes: Vec<u8>,
    /// The body went on beyond the limit (the rest was not read).
    truncated: bool,
    /// Reading stopped on an error (timeout, reset) before the end.
    error: Option<String>,
}

/// Reads at most `limit` bytes of `resp`, then drops the connection.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Body {
    let mut body = Body {
        bytes: Vec::new(),
        truncated: false,
        error: None,
    };
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(body.bytes.len());
                if chunk.len() > room {
                    body.bytes.extend_from_slice(&chunk[..room]);
                    body.truncated = true;
                    break;
                }
                body.bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                body.error = Some(error_text(e));
                break;
            }
        }
    }
    body
}

/// The start of a body for a reason: one line, at most 200 characters.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

/// `Retry-After` of a response, if present and well-formed.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()))
}

/// The reason for a redirect that was not followed.
fn redirect_reason(status: StatusCode, headers: &HeaderMap) -> String {
    let location = headers
        .get(LOCATION)
        .map(|v| snippet(v.as_bytes()))
        .unwrap_or_else(|| "nowhere".to_owned());
    format!(
        "HTTP {}: redirect to {location} not followed (notifications go to the configured URL only)",
        status.as_u16()
    )
}

/// Whether a status is worth retrying (besides transport errors).
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error()
}

/// The webhook and Slack classification: by status; the body (bounded) only for the reason.
async fn classify_plain(resp: reqwest::Response, max_body: usize) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        // Accepted: the body is irrelevant and may be slow or endless; dropping the response
        // closes the connection.
        return Outcome::Delivered {
            detail: format!("HTTP {}", status.as_u16()),
        };
    }
    if status.is_redirection() {
        return Outcome::failed(redirect_reason(status, resp.headers()));
    }
    let after = retry_after(resp.headers());
    let body = read_limited(resp, max_body).await;
    let mut reason = format!("HTTP {}", status.as_u16());
    let text = snippet(&body.bytes);
    if !text.is_empty() {
        reason.push_str(": ");
        reason.push_str(&text);
    }
    if body.truncated {
        reason.push_str(&format!(" (answer cut at {max_body} bytes)"));
    }
    if let Some(e) = body.error {
        reason.push_str(&format!(" (answer unreadable: {e})"));
    }
    if retryable(status) {
        Outcome::Retry { after, reason }
    } else {
        Outcome::Failed { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_one_bounded_line() {
        assert_eq!(snippet(b"bad\nrequest\r\n"), "bad request");
        let long = "x".repeat(500);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), 201);
        assert!(s.ends_with('…'));
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(Outcome::retry("x").label(), "retry");
        assert_eq!(Outcome::failed("x").label(), "failed");
        let d = Outcome::Delivered {
            detail: "ok".into(),
        };
        assert_eq!(d.label(), "delivered");
    }
}
