//! aims-verify: the auditor's offline verifier for aims-evidence export bundles.
//!
//! A bundle (`bundle.tar.gz`, layout in [`layout`]) holds the ledger entries, a checkpoint signed
//! by the log key and cosigned by the clock key, one `c2sp.org/tlog-proof@v1` receipt per
//! record, the OSCAL assessment results and the catalog. [`verify`] runs the checks of
//! integrity.md §6.9 in order against keys the auditor pinned out of band:
//!
//! 1. `manifest`: MANIFEST.json, every SHA256SUMS line, no file missing or extra;
//! 2. `signatures`: the log signature and the cosignature quorum of the pinned policy;
//! 3. `timestamp`: RFC 3161 (not produced yet: skipped);
//! 4. `ledger`: the root over every entry (full exports), entry format, record ids, `prev` links;
//! 5. `proofs`: every receipt against the checkpoint, then consistency with `--previous`;
//! 6. `blobs`: content hashes and sizes against the records (skipped when there are none);
//! 7. `oscal`: observations' record ids, indices and hashes against the ledger; catalog hash;
//! 8. `assessment`: re-running the assessment (skipped).
//!
//! The checks report in that order, but the work that depends on one file or one entry alone
//! (file hashes, leaf hashes, parsing and canonical form of each entry) is done first on every
//! core (`checks::prepare`, scoped threads, std only), and entries are checked for
//! canonical form by re-encoding them with a fast RFC 8785 encoder (`jcs`) that falls back to
//! `serde_json_canonicalizer` for anything it does not handle.
//!
//! This crate depends on aims-model only: it shares the tree, note and proof code with the
//! server, but nothing of its storage or HTTP surface.

pub mod bundle;
pub mod checks;
mod jcs;
pub mod layout;
mod par;
pub mod report;

pub use bundle::{Bundle, BundleError};
pub use checks::{Failure, Options, Trust, verify};
pub use layout::Manifest;
pub use report::{CheckResult, Report, Status};
