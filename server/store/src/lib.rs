//! aims-store: persistence of the evidence ledger, tokens and the materialised assessment.
//!
//! The [`Store`] trait is what the server talks to; [`SqliteStore`] is the embedded default and
//! [`PgStore`] the scale-out store that several server replicas share.
//! Invariants every implementation keeps:
//! - **Append-only ledger.** Each accepted record becomes exactly one leaf; leaf indices are dense
//!   and never reused; a record already held (same `record_id`) gets its old index back.
//! - **One writer.** Appends are serialised (across processes, for PostgreSQL), and the entries,
//!   their subtree hashes and the new checkpoint are written in one transaction, so a crash
//!   leaves either all or none of a batch.
//! - **Stored bytes are the truth.** The entry bytes that were hashed are stored verbatim; proofs
//!   and exports never re-serialise them.
//!
//! Layout: each trait is implemented once for both backends in the module of its concern
//! (`ledger_store.rs`, `status.rs`, `access.rs`, `outbox.rs`) through the `portable!` macro
//! (`portable.rs`), with rows decoded in `decode.rs` and the append sequence in `append.rs`;
//! `sqlite.rs` and `postgres.rs` hold only what differs (connections, the append lock, batched
//! inserts, the blob store).

mod access;
mod append;
pub mod blobs;
mod decode;
mod error;
mod hashes;
mod ingest;
mod ledger_store;
pub mod outbox;
mod portable;
mod postgres;
mod sqlite;
mod status;
mod types;
mod url;

pub use aims_ledger::LedgerEntry;
pub use blobs::{Blob, BlobData, BlobStore};
pub use decode::silent_after_secs;
pub use error::{StoreError, StoreErrorKind};
pub use ingest::entry_bytes;
pub use postgres::{PgStore, redact_url};
pub use sqlite::SqliteStore;
pub use types::*;
pub use url::DatabaseUrl;

use std::collections::HashMap;

use aims_ledger::merkle::{self, Hash, NodeId};
use async_trait::async_trait;

use aims_model::wire::{ControlView, SourceHealth, SourceHeartbeat, SystemSummary};
use aims_model::{EvidenceRecord, Finding, Timestamp};

/// Everything the server persists: the [`LedgerStore`], the [`StatusStore`], the
/// [`AccessStore`], the [`OutboxStore`] and the [`BlobStore`], split by reason to change. Implementations are cheap
/// to share (`Arc<dyn Store>`) and safe to call concurrently; appends are serialised internally.
pub trait Store: LedgerStore + StatusStore + AccessStore + OutboxStore + BlobStore {}

impl<T: LedgerStore + StatusStore + AccessStore + OutboxStore + BlobStore> Store for T {}

/// The append-only ledger: appends (evidence and confirmations), reads of entries and records,
/// the Merkle tree's stored hashes and proofs, and signed checkpoints.
#[async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// Appends the records to the ledger in one transaction. `agent` is the authenticated
    /// principal. Records already held are not appended again; their old index is returned.
    /// The outcome lists every record in input order. `signer` is called inside the transaction
    /// with the new tree head so the checkpoint commits atomically with the entries.
    async fn ingest(
        &self,
        agent: &str,
        records: &[EvidenceRecord],
        received_at: Timestamp,
        signer: &(dyn CheckpointSigner + Sync),
    ) -> Result<IngestOutcome, StoreError>;

    /// Appends a confirmation (one leaf, `prev` = the source's previous confirmation), keeps its
    /// listing by digest and moves the observation time of every listed artifact whose newest
    /// entry has the listed content, in one transaction. A confirmation already held gets its
    /// old index back.
    async fn ingest_confirmation(
        &self,
        agent: &str,
        input: &ConfirmationInput<'_>,
        received_at: Timestamp,
        signer: &(dyn CheckpointSigner + Sync),
    ) -> Result<ConfirmationOutcome, StoreError>;

    /// The listing bytes of a confirmation, by digest.
    async fn confirmation_listing(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every record of one system, in ledger order.
    async fn history(&self, system: &str) -> Result<Vec<StoredEvidence>, StoreError>;

    /// One record by its ID.
    async fn evidence(&self, record_id: &str) -> Result<Option<StoredEvidence>, StoreError>;

    /// The records (never confirmations) whose content has this SHA-256 (lowercase hex), in
    /// ledger order, at most `limit` of them: where a file an auditor holds appears in the
    /// ledger. Served by an index on the digest.
    async fn evidence_by_sha256(
        &self,
        sha256: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvidence>, StoreError>;

    /// The newest records (never confirmations) of source `source`, newest first, at most
    /// `limit` of them: the evidence a source produced (`/sources` links to it). Source ids are
    /// per agent; callers keep the rows of the agent they want. Served by an index on
    /// (source, leaf).
    async fn evidence_by_source(
        &self,
        source: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvidence>, StoreError>;

    /// Ledger entries `[start, start + limit)` in order.
    async fn entries(&self, start: u64, limit: u64) -> Result<Vec<LedgerEntryRow>, StoreError>;

    /// What the ledger replay of one system needs, in ledger order: its entries, and the
    /// confirmations of the sources its records came from (leaf index and entry bytes).
    async fn system_entries(&self, system: &str) -> Result<Vec<LedgerEntryRow>, StoreError>;

    /// Ledger rows `[start, start + limit)` in order with every column (integrity checks).
    async fn entry_rows(&self, start: u64, limit: u64) -> Result<Vec<EntryRow>, StoreError>;

    /// Whether the append lock can be taken within `timeout` (PostgreSQL: the sequencer row a
    /// frozen replica may hold; SQLite: always). For `/readyz`.
    async fn append_lock_available(
        &self,
        timeout: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let _ = timeout;
        Ok(true)
    }

    /// All system IDs that have evidence.
    async fn system_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Current ledger size.
    async fn tree_size(&self) -> Result<u64, StoreError>;

    /// Stored complete-subtree hashes by node, in the order asked.
    async fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;

    /// The root of the tree of the first `size` leaves.
    async fn tree_root(&self, size: u64) -> Result<Hash, StoreError> {
        let ids = hashes::needed(|r| merkle::tree_root(size, r))?;
        let map = self.hash_map(&ids).await?;
        hashes::run(&map, |r| merkle::tree_root(size, r))
    }

    /// RFC 6962 inclusion proof of leaf `index` in the tree of `size` leaves.
    async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let ids = hashes::needed(|r| merkle::inclusion_proof(index, size, r))?;
        let map = self.hash_map(&ids).await?;
        hashes::run(&map, |r| merkle::inclusion_proof(index, size, r))
    }

    /// RFC 6962 consistency proof from size `m` to size `n`.
    async fn consistency_proof(&self, m: u64, n: u64) -> Result<Vec<Hash>, StoreError> {
        let ids = hashes::needed(|r| merkle::consistency_proof(m, n, r))?;
        let map = self.hash_map(&ids).await?;
        hashes::run(&map, |r| merkle::consistency_proof(m, n, r))
    }

    /// Reads `ids` into a map (helper for the provided proof methods).
    async fn hash_map(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let hs = self.read_hashes(ids).await?;
        Ok(ids.iter().copied().zip(hs).collect())
    }

    /// The newest signed checkpoint.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// The checkpoint signed at exactly this size.
    async fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Stores a checkpoint outside an ingest (first start, re-cosigning on a timer).
    async fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError>;
}

/// The materialised status: assessments per system, findings, and source health from
/// heartbeats (none of it in the ledger; all of it recomputable from it and the heartbeats).
#[async_trait]
pub trait StatusStore: Send + Sync + 'static {
    /// Records an agent's report of its polls (not in the ledger).
    async fn put_heartbeats(
        &self,
        agent: &str,
        beats: &[SourceHeartbeat],
    ) -> Result<(), StoreError>;

    /// Every (agent, source) heard of, judged as of `now`, ordered by agent then source.
    async fn sources(&self, now: Timestamp) -> Result<Vec<SourceHealth>, StoreError>;

    /// Replaces the materialised assessment of one system.
    async fn put_assessment(&self, assessment: &StoredAssessment) -> Result<(), StoreError>;

    /// The materialised summary of every system.
    async fn systems(&self) -> Result<Vec<SystemSummary>, StoreError>;

    /// The materialised controls of one system, `None` if the system is unknown.
    async fn system_controls(&self, system: &str) -> Result<Option<Vec<ControlView>>, StoreError>;

    /// Open findings, optionally for one system.
    async fn findings(&self, system: Option<&str>) -> Result<Vec<Finding>, StoreError>;

    /// The number of open findings of each kind (kinds with none are absent), without reading
    /// the findings themselves (for `/metrics`).
    async fn finding_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Who may call: API tokens (by hash) and dashboard sessions. Implemented once for both
/// backends in `access.rs`.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Stores a new token (only its hash).
    async fn create_token(&self, token: &NewToken) -> Result<(), StoreError>;

    /// Looks a token up by the hex SHA-256 of its secret.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>, StoreError>;

    /// Revokes every token with this name; returns how many were revoked.
    async fn revoke_tokens(&self, name: &str, at: Timestamp) -> Result<u64, StoreError>;

    /// Stores a new dashboard session, deleting sessions that expired by its creation time.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// A session by the hex SHA-256 of its id, joined with the current state of its token;
    /// `None` when unknown. Expired and revoked sessions are returned too: callers check
    /// [`SessionInfo::is_valid_at`].
    async fn session_by_hash(&self, id_hash: &str) -> Result<Option<SessionInfo>, StoreError>;

    /// Deletes a session (sign-out); returns whether it existed.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;

    /// Revokes the live sessions of every token named `token_name`; returns how many.
    async fn revoke_sessions(&self, token_name: &str, at: Timestamp) -> Result<u64, StoreError>;
}

/// The durable notification outbox (issue 15): events, their deliveries per sink and the retry
/// state. Implemented once for both backends in `outbox.rs` (the statements whose dialect
/// differs are in `sqlite.rs` and `postgres.rs`); the finding events are written by
/// [`StatusStore::put_assessment`] in its own transaction.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Records events, each key once; returns how many were new.
    async fn put_events(&self, events: &[outbox::NewEvent]) -> Result<u64, StoreError>;

    /// The sequence number below which `sink` is never told anything: the newest event when
    /// the sink was first seen (recorded then).
    async fn sink_floor(&self, sink: &str) -> Result<u64, StoreError>;

    /// Events above `floor` with no delivery row for `sink` yet, oldest first.
    async fn unrouted_events(
        &self,
        sink: &str,
        floor: u64,
        limit: u32,
    ) -> Result<Vec<outbox::StoredEvent>, StoreError>;

    /// Creates the delivery rows of `sink` for these events: pending when wanted, else skipped.
    /// Rows that exist already are kept.
    async fn route_events(
        &self,
        sink: &str,
        routes: &[(u64, bool)],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` pending deliveries due at `now` and not leased, leasing them until
    /// `lease_until` (a replica that dies mid-attempt releases them by the lease's end).
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<outbox::Claimed>, StoreError>;

    /// Records the outcome of an attempt and releases the lease.
    async fn finish_delivery(
        &self,
        seq: u64,
        sink: &str,
        result: &outbox::DeliveryResult,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deliveries by sink and state, with the newest error of each group.
    async fn outbox_counts(&self) -> Result<Vec<outbox::OutboxCount>, StoreError>;
}
