//! Builds the demo's git repository from `seeds/`, replacing the date placeholders so the demo
//! looks the same whatever day it runs: `@DAYS_AGO:N@` becomes the UTC instant N days ago at
//! 09:00, `@DATE_DAYS_AGO:N@` that date.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Duration, Utc};

use crate::git;

/// Replaces the placeholders in `text` relative to now.
pub fn render(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 1..];
        let parsed = ["DAYS_AGO:", "DATE_DAYS_AGO:"].iter().find_map(|p| {
            let body = tail.strip_prefix(p)?;
            let end = body.find('@')?;
            let n: i64 = body[..end].parse().ok()?;
            Some((*p, n, p.len() + end + 1))
        });
        match parsed {
            Some((p, n, used)) => {
                let day = (Utc::now() - Duration::days(n)).date_naive();
                if p == "DAYS_AGO:" {
                    out.push_str(&format!("{day}T09:00:00Z"));
                } else {
                    out.push_str(&day.to_string());
                }
                rest = &tail[used..];
            }
            None => {
                out.push('@');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

fn copy_rendered(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_rendered(&src, &dst)?;
        } else if entry.file_name() != "REMOVE" {
            let bytes = std::fs::read(&src)?;
            match String::from_utf8(bytes) {
                Ok(text) => std::fs::write(&dst, render(&text))?,
                Err(e) => std::fs::write(&dst, e.into_bytes())?,
            }
        }
    }
    Ok(())
}

/// The seeds folder of the workspace.
pub fn seeds_dir() -> PathBuf {
    crate::workspace_root().join("seeds")
}

/// Creates `repo` as a git repository holding `seeds/pipeline` (rendered) in one commit.
pub fn build_repo(repo: &Path) -> Result<()> {
    std::fs::create_dir_all(repo)?;
    git(repo, &["init", "-q", "-b", "main"])?;
    copy_rendered(&seeds_dir().join("pipeline"), repo)?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-q", "-m", "demo pipeline: first state"])?;
    Ok(())
}

/// Applies `seeds/changes` (overwrites, plus the paths listed in `REMOVE`) as a second commit.
pub fn apply_changes(repo: &Path) -> Result<()> {
    let changes = seeds_dir().join("changes");
    copy_rendered(&changes, repo)?;
    if let Ok(list) = std::fs::read_to_string(changes.join("REMOVE")) {
        for line in list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let p = repo.join(line);
            if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    git(repo, &["add", "-A"])?;
    git(
        repo,
        &[
            "commit",
            "-q",
            "-m",
            "demo pipeline: dataset card updated after approval",
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let s = render("a @DAYS_AGO:0@ b @DATE_DAYS_AGO:1@ c@x.com @DAYS_AGO:z@");
        assert!(!s.contains("DAYS_AGO:0"));
        assert!(s.contains("T09:00:00Z"));
        assert!(s.contains("c@x.com"));
        assert!(s.contains("@DAYS_AGO:z@"));
    }
}
