//! `repoll-git`: a local git repository of many small files, polled through the real git
//! collector and engine: the first poll, then a re-poll of the unchanged repository.
//! `repoll-dir`: the same files in a plain directory, polled through the `dir` source.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aims_catalog::Catalog;
use aims_collect::{Cursor, DirCollector, DirSource, GitSource, PollContext, SystemRule, poll};
use aims_collect_git::GitCollector;
use aims_model::Timestamp;

use crate::Ctx;
use crate::report::Row;
use crate::util::{fmt_dur, group, have, secs, time_sh};

const SUITE: &str = "repoll-git";
const DIR_SUITE: &str = "repoll-dir";
/// Issue 17: the first poll of a git source within this factor of the plumbing floor.
const GIT_FIRST_POLL_GOAL: f64 = 10.0;
/// Issue 17: the first poll of a `dir` source within this factor of `find | xargs sha256sum`.
const DIR_FIRST_POLL_GOAL: f64 = 3.0;
/// Issue 17: a re-poll of an unchanged repository.
const REPOLL_GOAL_SECS: f64 = 0.2;

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=aims bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("running git {args:?}"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `files` small JSON reports under `systems/sys-NN/reports/`, one commit.
/// The `i`-th small validation report of the generated sources.
pub(crate) fn report(i: usize) -> String {
    format!(
        "{{\"kind\":\"validation_report\",\"model\":{{\"name\":\"m{}\",\"version\":\"{}\"}},\
         \"evaluated_at\":\"2026-11-19T00:00:00Z\",\"metrics\":{{\"auc\":0.{:04}}}}}\n",
        i % 97,
        i / 97,
        i % 10_000
    )
}

/// The `git` source the git benchmarks poll: the local repository `repo`, systems from
/// `systems/{system}/**`.
pub(crate) fn local_git_source(repo: &Path) -> GitSource {
    GitSource {
        id: "repo".into(),
        url: None,
        path: Some(repo.to_path_buf()),
        branch: None,
        system: None,
        system_from_path: Some("systems/{system}/**".into()),
        interval_secs: 60,
        include: Vec::new(),
        exclude: Vec::new(),
    }
}

pub(crate) fn make_repo(dir: &Path, files: usize) -> Result<()> {
    write_reports(dir, files)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "reports"])?;
    Ok(())
}

/// `files` small JSON reports under `dir/systems/sys-NN/reports/`.
fn write_reports(dir: &Path, files: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..files {
        let sys = format!("sys-{:02}", i % 20);
        let d = dir.join("systems").join(&sys).join("reports");
        if i < 20 {
            std::fs::create_dir_all(&d)?;
        }
        let body = report(i);
        std::fs::write(d.join(format!("report-{i:05}.json")), body)?;
    }
    Ok(())
}

fn rule() -> Result<SystemRule> {
    Ok(SystemRule::FromPath(
        aims_collect::system::PathPattern::parse("systems/{system}/**")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

/// Polls `collector` from an empty cursor, then again with the first poll's cursor.
fn poll_twice(
    ctx: &Ctx,
    collector: &dyn aims_collect::Collector,
) -> Result<(
    aims_collect::PollOutcome,
    std::time::Duration,
    aims_collect::PollOutcome,
    std::time::Duration,
)> {
    let catalog = Catalog::embedded()?;
    let rule = rule()?;
    let pctx = PollContext {
        agent_id: "bench-agent",
        catalog: &catalog,
        system_rule: &rule,
        now: Timestamp::now(),
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    ctx.rt.block_on(async {
        let t = Instant::now();
        let first = poll(collector, &Cursor::default(), &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let first_t = t.elapsed();
        let t = Instant::now();
        let second = poll(collector, &first.cursor, &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((first, first_t, second, t.elapsed()))
    })
}

/// How many times slower than the reference, as text.
fn times(ours: std::time::Duration, reference: std::time::Duration) -> String {
    format!("{:.1}× the reference", secs(ours) / secs(reference))
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if !have("git") {
        bail!("git is not installed");
    }
    let files = ctx.scale.git_files;
    let repo = ctx.tmp.path().join("repo");
    let t = Instant::now();
    make_repo(&repo, files)?;
    eprintln!(
        "    repository of {files} files created in {}",
        fmt_dur(t.elapsed())
    );
    let cache = ctx.tmp.path().join("git-cache");
    std::fs::create_dir_all(&cache)?;
    let collector =
        GitCollector::new(&local_git_source(&repo), &cache).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (first, first_t, second, second_t) = poll_twice(ctx, &collector)?;
    if first.records.len() != files || !first.stats.errors.is_empty() {
        bail!(
            "first poll: {} records for {files} files, stats {:?}",
            first.records.len(),
            first.stats
        );
    }

    // References: the git plumbing floor of each poll.
    let ref_first = time_sh(
        &repo,
        "git ls-tree -r HEAD | awk '{print $3}' | git cat-file --batch | sha256sum > /dev/null",
    )?;
    let ref_second = time_sh(
        &repo,
        "git rev-parse HEAD > /dev/null && git ls-tree -r -l -z HEAD > /dev/null",
    )?;
    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "first poll of {} files (git collector + engine: one `ls-tree`, one `cat-file --batch`, one `log` pass)",
                group(files as u64)
            ),
            format!(
                "{} ({} fetched, {} records; {})",
                fmt_dur(first_t),
                first.stats.fetched,
                first.records.len(),
                times(first_t, ref_first)
            ),
        )
        .reference(
            format!(
                "{} (`git ls-tree -r` piped to one `git cat-file --batch` piped to `sha256sum`: every blob read and hashed once)",
                fmt_dur(ref_first)
            ),
            Some(secs(ref_first) / secs(first_t)),
        )
        .goal(
            format!("≤ {GIT_FIRST_POLL_GOAL}× the reference"),
            secs(first_t) <= GIT_FIRST_POLL_GOAL * secs(ref_first),
        ),
        Row::new(
            SUITE,
            "re-poll of the unchanged repository: time",
            format!("{} ({:.0}× faster than the first poll)", fmt_dur(second_t), secs(first_t) / secs(second_t)),
        )
        .reference(
            format!("{} (`git rev-parse HEAD` + `git ls-tree -r -l -z HEAD`)", fmt_dur(ref_second)),
            Some(secs(ref_second) / secs(second_t)),
        )
        .goal(
            format!("≤ {REPOLL_GOAL_SECS} s"),
            secs(second_t) <= REPOLL_GOAL_SECS,
        ),
        Row::new(
            SUITE,
            "re-poll of the unchanged repository: files fetched / records",
            format!(
                "{} fetched, {} records ({} unchanged)",
                second.stats.fetched,
                second.records.len(),
                second.stats.unchanged
            ),
        )
        .goal(
            "0 fetched",
            second.stats.fetched == 0 && second.records.is_empty(),
        ),
    ])
}

/// `repoll-dir`: `dir_files` small reports in a plain directory, polled through `DirCollector`
/// and the engine, beside `find -type f -print0 | xargs -0 sha256sum` over the same tree.
pub fn run_dir(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if !have("sha256sum") {
        bail!("sha256sum is not installed");
    }
    let files = ctx.scale.dir_files;
    let root = ctx.tmp.path().join("dir-source");
    let t = Instant::now();
    write_reports(&root, files)?;
    eprintln!(
        "    directory of {files} files created in {}",
        fmt_dur(t.elapsed())
    );
    let collector = DirCollector::new(&DirSource {
        id: "dir".into(),
        path: root.clone(),
        system: None,
        system_from_path: Some("systems/{system}/**".into()),
        interval_secs: 60,
        include: Vec::new(),
        exclude: Vec::new(),
        follow_symlinks: false,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The reference first and last, so both sides read from a warm page cache.
    let ref_before = time_sh(
        &root,
        "find . -type f -print0 | xargs -0 sha256sum > /dev/null",
    )?;
    let (first, first_t, second, second_t) = poll_twice(ctx, &collector)?;
    if first.records.len() != files || !first.stats.errors.is_empty() {
        bail!(
            "first poll: {} records for {files} files, stats {:?}",
            first.records.len(),
            first.stats
        );
    }
    let ref_after = time_sh(
        &root,
        "find . -type f -print0 | xargs -0 sha256sum > /dev/null",
    )?;
    let reference = ref_before.min(ref_after);
    Ok(vec![
        Row::new(
            DIR_SUITE,
            format!(
                "first poll of {} files (`dir` collector + engine: walk, read, SHA-256, parse, classify)",
                group(files as u64)
            ),
            format!(
                "{} ({} fetched, {} records; {})",
                fmt_dur(first_t),
                first.stats.fetched,
                first.records.len(),
                times(first_t, reference)
            ),
        )
        .reference(
            format!(
                "{} (`find -type f -print0 | xargs -0 sha256sum`, best of two)",
                fmt_dur(reference)
            ),
            Some(secs(reference) / secs(first_t)),
        )
        .goal(
            format!("≤ {DIR_FIRST_POLL_GOAL}× the reference"),
            secs(first_t) <= DIR_FIRST_POLL_GOAL * secs(reference),
        ),
        Row::new(
            DIR_SUITE,
            "re-poll of the unchanged directory: time / files fetched",
            format!(
                "{} ({} fetched, {} records)",
                fmt_dur(second_t),
                second.stats.fetched,
                second.records.len()
            ),
        )
        .goal("0 fetched", second.stats.fetched == 0),
    ])
}
