//! Values the store hands out and takes in.

use aims_model::wire::ControlView;
use aims_model::{Confirmation, EvidenceRecord, Finding, ListedArtifact, RecordId, Timestamp};

/// A record as held by the server.
#[derive(Clone, Debug)]
pub struct StoredEvidence {
    /// `hex(SHA-256(JCS(record)))`.
    pub record_id: RecordId,
    /// Leaf index in the ledger.
    pub leaf_index: u64,
    /// The record.
    pub record: EvidenceRecord,
    /// Authenticated principal that sent it.
    pub agent: String,
    /// When the server accepted it.
    pub received_at: Timestamp,
    /// Previous leaf for the same (source, locator).
    pub prev: Option<u64>,
    /// The newest confirmation that the source still listed this content, when it is later than
    /// the record (set only on records whose content is the artifact's newest).
    pub confirmed_at: Option<Timestamp>,
}

/// A confirmation to append: the ledger part and the listing it names.
#[derive(Clone, Copy, Debug)]
pub struct ConfirmationInput<'a> {
    /// What goes into the ledger entry (its digest and count match `listing`).
    pub confirmation: &'a Confirmation,
    /// The canonical listing bytes (kept by digest).
    pub listing: &'a [u8],
    /// The listing's artifacts, sorted by locator.
    pub artifacts: &'a [ListedArtifact],
}

/// Result of appending a confirmation.
#[derive(Clone, Debug)]
pub struct ConfirmationOutcome {
    /// `hex(SHA-256(JCS(confirmation)))`.
    pub confirmation_id: RecordId,
    /// Its leaf (the old one when `duplicate`).
    pub leaf_index: u64,
    /// The ledger already held this confirmation.
    pub duplicate: bool,
    /// Listed artifacts whose newest entry has the listed content.
    pub matched: u64,
    /// Listed artifacts without such an entry.
    pub unmatched: u64,
    /// Ledger size after the call.
    pub tree_size: u64,
    /// The checkpoint for that size.
    pub checkpoint: Option<StoredCheckpoint>,
    /// Systems whose evidence got a newer observation time.
    pub systems_touched: Vec<String>,
}

/// Result of one ingest call, in input order.
#[derive(Clone, Debug)]
pub struct IngestOutcome {
    /// `(record_id, leaf_index, duplicate)` per input record.
    pub results: Vec<(RecordId, u64, bool)>,
    /// Ledger size after the call.
    pub tree_size: u64,
    /// The checkpoint signed for that size (if the tree grew, a new one).
    pub checkpoint: Option<StoredCheckpoint>,
    /// Systems that received new records.
    pub systems_touched: Vec<String>,
}

/// A signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: [u8; 32],
    /// Full signed note text.
    pub note: String,
    /// When it was signed.
    pub created_at: Timestamp,
}

/// Signs a checkpoint for a new tree head; called inside the ingest transaction.
pub trait CheckpointSigner: Send {
    /// Returns the signed note for `(size, root)`.
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String>;
}

/// The materialised assessment of one system.
#[derive(Clone, Debug)]
pub struct StoredAssessment {
    /// System ID.
    pub system: String,
    /// When it was computed.
    pub assessed_at: Timestamp,
    /// Number of records held for the system.
    pub evidence: u64,
    /// Per-control view.
    pub controls: Vec<ControlView>,
    /// Open findings.
    pub findings: Vec<Finding>,
}

/// Roles of §7: what a bearer token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Writes evidence only.
    Agent,
    /// Reads status, findings and evidence.
    Viewer,
    /// Viewer plus exports.
    Auditor,
    /// Everything, including tokens.
    Admin,
}

impl Role {
    /// Wire/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    /// Parses the CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => Self::Agent,
            "viewer" => Self::Viewer,
            "auditor" => Self::Auditor,
            "admin" => Self::Admin,
            _ => return None,
        })
    }

    /// May read status, findings and evidence.
    pub fn can_read(self) -> bool {
        matches!(self, Self::Viewer | Self::Auditor | Self::Admin)
    }

    /// May download exports.
    pub fn can_export(self) -> bool {
        matches!(self, Self::Auditor | Self::Admin)
    }

    /// May write evidence.
    pub fn can_write_evidence(self) -> bool {
        matches!(self, Self::Agent | Self::Admin)
    }
}

/// What an agent token may write, beyond its role. Empty (the default) means unrestricted, as
/// tokens made without `--agent-id`/`--source` have always been.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenScope {
    /// Records must carry exactly this `agent`.
    pub agent_id: Option<String>,
    /// Records must come from one of these source IDs.
    pub sources: Option<Vec<String>>,
}

impl TokenScope {
    /// Why this scope does not allow a record from `agent` and `source`, if it does not.
    pub fn refusal(&self, agent: &str, source: &str) -> Option<String> {
        if let Some(a) = &self.agent_id
            && a != agent
        {
            return Some(format!("agent {agent:?} is not this token's agent {a:?}"));
        }
        if let Some(list) = &self.sources
            && !list.iter().any(|s| s == source)
        {
            return Some(format!(
                "source {source:?} is not allowed for this token (allowed: {})",
                list.join(", ")
            ));
        }
        None
    }
}

/// A token to store.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// Human name (for agents: the agent it belongs to).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Hex SHA-256 of the secret.
    pub token_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// What an agent token may write.
    pub scope: TokenScope,
}

/// A stored token (never the secret).
#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// Human name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Optional expiry.
    pub expires_at: Option<Timestamp>,
    /// Set when revoked.
    pub revoked_at: Option<Timestamp>,
    /// What an agent token may write.
    pub scope: TokenScope,
}

/// One ledger entry as stored: its index and the exact bytes the leaf hashes.
#[derive(Clone, Debug)]
pub struct LedgerEntryRow {
    /// Leaf index.
    pub index: u64,
    /// JCS entry bytes.
    pub entry: Vec<u8>,
}
