//! The checks of integrity.md §6.9, in order. Each returns a one-line detail on success or a
//! [`Failure`] naming the file (and line and leaf index where there is one). Verification stops
//! at the first failure; later checks are reported as skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest, Sha256};

use aims_model::tlog::checkpoint::{Checkpoint, verify_checkpoint};
use aims_model::tlog::merkle::{self, Hash};
use aims_model::tlog::note::{self, NoteError, Verifier};
use aims_model::tlog::policy::TrustPolicy;
use aims_model::tlog::proof_file::{ProofFileError, TlogProof};
use aims_model::{Confirmation, EvidenceRecord, LedgerEntry, Listing, Timestamp};

use crate::bundle::Bundle;
use crate::layout::{self, Manifest, Scope};
use crate::report::{CheckResult, Report, Status};

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
struct Entry<'a> {
    /// Leaf index.
    index: u64,
    /// 1-based line in `log/entries.jsonl`.
    line: usize,
    /// The stored bytes (what the leaf hashes).
    bytes: &'a [u8],
    /// Filled by the ledger check.
    parsed: Option<Parsed>,
}

struct Parsed {
    /// The record id or confirmation id.
    record_id: String,
    /// Evidence entries.
    record: Option<EvidenceRecord>,
    /// Confirmation entries.
    confirmation: Option<Confirmation>,
}

struct Ctx<'a> {
    bundle: &'a Bundle,
    opts: &'a Options,
    manifest: Option<Manifest>,
    policy: Option<TrustPolicy>,
    log: Option<Verifier>,
    checkpoint: Option<Checkpoint>,
    note: String,
    entries: Vec<Entry<'a>>,
    by_index: HashMap<u64, usize>,
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

// ---- 1. manifest and file hashes -------------------------------------------------------------

fn check_manifest(ctx: &mut Ctx<'_>) -> Step {
    let raw = ctx.file(layout::MANIFEST)?;
    let manifest: Manifest = serde_json::from_slice(raw)
        .map_err(|e| fail(layout::MANIFEST, format!("not a valid manifest: {e}")))?;
    if manifest.format != layout::FORMAT {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "format {:?} is not {:?} (a newer aims-verify may read it)",
                manifest.format,
                layout::FORMAT
            ),
        ));
    }
    if (manifest.scope == Scope::Partial) != manifest.system.is_some() {
        return Err(fail(
            layout::MANIFEST,
            "scope and system disagree (a partial export names its system filter)",
        ));
    }
    let sums = utf8(layout::SHA256SUMS, ctx.file(layout::SHA256SUMS)?)?;
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for (i, line) in sums.lines().enumerate() {
        let at = format!("line {}", i + 1);
        let (hash, rest) = line
            .split_once(' ')
            .ok_or_else(|| fail_at(layout::SHA256SUMS, &at, "expected `<sha256>  <path>`"))?;
        let path = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(|| fail_at(layout::SHA256SUMS, &at, "expected `<sha256>  <path>`"))?;
        if !is_hex64(hash) {
            return Err(fail_at(
                layout::SHA256SUMS,
                &at,
                "hash is not 64 lowercase hex digits",
            ));
        }
        if path == layout::SHA256SUMS || !listed.insert(path) {
            return Err(fail_at(
                layout::SHA256SUMS,
                &at,
                format!("{path} listed twice or lists itself"),
            ));
        }
        let data = ctx
            .bundle
            .get(path)
            .ok_or_else(|| fail(path, "listed in SHA256SUMS but missing from the bundle"))?;
        if sha256_hex(data) != hash {
            return Err(fail(path, "SHA-256 does not match SHA256SUMS"));
        }
    }
    for path in ctx.bundle.paths() {
        if path != layout::SHA256SUMS && !listed.contains(path) {
            return Err(fail(path, "in the bundle but not listed in SHA256SUMS"));
        }
    }
    let expected: BTreeSet<&str> = ctx
        .bundle
        .paths()
        .filter(|p| *p != layout::MANIFEST && *p != layout::SHA256SUMS)
        .collect();
    let in_manifest: BTreeSet<&str> = manifest.files.iter().map(String::as_str).collect();
    if in_manifest.len() != manifest.files.len() {
        return Err(fail(layout::MANIFEST, "files lists a path twice"));
    }
    if let Some(p) = expected.difference(&in_manifest).next() {
        return Err(fail(p, "in the bundle but not in MANIFEST.json files"));
    }
    if let Some(p) = in_manifest.difference(&expected).next() {
        return Err(fail(
            p,
            "in MANIFEST.json files but missing from the bundle",
        ));
    }
    let detail = format!(
        "{} files match SHA256SUMS and MANIFEST.json ({} export{})",
        listed.len(),
        manifest.scope.as_str(),
        manifest
            .system
            .as_deref()
            .map(|s| format!(" of system {s}"))
            .unwrap_or_default()
    );
    ctx.report.scope = Some(manifest.scope.as_str().to_owned());
    ctx.manifest = Some(manifest);
    Ok(detail)
}

// ---- 2. signatures and quorum ------------------------------------------------------------------

fn check_signatures(ctx: &mut Ctx<'_>) -> Step {
    let policy = match &ctx.opts.trust {
        Trust::Pinned(p) => p.clone(),
        Trust::Bundled => {
            let text = utf8(layout::BUNDLED_POLICY, ctx.file(layout::BUNDLED_POLICY)?)?;
            TrustPolicy::parse(text)
                .map_err(|e| fail(layout::BUNDLED_POLICY, format!("not a trust policy: {e}")))?
        }
    };
    let note_text = utf8(layout::CHECKPOINT, ctx.file(layout::CHECKPOINT)?)?.to_owned();
    let (text, sigs) = note::split_note(&note_text)
        .map_err(|e| fail(layout::CHECKPOINT, format!("not a signed note: {e}")))?;
    let body = Checkpoint::parse_body(text)
        .map_err(|e| fail(layout::CHECKPOINT, format!("not a checkpoint: {e}")))?;
    ctx.report.origin = Some(body.origin.clone());
    ctx.report.tree_size = Some(body.size);
    let log = policy.log(&body.origin).cloned().ok_or_else(|| {
        fail(
            layout::CHECKPOINT,
            format!(
                "origin {:?} is not a log of the trust policy (the policy pins {})",
                body.origin,
                policy
                    .logs
                    .iter()
                    .map(|l| l.verifier.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let witnesses: Vec<_> = policy
        .witnesses
        .iter()
        .map(|w| w.verifier.clone())
        .collect();
    let opened = note::open_note_cosigned(&note_text, std::slice::from_ref(&log), &witnesses)
        .map_err(|e| match e {
            NoteError::NoKnownSignature => fail(
                layout::CHECKPOINT,
                format!(
                    "not signed by the pinned log key {}+{:08x}: signed by another key",
                    log.name(),
                    log.key_id()
                ),
            ),
            NoteError::BadSignature { name } => fail(
                layout::CHECKPOINT,
                format!("signature by {name} does not verify"),
            ),
            e => fail(layout::CHECKPOINT, e.to_string()),
        })?;
    // The checkpoint must also satisfy the stricter checkpoint rules (origin = key name).
    verify_checkpoint(&note_text, &log, None)
        .map_err(|e| fail(layout::CHECKPOINT, e.to_string()))?;
    // Witness names of the policy whose cosignatures verified.
    let mut cosigned: Vec<(&str, u64)> = Vec::new();
    for c in &opened.cosignatures {
        for w in policy
            .witnesses
            .iter()
            .filter(|w| w.verifier.name() == c.name)
        {
            cosigned.push((w.name.as_str(), c.time));
        }
    }
    let names: Vec<&str> = cosigned.iter().map(|(n, _)| *n).collect();
    if !policy.quorum_satisfied(&names) {
        return Err(fail(
            layout::CHECKPOINT,
            format!(
                "cosignature quorum of the trust policy not met (valid cosignatures: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let clock = cosigned
        .iter()
        .find(|(n, _)| *n == "clock")
        .or_else(|| cosigned.first())
        .copied();

    // Detached copies for openssl must be exactly the signed bytes.
    if ctx.file(layout::CHECKPOINT_BODY)? != text.as_bytes() {
        return Err(fail(
            layout::CHECKPOINT_BODY,
            "differs from the signed text of checkpoint",
        ));
    }
    let log_sig = sigs
        .iter()
        .find(|s| s.name == log.name() && s.key_id == log.key_id())
        .map(|s| s.signature.as_slice())
        .unwrap_or_default();
    if ctx.file(layout::CHECKPOINT_SIG)? != log_sig {
        return Err(fail(
            layout::CHECKPOINT_SIG,
            "is not the log key's signature from checkpoint",
        ));
    }
    let mut cosig_detail = "no cosignature".to_owned();
    if let Some((wname, time)) = clock {
        let msg = ctx.file(layout::COSIG_MSG)?;
        let msg_text = utf8(layout::COSIG_MSG, msg)?;
        let msg_time = cosigned
            .iter()
            .map(|(_, t)| *t)
            .find(|t| note::cosignature_message(text, *t) == msg_text)
            .ok_or_else(|| {
                fail(
                    layout::COSIG_MSG,
                    "is not the cosignature/v1 message of a verified cosignature",
                )
            })?;
        let cosig = ctx.file(layout::COSIG_SIG)?;
        let matches = sigs.iter().any(|s| {
            policy.witnesses.iter().any(|w| {
                w.verifier.name() == s.name
                    && w.verifier.key_id() == s.key_id
                    && s.signature.get(..8) == Some(&msg_time.to_be_bytes()[..])
                    && s.signature.get(8..) == Some(cosig)
            })
        });
        if !matches {
            return Err(fail(
                layout::COSIG_SIG,
                "is not the cosignature from checkpoint for checkpoint.cosig.msg",
            ));
        }
        let at = i64::try_from(time)
            .ok()
            .and_then(Timestamp::from_unix_secs)
            .map(|t| t.to_string())
            .unwrap_or_else(|| time.to_string());
        ctx.report.cosigned_at = Some(at.clone());
        cosig_detail = format!("cosigned by {wname} at {at}");
    }

    // The manifest must describe this checkpoint.
    let manifest = ctx.manifest()?;
    let mismatch = |what: &str| {
        fail(
            layout::MANIFEST,
            format!("{what} differs from the signed checkpoint"),
        )
    };
    if manifest.origin != body.origin {
        return Err(mismatch("origin"));
    }
    if manifest.tree_size != body.size {
        return Err(mismatch("tree_size"));
    }
    if manifest.root != B64.encode(body.root) {
        return Err(mismatch("root"));
    }
    if let Some((_, time)) = clock {
        let shown = i64::try_from(time)
            .ok()
            .and_then(Timestamp::from_unix_secs)
            .map(|t| t.to_string());
        if manifest.checkpoint_unix != time || Some(&manifest.checkpoint_time) != shown.as_ref() {
            return Err(mismatch("checkpoint_time"));
        }
    }
    let bundled_note = match (&ctx.opts.trust, ctx.bundle.get(layout::BUNDLED_POLICY)) {
        (Trust::Pinned(p), Some(b)) => match std::str::from_utf8(b).map(TrustPolicy::parse) {
            Ok(Ok(bp)) if bp == *p => "; trust/policy.txt matches the pinned policy",
            _ => "; trust/policy.txt differs from the pinned policy (not used)",
        },
        _ => "",
    };
    let detail = format!(
        "checkpoint {} size {} signed by {} log key {}+{:08x}; {cosig_detail}; quorum met{bundled_note}",
        body.origin,
        body.size,
        if matches!(ctx.opts.trust, Trust::Pinned(_)) {
            "the pinned"
        } else {
            "the BUNDLED"
        },
        log.name(),
        log.key_id(),
    );
    ctx.note = note_text;
    ctx.checkpoint = Some(body);
    ctx.log = Some(log);
    ctx.policy = Some(policy);
    Ok(detail)
}

// ---- 3. timestamp authority ----------------------------------------------------------------

fn check_timestamp(ctx: &mut Ctx<'_>) -> Step {
    if ctx.bundle.contains(layout::CHECKPOINT_TSR) {
        Ok(skipped(
            "checkpoint.tsr is present but RFC 3161 verification is not implemented; check it with openssl ts -verify",
        ))
    } else {
        Ok(skipped(
            "no RFC 3161 token (no TSA configured); time rests on the clock cosignature",
        ))
    }
}

// ---- 4. the ledger -----------------------------------------------------------------------------

fn proof_by_index(bundle: &Bundle) -> BTreeMap<u64, TlogProof> {
    let mut out = BTreeMap::new();
    for (_, data) in bundle.under(layout::PROOFS_DIR) {
        if let Ok(p) = std::str::from_utf8(data)
            .map_err(|_| ProofFileError::Malformed("utf-8"))
            .and_then(TlogProof::parse)
        {
            out.insert(p.index, p);
        }
    }
    out
}

/// The first exported entry whose leaf hash does not verify against its receipt: on a root
/// mismatch this names the line that was altered, removed or moved.
fn first_bad_line(ctx: &Ctx<'_>, cp: &Checkpoint) -> Option<(usize, u64)> {
    let proofs = proof_by_index(ctx.bundle);
    let n = u64::try_from(ctx.entries.len()).ok()?;
    for e in &ctx.entries {
        let ok = proofs.get(&e.index).is_some_and(|p| {
            merkle::verify_inclusion(
                &merkle::leaf_hash(e.bytes),
                e.index,
                cp.size,
                &p.hashes,
                &cp.root,
            )
            .is_ok()
        });
        if !ok {
            return Some((e.line, e.index));
        }
    }
    // Every line verifies: the file is a prefix of the log (entries missing at the end).
    (n < cp.size).then(|| (ctx.entries.len() + 1, n))
}

fn check_ledger(ctx: &mut Ctx<'_>) -> Step {
    let cp = ctx.checkpoint()?.clone();
    let scope = ctx.manifest()?.scope;
    let bundle = ctx.bundle;
    let raw = bundle
        .get(layout::ENTRIES)
        .ok_or_else(|| fail(layout::ENTRIES, "missing from the bundle"))?;
    if !raw.is_empty() && !raw.ends_with(b"\n") {
        return Err(fail(
            layout::ENTRIES,
            "the last line does not end in a newline (truncated file?)",
        ));
    }
    let lines: Vec<&[u8]> = if raw.is_empty() {
        Vec::new()
    } else {
        raw[..raw.len() - 1].split(|b| *b == b'\n').collect()
    };
    let count = u64::try_from(lines.len()).unwrap_or(u64::MAX);
    let indices: Vec<u64> = match scope {
        Scope::Full => {
            if bundle.contains(layout::INDEX) {
                return Err(fail(layout::INDEX, "present in a full export"));
            }
            (0..count).collect()
        }
        Scope::Partial => {
            let text = utf8(layout::INDEX, ctx.file(layout::INDEX)?)?;
            let mut out = Vec::with_capacity(lines.len());
            for (i, l) in text.lines().enumerate() {
                let at = format!("line {}", i + 1);
                let idx: u64 = l
                    .parse()
                    .ok()
                    .filter(|_| !l.starts_with('+') && (l == "0" || !l.starts_with('0')))
                    .ok_or_else(|| fail_at(layout::INDEX, &at, "not a leaf index"))?;
                if idx >= cp.size {
                    return Err(fail_at(
                        layout::INDEX,
                        &at,
                        format!("leaf {idx} is beyond the checkpoint size {}", cp.size),
                    ));
                }
                if out.last().is_some_and(|p| *p >= idx) {
                    return Err(fail_at(
                        layout::INDEX,
                        &at,
                        "leaf indices must be strictly increasing",
                    ));
                }
                out.push(idx);
            }
            if out.len() != lines.len() {
                return Err(fail(
                    layout::INDEX,
                    format!(
                        "{} indices for {} entries in {}",
                        out.len(),
                        lines.len(),
                        layout::ENTRIES
                    ),
                ));
            }
            out
        }
    };
    ctx.entries = lines
        .iter()
        .zip(&indices)
        .enumerate()
        .map(|(i, (bytes, index))| Entry {
            index: *index,
            line: i + 1,
            bytes,
            parsed: None,
        })
        .collect();
    ctx.by_index = ctx
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.index, i))
        .collect();

    // Full export: the root over every stored line must be the signed root.
    if scope == Scope::Full {
        let leaves: Vec<Hash> = lines.iter().map(|l| merkle::leaf_hash(l)).collect();
        if count != cp.size || merkle::root_from_leaves(&leaves) != cp.root {
            let what = if count == cp.size {
                "leaf hash not in tree — root mismatch".to_owned()
            } else {
                format!(
                    "{count} entries but the checkpoint has {} — root mismatch",
                    cp.size
                )
            };
            return Err(match first_bad_line(ctx, &cp) {
                Some((line, leaf)) if leaf < count => {
                    fail_at(layout::ENTRIES, line_leaf(line, leaf), what)
                }
                Some((line, leaf)) => fail_at(
                    layout::ENTRIES,
                    line_leaf(line, leaf),
                    format!("{what} (entries missing from the end)"),
                ),
                None => fail(layout::ENTRIES, what),
            });
        }
    }

    // Every entry parses, is canonical, has a unique record id and a correct prev link.
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    for e in &mut ctx.entries {
        let at = line_leaf(e.line, e.index);
        let value: Value = serde_json::from_slice(e.bytes)
            .map_err(|err| fail_at(layout::ENTRIES, &at, format!("not JSON: {err}")))?;
        let canonical = serde_json_canonicalizer::to_vec(&value)
            .map_err(|err| fail_at(layout::ENTRIES, &at, format!("not canonical JSON: {err}")))?;
        if canonical != e.bytes {
            return Err(fail_at(
                layout::ENTRIES,
                &at,
                "entry is not in RFC 8785 canonical form",
            ));
        }
        let subject = value
            .get("record")
            .or_else(|| value.get("confirmation"))
            .ok_or_else(|| fail_at(layout::ENTRIES, &at, "entry has no record"))?;
        let record_id = serde_json_canonicalizer::to_vec(subject)
            .map(|b| sha256_hex(&b))
            .map_err(|err| fail_at(layout::ENTRIES, &at, err.to_string()))?;
        let entry = LedgerEntry::parse(e.bytes).map_err(|err| {
            fail_at(
                layout::ENTRIES,
                &at,
                format!("not an aims-evidence ledger entry: {err}"),
            )
        })?;
        if let Some(first) = ids.insert(record_id.clone(), e.index) {
            return Err(fail_at(
                layout::ENTRIES,
                &at,
                format!("record {record_id} already appears at leaf {first}"),
            ));
        }
        let key = entry
            .chain_key()
            .ok_or_else(|| fail_at(layout::ENTRIES, &at, "entry has no body"))?;
        let expected = last.get(&key).copied();
        if entry.prev != expected {
            let show = |p: Option<u64>| p.map_or("null".to_owned(), |p| format!("leaf {p}"));
            let reason = match (entry.prev, expected) {
                (Some(p), _) if p >= e.index => {
                    format!("prev {p} does not point to an earlier entry")
                }
                (Some(p), _) if scope == Scope::Partial && !ctx.by_index.contains_key(&p) => {
                    format!(
                        "prev leaf {p} (an earlier version of this artifact) is not in the bundle"
                    )
                }
                (got, want) => format!(
                    "prev is {} but the previous entry for source {:?} locator {:?} is {}",
                    show(got),
                    key.0,
                    key.1,
                    show(want)
                ),
            };
            return Err(fail_at(layout::ENTRIES, &at, reason));
        }
        last.insert(key, e.index);
        e.parsed = Some(Parsed {
            record_id,
            record: entry.record,
            confirmation: entry.confirmation,
        });
    }
    let manifest = ctx.manifest()?;
    if manifest.counts.entries != count {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.entries is {} but {} has {count} lines",
                manifest.counts.entries,
                layout::ENTRIES
            ),
        ));
    }
    let confirmations = check_confirmations(ctx)?;
    Ok(match scope {
        Scope::Full => format!(
            "{count} entries = checkpoint size; root recomputed over every entry matches; record ids unique, prev links consistent{confirmations}"
        ),
        Scope::Partial => format!(
            "{count} of {} entries (partial: each is anchored by its receipt); record ids unique, prev chains complete{confirmations}",
            cp.size
        ),
    })
}

// ---- 5. receipts and consistency ------------------------------------------------------------

fn parse_hash_lines(file: &str, text: &str) -> Result<Vec<Hash>, Failure> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            B64.decode(l)
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .filter(|h| B64.encode(h) == l)
                .ok_or_else(|| fail_at(file, format!("line {}", i + 1), "not a base64 hash"))
        })
        .collect()
}

fn check_proofs(ctx: &mut Ctx<'_>) -> Step {
    let cp = ctx.checkpoint()?.clone();
    let log = ctx.log()?.clone();
    let scope = ctx.manifest()?.scope;
    let mut seen: HashMap<u64, String> = HashMap::new();
    for (path, data) in ctx.bundle.under(layout::PROOFS_DIR) {
        let stem = path[layout::PROOFS_DIR.len()..]
            .strip_suffix(layout::PROOF_SUFFIX)
            .filter(|s| is_hex64(s))
            .ok_or_else(|| fail(path, "expected proofs/<record_id>.tlog-proof"))?;
        let proof = TlogProof::parse(utf8(path, data)?)
            .map_err(|e| fail(path, format!("not a tlog-proof: {e}")))?;
        let at = format!("leaf {}", proof.index);
        if proof.checkpoint_note != ctx.note {
            return Err(fail_at(
                path,
                &at,
                "receipt is for another checkpoint than the bundle's",
            ));
        }
        let Some(&i) = ctx.by_index.get(&proof.index) else {
            return Err(fail_at(
                path,
                &at,
                "receipt for a leaf that is not in the bundle",
            ));
        };
        let entry = &ctx.entries[i];
        let at = format!(
            "leaf {} ({} line {})",
            entry.index,
            layout::ENTRIES,
            entry.line
        );
        if entry.parsed.as_ref().map(|p| p.record_id.as_str()) != Some(stem) {
            return Err(fail_at(
                path,
                &at,
                "the entry at this leaf holds another record",
            ));
        }
        // The receipt's checkpoint is the bundle's, already verified with the pinned keys, so
        // what remains of the tlog-proof steps is the leaf hash and the inclusion proof.
        merkle::verify_inclusion(
            &merkle::leaf_hash(entry.bytes),
            proof.index,
            cp.size,
            &proof.hashes,
            &cp.root,
        )
        .map_err(|e| {
            fail_at(
                path,
                &at,
                format!("inclusion proof does not verify against the checkpoint: {e}"),
            )
        })?;
        if let Some(other) = seen.insert(proof.index, path.to_owned()) {
            return Err(fail_at(path, &at, format!("second receipt (also {other})")));
        }
    }
    for e in &ctx.entries {
        if !seen.contains_key(&e.index) {
            return Err(fail_at(
                layout::PROOFS_DIR,
                format!("leaf {}", e.index),
                format!("no receipt for {} line {}", layout::ENTRIES, e.line),
            ));
        }
    }
    let manifest = ctx.manifest()?;
    if manifest.counts.proofs != u64::try_from(seen.len()).unwrap_or(u64::MAX) {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.proofs is {} but the bundle has {} receipts",
                manifest.counts.proofs,
                seen.len()
            ),
        ));
    }

    // Consistency proofs shipped in the bundle.
    let mut consistency: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for (path, data) in ctx.bundle.under(layout::CONSISTENCY_DIR) {
        let name = path[layout::CONSISTENCY_DIR.len()..]
            .strip_suffix(".txt")
            .and_then(|s| s.split_once('-'))
            .and_then(|(m, n)| Some((m.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .ok_or_else(|| fail(path, "expected consistency/<m>-<n>.txt"))?;
        let (m, n) = name;
        if n != cp.size || m == 0 || m > n {
            return Err(fail(
                path,
                format!(
                    "sizes {m} -> {n} do not end at the checkpoint size {}",
                    cp.size
                ),
            ));
        }
        let hashes = parse_hash_lines(path, utf8(path, data)?)?;
        // A full export can check the proof on its own: the old root is recomputed.
        if scope == Scope::Full {
            let leaves: Vec<Hash> = ctx.entries[..usize::try_from(m)
                .unwrap_or(usize::MAX)
                .min(ctx.entries.len())]
                .iter()
                .map(|e| merkle::leaf_hash(e.bytes))
                .collect();
            let root_m = merkle::root_from_leaves(&leaves);
            merkle::verify_consistency(m, n, &hashes, &root_m, &cp.root)
                .map_err(|e| fail(path, format!("consistency proof does not verify: {e}")))?;
        }
        consistency.insert(m, hashes);
    }

    let mut detail = format!(
        "{} receipts verify against the checkpoint and match their entries",
        seen.len()
    );
    if let Some(prev_note) = &ctx.opts.previous {
        let (prev, _) = verify_checkpoint(prev_note, &log, None).map_err(|e| {
            fail(
                "--previous",
                format!("not a checkpoint signed by the pinned log key: {e}"),
            )
        })?;
        let (m, n) = (prev.size, cp.size);
        if m > n {
            return Err(fail(
                "--previous",
                format!(
                    "the previous checkpoint (size {m}) is newer than the bundle's (size {n}): the bundle is stale or the log was rolled back"
                ),
            ));
        }
        if m == 0 {
            detail.push_str("; previous checkpoint is the empty tree");
        } else if m == n {
            if prev.root != cp.root {
                return Err(fail(
                    layout::CHECKPOINT,
                    format!(
                        "same size {n} as the previous checkpoint but a different root: the log forked"
                    ),
                ));
            }
            detail.push_str(&format!(
                "; same tree as the previous checkpoint (size {m})"
            ));
        } else if let Some(hashes) = consistency.get(&m) {
            let path = format!("{}{m}-{n}.txt", layout::CONSISTENCY_DIR);
            merkle::verify_consistency(m, n, hashes, &prev.root, &cp.root).map_err(|e| {
                fail(
                    &path,
                    format!(
                        "the bundle's log does not extend the previous checkpoint (size {m}): {e}"
                    ),
                )
            })?;
            detail.push_str(&format!(
                "; consistent with the previous checkpoint (size {m} -> {n}, {path})"
            ));
        } else if scope == Scope::Full {
            let leaves: Vec<Hash> = ctx.entries[..usize::try_from(m)
                .unwrap_or(usize::MAX)
                .min(ctx.entries.len())]
                .iter()
                .map(|e| merkle::leaf_hash(e.bytes))
                .collect();
            if merkle::root_from_leaves(&leaves) != prev.root {
                return Err(fail(
                    layout::ENTRIES,
                    format!(
                        "the first {m} entries do not hash to the previous checkpoint's root: the log was rewritten"
                    ),
                ));
            }
            detail.push_str(&format!(
                "; the first {m} entries reproduce the previous checkpoint's root"
            ));
        } else {
            return Err(fail(
                layout::CONSISTENCY_DIR,
                format!("no consistency proof {m}-{n} for --previous; export again with since={m}"),
            ));
        }
    }
    Ok(detail)
}

// ---- 5b. confirmations --------------------------------------------------------------------------

/// Every confirmation entry's listing is in the bundle, canonical, and hashes to the digest the
/// signed entry names, with the count it names; every listing file belongs to some confirmation.
/// This is what lets an auditor show offline that artifact X was still listed with content Y at
/// the confirmation's time. Part of the ledger check; returns a clause for its detail.
fn check_confirmations(ctx: &Ctx<'_>) -> Step {
    let mut wanted: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut n = 0u64;
    let mut artifacts = 0u64;
    for e in &ctx.entries {
        let Some(c) = e.parsed.as_ref().and_then(|p| p.confirmation.as_ref()) else {
            continue;
        };
        n += 1;
        let path = format!("{}{}.json", layout::LISTINGS_DIR, c.digest);
        let at = line_leaf(e.line, e.index);
        let data = ctx.bundle.get(&path).ok_or_else(|| {
            fail_at(
                layout::ENTRIES,
                &at,
                format!("the listing of this confirmation ({path}) is not in the bundle"),
            )
        })?;
        let listing = Listing::parse_canonical(data)
            .map_err(|err| fail(&path, format!("not a canonical listing: {err}")))?;
        if sha256_hex(data) != c.digest.as_str() {
            return Err(fail(
                &path,
                "content does not hash to the confirmation's digest",
            ));
        }
        if listing.artifacts.len() as u64 != c.count {
            return Err(fail(
                &path,
                format!(
                    "{} artifacts but the confirmation at {at} says {}",
                    listing.artifacts.len(),
                    c.count
                ),
            ));
        }
        artifacts += c.count;
        wanted.insert(path, (e.line, c.count));
    }
    let mut files = 0u64;
    for (path, _) in ctx.bundle.under(layout::LISTINGS_DIR) {
        if !wanted.contains_key(path) {
            return Err(fail(
                path,
                "no confirmation entry in the bundle names this listing",
            ));
        }
        files += 1;
    }
    let counts = &ctx.manifest()?.counts;
    if counts.confirmations != n || counts.listings != files {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.confirmations/listings are {}/{} but the bundle has {n}/{files}",
                counts.confirmations, counts.listings
            ),
        ));
    }
    if n == 0 {
        return Ok(String::new());
    }
    Ok(format!(
        "; {n} confirmations ({artifacts} listed artifacts in {files} listing files) hash to the digests their signed entries name"
    ))
}

// ---- 6. blobs ------------------------------------------------------------------------------------

fn check_blobs(ctx: &mut Ctx<'_>) -> Step {
    let mut by_hash: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in &ctx.entries {
        if let Some(r) = e.parsed.as_ref().and_then(|p| p.record.as_ref()) {
            by_hash.entry(r.sha256.as_str()).or_default().push(r.size);
        }
    }
    let mut n = 0usize;
    for (path, data) in ctx.bundle.under(layout::BLOBS_DIR) {
        let name = &path[layout::BLOBS_DIR.len()..];
        if !is_hex64(name) {
            return Err(fail(path, "expected blobs/sha256/<64 hex digits>"));
        }
        if sha256_hex(data) != name {
            return Err(fail(path, "content does not hash to its name"));
        }
        let sizes = by_hash
            .get(name)
            .ok_or_else(|| fail(path, "no exported record has this SHA-256"))?;
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if !sizes.contains(&len) {
            return Err(fail(
                path,
                format!("{len} bytes but the record says {}", sizes[0]),
            ));
        }
        n += 1;
    }
    let counted = ctx.manifest()?.counts.blobs;
    if counted != u64::try_from(n).unwrap_or(u64::MAX) {
        return Err(fail(
            layout::MANIFEST,
            format!("counts.blobs is {counted} but the bundle has {n} blobs"),
        ));
    }
    if n == 0 {
        return Ok(skipped("the bundle carries no blobs"));
    }
    Ok(format!(
        "{n} blobs hash to their names and match their records' sha256 and size"
    ))
}

// ---- 7. OSCAL and catalog --------------------------------------------------------------------

fn check_catalog(ctx: &Ctx<'_>) -> Result<String, Failure> {
    let cat = &ctx.manifest()?.catalog;
    let mut buf = Vec::new();
    for path in &cat.files {
        let data = ctx.file(path)?;
        let name = path.rsplit('/').next().unwrap_or(path);
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data.len().to_string().as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data);
    }
    if sha256_hex(&buf) != cat.sha256 {
        return Err(fail(
            layout::MANIFEST,
            "catalog.sha256 does not match the catalog files in the bundle",
        ));
    }
    Ok(format!(
        "catalog {} {} hash matches",
        cat.framework, cat.version
    ))
}

fn props(v: &Value) -> impl Iterator<Item = (&str, &str)> {
    v.get("props")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("value")?.as_str()?)))
}

fn check_oscal(ctx: &mut Ctx<'_>) -> Step {
    let catalog = check_catalog(ctx)?;
    let Some(raw) = ctx.bundle.get(layout::OSCAL_AR) else {
        return Ok(skipped(format!("no {}; {catalog}", layout::OSCAL_AR)));
    };
    let doc: Value = serde_json::from_slice(raw)
        .map_err(|e| fail(layout::OSCAL_AR, format!("not JSON: {e}")))?;
    let ar = doc
        .get("assessment-results")
        .ok_or_else(|| fail(layout::OSCAL_AR, "no assessment-results object"))?;
    // Back-matter resources by uuid, for the hashes of the evidence they describe.
    let mut resources: HashMap<&str, &Value> = HashMap::new();
    for r in ar
        .pointer("/back-matter/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(u) = r.get("uuid").and_then(Value::as_str) {
            resources.insert(u, r);
        }
    }
    let by_id: HashMap<&str, &Entry<'_>> = ctx
        .entries
        .iter()
        .filter_map(|e| {
            let p = e.parsed.as_ref()?;
            p.record.as_ref()?;
            Some((p.record_id.as_str(), e))
        })
        .collect();
    let mut observations = 0u64;
    let mut linked = 0u64;
    for (ri, result) in ar
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (oi, obs) in result
            .get("observations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            observations += 1;
            let at = format!("results[{ri}].observations[{oi}]");
            let evidence: Vec<&Value> = obs
                .get("relevant-evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let mut all_props: Vec<(&str, &str)> = props(obs).collect();
            for ev in &evidence {
                all_props.extend(props(ev));
            }
            let mut record_ids: Vec<&str> = all_props
                .iter()
                .filter(|(n, _)| *n == "record-id")
                .map(|(_, v)| *v)
                .collect();
            record_ids.dedup();
            for rid in record_ids {
                let entry = by_id.get(rid).ok_or_else(|| {
                    fail_at(
                        layout::OSCAL_AR,
                        &at,
                        format!("record-id {rid} is not in the bundle's entries"),
                    )
                })?;
                let Some(record) = entry.parsed.as_ref().and_then(|p| p.record.as_ref()) else {
                    continue;
                };
                for (n, v) in &all_props {
                    let ok = match *n {
                        "ledger-index" => v.parse::<u64>().ok() == Some(entry.index),
                        "sha256" => *v == record.sha256.as_str(),
                        "locator" => *v == record.locator,
                        _ => true,
                    };
                    if !ok {
                        return Err(fail_at(
                            layout::OSCAL_AR,
                            &at,
                            format!(
                                "{n} {v:?} does not match record {rid} at leaf {}",
                                entry.index
                            ),
                        ));
                    }
                }
                // Hashes on the back-matter resource the evidence points to.
                for ev in &evidence {
                    let Some(uuid) = ev
                        .get("href")
                        .and_then(Value::as_str)
                        .and_then(|h| h.strip_prefix('#'))
                    else {
                        continue;
                    };
                    let Some(res) = resources.get(uuid) else {
                        return Err(fail_at(
                            layout::OSCAL_AR,
                            &at,
                            format!("relevant-evidence href #{uuid} names no back-matter resource"),
                        ));
                    };
                    for h in res
                        .get("rlinks")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|l| l.get("hashes").and_then(Value::as_array))
                        .flatten()
                    {
                        let alg = h.get("algorithm").and_then(Value::as_str).unwrap_or("");
                        let val = h.get("value").and_then(Value::as_str).unwrap_or("");
                        if alg.eq_ignore_ascii_case("SHA-256")
                            && !val.eq_ignore_ascii_case(record.sha256.as_str())
                        {
                            return Err(fail_at(
                                layout::OSCAL_AR,
                                &at,
                                format!(
                                    "back-matter resource {uuid} hash {val} does not match record {rid} sha256 {}",
                                    record.sha256
                                ),
                            ));
                        }
                    }
                }
                linked += 1;
            }
        }
    }
    let counted = ctx.manifest()?.counts.observations;
    if counted != observations {
        return Err(fail(
            layout::MANIFEST,
            format!("counts.observations is {counted} but the OSCAL results have {observations}"),
        ));
    }
    Ok(format!(
        "{observations} observations, {linked} record references match the ledger (record id, index, sha256); {catalog}"
    ))
}

// ---- 8. re-assessment ----------------------------------------------------------------------------

fn check_assessment(_ctx: &mut Ctx<'_>) -> Step {
    Ok(skipped(
        "re-running the assessment against the findings is not implemented in aims-verify",
    ))
}
