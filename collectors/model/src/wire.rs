//! Request and response bodies of the v1 JSON API (DESIGN §7) shared by agent, server and tests.

use serde::{Deserialize, Serialize};

use crate::assessment::{ControlStatus, Finding};
use crate::record::{ContentHash, EvidenceRecord, RecordId};
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
        }
    }

    /// Adds another set of counts (e.g. to total several systems).
    pub fn merge(&mut self, other: &StatusCounts) {
        self.fresh += other.fresh;
        self.stale += other.stale;
        self.drifted += other.drifted;
        self.missing += other.missing;
        self.not_applicable += other.not_applicable;
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
