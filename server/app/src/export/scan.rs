//! The export's first pass: the checkpoint it is anchored to, and one streaming read of the
//! ledger up to it that recomputes the signed root (a stored ledger that contradicts its
//! checkpoint is never exported) and chooses the leaves in scope. Memory: O(log n) for the
//! root; for a partial export, one `prev` link per leaf.

use std::collections::BTreeSet;

use aims_ledger::checkpoint::verify_checkpoint;
use aims_ledger::merkle::{self, RootBuilder};
use aims_ledger::note::{self, cosignature_message};
use aims_store::{LedgerEntry, StoredCheckpoint};

use super::{Cancel, ExportError, PAGE, ledger_err};
use crate::AppState;

/// The checkpoint the export is anchored to, with the pieces openssl needs.
pub(super) struct Anchor {
    pub stored: StoredCheckpoint,
    pub body: String,
    pub log_sig: Vec<u8>,
    pub cosig_msg: String,
    pub cosig_sig: Vec<u8>,
    /// The clock's cosigned time (unix seconds).
    pub time: u64,
}

/// The newest checkpoint, checked against this server's keys.
pub(super) fn anchor(state: &AppState, stored: StoredCheckpoint) -> Result<Anchor, ExportError> {
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

/// Which leaves an export carries.
pub(super) enum Selection {
    /// Every leaf `0..size` (a full export).
    All,
    /// These leaves, ascending (a partial export).
    Some(Vec<u64>),
}

/// Reads the entries `0..size` a page at a time, in order; fails on a gap or a reordering.
pub(super) struct Pages {
    next: u64,
    size: u64,
}

impl Pages {
    /// Every entry below `size`.
    pub fn new(size: u64) -> Self {
        Self { next: 0, size }
    }

    /// The next page of (index, stored bytes), or `None` at the end.
    pub async fn next(
        &mut self,
        state: &AppState,
        cancel: &Cancel,
    ) -> Result<Option<Vec<(u64, Vec<u8>)>>, ExportError> {
        if self.next >= self.size {
            return Ok(None);
        }
        cancel.check()?;
        let (next, size) = (self.next, self.size);
        let rows = state.store.entries(next, PAGE.min(size - next)).await?;
        if rows.is_empty() {
            return Err(ledger_err(format!(
                "entry {next} is missing below the checkpoint size {size}"
            )));
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if row.index != self.next {
                return Err(ledger_err(format!(
                    "expected entry {}, the store returned {}",
                    self.next, row.index
                )));
            }
            out.push((row.index, row.entry));
            self.next += 1;
            if self.next == size {
                break;
            }
        }
        Ok(Some(out))
    }
}

/// The first pass: recomputes the root of `0..size` and compares it with the anchor's; chooses
/// the leaves in scope: everything, or one system's evidence plus every earlier version its
/// `prev` chains reach (so the verifier can check no version was left out) plus the
/// confirmations of the sources that system's evidence came from.
pub(super) async fn scan(
    state: &AppState,
    anchor: &Anchor,
    system: Option<&str>,
    cancel: &Cancel,
) -> Result<Selection, ExportError> {
    let size = anchor.stored.size;
    let mut root = RootBuilder::new();
    // Partial exports only: prev link per leaf (u64::MAX: none), the system's leaves, the
    // sources they came from and every confirmation with its source.
    let mut prevs: Vec<u64> = Vec::new();
    let mut stack: Vec<u64> = Vec::new();
    let mut sources: BTreeSet<String> = BTreeSet::new();
    let mut confirmations: Vec<(u64, String)> = Vec::new();
    let mut pages = Pages::new(size);
    while let Some(page) = pages.next(state, cancel).await? {
        for (i, bytes) in page {
            root.push(merkle::leaf_hash(&bytes));
            let Some(system) = system else {
                continue;
            };
            let e = LedgerEntry::parse(&bytes)
                .map_err(|err| ledger_err(format!("entry {i} does not parse: {err}")))?;
            prevs.push(e.prev.unwrap_or(u64::MAX));
            if let Some(r) = &e.record
                && r.system == system
            {
                stack.push(i);
                sources.insert(r.source.id.clone());
            } else if let Some(c) = &e.confirmation {
                confirmations.push((i, c.source.id.clone()));
            }
        }
    }
    if root.root() != anchor.stored.root {
        return Err(ledger_err(
            "the stored entries do not hash to the checkpoint's root",
        ));
    }
    let Some(system) = system else {
        return Ok(Selection::All);
    };
    if stack.is_empty() {
        return Err(ExportError::NotFound(format!(
            "no evidence for system {system:?} up to the checkpoint (size {size})"
        )));
    }
    stack.extend(
        confirmations
            .into_iter()
            .filter(|(_, s)| sources.contains(s))
            .map(|(i, _)| i),
    );
    let mut set: BTreeSet<u64> = BTreeSet::new();
    while let Some(i) = stack.pop() {
        if set.insert(i)
            && let Some(&p) = usize::try_from(i).ok().and_then(|i| prevs.get(i))
            && p < i
        {
            stack.push(p);
        }
    }
    Ok(Selection::Some(set.into_iter().collect()))
}
