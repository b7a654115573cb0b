//! Status over time (DESIGN §12.2): exact, not sampled.
//!
//! A control's status is a function of the entries the server had received and of the clock.
//! Between two *change points* it is constant, so a period is covered exactly by evaluating the
//! assessment at each change point and merging equal neighbours. The change points of a system
//! in `[from, to)` are:
//! - `from` itself;
//! - each receipt of one of its records, and of a confirmation that matched one of its records;
//! - each instant a window closes: for every record, every time its freshness may be measured
//!   from (its artifact date capped at receipt, its observation, each confirmation), plus every
//!   window that may apply to its kind (the kind's own and each requirement's), plus 1 ms
//!   (`stale` means strictly past the deadline).
//!
//! Evaluating at a superset of the true change points only splits intervals that are then merged
//! again, so the result is exact. Cost: one assessment of the system per change point (a year of
//! daily confirmations of ten artifacts is a few hundred points).

use std::collections::{BTreeMap, BTreeSet};

use aims_model::{ControlStatus, Timestamp};

use crate::assess::{MAX_FUTURE_SKEW_SECS, SystemAssessment, assess_with};
use crate::catalog::Catalog;
use crate::replay::Replay;

/// One stretch of constant status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusInterval {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Status throughout.
    pub status: ControlStatus,
    /// Why, as of the interval's start.
    pub reason: String,
}

/// One control over a period.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ControlHistory {
    /// Control ID.
    pub control: String,
    /// Share of the period's applicable time the control was fresh (time `not_applicable` is
    /// left out of both sides; 1 when no time was applicable).
    pub fresh_ratio: f64,
    /// Contiguous intervals covering `[from, to)`.
    pub intervals: Vec<StatusInterval>,
}

fn ms(t: Timestamp) -> i64 {
    t.as_datetime().timestamp_millis()
}

/// Every window (days) that may apply to `kind`: its own and each requirement's.
fn windows(catalog: &Catalog, kind: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let Some(k) = catalog.kind(kind) {
        out.insert(k.freshness_days);
        for r in catalog.requirements() {
            if r.requires.iter().flatten().any(|x| x == kind) {
                out.insert(r.window_days(k));
            }
        }
    }
    out
}

/// The change points of `system` in `[from, to)`, sorted.
fn change_points(
    catalog: &Catalog,
    replay: &Replay,
    system: &str,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Timestamp> {
    let (lo, hi) = (ms(from), ms(to));
    let mut points: BTreeSet<i64> = BTreeSet::from([lo]);
    let mut add = |t: Timestamp| {
        let m = ms(t);
        if m > lo && m < hi {
            points.insert(m);
        }
    };
    let Some(history) = replay.systems.get(system) else {
        return vec![from];
    };
    for e in history {
        let received = replay.observations.received.get(&e.leaf_index).copied();
        if let Some(r) = received {
            add(r);
        }
        if let Some((_, ack)) = aims_model::acknowledgement::acknowledgement_of(&e.record) {
            // An acknowledgement stops holding at its expiry.
            add(ack.expires_at);
        }
        if let Some(t) = aims_model::upload::upload_expiry(&e.record)
            && let Some(after) = t.checked_add_millis(1)
        {
            // An upload's own expiry ends its freshness (stale strictly after it).
            add(after);
        }
        let mut bases: Vec<Timestamp> = vec![e.record.observed_at];
        if let Some(a) = e.record.artifact_time {
            let capped = match received {
                Some(r) if ms(a) > ms(r) + MAX_FUTURE_SKEW_SECS * 1000 => r,
                _ => a,
            };
            bases.push(capped);
        }
        for (received, observed) in replay
            .confirmations
            .get(&e.leaf_index)
            .into_iter()
            .flatten()
        {
            add(*received);
            bases.push(*observed);
        }
        for w in windows(catalog, &e.record.kind) {
            for b in &bases {
                if let Some(deadline) = b.checked_add_millis(i64::from(w) * 86_400_000 + 1) {
                    add(deadline);
                }
            }
        }
    }
    points
        .into_iter()
        .filter_map(|m| chrono::DateTime::from_timestamp_millis(m).map(Timestamp::from_datetime))
        .collect()
}

/// The assessment of `system` as the server knew it at `at` (entries received by then, windows
/// measured at `at`); `None` when no record of the system had been received.
pub fn status_at(
    catalog: &Catalog,
    replay: &Replay,
    system: &str,
    at: Timestamp,
) -> Option<SystemAssessment> {
    let past = replay.as_of(at);
    let history = past.systems.get(system)?;
    Some(assess_with(
        catalog,
        system,
        history,
        at,
        &past.observations,
    ))
}

/// Every control of `system` over `[from, to)` (see the module docs). `replay` should hold the
/// system's entries (others are ignored); controls appear in catalog order.
pub fn history(
    catalog: &Catalog,
    replay: &Replay,
    system: &str,
    from: Timestamp,
    to: Timestamp,
) -> Vec<ControlHistory> {
    // Only this system's records matter: keep the per-point copies small.
    let own = Replay {
        systems: replay
            .systems
            .get(system)
            .map(|h| BTreeMap::from([(system.to_owned(), h.clone())]))
            .unwrap_or_default(),
        observations: replay.observations.clone(),
        confirmations: replay.confirmations.clone(),
    };
    let points = change_points(catalog, &own, system, from, to);
    // The assessment at each change point (`None`: no record of the system received yet).
    let states: Vec<Option<BTreeMap<String, (ControlStatus, String)>>> = points
        .iter()
        .map(|&t| {
            status_at(catalog, &own, system, t).map(|a| {
                a.controls
                    .into_iter()
                    .map(|c| (c.control, (c.status, c.reason)))
                    .collect()
            })
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    for id in states.iter().flatten().flat_map(|m| m.keys()) {
        if !order.contains(id) {
            order.push(id.clone());
        }
    }
    // Per control: (start, status, reason) at each point where the status changes.
    let mut runs: BTreeMap<String, Vec<(Timestamp, ControlStatus, String)>> = BTreeMap::new();
    for id in &order {
        let run = runs.entry(id.clone()).or_default();
        for (&t, state) in points.iter().zip(&states) {
            let (status, reason) = match state {
                None => (
                    ControlStatus::Missing,
                    format!("No evidence of {system} had been received yet."),
                ),
                Some(m) => m.get(id).cloned().unwrap_or_else(|| {
                    (
                        ControlStatus::NotApplicable,
                        "Nothing was required of this system for this control and no evidence mapped to it."
                            .to_owned(),
                    )
                }),
            };
            if run.last().is_none_or(|(_, s, _)| *s != status) {
                run.push((t, status, reason));
            }
        }
    }
    order.sort_by(|a, b| crate::annex::compare_ids(a, b));
    let total = (ms(to) - ms(from)).max(0);
    order
        .into_iter()
        .map(|control| {
            let run = runs.remove(&control).unwrap_or_default();
            let mut intervals = Vec::with_capacity(run.len());
            for (k, (start, status, reason)) in run.iter().enumerate() {
                let end = run.get(k + 1).map_or(to, |n| n.0);
                intervals.push(StatusInterval {
                    from: *start,
                    to: end,
                    status: *status,
                    reason: reason.clone(),
                });
            }
            let dur = |iv: &StatusInterval| (ms(iv.to) - ms(iv.from)).max(0);
            let fresh: i64 = intervals
                .iter()
                .filter(|iv| iv.status == ControlStatus::Fresh)
                .map(dur)
                .sum();
            let na: i64 = intervals
                .iter()
                .filter(|iv| {
                    matches!(
                        iv.status,
                        ControlStatus::NotApplicable | ControlStatus::Excluded
                    )
                })
                .map(dur)
                .sum();
            let applicable = total - na;
            let fresh_ratio = if applicable <= 0 {
                1.0
            } else {
                fresh as f64 / applicable as f64
            };
            ControlHistory {
                control,
                fresh_ratio,
                intervals,
            }
        })
        .collect()
}

/// One control of one system in the period report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ReportControl {
    /// Control ID.
    pub control: String,
    /// Fresh share of the applicable time.
    pub fresh_ratio: f64,
    /// The worst status the control had in the period (missing > drifted > stale > fresh >
    /// not applicable).
    pub worst_status: ControlStatus,
    /// Every interval that was not fresh (and neither `not_applicable` nor `excluded`).
    pub gaps: Vec<StatusInterval>,
}

/// One system in the period report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ReportSystem {
    /// System ID.
    pub system: String,
    /// Its controls.
    pub controls: Vec<ReportControl>,
}

/// `GET /v1/report`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PeriodReport {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Catalog version used.
    pub catalog_version: String,
    /// Systems in ID order.
    pub systems: Vec<ReportSystem>,
}

fn severity(s: ControlStatus) -> u8 {
    match s {
        ControlStatus::NotApplicable | ControlStatus::Excluded => 0,
        ControlStatus::Fresh => 1,
        ControlStatus::Stale => 2,
        ControlStatus::Drifted => 3,
        ControlStatus::Missing => 4,
    }
}

/// The report line of one control's history.
pub fn report_control(h: ControlHistory) -> ReportControl {
    let worst_status = h
        .intervals
        .iter()
        .map(|i| i.status)
        .max_by_key(|s| severity(*s))
        .unwrap_or(ControlStatus::NotApplicable);
    ReportControl {
        control: h.control,
        fresh_ratio: h.fresh_ratio,
        worst_status,
        gaps: h
            .intervals
            .into_iter()
            .filter(|i| {
                !matches!(
                    i.status,
                    ControlStatus::Fresh | ControlStatus::NotApplicable | ControlStatus::Excluded
                )
            })
            .collect(),
    }
}

/// The period report of `systems` over `[from, to)` from one replay (what an audit-period
/// export carries as `report/period.json` and `aims-verify` recomputes).
pub fn period_report(
    catalog: &Catalog,
    replay: &Replay,
    systems: &[String],
    from: Timestamp,
    to: Timestamp,
) -> PeriodReport {
    PeriodReport {
        from,
        to,
        catalog_version: catalog.version().to_owned(),
        systems: systems
            .iter()
            .map(|id| ReportSystem {
                system: id.clone(),
                controls: history(catalog, replay, id, from, to)
                    .into_iter()
                    .map(report_control)
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_ledger::LedgerEntry;
    use aims_model::{ContentHash, EvidenceRecord, RECORD_VERSION, RecordEvent};
    use aims_model::{SourceRef, SourceType};

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_utc(s).unwrap()
    }

    fn record(kind: &str, locator: &str, observed: &str, artifact: Option<&str>) -> EvidenceRecord {
        EvidenceRecord {
            v: RECORD_VERSION,
            agent: "a".into(),
            source: SourceRef {
                id: "s".into(),
                source_type: SourceType::Dir,
            },
            locator: locator.into(),
            version: "1".into(),
            sha256: ContentHash::of(locator.as_bytes()),
            size: 1,
            observed_at: t(observed),
            system: "fraud".into(),
            kind: kind.into(),
            metadata: serde_json::Map::new(),
            event: RecordEvent::Observed,
            artifact_time: artifact.map(t),
        }
    }

    /// A validation report evaluated on 1 Jan, received 2 Jan: A.6.2.4 is missing until the
    /// receipt, fresh for 90 days after the evaluation, stale afterwards; the history says so to
    /// the millisecond and the fresh ratio is the fresh share of the period.
    #[test]
    fn validation_window_expires_exactly() {
        let catalog = Catalog::embedded().unwrap();
        let r = record(
            "validation_report",
            "file:///v.json",
            "2026-01-02T00:00:00Z",
            Some("2026-01-01T00:00:00Z"),
        );
        let e = LedgerEntry::evidence(r, "tok", t("2026-01-02T00:00:00Z"), None);
        let replay = Replay::new([(0, &e)], &Default::default()).unwrap();
        let h = history(
            &catalog,
            &replay,
            "fraud",
            t("2025-12-01T00:00:00Z"),
            t("2026-06-01T00:00:00Z"),
        );
        let c = h.iter().find(|c| c.control == "A.6.2.4").unwrap();
        let shape: Vec<(String, ControlStatus)> = c
            .intervals
            .iter()
            .map(|i| (i.from.to_string(), i.status))
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "2025-12-01T00:00:00.000Z".to_owned(),
                    ControlStatus::Missing
                ),
                ("2026-01-02T00:00:00.000Z".to_owned(), ControlStatus::Fresh),
                ("2026-04-01T00:00:00.001Z".to_owned(), ControlStatus::Stale),
            ]
        );
        assert_eq!(c.intervals.last().unwrap().to, t("2026-06-01T00:00:00Z"));
        // Fresh from 2 Jan to 1 Apr (89 days) of a 182-day period.
        assert!(
            (c.fresh_ratio - 89.0 / 182.0).abs() < 1e-6,
            "{}",
            c.fresh_ratio
        );
        // Contiguous, covering the period.
        for w in c.intervals.windows(2) {
            assert_eq!(w[0].to, w[1].from);
        }
        let at = status_at(&catalog, &replay, "fraud", t("2026-01-01T12:00:00Z"));
        assert!(at.is_none(), "nothing received yet");
    }
}
