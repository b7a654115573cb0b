//! [`StatusStore`] for both backends (see [`crate::portable`]): source health and the
//! materialised assessment. Only the insert of a system's control and finding rows is the
//! backend's own (SQLite row by row under its single writer, PostgreSQL in one batch each), and
//! the insert of notification events (the outbox's).

use aims_model::wire::{ControlView, SourceHealth, SourceHeartbeat, StatusCounts, SystemSummary};
use aims_model::{Finding, Timestamp};
use async_trait::async_trait;

use crate::decode::{self, SourceRow, SystemRow, signed};
use crate::portable::portable;
use crate::{StatusStore, StoreError, StoredAssessment};

portable! {
    /// Inserts or replaces the `systems` row of `a` (its counts by status), inside the caller's
    /// transaction.
    pub(crate) async fn upsert_system(
        conn: &mut Conn,
        a: &StoredAssessment,
    ) -> Result<(), StoreError> {
        let mut counts = StatusCounts::default();
        for c in &a.controls {
            counts.add(c.status);
        }
        sqlx::query(
            "INSERT INTO systems (id, assessed_at, evidence, fresh, stale, drifted, missing, \
                 not_applicable, excluded_controls) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET assessed_at = excluded.assessed_at, \
                 evidence = excluded.evidence, fresh = excluded.fresh, stale = excluded.stale, \
                 drifted = excluded.drifted, missing = excluded.missing, \
                 not_applicable = excluded.not_applicable, \
                 excluded_controls = excluded.excluded_controls",
        )
        .bind(&a.system)
        .bind(a.assessed_at.to_string())
        .bind(signed(a.evidence)?)
        .bind(i64::from(counts.fresh))
        .bind(i64::from(counts.stale))
        .bind(i64::from(counts.drifted))
        .bind(i64::from(counts.missing))
        .bind(i64::from(counts.not_applicable))
        .bind(i64::from(counts.excluded))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The findings a system's assessment is about to replace.
    async fn current_findings(conn: &mut Conn, system: &str) -> Result<Vec<Finding>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT body FROM findings WHERE system = $1")
            .bind(system)
            .fetch_all(&mut *conn)
            .await?;
        decode::findings(&rows)
    }

    /// Deletes a system's `control_status` and `findings` rows (before its new ones go in).
    pub(crate) async fn clear_system(conn: &mut Conn, system: &str) -> Result<(), StoreError> {
        for table in ["control_status", "findings"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE system = $1"))
                .bind(system)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    #[async_trait]
    impl StatusStore for S {
        async fn put_heartbeats(
            &self,
            agent: &str,
            beats: &[SourceHeartbeat],
        ) -> Result<(), StoreError> {
            let w = self.writer().await;
            let mut tx = w.begin().await?;
            for b in beats {
                let at = b.polled_at.to_string();
                sqlx::query(
                    "INSERT INTO source_health (agent, source_id, source_type, interval_secs, \
                         last_poll_at, last_ok_at, last_error, listed, records) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (agent, source_id) DO UPDATE SET \
                         source_type = excluded.source_type, \
                         interval_secs = excluded.interval_secs, \
                         last_poll_at = excluded.last_poll_at, \
                         last_ok_at = COALESCE(excluded.last_ok_at, source_health.last_ok_at), \
                         last_error = excluded.last_error, listed = excluded.listed, \
                         records = excluded.records \
                     WHERE source_health.last_poll_at IS NULL \
                        OR source_health.last_poll_at <= excluded.last_poll_at",
                )
                .bind(agent)
                .bind(&b.source.id)
                .bind(b.source.source_type.as_str())
                .bind(signed(b.interval_secs)?)
                .bind(&at)
                .bind(b.ok.then_some(at.as_str()))
                .bind(&b.error)
                .bind(signed(b.listed)?)
                .bind(signed(b.records)?)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn sources(&self, now: Timestamp) -> Result<Vec<SourceHealth>, StoreError> {
            let rows: Vec<SourceRow> = sqlx::query_as(&format!(
                "SELECT {} FROM source_health ORDER BY agent, source_id",
                decode::SOURCE_COLUMNS
            ))
            .fetch_all(self.reader())
            .await?;
            rows.into_iter()
                .map(|r| decode::source_health(r, now))
                .collect()
        }

        async fn put_assessment(&self, a: &StoredAssessment) -> Result<(), StoreError> {
            let w = self.writer().await;
            let mut tx = w.begin().await?;
            // The upsert comes first: on PostgreSQL it locks the system's row, so two replicas
            // replacing the same system's assessment take turns, and the findings read next are
            // the ones this transaction replaces.
            upsert_system(&mut tx, a).await?;
            if let Some(extra) = &a.events {
                let old = current_findings(&mut tx, &a.system).await?;
                let mut events =
                    crate::outbox::finding_events(&a.system, &old, &a.findings, a.assessed_at)?;
                events.extend(extra.iter().cloned());
                backend::insert_events(&mut tx, &events).await?;
            }
            clear_system(&mut tx, &a.system).await?;
            backend::insert_assessment_rows(&mut tx, a).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn systems(&self) -> Result<Vec<SystemSummary>, StoreError> {
            let rows: Vec<SystemRow> = sqlx::query_as(
                "SELECT id, assessed_at, evidence, fresh, stale, drifted, missing, \
                 not_applicable, excluded_controls FROM systems ORDER BY id",
            )
            .fetch_all(self.reader())
            .await?;
            rows.into_iter().map(decode::system_summary).collect()
        }

        async fn system_controls(
            &self,
            system: &str,
        ) -> Result<Option<Vec<ControlView>>, StoreError> {
            let known: Option<String> = sqlx::query_scalar("SELECT id FROM systems WHERE id = $1")
                .bind(system)
                .fetch_optional(self.reader())
                .await?;
            if known.is_none() {
                return Ok(None);
            }
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT view FROM control_status WHERE system = $1 ORDER BY control",
            )
            .bind(system)
            .fetch_all(self.reader())
            .await?;
            Ok(Some(decode::control_views(&rows)?))
        }

        async fn findings(&self, system: Option<&str>) -> Result<Vec<Finding>, StoreError> {
            let rows: Vec<String> = match system {
                Some(s) => {
                    sqlx::query_scalar(
                        "SELECT body FROM findings WHERE system = $1 ORDER BY kind, since, id",
                    )
                    .bind(s)
                    .fetch_all(self.reader())
                    .await?
                }
                None => {
                    sqlx::query_scalar(
                        "SELECT body FROM findings ORDER BY system, kind, since, id",
                    )
                    .fetch_all(self.reader())
                    .await?
                }
            };
            decode::findings(&rows)
        }

        async fn finding_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT kind, COUNT(*) FROM findings GROUP BY kind ORDER BY kind")
                    .fetch_all(self.reader())
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                .collect())
        }
    }
}
