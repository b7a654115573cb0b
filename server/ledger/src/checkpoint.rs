//! tlog checkpoints (c2sp.org/tlog-checkpoint v1.0.0): the signed statement "the log named
//! `origin` has `size` entries with root `root`".
//!
//! The body is exactly three lines: the origin, the decimal size (no leading zeros) and the
//! base64 root, each ending in a newline. This crate neither writes nor accepts extension lines:
//! they cannot be audited, and our log has none.
//!
//! Invariants: the log's key name equals the origin (checked when signing and verifying), the
//! checkpoint note is signed by the log key (type 0x01), and a time comes only from a separate
//! clock key's `cosignature/v1` (type 0x04), because a checkpoint has no time field.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;
use crate::note::{
    self, CosignatureSigner, CosignatureVerifier, NoteError, Signer, Verifier, open_note_cosigned,
    sign_note,
};

/// Why a checkpoint is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body is not `origin\nsize\nbase64(root)\n`.
    #[error("malformed checkpoint body: {0}")]
    Malformed(&'static str),
    /// The origin is not the log key's name.
    #[error("checkpoint origin {origin:?} does not match the log key name {key_name:?}")]
    OriginMismatch {
        /// Origin line of the checkpoint.
        origin: String,
        /// Name of the log key.
        key_name: String,
    },
    /// A clock key was required but did not cosign.
    #[error("checkpoint has no cosignature from the clock key {0}")]
    MissingCosignature(String),
    /// Signature or note format failure.
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A log state: origin, tree size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `aims.example.org/ledger`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// Merkle tree root over the first `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn to_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a note text of exactly three lines.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("body must end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root), None) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed(
                "expected exactly three lines (extension lines are not accepted)",
            ));
        };
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(CheckpointError::Malformed("empty or invalid origin"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size: parse_decimal(size).ok_or(CheckpointError::Malformed("invalid size"))?,
            root: parse_hash(root).ok_or(CheckpointError::Malformed("invalid root hash"))?,
        })
    }
}

/// A decimal u64 with no sign and no leading zeros (except "0").
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A canonical standard-base64 SHA-256 hash.
pub(crate) fn parse_hash(s: &str) -> Option<Hash> {
    let raw = STANDARD.decode(s).ok()?;
    let hash: Hash = raw.as_slice().try_into().ok()?;
    // Reject non-canonical encodings (stray bits in the final character).
    (STANDARD.encode(hash) == s).then_some(hash)
}

/// A checkpoint with its signed note (text and signature lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The full signed note.
    pub note: String,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with the log key, whose name must equal the origin.
    pub fn sign(checkpoint: Checkpoint, log: &Signer) -> Result<Self, CheckpointError> {
        if checkpoint.origin != log.name() {
            return Err(CheckpointError::OriginMismatch {
                origin: checkpoint.origin,
                key_name: log.name().to_owned(),
            });
        }
        let note = sign_note(&checkpoint.to_body(), &[log])?;
        Ok(Self { checkpoint, note })
    }

    /// Adds a timestamped cosignature (`time` in POSIX seconds) from the clock key.
    pub fn cosign(&mut self, clock: &CosignatureSigner, time: u64) -> Result<(), CheckpointError> {
        self.note = note::cosign_note(&self.note, clock, time)?;
        Ok(())
    }

    /// The exact signed bytes (the body), for `checkpoint.body` in a bundle.
    pub fn body(&self) -> String {
        self.checkpoint.to_body()
    }
}

/// Verifies a checkpoint note: signed by `log` (whose name must be the origin), body well formed,
/// and, when `clock` is given, cosigned by it. Returns the checkpoint and the clock's time.
pub fn verify_checkpoint(
    note: &str,
    log: &Verifier,
    clock: Option<&CosignatureVerifier>,
) -> Result<(Checkpoint, Option<u64>), CheckpointError> {
    let cosigners: &[CosignatureVerifier] = match clock {
        Some(c) => std::slice::from_ref(c),
        None => &[],
    };
    let opened = open_note_cosigned(note, std::slice::from_ref(log), cosigners)?;
    let checkpoint = Checkpoint::parse_body(&opened.text)?;
    if checkpoint.origin != log.name() {
        return Err(CheckpointError::OriginMismatch {
            origin: checkpoint.origin,
            key_name: log.name().to_owned(),
        });
    }
    let time = match clock {
        None => None,
        Some(c) => Some(
            opened
                .cosignatures
                .iter()
                .find(|x| x.name == c.name())
                .map(|x| x.time)
                .ok_or_else(|| CheckpointError::MissingCosignature(c.name().to_owned()))?,
        ),
    };
    Ok((checkpoint, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{empty_root, leaf_hash};

    const ORIGIN: &str = "aims.example.org/ledger";

    fn keys() -> (Signer, CosignatureSigner) {
        (
            Signer::from_secret_bytes(ORIGIN, [1u8; 32]).unwrap(),
            CosignatureSigner::from_secret_bytes("aims.example.org/clock", [2u8; 32]).unwrap(),
        )
    }

    fn cp(size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: leaf_hash(&size.to_be_bytes()),
        }
    }

    #[test]
    fn body_round_trip() {
        let c = Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: empty_root(),
        };
        let body = c.to_body();
        assert_eq!(
            body,
            "aims.example.org/ledger\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        );
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), c);
        let c = cp(20_852_163);
        assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);
    }

    #[test]
    fn malformed_bodies() {
        let root = STANDARD.encode([0u8; 32]);
        for bad in [
            format!("o\n1\n{root}"),
            format!("o\n01\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{root}\next\n"),
            format!("\n1\n{root}\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{}\n", root.replace("A=", "B=")),
            "o\n1\n".to_owned(),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sign_and_verify_with_clock() {
        let (log, clock) = keys();
        let mut sc = SignedCheckpoint::sign(cp(5), &log).unwrap();
        let (c, t) = verify_checkpoint(&sc.note, &log.verifier(), None).unwrap();
        assert_eq!((c, t), (cp(5), None));
        assert!(matches!(
            verify_checkpoint(&sc.note, &log.verifier(), Some(&clock.verifier())),
            Err(CheckpointError::MissingCosignature(_))
        ));
        sc.cosign(&clock, 1_800_000_000).unwrap();
        let (c, t) = verify_checkpoint(&sc.note, &log.verifier(), Some(&clock.verifier())).unwrap();
        assert_eq!((c, t), (cp(5), Some(1_800_000_000)));
        assert!(sc.note.starts_with(&sc.body()));
        // Wrong log key.
        let other = Signer::from_secret_bytes(ORIGIN, [3u8; 32]).unwrap();
        assert!(verify_checkpoint(&sc.note, &other.verifier(), None).is_err());
        // A clock with the same name but another key: its signature is unknown, so missing.
        let other_clock =
            CosignatureSigner::from_secret_bytes("aims.example.org/clock", [4u8; 32]).unwrap();
        assert!(matches!(
            verify_checkpoint(&sc.note, &log.verifier(), Some(&other_clock.verifier())),
            Err(CheckpointError::MissingCosignature(_))
        ));
    }

    #[test]
    fn origin_must_match_key_name() {
        let other = Signer::from_secret_bytes("other.example/log", [1u8; 32]).unwrap();
        assert!(matches!(
            SignedCheckpoint::sign(cp(1), &other),
            Err(CheckpointError::OriginMismatch { .. })
        ));
        // A note by a key named differently from the origin is refused on verification too.
        let note = sign_note(&cp(1).to_body(), &[&other]).unwrap();
        assert!(matches!(
            verify_checkpoint(&note, &other.verifier(), None),
            Err(CheckpointError::OriginMismatch { .. })
        ));
    }
}
