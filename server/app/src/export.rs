//! The auditor's export (integrity.md §6.8): a deterministic `bundle.tar.gz` that `aims-verify`,
//! `sha256sum`, `openssl` and a 60-line Python script can check offline.
//!
//! The bundle is anchored to the newest checkpoint when the export starts; entries appended
//! later are not included. Layout (every file mode 0644, mtime = the checkpoint's cosigned time,
//! paths sorted, so the same checkpoint and scope always give byte-identical archives):
//!
//! | path | content |
//! |---|---|
//! | `MANIFEST.json` | format, origin, size, root, time, catalog version and hash, scope, counts, files |
//! | `SHA256SUMS` | `sha256sum` lines over every other file |
//! | `trust/policy.txt`, `trust/{log,clock}.pub.pem` | convenience copies only (pin your own) |
//! | `checkpoint` | the signed note (log signature + clock cosignature) |
//! | `checkpoint.body` | the exact signed text |
//! | `checkpoint.sig` | the log's 64-byte Ed25519 signature (key ID stripped) |
//! | `checkpoint.cosig.msg`, `checkpoint.cosig.sig` | the `cosignature/v1` message and signature |
//! | `log/entries.jsonl` | line i = the stored bytes of leaf i (full); partial: the system's entries |
//! | `log/index.txt` | partial exports: the leaf index of each line |
//! | `proofs/<record_id>.tlog-proof` | one receipt per exported entry, against the checkpoint |
//! | `consistency/<m>-<n>.txt` | with `since=m`: the RFC 6962 consistency proof, base64 per line |
//! | `oscal/assessment-results.json`, `oscal/catalog.json` | OSCAL 1.2.3 |
//! | `catalog/*.yaml` | the catalog data the assessment used |
//! | `verify/merkle.py` | an independent stdlib re-computation of the root |
//! | `README.md` | the layout and the commands that check the bundle |

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest, Sha256};

use aims_catalog::Catalog;
use aims_ledger::bundle as layout;
use aims_ledger::checkpoint::verify_checkpoint;
use aims_ledger::merkle::{self, Hash, MemoryHashStore};
use aims_ledger::note::{self, cosignature_message};
use aims_ledger::proof_file::TlogProof;
use aims_model::wire::ControlView;
use aims_model::{Confirmation, ContentHash, Listing, Timestamp};
use aims_store::{LedgerEntry, StoredCheckpoint, StoredEvidence};

use crate::auth::Principal;
use crate::error::{ApiError, ApiQuery};
use crate::{AppState, ServerError, Settings, keys, oscal};

/// `format` of MANIFEST.json.
pub const FORMAT: &str = layout::FORMAT;
/// Entries read from the store per query.
const PAGE: u64 = 1000;

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Only this AI system's entries (a `partial` export); `None` exports the whole log.
    pub system: Option<String>,
    /// Include the consistency proof from this earlier tree size to the bundle's.
    pub since: Option<u64>,
    /// An audit period `[from, to)`: the bundle carries its report at `report/period.json`
    /// (computed from the bundled entries; `to` is capped at the checkpoint's time).
    pub period: Option<(Timestamp, Timestamp)>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request cannot be served as asked (unknown system, bad `since`).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing matches (no evidence for the system).
    #[error("{0}")]
    NotFound(String),
    /// No checkpoint yet.
    #[error("no checkpoint has been signed yet: start the server once")]
    NoCheckpoint,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] aims_store::StoreError),
    /// The stored ledger contradicts its checkpoint or cannot be read back.
    #[error("ledger: {0}")]
    Ledger(String),
    /// Writing the archive failed.
    #[error("archive: {0}")]
    Archive(#[from] std::io::Error),
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::BadRequest(m) => ApiError::bad_request("invalid_query", m),
            ExportError::NotFound(m) => ApiError::not_found(m),
            ExportError::NoCheckpoint => ApiError::unavailable(e.to_string()),
            ExportError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

fn ledger_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Ledger(e.to_string())
}

/// Builds the bundle (`bundle.tar.gz` bytes) for `opts`.
pub async fn build_bundle(state: &AppState, opts: &ExportOptions) -> Result<Vec<u8>, ApiError> {
    Ok(export_bundle(state, opts).await?)
}

/// The checkpoint the export is anchored to, with the pieces openssl needs.
struct Anchor {
    stored: StoredCheckpoint,
    body: String,
    log_sig: Vec<u8>,
    cosig_msg: String,
    cosig_sig: Vec<u8>,
    time: u64,
}

fn anchor(state: &AppState, stored: StoredCheckpoint) -> Result<Anchor, ExportError> {
    let (log, clock) = state.keys.signers();
    let (cp, time) = verify_checkpoint(&stored.note, &log.verifier(), Some(&clock.verifier()))
        .map_err(|e| {
            ledger_err(format!(
                "the newest checkpoint does not verify with this server's keys: {e}"
            ))
        })?;
    if cp.size != stored.size || cp.root != stored.root {
        return Err(ledger_err(
            "the stored checkpoint row disagrees with its note",
        ));
    }
    let time = time.ok_or_else(|| ledger_err("the newest checkpoint has no clock cosignature"))?;
    let (text, sigs) = note::split_note(&stored.note).map_err(ledger_err)?;
    let log_sig = sigs
        .iter()
        .find(|s| s.name == log.name() && s.key_id == log.key_id())
        .map(|s| s.signature.clone())
        .ok_or_else(|| ledger_err("no log signature in the checkpoint"))?;
    let cosig_sig = sigs
        .iter()
        .find(|s| {
            s.name == clock.name()
                && s.key_id == clock.key_id()
                && s.signature.get(..8) == Some(&time.to_be_bytes()[..])
        })
        .and_then(|s| s.signature.get(8..).map(<[u8]>::to_vec))
        .ok_or_else(|| ledger_err("no clock cosignature in the checkpoint"))?;
    Ok(Anchor {
        body: text.to_owned(),
        cosig_msg: cosignature_message(text, time),
        log_sig,
        cosig_sig,
        time,
        stored,
    })
}

/// Reads every entry `0..size` (exact stored bytes), in order.
async fn read_entries(state: &AppState, size: u64) -> Result<Vec<Vec<u8>>, ExportError> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut next = 0u64;
    while next < size {
        let rows = state.store.entries(next, PAGE.min(size - next)).await?;
        if rows.is_empty() {
            return Err(ledger_err(format!(
                "entry {next} is missing below the checkpoint size {size}"
            )));
        }
        for row in rows {
            if row.index != next {
                return Err(ledger_err(format!(
                    "expected entry {next}, the store returned {}",
                    row.index
                )));
            }
            out.push(row.entry);
            next += 1;
            if next == size {
                break;
            }
        }
    }
    Ok(out)
}

/// One ledger entry as the export sees it.
#[derive(Clone, Debug)]
enum Parsed {
    /// An evidence record.
    Evidence(StoredEvidence),
    /// A confirmation of a source's listing.
    Confirmation {
        id: ContentHash,
        prev: Option<u64>,
        confirmation: Confirmation,
    },
}

impl Parsed {
    /// The record or confirmation id (the receipt's file name).
    fn id(&self) -> &ContentHash {
        match self {
            Self::Evidence(e) => &e.record_id,
            Self::Confirmation { id, .. } => id,
        }
    }

    fn prev(&self) -> Option<u64> {
        match self {
            Self::Evidence(e) => e.prev,
            Self::Confirmation { prev, .. } => *prev,
        }
    }

    fn evidence(&self) -> Option<&StoredEvidence> {
        match self {
            Self::Evidence(e) => Some(e),
            Self::Confirmation { .. } => None,
        }
    }
}

fn parse_entry(index: u64, bytes: &[u8]) -> Result<(Parsed, LedgerEntry), ExportError> {
    let e = LedgerEntry::parse(bytes)
        .map_err(|err| ledger_err(format!("entry {index} does not parse: {err}")))?;
    let id = e
        .subject_id()
        .map_err(|err| ledger_err(format!("entry {index}: {err}")))?;
    let parsed = match (&e.record, &e.confirmation) {
        (Some(record), _) => Parsed::Evidence(StoredEvidence {
            record_id: id,
            leaf_index: index,
            record: record.clone(),
            agent: e.agent.clone(),
            received_at: e.received_at,
            prev: e.prev,
            confirmed_at: None,
        }),
        (None, Some(confirmation)) => Parsed::Confirmation {
            id,
            prev: e.prev,
            confirmation: confirmation.clone(),
        },
        (None, None) => return Err(ledger_err(format!("entry {index} has no body"))),
    };
    Ok((parsed, e))
}

fn pretty_json(v: &Value) -> Result<Vec<u8>, ExportError> {
    let mut out = serde_json::to_vec_pretty(v).map_err(ledger_err)?;
    out.push(b'\n');
    Ok(out)
}

fn hashes_text(hs: &[Hash]) -> String {
    hs.iter().map(|h| format!("{}\n", B64.encode(h))).collect()
}

/// The export's inputs, read once: the anchoring checkpoint, every entry up to it (verified
/// against its root) and the selected leaves.
struct Prepared {
    anchor: Anchor,
    entries: Vec<Vec<u8>>,
    parsed: Vec<Parsed>,
    /// The entries decoded (what the assessment replays).
    ledger: Vec<LedgerEntry>,
    selected: Vec<usize>,
    /// The listings of the selected confirmations: bytes for the bundle, parsed for the replay.
    listings: BTreeMap<ContentHash, (Vec<u8>, Listing)>,
    tree: MemoryHashStore,
    time: Timestamp,
}

async fn prepare(state: &AppState, opts: &ExportOptions) -> Result<Prepared, ExportError> {
    let stored = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or(ExportError::NoCheckpoint)?;
    let anchor = anchor(state, stored)?;
    let size = anchor.stored.size;
    if let Some(m) = opts.since
        && (m == 0 || m > size)
    {
        return Err(ExportError::BadRequest(format!(
            "since must be between 1 and the checkpoint size {size}, got {m}"
        )));
    }

    // The whole log up to the checkpoint: its root must be the signed root.
    let entries = read_entries(state, size).await?;
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let mut tree = MemoryHashStore::new();
    tree.append_all(&leaves).map_err(ledger_err)?;
    if tree.root().map_err(ledger_err)? != anchor.stored.root {
        return Err(ledger_err(
            "the stored entries do not hash to the checkpoint's root",
        ));
    }
    let (parsed, ledger): (Vec<Parsed>, Vec<LedgerEntry>) = entries
        .iter()
        .zip(0u64..)
        .map(|(e, i)| parse_entry(i, e))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();

    // Scope: everything, or one system plus every earlier version its `prev` chains reach (so
    // the verifier can check that no version of an artifact was left out), plus the
    // confirmations of the sources that system's evidence came from.
    let selected: Vec<usize> = match &opts.system {
        None => (0..parsed.len()).collect(),
        Some(system) => {
            let mut set: BTreeSet<usize> = BTreeSet::new();
            let mut stack: Vec<usize> = parsed
                .iter()
                .enumerate()
                .filter(|(_, p)| p.evidence().is_some_and(|e| &e.record.system == system))
                .map(|(i, _)| i)
                .collect();
            if stack.is_empty() {
                return Err(ExportError::NotFound(format!(
                    "no evidence for system {system:?} up to the checkpoint (size {size})"
                )));
            }
            let sources: BTreeSet<&str> = stack
                .iter()
                .filter_map(|&i| parsed[i].evidence())
                .map(|e| e.record.source.id.as_str())
                .collect();
            stack.extend(parsed.iter().enumerate().filter_map(|(i, p)| match p {
                Parsed::Confirmation { confirmation, .. }
                    if sources.contains(confirmation.source.id.as_str()) =>
                {
                    Some(i)
                }
                _ => None,
            }));
            while let Some(i) = stack.pop() {
                if set.insert(i)
                    && let Some(p) = parsed[i].prev().and_then(|p| usize::try_from(p).ok())
                    && p < i
                {
                    stack.push(p);
                }
            }
            set.into_iter().collect()
        }
    };
    let time = i64::try_from(anchor.time)
        .ok()
        .and_then(Timestamp::from_unix_secs)
        .ok_or_else(|| ledger_err("cosigned time out of range"))?;
    let mut listings = BTreeMap::new();
    for &i in &selected {
        if let Parsed::Confirmation { confirmation, .. } = &parsed[i]
            && !listings.contains_key(&confirmation.digest)
        {
            let bytes = state
                .store
                .confirmation_listing(confirmation.digest.as_str())
                .await?
                .ok_or_else(|| {
                    ledger_err(format!(
                        "the listing {} of confirmation leaf {i} is not stored",
                        confirmation.digest
                    ))
                })?;
            let listing = Listing::parse_canonical(&bytes)
                .map_err(|e| ledger_err(format!("the listing {}: {e}", confirmation.digest)))?;
            if !confirmation.matches(&listing).map_err(ledger_err)? {
                return Err(ledger_err(format!(
                    "the stored listing {} does not match confirmation leaf {i}",
                    confirmation.digest
                )));
            }
            listings.insert(confirmation.digest.clone(), (bytes, listing));
        }
    }
    Ok(Prepared {
        anchor,
        entries,
        parsed,
        ledger,
        selected,
        listings,
        tree,
        time,
    })
}

/// The OSCAL assessment results of the prepared scope, with its observation count.
async fn oscal_results(
    state: &AppState,
    opts: &ExportOptions,
    p: &Prepared,
) -> Result<(Value, usize), ExportError> {
    let records: Vec<StoredEvidence> = p
        .selected
        .iter()
        .filter_map(|&i| p.parsed[i].evidence().cloned())
        .collect();
    // The assessment as of the checkpoint, from the exported entries alone: what aims-verify
    // recomputes (the live tables may be newer, and hold facts the ledger does not).
    let listings: HashMap<ContentHash, Listing> = p
        .listings
        .iter()
        .map(|(d, (_, l))| (d.clone(), l.clone()))
        .collect();
    let replay = aims_catalog::Replay::new(
        p.selected
            .iter()
            .map(|&i| (u64::try_from(i).unwrap_or(u64::MAX), &p.ledger[i])),
        &listings,
    )
    .map_err(ledger_err)?;
    let catalog = state.catalog.clone();
    let only = opts.system.clone();
    // A period's OSCAL states the status at the period's end, as the server knew it then.
    let (now, replay) = match opts.period {
        Some((_, to)) if to < p.time => (to, replay.as_of(to)),
        _ => (p.time, replay),
    };
    let assessed =
        tokio::task::spawn_blocking(move || replay.assess(&catalog, only.as_deref(), now))
            .await
            .map_err(|e| ledger_err(format!("assessment task failed: {e}")))?;
    let systems: Vec<(String, Vec<ControlView>)> = assessed
        .into_iter()
        .map(|a| (a.system, a.controls))
        .collect();
    let ar = oscal::assessment_results(&oscal::OscalInput {
        catalog: &state.catalog,
        origin: state.keys.origin(),
        systems: &systems,
        records: &records,
        checkpoint: &p.anchor.stored,
        generated_at: p.time,
        blob_href: None,
        period: opts.period.map(|(from, to)| (from, to.min(p.time))),
    });
    let observations = ar
        .pointer("/assessment-results/results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("observations").and_then(Value::as_array))
        .map(Vec::len)
        .sum::<usize>();
    Ok((ar, observations))
}

/// The OSCAL assessment results alone (`GET /v1/export/oscal`), anchored like the bundle.
pub async fn assessment_results(
    state: &AppState,
    opts: &ExportOptions,
) -> Result<Value, ExportError> {
    let p = prepare(state, opts).await?;
    Ok(oscal_results(state, opts, &p).await?.0)
}

/// Builds the bundle, with an error that says what went wrong (the CLI prints it).
pub async fn export_bundle(state: &AppState, opts: &ExportOptions) -> Result<Vec<u8>, ExportError> {
    let prepared = prepare(state, opts).await?;
    let (ar, observations) = oscal_results(state, opts, &prepared).await?;
    let Prepared {
        anchor,
        entries,
        parsed,
        ledger,
        selected,
        listings,
        tree,
        time,
    } = prepared;
    let size = anchor.stored.size;

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (log, clock) = state.keys.signers();
    files.insert(
        layout::BUNDLED_POLICY.into(),
        state.keys.trust_policy().into_bytes(),
    );
    files.insert(
        "trust/log.pub.pem".into(),
        log.public_key_pem().into_bytes(),
    );
    files.insert(
        "trust/clock.pub.pem".into(),
        clock.public_key_pem().into_bytes(),
    );
    files.insert(
        layout::CHECKPOINT.into(),
        anchor.stored.note.clone().into_bytes(),
    );
    files.insert(
        layout::CHECKPOINT_BODY.into(),
        anchor.body.clone().into_bytes(),
    );
    files.insert(layout::CHECKPOINT_SIG.into(), anchor.log_sig.clone());
    files.insert(
        layout::COSIG_MSG.into(),
        anchor.cosig_msg.clone().into_bytes(),
    );
    files.insert(layout::COSIG_SIG.into(), anchor.cosig_sig.clone());

    let mut lines = Vec::new();
    let mut index_txt = String::new();
    let mut confirmations = 0usize;
    for &i in &selected {
        lines.extend_from_slice(&entries[i]);
        lines.push(b'\n');
        index_txt.push_str(&format!("{i}\n"));
        let leaf = u64::try_from(i).map_err(ledger_err)?;
        let proof = TlogProof {
            extra: None,
            index: leaf,
            hashes: merkle::inclusion_proof(leaf, size, &tree).map_err(ledger_err)?,
            checkpoint_note: anchor.stored.note.clone(),
        };
        files.insert(
            format!(
                "{}{}{}",
                layout::PROOFS_DIR,
                parsed[i].id(),
                layout::PROOF_SUFFIX
            ),
            proof.encode().into_bytes(),
        );
        if let Parsed::Confirmation { confirmation, .. } = &parsed[i] {
            confirmations += 1;
            if let Some((bytes, _)) = listings.get(&confirmation.digest) {
                files.insert(
                    format!("{LISTINGS_DIR}{}.json", confirmation.digest),
                    bytes.clone(),
                );
            }
        }
    }
    let listing_files = files.keys().filter(|k| k.starts_with(LISTINGS_DIR)).count();
    files.insert(layout::ENTRIES.into(), lines);
    if opts.system.is_some() {
        files.insert(layout::INDEX.into(), index_txt.into_bytes());
    }
    if let Some(m) = opts.since {
        let proof = merkle::consistency_proof(m, size, &tree).map_err(ledger_err)?;
        files.insert(
            format!("{}{m}-{size}.txt", layout::CONSISTENCY_DIR),
            hashes_text(&proof).into_bytes(),
        );
    }

    files.insert(layout::OSCAL_AR.into(), pretty_json(&ar)?);
    let mut period = None;
    if let Some((from, to)) = opts.period {
        // The audit period's report, from the bundled entries only (what aims-verify redoes).
        let to = to.min(time);
        if from >= to {
            return Err(ExportError::BadRequest(format!(
                "the period must start before the checkpoint's time {time}"
            )));
        }
        let listings_map: HashMap<ContentHash, Listing> = listings
            .iter()
            .map(|(d, (_, l))| (d.clone(), l.clone()))
            .collect();
        let replay = aims_catalog::Replay::new(
            selected
                .iter()
                .map(|&i| (u64::try_from(i).unwrap_or(u64::MAX), &ledger[i])),
            &listings_map,
        )
        .map_err(ledger_err)?;
        let ids: Vec<String> = match &opts.system {
            Some(s) => vec![s.clone()],
            None => replay.systems.keys().cloned().collect(),
        };
        let catalog = state.catalog.clone();
        let report = tokio::task::spawn_blocking(move || {
            aims_catalog::history::period_report(&catalog, &replay, &ids, from, to)
        })
        .await
        .map_err(|e| ledger_err(format!("report task failed: {e}")))?;
        let value = serde_json::to_value(&report).map_err(ledger_err)?;
        files.insert(layout::PERIOD_REPORT.into(), pretty_json(&value)?);
        period = Some(layout::ManifestPeriod {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    files.insert(
        "oscal/catalog.json".into(),
        pretty_json(&oscal::catalog(&state.catalog))?,
    );
    let mut catalog_files = Vec::new();
    for (name, text) in state.catalog.data_files() {
        let path = format!("catalog/{name}");
        files.insert(path.clone(), text.as_bytes().to_vec());
        catalog_files.push(path);
    }
    files.insert(
        "README.md".into(),
        readme(state, &anchor, opts).into_bytes(),
    );

    // The typed manifest the verifier parses: writer and reader share one definition.
    let manifest = layout::Manifest {
        format: layout::FORMAT.to_owned(),
        generator: concat!("aims-server ", env!("CARGO_PKG_VERSION")).to_owned(),
        origin: state.keys.origin().to_owned(),
        tree_size: size,
        root: B64.encode(anchor.stored.root),
        checkpoint_time: time.to_string(),
        checkpoint_unix: anchor.time,
        catalog: layout::ManifestCatalog {
            version: state.catalog.version().to_owned(),
            framework: state.catalog.framework().to_owned(),
            sha256: state.catalog.hash().as_str().to_owned(),
            files: catalog_files,
        },
        scope: if opts.system.is_some() {
            layout::Scope::Partial
        } else {
            layout::Scope::Full
        },
        system: opts.system.clone(),
        since: opts.since,
        period,
        counts: layout::ManifestCounts {
            entries: selected.len() as u64,
            proofs: selected.len() as u64,
            blobs: 0,
            observations: observations as u64,
            confirmations: confirmations as u64,
            listings: listing_files as u64,
        },
        files: files.keys().cloned().collect(),
    };
    let manifest = serde_json::to_value(&manifest).map_err(ledger_err)?;
    files.insert(layout::MANIFEST.into(), pretty_json(&manifest)?);
    let sums: String = files
        .iter()
        .map(|(path, data)| format!("{}  {path}\n", hex::encode(Sha256::digest(data))))
        .collect();
    files.insert(layout::SHA256SUMS.into(), sums.into_bytes());

    let mtime = anchor.time;
    tokio::task::spawn_blocking(move || write_tar_gz(&files, mtime))
        .await
        .map_err(|e| ledger_err(format!("archive task failed: {e}")))?
}

/// A gzip-compressed tar of `files` in path order: regular files, mode 0644, owner 0:0, the given
/// mtime, GNU headers; the gzip header carries no name and no time.
pub fn write_tar_gz(files: &BTreeMap<String, Vec<u8>>, mtime: u64) -> Result<Vec<u8>, ExportError> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, path, data.as_slice())?;
    }
    let gz = tar.into_inner()?;
    let mut out = gz.finish()?;
    out.flush()?;
    Ok(out)
}

// ---- HTTP ----------------------------------------------------------------------------------------

fn export_options(q: &HashMap<String, String>) -> Result<ExportOptions, ApiError> {
    for k in q.keys() {
        if !["system", "since", "from", "to"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown parameter {k:?} (expected system, since, from, to)"),
            ));
        }
    }
    let period = match (q.get("from"), q.get("to")) {
        (None, None) => None,
        (Some(from), to) => Some(crate::history::parse_period(
            from,
            to.map(String::as_str),
            Timestamp::now(),
        )?),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "from: required when to is given",
            ));
        }
    };
    let system = match q.get("system") {
        Some(s) => {
            aims_model::record::validate_ident("system", s)
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
            Some(s.clone())
        }
        None => None,
    };
    let since = q
        .get("since")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_query", "since must be a positive integer")
            })
        })
        .transpose()?;
    Ok(ExportOptions {
        system,
        since,
        period,
    })
}

/// `GET /v1/export[?system=ID][&since=M]`: the bundle (auditor or admin).
pub async fn get_export(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require_export()?;
    crate::assess::flush(&state).await?;
    let opts = export_options(&q)?;
    let bytes = build_bundle(&state, &opts).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=bundle.tar.gz",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /v1/export/oscal[?system=ID]`: the OSCAL assessment results alone (auditor or admin),
/// anchored to the newest checkpoint like the bundle.
pub async fn get_export_oscal(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    principal.require_export()?;
    crate::assess::flush(&state).await?;
    let opts = export_options(&q)?;
    if opts.since.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "since applies to the bundle only",
        ));
    }
    Ok(Json(assessment_results(&state, &opts).await?))
}

/// Where a bundle keeps confirmation listings, by digest: `confirmations/<sha256>.json`.
pub const LISTINGS_DIR: &str = layout::LISTINGS_DIR;

// ---- CLI -----------------------------------------------------------------------------------------

/// The state `aims-server export` needs, opened without signing anything and without creating a
/// database or keys that do not exist (a mistyped `--database` fails instead of exporting an
/// empty log). A running server may hold the same SQLite file: WAL allows a concurrent reader.
pub async fn open_state(settings: &Settings) -> Result<AppState, ServerError> {
    if let Some(path) = settings
        .database
        .strip_prefix("sqlite://")
        .or_else(|| settings.database.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if !Path::new(path).exists() {
            return Err(ServerError::Startup(format!(
                "database {path} does not exist"
            )));
        }
    }
    let dir = settings.keys_dir();
    if std::env::var_os("AIMS_SERVER_LOG_KEY").is_none() && !dir.join("log.key").exists() {
        return Err(ServerError::Startup(format!(
            "no log key in {}: is --database (or keys_dir) right?",
            dir.display()
        )));
    }
    let store = crate::open_store(&settings.database).await?;
    let catalog = match &settings.catalog_dir {
        Some(d) => Catalog::load_dir(d)?,
        None => Catalog::embedded()?,
    };
    let keys = keys::LogKeys::load_or_create(&dir, &settings.origin)?;
    Ok(AppState::new(store, catalog, keys, settings))
}

// ---- bundle documentation ------------------------------------------------------------------------

fn readme(state: &AppState, anchor: &Anchor, opts: &ExportOptions) -> String {
    let origin = state.keys.origin();
    let size = anchor.stored.size;
    let scope = match &opts.system {
        Some(s) => format!(
            "**partial**: the entries of AI system `{s}` (plus every earlier version their `prev` \
             links reach); `log/index.txt` gives the leaf index of each line, and each entry is \
             anchored by its receipt in `proofs/`"
        ),
        None => format!(
            "**full**: every ledger entry `0..{size}`, so the root can be recomputed and nothing \
             can have been left out"
        ),
    };
    let since = opts
        .since
        .map(|m| format!("| `consistency/{m}-{size}.txt` | RFC 6962 consistency proof from tree size {m} to {size}, one base64 hash per line |\n"))
        .unwrap_or_default();
    README
        .replace("@ORIGIN@", origin)
        .replace("@SIZE@", &size.to_string())
        .replace("@SCOPE@", &scope)
        .replace("@SINCE@", &since)
}

const README: &str = r#"# aims-evidence audit bundle

Ledger `@ORIGIN@`, anchored to its checkpoint at tree size @SIZE@. Scope: @SCOPE@.

The checkpoint is a C2SP signed note: the log key (Ed25519, named after the origin) signs the
three-line body (origin, size, base64 root), and a separate clock key adds a timestamped
`cosignature/v1`: the evidence in this bundle existed no later than that time.

## Layout

| path | content |
|---|---|
| `MANIFEST.json` | format, origin, tree size, root, checkpoint time, catalog version and hash, scope, counts, file list |
| `SHA256SUMS` | `sha256sum` lines over every other file |
| `checkpoint` | the full signed note (log signature and clock cosignature) |
| `checkpoint.body` | the exact signed text (origin, size, root; final newline included) |
| `checkpoint.sig` | the log key's 64-byte Ed25519 signature over `checkpoint.body` (key ID stripped) |
| `checkpoint.cosig.msg` | the message the clock signed: `cosignature/v1`, `time <unix seconds>`, then the body |
| `checkpoint.cosig.sig` | the clock key's 64-byte Ed25519 signature over `checkpoint.cosig.msg` |
| `log/entries.jsonl` | one ledger entry per line, exactly the bytes its leaf hashes (the newline is not hashed); in a full export line N holds leaf N-1 |
| `log/index.txt` | partial exports only: the leaf index of each line of `log/entries.jsonl` |
| `proofs/<record_id>.tlog-proof` | a `c2sp.org/tlog-proof@v1` receipt per entry: its inclusion proof and the checkpoint |
@SINCE@| `oscal/assessment-results.json` | OSCAL 1.2.3 assessment results: one observation per record, one finding per (system, control) |
| `oscal/catalog.json` | the OSCAL catalog of the ISO/IEC 42001 Annex A controls used |
| `catalog/*.yaml` | the catalog data (controls, kinds, rules, requirements) the assessment used |
| `confirmations/<sha256>.json` | the listing each confirmation entry names (the canonical JSON whose SHA-256 the signed entry holds): which artifacts a source still listed, with which content, at the confirmation's time |
| `trust/policy.txt`, `trust/log.pub.pem`, `trust/clock.pub.pem` | **convenience copies only**: a copy inside the bundle proves nothing; compare them with the keys you pinned |

Each entry is the RFC 8785 (JCS) JSON `{"v":1,"type":"evidence","record":…,"agent":…,
"received_at":…,"prev":…}` (or `"type":"confirmation"` with a `"confirmation"` object instead of
`"record"`). Leaf hash = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right) (RFC 6962). A
record's ID is the SHA-256 of the JCS encoding of its `record` object; `prev` is the leaf of the
previous entry for the same (source id, locator) (for confirmations: the same source), so a
left-out version is visible.

The OSCAL findings are the assessment of these entries with the bundled catalog as of the
checkpoint's cosigned time; `aims-verify` recomputes it and fails on any difference. This README,
`oscal/catalog.json` and `trust/` are not bound to the checkpoint: read them, do not trust them.

## Checking it

Pin the server's trust policy out of band (`aims-server keys show` prints it) and keep it as
`policy.txt`; then:

```sh
aims-verify bundle.tar.gz --trust policy.txt          # exit 0 verified, 1 failure, 2 usage/IO
```

The same checks with standard tools, from the extracted bundle
(`mkdir b && tar -xzf bundle.tar.gz -C b && cd b`):

```sh
sha256sum -c SHA256SUMS
openssl pkeyutl -verify -pubin -inkey trust/log.pub.pem -rawin -in checkpoint.body -sigfile checkpoint.sig
openssl pkeyutl -verify -pubin -inkey trust/clock.pub.pem -rawin -in checkpoint.cosig.msg -sigfile checkpoint.cosig.sig
python3 "$AIMS_SRC/server/verify/scripts/merkle.py" .
```

`merkle.py` is the independent Python re-computation of the Merkle root (standard library only)
that comes with the aims-verify sources (`$AIMS_SRC` is your copy of them): a script shipped inside
a bundle would be written by whoever made the bundle, so none is.

The PEM files in `trust/` are copies from the server; to check against your pinned policy instead,
make the PEM from its `log` line (and likewise from the `witness clock` line):

```sh
vkey=$(awk '$1 == "log" {print $2}' policy.txt)
{ printf '\060\052\060\005\006\003\053\145\160\003\041\000'; printf %s "$vkey" | cut -d+ -f3- | base64 -d | tail -c 32; } \
  | openssl pkey -pubin -inform DER -out pinned-log.pub.pem
```

The leaf hash of line N (leaf N-1) of `log/entries.jsonl`:

```sh
sed -n "${N}p" log/entries.jsonl | tr -d '\n' | { printf '\000'; cat; } | sha256sum
```

Keep `checkpoint` from this bundle. Next time, ask for `GET /v1/export?since=<its size>` (or
`aims-server export --since <size>`) and run `aims-verify NEW.tar.gz --trust policy.txt
--previous checkpoint` to prove the log only grew.

## What this proves

Content is bound by each record's SHA-256 and size; every entry existed no later than the
cosigned time; any alteration, removal or reordering of an entry breaks the root (full exports) or
its receipt; consistency with your previous checkpoint shows nothing was deleted since. Not
covered: a stolen log key combined with a split view, unless independent witnesses or a TSA are
configured. `observed_at` is the agent's claim, bounded by the cosigned time.
"#;
