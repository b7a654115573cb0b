//! PostgreSQL implementation of [`Store`]: the scale-out store that several stateless server
//! replicas share (DESIGN §8).
//!
//! # Serialising appends across replicas
//!
//! Every server process has its own pool, so an in-process mutex (what [`crate::SqliteStore`]
//! uses) cannot keep the ledger linear. The append is serialised in the database instead: the
//! one-row table `ledger_head` is the sequencer. Each ingest transaction starts with
//! `SELECT size FROM ledger_head FOR UPDATE`; a second replica's ingest waits on that row lock
//! until the first commits or rolls back, and then (READ COMMITTED: every later statement takes a
//! new snapshot) sees everything the first one wrote. Under the lock the transaction looks up the
//! batch's record IDs and artifacts, appends the new leaves at `size..`, writes their
//! complete-subtree hashes, signs the checkpoint for the new size, stores it and advances
//! `ledger_head.size`, then commits. Hence:
//! - leaf indices are dense and the tree never forks (one writer at a time, each starting from
//!   the size the previous one committed);
//! - the same record sent to two replicas at once becomes one leaf (the second sees the first's
//!   row; `record_id` is also `UNIQUE` as a last line of defence);
//! - a signer or database error rolls the whole batch back, lock included.
//!
//! Plain reads (history, proofs, checkpoints, tree size) take no locks and never wait for an
//! ingest: MVCC gives them the last committed state. Other writes (assessment, tokens,
//! checkpoints re-signed outside an ingest) do not touch the sequencer.
//!
//! A replica that dies while holding the lock loses its session, which releases the lock; one
//! that hangs inside the transaction is cut off by `idle_in_transaction_session_timeout`.
//!
//! Round trips per ingest are constant in the batch size: the lookups, the entry insert, the
//! subtree-hash reads and the hash insert are each one statement over arrays (`unnest`).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};

use aims_ledger::merkle::{Hash, NodeId};
use aims_model::wire::{ControlView, SourceHealth, SourceHeartbeat, StatusCounts, SystemSummary};
use aims_model::{EvidenceRecord, Finding, Timestamp};

use crate::append::{AppendOps, append};
use crate::decode::{self, hash32, signed, ts, unsigned};
use crate::hashes::ids_in_order;
use crate::ingest::{self, ArtifactKey, CONFIRMED, NewLeaf, Newest};
use crate::{
    AccessStore, CheckpointSigner, ConfirmationInput, ConfirmationOutcome, IngestOutcome,
    LedgerEntryRow, LedgerStore, NewToken, StatusStore, StoreError, StoredAssessment,
    StoredCheckpoint, StoredEvidence, TokenInfo,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens the ingest transaction. READ COMMITTED is spelled out (a database default of
/// REPEATABLE READ would make the statements after the sequencer lock read a stale snapshot);
/// a session stuck inside the transaction is terminated, releasing the sequencer, after 60 s;
/// waiting more than 10 s for the sequencer (a frozen replica holds it) fails with SQLSTATE 55P03,
/// which the server answers with 503 and `Retry-After` instead of hanging the agent.
const BEGIN_INGEST: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SET LOCAL idle_in_transaction_session_timeout = '60s'; SET LOCAL lock_timeout = '10s'";

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// `url` with any password replaced by `***`, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

impl PgStore {
    /// Connects to `postgres://…` (or `postgresql://…`), applies migrations (sqlx takes an
    /// advisory lock, so replicas starting together migrate once) and returns the store.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool (waits for in-flight queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads the stored hashes of `ids` into `map` (skipping those already there) with one query.
/// Absent nodes are left out of the map.
async fn fill_hashes(
    conn: &mut PgConnection,
    map: &mut HashMap<NodeId, Hash>,
    ids: &[NodeId],
) -> Result<(), StoreError> {
    let want: Vec<NodeId> = ids
        .iter()
        .filter(|id| !map.contains_key(id))
        .copied()
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    let levels: Vec<i32> = want.iter().map(|id| i32::from(id.level)).collect();
    let idxs = want
        .iter()
        .map(|id| signed(id.index))
        .collect::<Result<Vec<i64>, _>>()?;
    let rows = sqlx::query(
        "SELECT level, idx, hash FROM ledger_hashes \
         WHERE (level, idx) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))",
    )
    .bind(&levels)
    .bind(&idxs)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let level = u8::try_from(row.try_get::<i32, _>(0)?)
            .map_err(|_| StoreError::Corrupt("subtree level out of range".to_owned()))?;
        let id = NodeId::new(level, unsigned(row.try_get::<i64, _>(1)?)?);
        map.insert(id, hash32(row.try_get::<&[u8], _>(2)?)?);
    }
    Ok(())
}

fn row_to_evidence(row: &PgRow) -> Result<StoredEvidence, StoreError> {
    decode::evidence(
        row.try_get("idx")?,
        row.try_get("record_id")?,
        row.try_get("entry")?,
        row.try_get("confirmed_at")?,
    )
}

fn row_to_checkpoint(r: &PgRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        size: unsigned(r.try_get::<i64, _>("size")?)?,
        root: hash32(r.try_get::<&[u8], _>("root")?)?,
        note: r.try_get("note")?,
        created_at: ts(r.try_get("created_at")?)?,
    })
}

/// The record IDs of the batch already in the ledger, with their index.
async fn held_ids(
    conn: &mut PgConnection,
    ids: &[aims_model::RecordId],
) -> Result<HashMap<String, u64>, StoreError> {
    let mut uniq: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    uniq.sort_unstable();
    uniq.dedup();
    let rows = sqlx::query("SELECT record_id, idx FROM ledger_entries WHERE record_id = ANY($1)")
        .bind(&uniq)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, unsigned(r.try_get::<i64, _>(1)?)?)))
        .collect()
}

/// The newest entry for each artifact key (absent keys have none).
async fn newest_entries(
    conn: &mut PgConnection,
    keys: &[ArtifactKey],
) -> Result<HashMap<ArtifactKey, Newest>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (sources, locators): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(s, l)| (s.as_str(), l.as_str())).unzip();
    let rows = sqlx::query(
        "SELECT k.source_id, k.locator, e.idx, e.sha256, e.event, e.system \
         FROM unnest($1::text[], $2::text[]) AS k(source_id, locator) \
         CROSS JOIN LATERAL (SELECT idx, sha256, event, system FROM ledger_entries \
             WHERE source_id = k.source_id AND locator = k.locator \
             ORDER BY idx DESC LIMIT 1) e",
    )
    .bind(&sources)
    .bind(&locators)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get(0)?, r.try_get(1)?),
                Newest {
                    idx: unsigned(r.try_get::<i64, _>(2)?)?,
                    sha256: r.try_get(3)?,
                    event: r.try_get(4)?,
                    system: r.try_get(5)?,
                },
            ))
        })
        .collect()
}

/// The PostgreSQL side of the shared append sequence, on the ingest transaction's connection.
struct Ops<'c>(&'c mut PgConnection);

#[async_trait]
impl AppendOps for Ops<'_> {
    /// One statement over arrays, whatever the batch size.
    async fn insert_leaves(
        &mut self,
        leaves: &[NewLeaf],
        agent: &str,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let n = leaves.len();
        let mut idx = Vec::with_capacity(n);
        let mut record_id = Vec::with_capacity(n);
        let mut leaf_hash = Vec::with_capacity(n);
        let mut entry = Vec::with_capacity(n);
        let mut source_id = Vec::with_capacity(n);
        let mut locator = Vec::with_capacity(n);
        let mut system = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut event = Vec::with_capacity(n);
        let mut sha256 = Vec::with_capacity(n);
        let mut observed_at = Vec::with_capacity(n);
        let mut prev = Vec::with_capacity(n);
        for l in leaves {
            idx.push(signed(l.idx)?);
            record_id.push(l.record_id.as_str());
            leaf_hash.push(&l.leaf[..]);
            entry.push(&l.entry[..]);
            source_id.push(l.source_id.as_str());
            locator.push(l.locator.as_str());
            system.push(l.system.as_str());
            kind.push(l.kind.as_str());
            event.push(l.event);
            sha256.push(l.sha256.as_str());
            observed_at.push(l.observed_at.as_str());
            prev.push(l.prev.map(signed).transpose()?);
        }
        sqlx::query(
            "INSERT INTO ledger_entries (idx, record_id, leaf_hash, entry, agent, received_at, \
                 source_id, locator, system, kind, event, sha256, observed_at, prev) \
             SELECT u.idx, u.record_id, u.leaf_hash, u.entry, $1, $2, u.source_id, u.locator, \
                 u.system, u.kind, u.event, u.sha256, u.observed_at, u.prev \
             FROM unnest($3::bigint[], $4::text[], $5::bytea[], $6::bytea[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
                 $14::bigint[]) \
               AS u(idx, record_id, leaf_hash, entry, source_id, locator, system, kind, event, \
                 sha256, observed_at, prev)",
        )
        .bind(agent)
        .bind(received_at.to_string())
        .bind(&idx)
        .bind(&record_id)
        .bind(&leaf_hash)
        .bind(&entry)
        .bind(&source_id)
        .bind(&locator)
        .bind(&system)
        .bind(&kind)
        .bind(&event)
        .bind(&sha256)
        .bind(&observed_at)
        .bind(&prev)
        .execute(&mut *self.0)
        .await?;
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
        let levels: Vec<i32> = nodes.iter().map(|(id, _)| i32::from(id.level)).collect();
        let idxs = nodes
            .iter()
            .map(|(id, _)| signed(id.index))
            .collect::<Result<Vec<i64>, _>>()?;
        let hs: Vec<&[u8]> = nodes.iter().map(|(_, h)| &h[..]).collect();
        sqlx::query(
            "INSERT INTO ledger_hashes (level, idx, hash) \
             SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])",
        )
        .bind(&levels)
        .bind(&idxs)
        .bind(&hs)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// Also advances the sequencer row to the new size.
    async fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(signed(cp.size)?)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&mut *self.0)
        .await?;
        sqlx::query("UPDATE ledger_head SET size = $1")
            .bind(signed(cp.size)?)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

/// Opens the append transaction and takes the sequencer; returns the ledger size.
async fn lock_head(tx: &mut PgConnection) -> Result<u64, StoreError> {
    // The sequencer: waits here for any other replica's ingest to finish.
    let head: i64 = sqlx::query_scalar("SELECT size FROM ledger_head FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let held_size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries")
        .fetch_one(&mut *tx)
        .await?;
    if head != held_size {
        return Err(StoreError::Corrupt(format!(
            "ledger_head says {head} leaves but the ledger ends at {held_size}"
        )));
    }
    unsigned(head)
}

impl PgStore {
    /// The checkpoint of the newest size at most `size` (what an ingest that appended nothing
    /// answers with: another replica may have grown the tree since).
    async fn checkpoint_at_most(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM ledger_checkpoints \
             WHERE size <= $1 ORDER BY size DESC LIMIT 1",
        )
        .bind(signed(size)?)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_checkpoint).transpose()
    }

    // Issue 18: the pool for the session and token-scope queries in `sessions.rs`.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl LedgerStore for PgStore {
    async fn ingest(
        &self,
        agent: &str,
        records: &[EvidenceRecord],
        received_at: Timestamp,
        signer: &(dyn CheckpointSigner + Sync),
    ) -> Result<IngestOutcome, StoreError> {
        let ids = ingest::record_ids(records)?;
        let mut tx = self.pool.begin_with(BEGIN_INGEST).await?;
        let start = lock_head(&mut tx).await?;
        let held = held_ids(&mut tx, &ids).await?;
        let mut seen = HashSet::new();
        let keys: Vec<ArtifactKey> = records
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !held.contains_key(id.as_str()))
            .map(|(r, _)| ingest::artifact_key(r))
            .filter(|k| seen.insert(k.clone()))
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
        let checkpoint = match checkpoint {
            Some(cp) => Some(cp),
            None => self.checkpoint_at_most(next).await?,
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
        let mut tx = self.pool.begin_with(BEGIN_INGEST).await?;
        let start = lock_head(&mut tx).await?;
        let held = held_ids(&mut tx, std::slice::from_ref(&id)).await?;
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
                    "INSERT INTO confirmation_listings (digest, body) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO NOTHING",
                )
                .bind(c.digest.as_str())
                .bind(input.listing)
                .execute(&mut *tx)
                .await?;
                let at = c.observed_at.to_string();
                let locators: Vec<&str> = matched.iter().map(|a| a.locator.as_str()).collect();
                let shas: Vec<&str> = matched.iter().map(|a| a.sha256.as_str()).collect();
                sqlx::query(
                    "INSERT INTO artifact_seen (source_id, locator, sha256, confirmed_at, \
                         confirmation_idx) \
                     SELECT $1, u.locator, u.sha256, $2, $3 \
                     FROM unnest($4::text[], $5::text[]) AS u(locator, sha256) \
                     ON CONFLICT (source_id, locator) DO UPDATE SET sha256 = excluded.sha256, \
                         confirmed_at = excluded.confirmed_at, \
                         confirmation_idx = excluded.confirmation_idx \
                     WHERE artifact_seen.sha256 <> excluded.sha256 \
                        OR artifact_seen.confirmed_at < excluded.confirmed_at",
                )
                .bind(&c.source.id)
                .bind(&at)
                .bind(signed(start)?)
                .bind(&locators)
                .bind(&shas)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO source_health (agent, source_id, source_type, interval_secs, \
                         last_confirmed_at) VALUES ($1, $2, $3, 0, $4) \
                     ON CONFLICT (agent, source_id) DO UPDATE SET last_confirmed_at = \
                         GREATEST(COALESCE(source_health.last_confirmed_at, ''), \
                                  excluded.last_confirmed_at)",
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
        let tree_size = if duplicate { start } else { start + 1 };
        let checkpoint = match checkpoint {
            Some(cp) => Some(cp),
            None => self.checkpoint_at_most(tree_size).await?,
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
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn history(&self, system: &str) -> Result<Vec<StoredEvidence>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
             LEFT JOIN artifact_seen s ON s.source_id = e.source_id AND s.locator = e.locator \
                 AND s.sha256 = e.sha256 AND e.event = 'observed' \
             WHERE e.system = $1 ORDER BY e.idx",
        )
        .bind(system)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| decode::in_system(row_to_evidence(r)?, system))
            .collect()
    }

    async fn evidence(&self, record_id: &str) -> Result<Option<StoredEvidence>, StoreError> {
        let row = sqlx::query(
            "SELECT e.idx, e.record_id, e.entry, s.confirmed_at FROM ledger_entries e \
                 LEFT JOIN artifact_seen s ON s.source_id = e.source_id \
                     AND s.locator = e.locator AND s.sha256 = e.sha256 AND e.event = 'observed' \
                 WHERE e.record_id = $1 AND e.event <> $2",
        )
        .bind(record_id)
        .bind(CONFIRMED)
        .fetch_optional(&self.pool)
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
                 LEFT JOIN artifact_seen s ON s.source_id = e.source_id \
                     AND s.locator = e.locator AND s.sha256 = e.sha256 AND e.event = 'observed' \
                 WHERE e.sha256 = $1 AND e.event <> $2 ORDER BY e.idx LIMIT $3",
        )
        .bind(sha256)
        .bind(CONFIRMED)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
             WHERE e.source_id = $1 AND e.event <> $2 ORDER BY e.idx DESC LIMIT $3",
        )
        .bind(source)
        .bind(CONFIRMED)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    async fn entries(&self, start: u64, limit: u64) -> Result<Vec<LedgerEntryRow>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, entry FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
        )
        .bind(i64::try_from(start).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        decode::entry_rows(rows)
    }

    async fn system_entries(&self, system: &str) -> Result<Vec<LedgerEntryRow>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, entry FROM ledger_entries WHERE system = $1 \
             UNION ALL \
             SELECT idx, entry FROM ledger_entries WHERE event = $2 AND locator = '' \
                 AND source_id IN (SELECT DISTINCT source_id FROM ledger_entries WHERE system = $1) \
             ORDER BY idx",
        )
        .bind(system)
        .bind(CONFIRMED)
        .fetch_all(&self.pool)
        .await?;
        decode::entry_rows(rows)
    }

    async fn entry_rows(&self, start: u64, limit: u64) -> Result<Vec<crate::EntryRow>, StoreError> {
        let rows: Vec<decode::EntryColumns> = sqlx::query_as(&format!(
            "SELECT {} FROM ledger_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            decode::ENTRY_COLUMNS
        ))
        .bind(signed(start)?)
        .bind(signed(limit)?)
        .fetch_all(&self.pool)
        .await?;
        decode::full_entry_rows(rows)
    }

    async fn append_lock_available(&self, timeout: Duration) -> Result<bool, StoreError> {
        let ms = timeout.as_millis().clamp(1, 60_000);
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{ms}ms'"))
            .execute(&mut *tx)
            .await?;
        let got = sqlx::query("SELECT size FROM ledger_head FOR UPDATE")
            .fetch_one(&mut *tx)
            .await;
        tx.rollback().await?;
        match got {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn system_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT system FROM ledger_entries WHERE system <> '' ORDER BY system",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn tree_size(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT size FROM ledger_head")
            .fetch_one(&self.pool)
            .await?;
        unsigned(n)
    }

    async fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut map = HashMap::with_capacity(ids.len());
        fill_hashes(&mut conn, &mut map, ids).await?;
        ids_in_order(&map, ids)
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM ledger_checkpoints \
             ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_checkpoint).transpose()
    }

    async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let Ok(size) = i64::try_from(size) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM ledger_checkpoints WHERE size = $1",
        )
        .bind(size)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_checkpoint).transpose()
    }

    async fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        // Re-signing the same head replaces the note; a different root for a size already
        // signed is left alone (as in SQLite).
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO UPDATE SET note = excluded.note, created_at = excluded.created_at \
             WHERE ledger_checkpoints.root = excluded.root",
        )
        .bind(signed(cp.size)?)
        .bind(&cp.root[..])
        .bind(&cp.note)
        .bind(cp.created_at.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl StatusStore for PgStore {
    async fn put_heartbeats(
        &self,
        agent: &str,
        beats: &[SourceHeartbeat],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for b in beats {
            let at = b.polled_at.to_string();
            sqlx::query(
                "INSERT INTO source_health (agent, source_id, source_type, interval_secs, \
                     last_poll_at, last_ok_at, last_error, listed, records) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (agent, source_id) DO UPDATE SET \
                     source_type = excluded.source_type, interval_secs = excluded.interval_secs, \
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
        let rows: Vec<decode::SourceRow> = sqlx::query_as(&format!(
            "SELECT {} FROM source_health ORDER BY agent, source_id",
            decode::SOURCE_COLUMNS
        ))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // The upsert comes first: it locks the system's row, so two replicas replacing the same
        // system's assessment take turns instead of tripping over each other's rows.
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
        .execute(&mut *tx)
        .await?;
        // After the upsert: the system's row lock orders replicas, so the findings read here
        // are the ones this transaction replaces.
        if let Some(extra) = &a.events {
            let old = crate::outbox::postgres::current_findings(&mut tx, &a.system).await?;
            let mut events =
                crate::outbox::finding_events(&a.system, &old, &a.findings, a.assessed_at)?;
            events.extend(extra.iter().cloned());
            crate::outbox::postgres::insert_events(&mut tx, &events).await?;
        }
        sqlx::query("DELETE FROM control_status WHERE system = $1")
            .bind(&a.system)
            .execute(&mut *tx)
            .await?;
        if !a.controls.is_empty() {
            let controls: Vec<&str> = a.controls.iter().map(|c| c.control.as_str()).collect();
            let statuses: Vec<&str> = a.controls.iter().map(|c| c.status.as_str()).collect();
            let views = a
                .controls
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            sqlx::query(
                "INSERT INTO control_status (system, control, status, view) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])",
            )
            .bind(&a.system)
            .bind(&controls)
            .bind(&statuses)
            .bind(&views)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM findings WHERE system = $1")
            .bind(&a.system)
            .execute(&mut *tx)
            .await?;
        // A finding listed twice keeps its last occurrence (as SQLite's INSERT OR REPLACE does).
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, f) in a.findings.iter().enumerate() {
            last.insert(f.id.as_str(), i);
        }
        let kept: Vec<&Finding> = a
            .findings
            .iter()
            .enumerate()
            .filter(|(i, f)| last.get(f.id.as_str()) == Some(i))
            .map(|(_, f)| f)
            .collect();
        if !kept.is_empty() {
            let ids: Vec<&str> = kept.iter().map(|f| f.id.as_str()).collect();
            let kinds: Vec<&str> = kept.iter().map(|f| f.kind.as_str()).collect();
            let since: Vec<String> = kept.iter().map(|f| f.since.to_string()).collect();
            let bodies = kept
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            sqlx::query(
                "INSERT INTO findings (system, id, kind, since, body) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])",
            )
            .bind(&a.system)
            .bind(&ids)
            .bind(&kinds)
            .bind(&since)
            .bind(&bodies)
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
        .fetch_all(&self.pool)
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
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM systems WHERE id = $1")
            .bind(system)
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT view FROM control_status WHERE system = $1 ORDER BY control",
        )
        .bind(system)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(crate::decode::control_views(&rows)?))
    }

    async fn findings(&self, system: Option<&str>) -> Result<Vec<Finding>, StoreError> {
        let rows: Vec<String> = match system {
            Some(s) => {
                sqlx::query_scalar(
                    "SELECT body FROM findings WHERE system = $1 ORDER BY kind, since, id",
                )
                .bind(s)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT body FROM findings ORDER BY system, kind, since, id")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        crate::decode::findings(&rows)
    }

    async fn finding_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, COUNT(*) FROM findings GROUP BY kind ORDER BY kind")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[async_trait]
impl AccessStore for PgStore {
    async fn create_token(&self, t: &NewToken) -> Result<(), StoreError> {
        crate::sessions::postgres::create_scoped_token(self, t).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        crate::sessions::postgres::scoped_token_by_hash(self, token_hash).await
    }

    async fn revoke_tokens(&self, name: &str, at: Timestamp) -> Result<u64, StoreError> {
        let r =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(at.to_string())
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    async fn create_session(&self, n: &crate::NewSession) -> Result<(), StoreError> {
        crate::sessions::postgres::create_session(self, n).await
    }

    async fn session_by_hash(&self, h: &str) -> Result<Option<crate::SessionInfo>, StoreError> {
        crate::sessions::postgres::session_by_hash(self, h).await
    }

    async fn delete_session(&self, h: &str) -> Result<bool, StoreError> {
        crate::sessions::postgres::delete_session(self, h).await
    }

    async fn revoke_sessions(&self, name: &str, at: Timestamp) -> Result<u64, StoreError> {
        crate::sessions::postgres::revoke_sessions(self, name, at).await
    }
}

crate::outbox::impl_outbox_store!(PgStore, postgres);

#[async_trait]
impl crate::BlobStore for PgStore {
    fn blob_staging_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join("aims-uploads")
    }

    async fn put_blob(
        &self,
        sha256: &aims_model::ContentHash,
        size: u64,
        staged: &std::path::Path,
    ) -> Result<bool, StoreError> {
        crate::blobs::postgres::put(self, sha256, size, staged).await
    }

    async fn blob(
        &self,
        sha256: &aims_model::ContentHash,
    ) -> Result<Option<crate::Blob>, StoreError> {
        crate::blobs::postgres::get(self, sha256).await
    }

    async fn delete_blob(&self, sha256: &aims_model::ContentHash) -> Result<(), StoreError> {
        crate::blobs::postgres::delete(self, sha256).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/aims?sslmode=require"),
            "postgres://u:***@db:5432/aims?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/aims"), "postgres://u@db/aims");
        assert_eq!(redact_url("postgresql://db/aims"), "postgresql://db/aims");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
