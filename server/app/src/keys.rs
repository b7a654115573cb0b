//! The ledger's keys: an Ed25519 log key whose name is the origin (it signs checkpoints as C2SP
//! signed notes) and a separate clock key that adds a timestamped `cosignature/v1`, the
//! checkable "existed no later than T".
//!
//! Keys are 32-byte secrets stored as hex in `log.key` and `clock.key` (mode 0600, created on
//! first start) or given as `AIMS_SERVER_LOG_KEY` / `AIMS_SERVER_CLOCK_KEY` (hex). The key
//! directory also remembers the newest signed tree head (`last-checkpoint`), so a server whose
//! database was rolled back or swapped refuses to sign a checkpoint that contradicts one it
//! already signed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aims_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use aims_ledger::merkle::Hash;
use aims_ledger::note::{CosignatureSigner, Signer};
use aims_store::CheckpointSigner;

/// A key problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file or variable does not hold 64 hex characters.
    #[error("key {what} is not 32 bytes of hex")]
    Malformed {
        /// Which key.
        what: String,
    },
    /// The key could not be built (bad origin name, no randomness).
    #[error("key {what}: {reason}")]
    Note {
        /// Which key.
        what: String,
        /// Why.
        reason: String,
    },
    /// The database contradicts a checkpoint this log already signed.
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
}

/// The log and clock keys plus the newest signed tree head.
pub struct LogKeys {
    origin: String,
    log: Signer,
    clock: CosignatureSigner,
    dir: PathBuf,
    last: Mutex<Option<(u64, Hash)>>,
    form_key: [u8; 32],
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKeys")
            .field("origin", &self.origin)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_secret(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed {
        what: what.to_owned(),
    })?;
    bytes.try_into().map_err(|_| KeyError::Malformed {
        what: what.to_owned(),
    })
}

/// The label [`LogKeys::form_key`] is derived under; another purpose would use another label.
const FORM_KEY_LABEL: &[u8] = b"aims-evidence dashboard form key v1";

/// A key for another purpose derived from `secret` (HMAC-SHA256 over a label, as HKDF-Expand
/// does for one block): the derived key reveals nothing about `secret`, and keys under different
/// labels are independent.
fn derive_key(secret: &[u8; 32], label: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[label])
}

/// HMAC-SHA256 under a 32-byte key over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    type HmacSha256 = hmac::Hmac<sha2::Sha256>;
    // A key shorter than the 64-byte block is zero-padded (RFC 2104), which makes building
    // the MAC infallible.
    let mut k = hmac::digest::Key::<HmacSha256>::default();
    k[..key.len()].copy_from_slice(key);
    let mut m = HmacSha256::new(&k);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Reads a secret from `env`, else from `path`, else creates it there with mode 0600.
fn load_secret(path: &Path, env: &str) -> Result<[u8; 32], KeyError> {
    if let Ok(v) = std::env::var(env) {
        return parse_secret(&v, env);
    }
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_secret(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Note {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    tracing::info!(path = %path.display(), "generated a new key");
    Ok(secret)
}

impl LogKeys {
    /// Loads the keys from `dir` (creating it and the keys on first start).
    pub fn load_or_create(dir: &Path, origin: &str) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let note_err = |what: &str| {
            let what = what.to_owned();
            move |e: aims_ledger::note::NoteError| KeyError::Note {
                what,
                reason: e.to_string(),
            }
        };
        let log_secret = load_secret(&dir.join("log.key"), "AIMS_SERVER_LOG_KEY")?;
        let form_key = derive_key(&log_secret, FORM_KEY_LABEL);
        let log = Signer::from_secret_bytes(origin, log_secret).map_err(note_err("log"))?;
        let clock_name = format!("{origin}/clock");
        let clock = CosignatureSigner::from_secret_bytes(
            &clock_name,
            load_secret(&dir.join("clock.key"), "AIMS_SERVER_CLOCK_KEY")?,
        )
        .map_err(note_err("clock"))?;
        let last = match std::fs::read_to_string(dir.join("last-checkpoint")) {
            Ok(text) => Checkpoint::parse_body(&text).ok().map(|c| (c.size, c.root)),
            Err(_) => None,
        };
        Ok(Self {
            origin: origin.to_owned(),
            log,
            clock,
            dir: dir.to_path_buf(),
            last: Mutex::new(last),
            form_key,
        })
    }

    /// The key of the dashboard's form tokens (`crate::csrf`): derived from the log key, so every
    /// replica of one ledger has the same one and nothing new needs keeping secret.
    pub fn form_key(&self) -> &[u8; 32] {
        &self.form_key
    }

    /// The log's origin (and log key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log key's verifier key (`name+id+base64`).
    pub fn log_vkey(&self) -> String {
        self.log.vkey()
    }

    /// The clock key's verifier key.
    pub fn clock_vkey(&self) -> String {
        self.clock.vkey()
    }

    /// PEM of the log public key (for `openssl pkeyutl -verify`).
    pub fn log_pem(&self) -> String {
        self.log.public_key_pem()
    }

    /// PEM of the clock public key.
    pub fn clock_pem(&self) -> String {
        self.clock.public_key_pem()
    }

    /// The log and clock signers (for exports that write raw signature files).
    pub fn signers(&self) -> (&Signer, &CosignatureSigner) {
        (&self.log, &self.clock)
    }

    /// The trust policy an auditor pins: C2SP tlog-policy lines.
    pub fn trust_policy(&self) -> String {
        format!(
            "# aims-evidence trust policy for the ledger {origin}\n\
             # Pin this file out of band; aims-verify --trust FILE reads it.\n\
             log {log}\nwitness clock {clock}\nquorum clock\n",
            origin = self.origin,
            log = self.log.vkey(),
            clock = self.clock.vkey()
        )
    }

    /// The newest tree head this key directory remembers signing.
    pub fn last_signed(&self) -> Option<(u64, Hash)> {
        self.last.lock().ok().and_then(|g| *g)
    }

    /// Signs and cosigns a checkpoint, refusing to contradict the newest one signed before.
    /// Consistency of a larger tree with the remembered one is checked by the caller at start-up
    /// (it has the proofs); here a smaller size or a different root at the same size is refused.
    pub fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, KeyError> {
        let last = self
            .last
            .lock()
            .map_err(|_| KeyError::Inconsistent("signer lock poisoned".into()))?;
        if let Some((ls, lr)) = *last {
            if size < ls {
                return Err(KeyError::Inconsistent(format!(
                    "tree size {size} is smaller than the signed {ls}"
                )));
            }
            if size == ls && *root != lr {
                return Err(KeyError::Inconsistent(format!(
                    "a different root was already signed at size {size}"
                )));
            }
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
        };
        let note_err = |e: aims_ledger::checkpoint::CheckpointError| KeyError::Note {
            what: "checkpoint".into(),
            reason: e.to_string(),
        };
        let mut signed = SignedCheckpoint::sign(cp, &self.log).map_err(note_err)?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        signed.cosign(&self.clock, now).map_err(note_err)?;
        drop(last);
        Ok(signed.note)
    }

    /// Remembers a signed head once the database has committed it. Called after the commit, never
    /// from inside the transaction: a crash between signing and committing must not leave the key
    /// directory remembering a head the database does not have. Monotonic: an older head reported
    /// late (two requests finishing out of order) does not move it back.
    pub fn remember(&self, size: u64, root: &Hash) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.is_some_and(|(ls, _)| ls >= size) {
            return;
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
        };
        let path = self.dir.join("last-checkpoint");
        if aims_fsutil::write_atomic(&path, cp.to_body().as_bytes()).is_err() {
            tracing::warn!(path = %path.display(), "could not record the newest signed checkpoint");
        }
        *last = Some((size, *root));
    }
}

impl CheckpointSigner for LogKeys {
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String> {
        self.sign_checkpoint(size, root).map_err(|e| e.to_string())
    }
}
