//! Confirmations and heartbeats: what the agent tells the server besides evidence (DESIGN
//! §12.1).
//!
//! **Confirmation.** The engine ships a record only when content changes. So that unchanged
//! evidence the agent still sees stays fresh, at most every `confirm_interval_secs` (one day by
//! default) per source the agent sends the list of (locator, SHA-256) the source's last clean
//! listing showed: one ledger entry per source, no content download. When it is sent:
//! - only after every spooled record was acknowledged (the server matches the listing against
//!   the newest record of each artifact, so the records must be in the ledger first);
//! - only when the poll's listing succeeded, and only for artifacts whose content is known as of
//!   that listing (a failed fetch is left out);
//! - the interval counts from the last acknowledged confirmation, kept in
//!   `cursors/<id>.confirmed.json` (written atomically after the acknowledgement); a source seen
//!   for the first time starts the clock instead of confirming: its records were just observed.
//!
//! A confirmation that fails is retried by the next cycle: it is rebuilt from the cursor, so
//! nothing is lost, and the server recognises a repeated one.
//!
//! **Heartbeat.** After each poll the agent reports how it went (`POST /v1/heartbeats`): the
//! server's `GET /v1/sources` turns these into `ok | failing | silent`. Error texts are redacted
//! ([`redact`]) before they leave the agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use aims_model::wire::{ConfirmationRequest, MAX_HEARTBEAT_ERROR};
use aims_model::{Confirmation, ListedArtifact, Listing, SourceRef, Timestamp};

/// A confirmation waiting for its source's records to be acknowledged.
#[derive(Clone, Debug)]
pub struct PendingConfirmation {
    /// The source.
    pub source: SourceRef,
    /// When the listing was taken.
    pub observed_at: Timestamp,
    /// What it showed.
    pub artifacts: Vec<ListedArtifact>,
    /// How many of them were unchanged (nothing to confirm when none was).
    pub unchanged: usize,
}

/// `cursors/<id>.confirmed.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    v: u32,
    last_confirmed_at: Timestamp,
}

/// Why the confirmation state could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Reading or writing the state file failed.
    #[error("{path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file is not ours.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The request cannot be built.
    #[error("cannot build the confirmation: {0}")]
    Build(String),
}

fn load(path: &Path) -> Result<Option<State>, ConfirmError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ConfirmError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfirmError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Records `at` as the source's last confirmation.
pub fn save(path: &Path, at: Timestamp) -> Result<(), ConfirmError> {
    let bytes = serde_json::to_vec(&State {
        v: 1,
        last_confirmed_at: at,
    })
    .map_err(|e| ConfirmError::Build(e.to_string()))?;
    aims_fsutil::write_atomic(path, &bytes).map_err(|source| ConfirmError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Whether the source behind `path` is due a confirmation at `now`. A source without state
/// starts its clock at `now` (and is not due).
pub fn due(path: &Path, now: Timestamp, interval: Duration) -> Result<bool, ConfirmError> {
    match load(path)? {
        None => {
            save(path, now)?;
            Ok(false)
        }
        Some(s) => {
            let elapsed = now.as_datetime() - s.last_confirmed_at.as_datetime();
            Ok(elapsed.to_std().is_ok_and(|e| e >= interval))
        }
    }
}

/// The request for `pending`, as agent `agent`.
pub fn request(
    agent: &str,
    pending: &PendingConfirmation,
) -> Result<ConfirmationRequest, ConfirmError> {
    let listing = Listing::new(pending.artifacts.clone());
    let confirmation =
        Confirmation::of(agent, pending.source.clone(), pending.observed_at, &listing)
            .map_err(|e| ConfirmError::Build(e.to_string()))?;
    Ok(ConfirmationRequest {
        confirmation,
        artifacts: listing.artifacts,
    })
}

/// An error text fit to leave the agent: credentials in URLs (`scheme://user:secret@host`) are
/// replaced by `***`, `token=`/`password=`/`secret=` query values are cut, control characters
/// become spaces, and the whole is cut to [`MAX_HEARTBEAT_ERROR`] bytes.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    for key in [
        "token=",
        "password=",
        "secret=",
        "access_token=",
        "X-Amz-Signature=",
    ] {
        let mut from = 0;
        while let Some(i) = out[from..].find(key) {
            let start = from + i + key.len();
            let end = out[start..]
                .find(|c: char| c == '&' || c.is_whitespace() || c == '"')
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    let mut clean: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_HEARTBEAT_ERROR {
        let mut cut = MAX_HEARTBEAT_ERROR - 3;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
        clean.push_str("...");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        let e = redact("clone https://bob:hunter2@git.example.com/r.git failed\nnext");
        assert_eq!(e, "clone https://***@git.example.com/r.git failed next");
        let e = redact("GET http://h/x?a=1&token=abc123&b=2 refused");
        assert_eq!(e, "GET http://h/x?a=1&token=***&b=2 refused");
        assert_eq!(redact("plain"), "plain");
        assert!(redact(&"é".repeat(2000)).len() <= MAX_HEARTBEAT_ERROR);
    }

    #[test]
    fn the_clock_starts_at_first_sight() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.confirmed.json");
        let t0 = Timestamp::parse_utc("2026-12-01T00:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        assert!(!due(&p, t0, day).unwrap());
        let t1 = Timestamp::parse_utc("2026-12-01T23:00:00Z").unwrap();
        assert!(!due(&p, t1, day).unwrap());
        let t2 = Timestamp::parse_utc("2026-12-02T00:00:00Z").unwrap();
        assert!(due(&p, t2, day).unwrap());
        save(&p, t2).unwrap();
        assert!(!due(&p, t2, day).unwrap());
        std::fs::write(&p, b"nonsense").unwrap();
        assert!(matches!(
            due(&p, t2, day),
            Err(ConfirmError::Corrupt { .. })
        ));
    }
}
