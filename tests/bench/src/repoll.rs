//! `repoll-git`: a local git repository of many small files, polled through the real git
//! collector and engine: the first poll, then a re-poll of the unchanged repository.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aims_catalog::Catalog;
use aims_collect::{Cursor, GitSource, PollContext, SystemRule, poll};
use aims_collect_git::GitCollector;
use aims_model::Timestamp;

use crate::Ctx;
use crate::report::Row;
use crate::util::{fmt_dur, group, have, secs, time_sh};

const SUITE: &str = "repoll-git";

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
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    for i in 0..files {
        let sys = format!("sys-{:02}", i % 20);
        let d = dir.join("systems").join(&sys).join("reports");
        if i < 20 {
            std::fs::create_dir_all(&d)?;
        }
        let body = report(i);
        std::fs::write(d.join(format!("report-{i:05}.json")), body)?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "reports"])?;
    Ok(())
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
    let catalog = Catalog::embedded()?;
    let rule = SystemRule::FromPath(
        aims_collect::system::PathPattern::parse("systems/{system}/**")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let pctx = PollContext {
        agent_id: "bench-agent",
        catalog: &catalog,
        system_rule: &rule,
        now: Timestamp::now(),
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    let (first, first_t, second, second_t) = ctx.rt.block_on(async {
        let t = Instant::now();
        let first = poll(&collector, &Cursor::default(), &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let first_t = t.elapsed();
        let t = Instant::now();
        let second = poll(&collector, &first.cursor, &pctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok::<_, anyhow::Error>((first, first_t, second, t.elapsed()))
    })?;
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
        "git ls-tree -r HEAD | awk '{print $3}' | git cat-file --batch > /dev/null",
    )?;
    let ref_second = time_sh(
        &repo,
        "git rev-parse HEAD > /dev/null && git ls-tree -r -l -z HEAD > /dev/null",
    )?;
    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "first poll of {} files (git collector + engine: ls-tree, then `cat-file blob` + `log -1` per file)",
                group(files as u64)
            ),
            format!(
                "{} ({} fetched, {} records)",
                fmt_dur(first_t),
                first.stats.fetched,
                first.records.len()
            ),
        )
        .reference(
            format!(
                "{} (`git ls-tree -r` piped to one `git cat-file --batch`: every blob read once)",
                fmt_dur(ref_first)
            ),
            Some(secs(ref_first) / secs(first_t)),
        ),
        Row::new(
            SUITE,
            "re-poll of the unchanged repository: time",
            format!("{} ({:.0}× faster than the first poll)", fmt_dur(second_t), secs(first_t) / secs(second_t)),
        )
        .reference(
            format!("{} (`git rev-parse HEAD` + `git ls-tree -r -l -z HEAD`)", fmt_dur(ref_second)),
            Some(secs(ref_second) / secs(second_t)),
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
