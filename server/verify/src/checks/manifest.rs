//! Check 1: `MANIFEST.json` and `SHA256SUMS` agree with every file of the bundle.

use super::*;

pub(super) fn check_manifest(ctx: &mut Ctx<'_>) -> Step {
    let raw = ctx.file(layout::MANIFEST)?;
    let manifest: Manifest = serde_json::from_slice(raw)
        .map_err(|e| fail(layout::MANIFEST, format!("not a valid manifest: {e}")))?;
    if manifest.format != layout::FORMAT {
        return Err(fail(
            layout::MANIFEST,
            format!(
                "format {:?} is not {:?} (a newer aims-verify may read it)",
                manifest.format,
                layout::FORMAT
            ),
        ));
    }
    if (manifest.scope == Scope::Partial) != manifest.system.is_some() {
        return Err(fail(
            layout::MANIFEST,
            "scope and system disagree (a partial export names its system filter)",
        ));
    }
    let sums = utf8(layout::SHA256SUMS, ctx.file(layout::SHA256SUMS)?)?;
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for (i, line) in sums.lines().enumerate() {
        let at = format!("line {}", i + 1);
        let (hash, rest) = line
            .split_once(' ')
            .ok_or_else(|| fail_at(layout::SHA256SUMS, &at, "expected `<sha256>  <path>`"))?;
        let path = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(|| fail_at(layout::SHA256SUMS, &at, "expected `<sha256>  <path>`"))?;
        if !is_hex64(hash) {
            return Err(fail_at(
                layout::SHA256SUMS,
                &at,
                "hash is not 64 lowercase hex digits",
            ));
        }
        if path == layout::SHA256SUMS || !listed.insert(path) {
            return Err(fail_at(
                layout::SHA256SUMS,
                &at,
                format!("{path} listed twice or lists itself"),
            ));
        }
        let data = ctx
            .bundle
            .get(path)
            .ok_or_else(|| fail(path, "listed in SHA256SUMS but missing from the bundle"))?;
        if ctx.file_sha256(path, data) != hash {
            return Err(fail(path, "SHA-256 does not match SHA256SUMS"));
        }
    }
    for path in ctx.bundle.paths() {
        if path != layout::SHA256SUMS && !listed.contains(path) {
            return Err(fail(path, "in the bundle but not listed in SHA256SUMS"));
        }
    }
    let expected: BTreeSet<&str> = ctx
        .bundle
        .paths()
        .filter(|p| *p != layout::MANIFEST && *p != layout::SHA256SUMS)
        .collect();
    let in_manifest: BTreeSet<&str> = manifest.files.iter().map(String::as_str).collect();
    if in_manifest.len() != manifest.files.len() {
        return Err(fail(layout::MANIFEST, "files lists a path twice"));
    }
    if let Some(p) = expected.difference(&in_manifest).next() {
        return Err(fail(p, "in the bundle but not in MANIFEST.json files"));
    }
    if let Some(p) = in_manifest.difference(&expected).next() {
        return Err(fail(
            p,
            "in MANIFEST.json files but missing from the bundle",
        ));
    }
    let detail = format!(
        "{} files match SHA256SUMS and MANIFEST.json ({} export{})",
        listed.len(),
        manifest.scope.as_str(),
        manifest
            .system
            .as_deref()
            .map(|s| format!(" of system {s}"))
            .unwrap_or_default()
    );
    ctx.report.scope = Some(manifest.scope.as_str().to_owned());
    ctx.manifest = Some(manifest);
    Ok(detail)
}
