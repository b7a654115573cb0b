//! Check 4: the entries: canonical, unique ids, exact `prev` chains, and (full exports) the root
//! recomputed over every entry.

use super::*;

pub(super) fn proof_by_index(bundle: &Bundle) -> BTreeMap<u64, TlogProof> {
    let mut out = BTreeMap::new();
    for (_, data) in bundle.under(layout::PROOFS_DIR) {
        if let Ok(p) = std::str::from_utf8(data)
            .map_err(|_| ProofFileError::Malformed("utf-8"))
            .and_then(TlogProof::parse)
        {
            out.insert(p.index, p);
        }
    }
    out
}

/// The first exported entry whose leaf hash does not verify against its receipt: on a root
/// mismatch this names the line that was altered, removed or moved.
pub(super) fn first_bad_line(ctx: &Ctx<'_>, cp: &Checkpoint) -> Option<(usize, u64)> {
    let proofs = proof_by_index(ctx.bundle);
    if proofs.is_empty() {
        // A full export without receipts: the root says that something changed, not where.
        return None;
    }
    let n = u64::try_from(ctx.entries.len()).ok()?;
    for e in &ctx.entries {
        let ok = proofs.get(&e.index).is_some_and(|p| {
            merkle::verify_inclusion(
                &merkle::leaf_hash(e.bytes),
                e.index,
                cp.size,
                &p.hashes,
                &cp.root,
            )
            .is_ok()
        });
        if !ok {
            return Some((e.line, e.index));
        }
    }
    // Every line verifies: the file is a prefix of the log (entries missing at the end).
    (n < cp.size).then(|| (ctx.entries.len() + 1, n))
}

pub(super) fn check_ledger(ctx: &mut Ctx<'_>) -> Step {
    let cp = ctx.checkpoint()?.clone();
    let scope = ctx.manifest()?.scope;
    let bundle = ctx.bundle;
    let raw = bundle
        .get(layout::ENTRIES)
        .ok_or_else(|| fail(layout::ENTRIES, "missing from the bundle"))?;
    if !raw.is_empty() && !raw.ends_with(b"\n") {
        return Err(fail(
            layout::ENTRIES,
            "the last line does not end in a newline (truncated file?)",
        ));
    }
    let lines: Vec<&[u8]> = if raw.is_empty() {
        Vec::new()
    } else {
        raw[..raw.len() - 1].split(|b| *b == b'\n').collect()
    };
    let count = u64::try_from(lines.len()).unwrap_or(u64::MAX);
    let indices: Vec<u64> = match scope {
        Scope::Full => {
            if bundle.contains(layout::INDEX) {
                return Err(fail(layout::INDEX, "present in a full export"));
            }
            (0..count).collect()
        }
        Scope::Partial => {
            let text = utf8(layout::INDEX, ctx.file(layout::INDEX)?)?;
            let mut out = Vec::with_capacity(lines.len());
            for (i, l) in text.lines().enumerate() {
                let at = format!("line {}", i + 1);
                let idx: u64 = l
                    .parse()
                    .ok()
                    .filter(|_| !l.starts_with('+') && (l == "0" || !l.starts_with('0')))
                    .ok_or_else(|| fail_at(layout::INDEX, &at, "not a leaf index"))?;
                if idx >= cp.size {
                    return Err(fail_at(
                        layout::INDEX,
                        &at,
                        format!("leaf {idx} is beyond the checkpoint size {}", cp.size),
                    ));
                }
                if out.last().is_some_and(|p| *p >= idx) {
                    return Err(fail_at(
                        layout::INDEX,
                        &at,
                        "leaf indices must be strictly increasing",
                    ));
                }
                out.push(idx);
            }
            if out.len() != lines.len() {
                return Err(fail(
                    layout::INDEX,
                    format!(
                        "{} indices for {} entries in {}",
                        out.len(),
                        lines.len(),
                        layout::ENTRIES
                    ),
                ));
            }
            out
        }
    };
    ctx.entries = lines
        .iter()
        .zip(&indices)
        .enumerate()
        .map(|(i, (bytes, index))| Entry {
            index: *index,
            line: i + 1,
            bytes,
            parsed: None,
        })
        .collect();
    ctx.by_index = ctx
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.index, i))
        .collect();

    // Full export: the root over every stored line must be the signed root.
    if scope == Scope::Full {
        let leaves: Vec<Hash> = lines.iter().map(|l| merkle::leaf_hash(l)).collect();
        if count != cp.size || merkle::root_from_leaves(&leaves) != cp.root {
            let what = if count == cp.size {
                "leaf hash not in tree — root mismatch".to_owned()
            } else {
                format!(
                    "{count} entries but the checkpoint has {} — root mismatch",
                    cp.size
                )
            };
            return Err(match first_bad_line(ctx, &cp) {
                Some((line, leaf)) if leaf < count => {
                    fail_at(layout::ENTRIES, line_leaf(line, leaf), what)
                }
                Some((line, leaf)) => fail_at(
                    layout::ENTRIES,
                    line_leaf(line, leaf),
                    format!("{what} (entries missing from the end)"),
                ),
                None => fail(layout::ENTRIES, what),
            });
        }
    }

    // Every entry parses, is canonical, has a unique record id and a correct prev link.
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    for e in &mut ctx.entries {
        let at = line_leaf(e.line, e.index);
        let value: Value = serde_json::from_slice(e.bytes)
            .map_err(|err| fail_at(layout::ENTRIES, &at, format!("not JSON: {err}")))?;
        let canonical = serde_json_canonicalizer::to_vec(&value)
            .map_err(|err| fail_at(layout::ENTRIES, &at, format!("not canonical JSON: {err}")))?;
        if canonical != e.bytes {
            return Err(fail_at(
                layout::ENTRIES,
                &at,
                "entry is not in RFC 8785 canonical form",
            ));
        }
        let subject = value
            .get("record")
            .or_else(|| value.get("confirmation"))
            .ok_or_else(|| fail_at(layout::ENTRIES, &at, "entry has no record"))?;
        let record_id = serde_json_canonicalizer::to_vec(subject)
            .map(|b| sha256_hex(&b))
            .map_err(|err| fail_at(layout::ENTRIES, &at, err.to_string()))?;
        let entry = LedgerEntry::parse(e.bytes).map_err(|err| {
            fail_at(
                layout::ENTRIES,
                &at,
                format!("not an aims-evidence ledger entry: {err}"),
            )
        })?;
        if let Some(first) = ids.insert(record_id.clone(), e.index) {
            return Err(fail_at(
                layout::ENTRIES,
                &at,
                format!("record {record_id} already appears at leaf {first}"),
            ));
        }
        let key = entry
            .chain_key()
            .ok_or_else(|| fail_at(layout::ENTRIES, &at, "entry has no body"))?;
        let expected = last.get(&key).copied();
        if entry.prev != expected {
            let show = |p: Option<u64>| p.map_or("null".to_owned(), |p| format!("leaf {p}"));
            let reason = match (entry.prev, expected) {
                (Some(p), _) if p >= e.index => {
                    format!("prev {p} does not point to an earlier entry")
                }
                (Some(p), _) if scope == Scope::Partial && !ctx.by_index.contains_key(&p) => {
                    format!(
                        "prev leaf {p} (an earlier version of this artifact) is not in the bundle"
                    )
                }
                (got, want) => format!(
                    "prev is {} but the previous entry for source {:?} locator {:?} is {}",
                    show(got),
                    key.0,
                    key.1,
                    show(want)
                ),
            };
            return Err(fail_at(layout::ENTRIES, &at, reason));
        }
        last.insert(key, e.index);
        e.parsed = Some(Parsed {
            received_at: entry.received_at,
            record_id,
            record: entry.record,
            confirmation: entry.confirmation,
        });
    }
    let manifest = ctx.manifest()?;
    if manifest.counts.entries != count {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.entries is {} but {} has {count} lines",
                manifest.counts.entries,
                layout::ENTRIES
            ),
        ));
    }
    let confirmations = check_confirmations(ctx)?;
    Ok(match scope {
        Scope::Full => format!(
            "{count} entries = checkpoint size; root recomputed over every entry matches; record ids unique, prev links consistent{confirmations}"
        ),
        Scope::Partial => format!(
            "{count} of {} entries (partial: each is anchored by its receipt); record ids unique, prev chains complete{confirmations}",
            cp.size
        ),
    })
}
