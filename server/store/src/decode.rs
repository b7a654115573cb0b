//! Decoding of the rows and the JSON the stores keep, shared by both backends so they answer
//! identically: each row type is the tuple both select, with checked integer conversions.

use aims_ledger::LedgerEntry;
use aims_model::wire::{ControlView, SourceHealth, SourceStatus, StatusCounts, SystemSummary};
use aims_model::{ContentHash, Finding, Timestamp};

use crate::{Role, StoreError, StoredCheckpoint, StoredEvidence, TokenInfo, TokenScope};

/// A stored timestamp column.
pub(crate) fn ts(s: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse_utc(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An optional stored timestamp column.
pub(crate) fn opt_ts(s: Option<&str>) -> Result<Option<Timestamp>, StoreError> {
    s.map(ts).transpose()
}

/// A stored index, size or count as `u64` (the schemas keep them non-negative).
pub(crate) fn unsigned(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative index {v}")))
}

/// A `u64` as the signed 64-bit integer both schemas store.
pub(crate) fn signed(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Conflict(format!("{v} is beyond the ledger's range")))
}

/// `(idx, entry)` rows as both stores select them.
pub(crate) fn entry_rows(
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<crate::LedgerEntryRow>, StoreError> {
    rows.into_iter()
        .map(|(idx, entry)| {
            Ok(crate::LedgerEntryRow {
                index: unsigned(idx)?,
                entry,
            })
        })
        .collect()
}

/// Every column of `ledger_entries`, in the order of [`ENTRY_COLUMNS`].
pub(crate) const ENTRY_COLUMNS: &str = "idx, record_id, leaf_hash, entry, agent, received_at, \
     source_id, locator, system, kind, event, sha256, observed_at, prev";

/// A `ledger_entries` row selected as [`ENTRY_COLUMNS`], as both stores read it.
pub(crate) type EntryColumns = (
    i64,
    String,
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
);

/// Full ledger rows (integrity checks) from [`EntryColumns`].
pub(crate) fn full_entry_rows(rows: Vec<EntryColumns>) -> Result<Vec<crate::EntryRow>, StoreError> {
    rows.into_iter()
        .map(
            |(
                idx,
                record_id,
                leaf_hash,
                entry,
                agent,
                received_at,
                source_id,
                locator,
                system,
                kind,
                event,
                sha256,
                observed_at,
                prev,
            )| {
                Ok(crate::EntryRow {
                    index: unsigned(idx)?,
                    record_id,
                    leaf_hash,
                    entry,
                    agent,
                    received_at,
                    source_id,
                    locator,
                    system,
                    kind,
                    event,
                    sha256,
                    observed_at,
                    prev,
                })
            },
        )
        .collect()
}

/// A stored 32-byte hash.
pub(crate) fn hash32(v: &[u8]) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("hash of {} bytes", v.len())))
}

/// An evidence row: `idx`, `record_id`, `entry`, and the artifact's newest confirmation time.
pub(crate) type EvidenceRow = (i64, String, Vec<u8>, Option<String>);

/// Decodes an [`EvidenceRow`].
pub(crate) fn evidence(row: EvidenceRow) -> Result<StoredEvidence, StoreError> {
    let (idx, record_id, entry, confirmed_at) = row;
    let entry = LedgerEntry::parse(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let record = entry
        .record
        .ok_or_else(|| StoreError::Corrupt(format!("leaf {idx} is not an evidence entry")))?;
    let record_id =
        ContentHash::parse(&record_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let confirmed_at = opt_ts(confirmed_at.as_deref())?.filter(|c| *c > record.observed_at);
    Ok(StoredEvidence {
        record_id,
        leaf_index: unsigned(idx)?,
        agent: entry.agent,
        received_at: entry.received_at,
        prev: entry.prev,
        record,
        confirmed_at,
    })
}

/// `e`, unless its signed record belongs to another system than the `system` column it was
/// selected by (an edited column must not move evidence between systems unnoticed).
pub(crate) fn in_system(e: StoredEvidence, system: &str) -> Result<StoredEvidence, StoreError> {
    if e.record.system != system {
        return Err(StoreError::Corrupt(format!(
            "leaf {}: column system is {system:?} but the signed entry says {:?}",
            e.leaf_index, e.record.system
        )));
    }
    Ok(e)
}

/// A `ledger_checkpoints` row: size, root, note, created_at.
pub(crate) type CheckpointRow = (i64, Vec<u8>, String, String);

/// Decodes a [`CheckpointRow`].
pub(crate) fn checkpoint(row: CheckpointRow) -> Result<StoredCheckpoint, StoreError> {
    let (size, root, note, created_at) = row;
    Ok(StoredCheckpoint {
        size: unsigned(size)?,
        root: hash32(&root)?,
        note,
        created_at: ts(&created_at)?,
    })
}

/// A `systems` row: id, assessed_at, then the evidence count and the control counts (fresh,
/// stale, drifted, missing, not_applicable, excluded_controls).
pub(crate) type SystemRow = (String, String, i64, i64, i64, i64, i64, i64, i64);

/// Decodes a [`SystemRow`].
pub(crate) fn system_summary(row: SystemRow) -> Result<SystemSummary, StoreError> {
    let (id, assessed_at, evidence, fresh, stale, drifted, missing, not_applicable, excluded) = row;
    let n = |c: &str, v: i64| -> Result<u32, StoreError> {
        u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{c} count out of range")))
    };
    Ok(SystemSummary {
        id,
        controls: StatusCounts {
            fresh: n("fresh", fresh)?,
            stale: n("stale", stale)?,
            drifted: n("drifted", drifted)?,
            missing: n("missing", missing)?,
            not_applicable: n("not_applicable", not_applicable)?,
            excluded: n("excluded_controls", excluded)?,
        },
        evidence: unsigned(evidence)?,
        assessed_at: Some(ts(&assessed_at)?),
    })
}

/// A `source_health` row as both stores select it: agent, source_id, source_type,
/// interval_secs, last_poll_at, last_ok_at, last_error, last_confirmed_at, listed, records.
pub(crate) type SourceRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// The `SELECT` list matching [`SourceRow`].
pub(crate) const SOURCE_COLUMNS: &str = "agent, source_id, source_type, interval_secs, \
     last_poll_at, last_ok_at, last_error, last_confirmed_at, listed, records";

/// How long a source may go without a poll before it is silent: three intervals, at least an
/// hour (DESIGN §12.1).
pub fn silent_after_secs(interval_secs: u64) -> u64 {
    interval_secs.saturating_mul(3).max(3600)
}

/// Decodes a [`SourceRow`] and judges it as of `now`.
pub(crate) fn source_health(row: SourceRow, now: Timestamp) -> Result<SourceHealth, StoreError> {
    let (agent, source, source_type, interval, poll, ok, error, confirmed, listed, records) = row;
    let interval_secs = unsigned(interval)?;
    let last_poll_at = opt_ts(poll.as_deref())?;
    let last_ok_at = opt_ts(ok.as_deref())?;
    let last_confirmed_at = opt_ts(confirmed.as_deref())?;
    let limit = chrono::Duration::seconds(
        i64::try_from(silent_after_secs(interval_secs)).unwrap_or(i64::MAX / 2),
    );
    // A source known only from a confirmation has never reported a poll: judge its
    // confirmation time instead.
    let seen = last_poll_at.or(last_confirmed_at);
    let silent = seen.is_none_or(|t| now.as_datetime() - t.as_datetime() > limit);
    let failing = last_poll_at.is_some() && last_ok_at != last_poll_at;
    let status = if silent {
        SourceStatus::Silent
    } else if failing {
        SourceStatus::Failing
    } else {
        SourceStatus::Ok
    };
    Ok(SourceHealth {
        agent,
        source,
        source_type,
        interval_secs,
        last_confirmed_at,
        last_poll_at,
        last_ok_at,
        status,
        last_error: if failing { error } else { None },
        silent_since: if silent { seen } else { None },
        listed: unsigned(listed)?,
        records: unsigned(records)?,
    })
}

/// A `tokens` row with every scope column: name, role, expires_at, revoked_at, agent_id,
/// sources, systems (migration 0004).
pub(crate) type ScopedTokenRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The `SELECT` list matching [`ScopedTokenRow`] (columns of `tokens`, qualified by `t`).
pub(crate) const SCOPED_TOKEN_COLUMNS: &str =
    "t.name, t.role, t.expires_at, t.revoked_at, t.agent_id, t.sources, t.systems";

/// Decodes a [`ScopedTokenRow`].
pub(crate) fn scoped_token_info(row: ScopedTokenRow) -> Result<TokenInfo, StoreError> {
    let (name, role, expires_at, revoked_at, agent_id, sources, systems) = row;
    let time = |t: Option<String>| opt_ts(t.as_deref());
    let mut scope = token_scope(agent_id, sources)?;
    scope.systems = systems.as_deref().map(serde_json::from_str).transpose()?;
    Ok(TokenInfo {
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        name,
        expires_at: time(expires_at)?,
        revoked_at: time(revoked_at)?,
        scope,
    })
}

/// The `systems` column of a token scope: a JSON array, or NULL for any AI system.
pub(crate) fn scope_systems(scope: &TokenScope) -> Result<Option<String>, StoreError> {
    Ok(scope
        .systems
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?)
}

/// The `sources` column of a token scope: a JSON array, or NULL for any source.
pub(crate) fn scope_sources(scope: &TokenScope) -> Result<Option<String>, StoreError> {
    Ok(scope
        .sources
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?)
}

/// A token scope from its `agent_id` and `sources` columns.
pub(crate) fn token_scope(
    agent_id: Option<String>,
    sources: Option<String>,
) -> Result<TokenScope, StoreError> {
    Ok(TokenScope {
        agent_id,
        sources: sources.as_deref().map(serde_json::from_str).transpose()?,
        systems: None,
    })
}

/// Decodes stored control views and orders them by control ID (numerically: `A.6.2.10` after
/// `A.6.2.9`, `A.10.2` after `A.9.4`).
pub(crate) fn control_views(rows: &[String]) -> Result<Vec<ControlView>, StoreError> {
    let mut views = rows
        .iter()
        .map(|v| serde_json::from_str(v))
        .collect::<Result<Vec<ControlView>, _>>()?;
    views.sort_by_key(|v| control_order(&v.control));
    Ok(views)
}

/// Decodes stored findings, keeping the order of the rows.
pub(crate) fn findings(rows: &[String]) -> Result<Vec<Finding>, StoreError> {
    Ok(rows
        .iter()
        .map(|b| serde_json::from_str(b))
        .collect::<Result<_, _>>()?)
}

/// Sort key of a control ID.
fn control_order(id: &str) -> Vec<u32> {
    id.trim_start_matches("A.")
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}
