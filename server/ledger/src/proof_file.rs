//! `.tlog-proof` receipts (c2sp.org/tlog-proof, first line `c2sp.org/tlog-proof@v1`): everything
//! needed to check offline that one entry is in the log.
//!
//! Layout, one item per newline-terminated line: the header, an optional `extra <base64>` line
//! (opaque and unauthenticated), `index <n>` (decimal, no leading zeros), zero or more base64
//! inclusion-proof hashes (leaf sibling first), an empty line, then the signed checkpoint note
//! verbatim.
//!
//! Verification follows the spec's order: the leaf hash of the entry bytes, the checkpoint's
//! origin and log signature (and the clock cosignature when one is required), then inclusion of
//! the leaf at `index` under the checkpoint root. The format is untagged upstream, so the header
//! line is pinned here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{
    Checkpoint, CheckpointError, parse_decimal, parse_hash, verify_checkpoint,
};
use crate::merkle::{Hash, ProofError, leaf_hash, verify_inclusion};
use crate::note::{CosignatureVerifier, Verifier};

/// First line of every proof file.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// An inclusion proof for a tree of at most 2^64 − 1 leaves never has more hashes than this.
const MAX_PROOF_HASHES: usize = 64;

/// Why a proof file is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    /// The text does not follow the tlog-proof layout.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The checkpoint failed (signature, origin, body or cosignature).
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The entry is not included at `index` under the checkpoint.
    #[error("inclusion: {0}")]
    Inclusion(#[from] ProofError),
}

/// A parsed `.tlog-proof` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry.
    pub index: u64,
    /// Inclusion proof, leaf sibling first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint_note: String,
}

impl TlogProof {
    /// The file text.
    pub fn encode(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint_note);
        out
    }

    /// Parses the file text. The checkpoint note is kept verbatim and checked by [`Self::verify`].
    pub fn parse(text: &str) -> Result<Self, ProofFileError> {
        let mut rest = text;
        let mut next_line = || -> Result<&str, ProofFileError> {
            let (line, tail) = rest
                .split_once('\n')
                .ok_or(ProofFileError::Malformed("truncated before the checkpoint"))?;
            rest = tail;
            Ok(line)
        };
        if next_line()? != TLOG_PROOF_HEADER {
            return Err(ProofFileError::Malformed(
                "first line must be c2sp.org/tlog-proof@v1",
            ));
        }
        let mut line = next_line()?;
        let extra = match line.strip_prefix("extra ") {
            Some(b64) => {
                let data = STANDARD
                    .decode(b64)
                    .map_err(|_| ProofFileError::Malformed("extra is not base64"))?;
                line = next_line()?;
                Some(data)
            }
            None => None,
        };
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(ProofFileError::Malformed("expected `index <n>`"))?;
        let mut hashes = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(ProofFileError::Malformed("too many proof hashes"));
            }
            hashes.push(parse_hash(line).ok_or(ProofFileError::Malformed("invalid proof hash"))?);
        }
        if rest.is_empty() {
            return Err(ProofFileError::Malformed("missing checkpoint"));
        }
        Ok(Self {
            extra,
            index,
            hashes,
            checkpoint_note: rest.to_owned(),
        })
    }

    /// Verifies that `entry` (the exact leaf bytes) is at `index` in the log `log` signed.
    /// Returns the checkpoint it was proved against.
    pub fn verify(&self, entry: &[u8], log: &Verifier) -> Result<Checkpoint, ProofFileError> {
        self.verify_cosigned(entry, log, None).map(|(c, _)| c)
    }

    /// As [`Self::verify`], and when `clock` is given also requires its cosignature; returns the
    /// checkpoint and the cosigned time.
    pub fn verify_cosigned(
        &self,
        entry: &[u8],
        log: &Verifier,
        clock: Option<&CosignatureVerifier>,
    ) -> Result<(Checkpoint, Option<u64>), ProofFileError> {
        let leaf = leaf_hash(entry);
        let (checkpoint, time) = verify_checkpoint(&self.checkpoint_note, log, clock)?;
        verify_inclusion(
            &leaf,
            self.index,
            checkpoint.size,
            &self.hashes,
            &checkpoint.root,
        )?;
        Ok((checkpoint, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SignedCheckpoint;
    use crate::merkle::{MemoryHashStore, inclusion_proof};
    use crate::note::{CosignatureSigner, Signer};

    const ORIGIN: &str = "aims.example.org/ledger";

    struct Fixture {
        log: Signer,
        clock: CosignatureSigner,
        entries: Vec<Vec<u8>>,
        proofs: Vec<TlogProof>,
    }

    fn fixture() -> Fixture {
        let log = Signer::from_secret_bytes(ORIGIN, [5u8; 32]).unwrap();
        let clock =
            CosignatureSigner::from_secret_bytes("aims.example.org/clock", [6u8; 32]).unwrap();
        let entries: Vec<Vec<u8>> = (0..13)
            .map(|i| format!("{{\"v\":1,\"i\":{i}}}").into_bytes())
            .collect();
        let mut store = MemoryHashStore::new();
        for e in &entries {
            store.append(leaf_hash(e)).unwrap();
        }
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: store.size(),
            root: store.root().unwrap(),
        };
        let mut sc = SignedCheckpoint::sign(cp, &log).unwrap();
        sc.cosign(&clock, 1_800_000_000).unwrap();
        let proofs = (0..entries.len() as u64)
            .map(|i| TlogProof {
                extra: (i % 2 == 0).then(|| vec![i as u8, 0xff]),
                index: i,
                hashes: inclusion_proof(i, store.size(), &store).unwrap(),
                checkpoint_note: sc.note.clone(),
            })
            .collect();
        Fixture {
            log,
            clock,
            entries,
            proofs,
        }
    }

    #[test]
    fn encode_parse_verify() {
        let f = fixture();
        for (p, e) in f.proofs.iter().zip(&f.entries) {
            let text = p.encode();
            assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"));
            let parsed = TlogProof::parse(&text).unwrap();
            assert_eq!(&parsed, p);
            let cp = parsed.verify(e, &f.log.verifier()).unwrap();
            assert_eq!(cp.size, 13);
            let (_, t) = parsed
                .verify_cosigned(e, &f.log.verifier(), Some(&f.clock.verifier()))
                .unwrap();
            assert_eq!(t, Some(1_800_000_000));
        }
    }

    #[test]
    fn layout_is_exact() {
        let f = fixture();
        let p = &f.proofs[0];
        let text = p.encode();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(TLOG_PROOF_HEADER));
        assert_eq!(lines.next(), Some("extra AP8="));
        assert_eq!(lines.next(), Some("index 0"));
        assert_eq!(
            text.split("\n\n").nth(1).unwrap(),
            &p.checkpoint_note[..p.checkpoint_note.find("\n\n").unwrap()]
        );
        assert!(!f.proofs[1].encode().contains("extra"));
    }

    #[test]
    fn wrong_entry_index_or_key_fails() {
        let f = fixture();
        let p = &f.proofs[3];
        assert!(matches!(
            p.verify(&f.entries[4], &f.log.verifier()),
            Err(ProofFileError::Inclusion(_))
        ));
        let mut q = p.clone();
        q.index = 2;
        assert!(q.verify(&f.entries[3], &f.log.verifier()).is_err());
        let mut q = p.clone();
        q.hashes[0][0] ^= 1;
        assert!(q.verify(&f.entries[3], &f.log.verifier()).is_err());
        let mut q = p.clone();
        q.hashes.pop();
        assert!(q.verify(&f.entries[3], &f.log.verifier()).is_err());
        let other = Signer::from_secret_bytes(ORIGIN, [9u8; 32]).unwrap();
        assert!(matches!(
            p.verify(&f.entries[3], &other.verifier()),
            Err(ProofFileError::Checkpoint(_))
        ));
        // A tampered checkpoint size breaks the log signature.
        let mut q = p.clone();
        q.checkpoint_note = q.checkpoint_note.replacen("\n13\n", "\n14\n", 1);
        assert!(matches!(
            q.verify(&f.entries[3], &f.log.verifier()),
            Err(ProofFileError::Checkpoint(_))
        ));
    }

    #[test]
    fn malformed_files() {
        let f = fixture();
        let good = f.proofs[1].encode();
        for bad in [
            good.replacen("tlog-proof@v1", "tlog-proof@v2", 1),
            good.replacen("index 1", "index 01", 1),
            good.replacen("index 1", "idx 1", 1),
            good.replacen("\n\n", "\n", 1),
            format!("{TLOG_PROOF_HEADER}\nindex 1\n"),
            format!(
                "{TLOG_PROOF_HEADER}\nindex 1\nAAAA\n\n{}",
                f.proofs[1].checkpoint_note
            ),
            format!(
                "{TLOG_PROOF_HEADER}\nextra !!\nindex 1\n\n{}",
                f.proofs[1].checkpoint_note
            ),
            format!("{TLOG_PROOF_HEADER}\nindex 1\n\n"),
        ] {
            let parsed = TlogProof::parse(&bad);
            let verified = parsed
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|p| p.verify(&f.entries[1], &f.log.verifier()));
            assert!(verified.is_err(), "{bad:?}");
        }
    }
}
