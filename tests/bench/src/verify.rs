//! `verify`: export a full bundle of the `ledger-append` ledger (the export module, on an
//! `AppState` opened like `aims-server export` does) and check it with the aims-verify library,
//! against `sha256sum` + the stdlib reference script `server/verify/scripts/merkle.py`.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use aims_ledger::policy::TrustPolicy;
use aims_server::Settings;
use aims_server::export::{self, ExportOptions};
use aims_verify::{Bundle, Options, Trust};

use crate::report::Row;
use crate::util::{fmt_dur, fmt_rate, group, have, secs, time_sh};
use crate::{Ctx, ledger};

const SUITE: &str = "verify";

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    ledger::ensure(ctx)?;
    let l = ctx.ledger.as_ref().context("ledger missing")?;
    let size = l.size;
    let settings = Settings {
        database: l.url.clone(),
        ..Settings::default()
    };
    let policy_text = l.keys.trust_policy();

    let (bundle_bytes, export_time) = ctx.rt.block_on(async {
        let state = export::open_state(&settings)
            .await
            .map_err(|e| anyhow::anyhow!("open_state: {e}"))?;
        let t = Instant::now();
        let (bytes, _) = export::export_bundle(&state, &ExportOptions::full(), Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("export: {e}"))?;
        Ok::<_, anyhow::Error>((bytes, t.elapsed()))
    })?;
    let dir = ctx.tmp.path().join("bundle");
    std::fs::create_dir_all(dir.join("x"))?;
    let bundle_path = dir.join("bundle.tar.gz");
    std::fs::write(&bundle_path, &bundle_bytes)?;
    let mib = bundle_bytes.len() as f64 / 1048576.0;

    // Ours: read the archive (gunzip + untar in memory) and run every check.
    let policy = TrustPolicy::parse(&policy_text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let bundle = Bundle::read_tar_gz(&bundle_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let read = t.elapsed();
    let report = aims_verify::verify(
        &bundle,
        &Options {
            trust: Trust::Pinned(policy),
            previous: None,
        },
    );
    let ours = t.elapsed();
    if !report.verified {
        bail!("the bundle did not verify:\n{report}");
    }
    drop(bundle);

    // Reference: extract (reported, not counted), then sha256sum + python3 verify/merkle.py.
    let extract = time_sh(&dir, "tar -xzf bundle.tar.gz -C x")?;
    if !have("python3") {
        bail!("python3 is not installed: no reference");
    }
    let xdir = dir.join("x");
    let sum = time_sh(&xdir, "sha256sum log/entries.jsonl > /dev/null")?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../server/verify/scripts/merkle.py");
    let py = time_sh(
        &xdir,
        &format!("python3 '{}' . > /dev/null", script.display()),
    )?;
    let reference = sum + py;

    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "export a full bundle of {} records (`export::export_bundle` on an `open_state` AppState)",
                group(size)
            ),
            format!("{} ({mib:.1} MiB tar.gz)", fmt_dur(export_time)),
        ),
        Row::new(
            SUITE,
            format!(
                "aims-verify library: `Bundle::read_tar_gz` + `verify` (all 7 checks, {} receipts)",
                group(size)
            ),
            format!(
                "{} = {} ({} read)",
                fmt_dur(ours),
                fmt_rate(size as f64 / secs(ours), "records"),
                fmt_dur(read)
            ),
        )
        .reference(
            format!(
                "{} = {} (`sha256sum log/entries.jsonl` {} + `python3 server/verify/scripts/merkle.py` {}; `tar -xzf` {} not counted)",
                fmt_dur(reference),
                fmt_rate(size as f64 / secs(reference), "records"),
                fmt_dur(sum),
                fmt_dur(py),
                fmt_dur(extract)
            ),
            Some(secs(reference) / secs(ours)),
        ),
    ])
}
