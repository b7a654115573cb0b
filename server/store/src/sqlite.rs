//! SQLite implementation of [`Store`]: one database file in WAL mode, the embedded default.
//!
//! Concurrency: reads go through a pool of connections; every write goes through a single
//! dedicated connection guarded by an async mutex, so ledger appends are strictly serialised
//! within the process. SQLite's own file lock serialises writers across processes, but only one
//! server process should own a SQLite file (use PostgreSQL for replicas).
//!
//! The `Store` traits are implemented once for both backends ([`crate::portable`]); this module
//! holds what is SQLite's own: opening, the pools, the append lock and the append's statements
//! ([`AppendOps`], lookups and `artifact_seen`, as chunked `VALUES` lists), the subtree-hash
//! lookup, the assessment and outbox inserts, and the [`crate::BlobStore`] (files beside the
//! database).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use aims_ledger::merkle::{Hash, NodeId};
use aims_model::{Confirmation, ContentHash, ListedArtifact, Timestamp};

use crate::append::AppendOps;
use crate::decode::{signed, unsigned};
use crate::ingest::{ArtifactKey, NewLeaf, Newest};
use crate::outbox::{self, ClaimRow, Claimed, NewEvent, claimed, delivery_id, state};
use crate::{StoreError, StoredAssessment, StoredCheckpoint};

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

    /// The read pool (see [`crate::portable`]).
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// The single write connection, held until the guard is dropped: every write goes through
    /// it, so writes are serialised within the process.
    pub(crate) async fn writer(&self) -> MutexGuard<'_, SqlitePool> {
        self.write.lock().await
    }
}

/// Most node IDs per hash query (two bound parameters each; SQLite allows 32766).
const HASH_CHUNK: usize = 256;

/// Reads the stored hashes of `ids` into `map` (skipping those already there), with one query
/// per [`HASH_CHUNK`] nodes rather than one per node. Absent nodes are left out of the map.
pub(crate) async fn fill_hashes(
    conn: &mut SqliteConnection,
    map: &mut HashMap<NodeId, Hash>,
    ids: &[NodeId],
) -> Result<(), StoreError> {
    let want = crate::hashes::missing(map, ids);
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
            let level = row.try_get::<i64, _>(0)?;
            let (id, hash) =
                crate::hashes::node_hash(level, row.try_get(1)?, row.try_get::<&[u8], _>(2)?)?;
            map.insert(id, hash);
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
pub(crate) async fn held_records(
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
pub(crate) async fn newest_entries(
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

/// The SQLite side of the shared append sequence, on the ingest transaction's connection.
pub(crate) struct Ops<'c>(pub(crate) &'c mut SqliteConnection);

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
        crate::ledger_store::sqlite::insert_checkpoint(self.0, cp).await
    }
}

/// The ledger size, read inside the append transaction.
async fn ledger_size(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
        .fetch_one(&mut *conn)
        .await?;
    unsigned(size)
}

/// Takes the single writer, opens the append transaction and reads the ledger size.
pub(crate) async fn begin_append(
    s: &SqliteStore,
) -> Result<
    (
        MutexGuard<'_, SqlitePool>,
        Transaction<'static, Sqlite>,
        u64,
    ),
    StoreError,
> {
    let lock = s.writer().await;
    let mut tx = lock.begin().await?;
    let start = ledger_size(&mut tx).await?;
    Ok((lock, tx, start))
}

/// Commits the append transaction, then releases the single writer.
pub(crate) async fn commit_append(
    _lock: MutexGuard<'_, SqlitePool>,
    tx: Transaction<'static, Sqlite>,
) -> Result<(), StoreError> {
    Ok(tx.commit().await?)
}

/// Moves the observation time of the artifacts a confirmation matched (`artifact_seen`), one
/// statement per [`LOOKUP_CHUNK`] artifacts.
pub(crate) async fn mark_seen(
    conn: &mut SqliteConnection,
    c: &Confirmation,
    matched: &[&ListedArtifact],
    at: &str,
    start: u64,
) -> Result<(), StoreError> {
    for chunk in matched.chunks(LOOKUP_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO artifact_seen (source_id, locator, sha256, confirmed_at, \
             confirmation_idx) ",
        );
        q.push_values(chunk, |mut b, a| {
            b.push_bind(&c.source.id)
                .push_bind(&a.locator)
                .push_bind(a.sha256.as_str())
                .push_bind(at)
                .push_bind(i64::try_from(start).unwrap_or(i64::MAX));
        });
        q.push(
            " ON CONFLICT(source_id, locator) DO UPDATE SET sha256 = excluded.sha256, \
             confirmed_at = excluded.confirmed_at, \
             confirmation_idx = excluded.confirmation_idx \
             WHERE artifact_seen.sha256 <> excluded.sha256 \
                OR artifact_seen.confirmed_at < excluded.confirmed_at",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts a system's control views and findings (after `status::clear_system`), row by row:
/// under the single writer the transaction is short anyway. A finding listed twice keeps its
/// last occurrence.
pub(crate) async fn insert_assessment_rows(
    conn: &mut SqliteConnection,
    a: &StoredAssessment,
) -> Result<(), StoreError> {
    for c in &a.controls {
        sqlx::query(
            "INSERT INTO control_status (system, control, status, view) VALUES (?, ?, ?, ?)",
        )
        .bind(&a.system)
        .bind(&c.control)
        .bind(c.status.as_str())
        .bind(serde_json::to_string(c)?)
        .execute(&mut *conn)
        .await?;
    }
    for f in &a.findings {
        sqlx::query(
            "INSERT OR REPLACE INTO findings (system, id, kind, since, body) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&a.system)
        .bind(&f.id)
        .bind(f.kind.as_str())
        .bind(f.since.to_string())
        .bind(serde_json::to_string(f)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// The outbox's dialect-specific statements (see `outbox.rs`).

/// Records `events` (each key once) inside an open transaction.
pub(crate) async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[NewEvent],
) -> Result<u64, StoreError> {
    let mut n = 0;
    for e in events {
        n += sqlx::query(
            "INSERT INTO notify_events (key, event, system, payload, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
        )
        .bind(&e.key)
        .bind(&e.event)
        .bind(&e.system)
        .bind(&e.payload)
        .bind(e.created_at.to_string())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(n)
}

/// Creates the delivery rows of `sink` (see `OutboxStore::route_events`).
pub(crate) async fn route_events(
    s: &SqliteStore,
    sink: &str,
    routes: &[(u64, bool)],
    now: Timestamp,
) -> Result<(), StoreError> {
    let pool = s.writer().await;
    let mut tx = pool.begin().await?;
    for (seq, wanted) in routes {
        let (key,): (String,) = sqlx::query_as("SELECT key FROM notify_events WHERE seq = ?")
            .bind(outbox::signed(*seq)?)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO notify_deliveries (seq, sink, delivery, state, attempts, next_at, \
             updated_at) VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT(seq, sink) DO NOTHING",
        )
        .bind(outbox::signed(*seq)?)
        .bind(sink)
        .bind(delivery_id(&key, sink))
        .bind(if *wanted {
            state::PENDING
        } else {
            state::SKIPPED
        })
        .bind(now.to_string())
        .bind(now.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Claims due deliveries under a lease (see `OutboxStore::claim_deliveries`).
pub(crate) async fn claim_deliveries(
    s: &SqliteStore,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<Claimed>, StoreError> {
    let pool = s.writer().await;
    let mut tx = pool.begin().await?;
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "UPDATE notify_deliveries SET lease_until = ?2 WHERE rowid IN \
         (SELECT rowid FROM notify_deliveries WHERE state = 'pending' AND next_at <= ?1 \
          AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY next_at LIMIT ?3) \
         RETURNING seq, sink, delivery, attempts, first_attempt_at",
    )
    .bind(now.to_string())
    .bind(lease_until.to_string())
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, sink, delivery, attempts, first) in rows {
        let row = crate::outbox::sqlite::event_by_seq(&mut tx, seq).await?;
        out.push(claimed((seq, sink, delivery, attempts, first), row)?);
    }
    tx.commit().await?;
    Ok(out)
}

/// The ledger size (`tree_size`): SQLite keeps no separate head, the entries are the truth.
pub(crate) async fn tree_size(s: &SqliteStore) -> Result<u64, StoreError> {
    let mut conn = s.reader().acquire().await?;
    ledger_size(&mut conn).await
}

/// One process owns a SQLite file and serialises appends with a mutex: never held elsewhere.
pub(crate) async fn append_lock_available(
    _s: &SqliteStore,
    _timeout: Duration,
) -> Result<bool, StoreError> {
    Ok(true)
}

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
