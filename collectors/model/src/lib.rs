//! aims-model: the evidence record, the wire types of the v1 API, the assessment result types,
//! the canonical encoding that makes a record's identity reproducible anywhere, and the
//! field-level difference between two versions of one artifact ([`diff`]).
//!
//! This crate does no IO. Everything that crosses a process boundary (agent → server, server →
//! auditor) is defined here so the agent, the server and the offline verifier agree by
//! construction. Formats are versioned (`v`), unknown fields are rejected, and every value that
//! can be malformed is a newtype that can only be built by parsing it.

pub mod acknowledgement;
pub mod applicability;
pub mod assessment;
pub mod confirmation;
pub mod diff;
pub mod manual;
pub mod record;
pub mod text;
pub mod time;
pub mod upload;
pub mod wire;

pub use assessment::{ControlStatus, Finding, FindingKind};
pub use confirmation::{CONFIRMATION_VERSION, Confirmation, ListedArtifact, Listing};
pub use record::{
    ContentHash, EvidenceRecord, MAX_RECORD_BYTES, RECORD_VERSION, RecordError, RecordEvent,
    RecordId, SourceRef, SourceType,
};
pub use time::Timestamp;
