//! The catalog: Annex A controls, evidence kinds, recognition rules, requirements and maturity
//! levels, loaded
//! from the YAML files in `data/` (embedded at build time) or from a directory.
//!
//! Loading validates everything that assessment relies on, so the rest of the crate can look
//! things up without failing: control IDs against the standard's fixed list, kind and control
//! references, duplicates, globs and windows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aims_model::ContentHash;
use serde::{Deserialize, Serialize};

use crate::UNCLASSIFIED;
use crate::annex::{self, ANNEX_A_CONTROLS, ANNEX_A_GROUPS, DASHBOARD_GROUPS};
use crate::classify::{Facts, RawRule, Rule};
use crate::error::CatalogError;
use crate::maturity::{MATURITY_FILE, MaturityModel};

/// File name of the controls data.
pub const CONTROLS_FILE: &str = "controls.yaml";
/// File name of the evidence kinds data.
pub const KINDS_FILE: &str = "kinds.yaml";
/// File name of the recognition rules.
pub const RULES_FILE: &str = "rules.yaml";
/// File name of the requirements and drift rules.
pub const REQUIREMENTS_FILE: &str = "requirements.yaml";

/// The data files in the fixed order used for [`Catalog::hash`] and export bundles.
pub const DATA_FILES: [&str; 5] = [
    CONTROLS_FILE,
    KINDS_FILE,
    RULES_FILE,
    REQUIREMENTS_FILE,
    MATURITY_FILE,
];

const EMBEDDED: [&str; 5] = [
    include_str!("../data/controls.yaml"),
    include_str!("../data/kinds.yaml"),
    include_str!("../data/rules.yaml"),
    include_str!("../data/requirements.yaml"),
    include_str!("../data/maturity.yaml"),
];

/// The embedded copy of the data file `name` (one of [`DATA_FILES`]): what a directory or an
/// export bundle without that file falls back to (bundles written before `maturity.yaml`
/// existed carry only the first four).
pub fn embedded_file(name: &str) -> Option<&'static str> {
    DATA_FILES
        .iter()
        .position(|n| *n == name)
        .map(|i| EMBEDDED[i])
}

/// A control objective of Annex A (A.2 … A.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Objective ID such as `A.6`.
    pub id: String,
    /// Short title.
    pub title: String,
}

/// One Annex A control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Control ID such as `A.6.2.4`.
    pub id: String,
    /// The objective it belongs to, such as `A.6`.
    pub group: String,
    /// Short official title.
    pub title: String,
    /// One sentence in our own words.
    pub description: String,
    /// Where the control meets other frameworks (informative).
    #[serde(default)]
    pub crosswalks: Crosswalks,
}

/// A control's counterparts in other frameworks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crosswalks {
    /// NIST AI RMF 1.0 subcategories (`GOVERN 1.1`, `MAP 2.3`, …).
    #[serde(default)]
    pub nist_ai_rmf: Vec<String>,
    /// EU AI Act articles (`Art. 10`, …).
    #[serde(default)]
    pub eu_ai_act: Vec<String>,
}

/// Which timestamp of a record freshness is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeBasis {
    /// The artifact's own date (`artifact_time`) when present, else `observed_at`.
    Artifact,
    /// When the agent observed the content (`observed_at`).
    Observed,
}

impl TimeBasis {
    /// True for [`TimeBasis::Artifact`]; the argument of `EvidenceRecord::effective_time`.
    pub fn prefers_artifact_time(self) -> bool {
        matches!(self, Self::Artifact)
    }
}

/// An evidence kind (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindDef {
    /// Kind name as it appears in records, such as `validation_report`.
    pub name: String,
    /// Human title, such as `Validation report`.
    pub title: String,
    /// Primary controls.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Secondary controls the kind also supports.
    #[serde(default)]
    pub also: Vec<String>,
    /// Default freshness window in days.
    pub freshness_days: u32,
    /// Which timestamp freshness is measured from.
    pub time: TimeBasis,
}

/// What one control requires of an AI system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The control.
    pub control: String,
    /// All items must be satisfied; within an item any one kind will do.
    pub requires: Vec<Vec<String>>,
    /// Window for the required kinds; `None` = each kind's own default.
    pub freshness_days: Option<u32>,
    /// Per-kind window overrides inside this requirement.
    pub windows: BTreeMap<String, u32>,
    /// Why these kinds and windows.
    pub note: String,
}

impl Requirement {
    /// The window in days that applies to `kind` under this requirement.
    pub fn window_days(&self, kind: &KindDef) -> u32 {
        self.windows
            .get(&kind.name)
            .copied()
            .or(self.freshness_days)
            .unwrap_or(kind.freshness_days)
    }
}

/// A `changed` drift rule: an artifact of `kind` changed after the newest `covered_by` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftRule {
    /// The kind whose changes are watched.
    pub kind: String,
    /// Kinds of record that vouch for it (validation, approval).
    pub covered_by: Vec<String>,
    /// Controls the finding is raised on.
    pub controls: Vec<String>,
}

/// An `inconsistent` rule: the newest record of `kind` per model must name the version the
/// newest passing `validated_by` record names, and must not predate it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyRule {
    /// The kind that points at a model version (approval, alias).
    pub kind: String,
    /// The kind that validates a model version.
    pub validated_by: String,
    /// Controls the finding is raised on.
    pub controls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsFile {
    version: String,
    framework: String,
    groups: Vec<Group>,
    controls: Vec<Control>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindsFile {
    kinds: Vec<KindDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRequired {
    One(String),
    AnyOf(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    control: String,
    #[serde(default)]
    requires: Vec<RawRequired>,
    #[serde(default)]
    freshness_days: Option<u32>,
    #[serde(default)]
    windows: BTreeMap<String, u32>,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementsFile {
    requirements: Vec<RawRequirement>,
    #[serde(default)]
    changed: Vec<DriftRule>,
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default)]
    consistency: Vec<ConsistencyRule>,
}

/// The loaded, validated catalog.
#[derive(Clone, Debug)]
pub struct Catalog {
    version: String,
    framework: String,
    hash: ContentHash,
    texts: [String; 5],
    groups: Vec<Group>,
    controls: Vec<Control>,
    kinds: Vec<KindDef>,
    rules: Vec<Rule>,
    requirements: Vec<Requirement>,
    changed: Vec<DriftRule>,
    fail: Vec<String>,
    consistency: Vec<ConsistencyRule>,
    maturity: MaturityModel,
}

fn parse<T: for<'de> Deserialize<'de>>(file: &str, text: &str) -> Result<T, CatalogError> {
    serde_yaml::from_str(text).map_err(|source| CatalogError::Parse {
        file: file.to_owned(),
        source,
    })
}

/// SHA-256 over the files in [`DATA_FILES`] order, each preceded by its name, a newline, its
/// length in bytes as decimal digits and a newline.
fn hash_texts(texts: &[String; 5]) -> ContentHash {
    let mut buf = Vec::new();
    for (name, text) in DATA_FILES.iter().zip(texts) {
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(text.len().to_string().as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(text.as_bytes());
    }
    ContentHash::of(&buf)
}

impl Catalog {
    /// The catalog built into this binary (`catalog/data/*.yaml`).
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Self::from_texts(EMBEDDED.map(str::to_owned))
    }

    /// Loads a catalog from a directory holding files with the same names as `data/`. A file
    /// absent from the directory falls back to the embedded copy; a directory holding none of
    /// the files is an error (it is almost certainly the wrong directory).
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let meta = std::fs::metadata(dir).map_err(|source| CatalogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CatalogError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let mut texts = EMBEDDED.map(str::to_owned);
        let mut found = 0;
        for (i, name) in DATA_FILES.iter().enumerate() {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    texts[i] = t;
                    found += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!(file = %name, dir = %dir.display(), "catalog file absent, using the embedded one");
                }
                Err(source) => return Err(CatalogError::Io { path, source }),
            }
        }
        if found == 0 {
            return Err(CatalogError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("none of {} is in this directory", DATA_FILES.join(", ")),
                ),
            });
        }
        Self::from_texts(texts)
    }

    /// Builds a catalog from the texts of the files in [`DATA_FILES`] order (what an export
    /// bundle carries under `catalog/`).
    pub fn from_texts(texts: [String; 5]) -> Result<Catalog, CatalogError> {
        let [c, k, r, q, m] = &texts;
        let cf: ControlsFile = parse(CONTROLS_FILE, c)?;
        let kf: KindsFile = parse(KINDS_FILE, k)?;
        let rf: RulesFile = parse(RULES_FILE, r)?;
        let qf: RequirementsFile = parse(REQUIREMENTS_FILE, q)?;

        let (groups, mut controls) = validate_controls(cf.groups, cf.controls)?;
        if cf.version.trim().is_empty() {
            return Err(CatalogError::invalid(
                CONTROLS_FILE,
                "version",
                "must not be empty",
            ));
        }
        controls.sort_by(|a, b| annex::compare_ids(&a.id, &b.id));
        let kinds = validate_kinds(kf.kinds)?;
        let kind_names: BTreeSet<&str> = kinds.iter().map(|k| k.name.as_str()).collect();

        let mut rules = Vec::with_capacity(rf.rules.len());
        for (i, raw) in rf.rules.into_iter().enumerate() {
            let entry = match &raw.name {
                Some(n) => format!("rule #{} ({n})", i + 1),
                None => format!("rule #{} (kind {})", i + 1, raw.kind),
            };
            if !kind_names.contains(raw.kind.as_str()) {
                return Err(CatalogError::invalid(
                    RULES_FILE,
                    entry,
                    format!("unknown kind {:?}", raw.kind),
                ));
            }
            let rule = Rule::compile(raw)
                .map_err(|reason| CatalogError::invalid(RULES_FILE, entry, reason))?;
            rules.push(rule);
        }

        let (requirements, changed, fail, consistency) = validate_requirements(qf, &kinds)?;
        let maturity = MaturityModel::parse(m)?;
        let hash = hash_texts(&texts);
        Ok(Catalog {
            version: cf.version,
            framework: cf.framework,
            hash,
            texts,
            groups,
            controls,
            kinds,
            rules,
            requirements,
            changed,
            fail,
            consistency,
            maturity,
        })
    }

    /// The maturity levels and their rules (`maturity.yaml`).
    pub fn maturity(&self) -> &MaturityModel {
        &self.maturity
    }

    /// The catalog version (`version` in `controls.yaml`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The framework identifier (`framework` in `controls.yaml`, e.g. `iso42001-2023`).
    pub fn framework(&self) -> &str {
        &self.framework
    }

    /// SHA-256 over the files' bytes in [`DATA_FILES`] order, each preceded by
    /// `name \n length-in-decimal \n`.
    pub fn hash(&self) -> &ContentHash {
        &self.hash
    }

    /// The control objectives, in ID order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// All 38 controls, in ID order.
    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    /// One control by ID.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// True when `id` is a control of this catalog.
    pub fn is_control(&self, id: &str) -> bool {
        self.control(id).is_some()
    }

    /// The A.6 and A.7 controls, in ID order.
    pub fn dashboard_controls(&self) -> Vec<&Control> {
        self.controls
            .iter()
            .filter(|c| DASHBOARD_GROUPS.contains(&c.group.as_str()))
            .collect()
    }

    /// All evidence kinds, in file order.
    pub fn kinds(&self) -> &[KindDef] {
        &self.kinds
    }

    /// One kind by name.
    pub fn kind(&self, name: &str) -> Option<&KindDef> {
        self.kinds.iter().find(|k| k.name == name)
    }

    /// The recognition rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The kind of an artifact: the first rule whose conditions all hold. `None` means
    /// unclassified (no rule matched, or the matching rule's kind is `unclassified`).
    pub fn classify(&self, facts: &Facts<'_>) -> Option<&str> {
        let rule = self.rules.iter().find(|r| r.matches(facts))?;
        if rule.kind == UNCLASSIFIED {
            None
        } else {
            Some(rule.kind.as_str())
        }
    }

    /// The requirements, in control ID order.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The requirement of one control, if any.
    pub fn requirement(&self, control: &str) -> Option<&Requirement> {
        self.requirements.iter().find(|r| r.control == control)
    }

    /// The `changed` drift rules.
    pub fn drift_rules(&self) -> &[DriftRule] {
        &self.changed
    }

    /// Kinds whose content can report a failure.
    pub fn failable_kinds(&self) -> &[String] {
        &self.fail
    }

    /// The `inconsistent` lifecycle rules.
    pub fn consistency_rules(&self) -> &[ConsistencyRule] {
        &self.consistency
    }

    /// Controls a kind is evidence for: primary first, then `also`. Empty for unknown kinds
    /// and for `unclassified`.
    pub fn controls_for_kind(&self, kind: &str) -> Vec<&str> {
        self.kind(kind)
            .map(|k| {
                k.controls
                    .iter()
                    .chain(&k.also)
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(file name, YAML text)` of the data files in [`DATA_FILES`] order, for export
    /// bundles; hashing these reproduces [`Catalog::hash`].
    pub fn data_files(&self) -> Vec<(&'static str, &str)> {
        DATA_FILES
            .iter()
            .zip(&self.texts)
            .map(|(n, t)| (*n, t.as_str()))
            .collect()
    }
}

fn check_control(file: &str, entry: &str, id: &str) -> Result<(), CatalogError> {
    if annex::is_annex_a_control(id) {
        Ok(())
    } else {
        Err(CatalogError::invalid(
            file,
            entry,
            format!(
                "{id:?} is not an ISO/IEC 42001 Annex A control ID (the standard has 38, e.g. A.6.2.4; IDs ending in .1 are objectives)"
            ),
        ))
    }
}

fn validate_controls(
    groups: Vec<Group>,
    controls: Vec<Control>,
) -> Result<(Vec<Group>, Vec<Control>), CatalogError> {
    let f = CONTROLS_FILE;
    let mut seen = BTreeSet::new();
    for g in &groups {
        let entry = format!("group {}", g.id);
        if !ANNEX_A_GROUPS.contains(&g.id.as_str()) {
            return Err(CatalogError::invalid(
                f,
                entry,
                "not an Annex A control objective (A.2 … A.10)",
            ));
        }
        if !seen.insert(g.id.as_str()) {
            return Err(CatalogError::invalid(f, entry, "duplicate group ID"));
        }
        if g.title.trim().is_empty() {
            return Err(CatalogError::invalid(f, entry, "title must not be empty"));
        }
    }
    if let Some(missing) = ANNEX_A_GROUPS.iter().find(|g| !seen.contains(**g)) {
        return Err(CatalogError::invalid(
            f,
            format!("group {missing}"),
            "missing",
        ));
    }
    let mut seen = BTreeSet::new();
    for c in &controls {
        let entry = format!("control {}", c.id);
        check_control(f, &entry, &c.id)?;
        if !seen.insert(c.id.as_str()) {
            return Err(CatalogError::invalid(f, entry, "duplicate control ID"));
        }
        if annex::group_of(&c.id) != Some(c.group.as_str()) {
            return Err(CatalogError::invalid(
                f,
                entry,
                format!(
                    "group is {:?} but the ID belongs to {:?}",
                    c.group,
                    annex::group_of(&c.id).unwrap_or("?")
                ),
            ));
        }
        if c.title.trim().is_empty() || c.description.trim().is_empty() {
            return Err(CatalogError::invalid(
                f,
                entry,
                "title and description must not be empty",
            ));
        }
    }
    if let Some(missing) = ANNEX_A_CONTROLS.iter().find(|id| !seen.contains(**id)) {
        return Err(CatalogError::invalid(
            f,
            format!("control {missing}"),
            "missing (the catalog must list all 38 Annex A controls)",
        ));
    }
    let mut groups = groups;
    groups.sort_by(|a, b| annex::compare_ids(&a.id, &b.id));
    Ok((groups, controls))
}

fn validate_kinds(kinds: Vec<KindDef>) -> Result<Vec<KindDef>, CatalogError> {
    let f = KINDS_FILE;
    let mut seen = BTreeSet::new();
    for k in &kinds {
        let entry = format!("kind {}", k.name);
        if aims_model::record::validate_ident("kind", &k.name).is_err() {
            return Err(CatalogError::invalid(
                f,
                entry,
                "name must be 1-128 characters of [A-Za-z0-9._:/@-]",
            ));
        }
        if !seen.insert(k.name.as_str()) {
            return Err(CatalogError::invalid(f, entry, "duplicate kind name"));
        }
        if k.freshness_days == 0 {
            return Err(CatalogError::invalid(
                f,
                entry,
                "freshness_days must be greater than 0",
            ));
        }
        let mut ids = BTreeSet::new();
        for c in k.controls.iter().chain(&k.also) {
            check_control(f, &entry, c)?;
            if !ids.insert(c.as_str()) {
                return Err(CatalogError::invalid(
                    f,
                    entry,
                    format!("control {c} is listed twice"),
                ));
            }
        }
        if k.name == UNCLASSIFIED && !ids.is_empty() {
            return Err(CatalogError::invalid(
                f,
                entry,
                "unclassified evidence must map to no control",
            ));
        }
    }
    if !seen.contains(UNCLASSIFIED) {
        return Err(CatalogError::invalid(
            f,
            format!("kind {UNCLASSIFIED}"),
            "missing",
        ));
    }
    Ok(kinds)
}

type Validated = (
    Vec<Requirement>,
    Vec<DriftRule>,
    Vec<String>,
    Vec<ConsistencyRule>,
);

fn validate_requirements(
    qf: RequirementsFile,
    kinds: &[KindDef],
) -> Result<Validated, CatalogError> {
    let f = REQUIREMENTS_FILE;
    let known = |k: &str| kinds.iter().any(|d| d.name == k);
    let check_kind = |entry: &str, k: &str| -> Result<(), CatalogError> {
        if k == UNCLASSIFIED {
            Err(CatalogError::invalid(
                f,
                entry,
                "unclassified evidence cannot be required or watched",
            ))
        } else if known(k) {
            Ok(())
        } else {
            Err(CatalogError::invalid(
                f,
                entry,
                format!("unknown kind {k:?}"),
            ))
        }
    };
    let mut seen = BTreeSet::new();
    let mut requirements = Vec::new();
    for raw in qf.requirements {
        let entry = format!("requirement {}", raw.control);
        check_control(f, &entry, &raw.control)?;
        if !seen.insert(raw.control.clone()) {
            return Err(CatalogError::invalid(
                f,
                entry,
                "duplicate requirement for this control",
            ));
        }
        if raw.freshness_days == Some(0) {
            return Err(CatalogError::invalid(
                f,
                entry,
                "freshness_days must be greater than 0",
            ));
        }
        let mut requires = Vec::new();
        for item in raw.requires {
            let alts = match item {
                RawRequired::One(k) => vec![k],
                RawRequired::AnyOf(ks) => ks,
            };
            if alts.is_empty() {
                return Err(CatalogError::invalid(
                    f,
                    entry,
                    "an alternative group must name at least one kind",
                ));
            }
            for k in &alts {
                check_kind(&entry, k)?;
            }
            requires.push(alts);
        }
        for (k, days) in &raw.windows {
            if !requires.iter().flatten().any(|r| r == k) {
                return Err(CatalogError::invalid(
                    f,
                    entry,
                    format!("window for {k:?}, which this requirement does not require"),
                ));
            }
            if *days == 0 {
                return Err(CatalogError::invalid(
                    f,
                    entry,
                    format!("window for {k} must be greater than 0"),
                ));
            }
        }
        requirements.push(Requirement {
            control: raw.control,
            requires,
            freshness_days: raw.freshness_days,
            windows: raw.windows,
            note: raw.note.trim().to_owned(),
        });
    }
    requirements.sort_by(|a, b| annex::compare_ids(&a.control, &b.control));

    for (i, d) in qf.changed.iter().enumerate() {
        let entry = format!("changed #{} (kind {})", i + 1, d.kind);
        check_kind(&entry, &d.kind)?;
        if d.covered_by.is_empty() || d.controls.is_empty() {
            return Err(CatalogError::invalid(
                f,
                entry,
                "covered_by and controls must not be empty",
            ));
        }
        for k in &d.covered_by {
            check_kind(&entry, k)?;
        }
        for c in &d.controls {
            check_control(f, &entry, c)?;
        }
    }
    for k in &qf.fail {
        check_kind(&format!("fail {k}"), k)?;
    }
    for (i, r) in qf.consistency.iter().enumerate() {
        let entry = format!("consistency #{} (kind {})", i + 1, r.kind);
        check_kind(&entry, &r.kind)?;
        check_kind(&entry, &r.validated_by)?;
        if r.controls.is_empty() {
            return Err(CatalogError::invalid(
                f,
                entry,
                "controls must not be empty",
            ));
        }
        for c in &r.controls {
            check_control(f, &entry, c)?;
        }
    }
    Ok((requirements, qf.changed, qf.fail, qf.consistency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_loads_and_is_complete() {
        let c = Catalog::embedded().unwrap();
        assert_eq!(c.version(), "2026.11.1");
        assert_eq!(c.framework(), "iso42001-2023");
        assert_eq!(c.controls().len(), 38);
        assert_eq!(c.groups().len(), 9);
        assert_eq!(c.dashboard_controls().len(), 14);
        assert!(c.kind(UNCLASSIFIED).is_some());
        for d in c.dashboard_controls() {
            assert!(
                c.requirement(&d.id).is_some(),
                "no requirement for {}",
                d.id
            );
        }
        assert_eq!(
            c.controls_for_kind("dataset_card"),
            ["A.7.3", "A.7.5", "A.4.3", "A.7.4", "A.7.6"]
        );
        assert!(c.controls_for_kind(UNCLASSIFIED).is_empty());
    }

    #[test]
    fn hash_is_reproducible_from_data_files() {
        let c = Catalog::embedded().unwrap();
        let texts = c.data_files();
        assert_eq!(texts.len(), 5);
        let arr: [String; 5] = [0, 1, 2, 3, 4].map(|i| texts[i].1.to_owned());
        assert_eq!(&hash_texts(&arr), c.hash());
        let mut changed = arr.clone();
        changed[3].push('\n');
        assert_ne!(&hash_texts(&changed), c.hash());
    }

    #[test]
    fn requirement_windows() {
        let c = Catalog::embedded().unwrap();
        let r = c.requirement("A.6.2.8").unwrap();
        assert_eq!(r.window_days(c.kind("event_log_sample").unwrap()), 1);
        assert_eq!(r.window_days(c.kind("event_log_config").unwrap()), 30);
        assert_eq!(
            c.requirement("A.6.2.4").unwrap().requires,
            vec![vec!["validation_report".to_owned()]]
        );
    }
}
