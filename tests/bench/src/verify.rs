//! `verify`: export a full bundle of the `ledger-append` ledger (the export module, on an
//! `AppState` opened like `aims-server export` does) and check it with the aims-verify library.
//!
//! References (issue 17 goal 2), all in the same run:
//! - the export's time and size against `gzip -c log/entries.jsonl` (the entries themselves,
//!   gzipped: the least a bundle can be), and the peak RSS of the release `aims-server export`
//!   binary on the same ledger (when it is built);
//! - the verifier's time (`Bundle::read_tar_gz` + `verify`) against a plain SHA-256 pass over
//!   the bundle's bytes: `sha256sum` of every extracted file, one process, one core (the
//!   in-process `sha2` pass over the same bytes is shown beside it);
//! - and, as before, `sha256sum log/entries.jsonl` + the stdlib root recomputation
//!   `server/verify/scripts/merkle.py`.
//!
//! `AIMS_BENCH_KEEP=DIR` copies the bundle and its trust policy there (`bundle.tar.gz`,
//! `policy.txt`) to profile `aims-verify` on it afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use aims_ledger::policy::TrustPolicy;
use aims_server::Settings;
use aims_server::export::{self, ExportOptions};
use aims_verify::{Bundle, Options, Trust};

use crate::report::Row;
use crate::util::{best_of, cpu_times, fmt_dur, fmt_kib, fmt_rate, group, have, secs, time_sh};
use crate::{Ctx, ledger, rss};

const SUITE: &str = "verify";
/// Timed runs of the verifier and of the SHA-256 references; the best counts (the machine is
/// shared, the best run is the one least disturbed).
const RUNS: usize = 3;

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    ledger::ensure(ctx)?;
    let l = ctx.ledger.as_ref().context("ledger missing")?;
    let size = l.size;
    let url = l.url.clone();
    let settings = Settings {
        database: url.clone(),
        ..Settings::default()
    };
    let policy_text = l.keys.trust_policy();

    let (bundle_bytes, export_time) = ctx.rt.block_on(async {
        let state = export::open_state(&settings)
            .await
            .map_err(|e| anyhow::anyhow!("open_state: {e}"))?;
        let t = Instant::now();
        let (bytes, _) = export::export_bundle(&state, &ExportOptions::default(), Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("export: {e}"))?;
        Ok::<_, anyhow::Error>((bytes, t.elapsed()))
    })?;
    let dir = ctx.tmp.path().join("bundle");
    std::fs::create_dir_all(dir.join("x"))?;
    let bundle_path = dir.join("bundle.tar.gz");
    std::fs::write(&bundle_path, &bundle_bytes)?;
    if let Some(keep) = std::env::var_os("AIMS_BENCH_KEEP") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep)?;
        std::fs::write(keep.join("bundle.tar.gz"), &bundle_bytes)?;
        std::fs::write(keep.join("policy.txt"), &policy_text)?;
        eprintln!("    (bundle and policy kept in {})", keep.display());
    }
    let mib = |n: u64| n as f64 / 1048576.0;
    let gz_len = bundle_bytes.len() as u64;

    // Ours: read the archive (gunzip + untar in memory) and run every check; best of RUNS.
    let policy = TrustPolicy::parse(&policy_text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = Options {
        trust: Trust::Pinned(policy),
        previous: None,
    };
    let mut raw_len = 0u64;
    let mut files = 0usize;
    let mut checks = 0usize;
    let (ours, (read, ours_cpu)) = best_of(RUNS, || {
        let cpu = cpu_times()?.0;
        let t = Instant::now();
        let bundle = Bundle::read_tar_gz(&bundle_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let read = t.elapsed();
        let report = aims_verify::verify(&bundle, &opts);
        let ours = t.elapsed();
        let cpu = cpu_times()?.0.saturating_sub(cpu);
        if !report.verified {
            bail!("the bundle did not verify:\n{report}");
        }
        raw_len = bundle.files().values().map(|v| v.len() as u64).sum();
        files = bundle.files().len();
        checks = report
            .checks
            .iter()
            .filter(|c| c.status == aims_verify::Status::Pass)
            .count();
        Ok((ours, (read, cpu)))
    })?;
    // The same bytes hashed in-process, one pass on one core (what check 1 must do at least).
    let bundle = Bundle::read_tar_gz(&bundle_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (sha2_pass, _) = best_of(RUNS, || {
        let t = Instant::now();
        let mut acc = 0u8;
        for data in bundle.files().values() {
            acc ^= Sha256::digest(data)[0];
        }
        Ok((t.elapsed(), acc))
    })?;
    drop(bundle);

    // References on the extracted bundle (extraction reported, not counted).
    let extract = time_sh(&dir, "tar -xzf bundle.tar.gz -C x")?;
    let xdir = dir.join("x");
    for tool in ["sha256sum", "gzip", "python3"] {
        if !have(tool) {
            bail!("{tool} is not installed: no reference");
        }
    }
    let (sha_pass, sha_cpu) = best_of(RUNS, || {
        let cpu = cpu_times()?.1;
        let took = time_sh(
            &xdir,
            "find . -type f -print0 | xargs -0 sha256sum > /dev/null",
        )?;
        Ok((took, cpu_times()?.1.saturating_sub(cpu)))
    })?;
    let gzip = time_sh(&xdir, "gzip -c log/entries.jsonl > ../entries.jsonl.gz")?;
    let entries_len = std::fs::metadata(xdir.join("log/entries.jsonl"))?.len();
    let entries_gz_len = std::fs::metadata(dir.join("entries.jsonl.gz"))?.len();
    let sum = time_sh(&xdir, "sha256sum log/entries.jsonl > /dev/null")?;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../server/verify/scripts/merkle.py");
    let py = time_sh(
        &xdir,
        &format!("python3 '{}' . > /dev/null", script.display()),
    )?;
    let merkle_ref = sum + py;

    // The release `aims-server export` binary on the same ledger: wall time and peak RSS.
    let binary = export_binary(&dir, &url);

    let export_ratio = secs(gzip) / secs(export_time);
    let size_ratio = entries_gz_len as f64 / gz_len as f64;
    let verify_ratio = secs(sha_pass) / secs(ours);
    let mut rows = vec![
        Row::new(
            SUITE,
            format!(
                "export a full bundle of {} records (`export::export_bundle` on an `open_state` AppState)",
                group(size)
            ),
            fmt_dur(export_time),
        )
        .reference(
            format!(
                "{} (`gzip -c log/entries.jsonl`, {:.1} MiB of entries)",
                fmt_dur(gzip),
                mib(entries_len)
            ),
            Some(export_ratio),
        )
        .goal(
            "≤ 3× the time of gzip over the entries (issue 17)",
            export_ratio >= 1.0 / 3.0,
        ),
        Row::new(
            SUITE,
            format!(
                "size of that bundle ({files} files, {:.1} MiB uncompressed)",
                mib(raw_len)
            ),
            format!("{:.1} MiB tar.gz", mib(gz_len)),
        )
        .reference(
            format!("{:.1} MiB (the entries gzipped)", mib(entries_gz_len)),
            Some(size_ratio),
        )
        .goal(
            "≤ 1.5× the gzipped entries (issue 17)",
            size_ratio >= 1.0 / 1.5,
        ),
    ];
    rows.push(match binary {
        Ok((took, peak)) => Row::new(
            SUITE,
            "the same export by the release binary: `aims-server export` (wall time, peak RSS)",
            format!("{}, peak RSS {}", fmt_dur(took), fmt_kib(peak)),
        ),
        Err(e) => Row::new(
            SUITE,
            "the same export by the release binary: `aims-server export` (wall time, peak RSS)",
            format!("not measured: {e:#}"),
        ),
    });
    rows.push(
        Row::new(
            SUITE,
            format!(
                "aims-verify library: `Bundle::read_tar_gz` + `verify` ({checks} checks pass, {} entries, best of {RUNS})",
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
                "{} (a plain SHA-256 pass over the bundle's {:.1} MiB: `sha256sum` of every extracted file, best of {RUNS}; in-process `sha2`, one core: {}; `tar -xzf` {} not counted)",
                fmt_dur(sha_pass),
                mib(raw_len),
                fmt_dur(sha2_pass),
                fmt_dur(extract)
            ),
            Some(verify_ratio),
        )
        .goal(
            "≤ 3× a plain SHA-256 pass over the bundle's bytes (issue 17)",
            verify_ratio >= 1.0 / 3.0,
        ),
    );
    rows.push(
        Row::new(
            SUITE,
            "the same two, CPU time (all threads; less sensitive than wall time to other work on the machine)",
            format!("{} CPU", fmt_dur(ours_cpu)),
        )
        .reference(
            format!("{} CPU (`sha256sum` of every extracted file)", fmt_dur(sha_cpu)),
            (!ours_cpu.is_zero()).then(|| secs(sha_cpu) / secs(ours_cpu)),
        ),
    );
    rows.push(
        Row::new(
            SUITE,
            "aims-verify library (as above) against the stdlib root recomputation",
            fmt_dur(ours),
        )
        .reference(
            format!(
                "{} (`sha256sum log/entries.jsonl` {} + `python3 server/verify/scripts/merkle.py` {}: the root only)",
                fmt_dur(merkle_ref),
                fmt_dur(sum),
                fmt_dur(py),
            ),
            Some(secs(merkle_ref) / secs(ours)),
        ),
    );
    // An audit-period bundle (issue 13): the verifier recomputes `report/period.json` from the
    // bundled entries and catalog; the full bundle's verification above is the reference.
    let (period_bytes, period_export) = ctx.rt.block_on(async {
        let state = export::open_state(&settings)
            .await
            .map_err(|e| anyhow::anyhow!("open_state: {e}"))?;
        let now = aims_model::Timestamp::now();
        let from = now
            .checked_add_millis(-91 * 86_400_000)
            .context("period start out of range")?;
        let opts = ExportOptions {
            period: Some((from, now)),
            ..ExportOptions::default()
        };
        let t = Instant::now();
        let (bytes, _) = export::export_bundle(&state, &opts, Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("period export: {e}"))?;
        Ok::<_, anyhow::Error>((bytes, t.elapsed()))
    })?;
    let (period_verify, _) = best_of(RUNS, || {
        let t = Instant::now();
        let bundle = Bundle::read_tar_gz(&period_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !bundle.files().contains_key("report/period.json") {
            bail!("the period bundle has no report/period.json");
        }
        let report = aims_verify::verify(&bundle, &opts);
        if !report.verified {
            bail!("the period bundle did not verify:\n{report}");
        }
        Ok((t.elapsed(), ()))
    })?;
    rows.push(
        Row::new(
            SUITE,
            format!(
                "aims-verify of an audit-period bundle of {} entries (the last 91 days: the period report recomputed from the entries and catalog; export took {})",
                group(size),
                fmt_dur(period_export)
            ),
            fmt_dur(period_verify),
        )
        .reference(
            format!("{} (the full bundle's verification above)", fmt_dur(ours)),
            Some(secs(ours) / secs(period_verify)),
        )
        .goal("< 10 s (issue 13)", period_verify < Duration::from_secs(10)),
    );
    Ok(rows)
}

/// Runs the release `aims-server export` on the ledger under `/usr/bin/time -v`; returns its
/// wall time and peak RSS in KiB.
fn export_binary(dir: &Path, database: &str) -> Result<(Duration, u64)> {
    let server = rss::bin("aims-server")?;
    let out = dir.join("bundle-bin.tar.gz");
    let out_s = out.display().to_string();
    let t = Instant::now();
    let peak = rss::peak_rss(
        &server,
        &["export", "--database", database, "--out", &out_s],
        &dir.join("export-bin.log"),
    )?;
    Ok((t.elapsed(), peak))
}
