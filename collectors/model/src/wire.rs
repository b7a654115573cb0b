//! Request and response bodies of the v1 JSON API (DESIGN §7) shared by agent, server and tests.

use serde::{Deserialize, Serialize};

use crate::assessment::{ControlStatus, Finding};
use crate::confirmation::{Confirmation, ListedArtifact};
use crate::record::{ContentHash, EvidenceRecord, RecordId, SourceRef};
use crate::time::Timestamp;

/// Largest number of records accepted in one `POST /v1/evidence`.
pub const MAX_BATCH_RECORDS: usize = 1000;

/// `POST /v1/evidence` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// The records, at most [`MAX_BATCH_RECORDS`].
    pub records: Vec<EvidenceRecord>,
}

/// One record's place in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// `hex(SHA-256(JCS(record)))`.
    pub record_id: RecordId,
    /// The record's leaf index in the ledger.
    pub leaf_index: u64,
    /// True when the server already held this record (its old index is returned).
    #[serde(default)]
    pub duplicate: bool,
}

/// `POST /v1/evidence` response: every record of the batch with its leaf index, in batch order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IngestResponse {
    /// One entry per record of the request.
    pub accepted: Vec<Accepted>,
    /// How many of them the server already held.
    pub duplicates: usize,
    /// The ledger size after this batch.
    #[serde(default)]
    pub tree_size: u64,
    /// The signed checkpoint covering the batch (C2SP signed note text), when the server signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// Counts of controls per status, as in `GET /v1/systems`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Controls whose evidence is current.
    pub fresh: u32,
    /// Controls whose newest evidence is older than its window.
    pub stale: u32,
    /// Controls with a changed, failed, inconsistent or gone finding.
    pub drifted: u32,
    /// Controls with a required kind never seen.
    pub missing: u32,
    /// Controls with nothing required and nothing seen.
    #[serde(default)]
    pub not_applicable: u32,
    /// Controls excluded by the statement of applicability.
    #[serde(default)]
    pub excluded: u32,
}

impl StatusCounts {
    /// Adds one control's status.
    pub fn add(&mut self, s: ControlStatus) {
        match s {
            ControlStatus::Fresh => self.fresh += 1,
            ControlStatus::Stale => self.stale += 1,
            ControlStatus::Drifted => self.drifted += 1,
            ControlStatus::Missing => self.missing += 1,
            ControlStatus::NotApplicable => self.not_applicable += 1,
            ControlStatus::Excluded => self.excluded += 1,
        }
    }

    /// The count of one status.
    pub fn get(&self, s: ControlStatus) -> u32 {
        match s {
            ControlStatus::Fresh => self.fresh,
            ControlStatus::Stale => self.stale,
            ControlStatus::Drifted => self.drifted,
            ControlStatus::Missing => self.missing,
            ControlStatus::NotApplicable => self.not_applicable,
            ControlStatus::Excluded => self.excluded,
        }
    }

    /// Adds another set of counts (e.g. to total several systems).
    pub fn merge(&mut self, other: &StatusCounts) {
        self.fresh += other.fresh;
        self.stale += other.stale;
        self.drifted += other.drifted;
        self.missing += other.missing;
        self.not_applicable += other.not_applicable;
        self.excluded += other.excluded;
    }
}

/// One AI system in `GET /v1/systems`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemSummary {
    /// The system id.
    pub id: String,
    /// Control counts per status (A.6 and A.7 controls plus any other control with evidence).
    pub controls: StatusCounts,
    /// Number of evidence records held for the system.
    #[serde(default)]
    pub evidence: u64,
    /// When the system's status was last assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessed_at: Option<Timestamp>,
}

/// `GET /v1/systems`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemsResponse {
    /// All systems with evidence.
    pub systems: Vec<SystemSummary>,
}

/// A reference from a control to a piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// The record's ID.
    pub record_id: RecordId,
    /// The artifact's SHA-256.
    pub sha256: ContentHash,
    /// Where the artifact lives.
    pub locator: String,
    /// Evidence kind.
    pub kind: String,
    /// When the agent observed it.
    pub observed_at: Timestamp,
    /// `observed` or `gone`.
    #[serde(default)]
    pub event: crate::record::RecordEvent,
}

/// One control of one system in `GET /v1/systems/{id}/controls`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlView {
    /// Control ID such as `A.6.2.4`.
    pub control: String,
    /// Short title.
    pub title: String,
    /// Current status.
    pub status: ControlStatus,
    /// Why, in one sentence.
    #[serde(default)]
    pub reason: String,
    /// The current evidence supporting the control.
    pub evidence: Vec<EvidenceRef>,
    /// Findings that touch the control.
    pub findings: Vec<Finding>,
    /// Computed maturity of the control's evidence loop, 0 to 5 (DESIGN §12.3; levels in
    /// ARCHITECTURE.md): 0 none or not assessed, 1 drifted, 2 stale, 3 current but by hand or
    /// with accepted risk, 4 current and collected by an agent, 5 and kept current over time.
    #[serde(default)]
    pub maturity: u8,
    /// Why that level, in one sentence.
    #[serde(default)]
    pub maturity_reason: String,
    /// For a fresh control, the instant its evidence's freshness window closes if nothing new
    /// arrives (stale strictly after it); absent for any other status, and for a control that
    /// is fresh only because a finding's risk was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_until: Option<Timestamp>,
}

/// `GET /v1/systems/{id}/controls`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlsResponse {
    /// The system id.
    pub system: String,
    /// One entry per assessed control.
    pub controls: Vec<ControlView>,
}

/// `GET /v1/findings`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FindingsResponse {
    /// Open findings.
    pub findings: Vec<Finding>,
}

/// The error body of every 4xx/5xx: `{"error":{"code","message"}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code plus a human sentence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code such as `invalid_record`, `unauthorized`, `payload_too_large`.
    pub code: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// `POST /v1/confirmations` body: one source's confirmation and the listing it names (the
/// artifacts in any order; the server sorts them into the canonical listing and checks the
/// digest and count).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationRequest {
    /// What goes into the ledger.
    pub confirmation: Confirmation,
    /// What the source still lists unchanged.
    pub artifacts: Vec<ListedArtifact>,
}

/// `POST /v1/confirmations` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfirmationResponse {
    /// `hex(SHA-256(JCS(confirmation)))`.
    pub confirmation_id: ContentHash,
    /// Its leaf index.
    pub leaf_index: u64,
    /// True when the server already held this confirmation.
    #[serde(default)]
    pub duplicate: bool,
    /// Listed artifacts whose newest ledger entry has the listed content: their observation
    /// time moves to the confirmation's.
    pub matched: u64,
    /// Listed artifacts the ledger does not hold with that content (not yet shipped, or
    /// changed): kept in the listing, ignored for freshness.
    pub unmatched: u64,
    /// The ledger size after this call.
    #[serde(default)]
    pub tree_size: u64,
    /// The signed checkpoint covering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// Largest error text a heartbeat may carry.
pub const MAX_HEARTBEAT_ERROR: usize = 1024;

/// `POST /v1/heartbeats` body: how the agent's last poll of each source went. Cheap and not a
/// ledger entry; it feeds `GET /v1/sources` (ok, failing, silent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The agent id (as in its records).
    pub agent: String,
    /// One entry per source polled.
    pub sources: Vec<SourceHeartbeat>,
}

/// One source's last poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceHeartbeat {
    /// The source.
    pub source: SourceRef,
    /// Its configured polling interval.
    pub interval_secs: u64,
    /// When the poll ran.
    pub polled_at: Timestamp,
    /// True when the listing succeeded and every artifact was collected.
    pub ok: bool,
    /// What went wrong (no secrets: the agent redacts credentials), when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Artifacts listed.
    #[serde(default)]
    pub listed: u64,
    /// Records produced by the poll.
    #[serde(default)]
    pub records: u64,
}

/// Health of one source as `GET /v1/sources` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// Polled recently and the last poll succeeded.
    Ok,
    /// The last poll failed.
    Failing,
    /// No poll for 3 × its interval (at least an hour).
    Silent,
}

impl SourceStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::Silent => "silent",
        }
    }
}

/// One agent's source in `GET /v1/sources`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceHealth {
    /// The agent id.
    pub agent: String,
    /// The source id.
    pub source: String,
    /// The source type.
    #[serde(rename = "type")]
    pub source_type: String,
    /// Its polling interval, as the agent last reported it.
    pub interval_secs: u64,
    /// The newest confirmation received for it.
    pub last_confirmed_at: Option<Timestamp>,
    /// The newest poll the agent reported.
    pub last_poll_at: Option<Timestamp>,
    /// The newest successful poll.
    pub last_ok_at: Option<Timestamp>,
    /// `ok`, `failing` or `silent`.
    pub status: SourceStatus,
    /// The last poll's error, when it failed.
    pub last_error: Option<String>,
    /// Since when the source is silent (the last poll), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent_since: Option<Timestamp>,
    /// Artifacts the last poll listed.
    pub listed: u64,
    /// Records the last poll produced.
    pub records: u64,
}

/// `GET /v1/sources`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourcesResponse {
    /// Every (agent, source) the server has heard of.
    pub sources: Vec<SourceHealth>,
}

/// `GET /v1/log/proof/inclusion?index=&size=`: the RFC 6962 inclusion proof, base64 hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProofResponse {
    /// The leaf.
    pub index: u64,
    /// The tree size proven against.
    pub size: u64,
    /// Audit path, leaf to root, standard base64.
    pub hashes: Vec<String>,
}

/// `GET /v1/log/proof/consistency?from=&to=`: the RFC 6962 consistency proof, base64 hashes.
/// The server writes it and the agent's witness reads it: one definition for both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProofResponse {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The proof, standard base64.
    pub hashes: Vec<String>,
}

/// The `proof` of `GET /v1/evidence/{id}`: inclusion against the newest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedInclusion {
    /// The checkpoint's tree size.
    pub size: u64,
    /// Audit path, standard base64.
    pub hashes: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}
