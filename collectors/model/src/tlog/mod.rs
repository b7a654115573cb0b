//! The transparency ledger of aims-evidence, as pure functions and types.
//!
//! RFC 6962/9162 Merkle trees over stored complete subtrees ([`merkle`]), C2SP signed notes with
//! Ed25519 signatures and timestamped `cosignature/v1` cosignatures ([`note`]), tlog checkpoints
//! ([`checkpoint`]), `c2sp.org/tlog-proof@v1` receipts ([`proof_file`]) and the auditor's
//! tlog-policy trust file ([`policy`]). Nothing here does IO; storage is reached through
//! [`merkle::HashReader`], and randomness only through `getrandom` when generating keys.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof_file;

pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, verify_checkpoint};
pub use merkle::{Hash, HashReader, MemoryHashStore, MerkleError, NodeId, ProofError};
pub use note::{
    CosignatureSigner, CosignatureVerifier, NoteError, Signer, VerifiedNote, Verifier, open_note,
    sign_note,
};
pub use policy::{PolicyError, TrustPolicy};
pub use proof_file::{ProofFileError, TlogProof};
