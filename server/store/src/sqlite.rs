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

use aims_model::wire::{ControlView, StatusCounts, SystemSummary};
use aims_model::{ContentHash, EvidenceRecord, Finding, Timestamp};

use crate::LedgerEntryRow;
use crate::hashes::{self, ids_in_order};
use crate::ingest::{self, ArtifactKey, Newest};
use crate::ledger::LedgerEntry;
use crate::{
    CheckpointSigner, IngestOutcome, NewToken, Store, StoreError, StoredAssessment,
    StoredCheckpoint, StoredEvidence, TokenInfo,
};
use aims_model::tlog::merkle::{self, Hash, NodeId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    read: SqlitePool,
    write: Mutex<SqlitePool>,
}

fn ts(s: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse_utc(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash32(v: &[u8]) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("hash of {} bytes", v.len())))
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
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self {
            read,
            write: Mutex::new(write),
        })
    }

    /// Closes the pools (waits for in-flight queries).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.lock().await.close().await;
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
            b.push_bind(i64::from(id.level)).push_bind(id.index as i64);
        });
        q.push(
            ") SELECT h.level, h.idx, h.hash FROM ledger_hashes h \
             JOIN want w ON h.level = w.level AND h.idx = w.idx",
        );
        for row in q.build().fetch_all(&mut *conn).await? {
            let level = u8::try_from(row.try_get::<i64, _>(0)?)
                .map_err(|_| StoreError::Corrupt("subtree level out of range".to_owned()))?;
            let id = NodeId::new(level, row.try_get::<i64, _>(1)? as u64);
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
                row.try_get::<i64, _>(1)? as u64,
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
            ") SELECT e.source_id, e.locator, e.idx, e.sha256, e.event FROM want w \
             JOIN ledger_entries e ON e.idx = (SELECT MAX(idx) FROM ledger_entries \
             WHERE source_id = w.s AND locator = w.l)",
        );
        for r in q.build().fetch_all(&mut *conn).await? {
            newest.insert(
                (r.try_get(0)?, r.try_get(1)?),
                Newest {
                    idx: r.try_get::<i64, _>(2)? as u64,
                    sha256: r.try_get(3)?,
                    event: r.try_get(4)?,
                },
            );
        }
    }
    Ok(newest)
}

fn row_to_evidence(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvidence, StoreError> {
    let entry: LedgerEntry = serde_json::from_slice(row.try_get::<&[u8], _>("entry")?)?;
    let record_id = ContentHash::parse(row.try_get::<&str, _>("record_id")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(StoredEvidence {
        record_id,
        leaf_index: row.try_get::<i64, _>("idx")? as u64,
        agent: entry.agent,
        received_at: entry.received_at,
        prev: entry.prev,
        record: entry.record,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(
        &self,
        agent: &str,
        records: &[EvidenceRecord],
        received_at: Timestamp,
        signer: &(dyn CheckpointSigner + Sync),
    ) -> Result<IngestOutcome, StoreError> {
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
            .fetch_one(&mut *tx)
            .await?;
        let start = size as u64;
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
        let received = received_at.to_string();
        for chunk in plan.leaves.chunks(ENTRY_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ledger_entries (idx, record_id, leaf_hash, entry, agent, received_at, \
                 source_id, locator, system, kind, event, sha256, observed_at, prev) ",
            );
            q.push_values(chunk, |mut b, leaf| {
                let record = leaf.record;
                b.push_bind(leaf.idx as i64)
                    .push_bind(&leaf.record_id)
                    .push_bind(&leaf.leaf[..])
                    .push_bind(&leaf.entry)
                    .push_bind(agent)
                    .push_bind(&received)
                    .push_bind(&record.source.id)
                    .push_bind(&record.locator)
                    .push_bind(&record.system)
                    .push_bind(&record.kind)
                    .push_bind(record.event.as_str())
                    .push_bind(record.sha256.as_str())
                    .push_bind(record.observed_at.to_string())
                    .push_bind(leaf.prev.map(|p| p as i64));
            });
            q.build().execute(&mut *tx).await?;
        }
        let leaves = plan.leaf_hashes();
        let next = start + leaves.len() as u64;
        let checkpoint = if next > start {
            // Complete-subtree hashes for the new leaves, then the new root, each from one
            // batch of stored siblings.
            let ids = hashes::needed(|r| merkle::stored_hashes_for_batch(start, &leaves, r))?;
            let mut map = HashMap::new();
            fill_hashes(&mut tx, &mut map, &ids).await?;
            let nodes = hashes::run(&map, |r| merkle::stored_hashes_for_batch(start, &leaves, r))?;
            for chunk in nodes.chunks(HASH_CHUNK) {
                let mut q =
                    QueryBuilder::<Sqlite>::new("INSERT INTO ledger_hashes (level, idx, hash) ");
                q.push_values(chunk, |mut b, (node, hash)| {
                    b.push_bind(i64::from(node.level))
                        .push_bind(node.index as i64)
                        .push_bind(&hash[..]);
                });
                q.build().execute(&mut *tx).await?;
            }
            map.extend(nodes.iter().copied());
            let ids = hashes::needed(|r| merkle::tree_root(next, r))?;
            fill_hashes(&mut tx, &mut map, &ids).await?;
            let root = hashes::run(&map, |r| merkle::tree_root(next, r))?;
            let note = signer.sign(next, &root).map_err(StoreError::Signing)?;
            let cp = StoredCheckpoint {
                size: next,
                root,
                note,
                created_at: received_at,
            };
            sqlx::query(
                "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(cp.size as i64)
            .bind(&cp.root[..])
            .bind(&cp.note)
            .bind(cp.created_at.to_string())
            .execute(&mut *tx)
            .await?;
            Some(cp)
        } else {
            None
        };
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

    async fn history(&self, system: &str) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, record_id, entry FROM ledger_entries WHERE system = ? ORDER BY idx",
        )
        .bind(system)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    async fn evidence(&self, record_id: &str) -> Result<Option<StoredEvidence>, StoreError> {
        let row =
            sqlx::query("SELECT idx, record_id, entry FROM ledger_entries WHERE record_id = ?")
                .bind(record_id)
                .fetch_optional(&self.read)
                .await?;
        row.as_ref().map(row_to_evidence).transpose()
    }

    async fn entries(&self, start: u64, limit: u64) -> Result<Vec<LedgerEntryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= ? ORDER BY idx LIMIT ?",
        )
        .bind(start as i64)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerEntryRow {
                    index: r.try_get::<i64, _>(0)? as u64,
                    entry: r.try_get::<Vec<u8>, _>(1)?,
                })
            })
            .collect()
    }

    async fn system_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT system FROM ledger_entries ORDER BY system")
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn put_assessment(&self, a: &StoredAssessment) -> Result<(), StoreError> {
        let mut counts = StatusCounts::default();
        for c in &a.controls {
            counts.add(c.status);
        }
        let pool = self.write.lock().await;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO systems (id, assessed_at, evidence, fresh, stale, drifted, missing, not_applicable) \
             VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET assessed_at = excluded.assessed_at, \
             evidence = excluded.evidence, fresh = excluded.fresh, stale = excluded.stale, \
             drifted = excluded.drifted, missing = excluded.missing, not_applicable = excluded.not_applicable",
        )
        .bind(&a.system)
        .bind(a.assessed_at.to_string())
        .bind(a.evidence as i64)
        .bind(i64::from(counts.fresh))
        .bind(i64::from(counts.stale))
        .bind(i64::from(counts.drifted))
        .bind(i64::from(counts.missing))
        .bind(i64::from(counts.not_applicable))
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
            "SELECT id, assessed_at, evidence, fresh, stale, drifted, missing, not_applicable FROM systems ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32, StoreError> { Ok(r.try_get::<i64, _>(c)? as u32) };
                Ok(SystemSummary {
                    id: r.try_get("id")?,
                    controls: StatusCounts {
                        fresh: n("fresh")?,
                        stale: n("stale")?,
                        drifted: n("drifted")?,
                        missing: n("missing")?,
                        not_applicable: n("not_applicable")?,
                    },
                    evidence: r.try_get::<i64, _>("evidence")? as u64,
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

    async fn create_token(&self, t: &NewToken) -> Result<(), StoreError> {
        let pool = self.write.lock().await;
        sqlx::query(
            "INSERT INTO tokens (name, role, token_hash, created_at, expires_at, agent_id, sources) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
            .bind(&t.name)
            .bind(t.role.as_str())
            .bind(&t.token_hash)
            .bind(t.created_at.to_string())
            .bind(t.expires_at.map(|e| e.to_string()))
            .bind(&t.scope.agent_id)
            .bind(crate::decode::scope_sources(&t.scope)?)
            .execute(&*pool)
            .await?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row: Option<crate::decode::TokenRow> = sqlx::query_as(
            "SELECT name, role, expires_at, revoked_at, agent_id, sources FROM tokens \
             WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(crate::decode::token_info).transpose()
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

    async fn tree_size(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
            .fetch_one(&self.read)
            .await?;
        Ok(n as u64)
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
        .bind(size as i64)
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
        .bind(cp.size as i64)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&*pool)
        .await?;
        Ok(())
    }
}

fn row_to_checkpoint(r: &sqlx::sqlite::SqliteRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        size: r.try_get::<i64, _>("size")? as u64,
        root: hash32(r.try_get::<&[u8], _>("root")?)?,
        note: r.try_get("note")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}
