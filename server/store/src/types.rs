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
    /// Notifications (issue 15): `None` records none (no sink is configured); `Some(extra)`
    /// records, in the same transaction, the finding events of replacing the stored findings
    /// (opened, resolved, acknowledged) plus `extra` (e.g. expiring windows).
    pub events: Option<Vec<crate::outbox::NewEvent>>,
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

/// What an agent token may write, beyond its role. Empty (the default) means unrestricted; the
/// CLI binds new agent tokens to their name as agent ID unless told `--any-agent`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenScope {
    /// Records must carry exactly this `agent`.
    pub agent_id: Option<String>,
    /// Records must come from one of these source IDs.
    pub sources: Option<Vec<String>>,
    /// Records must be about one of these AI systems (issue 18 M4).
    pub systems: Option<Vec<String>>,
}

impl TokenScope {
    /// Why this scope does not allow `record`, if it does not: its `agent`, its source or its
    /// AI system is outside the scope.
    pub fn refusal_for_record(&self, record: &EvidenceRecord) -> Option<String> {
        if let Some(why) = self.refusal(&record.agent, &record.source.id) {
            return Some(why);
        }
        if let Some(list) = &self.systems
            && !list.contains(&record.system)
        {
            return Some(format!(
                "system {:?} is not allowed for this token (allowed: {})",
                record.system,
                list.join(", ")
            ));
        }
        None
    }

    /// Why this scope does not allow a record from `agent` and `source`, if it does not (the
    /// AI system is not checked: see [`Self::refusal_for_record`]).
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

/// A dashboard session to store (issue 18 M8): a browser exchanged a read-capable token for a
/// random session id, and only the id's hash is kept.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Hex SHA-256 of the session id (the cookie value).
    pub id_hash: String,
    /// Hex SHA-256 of the token it was exchanged for (`tokens.token_hash`).
    pub token_hash: String,
    /// That token's name.
    pub token_name: String,
    /// That token's role when the session was made.
    pub role: Role,
    /// Creation time.
    pub created_at: Timestamp,
    /// The session ends then, whatever happens to the token.
    pub expires_at: Timestamp,
}

/// A stored session with the current state of its token.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry of the session itself.
    pub expires_at: Timestamp,
    /// Set when the session was revoked (its token revoked by name).
    pub revoked_at: Option<Timestamp>,
    /// The token as stored now (revocation, expiry, role and scope are the token's current ones).
    pub token: TokenInfo,
}

impl SessionInfo {
    /// Whether the session and its token are both usable at `now`.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.token.revoked_at.is_none()
            && self.token.expires_at.is_none_or(|e| e > now)
    }
}

/// One `ledger_entries` row with every column, for integrity checks: the entry bytes and what the
/// store indexes them by (each must agree with the bytes, which the signed tree covers).
#[derive(Clone, Debug)]
pub struct EntryRow {
    /// Leaf index.
    pub index: u64,
    /// `record_id` column (record or confirmation id).
    pub record_id: String,
    /// `leaf_hash` column.
    pub leaf_hash: Vec<u8>,
    /// The JCS entry bytes.
    pub entry: Vec<u8>,
    /// `agent` column (the token name).
    pub agent: String,
    /// `received_at` column.
    pub received_at: String,
    /// `source_id` column.
    pub source_id: String,
    /// `locator` column.
    pub locator: String,
    /// `system` column.
    pub system: String,
    /// `kind` column.
    pub kind: String,
    /// `event` column.
    pub event: String,
    /// `sha256` column.
    pub sha256: String,
    /// `observed_at` column.
    pub observed_at: String,
    /// `prev` column.
    pub prev: Option<i64>,
}

impl EntryRow {
    /// The first column that disagrees with the entry bytes, as `column: stored vs entry`.
    pub fn mismatch(&self) -> Option<String> {
        let leaf = aims_ledger::merkle::leaf_hash(&self.entry);
        if leaf.as_slice() != self.leaf_hash.as_slice() {
            return Some("leaf_hash does not hash the stored entry bytes".to_owned());
        }
        let e = match aims_ledger::LedgerEntry::parse(&self.entry) {
            Ok(e) => e,
            Err(err) => return Some(format!("the entry bytes do not parse: {err}")),
        };
        let id = match e.subject_id() {
            Ok(id) => id,
            Err(err) => return Some(err.to_string()),
        };
        let (source, locator, system, kind, event, sha, observed) =
            match (&e.record, &e.confirmation) {
                (Some(r), _) => (
                    r.source.id.as_str(),
                    r.locator.as_str(),
                    r.system.as_str(),
                    r.kind.as_str(),
                    r.event.as_str(),
                    r.sha256.as_str(),
                    r.observed_at.to_string(),
                ),
                (None, Some(c)) => (
                    c.source.id.as_str(),
                    "",
                    "",
                    "",
                    crate::ingest::CONFIRMED,
                    c.digest.as_str(),
                    c.observed_at.to_string(),
                ),
                (None, None) => return Some("the entry has no body".to_owned()),
            };
        let prev = e.prev.and_then(|p| i64::try_from(p).ok());
        let checks: [(&str, &str, &str); 10] = [
            ("record_id", &self.record_id, id.as_str()),
            ("agent", &self.agent, &e.agent),
            ("received_at", &self.received_at, &e.received_at.to_string()),
            ("source_id", &self.source_id, source),
            ("locator", &self.locator, locator),
            ("system", &self.system, system),
            ("kind", &self.kind, kind),
            ("event", &self.event, event),
            ("sha256", &self.sha256, sha),
            ("observed_at", &self.observed_at, &observed),
        ];
        for (col, stored, signed) in checks {
            if stored != signed {
                return Some(format!(
                    "column {col} is {stored:?} but the signed entry says {signed:?}"
                ));
            }
        }
        if self.prev != prev {
            return Some(format!(
                "column prev is {:?} but the signed entry says {:?}",
                self.prev, prev
            ));
        }
        None
    }
}
