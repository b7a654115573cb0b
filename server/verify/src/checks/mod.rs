//! The checks of integrity.md §6.9, in order. Each returns a one-line detail on success or a
//! [`Failure`] naming the file (and line and leaf index where there is one). Verification stops
//! at the first failure; later checks are reported as skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest, Sha256};

use aims_ledger::LedgerEntry;
use aims_ledger::checkpoint::{Checkpoint, verify_checkpoint};
use aims_ledger::merkle::{self, Hash};
use aims_ledger::note::{self, NoteError, Verifier};
use aims_ledger::policy::TrustPolicy;
use aims_ledger::proof_file::{ProofFileError, TlogProof};
use aims_model::{Confirmation, ContentHash, EvidenceRecord, Listing, Timestamp};

use crate::bundle::Bundle;
use crate::layout::{self, Manifest, Scope};
use crate::report::{CheckResult, Report, Status};
use crate::{jcs, par};

/// Where the verifier's keys come from.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The auditor's pinned policy (`--trust FILE`).
    Pinned(TrustPolicy),
    /// `trust/policy.txt` from inside the bundle (`--trust-bundled-keys`): proves only that the
    /// bundle is internally consistent, not who signed it.
    Bundled,
}

/// What to verify against.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keys and quorum.
    pub trust: Trust,
    /// A checkpoint note the auditor kept from before (`--previous FILE`): the bundle's log must
    /// extend it.
    pub previous: Option<String>,
}

/// A failed check: the file, where in it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Bundle path (`log/entries.jsonl`), or an input such as `--previous`.
    pub file: String,
    /// `line 18 (leaf 17)`, `leaf 17`, … when the failure has a position.
    pub at: Option<String>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{} {}: {}", self.file, at, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

fn fail(file: &str, reason: impl Into<String>) -> Failure {
    Failure {
        file: file.to_owned(),
        at: None,
        reason: reason.into(),
    }
}

fn fail_at(file: &str, at: impl Into<String>, reason: impl Into<String>) -> Failure {
    Failure {
        file: file.to_owned(),
        at: Some(at.into()),
        reason: reason.into(),
    }
}

/// `line N (leaf I)`: line numbers are 1-based as in editors and `sed -n Np`, leaf indices
/// 0-based as in the log.
fn line_leaf(line: usize, leaf: u64) -> String {
    format!("line {line} (leaf {leaf})")
}

type Step = Result<String, Failure>;

/// One exported entry.
struct Entry {
    /// Leaf index.
    index: u64,
    /// 1-based line in `log/entries.jsonl`.
    line: usize,
    /// The leaf hash of the stored line, computed once by the ledger check for the root, the receipts
    /// and the consistency proofs.
    leaf: Hash,
    /// Filled by the ledger check; the assessment check (the last) takes it.
    parsed: Option<Parsed>,
}

struct Parsed {
    /// The record id or confirmation id: the SHA-256 of the canonical JSON of the entry's
    /// `record` (or `confirmation`) object.
    record_id: ContentHash,
    /// The id the assessment knows an evidence record by (`EvidenceRecord::record_id`, the hash
    /// of the typed record's encoding). Known (equal to `record_id`) when the entry's bytes are
    /// the canonical encoding of the typed entry, as every entry the server writes is; `None`
    /// when the assessment must compute it.
    replay_id: Option<ContentHash>,
    /// The entry (boxed: it moves from the parallel pass to here to the replay).
    entry: Box<LedgerEntry>,
}

impl Parsed {
    /// Evidence entries' record.
    fn record(&self) -> Option<&EvidenceRecord> {
        self.entry.record.as_ref()
    }

    /// Confirmation entries' confirmation.
    fn confirmation(&self) -> Option<&Confirmation> {
        self.entry.confirmation.as_ref()
    }
}

struct Ctx<'a> {
    bundle: &'a Bundle,
    opts: &'a Options,
    manifest: Option<Manifest>,
    policy: Option<TrustPolicy>,
    log: Option<Verifier>,
    checkpoint: Option<Checkpoint>,
    note: String,
    entries: Vec<Entry>,
    /// Position in `entries` by leaf index (partial exports; a full export's entry `i` is leaf
    /// `i`: see [`Ctx::position`]).
    by_index: HashMap<u64, usize>,
    /// Per-file and per-line work done up front on every core.
    prepared: prepare::Prepared<'a>,
    /// The OSCAL assessment results, parsed (by the OSCAL check, for the assessment check).
    oscal: Option<Value>,
    report: Report,
}

/// Runs every check and returns the report. Never panics on hostile input; IO and usage errors
/// are the caller's (reading the archive and the trust file).
pub fn verify(bundle: &Bundle, opts: &Options) -> Report {
    let mut ctx = Ctx {
        bundle,
        opts,
        manifest: None,
        policy: None,
        log: None,
        checkpoint: None,
        note: String::new(),
        entries: Vec::new(),
        by_index: HashMap::new(),
        prepared: prepare::prepare(bundle),
        oscal: None,
        report: Report::default(),
    };
    if matches!(opts.trust, Trust::Bundled) {
        ctx.report.warnings.push(
            "--trust-bundled-keys: the keys come from trust/policy.txt INSIDE the bundle. This shows \
             only that the bundle is internally consistent, NOT who signed it; pin the server's \
             policy (aims-server keys show) and pass it with --trust."
                .to_owned(),
        );
    }
    type CheckFn<'a> = fn(&mut Ctx<'a>) -> Step;
    let steps: [(&'static str, CheckFn<'_>); 8] = [
        ("manifest", check_manifest),
        ("signatures", check_signatures),
        ("timestamp", check_timestamp),
        ("ledger", check_ledger),
        ("proofs", check_proofs),
        ("blobs", check_blobs),
        ("oscal", check_oscal),
        ("assessment", check_assessment),
    ];
    let mut failed = false;
    for (name, step) in steps {
        if failed {
            ctx.report.checks.push(CheckResult {
                name,
                status: Status::Skipped,
                detail: "not run: an earlier check failed".to_owned(),
            });
            continue;
        }
        let (status, detail) = match step(&mut ctx) {
            Ok(d) if d.starts_with(SKIPPED) => {
                (Status::Skipped, d[SKIPPED.len()..].trim_start().to_owned())
            }
            Ok(d) => (Status::Pass, d),
            Err(f) => {
                failed = true;
                (Status::Fail, f.to_string())
            }
        };
        ctx.report.checks.push(CheckResult {
            name,
            status,
            detail,
        });
    }
    ctx.report.verified = !failed;
    ctx.report
}

/// Drops `value` on a thread of its own: freeing every record of a large bundle (millions of
/// small allocations) takes as long as a check, and nothing waits for it. If no thread can be
/// started, it is dropped here.
fn drop_in_background<T: Send + 'static>(value: T) {
    // On failure `spawn` drops the closure, and with it the value, on this thread.
    let _ = std::thread::Builder::new()
        .name("aims-verify-free".to_owned())
        .spawn(move || drop(value));
}

/// Prefix of a detail that marks the check as skipped rather than passed.
const SKIPPED: &str = "\u{0}skipped:";

fn skipped(detail: impl fmt::Display) -> String {
    format!("{SKIPPED} {detail}")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn utf8<'a>(file: &str, data: &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(data).map_err(|_| fail(file, "not UTF-8 text"))
}

impl Ctx<'_> {
    fn file(&self, path: &str) -> Result<&[u8], Failure> {
        self.bundle
            .get(path)
            .ok_or_else(|| fail(path, "missing from the bundle"))
    }

    /// Where the entry of leaf `index` is in `entries`.
    fn position(&self, index: u64) -> Option<usize> {
        match self.manifest.as_ref().map(|m| m.scope) {
            Some(Scope::Full) => usize::try_from(index)
                .ok()
                .filter(|i| *i < self.entries.len()),
            _ => self.by_index.get(&index).copied(),
        }
    }

    /// SHA-256 of a file of the bundle, in hex (computed up front for every file).
    fn file_sha256(&self, path: &str, data: &[u8]) -> String {
        match self.prepared.digests.get(path) {
            Some(h) => hex::encode(h),
            None => sha256_hex(data),
        }
    }

    fn manifest(&self) -> Result<&Manifest, Failure> {
        self.manifest
            .as_ref()
            .ok_or_else(|| fail(layout::MANIFEST, "not read"))
    }

    fn checkpoint(&self) -> Result<&Checkpoint, Failure> {
        self.checkpoint
            .as_ref()
            .ok_or_else(|| fail(layout::CHECKPOINT, "not verified"))
    }

    fn log(&self) -> Result<&Verifier, Failure> {
        self.log
            .as_ref()
            .ok_or_else(|| fail(layout::CHECKPOINT, "no log key"))
    }
}

mod assessment;
mod blobs;
mod confirmations;
mod ledger;
mod manifest;
mod oscal;
mod prepare;
mod proofs;
mod signatures;
mod timestamp;

use assessment::*;
use blobs::*;
use confirmations::*;
use ledger::*;
use manifest::*;
use oscal::*;
use proofs::*;
use signatures::*;
use timestamp::*;
