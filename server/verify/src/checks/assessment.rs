//! Check 8: the assessment (and an audit period's report) recomputed from the entries and the
//! bundled catalog must equal what the bundle states.

use super::*;

/// Recomputes the assessment from the bundle's own entries, listings and catalog, as of the
/// checkpoint's cosigned time (what the server did when it wrote the export), and requires the
/// OSCAL findings to say exactly that: the same (system, control) pairs, each with the same
/// status and the same finding ids. Falsified findings (a control shown fresh that is stale, a
/// finding left out) fail here, naming the system and control.
pub(super) fn check_assessment(ctx: &mut Ctx<'_>) -> Step {
    let Some(raw) = ctx.bundle.get(layout::OSCAL_AR) else {
        return Ok(skipped(format!("no {}", layout::OSCAL_AR)));
    };
    // The field, not `ctx.manifest()`: the replay below takes the entries out of `ctx`.
    let manifest = ctx
        .manifest
        .as_ref()
        .ok_or_else(|| fail(layout::MANIFEST, "not read"))?;
    let mut texts: Vec<String> = Vec::with_capacity(aims_catalog::DATA_FILES.len());
    for name in aims_catalog::DATA_FILES {
        let path = format!("catalog/{name}");
        // Bundles written before the maturity levels became catalog data carry no
        // `maturity.yaml`; maturity is not among what this check compares, so the built-in
        // levels stand in.
        let text = match (ctx.bundle.get(&path), aims_catalog::embedded_file(name)) {
            (None, Some(builtin)) if name == aims_catalog::maturity::MATURITY_FILE => builtin,
            _ => utf8(&path, ctx.file(&path)?)?,
        };
        texts.push(text.to_owned());
    }
    let texts: [String; 5] = texts
        .try_into()
        .map_err(|_| fail("catalog/", "expected five catalog files"))?;
    let catalog = aims_catalog::Catalog::from_texts(texts).map_err(|e| {
        fail(
            "catalog/",
            format!("the bundled catalog does not load: {e}"),
        )
    })?;
    let now = Timestamp::parse_utc(&manifest.checkpoint_time)
        .map_err(|e| fail(layout::MANIFEST, format!("checkpoint_time: {e}")))?;
    let mut listings = HashMap::new();
    for (path, data) in ctx.bundle.under(layout::LISTINGS_DIR) {
        let l = Listing::parse_canonical(data)
            .map_err(|e| fail(path, format!("not a canonical listing: {e}")))?;
        listings.insert(aims_model::ContentHash::of(data), l);
    }
    // The replay takes the parsed records (this is the last check that reads them): no copy,
    // and no re-encoding where the ledger check already showed the record id.
    let records = ctx
        .entries
        .iter()
        .filter(|e| e.parsed.as_ref().and_then(Parsed::record).is_some())
        .count();
    let confirmations = ctx
        .entries
        .iter()
        .any(|e| e.parsed.as_ref().and_then(Parsed::confirmation).is_some());
    let mut builder = aims_catalog::ReplayBuilder::with_capacity(records, confirmations);
    let mut replayed = 0usize;
    for e in &mut ctx.entries {
        let Some(p) = e.parsed.take() else {
            continue;
        };
        replayed += 1;
        let LedgerEntry {
            record,
            confirmation,
            received_at,
            ..
        } = *p.entry;
        if let Some(record) = record {
            let record_id = match p.replay_id {
                Some(id) => id,
                None => record.record_id().map_err(|err| {
                    let err = aims_catalog::ReplayError::Entry {
                        leaf: e.index,
                        reason: err.to_string(),
                    };
                    fail(layout::ENTRIES, err.to_string())
                })?,
            };
            builder.push_record(e.index, received_at, record, record_id);
        } else if let Some(c) = &confirmation {
            builder
                .push_confirmation(e.index, received_at, c, listings.get(&c.digest))
                .map_err(|err| fail(layout::ENTRIES, err.to_string()))?;
        }
    }
    let replay = builder.finish();
    // A period export states the status at the period's end (as the server knew it then) when
    // the period ends before the checkpoint; a period reaching the checkpoint states it as of the
    // checkpoint, from every bundled entry, like a full export (the server does the same). The
    // checkpoint's time has whole seconds, so entries it covers may carry a later receipt time
    // in the same second: filtering them by receipt would leave out what the bundle holds.
    let period_end = match &manifest.period {
        Some(p) => Some(
            Timestamp::parse_utc(&p.to)
                .map_err(|e| fail(layout::MANIFEST, format!("period.to: {e}")))?,
        ),
        None => None,
    };
    let assessed = match period_end {
        Some(end) if end < now => assess_all(
            &replay.as_of(end),
            &catalog,
            manifest.system.as_deref(),
            end,
        ),
        _ => assess_all(&replay, &catalog, manifest.system.as_deref(), now),
    };
    // Expected: (system, control) → (status, finding ids); not-applicable controls have no
    // OSCAL finding.
    let mut expected: BTreeMap<(String, String), (String, BTreeSet<String>)> = BTreeMap::new();
    for a in &assessed {
        for v in &a.controls {
            if v.status == aims_model::ControlStatus::NotApplicable {
                continue;
            }
            expected.insert(
                (a.system.clone(), v.control.clone()),
                (
                    v.status.as_str().to_owned(),
                    v.findings.iter().map(|f| f.id.clone()).collect(),
                ),
            );
        }
    }
    let doc = match ctx.oscal.take() {
        Some(doc) => doc,
        None => serde_json::from_slice(raw)
            .map_err(|e| fail(layout::OSCAL_AR, format!("not JSON: {e}")))?,
    };
    let mut actual: BTreeMap<(String, String), (String, BTreeSet<String>)> = BTreeMap::new();
    for (ri, result) in doc
        .pointer("/assessment-results/results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (fi, f) in result
            .get("findings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("results[{ri}].findings[{fi}]");
            let (mut sys, mut control, mut status) = (None, None, None);
            let mut ids = BTreeSet::new();
            for (n, v) in props(f) {
                match n {
                    "system" => sys = Some(v.to_owned()),
                    "control" => control = Some(v.to_owned()),
                    "status" => status = Some(v.to_owned()),
                    "finding-id" => {
                        ids.insert(v.to_owned());
                    }
                    _ => {}
                }
            }
            let (Some(sys), Some(control), Some(status)) = (sys, control, status) else {
                return Err(fail_at(
                    layout::OSCAL_AR,
                    &at,
                    "a finding without system, control and status props",
                ));
            };
            if actual
                .insert((sys.clone(), control.clone()), (status, ids))
                .is_some()
            {
                return Err(fail_at(
                    layout::OSCAL_AR,
                    &at,
                    format!("a second finding for system {sys:?} control {control}"),
                ));
            }
        }
    }
    let keys: BTreeSet<&(String, String)> = expected.keys().chain(actual.keys()).collect();
    for key @ (sys, control) in keys {
        let what = format!("system {sys:?} control {control}");
        match (expected.get(key), actual.get(key)) {
            (Some((es, eids)), Some((as_, aids))) => {
                if es != as_ {
                    return Err(fail(
                        layout::OSCAL_AR,
                        format!(
                            "{what}: the findings say {as_}, the assessment recomputed from the entries and the bundled catalog says {es}"
                        ),
                    ));
                }
                if eids != aids {
                    let missing: Vec<&String> = eids.difference(aids).collect();
                    let extra: Vec<&String> = aids.difference(eids).collect();
                    return Err(fail(
                        layout::OSCAL_AR,
                        format!(
                            "{what}: finding ids differ from the recomputed assessment (missing {missing:?}, unexpected {extra:?})"
                        ),
                    ));
                }
            }
            (Some((es, _)), None) => {
                return Err(fail(
                    layout::OSCAL_AR,
                    format!("{what}: no finding, but the recomputed assessment says {es}"),
                ));
            }
            (None, Some((as_, _))) => {
                return Err(fail(
                    layout::OSCAL_AR,
                    format!(
                        "{what}: a finding says {as_}, but the recomputed assessment has no such applicable control"
                    ),
                ));
            }
            (None, None) => {}
        }
    }
    let period = check_period_report(ctx, &catalog, &replay)?;
    // Freeing a large replay (every record) takes as long as a check: not on the way to the
    // report.
    if replayed >= 10_000 {
        drop_in_background(replay);
    }
    let systems = assessed.len();
    let findings: usize = assessed.iter().map(|a| a.findings.len()).sum();
    Ok(format!(
        "recomputed from {} entries with the bundled catalog as of {}: {} systems, {} control statuses and {findings} drift findings match the OSCAL findings{period}",
        replayed,
        manifest.checkpoint_time,
        systems,
        expected.len()
    ))
}

/// [`aims_catalog::Replay::assess`], one system per task on every core (systems are assessed
/// independently; the result is in the same system order).
fn assess_all(
    replay: &aims_catalog::Replay,
    catalog: &aims_catalog::Catalog,
    only: Option<&str>,
    now: Timestamp,
) -> Vec<aims_catalog::SystemAssessment> {
    let systems: Vec<(&String, &Vec<aims_catalog::Evidence>)> = replay
        .systems
        .iter()
        .filter(|(id, _)| only.is_none_or(|o| o == id.as_str()))
        .collect();
    par::map(&systems, 1, |(id, history)| {
        aims_catalog::assess::assess_with(catalog, id, history, now, &replay.observations)
    })
}

/// The audit-period report (`report/period.json`), recomputed from the entries and catalog over
/// the period the manifest names; the first difference is named (system, control, interval).
/// Returns a clause for the assessment step's detail.
pub(super) fn check_period_report(
    ctx: &Ctx<'_>,
    catalog: &aims_catalog::Catalog,
    replay: &aims_catalog::Replay,
) -> Step {
    let manifest = ctx.manifest()?;
    let Some(raw) = ctx.bundle.get(layout::PERIOD_REPORT) else {
        if manifest.period.is_some() {
            return Err(fail(
                layout::PERIOD_REPORT,
                "missing, though the manifest names a period",
            ));
        }
        return Ok(String::new());
    };
    let Some(period) = &manifest.period else {
        return Err(fail(
            layout::MANIFEST,
            "period is absent, though the bundle has a period report",
        ));
    };
    let time = |name: &str, v: &str| {
        Timestamp::parse_utc(v).map_err(|e| fail(layout::MANIFEST, format!("period.{name}: {e}")))
    };
    let (from, to) = (time("from", &period.from)?, time("to", &period.to)?);
    let ids: Vec<String> = match &manifest.system {
        Some(s) => vec![s.clone()],
        None => replay.systems.keys().cloned().collect(),
    };
    let recomputed = aims_catalog::history::period_report(catalog, replay, &ids, from, to);
    let shipped: aims_catalog::history::PeriodReport = serde_json::from_slice(raw)
        .map_err(|e| fail(layout::PERIOD_REPORT, format!("not a period report: {e}")))?;
    if shipped == recomputed {
        let controls: usize = recomputed.systems.iter().map(|s| s.controls.len()).sum();
        return Ok(format!(
            "; the period report {}..{} ({} systems, {controls} controls) matches its recomputation",
            recomputed.from,
            recomputed.to,
            recomputed.systems.len()
        ));
    }
    let diff = |what: String| Err(fail(layout::PERIOD_REPORT, what));
    if (shipped.from, shipped.to) != (recomputed.from, recomputed.to) {
        return diff(format!(
            "the period is {}..{} but the manifest names {}..{}",
            shipped.from, shipped.to, recomputed.from, recomputed.to
        ));
    }
    for (i, want) in recomputed.systems.iter().enumerate() {
        let Some(got) = shipped.systems.get(i).filter(|g| g.system == want.system) else {
            return diff(format!(
                "system {:?} is missing or out of place",
                want.system
            ));
        };
        for want_c in &want.controls {
            let Some(got_c) = got.controls.iter().find(|c| c.control == want_c.control) else {
                return diff(format!(
                    "system {:?} control {}: missing from the report",
                    want.system, want_c.control
                ));
            };
            if got_c == want_c {
                continue;
            }
            let gap = want_c
                .gaps
                .iter()
                .zip(&got_c.gaps)
                .find(|(a, b)| a != b)
                .map(|(a, _)| format!(", first at the interval from {} ({})", a.from, a.status))
                .unwrap_or_default();
            return diff(format!(
                "system {:?} control {}: the report says fresh ratio {} and worst status {} with {} gaps; recomputed: {}, {} with {} gaps{gap}",
                want.system,
                want_c.control,
                got_c.fresh_ratio,
                got_c.worst_status,
                got_c.gaps.len(),
                want_c.fresh_ratio,
                want_c.worst_status,
                want_c.gaps.len()
            ));
        }
    }
    diff("the report differs from its recomputation (extra systems or controls)".to_owned())
}
