//! Part of check 4: every confirmation's listing hashes to the digest its signed entry names.

use super::*;

/// Every confirmation entry's listing is in the bundle, canonical, and hashes to the digest the
/// signed entry names, with the count it names; every listing file belongs to some confirmation.
/// This is what lets an auditor show offline that artifact X was still listed with content Y at
/// the confirmation's time. Part of the ledger check; returns a clause for its detail.
pub(super) fn check_confirmations(ctx: &Ctx<'_>) -> Step {
    let mut wanted: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut n = 0u64;
    let mut artifacts = 0u64;
    for e in &ctx.entries {
        let Some(c) = e.parsed.as_ref().and_then(Parsed::confirmation) else {
            continue;
        };
        n += 1;
        let path = format!("{}{}.json", layout::LISTINGS_DIR, c.digest);
        let at = line_leaf(e.line, e.index);
        let data = ctx.bundle.get(&path).ok_or_else(|| {
            fail_at(
                layout::ENTRIES,
                &at,
                format!("the listing of this confirmation ({path}) is not in the bundle"),
            )
        })?;
        let listing = Listing::parse_canonical(data)
            .map_err(|err| fail(&path, format!("not a canonical listing: {err}")))?;
        if sha256_hex(data) != c.digest.as_str() {
            return Err(fail(
                &path,
                "content does not hash to the confirmation's digest",
            ));
        }
        if listing.artifacts.len() as u64 != c.count {
            return Err(fail(
                &path,
                format!(
                    "{} artifacts but the confirmation at {at} says {}",
                    listing.artifacts.len(),
                    c.count
                ),
            ));
        }
        artifacts += c.count;
        wanted.insert(path, (e.line, c.count));
    }
    let mut files = 0u64;
    for (path, _) in ctx.bundle.under(layout::LISTINGS_DIR) {
        if !wanted.contains_key(path) {
            return Err(fail(
                path,
                "no confirmation entry in the bundle names this listing",
            ));
        }
        files += 1;
    }
    let counts = &ctx.manifest()?.counts;
    if counts.confirmations != n || counts.listings != files {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "counts.confirmations/listings are {}/{} but the bundle has {n}/{files}",
                counts.confirmations, counts.listings
            ),
        ));
    }
    if n == 0 {
        return Ok(String::new());
    }
    Ok(format!(
        "; {n} confirmations ({artifacts} listed artifacts in {files} listing files) hash to the digests their signed entries name"
    ))
}
