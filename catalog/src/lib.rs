//! aims-catalog: the ISO/IEC 42001 Annex A catalog and the assessment of AI-system evidence.
//!
//! The catalog is data: `data/controls.yaml` (the 38 Annex A controls with our own one-line
//! descriptions), `data/kinds.yaml` (evidence kinds and the controls they support),
//! `data/rules.yaml` (how artifacts are recognised) and `data/requirements.yaml` (what each A.6
//! and A.7 control needs, freshness windows and drift rules) and `data/maturity.yaml` (the
//! maturity levels 0–5 and the rules that give them). The files are embedded at build
//! time ([`Catalog::embedded`]) and can be replaced from a directory ([`Catalog::load_dir`]).
//!
//! [`assess()`] is a pure function from one system's evidence history and a clock to a status per
//! control and a list of findings (DESIGN §6).

#![warn(missing_docs)]

pub mod annex;
pub mod assess;
pub mod catalog;
pub mod classify;
pub mod error;
pub mod history;
pub mod maturity;
pub mod replay;

pub use assess::{
    Evidence, MAX_EVIDENCE_PER_CONTROL, MAX_FUTURE_SKEW_SECS, Observations, SystemAssessment,
    assess, assess_with, failure_reason,
};
pub use catalog::{
    Catalog, ConsistencyRule, Control, Crosswalks, DATA_FILES, DriftRule, Group, KindDef,
    Requirement, TimeBasis, embedded_file,
};
pub use classify::{Facts, Rule};
pub use error::CatalogError;
pub use history::{ControlHistory, StatusInterval, Timeline, history, status_at};
pub use maturity::{MaturityFacts, MaturityModel, MaturitySummary};
pub use replay::{Replay, ReplayBuilder, ReplayError};

/// The kind of an artifact that no rule recognised. It is hashed and kept, and maps to no
/// control.
pub const UNCLASSIFIED: &str = "unclassified";
