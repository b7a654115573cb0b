//! The verification report: one result per check, in integrity.md §6.9 order.

use std::fmt;

use serde::Serialize;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified.
    Pass,
    /// Failed; the detail names the file and index.
    Fail,
    /// Not applicable or not implemented; never counts as a failure.
    Skipped,
}

impl Status {
    /// The word printed at the start of a human-readable line.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skipped => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Check name (`manifest`, `signatures`, …).
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was verified, or what failed (file, line, leaf index, reason).
    pub detail: String,
}

/// The whole report (`--json` prints it as is).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when no check failed.
    pub verified: bool,
    /// Results in order; checks after a failure are reported as skipped.
    pub checks: Vec<CheckResult>,
    /// Tree size of the bundle's checkpoint, once read.
    pub tree_size: Option<u64>,
    /// Origin of the log, once read.
    pub origin: Option<String>,
    /// The clock's cosigned time (RFC 3339), once verified.
    pub cosigned_at: Option<String>,
    /// `full` or `partial`, once the manifest was read.
    pub scope: Option<String>,
    /// Loud warnings (for example keys trusted from inside the bundle).
    pub warnings: Vec<String>,
}

impl Report {
    /// The first failed check, if any.
    pub fn failure(&self) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.status == Status::Fail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "WARNING: {w}")?;
        }
        for c in &self.checks {
            writeln!(f, "{} {}: {}", c.status.label(), c.name, c.detail)?;
        }
        if self.verified {
            write!(f, "VERIFIED")?;
            if let (Some(o), Some(n)) = (&self.origin, self.tree_size) {
                write!(f, " {o} size {n}")?;
            }
            if let Some(t) = &self.cosigned_at {
                write!(f, ", existed no later than {t}")?;
            }
            writeln!(f)
        } else {
            writeln!(f, "NOT VERIFIED")
        }
    }
}
