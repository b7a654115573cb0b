//! Check 6: bundled artifact bytes match their records.

use super::*;

pub(super) fn check_blobs(ctx: &mut Ctx<'_>) -> Step {
    let blobs: Vec<(&str, &[u8])> = ctx.bundle.under(layout::BLOBS_DIR).collect();
    // Sizes by content hash, only when there are blobs to look up (most bundles have none).
    let mut by_hash: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in ctx.entries.iter().filter(|_| !blobs.is_empty()) {
        if let Some(r) = e.parsed.as_ref().and_then(Parsed::record) {
            by_hash.entry(r.sha256.as_str()).or_default().push(r.size);
        }
    }
    let mut n = 0usize;
    for (path, data) in blobs {
        let name = &path[layout::BLOBS_DIR.len()..];
        if !is_hex64(name) {
            return Err(fail(path, "expected blobs/sha256/<64 hex digits>"));
        }
        if sha256_hex(data) != name {
            return Err(fail(path, "content does not hash to its name"));
        }
        let sizes = by_hash
            .get(name)
            .ok_or_else(|| fail(path, "no exported record has this SHA-256"))?;
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if !sizes.contains(&len) {
            return Err(fail(
                path,
                format!("{len} bytes but the record says {}", sizes[0]),
            ));
        }
        n += 1;
    }
    let counted = ctx.manifest()?.counts.blobs;
    if counted != u64::try_from(n).unwrap_or(u64::MAX) {
        return Err(fail(
            layout::MANIFEST,
            format!("counts.blobs is {counted} but the bundle has {n} blobs"),
        ));
    }
    if n == 0 {
        return Ok(skipped("the bundle carries no blobs"));
    }
    Ok(format!(
        "{n} blobs hash to their names and match their records' sha256 and size"
    ))
}
