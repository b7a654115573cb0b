//! Issue 15: the durable notification outbox, for both backends. The `OutboxStore` methods
//! delegate here.
//!
//! - **Events** (`notify_events`) are facts to tell people about: a finding opened, resolved or
//!   acknowledged (computed here, inside the transaction that replaces a system's assessment,
//!   from the findings it replaces), a freshness window about to close, a source gone silent
//!   (computed by the server and handed in). Each has a unique `key`, so an event computed
//!   twice (two replicas assessing the same system, a re-assessment) is stored once.
//! - **Deliveries** (`notify_deliveries`), one per (event, sink): the server fans each new event
//!   out to every configured sink (`skipped` when the sink's filters do not want it), claims due
//!   deliveries under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so each is attempted by
//!   one replica at a time), and records the outcome: delivered, retry at a time, failed
//!   (refused by the receiver) or dead (undelivered for too long). The delivery id is derived
//!   from the event key and the sink, so it is the same on every retry and on every replica.
//! - A sink's **floor** (`notify_sinks`) is the newest event when the sink was first seen: a sink
//!   added to an old server is told what happens from then on, not the whole history. Fan-out
//!   looks at every event above the floor without a delivery row for the sink, so an event
//!   committed late (a lower sequence number committed after a higher one, as PostgreSQL
//!   sequences allow) is not skipped.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use aims_model::{Finding, Timestamp};
use async_trait::async_trait;

use crate::decode::{opt_ts, ts};
use crate::portable::portable;
use crate::{OutboxStore, StoreError};

/// An event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique per occurrence, e.g. `finding.opened:<id>:<since>`.
    pub key: String,
    /// `finding.opened`, `finding.resolved`, `finding.acknowledged`, `evidence.expiring`,
    /// `source.silent`.
    pub event: String,
    /// The AI system it concerns, if one.
    pub system: Option<String>,
    /// JSON: the finding (finding events) or what the server chose to record.
    pub payload: String,
    /// When it happened.
    pub created_at: Timestamp,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position in the outbox.
    pub seq: u64,
    /// As [`NewEvent`].
    pub key: String,
    /// As [`NewEvent`].
    pub event: String,
    /// As [`NewEvent`].
    pub system: Option<String>,
    /// As [`NewEvent`].
    pub payload: String,
    /// As [`NewEvent`].
    pub created_at: Timestamp,
}

/// A delivery claimed for an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The event.
    pub event: StoredEvent,
    /// The sink's name.
    pub sink: String,
    /// The delivery id (the same on every attempt).
    pub delivery: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the first attempt was made, if any was.
    pub first_attempt_at: Option<Timestamp>,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver took it.
    Delivered,
    /// Try again at `next_at`.
    Retry {
        /// When.
        next_at: Timestamp,
        /// Why the attempt failed.
        error: String,
    },
    /// The receiver refused it; not retried.
    Failed {
        /// Why.
        error: String,
    },
    /// Undelivered for too long; given up (a dead letter).
    Dead {
        /// The last reason.
        error: String,
    },
}

/// States of a delivery row.
pub mod state {
    /// Waiting for its next attempt.
    pub const PENDING: &str = "pending";
    /// Taken by the receiver.
    pub const DELIVERED: &str = "delivered";
    /// Refused by the receiver.
    pub const FAILED: &str = "failed";
    /// Given up after the maximum age.
    pub const DEAD: &str = "dead";
    /// Not wanted by the sink's filters.
    pub const SKIPPED: &str = "skipped";
}

/// Deliveries by sink and state (for `/metrics` and `/sources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxCount {
    /// The sink.
    pub sink: String,
    /// One of [`state`].
    pub state: String,
    /// How many.
    pub count: u64,
    /// The newest error of those deliveries, if any has one.
    pub last_error: Option<String>,
}

/// The delivery id of `key` to `sink`: 32 hex characters, stable across retries and replicas.
pub fn delivery_id(key: &str, sink: &str) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(sink.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The finding events of replacing `old` findings of `system` by `new` ones at `at`: every new
/// finding id opened, every vanished one resolved, every acknowledgement that appeared.
pub fn finding_events(
    system: &str,
    old: &[Finding],
    new: &[Finding],
    at: Timestamp,
) -> Result<Vec<NewEvent>, StoreError> {
    let old_by_id: BTreeMap<&str, &Finding> = old.iter().map(|f| (f.id.as_str(), f)).collect();
    let new_ids: BTreeSet<&str> = new.iter().map(|f| f.id.as_str()).collect();
    let mut out = Vec::new();
    let mut push = |event: &str, key: String, f: &Finding| -> Result<(), StoreError> {
        out.push(NewEvent {
            key,
            event: event.to_owned(),
            system: Some(system.to_owned()),
            payload: serde_json::to_string(f)?,
            created_at: at,
        });
        Ok(())
    };
    let mut seen = BTreeSet::new();
    for f in new {
        if !seen.insert(f.id.as_str()) {
            continue;
        }
        match old_by_id.get(f.id.as_str()) {
            None => push(
                "finding.opened",
                format!("finding.opened:{}:{}", f.id, f.since),
                f,
            )?,
            Some(before) => {
                if let Some(ack) = &f.acknowledged
                    && before.acknowledged.as_ref() != Some(ack)
                {
                    push(
                        "finding.acknowledged",
                        format!("finding.acknowledged:{}:{}", f.id, ack.at),
                        f,
                    )?;
                }
            }
        }
    }
    for (id, f) in &old_by_id {
        if !new_ids.contains(id) {
            push(
                "finding.resolved",
                format!("finding.resolved:{id}:{}", f.since),
                f,
            )?;
        }
    }
    Ok(out)
}

/// The columns of an event row, in [`StoredEvent`] order.
const EVENT_COLUMNS: &str = "e.seq, e.key, e.event, e.system, e.payload, e.created_at";
pub(crate) type EventRow = (i64, String, String, Option<String>, String, String);

fn stored_event(row: EventRow) -> Result<StoredEvent, StoreError> {
    let (seq, key, event, system, payload, created_at) = row;
    Ok(StoredEvent {
        seq: unsigned(seq)?,
        key,
        event,
        system,
        payload,
        created_at: ts(&created_at)?,
    })
}

fn unsigned(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Encoding(format!("negative outbox number {v}")))
}

pub(crate) fn signed(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Encoding(format!("outbox number {v} out of range")))
}

/// Deliveries by sink and state with the newest error of each group (the same SQL on both
/// backends).
const COUNTS_SQL: &str = "SELECT sink, state, COUNT(*), \
     (SELECT last_error FROM notify_deliveries i WHERE i.sink = o.sink AND i.state = o.state \
      AND i.last_error IS NOT NULL ORDER BY i.updated_at DESC LIMIT 1) \
     FROM notify_deliveries o GROUP BY sink, state ORDER BY sink, state";
type CountRow = (String, String, i64, Option<String>);

fn outbox_count((sink, state, n, last_error): CountRow) -> Result<OutboxCount, StoreError> {
    Ok(OutboxCount {
        sink,
        state,
        count: unsigned(n)?,
        last_error,
    })
}

/// A delivery row claimed: seq, sink, delivery, attempts, first attempt.
pub(crate) type ClaimRow = (i64, String, String, i64, Option<String>);

pub(crate) fn claimed(claim: ClaimRow, event: EventRow) -> Result<Claimed, StoreError> {
    let (_, sink, delivery, attempts, first) = claim;
    Ok(Claimed {
        event: stored_event(event)?,
        sink,
        delivery,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        first_attempt_at: opt_ts(first.as_deref())?,
    })
}

fn outcome_columns(r: &DeliveryResult) -> (&'static str, Option<String>, Option<&str>) {
    match r {
        DeliveryResult::Delivered => (state::DELIVERED, None, None),
        DeliveryResult::Retry { next_at, error } => {
            (state::PENDING, Some(next_at.to_string()), Some(error))
        }
        DeliveryResult::Failed { error } => (state::FAILED, None, Some(error)),
        DeliveryResult::Dead { error } => (state::DEAD, None, Some(error)),
    }
}

portable! {
    /// One stored event by its sequence number, on the claiming transaction's connection.
    pub(crate) async fn event_by_seq(conn: &mut Conn, seq: i64) -> Result<EventRow, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM notify_events e WHERE e.seq = $1"
        ))
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?)
    }

    #[async_trait]
    impl OutboxStore for S {
        async fn put_events(&self, events: &[NewEvent]) -> Result<u64, StoreError> {
            let w = self.writer().await;
            let mut tx = w.begin().await?;
            let n = backend::insert_events(&mut tx, events).await?;
            tx.commit().await?;
            Ok(n)
        }

        async fn sink_floor(&self, sink: &str) -> Result<u64, StoreError> {
            let w = self.writer().await;
            // `WHERE true` tells SQLite's parser the `ON CONFLICT` is the upsert's.
            sqlx::query(
                "INSERT INTO notify_sinks (sink, floor) \
                 SELECT $1, COALESCE(MAX(seq), 0) FROM notify_events WHERE true \
                 ON CONFLICT (sink) DO NOTHING",
            )
            .bind(sink)
            .execute(&*w)
            .await?;
            let (floor,): (i64,) = sqlx::query_as("SELECT floor FROM notify_sinks WHERE sink = $1")
                .bind(sink)
                .fetch_one(&*w)
                .await?;
            unsigned(floor)
        }

        async fn unrouted_events(
            &self,
            sink: &str,
            floor: u64,
            limit: u32,
        ) -> Result<Vec<StoredEvent>, StoreError> {
            let rows: Vec<EventRow> = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM notify_events e WHERE e.seq > $1 AND NOT EXISTS \
                 (SELECT 1 FROM notify_deliveries d WHERE d.seq = e.seq AND d.sink = $2) \
                 ORDER BY e.seq LIMIT $3"
            ))
            .bind(signed(floor)?)
            .bind(sink)
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
            rows.into_iter().map(stored_event).collect()
        }

        async fn route_events(
            &self,
            sink: &str,
            routes: &[(u64, bool)],
            now: Timestamp,
        ) -> Result<(), StoreError> {
            backend::route_events(self, sink, routes, now).await
        }

        async fn claim_deliveries(
            &self,
            now: Timestamp,
            lease_until: Timestamp,
            limit: u32,
        ) -> Result<Vec<Claimed>, StoreError> {
            backend::claim_deliveries(self, now, lease_until, limit).await
        }

        async fn finish_delivery(
            &self,
            seq: u64,
            sink: &str,
            result: &DeliveryResult,
            now: Timestamp,
        ) -> Result<(), StoreError> {
            let (st, next_at, error) = outcome_columns(result);
            let w = self.writer().await;
            sqlx::query(
                "UPDATE notify_deliveries SET state = $1, attempts = attempts + 1, \
                 next_at = COALESCE($2, next_at), last_error = $3, lease_until = NULL, \
                 first_attempt_at = COALESCE(first_attempt_at, $4), updated_at = $4 \
                 WHERE seq = $5 AND sink = $6",
            )
            .bind(st)
            .bind(next_at)
            .bind(error)
            .bind(now.to_string())
            .bind(signed(seq)?)
            .bind(sink)
            .execute(&*w)
            .await?;
            Ok(())
        }

        async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError> {
            let rows: Vec<CountRow> = sqlx::query_as(COUNTS_SQL).fetch_all(self.reader()).await?;
            rows.into_iter().map(outbox_count).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_model::FindingKind;

    fn finding(kind: FindingKind, evidence: &str) -> Finding {
        Finding::new(
            kind,
            "credit",
            vec!["A.6.2.4".into()],
            Timestamp::parse_utc("2026-12-01T00:00:00Z").unwrap_or_else(|_| Timestamp::now()),
            vec![aims_model::ContentHash::of(evidence.as_bytes())],
            "stale".into(),
        )
    }

    #[test]
    fn opened_resolved_and_acknowledged() -> Result<(), StoreError> {
        let now = Timestamp::now();
        let a = finding(FindingKind::Stale, "a");
        let b = finding(FindingKind::Changed, "b");
        let opened = finding_events("credit", &[], std::slice::from_ref(&a), now)?;
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].event, "finding.opened");
        assert!(
            opened[0]
                .key
                .starts_with(&format!("finding.opened:{}:", a.id))
        );
        // Unchanged: nothing.
        assert!(
            finding_events(
                "credit",
                std::slice::from_ref(&a),
                std::slice::from_ref(&a),
                now
            )?
            .is_empty()
        );
        // a resolved, b opened.
        let ev = finding_events(
            "credit",
            std::slice::from_ref(&a),
            std::slice::from_ref(&b),
            now,
        )?;
        let kinds: Vec<&str> = ev.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(kinds, ["finding.opened", "finding.resolved"]);
        // Acknowledged once.
        let mut acked = b.clone();
        acked.acknowledged = Some(aims_model::acknowledgement::Acknowledgement {
            by: "lead".into(),
            reason: "accepted".into(),
            at: now,
            expires_at: now,
        });
        let ev = finding_events(
            "credit",
            std::slice::from_ref(&b),
            std::slice::from_ref(&acked),
            now,
        )?;
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event, "finding.acknowledged");
        assert!(finding_events("credit", &[acked.clone()], &[acked], now)?.is_empty());
        Ok(())
    }

    #[test]
    fn delivery_ids_are_stable_per_sink() {
        assert_eq!(delivery_id("k", "hook"), delivery_id("k", "hook"));
        assert_ne!(delivery_id("k", "hook"), delivery_id("k", "slack"));
        assert_eq!(delivery_id("k", "hook").len(), 32);
    }
}
