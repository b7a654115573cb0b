//! [`LedgerStore`] for both backends (see [`crate::portable`]): the reads, whose SQL is the same
//! on SQLite and PostgreSQL, are written here; the appends (`ingest`, `ingest_confirmation`),
//! the tree size, the subtree-hash lookup and the append-lock probe are the backend's own.

use std::collections::HashMap;
use std::time::Duration;

use aims_ledger::merkle::{Hash, NodeId};
use aims_model::{EvidenceRecord, Timestamp};
use async_trait::async_trait;

use crate::decode::{self, CheckpointRow, EntryColumns, EvidenceRow, signed};
use crate::hashes::ids_in_order;
use crate::ingest::CONFIRMED;
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
            backend::ingest(self, agent, records, received_at, signer).await
        }

        async fn ingest_confirmation(
            &self,
            agent: &str,
            input: &ConfirmationInput<'_>,
            received_at: Timestamp,
            signer: &(dyn CheckpointSigner + Sync),
        ) -> Result<ConfirmationOutcome, StoreError> {
            backend::ingest_confirmation(self, agent, input, received_at, signer).await
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
