//! Check 5: every receipt, and consistency with `--previous`.

use super::*;

pub(super) fn parse_hash_lines(file: &str, text: &str) -> Result<Vec<Hash>, Failure> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            B64.decode(l)
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .filter(|h| B64.encode(h) == l)
                .ok_or_else(|| fail_at(file, format!("line {}", i + 1), "not a base64 hash"))
        })
        .collect()
}

pub(super) fn check_proofs(ctx: &mut Ctx<'_>) -> Step {
    let cp = ctx.checkpoint()?.clone();
    let log = ctx.log()?.clone();
    let scope = ctx.manifest()?.scope;
    let mut seen: HashMap<u64, String> = HashMap::new();
    for (path, data) in ctx.bundle.under(layout::PROOFS_DIR) {
        let stem = path[layout::PROOFS_DIR.len()..]
            .strip_suffix(layout::PROOF_SUFFIX)
            .filter(|s| is_hex64(s))
            .ok_or_else(|| fail(path, "expected proofs/<record_id>.tlog-proof"))?;
        let proof = TlogProof::parse(utf8(path, data)?)
            .map_err(|e| fail(path, format!("not a tlog-proof: {e}")))?;
        let at = format!("leaf {}", proof.index);
        if proof.checkpoint_note != ctx.note {
            return Err(fail_at(
                path,
                &at,
                "receipt is for another checkpoint than the bundle's",
            ));
        }
        let Some(i) = ctx.position(proof.index) else {
            return Err(fail_at(
                path,
                &at,
                "receipt for a leaf that is not in the bundle",
            ));
        };
        let entry = &ctx.entries[i];
        let at = format!(
            "leaf {} ({} line {})",
            entry.index,
            layout::ENTRIES,
            entry.line
        );
        if entry.parsed.as_ref().map(|p| p.record_id.as_str()) != Some(stem) {
            return Err(fail_at(
                path,
                &at,
                "the entry at this leaf holds another record",
            ));
        }
        // The receipt's checkpoint is the bundle's, already verified with the pinned keys, so
        // what remains of the tlog-proof steps is the leaf hash and the inclusion proof.
        merkle::verify_inclusion(&entry.leaf, proof.index, cp.size, &proof.hashes, &cp.root)
            .map_err(|e| {
                fail_at(
                    path,
                    &at,
                    format!("inclusion proof does not verify against the checkpoint: {e}"),
                )
            })?;
        if let Some(other) = seen.insert(proof.index, path.to_owned()) {
            return Err(fail_at(path, &at, format!("second receipt (also {other})")));
        }
    }
    // A full export proves every entry by the recomputed root; a partial one by its receipts.
    for e in ctx.entries.iter().filter(|_| scope == Scope::Partial) {
        if !seen.contains_key(&e.index) {
            return Err(fail_at(
                layout::PROOFS_DIR,
                format!("leaf {}", e.index),
                format!("no receipt for {} line {}", layout::ENTRIES, e.line),
            ));
        }
    }
    let manifest = ctx.manifest()?;
    if manifest.counts.proofs != u64::try_from(seen.len()).unwrap_or(u64::MAX) {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.proofs is {} but the bundle has {} receipts",
                manifest.counts.proofs,
                seen.len()
            ),
        ));
    }

    // Consistency proofs shipped in the bundle.
    let mut consistency: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for (path, data) in ctx.bundle.under(layout::CONSISTENCY_DIR) {
        let name = path[layout::CONSISTENCY_DIR.len()..]
            .strip_suffix(".txt")
            .and_then(|s| s.split_once('-'))
            .and_then(|(m, n)| Some((m.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .ok_or_else(|| fail(path, "expected consistency/<m>-<n>.txt"))?;
        let (m, n) = name;
        if n != cp.size || m == 0 || m > n {
            return Err(fail(
                path,
                format!(
                    "sizes {m} -> {n} do not end at the checkpoint size {}",
                    cp.size
                ),
            ));
        }
        let hashes = parse_hash_lines(path, utf8(path, data)?)?;
        // A full export can check the proof on its own: the old root is recomputed.
        if scope == Scope::Full {
            let leaves: Vec<Hash> = ctx.entries[..usize::try_from(m)
                .unwrap_or(usize::MAX)
                .min(ctx.entries.len())]
                .iter()
                .map(|e| e.leaf)
                .collect();
            let root_m = merkle::root_from_leaves(&leaves);
            merkle::verify_consistency(m, n, &hashes, &root_m, &cp.root)
                .map_err(|e| fail(path, format!("consistency proof does not verify: {e}")))?;
        }
        consistency.insert(m, hashes);
    }

    let mut detail = if seen.is_empty() && scope == Scope::Full {
        "no receipts needed: a full export is proven by its recomputed root".to_owned()
    } else {
        format!(
            "{} receipts verify against the checkpoint and match their entries",
            seen.len()
        )
    };
    if let Some(prev_note) = &ctx.opts.previous {
        let (prev, _) = verify_checkpoint(prev_note, &log, None).map_err(|e| {
            fail(
                "--previous",
                format!("not a checkpoint signed by the pinned log key: {e}"),
            )
        })?;
        let (m, n) = (prev.size, cp.size);
        if m > n {
            return Err(fail(
                "--previous",
                format!(
                    "the previous checkpoint (size {m}) is newer than the bundle's (size {n}): the bundle is stale or the log was rolled back"
                ),
            ));
        }
        if m == 0 {
            detail.push_str("; previous checkpoint is the empty tree");
        } else if m == n {
            if prev.root != cp.root {
                return Err(fail(
                    layout::CHECKPOINT,
                    format!(
                        "same size {n} as the previous checkpoint but a different root: the log forked"
                    ),
                ));
            }
            detail.push_str(&format!(
                "; same tree as the previous checkpoint (size {m})"
            ));
        } else if let Some(hashes) = consistency.get(&m) {
            let path = format!("{}{m}-{n}.txt", layout::CONSISTENCY_DIR);
            merkle::verify_consistency(m, n, hashes, &prev.root, &cp.root).map_err(|e| {
                fail(
                    &path,
                    format!(
                        "the bundle's log does not extend the previous checkpoint (size {m}): {e}"
                    ),
                )
            })?;
            detail.push_str(&format!(
                "; consistent with the previous checkpoint (size {m} -> {n}, {path})"
            ));
        } else if scope == Scope::Full {
            let leaves: Vec<Hash> = ctx.entries[..usize::try_from(m)
                .unwrap_or(usize::MAX)
                .min(ctx.entries.len())]
                .iter()
                .map(|e| e.leaf)
                .collect();
            if merkle::root_from_leaves(&leaves) != prev.root {
                return Err(fail(
                    layout::ENTRIES,
                    format!(
                        "the first {m} entries do not hash to the previous checkpoint's root: the log was rewritten"
                    ),
                ));
            }
            detail.push_str(&format!(
                "; the first {m} entries reproduce the previous checkpoint's root"
            ));
        } else {
            return Err(fail(
                layout::CONSISTENCY_DIR,
                format!("no consistency proof {m}-{n} for --previous; export again with since={m}"),
            ));
        }
    }
    Ok(detail)
}
