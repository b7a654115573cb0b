//! aims-ledger: everything the server that writes the ledger and the auditor's verifier that
//! reads it must agree on byte for byte, in one crate.
//!
//! - [`merkle`]: RFC 6962/9162 Merkle trees over stored complete subtrees, inclusion and
//!   consistency proofs, the one leaf hash.
//! - [`note`], [`checkpoint`], [`policy`], [`proof_file`]: C2SP signed notes with Ed25519
//!   signatures and timestamped `cosignature/v1` cosignatures, tlog checkpoints, the tlog-policy
//!   trust file and `c2sp.org/tlog-proof@v1` receipts.
//! - [`entry`]: the ledger entry (evidence or confirmation) each leaf holds.
//! - [`bundle`]: the export bundle's layout and manifest.
//!
//! Nothing here does IO; storage is reached through [`merkle::HashReader`], and randomness only
//! through `getrandom` when generating keys. Records, confirmations and wire types stay in
//! `aims-model`.

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof_file;

pub use checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, verify_checkpoint};
pub use entry::{ENTRY_VERSION, EntryError, EntryType, LedgerEntry};
pub use merkle::{Hash, HashReader, MemoryHashStore, MerkleError, NodeId, ProofError};
pub use note::{
    CosignatureSigner, CosignatureVerifier, NoteError, Signer, VerifiedNote, Verifier, open_note,
    sign_note,
};
pub use policy::{PolicyError, TrustPolicy};
pub use proof_file::{ProofFileError, TlogProof};
