//! SQLite implementation of [`Store`]: one database file in WAL mode, the embedded default.
//!
//! Concurrency: reads go through a pool of connections; every write goes through a single
//! dedicated connection guarded by an async mutex, so ledger appends are strictly serialised
//! within the process. SQLite's own file lock serialises writers across processes, but only one
//! server process should own a SQLite file (use PostgreSQL for replicas).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::Mutex;

use aims_model::wire::{ControlView, SourceHealth, SourceHeartbeat, StatusCounts, SystemSummary};
use aims_model::{ContentHash, EvidenceRecord, Finding, Timestamp};

use crate::append::{AppendOps, append};
use crate::decode::{self, hash32, signed, ts, unsigned};
use crate::hashes::ids_in_order;
use crate::ingest::{self, ArtifactKey, CONFIRMED, NewLeaf, Newest};
use crate::{
    AccessStore, CheckpointSigner, ConfirmationInput, ConfirmationOutcome, IngestOutcome,
    LedgerEntryRow, LedgerStore, NewToken, StatusStore, StoreError, StoredAssessment,
    StoredCheckpoint, StoredEvidence, TokenInfo,
};
use aims_ledger::merkle::{Hash, NodeId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    read: SqlitePool,
    write: Mutex<SqlitePool>,
    /// `aims-blobs/` beside the database file: uploaded evidence by SHA-256 (`blobs.rs`).
    blobs: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) `sqlite://PATH` or `sqlite:PATH`, applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Url {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a batch the server acknowledged survives power loss, not just a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let file = opts.get_filename();
        let blobs = match file.parent() {
            Some(dir) if file.to_str() != Some(":memory:") => dir.join("aims-blobs"),
            _ => std::env::temp_dir().join(format!("aims-blobs-{}", std::process::id())),
        };
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self {
            read,
            write: Mutex::new(write),
            blobs,
        })
    }

    /// Closes the pools (waits for in-flight queries).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.lock().await.close().await;
    }

    // Issue 18: the pools for the session and token-scope queries in `sessions.rs`.
    pub(crate) fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) fn write_pool(&self) -> &Mutex<SqlitePool> {
        &self.write
    }
}

/// Most node IDs per hash query (two bound parameters each; SQLite allows 32766).
const HASH_CHUNK: usize = 256;

/// Reads the stored hashes of `ids` into `map` (skipping those already there), with one query
/// per [`HASH_CHUNK`] nodes rather than one per node. Absent nodes are left out of the map.
async fn fill_hashes(
    conn: &mut SqliteConnection,
    map: &mut HashMap<NodeId, Hash>,
    ids: &[NodeId],
) -> Result<(), StoreError> {
    let want: Vec<NodeId> = ids
        .iter()
        .filter(|id| !map.contains_key(id))
        .copied()
        .collect();
    for chunk in want.chunks(HASH_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH want(level, idx) AS (");
        q.push_values(chunk, |mut b, id| {
            b.push_bind(i64::from(id.level))
                .push_bind(i64::try_from(id.index).unwrap_or(i64::MAX));
        });
        q.push(
            ") SELECT h.level, h.idx, h.hash FROM ledger_hashes h \
             JOIN want w ON h.level = w.level AND h.idx = w.idx",
        );
        for row in q.build().fetch_all(&mut *conn).await? {
            let level = u8::try_from(row.try_get::<i64, _>(0)?)
                .map_err(|_| StoreError::Corrupt("subtree level out of range".to_owned()))?;
            let id = NodeId::new(level, unsigned(row.try_get::<i64, _>(1)?)?);
            map.insert(id, hash32(row.try_get::<&[u8], _>(2)?)?);
        }
    }
    Ok(())
}

/// Most ledger rows per INSERT (14 bound parameters each; SQLite allows 32766).
const ENTRY_CHUNK: usize = 500;
/// Most record IDs or artifact keys per lookup query.
const LOOKUP_CHUNK: usize = 500;

/// The leaf index of every record ID in `ids` that the ledger already holds, one query per
/// [`LOOKUP_CHUNK`] IDs.
async fn held_records(
    conn: &mut SqliteConnection,
    ids: &[ContentHash],
) -> Result<HashMap<String, u64>, StoreError> {
    let mut held = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT record_id, idx FROM ledger_entries WHERE record_id IN (",
        );
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            held.insert(
                row.try_get::<String, _>(0)?,
                unsigned(row.try_get::<i64, _>(1)?)?,
            );
        }
    }
    Ok(held)
}

/// The newest ledger entry of each artifact in `keys` (absent for artifacts never seen), one
/// query per [`LOOKUP_CHUNK`] keys; each lookup is one seek in `ledger_entries_locator`.
async fn newest_entries(
    conn: &mut SqliteConnection,
    keys: &[ArtifactKey],
) -> Result<HashMap<ArtifactKey, Newest>, StoreError> {
    let mut newest = HashMap::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH want(s, l) AS (");
        q.push_values(chunk, |mut b, key| {
            b.push_bind(&key.0).push_bind(&key.1);
        });
        q.push(
            ") SELECT e.source_id, e.locator, e.idx, e.sha256, e.event, e.system FROM want w \
             JOIN ledger_entries e ON e.idx = (SELECT MAX(idx) FROM ledger_entries \
             WHERE source_id = w.s AND locator = w.l)",
        );
        for r in q.build().fetch_all(&mut *conn).await? {
            newest.insert(
                (r.try_get(0)?, r.try_get(1)?),
                Newest {
                    idx: unsigned(r.try_get::<i64, _>(2)?)?,
                    sha256: r.try_get(3)?,
                    event: r.try_get(4)?,
                    system: r.try_get(5)?,
                },
            );
        }
    }
    Ok(newest)
}

fn row_to_evidence(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvidence, StoreError> {
    decode::evidence(
        row.try_get("idx")?,
        row.try_get("record_id")?,
        row.try_get("entry")?,
        row.try_get("confirmed_at")?,
    )
}

/// The SQLite side of the shared append sequence, on the ingest transaction's connection.
struct Ops<'c>(&'c mut SqliteConnection);

#[async_trait]
impl AppendOps for Ops<'_> {
    async fn insert_leaves(
        &mut self,
        leaves: &[NewLeaf],
        agent: &str,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let received = received_at.to_string();
        for chunk in leaves.chunks(ENTRY_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ledger_entries (idx, record_id, leaf_hash, entry, agent, received_at, \
                 source_id, locator, system, kind, event, sha256, observed_at, prev) ",
            );
            let mut bad = None;
            q.push_values(chunk, |mut b, leaf| {
                let idx = signed(leaf.idx).unwrap_or_else(|e| {
                    bad = Some(e);
                    0
                });
                b.push_bind(idx)
                    .push_bind(&leaf.record_id)
                    .push_bind(&leaf.leaf[..])
                    .push_bind(&leaf.entry)
                    .push_bind(agent)
                    .push_bind(&received)
                    .push_bind(&leaf.source_id)
                    .push_bind(&leaf.locator)
                    .push_bind(&leaf.system)
                    .push_bind(&leaf.kind)
                    .push_bind(leaf.event)
                    .push_bind(&leaf.sha256)
                    .push_bind(&leaf.observed_at)
                    .push_bind(leaf.prev.and_then(|p| i64::try_from(p).ok()));
            });
            if let Some(e) = bad {
                return Err(e);
            }
            q.build().execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn fill_hashes(
        &mut self,
        map: &mut HashMap<NodeId, Hash>,
        ids: &[NodeId],
    ) -> Result<(), StoreError> {
        fill_hashes(self.0, map, ids).await
    }

    async fn insert_hashes(&mut self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        for chunk in nodes.chunks(HASH_CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO ledger_hashes (level, idx, hash) ");
            let mut bad = None;
            q.push_values(chunk, |mut b, (node, hash)| {
                let idx = signed(node.index).unwrap_or_else(|e| {
                    bad = Some(e);
                    0
                });
                b.push_bind(i64::from(node.level))
                    .push_bind(idx)
                    .push_bind(&hash[..]);
            });
            if let Some(e) = bad {
                return Err(e);
            }
            q.build().execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(signed(cp.size)?)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}

/// The ledger size, read inside the append transaction.
async fn ledger_size(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
        .fetch_one(&mut *conn)
        .await?;
    unsigned(size)
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn ingest(
        &self,
        agent: &str,
        records: &[EvidenceRecord],
        received_at: Timestamp,
        signer: &(dyn CheckpointSigner + Sync),
    ) -> Result<IngestOutcome, StoreError> {
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        let start = ledger_size(&mut tx).await?;
        let ids = ingest::record_ids(records)?;
        let held = held_records(&mut tx, &ids).await?;
        let mut looked: HashSet<ArtifactKey> = HashSet::new();
        let keys: Vec<ArtifactKey> = records
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !held.contains_key(id.as_str()))
            .map(|(record, _)| ingest::artifact_key(record))
            .filter(|key| looked.insert(key.clone()))
            .collect();
        let newest = newest_entries(&mut tx, &keys).await?;
        let plan = ingest::plan(records, ids, agent, received_at, start, &held, &newest)?;
        let next = start + plan.leaves.len() as u64;
        let checkpoint = append(
            &mut Ops(&mut tx),
            start,
            &plan.leaves,
            agent,
            received_at,
            signer,
        )
        .await?;
        tx.commit().await?;
        drop(pool);
        let checkpoint = match checkpoint {
            Some(cp) => Some(cp),
            None => self.latest_checkpoint().await?,
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
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        let start = ledger_size(&mut tx).await?;
        let held = held_records(&mut tx, std::slice::from_ref(&id)).await?;
        // Which listed artifacts the ledger holds with the listed content.
        let mut keys: Vec<ArtifactKey> = input
            .artifacts
            .iter()
            .map(|a| (c.source.id.clone(), a.locator.clone()))
            .collect();
        keys.push((c.source.id.clone(), String::new()));
        let newest = newest_entries(&mut tx, &keys).await?;
        let (matched, touched) = ingest::matched(c, input.artifacts, &newest);
        let (leaf_index, duplicate, checkpoint) = match held.get(id.as_str()) {
            Some(&idx) => (idx, true, None),
            None => {
                let prev = newest
                    .get(&(c.source.id.clone(), String::new()))
                    .map(|n| n.idx);
                let leaf = NewLeaf::confirmation(start, c, agent, received_at, prev)?;
                let cp = append(
                    &mut Ops(&mut tx),
                    start,
                    std::slice::from_ref(&leaf),
                    agent,
                    received_at,
                    signer,
                )
                .await?;
                sqlx::query(
                    "INSERT OR IGNORE INTO confirmation_listings (digest, body) VALUES (?, ?)",
                )
                .bind(c.digest.as_str())
                .bind(input.listing)
                .execute(&mut *tx)
                .await?;
                let at = c.observed_at.to_string();
                for chunk in matched.chunks(LOOKUP_CHUNK) {
                    let mut q = QueryBuilder::<Sqlite>::new(
                        "INSERT INTO artifact_seen (source_id, locator, sha256, confirmed_at, \
                         confirmation_idx) ",
                    );
                    q.push_values(chunk, |mut b, a| {
                        b.push_bind(&c.source.id)
                            .push_bind(&a.locator)
                            .push_bind(a.sha256.as_str())
                            .push_bind(&at)
                            .push_bind(i64::try_from(start).unwrap_or(i64::MAX));
                    });
                    q.push(
                        " ON CONFLICT(source_id, locator) DO UPDATE SET sha256 = excluded.sha256, \
                         confirmed_at = excluded.confirmed_at, \
                         confirmation_idx = excluded.confirmation_idx \
                         WHERE artifact_seen.sha256 <> excluded.sha256 \
                            OR artifact_seen.confirmed_at < excluded.confirmed_at",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO source_health (agent, source_id, source_type, interval_secs, \
                     last_confirmed_at) VALUES (?, ?, ?, 0, ?) \
                     ON CONFLICT(agent, source_id) DO UPDATE SET last_confirmed_at = \
                     MAX(COALESCE(source_health.last_confirmed_at, ''), excluded.last_confirmed_at)",
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
        tx.commit().await?;
        drop(pool);
        let tree_size = if duplicate { start } else { start + 1 };
        let checkpoint = match checkpoint {
            Some(cp) => Some(cp),
            None => self.latest_checkpoint().await?,
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
            sqlx::query_scalar("SELECT body FROM confirmation_listings WHERE digest = ?")
                .bind(digest)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn history(&self, system: &str) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
             LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
                 AND s.sha256 = e.sha256 AND e.event = 'observed' \
             WHERE e.system = ? ORDER BY e.idx",
        )
        .bind(system)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| decode::in_system(row_to_evidence(r)?, system))
            .collect()
    }

    async fn evidence(&self, record_id: &str) -> Result<Option<StoredEvidence>, StoreError> {
        let row = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
             LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
                 AND s.sha256 = e.sha256 AND e.event = 'observed' \
             WHERE e.record_id = ? AND e.event <> ?",
        )
        .bind(record_id)
        .bind(CONFIRMED)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(row_to_evidence).transpose()
    }

    async fn evidence_by_sha256(
        &self,
        sha256: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
             LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
                 AND s.sha256 = e.sha256 AND e.event = 'observed' \
             WHERE e.sha256 = ? AND e.event <> ? ORDER BY e.idx LIMIT ?",
        )
        .bind(sha256)
        .bind(CONFIRMED)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    async fn evidence_by_source(
        &self,
        source: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
             LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
                 AND s.sha256 = e.sha256 AND e.event = 'observed' \
             WHERE e.source_id = ? AND e.event <> ? ORDER BY e.idx DESC LIMIT ?",
        )
        .bind(source)
        .bind(CONFIRMED)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    async fn entries(&self, start: u64, limit: u64) -> Result<Vec<LedgerEntryRow>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= ? ORDER BY idx LIMIT ?",
        )
        .bind(signed(start)?)
        .bind(signed(limit)?)
        .fetch_all(&self.read)
        .await?;
        decode::entry_rows(rows)
    }

    async fn system_entries(&self, system: &str) -> Result<Vec<LedgerEntryRow>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, entry FROM ledger_entries WHERE system = ? \
             UNION ALL \
             SELECT idx, entry FROM ledger_entries WHERE event = ? AND locator = '' \
                 AND source_id IN (SELECT DISTINCT source_id FROM ledger_entries WHERE system = ?) \
             ORDER BY idx",
        )
        .bind(system)
        .bind(CONFIRMED)
        .bind(system)
        .fetch_all(&self.read)
        .await?;
        decode::entry_rows(rows)
    }

    async fn entry_rows(&self, start: u64, limit: u64) -> Result<Vec<crate::EntryRow>, StoreError> {
        let rows: Vec<decode::EntryColumns> = sqlx::query_as(&format!(
            "SELECT {} FROM ledger_entries WHERE idx >= ? ORDER BY idx LIMIT ?",
            decode::ENTRY_COLUMNS
        ))
        .bind(signed(start)?)
        .bind(signed(limit)?)
        .fetch_all(&self.read)
        .await?;
        decode::full_entry_rows(rows)
    }

    async fn system_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT system FROM ledger_entries WHERE system <> '' ORDER BY system",
        )
        .fetch_all(&self.read)
        .await?)
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
            .fetch_one(&self.read)
            .await?;
        unsigned(n)
    }

    async fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut conn = self.read.acquire().await?;
        let mut map = HashMap::with_capacity(ids.len());
        fill_hashes(&mut conn, &mut map, ids).await?;
        ids_in_order(&map, ids)
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query("SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(row_to_checkpoint).transpose()
    }

    async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE size = ?",
        )
        .bind(signed(size)?)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(row_to_checkpoint).transpose()
    }

    async fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        let pool = self.write.lock().await;
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT(size) DO UPDATE SET note = excluded.note, created_at = excluded.created_at \
             WHERE ledger_checkpoints.root = excluded.root",
        )
        .bind(signed(cp.size)?)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&*pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl StatusStore for SqliteStore {
    async fn put_heartbeats(
        &self,
        agent: &str,
        beats: &[SourceHeartbeat],
    ) -> Result<(), StoreError> {
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        for b in beats {
            let at = b.polled_at.to_string();
            sqlx::query(
                "INSERT INTO source_health (agent, source_id, source_type, interval_secs, \
                 last_poll_at, last_ok_at, last_error, listed, records) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(agent, source_id) DO UPDATE SET source_type = excluded.source_type, \
                 interval_secs = excluded.interval_secs, last_poll_at = excluded.last_poll_at, \
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
        let rows: Vec<decode::SourceRow> = sqlx::query_as(&format!(
            "SELECT {} FROM source_health ORDER BY agent, source_id",
            decode::SOURCE_COLUMNS
        ))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| decode::source_health(r, now))
            .collect()
    }

    async fn put_assessment(&self, a: &StoredAssessment) -> Result<(), StoreError> {
        let mut counts = StatusCounts::default();
        for c in &a.controls {
            counts.add(c.status);
        }
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        if let Some(extra) = &a.events {
            let old = crate::outbox::sqlite::current_findings(&mut tx, &a.system).await?;
            let mut events =
                crate::outbox::finding_events(&a.system, &old, &a.findings, a.assessed_at)?;
            events.extend(extra.iter().cloned());
            crate::outbox::sqlite::insert_events(&mut tx, &events).await?;
        }
        sqlx::query(
            "INSERT INTO systems (id, assessed_at, evidence, fresh, stale, drifted, missing, not_applicable, \
             excluded_controls) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET \
             assessed_at = excluded.assessed_at, evidence = excluded.evidence, fresh = excluded.fresh, \
             stale = excluded.stale, drifted = excluded.drifted, missing = excluded.missing, \
             not_applicable = excluded.not_applicable, excluded_controls = excluded.excluded_controls",
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
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM control_status WHERE system = ?")
            .bind(&a.system)
            .execute(&mut *tx)
            .await?;
        for c in &a.controls {
            sqlx::query(
                "INSERT INTO control_status (system, control, status, view) VALUES (?, ?, ?, ?)",
            )
            .bind(&a.system)
            .bind(&c.control)
            .bind(c.status.as_str())
            .bind(serde_json::to_string(c)?)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM findings WHERE system = ?")
            .bind(&a.system)
            .execute(&mut *tx)
            .await?;
        for f in &a.findings {
            sqlx::query("INSERT OR REPLACE INTO findings (system, id, kind, since, body) VALUES (?, ?, ?, ?, ?)")
                .bind(&a.system)
                .bind(&f.id)
                .bind(f.kind.as_str())
                .bind(f.since.to_string())
                .bind(serde_json::to_string(f)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn systems(&self) -> Result<Vec<SystemSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, assessed_at, evidence, fresh, stale, drifted, missing, not_applicable, \
             excluded_controls FROM systems ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32, StoreError> {
                    u32::try_from(r.try_get::<i64, _>(c)?)
                        .map_err(|_| StoreError::Corrupt(format!("{c} count out of range")))
                };
                Ok(SystemSummary {
                    id: r.try_get("id")?,
                    controls: StatusCounts {
                        fresh: n("fresh")?,
                        stale: n("stale")?,
                        drifted: n("drifted")?,
                        missing: n("missing")?,
                        not_applicable: n("not_applicable")?,
                        excluded: n("excluded_controls")?,
                    },
                    evidence: unsigned(r.try_get::<i64, _>("evidence")?)?,
                    assessed_at: Some(ts(r.try_get("assessed_at")?)?),
                })
            })
            .collect()
    }

    async fn system_controls(&self, system: &str) -> Result<Option<Vec<ControlView>>, StoreError> {
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM systems WHERE id = ?")
            .bind(system)
            .fetch_optional(&self.read)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT view FROM control_status WHERE system = ? ORDER BY control")
                .bind(system)
                .fetch_all(&self.read)
                .await?;
        Ok(Some(crate::decode::control_views(&rows)?))
    }

    async fn findings(&self, system: Option<&str>) -> Result<Vec<Finding>, StoreError> {
        let rows: Vec<String> = match system {
            Some(s) => {
                sqlx::query_scalar(
                    "SELECT body FROM findings WHERE system = ? ORDER BY kind, since, id",
                )
                .bind(s)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT body FROM findings ORDER BY system, kind, since, id")
                    .fetch_all(&self.read)
                    .await?
            }
        };
        crate::decode::findings(&rows)
    }

    async fn finding_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM findings GROUP BY kind ORDER BY kind")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_token(&self, t: &NewToken) -> Result<(), StoreError> {
        crate::sessions::sqlite::create_scoped_token(self, t).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        crate::sessions::sqlite::scoped_token_by_hash(self, token_hash).await
    }

    async fn revoke_tokens(&self, name: &str, at: Timestamp) -> Result<u64, StoreError> {
        let pool = self.write.lock().await;
        let r =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
                .bind(at.to_string())
                .bind(name)
                .execute(&*pool)
                .await?;
        Ok(r.rows_affected())
    }

    async fn create_session(&self, n: &crate::NewSession) -> Result<(), StoreError> {
        crate::sessions::sqlite::create_session(self, n).await
    }

    async fn session_by_hash(&self, h: &str) -> Result<Option<crate::SessionInfo>, StoreError> {
        crate::sessions::sqlite::session_by_hash(self, h).await
    }

    async fn delete_session(&self, h: &str) -> Result<bool, StoreError> {
        crate::sessions::sqlite::delete_session(self, h).await
    }

    async fn revoke_sessions(&self, name: &str, at: Timestamp) -> Result<u64, StoreError> {
        crate::sessions::sqlite::revoke_sessions(self, name, at).await
    }
}

fn row_to_checkpoint(r: &sqlx::sqlite::SqliteRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        size: unsigned(r.try_get::<i64, _>("size")?)?,
        root: hash32(r.try_get::<&[u8], _>("root")?)?,
        note: r.try_get("note")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}
crate::outbox::impl_outbox_store!(SqliteStore, sqlite);
#[async_trait]
impl crate::BlobStore for SqliteStore {
    fn blob_staging_dir(&self) -> std::path::PathBuf {
        crate::blobs::dir::staging(&self.blobs)
    }

    async fn put_blob(
        &self,
        sha256: &aims_model::ContentHash,
        _size: u64,
        staged: &std::path::Path,
    ) -> Result<bool, StoreError> {
        crate::blobs::dir::put(&self.blobs, sha256, staged).await
    }

    async fn blob(
        &self,
        sha256: &aims_model::ContentHash,
    ) -> Result<Option<crate::Blob>, StoreError> {
        crate::blobs::dir::get(&self.blobs, sha256).await
    }

    async fn delete_blob(&self, sha256: &aims_model::ContentHash) -> Result<(), StoreError> {
        crate::blobs::dir::delete(&self.blobs, sha256).await
    }
}
