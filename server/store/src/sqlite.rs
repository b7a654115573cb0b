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
    CheckpointSigner, IngestOutcome, NewToken, Role, Store, StoreError, StoredAssessment,
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
        let mut held: HashMap<String, u64> = HashMap::new();
        for id in &ids {
            if held.contains_key(id.as_str()) {
                continue;
            }
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT idx FROM ledger_entries WHERE record_id = ?")
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(idx) = existing {
                held.insert(id.as_str().to_owned(), idx as u64);
            }
        }
        let mut newest: HashMap<ArtifactKey, Newest> = HashMap::new();
        let mut looked: HashSet<ArtifactKey> = HashSet::new();
        for (record, id) in records.iter().zip(&ids) {
            let key = ingest::artifact_key(record);
            if held.contains_key(id.as_str()) || !looked.insert(key.clone()) {
                continue;
            }
            let row = sqlx::query(
                "SELECT idx, sha256, event FROM ledger_entries WHERE source_id = ? AND locator = ? \
                 ORDER BY idx DESC LIMIT 1",
            )
            .bind(&key.0)
            .bind(&key.1)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = row {
                newest.insert(
                    key,
                    Newest {
                        idx: r.try_get::<i64, _>(0)? as u64,
                        sha256: r.try_get(1)?,
                        event: r.try_get(2)?,
                    },
                );
            }
        }
        let plan = ingest::plan(records, ids, agent, received_at, start, &held, &newest)?;
        for leaf in &plan.leaves {
            let record = leaf.record;
            sqlx::query(
                "INSERT INTO ledger_entries (idx, record_id, leaf_hash, entry, agent, received_at, source_id, \
                 locator, system, kind, event, sha256, observed_at, prev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            )
            .bind(leaf.idx as i64)
            .bind(&leaf.record_id)
            .bind(&leaf.leaf[..])
            .bind(&leaf.entry)
            .bind(agent)
            .bind(received_at.to_string())
            .bind(&record.source.id)
            .bind(&record.locator)
            .bind(&record.system)
            .bind(&record.kind)
            .bind(record.event.as_str())
            .bind(record.sha256.as_str())
            .bind(record.observed_at.to_string())
            .bind(leaf.prev.map(|p| p as i64))
            .execute(&mut *tx)
            .await?;
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
            for (node, hash) in &nodes {
                sqlx::query("INSERT INTO ledger_hashes (level, idx, hash) VALUES (?, ?, ?)")
                    .bind(i64::from(node.level))
                    .bind(node.index as i64)
                    .bind(&hash[..])
                    .execute(&mut *tx)
                    .await?;
                map.insert(*node, *hash);
            }
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

    async fn create_token(&self, t: &NewToken) -> Result<(), StoreError> {
        let pool = self.write.lock().await;
        sqlx::query("INSERT INTO tokens (name, role, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&t.name)
            .bind(t.role.as_str())
            .bind(&t.token_hash)
            .bind(t.created_at.to_string())
            .bind(t.expires_at.map(|e| e.to_string()))
            .execute(&*pool)
            .await?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT name, role, expires_at, revoked_at FROM tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: String = r.try_get("role")?;
        let opt_ts = |c: &str| -> Result<Option<Timestamp>, StoreError> {
            r.try_get::<Option<String>, _>(c)?
                .as_deref()
                .map(ts)
                .transpose()
        };
        Ok(Some(TokenInfo {
            name: r.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
            expires_at: opt_ts("expires_at")?,
            revoked_at: opt_ts("revoked_at")?,
        }))
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
