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

use crate::assess::{MAX_FUTURE_SKEW_SECS, Observations, SystemAssessment, assess_with};
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

/// A control's state at one instant, as a history shows it.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    status: ControlStatus,
    reason: String,
    /// The assessment listed the control (a control listed nowhere in a period is left out).
    listed: bool,
}

impl Sample {
    /// Before the system's first record was received.
    fn not_yet(system: &str) -> Self {
        Self {
            status: ControlStatus::Missing,
            reason: format!("No evidence of {system} had been received yet."),
            listed: false,
        }
    }

    /// The state of `control` in the assessment `state` (`None`: nothing received yet).
    fn of(
        system: &str,
        state: Option<&BTreeMap<String, (ControlStatus, String)>>,
        control: &str,
    ) -> Self {
        match state {
            None => Self::not_yet(system),
            Some(m) => match m.get(control) {
                Some((status, reason)) => Self {
                    status: *status,
                    reason: reason.clone(),
                    listed: true,
                },
                None => Self::unlisted(),
            },
        }
    }

    /// A control the assessment did not list.
    fn unlisted() -> Self {
        Self {
            status: ControlStatus::NotApplicable,
            reason:
                "Nothing was required of this system for this control and no evidence mapped to it."
                    .to_owned(),
            listed: false,
        }
    }
}

/// The assessment at one change point: each listed control's status and reason; `None` before
/// the system's first record.
type State = Option<BTreeMap<String, (ControlStatus, String)>>;

/// Only `system`'s records of `replay` (the per-point copies stay small).
fn own_replay(replay: &Replay, system: &str) -> Replay {
    Replay {
        systems: replay
            .systems
            .get(system)
            .map(|h| BTreeMap::from([(system.to_owned(), h.clone())]))
            .unwrap_or_default(),
        observations: replay.observations.clone(),
        confirmations: replay.confirmations.clone(),
    }
}

fn to_state(a: SystemAssessment) -> BTreeMap<String, (ControlStatus, String)> {
    a.controls
        .into_iter()
        .map(|c| (c.control, (c.status, c.reason)))
        .collect()
}

/// The assessment of `system` at each of `points` (sorted), from `own` (its records only).
///
/// When receipts never go back in ledger order (the usual case: one server clock), the ledger as
/// known at `t` is a prefix of the system's records, so each point assesses a slice and only the
/// confirmations are re-derived; otherwise each point filters a copy ([`status_at`]).
fn states_at(catalog: &Catalog, own: &Replay, system: &str, points: &[Timestamp]) -> Vec<State> {
    let Some(history) = own.systems.get(system) else {
        return vec![None; points.len()];
    };
    let received: Option<Vec<Timestamp>> = history
        .iter()
        .map(|e| own.observations.received.get(&e.leaf_index).copied())
        .collect();
    let Some(received) = received.filter(|r| r.windows(2).all(|w| w[0] <= w[1])) else {
        return points
            .iter()
            .map(|&t| status_at(catalog, own, system, t).map(to_state))
            .collect();
    };
    let mut obs = Observations {
        received: own.observations.received.clone(),
        ..Observations::default()
    };
    points
        .iter()
        .map(|&t| {
            let known = received.partition_point(|r| *r <= t);
            if known == 0 {
                return None;
            }
            if !own.confirmations.is_empty() {
                obs.confirmed = own.confirmed_as_of(Some(t));
            }
            Some(to_state(assess_with(
                catalog,
                system,
                &history[..known],
                t,
                &obs,
            )))
        })
        .collect()
}

/// Each control's samples, in time order, from `[from, to)`, merged into intervals of equal
/// status (the reason is the one at each interval's start) with the fresh share. Controls never
/// listed in the period are left out; the rest come in control ID order.
fn assemble(
    per_control: BTreeMap<String, Vec<(Timestamp, Sample)>>,
    from: Timestamp,
    to: Timestamp,
) -> Vec<ControlHistory> {
    let total = (ms(to) - ms(from)).max(0);
    let mut out: Vec<ControlHistory> = per_control
        .into_iter()
        .filter(|(_, samples)| samples.iter().any(|(_, s)| s.listed))
        .map(|(control, samples)| {
            let mut run: Vec<(Timestamp, ControlStatus, String)> = Vec::new();
            for (t, s) in samples {
                if run.last().is_none_or(|(_, status, _)| *status != s.status) {
                    run.push((t, s.status, s.reason));
                }
            }
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
        .collect();
    out.sort_by(|a, b| crate::annex::compare_ids(&a.control, &b.control));
    out
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
    let own = own_replay(replay, system);
    let points = change_points(catalog, &own, system, from, to);
    let states = states_at(catalog, &own, system, &points);
    let mut per_control: BTreeMap<String, Vec<(Timestamp, Sample)>> = BTreeMap::new();
    for id in states.iter().flatten().flat_map(|m| m.keys()) {
        per_control.entry(id.clone()).or_default();
    }
    for (id, samples) in per_control.iter_mut() {
        for (&t, state) in points.iter().zip(&states) {
            samples.push((t, Sample::of(system, state.as_ref(), id)));
        }
    }
    assemble(per_control, from, to)
}

/// The earliest instant a timeline covers (the Unix epoch; before it every state is "nothing
/// received yet").
fn epoch() -> Timestamp {
    Timestamp::from_datetime(chrono::DateTime::UNIX_EPOCH)
}

/// The latest instant change points are looked for.
fn far_future() -> Timestamp {
    Timestamp::from_unix_millis(253_402_300_799_999).unwrap_or_else(Timestamp::now)
}

/// One system's history materialised from the epoch on: per control, each change of its state.
///
/// States before an instant depend only on entries received by then, so a timeline is advanced
/// rather than recomputed: entries received at or after `since` re-evaluate only the change
/// points from `since` on ([`Timeline::advance`]), and between two change points nothing needs
/// evaluating at all ([`Timeline::covers`]). [`Timeline::history`] then answers any period by
/// clipping, with the same result as [`history`] over the same entries (tested).
#[derive(Clone, Debug)]
pub struct Timeline {
    system: String,
    /// Per control, `(start, state)` at the epoch and at each change of its state.
    controls: BTreeMap<String, Vec<(Timestamp, Sample)>>,
    /// Every change point up to here (inclusive) is evaluated.
    through: Timestamp,
    /// The first change point after `through`; `None`: none is known.
    next: Option<Timestamp>,
    /// When the server received the system's first record.
    first_received: Option<Timestamp>,
}

impl Timeline {
    /// The timeline of `system` as of `now`, from `replay` (its entries; others are ignored).
    pub fn build(catalog: &Catalog, replay: &Replay, system: &str, now: Timestamp) -> Self {
        let mut t = Self {
            system: system.to_owned(),
            controls: BTreeMap::new(),
            through: epoch(),
            next: None,
            first_received: None,
        };
        t.advance(catalog, replay, epoch(), now);
        t
    }

    /// Re-evaluates every change point in `[since, now]` from `replay`, which holds every entry
    /// of the system received so far; the states before `since` are kept. `since` must be no
    /// later than the receipt of any entry the timeline has not seen, and no later than
    /// [`Timeline::next_change`] when `now` has passed it.
    pub fn advance(
        &mut self,
        catalog: &Catalog,
        replay: &Replay,
        since: Timestamp,
        now: Timestamp,
    ) {
        let since = since.max(epoch());
        let own = own_replay(replay, &self.system);
        let mut points = change_points(catalog, &own, &self.system, since, far_future());
        let later = points.partition_point(|p| *p <= now);
        self.next = points.get(later).copied();
        points.truncate(later);
        for samples in self.controls.values_mut() {
            samples.retain(|(t, _)| *t < since);
        }
        self.controls.retain(|_, samples| !samples.is_empty());
        self.first_received = own.systems.get(&self.system).and_then(|h| {
            h.iter()
                .filter_map(|e| own.observations.received.get(&e.leaf_index))
                .min()
                .copied()
        });
        let states = states_at(catalog, &own, &self.system, &points);
        for (&t, state) in points.iter().zip(&states) {
            if let Some(m) = state {
                for id in m.keys() {
                    if !self.controls.contains_key(id) {
                        // Never listed before `t`: nothing received before the first receipt,
                        // unlisted from then on.
                        let mut samples = vec![(epoch(), Sample::not_yet(&self.system))];
                        if let Some(first) = self.first_received.filter(|f| *f < t && *f > epoch())
                        {
                            samples.push((first, Sample::unlisted()));
                        }
                        self.controls.insert(id.clone(), samples);
                    }
                }
            }
            for (id, samples) in self.controls.iter_mut() {
                let s = Sample::of(&self.system, state.as_ref(), id);
                if samples.last().is_none_or(|(_, last)| *last != s) {
                    samples.push((t, s));
                }
            }
        }
        self.through = now.max(self.through);
    }

    /// Whether the timeline holds every state up to `to` (exclusive): no change point at or
    /// after the last evaluation comes before it.
    pub fn covers(&self, to: Timestamp) -> bool {
        to <= self.through || self.next.is_none_or(|n| to <= n)
    }

    /// The first change point not yet evaluated.
    pub fn next_change(&self) -> Option<Timestamp> {
        self.next
    }

    /// When the server received the system's first record.
    pub fn first_received(&self) -> Option<Timestamp> {
        self.first_received
    }

    /// How many state changes are held (all controls).
    pub fn len(&self) -> usize {
        self.controls.values().map(Vec::len).sum()
    }

    /// Whether no state is held.
    pub fn is_empty(&self) -> bool {
        self.controls.is_empty()
    }

    /// Every control over `[from, to)`, as [`history`] computes it; `to` must be covered
    /// ([`Timeline::covers`]).
    pub fn history(&self, from: Timestamp, to: Timestamp) -> Vec<ControlHistory> {
        let per_control = self
            .controls
            .iter()
            .filter_map(|(id, samples)| {
                let at = samples
                    .partition_point(|(t, _)| *t <= from)
                    .saturating_sub(1);
                let (_, first) = samples.get(at)?;
                let mut clipped = vec![(from, first.clone())];
                clipped.extend(
                    samples[at + 1..]
                        .iter()
                        .filter(|(t, _)| *t > from)
                        .take_while(|(t, _)| *t < to)
                        .cloned(),
                );
                Some((id.clone(), clipped))
            })
            .collect();
        assemble(per_control, from, to)
    }
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

    /// The replay of one validation report evaluated on 1 Jan 2026 and received on 2 Jan.
    fn one_validation_report() -> Replay {
        let r = record(
            "validation_report",
            "file:///v.json",
            "2026-01-02T00:00:00Z",
            Some("2026-01-01T00:00:00Z"),
        );
        let e = LedgerEntry::evidence(r, "tok", t("2026-01-02T00:00:00Z"), None);
        Replay::new([(0, &e)], &Default::default()).unwrap()
    }

    /// A validation report evaluated on 1 Jan, received 2 Jan: A.6.2.4 is missing until the
    /// receipt, fresh for 90 days after the evaluation, stale afterwards; the history says so to
    /// the millisecond and the fresh ratio is the fresh share of the period.
    #[test]
    fn validation_window_expires_exactly() {
        let catalog = Catalog::embedded().unwrap();
        let replay = one_validation_report();
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

    /// A varied history: several kinds, re-observations with new content, an artifact dated
    /// after its receipt, receipts spread over a year (one receipt going back in time in the
    /// second variant).
    fn varied(backwards: bool) -> Vec<LedgerEntry> {
        let specs: [(&str, &str, &str, Option<&str>, &str); 9] = [
            (
                "validation_report",
                "v.json",
                "2026-01-02T00:00:00Z",
                Some("2026-01-01T00:00:00Z"),
                "2026-01-02T00:00:00Z",
            ),
            (
                "model_card",
                "README.md",
                "2026-01-05T00:00:00Z",
                None,
                "2026-01-05T00:00:01Z",
            ),
            (
                "dataset_card",
                "data/README.md",
                "2026-02-01T00:00:00Z",
                Some("2026-01-20T00:00:00Z"),
                "2026-02-01T00:00:00Z",
            ),
            (
                "deployment_approval",
                "approve.json",
                "2026-02-10T00:00:00Z",
                None,
                "2026-02-10T00:00:00Z",
            ),
            (
                "validation_report",
                "v.json",
                "2026-05-01T00:00:00Z",
                Some("2026-04-30T00:00:00Z"),
                "2026-05-01T00:00:00Z",
            ),
            (
                "monitoring_report",
                "mon.json",
                "2026-06-01T00:00:00Z",
                Some("2026-12-31T00:00:00Z"),
                "2026-06-01T00:00:00Z",
            ),
            (
                "model_card",
                "README.md",
                "2026-07-01T00:00:00Z",
                None,
                "2026-07-01T00:00:00Z",
            ),
            (
                "event_log_config",
                "log.yaml",
                "2026-08-01T00:00:00Z",
                None,
                "2026-08-01T00:00:00Z",
            ),
            (
                "validation_report",
                "v.json",
                "2026-11-01T00:00:00Z",
                Some("2026-10-01T00:00:00Z"),
                "2026-11-01T00:00:00Z",
            ),
        ];
        specs
            .iter()
            .enumerate()
            .map(|(i, (kind, loc, observed, artifact, received))| {
                let mut r = record(kind, &format!("file:///{loc}"), observed, *artifact);
                r.sha256 = ContentHash::of(format!("{loc}{i}").as_bytes());
                let received = if backwards && i == 6 {
                    "2026-03-01T00:00:00Z"
                } else {
                    received
                };
                LedgerEntry::evidence(r, "tok", t(received), None)
            })
            .collect()
    }

    fn instants() -> Vec<Timestamp> {
        let mut out = vec![
            t("2025-06-01T00:00:00Z"),
            t("2026-01-02T00:00:00Z"),
            t("2026-04-01T00:00:00.001Z"),
        ];
        let mut m = t("2025-12-20T00:00:00Z").unix_millis();
        while m < t("2027-03-01T00:00:00Z").unix_millis() {
            out.push(Timestamp::from_unix_millis(m).unwrap());
            m += 11 * 86_400_000 + 3_600_000;
        }
        out
    }

    /// A timeline answers every period exactly as the replay computes it: built at once, and
    /// advanced entry by entry as the server does on ingest (with one receipt out of order).
    #[test]
    fn timeline_matches_the_replay_for_every_period() {
        let catalog = Catalog::embedded().unwrap();
        for backwards in [false, true] {
            let entries = varied(backwards);
            let all: Vec<(u64, &LedgerEntry)> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64, e))
                .collect();
            let replay = Replay::new(all.iter().copied(), &Default::default()).unwrap();
            let now = t("2027-03-01T00:00:00Z");
            let built = Timeline::build(&catalog, &replay, "fraud", now);
            // Advanced one entry at a time, each at its receipt (what ingest does).
            let mut grown = Timeline::build(
                &catalog,
                &Replay::new(all[..1].iter().copied(), &Default::default()).unwrap(),
                "fraud",
                entries[0].received_at,
            );
            for k in 2..=all.len() {
                let part = Replay::new(all[..k].iter().copied(), &Default::default()).unwrap();
                let received = entries[k - 1].received_at;
                let mut since = received;
                if let Some(n) = grown.next_change().filter(|n| *n <= received) {
                    since = since.min(n);
                }
                grown.advance(&catalog, &part, since, received.max(grown.through));
            }
            if let Some(n) = grown.next_change().filter(|n| *n <= now) {
                grown.advance(&catalog, &replay, n, now);
            }
            assert!(built.covers(now) && grown.covers(now));
            let at = instants();
            for (i, &from) in at.iter().enumerate() {
                for &to in at[i + 1..].iter().step_by(3) {
                    let want = history(&catalog, &replay, "fraud", from, to);
                    assert_eq!(
                        built.history(from, to),
                        want,
                        "built, {from}..{to}, backwards={backwards}"
                    );
                    assert_eq!(
                        grown.history(from, to),
                        want,
                        "grown, {from}..{to}, backwards={backwards}"
                    );
                }
            }
        }
    }

    /// Between change points a timeline needs no work; past one it says so.
    #[test]
    fn timeline_knows_its_next_change() {
        let catalog = Catalog::embedded().unwrap();
        let replay = one_validation_report();
        let mut tl = Timeline::build(&catalog, &replay, "fraud", t("2026-02-01T00:00:00Z"));
        let next = tl.next_change().unwrap();
        assert!(tl.covers(next) && !tl.covers(next.checked_add_millis(1).unwrap()));
        assert_eq!(tl.first_received(), Some(t("2026-01-02T00:00:00Z")));
        let later = t("2026-09-01T00:00:00Z");
        tl.advance(&catalog, &replay, next, later);
        assert!(tl.covers(later));
        assert_eq!(
            tl.history(t("2026-01-01T00:00:00Z"), later),
            history(&catalog, &replay, "fraud", t("2026-01-01T00:00:00Z"), later)
        );
    }
}
