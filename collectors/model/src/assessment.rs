//! Results of assessment: per (system, control) status and the findings that explain it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::RecordId;
use crate::time::Timestamp;

/// Status of one control for one AI system (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Every required kind has current evidence and nothing drifted.
    Fresh,
    /// Some required evidence is older than its freshness window.
    Stale,
    /// A changed, failed, inconsistent or gone finding touches the control.
    Drifted,
    /// A required kind was never seen for the system.
    Missing,
    /// Nothing is required of the system for this control and nothing was seen.
    NotApplicable,
    /// Declared not applicable in the system's statement of applicability, with a
    /// justification (DESIGN §12.3): counts neither as missing nor as fresh.
    Excluded,
}

impl ControlStatus {
    /// The wire name (`not_applicable` with an underscore).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Drifted => "drifted",
            Self::Missing => "missing",
            Self::NotApplicable => "not_applicable",
            Self::Excluded => "excluded",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fresh" => Self::Fresh,
            "stale" => Self::Stale,
            "drifted" => Self::Drifted,
            "missing" => Self::Missing,
            "not_applicable" => Self::NotApplicable,
            "excluded" => Self::Excluded,
            _ => return None,
        })
    }
}

impl fmt::Display for ControlStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of drift a finding reports (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Newest evidence older than its freshness window.
    Stale,
    /// A required kind never seen.
    Missing,
    /// An artifact changed after the validation or approval that covers it.
    Changed,
    /// Lifecycle links disagree (deployed version not the validated one, …).
    Inconsistent,
    /// The newest validation or data-quality report failed.
    Failed,
    /// The artifact vanished at its source.
    Gone,
}

impl FindingKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::Missing => "missing",
            Self::Changed => "changed",
            Self::Inconsistent => "inconsistent",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stale" => Self::Stale,
            "missing" => Self::Missing,
            "changed" => Self::Changed,
            "inconsistent" => Self::Inconsistent,
            "failed" => Self::Failed,
            "gone" => Self::Gone,
            _ => return None,
        })
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: names the system, controls, evidence, since when, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic ID: hex SHA-256 of kind, system, controls and evidence, truncated to 32.
    pub id: String,
    /// What kind of drift.
    pub kind: FindingKind,
    /// The AI system.
    pub system: String,
    /// Controls affected.
    pub controls: Vec<String>,
    /// Since when the condition holds.
    pub since: Timestamp,
    /// Records the finding is about.
    pub evidence: Vec<RecordId>,
    /// One sentence for a person.
    pub message: String,
    /// The acknowledgement (accepted risk) in force, if any: the finding then no longer sets
    /// its controls' status (DESIGN §12.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<crate::acknowledgement::Acknowledgement>,
}

impl Finding {
    /// The same finding, carrying an acknowledgement (accepted risk).
    pub fn with_acknowledgement(mut self, ack: crate::acknowledgement::Acknowledgement) -> Self {
        self.acknowledged = Some(ack);
        self
    }

    /// Builds a finding with its deterministic ID.
    pub fn new(
        kind: FindingKind,
        system: &str,
        controls: Vec<String>,
        since: Timestamp,
        evidence: Vec<RecordId>,
        message: String,
    ) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(kind.as_str());
        h.update([0]);
        h.update(system);
        for c in &controls {
            h.update([0]);
            h.update(c);
        }
        for e in &evidence {
            h.update([1]);
            h.update(e.as_str());
        }
        let id = hex::encode(h.finalize())[..32].to_owned();
        Self {
            id,
            kind,
            system: system.to_owned(),
            controls,
            since,
            evidence,
            message,
            acknowledged: None,
        }
    }
}
