//! The export's second pass: the leaves in scope, read again page by page, written to the
//! staging directory as they come (entries, receipts, listings) and replayed into the
//! assessment the OSCAL results and the period report state. What stays in memory is the replay
//! (the records, not their bytes) and the small files.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use aims_catalog::{Replay, ReplayBuilder};
use aims_ledger::bundle as layout;
use aims_ledger::merkle;
use aims_ledger::proof_file::TlogProof;
use aims_model::wire::ControlView;
use aims_model::{Listing, Timestamp};
use aims_store::{LedgerEntry, StoredEvidence};

use super::scan::{Anchor, Pages, Selection};
use super::staging::Staging;
use super::{Cancel, ExportError, ExportOptions, ledger_err};
use crate::{AppState, oscal};

/// What the second pass produced besides the staged files.
pub(super) struct Built {
    /// The OSCAL assessment results and its observation count.
    pub oscal: (Value, usize),
    /// The period report, when the export has a period.
    pub period: Option<(Value, Timestamp, Timestamp)>,
    /// Entries, receipts, confirmations and distinct listings written.
    pub entries: u64,
    pub proofs: u64,
    pub confirmations: u64,
    pub listings: u64,
    /// Uploaded documents' bytes under `blobs/sha256/`.
    pub blobs: u64,
}

/// Per evidence leaf, what an OSCAL observation needs beyond the record (which the replay
/// keeps): the shipping agent (interned), the receipt time and the `prev` link.
type Meta = HashMap<u64, (Arc<str>, Timestamp, Option<u64>)>;

/// Reads the leaves of `selection` again and stages them (when `staging` is given: the OSCAL
/// endpoint only needs the replay), then assesses them as of the checkpoint.
pub(super) async fn build(
    state: &AppState,
    opts: &ExportOptions,
    anchor: &Anchor,
    selection: &Selection,
    mut staging: Option<&mut Staging>,
    cancel: &Cancel,
) -> Result<Built, ExportError> {
    let size = anchor.stored.size;
    let receipts = opts.system.is_some() || opts.receipts;
    let mut entries_file = match staging.as_deref() {
        Some(s) => Some(s.create(layout::ENTRIES)?),
        None => None,
    };
    let mut index_file = match (staging.as_deref(), &selection) {
        (Some(s), Selection::Some(_)) => Some(s.create(layout::INDEX)?),
        _ => None,
    };
    let wanted: Option<BTreeSet<u64>> = match selection {
        Selection::All => None,
        Selection::Some(v) => Some(v.iter().copied().collect()),
    };
    let mut replay = ReplayBuilder::new();
    let mut meta: Meta = HashMap::new();
    let mut agents: BTreeSet<Arc<str>> = BTreeSet::new();
    let mut built = Built {
        oscal: (Value::Null, 0),
        period: None,
        entries: 0,
        proofs: 0,
        confirmations: 0,
        listings: 0,
        blobs: 0,
    };
    let mut pages = Pages::new(size);
    while let Some(page) = pages.next(state, cancel).await? {
        for (i, bytes) in page {
            if wanted.as_ref().is_some_and(|w| !w.contains(&i)) {
                continue;
            }
            let entry = LedgerEntry::parse(&bytes)
                .map_err(|err| ledger_err(format!("entry {i} does not parse: {err}")))?;
            let id = entry
                .subject_id()
                .map_err(|err| ledger_err(format!("entry {i}: {err}")))?;
            if let Some(f) = entries_file.as_mut() {
                f.write_all(&bytes)?;
                f.write_all(b"\n")?;
            }
            if let Some(f) = index_file.as_mut() {
                writeln!(f, "{i}")?;
            }
            built.entries += 1;
            let mut listing: Option<Listing> = None;
            if let Some(c) = &entry.confirmation {
                built.confirmations += 1;
                let bytes = state
                    .store
                    .confirmation_listing(c.digest.as_str())
                    .await?
                    .ok_or_else(|| {
                        ledger_err(format!(
                            "the listing {} of confirmation leaf {i} is not stored",
                            c.digest
                        ))
                    })?;
                let parsed = Listing::parse_canonical(&bytes)
                    .map_err(|e| ledger_err(format!("the listing {}: {e}", c.digest)))?;
                if !c.matches(&parsed).map_err(ledger_err)? {
                    return Err(ledger_err(format!(
                        "the stored listing {} does not match confirmation leaf {i}",
                        c.digest
                    )));
                }
                let path = format!("{}{}.json", layout::LISTINGS_DIR, c.digest);
                if let Some(s) = staging.as_deref_mut()
                    && !s.contains(&path)
                {
                    s.put(&path, &bytes)?;
                    built.listings += 1;
                }
                listing = Some(parsed);
            }
            if entry.record.is_some() {
                let agent = match agents.get(entry.agent.as_str()) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = Arc::from(entry.agent.as_str());
                        agents.insert(a.clone());
                        a
                    }
                };
                meta.insert(i, (agent, entry.received_at, entry.prev));
            }
            if opts.blobs
                && let Some(r) = &entry.record
                && aims_model::upload::is_upload(r)
                && let Some(s) = staging.as_deref_mut()
                && stage_blob(state, s, &r.sha256).await?
            {
                built.blobs += 1;
            }
            replay
                .push(i, &entry, listing.as_ref())
                .map_err(ledger_err)?;
            if receipts && let Some(s) = staging.as_deref_mut() {
                let hashes = state.store.inclusion_proof(i, size).await?;
                // The stored subtree hashes must agree with the entries the first pass hashed.
                merkle::verify_inclusion(
                    &merkle::leaf_hash(&bytes),
                    i,
                    size,
                    &hashes,
                    &anchor.stored.root,
                )
                .map_err(|e| ledger_err(format!("the stored proof of leaf {i}: {e}")))?;
                let proof = TlogProof {
                    extra: None,
                    index: i,
                    hashes,
                    checkpoint_note: anchor.stored.note.clone(),
                };
                s.put(
                    &format!("{}{id}{}", layout::PROOFS_DIR, layout::PROOF_SUFFIX),
                    proof.encode().as_bytes(),
                )?;
                built.proofs += 1;
            }
        }
    }
    if let Some(s) = staging {
        if let Some(f) = entries_file {
            s.commit(f)?;
        }
        if let Some(f) = index_file {
            s.commit(f)?;
        }
        if let Some(m) = opts.since {
            let proof = state.store.consistency_proof(m, size).await?;
            let text: String = proof
                .iter()
                .map(|h| format!("{}\n", B64.encode(h)))
                .collect();
            s.put(
                &format!("{}{m}-{size}.txt", layout::CONSISTENCY_DIR),
                text.as_bytes(),
            )?;
        }
    }
    cancel.check()?;
    let replay = Arc::new(replay.finish());
    let time = checkpoint_time(anchor)?;
    built.oscal = oscal_results(state, opts, anchor, time, &replay, &meta).await?;
    if let Some((from, to)) = opts.period {
        built.period = Some(period_report(state, opts, &replay, from, to.min(time)).await?);
    }
    Ok(built)
}

/// The checkpoint's cosigned time as a timestamp.
pub(super) fn checkpoint_time(anchor: &Anchor) -> Result<Timestamp, ExportError> {
    i64::try_from(anchor.time)
        .ok()
        .and_then(Timestamp::from_unix_secs)
        .ok_or_else(|| ledger_err("cosigned time out of range"))
}

/// The OSCAL assessment results of the replayed scope as of the checkpoint (or the period's
/// end), with its observation count: one finding per (system, control) and one observation per
/// record the statuses and findings rest on. The whole history is in `log/entries.jsonl`; an
/// observation per historical record made the document ~14× the entries (issue 17).
async fn oscal_results(
    state: &AppState,
    opts: &ExportOptions,
    anchor: &Anchor,
    time: Timestamp,
    replay: &Arc<Replay>,
    meta: &Meta,
) -> Result<(Value, usize), ExportError> {
    let catalog = state.catalog.clone();
    let only = opts.system.clone();
    let r = replay.clone();
    // A period's OSCAL states the status at the period's end, as the server knew it then.
    let now = match opts.period {
        Some((_, to)) if to < time => to,
        _ => time,
    };
    let assessed = tokio::task::spawn_blocking(move || {
        if now < time {
            r.as_of(now).assess(&catalog, only.as_deref(), now)
        } else {
            r.assess(&catalog, only.as_deref(), now)
        }
    })
    .await
    .map_err(|e| ledger_err(format!("assessment task failed: {e}")))?;
    let systems: Vec<(String, Vec<ControlView>)> = assessed
        .into_iter()
        .map(|a| (a.system, a.controls))
        .collect();
    let referenced: BTreeSet<&str> = systems
        .iter()
        .flat_map(|(_, views)| views)
        .flat_map(|v| {
            v.evidence.iter().map(|e| e.record_id.as_str()).chain(
                v.findings
                    .iter()
                    .flat_map(|f| f.evidence.iter())
                    .map(|e| e.as_str()),
            )
        })
        .collect();
    let records: Vec<StoredEvidence> = replay
        .systems
        .values()
        .flatten()
        .filter(|e| referenced.contains(e.record_id.as_str()))
        .filter_map(|e| {
            let (agent, received_at, prev) = meta.get(&e.leaf_index)?;
            Some(StoredEvidence {
                record_id: e.record_id.clone(),
                leaf_index: e.leaf_index,
                record: e.record.clone(),
                agent: agent.to_string(),
                received_at: *received_at,
                prev: *prev,
                confirmed_at: None,
            })
        })
        .collect();
    let ar = oscal::assessment_results(&oscal::OscalInput {
        catalog: &state.catalog,
        origin: state.keys.origin(),
        systems: &systems,
        records: &records,
        checkpoint: &anchor.stored,
        generated_at: time,
        blob_href: None,
        period: opts.period.map(|(from, to)| (from, to.min(time))),
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

/// The audit period's report, from the bundled entries only (what aims-verify redoes); the
/// period was checked non-empty before the export started.
async fn period_report(
    state: &AppState,
    opts: &ExportOptions,
    replay: &Arc<Replay>,
    from: Timestamp,
    to: Timestamp,
) -> Result<(Value, Timestamp, Timestamp), ExportError> {
    let ids: Vec<String> = match &opts.system {
        Some(s) => vec![s.clone()],
        None => replay.systems.keys().cloned().collect(),
    };
    let catalog = state.catalog.clone();
    let replay = replay.clone();
    let report = tokio::task::spawn_blocking(move || {
        aims_catalog::history::period_report(&catalog, &replay, &ids, from, to)
    })
    .await
    .map_err(|e| ledger_err(format!("report task failed: {e}")))?;
    let value = serde_json::to_value(&report).map_err(ledger_err)?;
    Ok((value, from, to))
}

/// Stages the bytes of an uploaded document under `blobs/sha256/<digest>` (once), checking on
/// the way that they still hash to their name; returns whether it was staged now. A blob the
/// store no longer holds is left out (the verifier checks the blobs a bundle has).
async fn stage_blob(
    state: &AppState,
    staging: &mut Staging,
    sha256: &aims_model::ContentHash,
) -> Result<bool, ExportError> {
    let path = format!("{}{sha256}", layout::BLOBS_DIR);
    if staging.contains(&path) {
        return Ok(false);
    }
    let Some(blob) = state.store.blob(sha256).await? else {
        tracing::warn!(%sha256, "an uploaded document's bytes are not in the blob store; left out");
        return Ok(false);
    };
    let mut f = staging.create(&path)?;
    match blob.data {
        aims_store::BlobData::Bytes(b) => f.write_all(&b)?,
        aims_store::BlobData::File(p) => {
            let mut src = std::fs::File::open(p)?;
            std::io::copy(&mut src, &mut f)?;
        }
    }
    staging.commit(f)?;
    if staging.digest(&path) != Some(sha256.as_str()) {
        return Err(ledger_err(format!(
            "the stored blob {sha256} does not hash to its name"
        )));
    }
    Ok(true)
}
