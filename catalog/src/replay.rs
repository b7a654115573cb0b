//! The assessment as a pure function of the ledger: what the export writes and what
//! `aims-verify` recomputes from the same entries and catalog (integrity.md §6.9, issue 18 M6).
//!
//! The server's live status also uses facts outside the ledger (heartbeats: which sources are
//! silent), so it can say more in its reasons; everything that decides a status or a finding is
//! in the ledger:
//! - the records of each system, in ledger order, with the time the server received each;
//! - the confirmations, replayed in ledger order: a listed (locator, SHA-256) counts for the
//!   artifact when the newest entry of that (source id, locator) *at the confirmation's place in
//!   the ledger* is an observation with that SHA-256; the artifact's confirmation time is the
//!   newest such confirmation's `observed_at` — exactly what the server's `artifact_seen` table
//!   materialises on ingest.
//!
//! An export anchored to a checkpoint is assessed with `now` = the checkpoint's cosigned time, so
//! the verifier gets the same answer byte for byte.

use std::collections::{BTreeMap, HashMap};

use aims_ledger::LedgerEntry;
use aims_model::{
    Confirmation, ContentHash, EvidenceRecord, Listing, RecordEvent, RecordId, Timestamp,
};

use crate::assess::{Evidence, Observations, SystemAssessment, assess_with};
use crate::catalog::Catalog;

/// Why a ledger cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A confirmation names a listing that was not supplied.
    #[error("leaf {leaf}: the listing {digest} of this confirmation is missing")]
    MissingListing {
        /// The confirmation's leaf.
        leaf: u64,
        /// Its digest.
        digest: String,
    },
    /// An entry's record id cannot be computed.
    #[error("leaf {leaf}: {reason}")]
    Entry {
        /// The leaf.
        leaf: u64,
        /// Why.
        reason: String,
    },
}

/// The ledger, replayed: each system's history and what assessment needs beyond the records.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Records per system, in ledger order.
    pub systems: BTreeMap<String, Vec<Evidence>>,
    /// Receipt and (newest) confirmation times by leaf.
    pub observations: Observations,
    /// Every confirmation that matched a record's leaf, in ledger order: (when the server
    /// received the confirmation, its `observed_at`). What [`Replay::as_of`] filters.
    pub confirmations: HashMap<u64, Vec<(Timestamp, Timestamp)>>,
}

/// Builds a [`Replay`] one entry at a time, in ledger order, so a caller can stream a ledger
/// from disk or a database without holding every entry (the export does).
#[derive(Debug, Default)]
pub struct ReplayBuilder {
    out: Replay,
    /// Newest entry per (source id, locator): leaf, sha256, observed?
    newest: HashMap<(String, String), (u64, ContentHash, bool)>,
    /// No confirmation will be pushed, so `newest` (read only by confirmations) is not kept.
    records_only: bool,
}

impl ReplayBuilder {
    /// An empty replay.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty replay sized for `records` evidence entries. Without `confirmations` (the
    /// caller knows none will be pushed: the verifier has read every entry first), the newest
    /// entry per artifact, which only confirmations are matched against, is not kept, and
    /// [`ReplayBuilder::push_confirmation`] fails.
    pub fn with_capacity(records: usize, confirmations: bool) -> Self {
        let mut b = Self::default();
        b.out.observations.received.reserve(records);
        if confirmations {
            b.newest.reserve(records);
        }
        b.records_only = !confirmations;
        b
    }

    /// Adds the entry at `leaf`; a confirmation needs the listing its digest names.
    pub fn push(
        &mut self,
        leaf: u64,
        entry: &LedgerEntry,
        listing: Option<&Listing>,
    ) -> Result<(), ReplayError> {
        if let Some(r) = &entry.record {
            let record_id = r.record_id().map_err(|e| ReplayError::Entry {
                leaf,
                reason: e.to_string(),
            })?;
            self.push_record(leaf, entry.received_at, r.clone(), record_id);
        } else if let Some(c) = &entry.confirmation {
            self.push_confirmation(leaf, entry.received_at, c, listing)?;
        }
        Ok(())
    }

    /// Adds the evidence entry at `leaf` (received at `received_at`) from its parts, for a caller
    /// that already holds the record id (`record.record_id()`) and owns the record: the
    /// verifier, which has checked both against the entry's canonical bytes, saves an encoding
    /// and a copy per entry.
    pub fn push_record(
        &mut self,
        leaf: u64,
        received_at: Timestamp,
        record: EvidenceRecord,
        record_id: RecordId,
    ) {
        if !self.records_only {
            self.newest.insert(
                (record.source.id.clone(), record.locator.clone()),
                (
                    leaf,
                    record.sha256.clone(),
                    record.event == RecordEvent::Observed,
                ),
            );
        }
        self.out.observations.received.insert(leaf, received_at);
        let evidence = Evidence {
            record_id,
            leaf_index: leaf,
            record,
        };
        match self.out.systems.get_mut(&evidence.record.system) {
            Some(history) => history.push(evidence),
            None => {
                self.out
                    .systems
                    .insert(evidence.record.system.clone(), vec![evidence]);
            }
        }
    }

    /// Adds the confirmation entry at `leaf` (received at `received_at`) with the listing its
    /// digest names.
    pub fn push_confirmation(
        &mut self,
        leaf: u64,
        received_at: Timestamp,
        confirmation: &Confirmation,
        listing: Option<&Listing>,
    ) -> Result<(), ReplayError> {
        let c = confirmation;
        if self.records_only {
            return Err(ReplayError::Entry {
                leaf,
                reason: "a confirmation in a replay built for records only".to_owned(),
            });
        }
        // The caller supplies the listing the digest names (checked where it was read).
        let listing = listing.ok_or_else(|| ReplayError::MissingListing {
            leaf,
            digest: c.digest.to_string(),
        })?;
        for a in &listing.artifacts {
            let key = (c.source.id.clone(), a.locator.clone());
            let Some((target, sha, observed)) = self.newest.get(&key) else {
                continue;
            };
            if *observed && *sha == a.sha256 {
                self.out
                    .confirmations
                    .entry(*target)
                    .or_default()
                    .push((received_at, c.observed_at));
            }
        }
        Ok(())
    }

    /// The replay of every entry pushed.
    pub fn finish(self) -> Replay {
        let mut out = self.out;
        out.observations.confirmed = out.confirmed_as_of(None);
        out
    }
}

impl Replay {
    /// Replays `entries` (leaf index and entry, in ledger order; a partial export may skip
    /// leaves) with the listings of their confirmations by digest.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (u64, &'a LedgerEntry)>,
        listings: &HashMap<ContentHash, Listing>,
    ) -> Result<Self, ReplayError> {
        let mut b = ReplayBuilder::new();
        for (leaf, entry) in entries {
            let listing = entry
                .confirmation
                .as_ref()
                .and_then(|c| listings.get(&c.digest));
            b.push(leaf, entry, listing)?;
        }
        Ok(b.finish())
    }

    /// Per leaf, the newest confirmation time later than the record's own `observed_at`,
    /// counting only confirmations the server had received by `at` (all when `None`).
    pub(crate) fn confirmed_as_of(&self, at: Option<Timestamp>) -> HashMap<u64, Timestamp> {
        let mut out = HashMap::new();
        for history in self.systems.values() {
            for e in history {
                let Some(series) = self.confirmations.get(&e.leaf_index) else {
                    continue;
                };
                let best = series
                    .iter()
                    .filter(|(received, _)| at.is_none_or(|t| *received <= t))
                    .map(|(_, observed)| *observed)
                    .max();
                if let Some(t) = best.filter(|t| *t > e.record.observed_at) {
                    out.insert(e.leaf_index, t);
                }
            }
        }
        out
    }

    /// The ledger as the server knew it at `at`: only records and confirmations received by
    /// then. Systems with no record yet are absent.
    pub fn as_of(&self, at: Timestamp) -> Replay {
        let mut systems = BTreeMap::new();
        for (id, history) in &self.systems {
            let kept: Vec<Evidence> = history
                .iter()
                .filter(|e| {
                    self.observations
                        .received
                        .get(&e.leaf_index)
                        .is_some_and(|r| *r <= at)
                })
                .cloned()
                .collect();
            if !kept.is_empty() {
                systems.insert(id.clone(), kept);
            }
        }
        let mut out = Replay {
            systems,
            observations: Observations {
                received: self.observations.received.clone(),
                ..Observations::default()
            },
            confirmations: self.confirmations.clone(),
        };
        out.observations.confirmed = out.confirmed_as_of(Some(at));
        out
    }

    /// Assesses every replayed system (or only `only`) as of `now`.
    pub fn assess(
        &self,
        catalog: &Catalog,
        only: Option<&str>,
        now: Timestamp,
    ) -> Vec<SystemAssessment> {
        self.systems
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == id.as_str()))
            .map(|(id, history)| assess_with(catalog, id, history, now, &self.observations))
            .collect()
    }
}
