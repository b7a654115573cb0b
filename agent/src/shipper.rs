//! The shipper: sends spooled batches to `POST {url}/v1/evidence` and deletes a batch only after
//! the server acknowledged every record in it.
//!
//! Contract:
//! - One `reqwest::Client` per shipper, with a connect and a total per-request timeout and rustls
//!   (ring provider, installed once per process). Trust is the platform verifier reqwest uses,
//!   plus the PEM certificates of `server.ca_file` when configured. The same client carries the
//!   witness's proof requests and the confirmation and heartbeat posts.
//! - **No redirects** (issue 18, A1): the token and the evidence go to `server.url` and nowhere
//!   else. A 3xx answer is an error naming its `Location`; nothing is re-sent.
//! - **Bounded answers** (issue 18, A4): a response body is read up to
//!   [`MAX_RESPONSE_BYTES`] (acknowledgements, confirmations, proofs) and error bodies up to
//!   [`MAX_ERROR_BODY_BYTES`]; a larger answer is an error, never buffered whole.
//! - Batches are sent oldest first, one at a time (so the ledger sees them in spool order).
//! - Each send has a typed [`SendOutcome`]:
//!   - `Delivered`: a 2xx with a parseable [`IngestResponse`]. The batch is deleted only if the
//!     response has exactly one `accepted` entry per record, in order, and each `record_id` equals
//!     the record's own [`EvidenceRecord::record_id`]. Otherwise the file stays in the spool and the
//!     mismatch is reported as an error (it is not retried in the same call: the answer would be
//!     the same).
//!   - `Retryable`: 5xx, 408, 429, timeouts, connection errors, an unparseable 2xx. Retried with
//!     exponential backoff and jitter (500 ms doubling, capped at 60 s); a `Retry-After: <secs>`
//!     header is honoured instead, up to [`RetryPolicy::max_retry_after`] (60 s) and only when
//!     the wait still ends within the deadline. Retries are bounded per
//!     [`Shipper::ship_pending`] call by [`RetryPolicy::max_attempts`] per batch and an overall
//!     [`RetryPolicy::deadline`]; when the budget is spent the call returns, leaving the rest in
//!     the spool. There is never a hot loop: every retry sleeps first.
//!   - `Refused`: 401/403. The agent's credentials are wrong, not the batch; the batch is kept,
//!     shipping stops for this call and an ERROR is logged.
//!   - `Rejected`: a 4xx that is aims-server's own verdict on the batch: its body parses as
//!     `{"error":{"code","message"}}` with a code the ingest endpoint uses for bad batches
//!     ([`REJECTION_CODES`]). The batch is moved to `spool/rejected/` with the server's error
//!     message in a `.reason` file, and an ERROR is logged (evidence was not accepted and an
//!     operator must act; `aims-agent spool retry` offers it again).
//!   - `Stopped` (issue 18, A3): any other answer that is not a delivery — a 3xx, a 404 or 413
//!     from a proxy, an HTML or empty 4xx, a 405. It says nothing about the batch: the batch is
//!     kept, shipping stops for this call and the problem is reported (so `once` exits 1).
//! - Resending is always safe: the server deduplicates by record id.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use aims_model::EvidenceRecord;
use aims_model::wire::{
    ConfirmationRequest, ConfirmationResponse, ErrorBody, HeartbeatRequest, IngestRequest,
    IngestResponse,
};
use reqwest::StatusCode;
use url::Url;

use crate::config::{AgentConfig, ConfigError, SecretToken};
use crate::spool::{self, Spool, SpoolError};

/// Bounds on retries within one [`Shipper::ship_pending`] call.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First backoff delay (doubles each retry).
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Attempts per batch (the first send counts), at least 1.
    pub max_attempts: u32,
    /// Overall time budget for one call; no retry sleep starts that would end past it.
    pub deadline: Option<Duration>,
    /// Longest `Retry-After` honoured; a server asking for more is retried after this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_attempts: 6,
            deadline: Some(Duration::from_secs(120)),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

/// Default cap on an honoured `Retry-After`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Largest response body read (acknowledgements list every record: 1,000 records take ~200
/// KiB, so this is far above any honest answer).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Largest error body read (only its message is kept).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// The `error.code`s with which aims-server's ingest refuses a batch itself (malformed JSON,
/// invalid records, duplicates within the batch, a batch over the size limits). Only these move
/// a batch to `rejected/`.
pub const REJECTION_CODES: &[&str] = &[
    "invalid_json",
    "invalid_request",
    "invalid_record",
    "duplicate_record",
    "payload_too_large",
];

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): `initial * 2^(retry-1)` capped at
    /// `max_backoff`, with "equal jitter" (a random point in the upper half of the delay).
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = base / 2;
        let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if half_ms == 0 {
            0
        } else {
            random_u64() % (half_ms + 1)
        };
        half + Duration::from_millis(jitter)
    }
}

fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: fall back to the clock's sub-second noise (jitter only).
        u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        )
    })
}

/// What the shipper needs to know.
#[derive(Clone, Debug)]
pub struct ShipperSettings {
    /// Server base URL.
    pub url: Url,
    /// Bearer token.
    pub token: SecretToken,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Retry bounds.
    pub retry: RetryPolicy,
    /// Where the newest checkpoint the agent has seen is kept (the spool directory); `None`
    /// disables the ledger-consistency check (tests of the transport only).
    pub witness_dir: Option<PathBuf>,
    /// The server's trust policy (`aims-server keys show`), to verify checkpoint signatures.
    pub trust_file: Option<PathBuf>,
}

impl ShipperSettings {
    /// From a validated configuration; resolves the token (reads `token_file` / `token_env`).
    pub fn from_config(cfg: &AgentConfig, retry: RetryPolicy) -> Result<Self, ShipError> {
        let url = Url::parse(&cfg.server.url).map_err(|e| {
            ShipError::Config(ConfigError::Invalid {
                file: cfg.file.clone(),
                field: "server.url".into(),
                reason: e.to_string(),
            })
        })?;
        Ok(Self {
            url,
            token: cfg.server.resolve_token(&cfg.file)?,
            timeout: cfg.server.timeout(),
            ca_file: cfg.server.ca_file.clone(),
            retry,
            witness_dir: Some(cfg.spool_dir.clone()),
            trust_file: cfg.server.trust_file.clone(),
        })
    }
}

/// The result of one `POST /v1/evidence`.
#[derive(Debug)]
pub enum SendOutcome {
    /// 2xx with a parseable acknowledgement (not yet checked against the batch).
    Delivered(IngestResponse),
    /// Try again later.
    Retryable {
        /// Why.
        reason: String,
        /// The server's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// The server refused this batch (4xx other than 401, 403, 408, 429).
    Rejected {
        /// HTTP status.
        status: u16,
        /// Response body (normally `{"error":{"code","message"}}`).
        body: String,
    },
    /// The server refused the agent's credentials (401/403); the batch is fine and kept.
    Refused {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// An answer that is neither a delivery nor aims-server's verdict on the batch (a redirect,
    /// a proxy's 404 or 413, an HTML error page): the batch is kept and shipping stops for this
    /// pass.
    Stopped {
        /// HTTP status.
        status: u16,
        /// What the answer was, for the report.
        reason: String,
    },
}

/// Why an acknowledgement does not match its batch.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// Wrong number of `accepted` entries.
    #[error("server acknowledged {got} records, the batch has {expected}")]
    Count {
        /// Records in the batch.
        expected: usize,
        /// Entries in `accepted`.
        got: usize,
    },
    /// An entry names a different record.
    #[error("acknowledgement {index} names record {got}, the batch's record is {expected}")]
    Mismatch {
        /// Position in the batch.
        index: usize,
        /// The record's own id.
        expected: String,
        /// The id the server returned.
        got: String,
    },
    /// A record's id cannot be computed.
    #[error("record {index} has no computable id: {reason}")]
    Record {
        /// Position in the batch.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// Checks that `resp` acknowledges exactly `records`, in order.
pub fn verify_ack(records: &[EvidenceRecord], resp: &IngestResponse) -> Result<(), AckError> {
    if resp.accepted.len() != records.len() {
        return Err(AckError::Count {
            expected: records.len(),
            got: resp.accepted.len(),
        });
    }
    for (index, (rec, acc)) in records.iter().zip(&resp.accepted).enumerate() {
        let id = rec.record_id().map_err(|e| AckError::Record {
            index,
            reason: e.to_string(),
        })?;
        if id != acc.record_id {
            return Err(AckError::Mismatch {
                index,
                expected: id.to_string(),
                got: acc.record_id.to_string(),
            });
        }
    }
    Ok(())
}

/// Shipper set-up and spool failures (delivery failures are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The configuration (URL, token) is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The CA file cannot be read or parsed.
    #[error("server.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The witness state or trust file cannot be used.
    #[error("ledger witness: {0}")]
    Witness(String),
}

/// Why a one-shot call to the server (a confirmation, a heartbeat) did not go through. Not
/// retried here: the next cycle re-derives and re-sends it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer (connection, TLS, timeout).
    #[error("POST {path}: {reason}")]
    Transport {
        /// The API path.
        path: &'static str,
        /// Why, with its causes.
        reason: String,
    },
    /// A redirect, which is never followed.
    #[error("{0}")]
    Redirect(String),
    /// The answer could not be read (too long, cut off).
    #[error("POST {path}: reading the response: {reason}")]
    Read {
        /// The API path.
        path: &'static str,
        /// Why.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{what} refused with HTTP {status}: {message}")]
    Refused {
        /// What was refused.
        what: &'static str,
        /// The status.
        status: u16,
        /// The server's `error.code: message`, or the body.
        message: String,
    },
    /// The answer is not what the API promises.
    #[error("{0}")]
    Protocol(String),
    /// The checkpoint the server answered with does not extend the one this agent saw.
    #[error("{0}")]
    Witness(#[from] crate::witness::WitnessError),
}

/// What one [`Shipper::ship_pending`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShipReport {
    /// Batches acknowledged and deleted.
    pub files_acked: usize,
    /// Records in them.
    pub records_acked: usize,
    /// Of those, records the server already held.
    pub duplicates: usize,
    /// Batches moved to `rejected/` (refused by the server or corrupt).
    pub files_rejected: usize,
    /// Records in them (corrupt files count 0).
    pub records_rejected: usize,
    /// Batches still pending when the call returned.
    pub files_remaining: usize,
    /// Acknowledged records per source id.
    pub acked_by_source: std::collections::BTreeMap<String, usize>,
    /// Problems, one line each.
    pub errors: Vec<String>,
}

impl ShipReport {
    /// True when nothing is left and nothing went wrong.
    pub fn all_delivered(&self) -> bool {
        self.files_remaining == 0 && self.files_rejected == 0 && self.errors.is_empty()
    }
}

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' ring provider as the process default once; an already installed provider
/// (by this or another crate) is kept.
pub fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        let _already = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Sends spooled batches. Cheap to share behind an `Arc`; `ship_pending` is not meant to run
/// twice at the same time on one spool (the runner has a single shipper loop).
#[derive(Debug)]
pub struct Shipper {
    client: reqwest::Client,
    endpoint: Url,
    token: SecretToken,
    retry: RetryPolicy,
    spool: Spool,
    base_url: Url,
    witness: Option<crate::witness::Witness>,
    max_response_bytes: usize,
}

impl Shipper {
    /// Builds the HTTP client (reads `ca_file` if set).
    pub fn new(settings: ShipperSettings, spool: Spool) -> Result<Self, ShipError> {
        install_crypto_provider();
        let endpoint = evidence_endpoint(&settings.url).map_err(|reason| {
            ShipError::Config(ConfigError::Invalid {
                file: PathBuf::new(),
                field: "server.url".into(),
                reason,
            })
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // Credentials and evidence go only to the configured origin (issue 18, A1).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("aims-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| ShipError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ShipError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(ShipError::CaFile {
                    path: path.clone(),
                    reason: "no PEM certificate found".into(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(ShipError::Client)?;
        let mut retry = settings.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        let witness = match &settings.witness_dir {
            Some(dir) => Some(
                crate::witness::Witness::open(dir, settings.trust_file.as_deref())
                    .map_err(|e| ShipError::Witness(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Self {
            client,
            endpoint,
            token: settings.token,
            retry,
            spool,
            base_url: settings.url,
            witness,
            max_response_bytes: MAX_RESPONSE_BYTES,
        })
    }

    /// Changes the largest response body read (default [`MAX_RESPONSE_BYTES`]).
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The spool this shipper drains.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// `POST /v1/evidence` once, classifying the result.
    pub async fn send(&self, records: &[EvidenceRecord]) -> SendOutcome {
        let body = IngestRequest {
            records: records.to_vec(),
        };
        let resp = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                return SendOutcome::Retryable {
                    reason: format!("{what}: {}", error_chain(&e)),
                    retry_after: None,
                };
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_redirection() {
            return SendOutcome::Stopped {
                status: status.as_u16(),
                reason: redirect_error("POST /v1/evidence", &resp),
            };
        }
        let limit = if status.is_success() {
            self.max_response_bytes
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let text = match read_limited(resp, limit).await {
            Ok(t) => t,
            Err(e) => {
                return SendOutcome::Retryable {
                    reason: format!("reading the response failed: {e}"),
                    retry_after,
                };
            }
        };
        classify(status, retry_after, text)
    }

    /// Ships every pending batch, oldest first, within the retry budget (see the module docs).
    /// Returns what happened; batches not acknowledged stay in the spool.
    pub async fn ship_pending(&self) -> Result<ShipReport, ShipError> {
        let started = Instant::now();
        let mut report = ShipReport::default();
        let files = spool::blocking(&self.spool, |s| s.pending()).await?;
        'files: for path in files {
            let p = path.clone();
            let Some(batch) =
                spool::blocking(&self.spool, move |s| s.read_or_quarantine(&p)).await?
            else {
                report.files_rejected += 1;
                report.errors.push(format!(
                    "{}: corrupt spool file moved to rejected",
                    path.display()
                ));
                continue;
            };
            if batch.records.is_empty() {
                self.ack(&path).await?;
                continue;
            }
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                match self.send(&batch.records).await {
                    SendOutcome::Delivered(resp) => {
                        match verify_ack(&batch.records, &resp) {
                            Ok(()) => {
                                self.ack(&path).await?;
                                if let (Some(w), Some(note)) = (&self.witness, &resp.checkpoint)
                                    && let Err(e) = w
                                        .observe(
                                            &self.client,
                                            &self.base_url,
                                            self.token.expose(),
                                            note,
                                        )
                                        .await
                                {
                                    tracing::error!(error = %e, "ledger check failed");
                                    report.errors.push(e.to_string());
                                }
                                report.files_acked += 1;
                                report.records_acked += batch.records.len();
                                report.duplicates += resp.duplicates;
                                for r in &batch.records {
                                    *report
                                        .acked_by_source
                                        .entry(r.source.id.clone())
                                        .or_default() += 1;
                                }
                                tracing::info!(
                                    path = %path.display(),
                                    records = batch.records.len(),
                                    duplicates = resp.duplicates,
                                    tree_size = resp.tree_size,
                                    "batch delivered"
                                );
                            }
                            Err(e) => {
                                tracing::error!(
                                    path = %path.display(),
                                    error = %e,
                                    "acknowledgement does not match the batch, keeping it in the spool"
                                );
                                report.errors.push(format!("{}: {e}", path.display()));
                            }
                        }
                        continue 'files;
                    }
                    SendOutcome::Rejected { status, body } => {
                        let msg = server_message(&body);
                        tracing::error!(
                            path = %path.display(),
                            status,
                            message = %msg,
                            "server rejected the batch, moving it to rejected"
                        );
                        let reason = format!("HTTP {status}: {msg}\n{body}");
                        let p = path.clone();
                        spool::blocking(&self.spool, move |s| s.reject(&p, &reason)).await?;
                        report.files_rejected += 1;
                        report.records_rejected += batch.records.len();
                        report.errors.push(format!(
                            "{}: rejected with HTTP {status}: {msg}",
                            path.display()
                        ));
                        continue 'files;
                    }
                    SendOutcome::Stopped { status, reason } => {
                        tracing::error!(
                            path = %path.display(),
                            status,
                            reason = %reason,
                            "unexpected answer to a delivery, batch kept and shipping stopped"
                        );
                        report.errors.push(format!(
                            "{}: not delivered, HTTP {status}: {reason}",
                            path.display()
                        ));
                        break 'files;
                    }
                    SendOutcome::Refused { status, body } => {
                        let msg = server_message(&body);
                        tracing::error!(
                            status,
                            message = %msg,
                            "server refused the agent token, shipping stopped"
                        );
                        report.errors.push(format!(
                            "server refused the agent token with HTTP {status}: {msg}"
                        ));
                        break 'files;
                    }
                    SendOutcome::Retryable {
                        reason,
                        retry_after,
                    } => {
                        if attempt >= self.retry.max_attempts {
                            tracing::warn!(
                                path = %path.display(),
                                attempt,
                                reason = %reason,
                                "delivery failed, giving up for now"
                            );
                            report.errors.push(format!(
                                "{}: not delivered after {attempt} attempts: {reason}",
                                path.display()
                            ));
                            break 'files;
                        }
                        let delay = retry_after
                            .map(|d| d.min(self.retry.max_retry_after))
                            .unwrap_or_else(|| self.retry.backoff(attempt));
                        let past_deadline = self
                            .retry
                            .deadline
                            .is_some_and(|d| started.elapsed() + delay > d);
                        if past_deadline {
                            tracing::warn!(
                                path = %path.display(),
                                attempt,
                                reason = %reason,
                                "delivery failed and the retry deadline is reached, giving up for now"
                            );
                            report.errors.push(format!(
                                "{}: not delivered before the deadline: {reason}",
                                path.display()
                            ));
                            break 'files;
                        }
                        tracing::warn!(
                            path = %path.display(),
                            attempt,
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            reason = %reason,
                            "delivery failed, will retry"
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        report.files_remaining = spool::blocking(&self.spool, |s| s.pending()).await?.len();
        Ok(report)
    }

    /// `POST {url}{path}` with the token, once (no retries: confirmations and heartbeats are
    /// re-derived and re-sent by the next cycle). The answer's status and body, or why there is
    /// none.
    async fn post(
        &self,
        path: &'static str,
        body: &impl serde::Serialize,
    ) -> Result<(StatusCode, String), CallError> {
        let url = format!("{}{path}", self.base_url.as_str().trim_end_matches('/'));
        let resp = self
            .client
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| CallError::Transport {
                path,
                reason: error_chain(&e),
            })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(CallError::Redirect(redirect_error(
                &format!("POST {path}"),
                &resp,
            )));
        }
        let limit = if status.is_success() {
            self.max_response_bytes
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let text = read_limited(resp, limit)
            .await
            .map_err(|reason| CallError::Read { path, reason })?;
        Ok((status, text))
    }

    /// Sends a confirmation; on success checks the checkpoint it carries like any
    /// acknowledgement (the agent is a witness of the ledger).
    pub async fn confirm(
        &self,
        req: &ConfirmationRequest,
    ) -> Result<ConfirmationResponse, CallError> {
        let (status, text) = self.post("/v1/confirmations", req).await?;
        if !status.is_success() {
            return Err(CallError::Refused {
                what: "confirmation",
                status: status.as_u16(),
                message: server_message(&text),
            });
        }
        let resp: ConfirmationResponse = serde_json::from_str(&text).map_err(|e| {
            CallError::Protocol(format!("unparseable confirmation acknowledgement: {e}"))
        })?;
        let id = req
            .confirmation
            .confirmation_id()
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        if resp.confirmation_id != id {
            return Err(CallError::Protocol(format!(
                "the server acknowledged confirmation {} instead of {id}",
                resp.confirmation_id
            )));
        }
        if let (Some(w), Some(note)) = (&self.witness, &resp.checkpoint) {
            w.observe(&self.client, &self.base_url, self.token.expose(), note)
                .await?;
        }
        Ok(resp)
    }

    /// Reports polls to the server (`POST /v1/heartbeats`).
    pub async fn heartbeat(&self, req: &HeartbeatRequest) -> Result<(), CallError> {
        let (status, text) = self.post("/v1/heartbeats", req).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(CallError::Refused {
                what: "heartbeat",
                status: status.as_u16(),
                message: server_message(&text),
            })
        }
    }

    async fn ack(&self, path: &Path) -> Result<(), SpoolError> {
        let p = path.to_path_buf();
        spool::blocking(&self.spool, move |s| s.ack(&p)).await
    }
}

/// Up to `limit` bytes of a response body as text; a longer body is an error (read no further).
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<String, String> {
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(format!(
            "the answer is {len} bytes, more than the {limit} bytes read"
        ));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > limit {
            return Err(format!("the answer is longer than the {limit} bytes read"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The error for a redirect answer: redirects are never followed (see the module docs).
pub(crate) fn redirect_error(what: &str, resp: &reqwest::Response) -> String {
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| crate::confirm::redact(&String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_else(|| "(no Location)".into());
    format!(
        "{what}: HTTP {} redirect to {location} not followed: the agent sends its token and \
         evidence only to server.url (set it to the server's real address)",
        resp.status().as_u16()
    )
}

/// Maps a status and body to an outcome.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: String) -> SendOutcome {
    let code = status.as_u16();
    if status.is_success() {
        return match serde_json::from_str::<IngestResponse>(&body) {
            Ok(r) => SendOutcome::Delivered(r),
            Err(e) => SendOutcome::Retryable {
                reason: format!("HTTP {code} with an unparseable acknowledgement: {e}"),
                retry_after,
            },
        };
    }
    match code {
        401 | 403 => SendOutcome::Refused { status: code, body },
        408 | 429 => SendOutcome::Retryable {
            reason: format!("HTTP {code}: {}", server_message(&body)),
            retry_after,
        },
        400..=499 => match serde_json::from_str::<ErrorBody>(&body) {
            Ok(b) if REJECTION_CODES.contains(&b.error.code.as_str()) => {
                SendOutcome::Rejected { status: code, body }
            }
            _ => SendOutcome::Stopped {
                status: code,
                reason: format!(
                    "not aims-server's verdict on the batch (a proxy or another service \
                     answered?): {}",
                    server_message(&body)
                ),
            },
        },
        300..=399 => SendOutcome::Stopped {
            status: code,
            reason: "redirect not followed".into(),
        },
        _ => SendOutcome::Retryable {
            reason: format!("HTTP {code}: {}", server_message(&body)),
            retry_after,
        },
    }
}

/// The `error.message` of a JSON error body (with its code), else the body itself, shortened.
pub fn server_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => format!("{}: {}", b.error.code, b.error.message),
        Err(_) => {
            let t = body.trim();
            if t.is_empty() {
                "(empty body)".into()
            } else {
                t.chars().take(500).collect()
            }
        }
    }
}

fn evidence_endpoint(base: &Url) -> Result<Url, String> {
    let s = format!("{}/v1/evidence", base.as_str().trim_end_matches('/'));
    Url::parse(&s).map_err(|e| format!("cannot form {s}: {e}"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for retry in 1..20 {
            let d = p.backoff(retry);
            let base = Duration::from_millis(500)
                .saturating_mul(1 << (retry - 1).min(30))
                .min(Duration::from_secs(60));
            assert!(d >= base / 2 && d <= base, "retry {retry}: {d:?}");
        }
        assert!(p.backoff(100) <= Duration::from_secs(60));
    }

    #[test]
    fn classification() {
        let s = |c| StatusCode::from_u16(c).unwrap();
        assert!(matches!(
            classify(s(503), None, String::new()),
            SendOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(s(429), Some(Duration::from_secs(1)), String::new()),
            SendOutcome::Retryable {
                retry_after: Some(_),
                ..
            }
        ));
        let typed = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert!(matches!(
            classify(s(400), None, typed("invalid_record")),
            SendOutcome::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            classify(s(413), None, typed("payload_too_large")),
            SendOutcome::Rejected { status: 413, .. }
        ));
        // Not the server's verdict on the batch: kept.
        assert!(matches!(
            classify(s(400), None, String::new()),
            SendOutcome::Stopped { status: 400, .. }
        ));
        assert!(matches!(
            classify(s(404), None, "<html>Not Found</html>".into()),
            SendOutcome::Stopped { status: 404, .. }
        ));
        assert!(matches!(
            classify(s(404), None, typed("not_found")),
            SendOutcome::Stopped { status: 404, .. }
        ));
        assert!(matches!(
            classify(s(413), None, "<html>Request Entity Too Large</html>".into()),
            SendOutcome::Stopped { status: 413, .. }
        ));
        assert!(matches!(
            classify(s(405), None, String::new()),
            SendOutcome::Stopped { status: 405, .. }
        ));
        assert!(matches!(
            classify(s(401), None, String::new()),
            SendOutcome::Refused { status: 401, .. }
        ));
        assert!(matches!(
            classify(s(200), None, "not json".into()),
            SendOutcome::Retryable { .. }
        ));
    }

    #[test]
    fn endpoint_joins() {
        let u = |s| {
            evidence_endpoint(&Url::parse(s).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(u("http://h:1"), "http://h:1/v1/evidence");
        assert_eq!(u("http://h:1/"), "http://h:1/v1/evidence");
        assert_eq!(u("https://h/aims/"), "https://h/aims/v1/evidence");
    }

    #[test]
    fn server_messages() {
        assert_eq!(
            server_message(r#"{"error":{"code":"invalid_record","message":"bad sha256"}}"#),
            "invalid_record: bad sha256"
        );
        assert_eq!(server_message(""), "(empty body)");
    }
}
