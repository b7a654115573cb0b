//! Check 7: OSCAL observations against the ledger, and the catalog's hash.

use super::*;

pub(super) fn check_catalog(ctx: &Ctx<'_>) -> Result<String, Failure> {
    let cat = &ctx.manifest()?.catalog;
    let mut buf = Vec::new();
    for path in &cat.files {
        let data = ctx.file(path)?;
        let name = path.rsplit('/').next().unwrap_or(path);
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data.len().to_string().as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data);
    }
    if sha256_hex(&buf) != cat.sha256 {
        return Err(fail(
            layout::MANIFEST,
            "catalog.sha256 does not match the catalog files in the bundle",
        ));
    }
    Ok(format!(
        "catalog {} {} hash matches",
        cat.framework, cat.version
    ))
}

pub(super) fn props(v: &Value) -> impl Iterator<Item = (&str, &str)> {
    v.get("props")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("value")?.as_str()?)))
}

pub(super) fn check_oscal(ctx: &mut Ctx<'_>) -> Step {
    let catalog = check_catalog(ctx)?;
    let Some(raw) = ctx.bundle.get(layout::OSCAL_AR) else {
        return Ok(skipped(format!("no {}; {catalog}", layout::OSCAL_AR)));
    };
    let doc = match ctx.prepared.oscal.take() {
        Some(parsed) => parsed.map_err(|e| fail(layout::OSCAL_AR, format!("not JSON: {e}")))?,
        None => serde_json::from_slice(raw)
            .map_err(|e| fail(layout::OSCAL_AR, format!("not JSON: {e}")))?,
    };
    let detail = check_observations(ctx, &doc, &catalog);
    // Kept for the assessment check (parsed once).
    ctx.oscal = Some(doc);
    detail
}

fn check_observations(ctx: &Ctx<'_>, doc: &Value, catalog: &str) -> Step {
    let ar = doc
        .get("assessment-results")
        .ok_or_else(|| fail(layout::OSCAL_AR, "no assessment-results object"))?;
    // Back-matter resources by uuid, for the hashes of the evidence they describe.
    let mut resources: HashMap<&str, &Value> = HashMap::new();
    for r in ar
        .pointer("/back-matter/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(u) = r.get("uuid").and_then(Value::as_str) {
            resources.insert(u, r);
        }
    }
    // The entries observations name, by record id (a bundle has far fewer observations than
    // entries: only those are put in the map).
    let results = || {
        ar.get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let mut wanted: HashSet<&str> = HashSet::new();
    for obs in results().flat_map(|r| {
        r.get("observations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }) {
        let evidence = obs
            .get("relevant-evidence")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (n, v) in props(obs).chain(evidence.flat_map(props)) {
            if n == "record-id" {
                wanted.insert(v);
            }
        }
    }
    let by_id: HashMap<&str, &Entry> = ctx
        .entries
        .iter()
        .filter(|_| !wanted.is_empty())
        .filter_map(|e| {
            let p = e.parsed.as_ref()?;
            p.record()?;
            let id = p.record_id.as_str();
            wanted.contains(id).then_some((id, e))
        })
        .collect();
    let mut observations = 0u64;
    let mut linked = 0u64;
    for (ri, result) in results().enumerate() {
        for (oi, obs) in result
            .get("observations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            observations += 1;
            let at = format!("results[{ri}].observations[{oi}]");
            let evidence: Vec<&Value> = obs
                .get("relevant-evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let mut all_props: Vec<(&str, &str)> = props(obs).collect();
            for ev in &evidence {
                all_props.extend(props(ev));
            }
            let mut record_ids: Vec<&str> = all_props
                .iter()
                .filter(|(n, _)| *n == "record-id")
                .map(|(_, v)| *v)
                .collect();
            record_ids.dedup();
            for rid in record_ids {
                let entry = by_id.get(rid).ok_or_else(|| {
                    fail_at(
                        layout::OSCAL_AR,
                        &at,
                        format!("record-id {rid} is not in the bundle's entries"),
                    )
                })?;
                let Some(record) = entry.parsed.as_ref().and_then(Parsed::record) else {
                    continue;
                };
                for (n, v) in &all_props {
                    let ok = match *n {
                        "ledger-index" => v.parse::<u64>().ok() == Some(entry.index),
                        "sha256" => *v == record.sha256.as_str(),
                        "locator" => *v == aims_model::text::oscal_string(&record.locator),
                        _ => true,
                    };
                    if !ok {
                        return Err(fail_at(
                            layout::OSCAL_AR,
                            &at,
                            format!(
                                "{n} {v:?} does not match record {rid} at leaf {}",
                                entry.index
                            ),
                        ));
                    }
                }
                // Hashes on the back-matter resource the evidence points to.
                for ev in &evidence {
                    let Some(uuid) = ev
                        .get("href")
                        .and_then(Value::as_str)
                        .and_then(|h| h.strip_prefix('#'))
                    else {
                        continue;
                    };
                    let Some(res) = resources.get(uuid) else {
                        return Err(fail_at(
                            layout::OSCAL_AR,
                            &at,
                            format!("relevant-evidence href #{uuid} names no back-matter resource"),
                        ));
                    };
                    for h in res
                        .get("rlinks")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|l| l.get("hashes").and_then(Value::as_array))
                        .flatten()
                    {
                        let alg = h.get("algorithm").and_then(Value::as_str).unwrap_or("");
                        let val = h.get("value").and_then(Value::as_str).unwrap_or("");
                        if alg.eq_ignore_ascii_case("SHA-256")
                            && !val.eq_ignore_ascii_case(record.sha256.as_str())
                        {
                            return Err(fail_at(
                                layout::OSCAL_AR,
                                &at,
                                format!(
                                    "back-matter resource {uuid} hash {val} does not match record {rid} sha256 {}",
                                    record.sha256
                                ),
                            ));
                        }
                    }
                }
                linked += 1;
            }
        }
    }
    let counted = ctx.manifest()?.counts.observations;
    if counted != observations {
        return Err(fail(
            layout::MANIFEST,
            format!("counts.observations is {counted} but the OSCAL results have {observations}"),
        ));
    }
    Ok(format!(
        "{observations} observations, {linked} record references match the ledger (record id, index, sha256); {catalog}"
    ))
}
