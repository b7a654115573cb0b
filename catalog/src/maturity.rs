//! Maturity levels as catalog data (`data/maturity.yaml`, issue 14 item 6): the levels 0–5,
//! their names, and the rules (status and facts of a control's evidence) that give each level and
//! the sentence explaining it. The assessment only gathers the facts and evaluates the rules.

use std::collections::BTreeMap;

use aims_model::ControlStatus;
use serde::Deserialize;

use crate::error::CatalogError;

/// File name of the maturity levels.
pub const MATURITY_FILE: &str = "maturity.yaml";

/// The highest level.
pub const MAX_LEVEL: u8 = 5;

/// Every status a control can have (the rules must cover each).
const STATUSES: [ControlStatus; 6] = [
    ControlStatus::Fresh,
    ControlStatus::Stale,
    ControlStatus::Drifted,
    ControlStatus::Missing,
    ControlStatus::NotApplicable,
    ControlStatus::Excluded,
];

/// A fact about a control's current supporting evidence that a rule can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// Some current evidence supports the control.
    Supported,
    /// A finding on the control is acknowledged (accepted risk in force).
    RiskAccepted,
    /// Some supporting evidence was collected by an agent (not uploaded by hand).
    Collected,
    /// Some agent-collected evidence was refreshed or confirmed after it was first seen.
    Continuous,
}

const FACTS: [Fact; 4] = [
    Fact::Supported,
    Fact::RiskAccepted,
    Fact::Collected,
    Fact::Continuous,
];

/// The facts of one control, as the assessment found them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaturityFacts {
    /// See [`Fact::Supported`].
    pub supported: bool,
    /// See [`Fact::RiskAccepted`].
    pub risk_accepted: bool,
    /// See [`Fact::Collected`].
    pub collected: bool,
    /// See [`Fact::Continuous`].
    pub continuous: bool,
}

impl MaturityFacts {
    fn get(&self, f: Fact) -> bool {
        match f {
            Fact::Supported => self.supported,
            Fact::RiskAccepted => self.risk_accepted,
            Fact::Collected => self.collected,
            Fact::Continuous => self.continuous,
        }
    }
}

/// One rule of a level.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityRule {
    /// The control's status is one of these.
    pub status: Vec<ControlStatus>,
    /// Every named fact has this value.
    #[serde(default)]
    pub facts: BTreeMap<Fact, bool>,
    /// At least one named fact has this value (no condition when empty).
    #[serde(default)]
    pub any_fact: BTreeMap<Fact, bool>,
    /// The sentence shown beside the level.
    pub reason: String,
}

impl MaturityRule {
    fn holds(&self, status: ControlStatus, facts: &MaturityFacts) -> bool {
        self.status.contains(&status)
            && self.facts.iter().all(|(f, v)| facts.get(*f) == *v)
            && (self.any_fact.is_empty() || self.any_fact.iter().any(|(f, v)| facts.get(*f) == *v))
    }
}

/// One maturity level.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaturityLevel {
    /// 0 to 5.
    pub level: u8,
    /// A short name, such as `collected`.
    pub name: String,
    /// What gives this level, tried in order.
    pub rules: Vec<MaturityRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaturityFile {
    levels: Vec<MaturityLevel>,
}

/// The validated maturity levels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaturityModel {
    levels: Vec<MaturityLevel>,
}

impl MaturityModel {
    /// Parses and validates `maturity.yaml`.
    pub(crate) fn parse(text: &str) -> Result<Self, CatalogError> {
        let f: MaturityFile = serde_yaml::from_str(text).map_err(|source| CatalogError::Parse {
            file: MATURITY_FILE.to_owned(),
            source,
        })?;
        let invalid =
            |entry: String, reason: &str| CatalogError::invalid(MATURITY_FILE, entry, reason);
        if f.levels.len() != usize::from(MAX_LEVEL) + 1 {
            return Err(invalid(
                "levels".into(),
                "must define the six levels 0 to 5",
            ));
        }
        for (i, l) in f.levels.iter().enumerate() {
            let entry = format!("level {}", l.level);
            if usize::from(l.level) != i {
                return Err(invalid(entry, "levels must be 0 to 5, each once, in order"));
            }
            if l.name.trim().is_empty() {
                return Err(invalid(entry, "name must not be empty"));
            }
            if l.rules.is_empty() {
                return Err(invalid(entry, "needs at least one rule"));
            }
            for (j, r) in l.rules.iter().enumerate() {
                let entry = format!("level {} rule #{}", l.level, j + 1);
                if r.status.is_empty() {
                    return Err(invalid(entry, "status must name at least one status"));
                }
                if r.reason.trim().is_empty() {
                    return Err(invalid(entry, "reason must not be empty"));
                }
            }
        }
        let model = Self { levels: f.levels };
        // Every status with every combination of facts must reach a rule.
        for status in STATUSES {
            for bits in 0u8..16 {
                let facts = MaturityFacts {
                    supported: bits & 1 != 0,
                    risk_accepted: bits & 2 != 0,
                    collected: bits & 4 != 0,
                    continuous: bits & 8 != 0,
                };
                if model.find(status, &facts).is_none() {
                    return Err(invalid(
                        "levels".into(),
                        &format!(
                            "no rule gives a level to a {} control with {}",
                            status.as_str(),
                            FACTS
                                .iter()
                                .map(|f| format!("{f:?}={}", facts.get(*f)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(model)
    }

    fn find(&self, status: ControlStatus, facts: &MaturityFacts) -> Option<(u8, &str)> {
        self.levels.iter().find_map(|l| {
            l.rules
                .iter()
                .find(|r| r.holds(status, facts))
                .map(|r| (l.level, r.reason.as_str()))
        })
    }

    /// The level of a control with `status` and `facts`, and the sentence that explains it.
    pub fn evaluate(&self, status: ControlStatus, facts: &MaturityFacts) -> (u8, String) {
        // Loading checked that every status and combination of facts reaches a rule.
        self.find(status, facts)
            .map_or((0, String::new()), |(l, r)| (l, r.to_owned()))
    }

    /// The levels, 0 to 5.
    pub fn levels(&self) -> &[MaturityLevel] {
        &self.levels
    }

    /// The name of `level` (empty for a level above 5).
    pub fn name(&self, level: u8) -> &str {
        self.levels
            .get(usize::from(level))
            .map_or("", |l| l.name.as_str())
    }
}

/// A system's maturity over its applicable controls (not applicable and excluded ones left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaturitySummary {
    /// The lowest level.
    pub min: u8,
    /// The median level (the lower middle of an even count).
    pub median: u8,
    /// How many controls apply.
    pub applicable: usize,
}

/// The summary of `(status, level)` pairs, one per assessed control; `None` when no control
/// applies.
pub fn summarize(
    controls: impl IntoIterator<Item = (ControlStatus, u8)>,
) -> Option<MaturitySummary> {
    let mut levels: Vec<u8> = controls
        .into_iter()
        .filter(|(s, _)| !matches!(s, ControlStatus::NotApplicable | ControlStatus::Excluded))
        .map(|(_, l)| l)
        .collect();
    if levels.is_empty() {
        return None;
    }
    levels.sort_unstable();
    Some(MaturitySummary {
        min: levels[0],
        median: levels[(levels.len() - 1) / 2],
        applicable: levels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> MaturityModel {
        MaturityModel::parse(include_str!("../data/maturity.yaml")).unwrap()
    }

    #[test]
    fn the_embedded_levels_load_with_names() {
        let m = embedded();
        assert_eq!(m.levels().len(), 6);
        assert_eq!(m.name(4), "collected");
        assert_eq!(m.name(6), "");
    }

    #[test]
    fn fresh_levels_follow_the_facts() {
        let m = embedded();
        let f = |supported, risk_accepted, collected, continuous| MaturityFacts {
            supported,
            risk_accepted,
            collected,
            continuous,
        };
        let fresh = ControlStatus::Fresh;
        assert_eq!(m.evaluate(fresh, &f(true, false, true, true)).0, 5);
        assert_eq!(m.evaluate(fresh, &f(true, false, true, false)).0, 4);
        assert_eq!(m.evaluate(fresh, &f(true, false, false, false)).0, 3);
        assert_eq!(m.evaluate(fresh, &f(true, true, true, true)).0, 3);
        assert_eq!(m.evaluate(fresh, &f(false, false, false, false)).0, 3);
        assert_eq!(
            m.evaluate(ControlStatus::Stale, &f(true, false, true, true))
                .0,
            2
        );
        assert_eq!(
            m.evaluate(ControlStatus::Drifted, &f(true, false, true, true))
                .0,
            1
        );
        let (l, why) = m.evaluate(ControlStatus::Excluded, &f(true, true, true, true));
        assert_eq!(l, 0);
        assert!(why.contains("does not apply"), "{why}");
    }

    #[test]
    fn a_status_no_rule_reaches_is_refused_at_load() {
        let text =
            include_str!("../data/maturity.yaml").replace("status: [stale]", "status: [fresh]");
        let e = MaturityModel::parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("no rule gives a level to a stale control"),
            "{e}"
        );
    }

    #[test]
    fn levels_out_of_order_or_unknown_facts_are_refused() {
        let text = include_str!("../data/maturity.yaml").replace("level: 4", "level: 6");
        let e = MaturityModel::parse(&text).unwrap_err().to_string();
        assert!(e.contains("0 to 5"), "{e}");
        let text =
            include_str!("../data/maturity.yaml").replace("collected: false", "automated: false");
        assert!(MaturityModel::parse(&text).is_err());
    }

    #[test]
    fn summary_leaves_out_controls_that_do_not_apply() {
        use ControlStatus::*;
        let s = summarize([
            (Fresh, 5),
            (Stale, 2),
            (Missing, 0),
            (Excluded, 0),
            (NotApplicable, 0),
            (Fresh, 4),
        ])
        .unwrap();
        assert_eq!(
            s,
            MaturitySummary {
                min: 0,
                median: 2,
                applicable: 4
            }
        );
        assert_eq!(summarize([(Excluded, 0)]), None);
    }
}
