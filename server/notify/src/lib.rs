//! aims-notify: the notification sinks of aims-server and their delivery policy (DESIGN §12.4,
//! issue 15). The server's durable outbox decides *what* to send and *when*; this crate builds
//! the payload ([`event`]), validates the `notifications:` settings ([`config`]), makes one
//! delivery attempt and classifies it ([`deliver`]), and computes the next attempt or the dead
//! letter ([`backoff`]). It depends on neither the store nor the server.
//!
//! # Events and payload
//!
//! `finding.opened`, `finding.resolved`, `finding.acknowledged`, `evidence.expiring` (sent
//! `warn_days` before a freshness window closes), `source.silent`, and `test` (from
//! `aims-server notify test`). A webhook receives, as compact JSON:
//!
//! ```json
//! {"event":"finding.opened","delivery":"5f0c…","sent_at":"2026-03-01T10:00:00Z",
//!  "finding":{"id":"9a1e…","kind":"changed","system":"fraud-scoring","controls":["A.6.2.6"],
//!   "since":"2026-03-01T09:58:12Z","message":"…","evidence":["<record id>"],
//!   "links":{"dashboard":"https://aims.example/systems/fraud-scoring/controls/A.6.2.6",
//!    "evidence":["https://aims.example/evidence/<record id>"],
//!    "proofs":["https://aims.example/v1/evidence/<record id>/proof"]}}}
//! ```
//!
//! `source.silent` carries `"source":{"agent","source","system","silent_since","last_seen",
//! "message","links"}` instead of `finding`. Absent optional fields are left out.
//!
//! # Sinks
//!
//! - **webhook**: `POST` of those bytes with `X-Aims-Signature: sha256=<hex HMAC-SHA256(secret,
//!   body)>`, `X-Aims-Delivery: <id>` (the same on every retry: receivers de-duplicate on it),
//!   `X-Aims-Event` and `Content-Type: application/json`.
//! - **github**: one issue per finding in a repository, found again by a hidden marker, with
//!   labels per kind and control, the CODEOWNERS owners as assignees, a comment per change and
//!   closed when the finding resolves (see [`deliver`]'s `github` module docs).
//! - **slack**: an incoming-webhook message with the same content.
//!
//! Each sink may restrict `events` and `systems`. Delivery is at least once: 2xx is delivered;
//! 408, 425, 429, 5xx and network errors are retried with jittered exponential backoff
//! (`Retry-After` honoured); other 4xx and redirects fail at once; an event undelivered after
//! `max_age_secs` is a dead letter. Answers are read up to a bound, and every request has a
//! total time limit, so a huge or endless answer costs neither memory nor more than the limit.
//!
//! # Verifying a webhook
//!
//! Compute HMAC-SHA256 over the **raw request body** (before any JSON parsing) with the shared
//! secret and compare it, in constant time, with the hex after `sha256=`. Then de-duplicate on
//! `X-Aims-Delivery`.
//!
//! Shell (body saved to `body.json`, header value in `$SIG`):
//!
//! ```sh
//! expected="sha256=$(openssl dgst -sha256 -hmac "$SECRET" < body.json | sed 's/^.*= //')"
//! [ "$expected" = "$SIG" ] && echo valid
//! ```
//!
//! Python:
//!
//! ```python
//! import hmac, hashlib
//! def verify(secret: bytes, body: bytes, header: str) -> bool:
//!     expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
//!     return hmac.compare_digest(expected, header)
//! ```
//!
//! Rust: [`verify_signature`].

pub mod backoff;
pub mod config;
pub mod deliver;
pub mod error;
pub mod event;

pub use backoff::{is_dead, next_attempt};
pub use config::{NotifySettings, Sink, SinkConfig, build_sinks};
pub use deliver::webhook::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature, verify_signature,
};
pub use deliver::{Deliverer, DelivererOptions, Outcome};
pub use error::{ConfigError, NotifyError};
pub use event::{EventType, FindingPayload, Links, Notification, SourcePayload};
