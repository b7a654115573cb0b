//! The agent as a witness of the ledger (integrity.md §6.6).
//!
//! Every acknowledgement carries the server's newest signed checkpoint. The agent keeps the
//! newest one it has seen (`<spool_dir>/checkpoint`, replaced atomically) and, before accepting a
//! larger one, asks the server for a consistency proof between the two and verifies it. A server
//! that shrinks its tree, signs a different root for a size it signed before, or cannot prove
//! that the new tree extends the old one has rewritten history: that is reported as an error and
//! the remembered checkpoint is kept, so every later acknowledgement keeps failing until an
//! operator looks. With `server.trust_file` (the policy printed by `aims-server keys show`), the
//! checkpoint's log signature and clock cosignature are verified too.

use std::path::{Path, PathBuf};

use base64::Engine;

use aims_ledger::checkpoint::{Checkpoint, verify_checkpoint};
use aims_ledger::merkle::{self, Hash};
use aims_ledger::note::split_note;
use aims_ledger::policy::TrustPolicy;

/// Why a checkpoint was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Reading or writing the remembered checkpoint or the trust file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The trust file is not a valid policy.
    #[error("trust file {path}: {reason}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The checkpoint is not well-formed or its signatures do not verify.
    #[error("the server's checkpoint does not verify: {0}")]
    Invalid(String),
    /// The server's history contradicts a checkpoint it signed before.
    #[error("the server rewrote its ledger history: {0}")]
    Rewritten(String),
    /// The consistency proof could not be fetched.
    #[error("fetching a consistency proof failed: {0}")]
    Fetch(String),
}

/// Keeps and checks the newest checkpoint.
#[derive(Debug)]
pub struct Witness {
    path: PathBuf,
    policy: Option<TrustPolicy>,
}

/// Largest consistency-proof answer read.
const MAX_PROOF_BYTES: usize = 1024 * 1024;

fn parse(note: &str) -> Result<Checkpoint, WitnessError> {
    let (text, _) = split_note(note).map_err(|e| WitnessError::Invalid(e.to_string()))?;
    Checkpoint::parse_body(text).map_err(|e| WitnessError::Invalid(e.to_string()))
}

impl Witness {
    /// Opens the witness state in `state_dir`, with an optional pinned trust policy.
    pub fn open(state_dir: &Path, trust_file: Option<&Path>) -> Result<Self, WitnessError> {
        let policy = match trust_file {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| WitnessError::Io {
                    path: p.to_path_buf(),
                    source,
                })?;
                Some(TrustPolicy::parse(&text).map_err(|e| WitnessError::Policy {
                    path: p.to_path_buf(),
                    reason: e.to_string(),
                })?)
            }
        };
        Ok(Self {
            path: state_dir.join("checkpoint"),
            policy,
        })
    }

    /// The remembered checkpoint, if any.
    pub fn current(&self) -> Result<Option<Checkpoint>, WitnessError> {
        match std::fs::read_to_string(&self.path) {
            Ok(note) => parse(&note).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WitnessError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Checks `note` against the remembered checkpoint (fetching a consistency proof from
    /// `base_url` when the tree grew) and remembers it when it is consistent.
    pub async fn observe(
        &self,
        client: &reqwest::Client,
        base_url: &url::Url,
        token: &str,
        note: &str,
    ) -> Result<Checkpoint, WitnessError> {
        let new = match &self.policy {
            Some(policy) => {
                let cp = parse(note)?;
                let log = policy.log(&cp.origin).ok_or_else(|| {
                    WitnessError::Invalid(format!("origin {} is not in the trust file", cp.origin))
                })?;
                let clock = policy.witnesses.first().map(|w| &w.verifier);
                verify_checkpoint(note, log, clock)
                    .map_err(|e| WitnessError::Invalid(e.to_string()))?
                    .0
            }
            None => parse(note)?,
        };
        if let Some(old) = self.current()? {
            if old.origin != new.origin {
                return Err(WitnessError::Rewritten(format!(
                    "origin changed from {} to {}",
                    old.origin, new.origin
                )));
            }
            if new.size < old.size {
                return Err(WitnessError::Rewritten(format!(
                    "tree shrank from {} to {} entries",
                    old.size, new.size
                )));
            }
            if new.size == old.size && new.root != old.root {
                return Err(WitnessError::Rewritten(format!(
                    "a different root was signed at size {}",
                    new.size
                )));
            }
            if new.size > old.size && old.size > 0 {
                let proof = fetch_consistency(client, base_url, token, old.size, new.size).await?;
                merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root).map_err(|e| {
                    WitnessError::Rewritten(format!(
                        "tree of size {} does not extend the one of size {} the agent saw before: {e}",
                        new.size, old.size
                    ))
                })?;
            }
            if new.size == old.size {
                return Ok(new);
            }
        }
        // 0600, fsynced, renamed, directory fsynced.
        aims_fsutil::write_atomic(&self.path, note.as_bytes()).map_err(|source| {
            WitnessError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        Ok(new)
    }
}

async fn fetch_consistency(
    client: &reqwest::Client,
    base: &url::Url,
    token: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, WitnessError> {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/v1/log/proof/consistency",
        base.path().trim_end_matches('/')
    ));
    url.set_query(Some(&format!("from={from}&to={to}")));
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| WitnessError::Fetch(e.to_string()))?;
    if resp.status().is_redirection() {
        return Err(WitnessError::Fetch(crate::shipper::redirect_error(
            "GET /v1/log/proof/consistency",
            &resp,
        )));
    }
    if !resp.status().is_success() {
        return Err(WitnessError::Fetch(format!("HTTP {}", resp.status())));
    }
    // A proof is at most ~64 hashes: anything near this bound is not one.
    let text = crate::shipper::read_limited(resp, MAX_PROOF_BYTES)
        .await
        .map_err(WitnessError::Fetch)?;
    let body: aims_model::wire::ConsistencyProofResponse =
        serde_json::from_str(&text).map_err(|e| WitnessError::Fetch(e.to_string()))?;
    body.hashes
        .iter()
        .map(|h| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(h)
                .map_err(|e| WitnessError::Invalid(format!("proof hash: {e}")))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| WitnessError::Invalid("proof hash is not 32 bytes".into()))
        })
        .collect()
}
