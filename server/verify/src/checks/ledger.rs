//! Check 4: the entries: canonical, unique ids, exact `prev` chains, and (full exports) the root
//! recomputed over every entry.
//!
//! The work per line that depends on nothing but the line (its leaf hash; parsing it; showing it
//! is canonical; its record id) was done for every line on every core ([`prepare`]); what relates
//! lines to each other (the root, unique ids, `prev` chains) runs here in ledger order over those
//! results, so the first failure named is the one a line-by-line loop would name.

use super::*;
use prepare::Line;

/// The chain `prev` follows (as [`LedgerEntry::chain_key`], borrowed).
fn chain_key(entry: &LedgerEntry) -> Option<(&str, &str)> {
    match (&entry.record, &entry.confirmation) {
        (Some(r), _) => Some((r.source.id.as_str(), r.locator.as_str())),
        (None, Some(c)) => Some((c.source.id.as_str(), "")),
        (None, None) => None,
    }
}

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
            merkle::verify_inclusion(&e.leaf, e.index, cp.size, &p.hashes, &cp.root).is_ok()
        });
        if !ok {
            return Some((e.line, e.index));
        }
    }
    // Every line verifies: the file is a prefix of the log (entries missing at the end).
    (n < cp.size).then(|| (ctx.entries.len() + 1, n))
}

/// Entries from which the id and chain checks run on two threads.
const PARALLEL_FROM: usize = 4096;

/// The first entry (in ledger order) that does not parse, repeats a record id or breaks its
/// `prev` chain, as a line-by-line loop would name it. The id and chain checks are independent
/// of each other, so they run side by side on two threads, each up to the first line that did
/// not parse; at a line where both fail, the repeated id is named (it was checked first).
fn first_entry_failure(ctx: &Ctx<'_>, checked: &[Line], scope: Scope) -> Option<Failure> {
    let entries = &ctx.entries;
    let at = |i: usize| line_leaf(entries[i].line, entries[i].index);
    let parsed = checked
        .iter()
        .position(|c| c.entry.is_err())
        .unwrap_or(checked.len());
    let ok = |i: usize| checked[i].entry.as_ref().ok();
    let repeated = || {
        let mut ids: HashMap<&str, u64> = HashMap::with_capacity(parsed);
        (0..parsed).find_map(|i| {
            let c = ok(i)?;
            let first = ids.insert(c.record_id.as_str(), entries[i].index)?;
            Some((
                i,
                fail_at(
                    layout::ENTRIES,
                    at(i),
                    format!("record {} already appears at leaf {first}", c.record_id),
                ),
            ))
        })
    };
    let broken = || {
        let mut last: HashMap<(&str, &str), u64> = HashMap::with_capacity(parsed);
        (0..parsed).find_map(|i| {
            let entry = &*ok(i)?.entry;
            let index = entries[i].index;
            let Some(key) = chain_key(entry) else {
                return Some((i, fail_at(layout::ENTRIES, at(i), "entry has no body")));
            };
            let expected = last.insert(key, index);
            if entry.prev == expected {
                return None;
            }
            let show = |p: Option<u64>| p.map_or("null".to_owned(), |p| format!("leaf {p}"));
            let reason = match (entry.prev, expected) {
                (Some(p), _) if p >= index => {
                    format!("prev {p} does not point to an earlier entry")
                }
                (Some(p), _) if scope == Scope::Partial && ctx.position(p).is_none() => {
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
            Some((i, fail_at(layout::ENTRIES, at(i), reason)))
        })
    };
    let (repeated, broken) = if parsed < PARALLEL_FROM {
        (repeated(), broken())
    } else {
        std::thread::scope(|s| {
            let other = s.spawn(repeated);
            let broken = broken();
            let repeated = match other.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (repeated, broken)
        })
    };
    let unparsed = checked.get(parsed).and_then(|c| {
        let reason = c.entry.as_ref().err()?;
        Some((
            parsed,
            fail_at(layout::ENTRIES, at(parsed), reason.as_str()),
        ))
    });
    // The earliest line; at one line, the id before the chain (the loop's order).
    [repeated, broken, unparsed]
        .into_iter()
        .flatten()
        .min_by_key(|(i, _)| *i)
        .map(|(_, f)| f)
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
    let (lines, checked) = match std::mem::take(&mut ctx.prepared.lines) {
        Some(prepared) => prepared,
        None => {
            let lines = prepare::split_lines(raw).unwrap_or_default();
            let checked = prepare::check_lines(&lines);
            (lines, checked)
        }
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
    ctx.entries = indices
        .iter()
        .zip(&checked)
        .enumerate()
        .map(|(i, (index, c))| Entry {
            index: *index,
            line: i + 1,
            leaf: c.leaf,
            parsed: None,
        })
        .collect();
    if scope == Scope::Partial {
        ctx.by_index = ctx
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.index, i))
            .collect();
    }

    // Full export: the root over every stored line must be the signed root.
    if scope == Scope::Full {
        let leaves: Vec<Hash> = ctx.entries.iter().map(|e| e.leaf).collect();
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
    if let Some(failure) = first_entry_failure(ctx, &checked, scope) {
        return Err(failure);
    }
    for (e, c) in ctx.entries.iter_mut().zip(checked) {
        let Ok(c) = c.entry else { continue };
        e.parsed = Some(Parsed {
            replay_id: c.typed_id.then(|| c.record_id.clone()),
            record_id: c.record_id,
            entry: c.entry,
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
