//! The export bundle's layout (integrity.md §6.8): file names and the manifest, defined once for
//! the server that writes bundles and `aims-verify` that reads them.

use serde::{Deserialize, Serialize};

/// `format` of the manifest this verifier understands.
pub const FORMAT: &str = "aims-evidence-bundle/1";

/// The manifest.
pub const MANIFEST: &str = "MANIFEST.json";
/// `sha256sum` lines over every other file.
pub const SHA256SUMS: &str = "SHA256SUMS";
/// The full signed note.
pub const CHECKPOINT: &str = "checkpoint";
/// The exact signed text of the note.
pub const CHECKPOINT_BODY: &str = "checkpoint.body";
/// The log's 64-byte Ed25519 signature over the body (key ID stripped).
pub const CHECKPOINT_SIG: &str = "checkpoint.sig";
/// The `cosignature/v1` message the clock key signed.
pub const COSIG_MSG: &str = "checkpoint.cosig.msg";
/// The clock's 64-byte Ed25519 signature over the message.
pub const COSIG_SIG: &str = "checkpoint.cosig.sig";
/// An RFC 3161 token over the body (not produced yet).
pub const CHECKPOINT_TSR: &str = "checkpoint.tsr";
/// One ledger entry per line, exactly the bytes of the leaf.
pub const ENTRIES: &str = "log/entries.jsonl";
/// Partial exports: the leaf index of each line of [`ENTRIES`].
pub const INDEX: &str = "log/index.txt";
/// The trust policy shipped for convenience (never trusted unless asked).
pub const BUNDLED_POLICY: &str = "trust/policy.txt";
/// Receipts: `proofs/<record_id>.tlog-proof`.
pub const PROOFS_DIR: &str = "proofs/";
/// Suffix of receipt files.
pub const PROOF_SUFFIX: &str = ".tlog-proof";
/// Consistency proofs: `consistency/<m>-<n>.txt`, one base64 hash per line.
pub const CONSISTENCY_DIR: &str = "consistency/";
/// Content-addressed artifacts: `blobs/sha256/<hex>`.
pub const BLOBS_DIR: &str = "blobs/sha256/";
/// Confirmation listings by digest: `confirmations/<sha256>.json`.
pub const LISTINGS_DIR: &str = "confirmations/";
/// OSCAL assessment results.
pub const OSCAL_AR: &str = "oscal/assessment-results.json";

/// Whether the bundle holds the whole log or one system's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every leaf `0..tree_size`: the root is recomputed.
    Full,
    /// A subset (`system` filter): each entry is anchored by its receipt.
    Partial,
}

impl Scope {
    /// The manifest word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Partial => "partial",
        }
    }
}

/// The catalog the assessment used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestCatalog {
    /// Catalog version.
    pub version: String,
    /// Framework identifier.
    pub framework: String,
    /// SHA-256 over the data files in `files` order, each preceded by `name\nlength\n`.
    pub sha256: String,
    /// The data files in hash order (`catalog/controls.yaml`, …).
    pub files: Vec<String>,
}

/// `period` of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPeriod {
    /// Start (inclusive), RFC 3339.
    pub from: String,
    /// End (exclusive), RFC 3339.
    pub to: String,
}

/// The audit-period report of a period export.
pub const PERIOD_REPORT: &str = "report/period.json";

/// What the bundle holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestCounts {
    /// Lines of `log/entries.jsonl`.
    pub entries: u64,
    /// Receipts under `proofs/`.
    pub proofs: u64,
    /// Files under `blobs/sha256/`.
    pub blobs: u64,
    /// Observations in the OSCAL assessment results.
    pub observations: u64,
    /// Confirmation entries among the entries.
    #[serde(default)]
    pub confirmations: u64,
    /// Listing files under `confirmations/`.
    #[serde(default)]
    pub listings: u64,
}

/// `MANIFEST.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The program that wrote the bundle.
    pub generator: String,
    /// The log's origin (first checkpoint line).
    pub origin: String,
    /// Tree size of the anchoring checkpoint.
    pub tree_size: u64,
    /// Its root, base64 as in the checkpoint.
    pub root: String,
    /// The clock's cosigned time, RFC 3339.
    pub checkpoint_time: String,
    /// The same, POSIX seconds.
    pub checkpoint_unix: u64,
    /// The catalog.
    pub catalog: ManifestCatalog,
    /// `full` or `partial`.
    pub scope: Scope,
    /// The system filter of a partial export.
    pub system: Option<String>,
    /// Old tree size of the included consistency proof, if asked for.
    pub since: Option<u64>,
    /// The audit period of `report/period.json`, when the export was asked for one.
    #[serde(default)]
    pub period: Option<ManifestPeriod>,
    /// Counts.
    pub counts: ManifestCounts,
    /// Every file except `MANIFEST.json` and `SHA256SUMS`, sorted.
    pub files: Vec<String>,
}
