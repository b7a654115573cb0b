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
//!
//! The `Store` traits are implemented once for both backends ([`crate::portable`]); this module
//! holds what is PostgreSQL's own: the sequencer, the append's statements over arrays, the
//! batched inserts of the assessment and the outbox, claims with `SKIP LOCKED`, and the
//! [`crate::BlobStore`] (a table).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use aims_ledger::merkle::{Hash, NodeId};
use aims_model::{Confirmation, Finding, ListedArtifact, Timestamp};

use crate::append::AppendOps;
use crate::decode::{signed, unsigned};
use crate::ingest::{ArtifactKey, NewLeaf, Newest};
use crate::outbox::{self, ClaimRow, Claimed, NewEvent, claimed, delivery_id, state};
use crate::{StoreError, StoredAssessment, StoredCheckpoint};

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

/// What [`PgStore::writer`] returns: the pool.
pub(crate) struct PgWriter<'a>(&'a PgPool);

impl std::ops::Deref for PgWriter<'_> {
    type Target = PgPool;

    fn deref(&self) -> &PgPool {
        self.0
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

    /// The pool reads go to (see [`crate::portable`]).
    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// The pool writes go to: replicas serialise in the database (row locks, the sequencer),
    /// so there is nothing to hold here. A guard only so that portable code reads alike for
    /// both backends (SQLite's is a lock).
    pub(crate) async fn writer(&self) -> PgWriter<'_> {
        PgWriter(&self.pool)
    }
}

/// Reads the stored hashes of `ids` into `map` (skipping those already there) with one query.
/// Absent nodes are left out of the map.
pub(crate) async fn fill_hashes(
    conn: &mut PgConnection,
    map: &mut HashMap<NodeId, Hash>,
    ids: &[NodeId],
) -> Result<(), StoreError> {
    let want = crate::hashes::missing(map, ids);
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
        let level = i64::from(row.try_get::<i32, _>(0)?);
        let (id, hash) =
            crate::hashes::node_hash(level, row.try_get(1)?, row.try_get::<&[u8], _>(2)?)?;
        map.insert(id, hash);
    }
    Ok(())
}

/// The record IDs of the batch already in the ledger, with their index.
pub(crate) async fn held_records(
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
pub(crate) async fn newest_entries(
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
pub(crate) struct Ops<'c>(pub(crate) &'c mut PgConnection);

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
        crate::ledger_store::postgres::insert_checkpoint(self.0, cp).await?;
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

/// Opens the append transaction and takes the sequencer (see the module docs); returns the
/// ledger size. The transaction is the lock: the guard is only the pool.
pub(crate) async fn begin_append(
    s: &PgStore,
) -> Result<(PgWriter<'_>, Transaction<'static, Postgres>, u64), StoreError> {
    let w = s.writer().await;
    let mut tx = w.begin_with(BEGIN_INGEST).await?;
    let start = lock_head(&mut tx).await?;
    Ok((w, tx, start))
}

/// Commits the append transaction, which releases the sequencer.
pub(crate) async fn commit_append(
    _lock: PgWriter<'_>,
    tx: Transaction<'static, Postgres>,
) -> Result<(), StoreError> {
    Ok(tx.commit().await?)
}

/// Moves the observation time of the artifacts a confirmation matched (`artifact_seen`), in
/// one statement.
pub(crate) async fn mark_seen(
    conn: &mut PgConnection,
    c: &Confirmation,
    matched: &[&ListedArtifact],
    at: &str,
    start: u64,
) -> Result<(), StoreError> {
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
    .bind(at)
    .bind(signed(start)?)
    .bind(&locators)
    .bind(&shas)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn append_lock_available(
    s: &PgStore,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let ms = timeout.as_millis().clamp(1, 60_000);
    let mut tx = s.pool.begin().await?;
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

/// The ledger size: the sequencer row, which every append advances.
pub(crate) async fn tree_size(s: &PgStore) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT size FROM ledger_head")
        .fetch_one(&s.pool)
        .await?;
    unsigned(n)
}

/// Inserts a system's control views and findings (after `status::clear_system`), one batch
/// statement each. A finding listed twice keeps its last occurrence (as SQLite's
/// `INSERT OR REPLACE` does).
pub(crate) async fn insert_assessment_rows(
    conn: &mut PgConnection,
    a: &StoredAssessment,
) -> Result<(), StoreError> {
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
        .execute(&mut *conn)
        .await?;
    }
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
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

// The outbox's dialect-specific statements (see `outbox.rs`).

/// Records `events` (each key once) inside an open transaction.
pub(crate) async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[NewEvent],
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let systems: Vec<Option<&str>> = events.iter().map(|e| e.system.as_deref()).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
    let times: Vec<String> = events.iter().map(|e| e.created_at.to_string()).collect();
    let n = sqlx::query(
        "INSERT INTO notify_events (key, event, system, payload, created_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&keys)
    .bind(&kinds)
    .bind(&systems)
    .bind(&payloads)
    .bind(&times)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}

/// Creates the delivery rows of `sink` (see `OutboxStore::route_events`).
pub(crate) async fn route_events(
    s: &PgStore,
    sink: &str,
    routes: &[(u64, bool)],
    now: Timestamp,
) -> Result<(), StoreError> {
    if routes.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = routes
        .iter()
        .map(|(s, _)| outbox::signed(*s))
        .collect::<Result<_, _>>()?;
    let keys: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, key FROM notify_events WHERE seq = ANY($1)")
            .bind(&seqs)
            .fetch_all(s.reader())
            .await?;
    let key_of: BTreeMap<i64, String> = keys.into_iter().collect();
    let mut rows_seq = Vec::new();
    let mut rows_delivery = Vec::new();
    let mut rows_state = Vec::new();
    for (seq, wanted) in routes {
        let seq = outbox::signed(*seq)?;
        let key = key_of
            .get(&seq)
            .ok_or_else(|| StoreError::Conflict(format!("outbox event {seq} vanished")))?;
        rows_seq.push(seq);
        rows_delivery.push(delivery_id(key, sink));
        rows_state.push(if *wanted {
            state::PENDING
        } else {
            state::SKIPPED
        });
    }
    sqlx::query(
        "INSERT INTO notify_deliveries (seq, sink, delivery, state, attempts, next_at, updated_at) \
         SELECT r.seq, $2, r.delivery, r.state, 0, $3, $3 \
         FROM unnest($1::bigint[], $4::text[], $5::text[]) AS r(seq, delivery, state) \
         ON CONFLICT (seq, sink) DO NOTHING",
    )
    .bind(&rows_seq)
    .bind(sink)
    .bind(now.to_string())
    .bind(&rows_delivery)
    .bind(&rows_state)
    .execute(&*s.writer().await)
    .await?;
    Ok(())
}

/// Claims due deliveries under a lease (see `OutboxStore::claim_deliveries`).
pub(crate) async fn claim_deliveries(
    s: &PgStore,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<Claimed>, StoreError> {
    let mut tx = s.writer().await.begin().await?;
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "UPDATE notify_deliveries SET lease_until = $2 WHERE (seq, sink) IN \
         (SELECT seq, sink FROM notify_deliveries WHERE state = 'pending' AND next_at <= $1 \
          AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_at LIMIT $3 \
          FOR UPDATE SKIP LOCKED) \
         RETURNING seq, sink, delivery, attempts::bigint, first_attempt_at",
    )
    .bind(now.to_string())
    .bind(lease_until.to_string())
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, sink, delivery, attempts, first) in rows {
        let row = crate::outbox::postgres::event_by_seq(&mut tx, seq).await?;
        out.push(claimed((seq, sink, delivery, attempts, first), row)?);
    }
    tx.commit().await?;
    Ok(out)
}

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
