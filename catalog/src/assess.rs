//! Assessment: from one AI system's evidence history to a status per control and findings.
//!
//! Pure and deterministic: the clock is an argument, the output order is fixed, and every
//! [`Finding`] gets its ID from `Finding::new`. The history is every record of the system in
//! ledger order; per locator the newest record is the current state, and a locator whose newest
//! event is `gone` has no current evidence.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use aims_model::acknowledgement::{Acknowledgement, acknowledgement_of};
use aims_model::applicability::{Applicability, current_statements};
use aims_model::diff;
use aims_model::manual::SERVER_KINDS;
use aims_model::wire::{ControlView, EvidenceRef};
use aims_model::{
    ControlStatus, EvidenceRecord, Finding, FindingKind, RecordEvent, RecordId, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::annex::compare_ids;
use crate::catalog::{Catalog, KindDef, Requirement};

/// Largest number of evidence references listed per control.
pub const MAX_EVIDENCE_PER_CONTROL: usize = 20;

/// One ledger entry of a system's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The record's ID.
    pub record_id: RecordId,
    /// Its leaf index in the ledger (ledger order).
    pub leaf_index: u64,
    /// The record.
    pub record: EvidenceRecord,
}

/// What the server knows about a system's evidence beyond its ledger records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    /// Leaf index of a record → the newest confirmation that its source still listed the
    /// record's content (DESIGN §12.1). Freshness of the record counts from the later of its
    /// `observed_at` and this time (confirmations after `now` are ignored).
    pub confirmed: HashMap<u64, Timestamp>,
    /// (agent, source id) → the last time the source was polled, for sources that are silent
    /// now. Reasons of controls whose evidence comes only from silent sources say so.
    pub silent: HashMap<(String, String), Timestamp>,
    /// Leaf index → when the server received the record. An artifact date later than its
    /// receipt (plus [`MAX_FUTURE_SKEW_SECS`]) is not believed: freshness counts from the
    /// receipt instead and an `inconsistent` finding says why (a report dated 9999-12-31 must not
    /// keep a control fresh forever).
    pub received: HashMap<u64, Timestamp>,
}

/// How far an artifact's own date may lie after the server received it (clock skew).
pub const MAX_FUTURE_SKEW_SECS: i64 = 300;

/// The result of assessing one AI system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemAssessment {
    /// The system.
    pub system: String,
    /// The `now` the assessment was made for.
    pub assessed_at: Timestamp,
    /// Every A.6/A.7 control, plus every other control with a requirement or current evidence,
    /// in control ID order.
    pub controls: Vec<ControlView>,
    /// All findings, sorted by (kind, controls, since, id).
    pub findings: Vec<Finding>,
}

/// Working view of a system's history.
struct Ctx<'a> {
    catalog: &'a Catalog,
    obs: &'a Observations,
    system: &'a str,
    /// The injected clock.
    now: Timestamp,
    /// All records of the system, by leaf index.
    all: Vec<&'a Evidence>,
    /// Records per locator, in ledger order.
    by_locator: BTreeMap<&'a str, Vec<&'a Evidence>>,
    /// Newest record per locator when it is `observed`.
    current: Vec<&'a Evidence>,
    /// Newest record per locator when it is `gone`.
    gone: Vec<&'a Evidence>,
    /// Controls the system's statement of applicability excludes → the newest statement.
    excluded: BTreeMap<&'a str, (Applicability, &'a Evidence)>,
    /// Finding ID → the newest acknowledgement of it that has not expired at `now`.
    acknowledged: HashMap<&'a str, Acknowledgement>,
}

impl<'a> Ctx<'a> {
    fn new(
        catalog: &'a Catalog,
        system: &'a str,
        history: &'a [Evidence],
        now: Timestamp,
        obs: &'a Observations,
    ) -> Self {
        let mut all: Vec<&Evidence> = history
            .iter()
            .filter(|e| e.record.system == system)
            .collect();
        all.sort_by_key(|e| e.leaf_index);
        // Statements of applicability are decisions, not evidence: the newest per control
        // decides, and they take no part in findings or freshness.
        let excluded = current_statements(all.iter().copied(), |e| &e.record)
            .into_iter()
            .filter(|(_, (d, _))| !d.applicable)
            .collect();
        let mut acknowledged = HashMap::new();
        for e in &all {
            if let Some((finding, ack)) = acknowledgement_of(&e.record) {
                acknowledged.insert(finding, ack);
            }
        }
        acknowledged.retain(|_, a: &mut Acknowledgement| now < a.expires_at);
        // Decisions written by the server are not evidence of anything.
        all.retain(|e| !SERVER_KINDS.contains(&e.record.kind.as_str()));
        let mut by_locator: BTreeMap<&str, Vec<&Evidence>> = BTreeMap::new();
        for e in &all {
            by_locator
                .entry(e.record.locator.as_str())
                .or_default()
                .push(e);
        }
        let mut current = Vec::new();
        let mut gone = Vec::new();
        for recs in by_locator.values() {
            if let Some(last) = recs.last() {
                match last.record.event {
                    RecordEvent::Observed => current.push(*last),
                    RecordEvent::Gone => gone.push(*last),
                }
            }
        }
        Self {
            catalog,
            obs,
            system,
            now,
            all,
            by_locator,
            current,
            gone,
            excluded,
            acknowledged,
        }
    }

    /// When `e` stops being fresh under a `days`-day window: its time basis plus the window, or
    /// the expiry an uploaded document set for itself, which overrides the window.
    fn deadline(&self, e: &Evidence, days: u32) -> Option<Timestamp> {
        aims_model::upload::upload_expiry(&e.record).or_else(|| self.eff(e).checked_add_days(days))
    }

    /// Whether `e` is past its deadline under a `days`-day window.
    fn lapsed(&self, e: &Evidence, days: u32) -> bool {
        self.deadline(e, days)
            .is_some_and(|deadline| self.now > deadline)
    }

    /// The time freshness is measured from, per the kind's `time` choice: the artifact's own
    /// date, or when its content was last observed (its record, or a later confirmation).
    fn eff(&self, e: &Evidence) -> Timestamp {
        let prefer = self
            .catalog
            .kind(&e.record.kind)
            .is_some_and(|k| k.time.prefers_artifact_time());
        match (prefer, e.record.artifact_time) {
            (true, Some(t)) => match self.future_dated(e, t) {
                Some(received) => received,
                None => t,
            },
            _ => self.observed(e),
        }
    }

    /// The receipt time, when `t` (the record's artifact date) lies beyond it.
    fn future_dated(&self, e: &Evidence, t: Timestamp) -> Option<Timestamp> {
        let received = *self.obs.received.get(&e.leaf_index)?;
        let limit = received.as_datetime() + chrono::TimeDelta::seconds(MAX_FUTURE_SKEW_SECS);
        (t.as_datetime() > limit).then_some(received)
    }

    /// When the record's content was last seen at its source.
    fn observed(&self, e: &Evidence) -> Timestamp {
        match self.obs.confirmed.get(&e.leaf_index) {
            Some(&c) if c > e.record.observed_at && c <= self.now => c,
            _ => e.record.observed_at,
        }
    }

    /// "The source pipeline … is silent since …" when every piece of `evidence` comes from a
    /// silent source.
    fn silent_note(&self, evidence: &[&Evidence]) -> Option<String> {
        if evidence.is_empty() || self.obs.silent.is_empty() {
            return None;
        }
        let mut pipes: BTreeMap<(String, String), Timestamp> = BTreeMap::new();
        for e in evidence {
            let key = (e.record.agent.clone(), e.record.source.id.clone());
            let since = *self.obs.silent.get(&key)?;
            pipes.insert(key, since);
        }
        let names: Vec<String> = pipes
            .iter()
            .map(|((a, s), t)| format!("{a}/{s} since {}", day(*t)))
            .collect();
        Some(format!(
            " Its source pipeline has been silent ({}): nothing confirms the evidence is still there.",
            names.join(", ")
        ))
    }

    /// Orders by effective time, then ledger position.
    fn newer(&self, a: &Evidence, b: &Evidence) -> Ordering {
        self.eff(a)
            .cmp(&self.eff(b))
            .then(a.leaf_index.cmp(&b.leaf_index))
    }

    fn newest<I: IntoIterator<Item = &'a Evidence>>(&self, it: I) -> Option<&'a Evidence> {
        it.into_iter().max_by(|a, b| self.newer(a, b))
    }

    fn newest_current(&self, kind: &str) -> Option<&'a Evidence> {
        self.newest(
            self.current
                .iter()
                .copied()
                .filter(|e| e.record.kind == kind),
        )
    }

    fn title(&self, kind: &str) -> String {
        let t = self.catalog.kind(kind).map_or(kind, |k| k.title.as_str());
        lower_first(t)
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

fn day(t: Timestamp) -> String {
    t.as_datetime().format("%Y-%m-%d").to_string()
}

fn sorted_controls<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.as_ref().to_owned()).collect();
    v.sort_by(|a, b| compare_ids(a, b));
    v.dedup();
    v
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Text form of a JSON scalar (versions may be numbers).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `(model name, model version)` from `metadata.model {name, version}`, a string
/// `metadata.model`, or flat `model_name` / `model_version`.
fn model_of(r: &EvidenceRecord) -> (Option<String>, Option<String>) {
    let m = r.metadata.get("model");
    let name = match m {
        Some(Value::Object(o)) => o.get("name").and_then(scalar),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
    .or_else(|| r.metadata.get("model_name").and_then(scalar));
    let version = match m {
        Some(Value::Object(o)) => o.get("version").and_then(scalar),
        _ => None,
    }
    .or_else(|| r.metadata.get("model_version").and_then(scalar));
    (name, version)
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Why a record of a failable kind says it failed, or `None` when it does not.
pub fn failure_reason(r: &EvidenceRecord) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(Value::Array(metrics)) = r.metadata.get("metrics") {
        for (i, m) in metrics.iter().enumerate() {
            let Some(o) = m.as_object() else { continue };
            let name = o
                .get("name")
                .and_then(scalar)
                .unwrap_or_else(|| format!("#{}", i + 1));
            let value = number(o.get("value"));
            let threshold = number(o.get("threshold"));
            let direction = o
                .get("direction")
                .and_then(Value::as_str)
                .map_or("min".to_owned(), str::to_ascii_lowercase);
            let failed = match o.get("passed").and_then(Value::as_bool) {
                Some(p) => !p,
                None => match (value, threshold) {
                    (Some(v), Some(t)) if direction == "max" => v > t,
                    (Some(v), Some(t)) => v < t,
                    _ => false,
                },
            };
            if failed {
                let show = |x: Option<f64>| x.map_or("?".to_owned(), |x| x.to_string());
                let bound = if direction == "max" {
                    "at most"
                } else {
                    "at least"
                };
                reasons.push(format!(
                    "metric {name} is {} where the threshold requires {bound} {}",
                    show(value),
                    show(threshold)
                ));
            }
        }
    }
    let decision_fail = r
        .meta_str("decision")
        .is_some_and(|d| d.eq_ignore_ascii_case("fail") || d.eq_ignore_ascii_case("failed"));
    let passed_false = r.metadata.get("passed").and_then(Value::as_bool) == Some(false);
    let success_false = r.metadata.get("success").and_then(Value::as_bool) == Some(false);
    if reasons.is_empty() {
        if decision_fail {
            reasons.push("its decision is fail".to_owned());
        } else if passed_false || success_false {
            reasons.push("it reports that it did not pass".to_owned());
        }
    }
    if reasons.is_empty() {
        None
    } else {
        Some(reasons.join("; "))
    }
}

fn new_finding(
    kind: FindingKind,
    ctx: &Ctx<'_>,
    controls: &[impl AsRef<str>],
    since: Timestamp,
    evidence: Vec<RecordId>,
    message: String,
) -> Finding {
    Finding::new(
        kind,
        ctx.system,
        sorted_controls(controls),
        since,
        evidence,
        message,
    )
}

fn requirement_findings(ctx: &Ctx<'_>, req: &Requirement, out: &mut Vec<Finding>) {
    let now = ctx.now;
    let control = [req.control.as_str()];
    for group in &req.requires {
        let titles: Vec<String> = group.iter().map(|k| ctx.title(k)).collect();
        let present: Vec<(&KindDef, &Evidence)> = group
            .iter()
            .filter_map(|k| Some((ctx.catalog.kind(k)?, ctx.newest_current(k)?)))
            .collect();
        if present.is_empty() {
            let removed = ctx.newest(
                ctx.gone
                    .iter()
                    .copied()
                    .filter(|e| group.contains(&e.record.kind)),
            );
            let f = match removed {
                Some(g) => new_finding(
                    FindingKind::Missing,
                    ctx,
                    &control,
                    g.record.observed_at,
                    vec![g.record_id.clone()],
                    format!(
                        "The {} {} of {} was removed at the source on {} and no current {} remains; {} needs one.",
                        ctx.title(&g.record.kind),
                        g.record.locator,
                        ctx.system,
                        day(g.record.observed_at),
                        join_or(&titles),
                        req.control
                    ),
                ),
                None => new_finding(
                    FindingKind::Missing,
                    ctx,
                    &control,
                    ctx.all
                        .iter()
                        .map(|e| e.record.observed_at)
                        .min()
                        .unwrap_or(now),
                    Vec::new(),
                    format!(
                        "No {} was ever collected for {}; {} needs one.",
                        join_or(&titles),
                        ctx.system,
                        req.control
                    ),
                ),
            };
            out.push(f);
            continue;
        }
        let any_fresh = present
            .iter()
            .any(|(k, e)| !ctx.lapsed(e, req.window_days(k)));
        if any_fresh {
            continue;
        }
        for (k, e) in present {
            let days = req.window_days(k);
            let t = ctx.eff(e);
            out.push(new_finding(
                FindingKind::Stale,
                ctx,
                &control,
                ctx.deadline(e, days).unwrap_or(t),
                vec![e.record_id.clone()],
                format!(
                    "The newest {} of {}, {}, dates from {} and is older than the {}-day window of {}.",
                    ctx.title(&k.name),
                    ctx.system,
                    e.record.locator,
                    day(t),
                    days,
                    req.control
                ),
            ));
        }
    }
}

fn changed_findings(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for rule in ctx.catalog.drift_rules() {
        let cover = ctx.newest(
            ctx.current
                .iter()
                .copied()
                .filter(|e| rule.covered_by.contains(&e.record.kind)),
        );
        let Some(cover) = cover else { continue };
        let cover_t = ctx.eff(cover);
        for card in ctx
            .current
            .iter()
            .copied()
            .filter(|e| e.record.kind == rule.kind)
        {
            let Some(recs) = ctx.by_locator.get(card.record.locator.as_str()) else {
                continue;
            };
            let observed: Vec<&Evidence> = recs
                .iter()
                .copied()
                .filter(|e| e.record.event == RecordEvent::Observed)
                .collect();
            let distinct: BTreeSet<&str> =
                observed.iter().map(|e| e.record.sha256.as_str()).collect();
            if distinct.len() < 2 {
                continue;
            }
            // The first record of the latest run of the current content.
            let at = observed
                .iter()
                .rposition(|e| e.record.sha256 != card.record.sha256)
                .map_or(0, |i| i + 1);
            let change = observed.get(at).copied().unwrap_or(card);
            let t_change = ctx.eff(change);
            // The card has had other content before, and its current content is newer than
            // the validation/approval that covers it: that review was of something else.
            if cover_t < t_change {
                let fields = changed_fields(ctx, &observed[..at], card, cover_t);
                out.push(new_finding(
                    FindingKind::Changed,
                    ctx,
                    &rule.controls,
                    t_change,
                    vec![card.record_id.clone(), cover.record_id.clone()],
                    format!(
                        "The {} {} changed on {} after the {} {} of {} that relied on it; {}.",
                        ctx.title(&rule.kind),
                        card.record.locator,
                        day(t_change),
                        ctx.title(&cover.record.kind),
                        cover.record.locator,
                        day(cover_t),
                        fields
                    ),
                ));
            }
        }
    }
}

/// Most parsed fields a `changed` finding names (the rest are counted).
const MAX_NAMED_FIELDS: usize = 5;

/// What a `changed` finding says changed: the parsed fields that differ between the content the
/// review relied on and `card`'s. That content is the newest of `before` (the artifact's
/// observed records before its current content, in ledger order) dated no later than the review
/// and with other content, or else the content just before the current one.
fn changed_fields(
    ctx: &Ctx<'_>,
    before: &[&Evidence],
    card: &Evidence,
    cover_t: Timestamp,
) -> String {
    let other = |e: &&&Evidence| e.record.sha256 != card.record.sha256;
    let base = before
        .iter()
        .rev()
        .filter(other)
        .find(|e| ctx.eff(e) <= cover_t)
        .or_else(|| before.iter().rev().find(other));
    let Some(base) = base else {
        return "its earlier content is not in the ledger".to_owned();
    };
    let changes = diff::metadata_changes(&base.record.metadata, &card.record.metadata);
    if changes.is_empty() {
        "no parsed field differs, only the content".to_owned()
    } else {
        format!(
            "fields changed: {}",
            diff::path_list(&changes, MAX_NAMED_FIELDS)
        )
    }
}

/// Newest current record of `kind` per model name (or per locator when it names no model).
fn newest_per_model<'a>(
    ctx: &Ctx<'a>,
    kind: &str,
    keep: impl Fn(&Evidence) -> bool,
) -> BTreeMap<String, &'a Evidence> {
    let mut map: BTreeMap<String, &Evidence> = BTreeMap::new();
    for e in ctx
        .current
        .iter()
        .copied()
        .filter(|e| e.record.kind == kind && keep(e))
    {
        let key = match model_of(&e.record).0 {
            Some(name) => format!("model:{name}"),
            None => format!("locator:{}", e.record.locator),
        };
        match map.get(&key) {
            Some(old) if ctx.newer(old, e) != Ordering::Less => {}
            _ => {
                map.insert(key, e);
            }
        }
    }
    map
}

fn describe_model(r: &EvidenceRecord) -> String {
    match model_of(r) {
        (Some(n), Some(v)) => format!(" for model {n} version {v}"),
        (Some(n), None) => format!(" for model {n}"),
        _ => String::new(),
    }
}

fn failed_findings(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for kind in ctx.catalog.failable_kinds() {
        let controls = ctx
            .catalog
            .kind(kind)
            .map(|k| k.controls.clone())
            .unwrap_or_default();
        if controls.is_empty() {
            continue;
        }
        for e in newest_per_model(ctx, kind, |_| true).into_values() {
            if let Some(why) = failure_reason(&e.record) {
                out.push(new_finding(
                    FindingKind::Failed,
                    ctx,
                    &controls,
                    ctx.eff(e),
                    vec![e.record_id.clone()],
                    format!(
                        "The {} {}{} failed: {}.",
                        ctx.title(kind),
                        e.record.locator,
                        describe_model(&e.record),
                        why
                    ),
                ));
            }
        }
    }
}

fn gone_findings(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for g in &ctx.gone {
        let Some(kind) = ctx.catalog.kind(&g.record.kind) else {
            continue;
        };
        if kind.controls.is_empty() {
            continue;
        }
        out.push(new_finding(
            FindingKind::Gone,
            ctx,
            &kind.controls,
            g.record.observed_at,
            vec![g.record_id.clone()],
            format!(
                "The {} {} of {} was removed from its source on {}; its earlier evidence stays in the ledger.",
                ctx.title(&kind.name),
                g.record.locator,
                ctx.system,
                day(g.record.observed_at)
            ),
        ));
    }
}

/// Current evidence whose own date lies after its receipt by the server.
fn future_dated_findings(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for e in &ctx.current {
        let Some(t) = e.record.artifact_time else {
            continue;
        };
        let Some(received) = ctx.future_dated(e, t) else {
            continue;
        };
        let Some(kind) = ctx.catalog.kind(&e.record.kind) else {
            continue;
        };
        if kind.controls.is_empty() {
            continue;
        }
        out.push(new_finding(
            FindingKind::Inconsistent,
            ctx,
            &kind.controls,
            received,
            vec![e.record_id.clone()],
            format!(
                "The {} {} is dated {}, after the server received it on {}; its freshness counts from the receipt.",
                ctx.title(&kind.name),
                e.record.locator,
                day(t),
                day(received)
            ),
        ));
    }
}

fn inconsistent_findings(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for rule in ctx.catalog.consistency_rules() {
        let passing = newest_per_model(ctx, &rule.validated_by, |e| {
            failure_reason(&e.record).is_none()
        });
        for (key, appr) in newest_per_model(ctx, &rule.kind, |_| true) {
            if !key.starts_with("model:") {
                continue;
            }
            let Some(val) = passing.get(&key) else {
                continue;
            };
            let (name, av) = model_of(&appr.record);
            let (_, vv) = model_of(&val.record);
            let name = name.unwrap_or_default();
            let (at, vt) = (ctx.eff(appr), ctx.eff(val));
            let evidence = vec![appr.record_id.clone(), val.record_id.clone()];
            match (av, vv) {
                (Some(av), Some(vv)) if av != vv => out.push(new_finding(
                    FindingKind::Inconsistent,
                    ctx,
                    &rule.controls,
                    at.max(vt),
                    evidence,
                    format!(
                        "The {} {} names {} version {}, but the newest passing {} {} names version {}.",
                        ctx.title(&rule.kind),
                        appr.record.locator,
                        name,
                        av,
                        ctx.title(&rule.validated_by),
                        val.record.locator,
                        vv
                    ),
                )),
                (Some(_), Some(_)) if at < vt => out.push(new_finding(
                    FindingKind::Inconsistent,
                    ctx,
                    &rule.controls,
                    vt,
                    evidence,
                    format!(
                        "The {} {} of {} predates the {} {} of {} it relies on.",
                        ctx.title(&rule.kind),
                        appr.record.locator,
                        day(at),
                        ctx.title(&rule.validated_by),
                        val.record.locator,
                        day(vt)
                    ),
                )),
                _ => {}
            }
        }
    }
}

/// Findings as the statement of applicability leaves them: excluded controls removed from each
/// finding (its ID follows its controls), findings about excluded controls only dropped.
fn without_excluded(ctx: &Ctx<'_>, findings: Vec<Finding>) -> Vec<Finding> {
    if ctx.excluded.is_empty() {
        return findings;
    }
    findings
        .into_iter()
        .filter_map(|f| {
            if !f
                .controls
                .iter()
                .any(|c| ctx.excluded.contains_key(c.as_str()))
            {
                return Some(f);
            }
            let controls: Vec<String> = f
                .controls
                .iter()
                .filter(|c| !ctx.excluded.contains_key(c.as_str()))
                .cloned()
                .collect();
            (!controls.is_empty())
                .then(|| Finding::new(f.kind, &f.system, controls, f.since, f.evidence, f.message))
        })
        .collect()
}

fn compare_findings(a: &Finding, b: &Finding) -> Ordering {
    a.kind
        .cmp(&b.kind)
        .then_with(|| {
            for (x, y) in a.controls.iter().zip(&b.controls) {
                let o = compare_ids(x, y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.controls.len().cmp(&b.controls.len())
        })
        .then(a.since.cmp(&b.since))
        .then_with(|| a.id.cmp(&b.id))
}

fn is_drift(k: FindingKind) -> bool {
    matches!(
        k,
        FindingKind::Changed | FindingKind::Failed | FindingKind::Inconsistent | FindingKind::Gone
    )
}

fn control_view(ctx: &Ctx<'_>, id: &str, findings: &[Finding]) -> ControlView {
    let catalog = ctx.catalog;
    let mut support: Vec<&Evidence> = ctx
        .current
        .iter()
        .copied()
        .filter(|e| catalog.controls_for_kind(&e.record.kind).contains(&id))
        .collect();
    support.sort_by(|a, b| ctx.newer(b, a));
    let touching: Vec<Finding> = findings
        .iter()
        .filter(|f| f.controls.iter().any(|c| c == id))
        .cloned()
        .collect();
    let req = catalog.requirement(id).filter(|r| !r.requires.is_empty());
    // Acknowledged findings are listed but no longer set the status (accepted risk).
    let first_of = |pred: &dyn Fn(FindingKind) -> bool| {
        touching
            .iter()
            .find(|f| f.acknowledged.is_none() && pred(f.kind))
    };

    // Set where freshness is decided, below; kept only if the status ends up fresh.
    let mut fresh_until: Option<Timestamp> = None;
    let (status, reason) = if let Some((d, statement)) = ctx.excluded.get(id) {
        (
            ControlStatus::Excluded,
            format!(
                "Excluded by the statement of applicability ({} on {}): {}",
                statement.record.agent,
                day(statement.record.observed_at),
                d.justification
            ),
        )
    } else if let Some(f) = first_of(&|k| k == FindingKind::Missing) {
        (ControlStatus::Missing, f.message.clone())
    } else if let Some(f) = first_of(&is_drift) {
        (ControlStatus::Drifted, f.message.clone())
    } else if let Some(f) = first_of(&|k| k == FindingKind::Stale) {
        (ControlStatus::Stale, f.message.clone())
    } else if let Some(req) = req {
        let parts: Vec<String> = req
            .requires
            .iter()
            .flatten()
            .filter_map(|k| {
                let e = ctx.newest_current(k)?;
                Some(format!("{} of {}", ctx.title(k), day(ctx.eff(e))))
            })
            .collect();
        let reason = if parts.is_empty() {
            "No requirement is open.".to_owned()
        } else {
            format!("Required evidence is current: {}.", parts.join(", "))
        };
        fresh_until = requirement_deadline(ctx, req);
        (ControlStatus::Fresh, reason)
    } else {
        match support.first() {
            None => (
                ControlStatus::NotApplicable,
                "Nothing is required of this system for this control and no evidence maps to it."
                    .to_owned(),
            ),
            Some(newest) => {
                let fresh = support.iter().find(|e| {
                    let days = catalog
                        .kind(&e.record.kind)
                        .map_or(u32::MAX, |k| k.freshness_days);
                    !ctx.lapsed(e, days)
                });
                fresh_until = support
                    .iter()
                    .filter_map(|e| {
                        let days = catalog.kind(&e.record.kind)?.freshness_days;
                        ctx.deadline(e, days)
                    })
                    .max();
                match fresh {
                    Some(e) => (
                        ControlStatus::Fresh,
                        format!(
                            "Supporting evidence is current: {} of {}.",
                            ctx.title(&e.record.kind),
                            day(ctx.eff(e))
                        ),
                    ),
                    None => (
                        ControlStatus::Stale,
                        format!(
                            "The newest supporting evidence, the {} of {}, is older than its freshness window.",
                            ctx.title(&newest.record.kind),
                            day(ctx.eff(newest))
                        ),
                    ),
                }
            }
        }
    };
    let mut reason = reason;
    if status != ControlStatus::Excluded {
        for f in touching.iter() {
            if let Some(a) = &f.acknowledged {
                reason.push_str(&format!(
                    " Accepted risk: the {} finding was acknowledged by {} until {}: {}",
                    f.kind,
                    a.by,
                    day(a.expires_at),
                    a.reason
                ));
            }
        }
    }
    if matches!(
        status,
        ControlStatus::Fresh | ControlStatus::Stale | ControlStatus::Drifted
    ) && let Some(note) = ctx.silent_note(&support)
    {
        reason.push_str(&note);
    }
    let (maturity, maturity_reason) = maturity(ctx, status, &support, &touching);
    // A deadline already passed means the control is fresh by accepted risk, not by evidence.
    let fresh_until = fresh_until.filter(|t| status == ControlStatus::Fresh && *t >= ctx.now);
    ControlView {
        control: id.to_owned(),
        title: catalog
            .control(id)
            .map(|c| c.title.clone())
            .unwrap_or_default(),
        status,
        reason,
        evidence: support
            .iter()
            .take(MAX_EVIDENCE_PER_CONTROL)
            .map(|e| EvidenceRef {
                record_id: e.record_id.clone(),
                sha256: e.record.sha256.clone(),
                locator: e.record.locator.clone(),
                kind: e.record.kind.clone(),
                observed_at: e.record.observed_at,
                event: e.record.event,
            })
            .collect(),
        findings: touching,
        maturity,
        maturity_reason,
        fresh_until,
    }
}

/// When a requirement's freshness ends if nothing new arrives: each group (one of its kinds
/// must be current) holds until the latest window among its current evidence closes, and the
/// requirement until the first group lapses. `None` when a group has no current evidence.
fn requirement_deadline(ctx: &Ctx<'_>, req: &Requirement) -> Option<Timestamp> {
    req.requires
        .iter()
        .map(|group| {
            group
                .iter()
                .filter_map(|k| {
                    let kind = ctx.catalog.kind(k)?;
                    let e = ctx.newest_current(k)?;
                    ctx.deadline(e, req.window_days(kind))
                })
                .max()
        })
        .collect::<Option<Vec<Timestamp>>>()?
        .into_iter()
        .min()
}

/// The computed maturity of a control's evidence loop (0–5) and why: the facts of its current
/// supporting evidence and findings, evaluated by the catalog's maturity rules
/// (`data/maturity.yaml`).
fn maturity(
    ctx: &Ctx<'_>,
    status: ControlStatus,
    support: &[&Evidence],
    touching: &[Finding],
) -> (u8, String) {
    let automatic: Vec<&&Evidence> = support
        .iter()
        .filter(|e| e.record.source.source_type != aims_model::SourceType::Manual)
        .collect();
    // Kept current by itself: some automatically collected evidence was refreshed (a later
    // version of the same artifact) or confirmed unchanged after its first observation.
    let continuous = automatic.iter().any(|e| {
        ctx.obs.confirmed.contains_key(&e.leaf_index)
            || ctx
                .by_locator
                .get(e.record.locator.as_str())
                .is_some_and(|v| {
                    v.iter()
                        .filter(|r| r.record.event == RecordEvent::Observed)
                        .count()
                        > 1
                })
    });
    let facts = crate::maturity::MaturityFacts {
        supported: !support.is_empty(),
        risk_accepted: touching.iter().any(|f| f.acknowledged.is_some()),
        collected: !automatic.is_empty(),
        continuous,
    };
    ctx.catalog.maturity().evaluate(status, &facts)
}

/// Assesses one AI system: findings from its history (`observed` and `gone` records in ledger
/// order; records of other systems are ignored) and a status per control, as of `now`.
pub fn assess(
    catalog: &Catalog,
    system: &str,
    history: &[Evidence],
    now: Timestamp,
) -> SystemAssessment {
    assess_with(catalog, system, history, now, &Observations::default())
}

/// [`assess`] with what the server knows beyond the records: confirmation times and silent
/// sources.
pub fn assess_with(
    catalog: &Catalog,
    system: &str,
    history: &[Evidence],
    now: Timestamp,
    obs: &Observations,
) -> SystemAssessment {
    let ctx = Ctx::new(catalog, system, history, now, obs);
    let mut findings = Vec::new();
    for req in catalog.requirements() {
        requirement_findings(&ctx, req, &mut findings);
    }
    changed_findings(&ctx, &mut findings);
    failed_findings(&ctx, &mut findings);
    gone_findings(&ctx, &mut findings);
    inconsistent_findings(&ctx, &mut findings);
    future_dated_findings(&ctx, &mut findings);
    let mut findings = without_excluded(&ctx, findings);
    findings.sort_by(compare_findings);
    findings.dedup_by(|a, b| a.id == b.id);
    for f in &mut findings {
        f.acknowledged = ctx.acknowledged.get(f.id.as_str()).cloned();
    }

    let mut ids: BTreeSet<&str> = catalog
        .dashboard_controls()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    ids.extend(
        catalog
            .requirements()
            .iter()
            .filter(|r| !r.requires.is_empty())
            .map(|r| r.control.as_str()),
    );
    for e in &ctx.current {
        ids.extend(catalog.controls_for_kind(&e.record.kind));
    }
    ids.extend(
        findings
            .iter()
            .flat_map(|f| f.controls.iter().map(String::as_str)),
    );
    ids.extend(ctx.excluded.keys().copied());
    let mut ids: Vec<&str> = ids
        .into_iter()
        .filter(|id| catalog.is_control(id))
        .collect();
    ids.sort_by(|a, b| compare_ids(a, b));

    let controls = ids
        .into_iter()
        .map(|id| control_view(&ctx, id, &findings))
        .collect();
    SystemAssessment {
        system: system.to_owned(),
        assessed_at: now,
        controls,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(metadata: Value) -> EvidenceRecord {
        serde_json::from_value(serde_json::json!({
            "v": 1, "agent": "a", "source": {"id": "s", "type": "dir"}, "locator": "l",
            "version": "1", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 0, "observed_at": "2026-11-20T10:00:00Z", "system": "x",
            "kind": "validation_report", "metadata": metadata
        }))
        .unwrap()
    }

    #[test]
    fn failure_rules() {
        use serde_json::json;
        assert!(failure_reason(&rec(json!({"decision": "pass"}))).is_none());
        assert!(failure_reason(&rec(json!({"decision": "Fail"}))).is_some());
        assert!(failure_reason(&rec(json!({"passed": false}))).is_some());
        let m = |v: f64, dir: &str| json!({"metrics": [{"name": "m", "value": v, "threshold": 0.5, "direction": dir}]});
        assert!(failure_reason(&rec(m(0.6, "min"))).is_none());
        assert!(failure_reason(&rec(m(0.4, "min"))).is_some());
        assert!(failure_reason(&rec(m(0.4, "max"))).is_none());
        let why = failure_reason(&rec(m(0.6, "max"))).unwrap();
        assert!(
            why.contains("m is 0.6") && why.contains("at most 0.5"),
            "{why}"
        );
        // An explicit verdict wins over the numbers.
        let v = json!({"metrics": [{"name": "m", "value": 0.1, "threshold": 0.5, "passed": true}]});
        assert!(failure_reason(&rec(v)).is_none());
    }

    #[test]
    fn issue_18_m1_a_future_artifact_date_is_capped_at_receipt() {
        let catalog = Catalog::embedded().unwrap();
        let mut r = rec(serde_json::json!({"decision": "pass"}));
        r.artifact_time = Some(Timestamp::parse_utc("9999-12-31T00:00:00Z").unwrap());
        let history = vec![Evidence {
            record_id: r.record_id().unwrap(),
            leaf_index: 0,
            record: r,
        }];
        let received = Timestamp::parse_utc("2026-11-20T10:00:01Z").unwrap();
        let mut obs = Observations::default();
        obs.received.insert(0, received);
        let at = |s: &str| Timestamp::parse_utc(s).unwrap();
        let a = assess_with(&catalog, "x", &history, at("2026-11-21T00:00:00Z"), &obs);
        let c = a.controls.iter().find(|c| c.control == "A.6.2.4").unwrap();
        assert_eq!(c.status, ControlStatus::Drifted, "{c:?}");
        assert!(c.reason.contains("9999-12-31"), "{}", c.reason);
        let f = a
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::Inconsistent)
            .unwrap();
        assert_eq!(
            (f.since, f.controls.as_slice()),
            (received, &["A.6.2.4".to_owned()][..])
        );
        // 100 days after receipt the 90-day window has closed: the date bought nothing.
        let later = assess_with(&catalog, "x", &history, at("2027-03-01T00:00:00Z"), &obs);
        assert!(
            later
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::Stale && f.controls == ["A.6.2.4"]),
            "{:?}",
            later.findings
        );
    }

    #[test]
    fn model_fields() {
        use serde_json::json;
        let r = rec(json!({"model": {"name": "m", "version": 3}}));
        assert_eq!(model_of(&r), (Some("m".into()), Some("3".into())));
        let r = rec(json!({"model_name": "m", "model_version": "7"}));
        assert_eq!(model_of(&r), (Some("m".into()), Some("7".into())));
        assert_eq!(lower_first("Dataset card"), "dataset card");
        assert_eq!(lower_first("MLflow run"), "MLflow run");
    }
}
