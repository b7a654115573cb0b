//! [`LedgerStore`] for both backends (see [`crate::portable`]): the reads, and the two appends
//! (evidence and confirmations) as one sequence over a few operations each backend provides:
//! `begin_append` (take the append lock, open the transaction, read the size) and
//! `commit_append` (commit, release the lock), `held_records`,
//! `newest_entries`, `Ops` (the [`crate::append::AppendOps`] of [`append`]) and `mark_seen`; plus
//! `tree_size`, `fill_hashes` and `append_lock_available`.

use std::collections::HashMap;
use std::time::Duration;

use aims_ledger::merkle::{Hash, NodeId};
use aims_model::{EvidenceRecord, Timestamp};
use async_trait::async_trait;

use crate::append::append;
use crate::decode::{self, CheckpointRow, EntryColumns, EvidenceRow, signed};
use crate::hashes::ids_in_order;
use crate::ingest::{self, ArtifactKey, CONFIRMED, NewLeaf};
use crate::portable::portable;
use crate::{
    CheckpointSigner, ConfirmationInput, ConfirmationOutcome, EntryRow, IngestOutcome,
    LedgerEntryRow, LedgerStore, StoreError, StoredCheckpoint, StoredEvidence,
};

/// Evidence with its artifact's newest confirmation time, as [`EvidenceRow`]; the caller adds
/// the `WHERE`.
const EVIDENCE: &str = "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
     LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
         AND s.sha256 = e.sha256 AND e.event = 'observed'";

/// Checkpoints as [`CheckpointRow`]; the caller adds the `WHERE` or `ORDER BY`.
const CHECKPOINTS: &str = "SELECT size, root, note, created_at FROM ledger_checkpoints";

/// A bound on a range of leaves as stored: past the ledger's range there is nothing to read.
fn clamped(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

portable! {
    /// Stores the checkpoint an append signed, on the append transaction's connection.
    pub(crate) async fn insert_checkpoint(
        conn: &mut Conn,
        cp: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(signed(cp.size)?)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The checkpoint of the newest size at most `size`: what an ingest that appended nothing
    /// answers with (another writer may have grown the tree since).
    pub(crate) async fn checkpoint_at_most(
        s: &S,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<CheckpointRow> =
            sqlx::query_as(&format!("{CHECKPOINTS} WHERE size <= $1 ORDER BY size DESC LIMIT 1"))
                .bind(signed(size)?)
                .fetch_optional(s.reader())
                .await?;
        row.map(decode::checkpoint).transpose()
    }

    #[async_trait]
    impl LedgerStore for S {
        async fn ingest(
            &self,
            agent: &str,
            records: &[EvidenceRecord],
            received_at: Timestamp,
            signer: &(dyn CheckpointSigner + Sync),
        ) -> Result<IngestOutcome, StoreError> {
            let ids = ingest::record_ids(records)?;
            let (lock, mut tx, start) = backend::begin_append(self).await?;
            let held = backend::held_records(&mut tx, &ids).await?;
            let keys = ingest::keys_to_look_up(records, &ids, &held);
            let newest = backend::newest_entries(&mut tx, &keys).await?;
            let plan = ingest::plan(records, ids, agent, received_at, start, &held, &newest)?;
            let next = start + plan.leaves.len() as u64;
            let ops = &mut backend::Ops(&mut tx);
            let checkpoint = append(ops, start, &plan.leaves, agent, received_at, signer).await?;
            backend::commit_append(lock, tx).await?;
            let checkpoint = match checkpoint {
                Some(cp) => Some(cp),
                None => checkpoint_at_most(self, next).await?,
            };
            Ok(IngestOutcome {
                results: plan.results,
                tree_size: next,
                checkpoint,
                systems_touched: plan.touched,
            })
        }

        async fn ingest_confirmation(
            &self,
            agent: &str,
            input: &ConfirmationInput<'_>,
            received_at: Timestamp,
            signer: &(dyn CheckpointSigner + Sync),
        ) -> Result<ConfirmationOutcome, StoreError> {
            let c = input.confirmation;
            let id = c
                .confirmation_id()
                .map_err(|e| StoreError::Encoding(e.to_string()))?;
            let (lock, mut tx, start) = backend::begin_append(self).await?;
            let held = backend::held_records(&mut tx, std::slice::from_ref(&id)).await?;
            // Which listed artifacts the ledger holds with the listed content, and the source's
            // previous confirmation (locator "").
            let source_key: ArtifactKey = (c.source.id.clone(), String::new());
            let mut keys: Vec<ArtifactKey> = input
                .artifacts
                .iter()
                .map(|a| (c.source.id.clone(), a.locator.clone()))
                .collect();
            keys.push(source_key.clone());
            let newest = backend::newest_entries(&mut tx, &keys).await?;
            let (matched, touched) = ingest::matched(c, input.artifacts, &newest);
            let (leaf_index, duplicate, checkpoint) = match held.get(id.as_str()) {
                Some(&idx) => (idx, true, None),
                None => {
                    let prev = newest.get(&source_key).map(|n| n.idx);
                    let leaf = NewLeaf::confirmation(start, c, agent, received_at, prev)?;
                    let leaves = std::slice::from_ref(&leaf);
                    let ops = &mut backend::Ops(&mut tx);
                    let cp = append(ops, start, leaves, agent, received_at, signer).await?;
                    sqlx::query(
                        "INSERT INTO confirmation_listings (digest, body) VALUES ($1, $2) \
                         ON CONFLICT (digest) DO NOTHING",
                    )
                    .bind(c.digest.as_str())
                    .bind(input.listing)
                    .execute(&mut *tx)
                    .await?;
                    let at = c.observed_at.to_string();
                    backend::mark_seen(&mut tx, c, &matched, &at, start).await?;
                    // The later of the stored and the new time (NULL counts as never).
                    sqlx::query(
                        "INSERT INTO source_health (agent, source_id, source_type, \
                             interval_secs, last_confirmed_at) VALUES ($1, $2, $3, 0, $4) \
                         ON CONFLICT (agent, source_id) DO UPDATE SET last_confirmed_at = \
                             CASE WHEN source_health.last_confirmed_at > excluded.last_confirmed_at \
                             THEN source_health.last_confirmed_at \
                             ELSE excluded.last_confirmed_at END",
                    )
                    .bind(&c.agent)
                    .bind(&c.source.id)
                    .bind(c.source.source_type.as_str())
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
                    (start, false, cp)
                }
            };
            backend::commit_append(lock, tx).await?;
            let tree_size = if duplicate { start } else { start + 1 };
            let checkpoint = match checkpoint {
                Some(cp) => Some(cp),
                None => checkpoint_at_most(self, tree_size).await?,
            };
            let matched_n = matched.len() as u64;
            Ok(ConfirmationOutcome {
                confirmation_id: id,
                leaf_index,
                duplicate,
                matched: matched_n,
                unmatched: input.artifacts.len() as u64 - matched_n,
                tree_size,
                checkpoint,
                systems_touched: if duplicate { Vec::new() } else { touched },
            })
        }

        async fn confirmation_listing(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(
                sqlx::query_scalar("SELECT body FROM confirmation_listings WHERE digest = $1")
                    .bind(digest)
                    .fetch_optional(self.reader())
                    .await?,
            )
        }

        async fn history(&self, system: &str) -> Result<Vec<StoredEvidence>, StoreError> {
            let rows: Vec<EvidenceRow> =
                sqlx::query_as(&format!("{EVIDENCE} WHERE e.system = $1 ORDER BY e.idx"))
                    .bind(system)
                    .fetch_all(self.reader())
                    .await?;
            rows.into_iter()
                .map(|r| decode::in_system(decode::evidence(r)?, system))
                .collect()
        }

        async fn evidence(&self, record_id: &str) -> Result<Option<StoredEvidence>, StoreError> {
            let row: Option<EvidenceRow> =
                sqlx::query_as(&format!("{EVIDENCE} WHERE e.record_id = $1 AND e.event <> $2"))
                    .bind(record_id)
                    .bind(CONFIRMED)
                    .fetch_optional(self.reader())
                    .await?;
            row.map(decode::evidence).transpose()
        }

        async fn evidence_by_sha256(
            &self,
            sha256: &str,
            limit: u32,
        ) -> Result<Vec<StoredEvidence>, StoreError> {
            let rows: Vec<EvidenceRow> = sqlx::query_as(&format!(
                "{EVIDENCE} WHERE e.sha256 = $1 AND e.event <> $2 ORDER BY e.idx LIMIT $3"
            ))
            .bind(sha256)
            .bind(CONFIRMED)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
            rows.into_iter().map(decode::evidence).collect()
        }

        async fn evidence_by_source(
            &self,
            source: &str,
            limit: u32,
        ) -> Result<Vec<StoredEvidence>, StoreError> {
            let rows: Vec<EvidenceRow> = sqlx::query_as(&format!(
                "{EVIDENCE} WHERE e.source_id = $1 AND e.event <> $2 ORDER BY e.idx DESC LIMIT $3"
            ))
            .bind(source)
            .bind(CONFIRMED)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
            rows.into_iter().map(decode::evidence).collect()
        }

        async fn entries(&self, start: u64, limit: u64) -> Result<Vec<LedgerEntryRow>, StoreError> {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT idx, entry FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            )
            .bind(clamped(start))
            .bind(clamped(limit))
            .fetch_all(self.reader())
            .await?;
            decode::entry_rows(rows)
        }

        async fn system_entries(&self, system: &str) -> Result<Vec<LedgerEntryRow>, StoreError> {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT idx, entry FROM ledger_entries WHERE system = $1 \
                 UNION ALL \
                 SELECT idx, entry FROM ledger_entries WHERE event = $2 AND locator = '' \
                     AND source_id IN \
                         (SELECT DISTINCT source_id FROM ledger_entries WHERE system = $1) \
                 ORDER BY idx",
            )
            .bind(system)
            .bind(CONFIRMED)
            .fetch_all(self.reader())
            .await?;
            decode::entry_rows(rows)
        }

        async fn entry_rows(&self, start: u64, limit: u64) -> Result<Vec<EntryRow>, StoreError> {
            let rows: Vec<EntryColumns> = sqlx::query_as(&format!(
                "SELECT {} FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                decode::ENTRY_COLUMNS
            ))
            .bind(signed(start)?)
            .bind(signed(limit)?)
            .fetch_all(self.reader())
            .await?;
            decode::full_entry_rows(rows)
        }

        async fn append_lock_available(&self, timeout: Duration) -> Result<bool, StoreError> {
            backend::append_lock_available(self, timeout).await
        }

        async fn system_ids(&self) -> Result<Vec<String>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT system FROM ledger_entries WHERE system <> '' ORDER BY system",
            )
            .fetch_all(self.reader())
            .await?)
        }

        async fn tree_size(&self) -> Result<u64, StoreError> {
            backend::tree_size(self).await
        }

        async fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
            let mut conn = self.reader().acquire().await?;
            let mut map = HashMap::with_capacity(ids.len());
            backend::fill_hashes(&mut conn, &mut map, ids).await?;
            ids_in_order(&map, ids)
        }

        async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
            let row: Option<CheckpointRow> =
                sqlx::query_as(&format!("{CHECKPOINTS} ORDER BY size DESC LIMIT 1"))
                    .fetch_optional(self.reader())
                    .await?;
            row.map(decode::checkpoint).transpose()
        }

        async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
            let Ok(size) = i64::try_from(size) else {
                return Ok(None);
            };
            let row: Option<CheckpointRow> =
                sqlx::query_as(&format!("{CHECKPOINTS} WHERE size = $1"))
                    .bind(size)
                    .fetch_optional(self.reader())
                    .await?;
            row.map(decode::checkpoint).transpose()
        }

        async fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
            // Re-signing the same head replaces the note; a different root for a size already
            // signed is left alone.
            let w = self.writer().await;
            sqlx::query(
                "INSERT INTO ledger_checkpoints (size, root, note, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (size) DO UPDATE SET note = excluded.note, \
                     created_at = excluded.created_at \
                 WHERE ledger_checkpoints.root = excluded.root",
            )
            .bind(signed(cp.size)?)
            .bind(&cp.root[..])
            .bind(&cp.note)
            .bind(cp.created_at.to_string())
            .execute(&*w)
            .await?;
            Ok(())
        }
    }
}
