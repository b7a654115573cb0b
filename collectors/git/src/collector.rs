//! The `git` source: the committed tree of one branch, read with the `git` CLI.
//!
//! - **Local path**: a working repository (or a bare one); the committed tree at `branch` (or
//!   HEAD) is read, never the working directory, so uncommitted edits are not evidence.
//! - **Remote URL**: kept as a bare mirror under the cache directory given to
//!   [`GitCollector::new`] (`git clone --mirror` the first time, `git fetch --prune` afterwards).
//!   The clone goes to a temporary directory that is renamed into place, so an interrupted first
//!   clone is retried instead of leaving a broken mirror. `file://` URLs work (tests use them).
//!
//! `list` is `git ls-tree -r -l -z <commit>`: path, blob id (the version token) and size, for
//! regular files only (symlinks and submodules are skipped). `fetch` streams the blob from a
//! shared, long-lived `git cat-file --batch` ([`crate::batch`]); no process is started per file.
//! An unchanged repository therefore costs a `fetch --prune` (remote), a `rev-parse` and an
//! `ls-tree`, and no blob reads. For fetched files only, [`Collector::fetch_metadata`] adds the
//! committer time of the last commit touching the path (what
//! `git log -1 --format=%ct <commit> -- <path>` prints) as `artifact_time`, computed by
//! [`crate::history`] in one `git log` pass: on the first call after a listing, for every path
//! whose blob changed since the previous listing (all of them on the first poll); should another
//! path be asked, for all listed paths not answered yet.
//!
//! Locators are `git+<url or file://abs-path>#<path>` (stable across commits; credentials are
//! stripped from URLs); `extra` carries `commit` (the tree's commit id) and `branch`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aims_collect::collector::ArtifactReader;
use aims_collect::{ArtifactRef, CollectError, Collector, FetchMetadata, GitSource, PathFilter};
use aims_model::{SourceRef, SourceType, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::batch::BlobPool;
use crate::command::{Git, GitError, redact_url};
use crate::history;

/// Limit for commands that talk to a remote (clone, fetch, ls-remote).
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(600);
/// Limit for local commands (rev-parse, ls-tree, log).
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
enum Repo {
    /// A working (or bare) repository on this machine.
    Local { path: PathBuf },
    /// A remote mirrored into `mirror`.
    Mirror { url: String, mirror: PathBuf },
}

/// A collector over one branch of one git repository.
#[derive(Debug)]
pub struct GitCollector {
    source: SourceRef,
    repo: Repo,
    branch: Option<String>,
    filter: PathFilter,
    /// `git+<url-or-file://abs-path>`, credentials removed.
    locator_base: String,
    /// Serialises mirror updates when `list` is called concurrently.
    update_lock: tokio::sync::Mutex<()>,
    /// Long-lived `cat-file --batch` processes serving every `fetch`.
    blobs: Arc<BlobPool>,
    /// Last-commit times of the current listing, computed in batches on demand.
    times: tokio::sync::Mutex<CommitTimes>,
}

/// What `fetch_metadata` answers from: the listing's paths and the times computed so far.
#[derive(Debug, Default)]
struct CommitTimes {
    /// The commit of the latest listing.
    commit: String,
    /// Every listed path and its blob id.
    listed: HashMap<String, String>,
    /// Paths whose blob changed since the previous listing (all of them on the first): what the
    /// engine is about to fetch, so the first batch covers them and stops early.
    changed: Vec<String>,
    /// Whether `changed` has had its batch.
    changed_done: bool,
    /// Answers so far, for `commit`.
    times: HashMap<String, Option<i64>>,
}

impl GitCollector {
    /// Builds the collector from validated configuration; remote mirrors live under
    /// `cache_dir`. Does no IO (nothing is cloned until the first `list`).
    pub fn new(cfg: &GitSource, cache_dir: &Path) -> Result<Self, GitError> {
        let filter = PathFilter::new(&cfg.include, &cfg.exclude)
            .map_err(|(field, reason)| GitError::Parse(format!("{field}: {reason}")))?;
        let (repo, locator_base) = match (&cfg.url, &cfg.path) {
            (Some(url), _) => {
                let digest = hex::encode(Sha256::digest(url.as_bytes()));
                let name = format!("{}-{}.git", sanitize(&cfg.id), &digest[..16]);
                (
                    Repo::Mirror {
                        url: url.clone(),
                        mirror: cache_dir.join("git").join(name),
                    },
                    format!("git+{}", redact_url(url)),
                )
            }
            (None, Some(path)) => {
                let abs = std::path::absolute(path).map_err(|source| GitError::Io {
                    context: format!("resolving {}", path.display()),
                    source,
                })?;
                let base = format!("git+file://{}", abs.display());
                (Repo::Local { path: abs }, base)
            }
            (None, None) => {
                return Err(GitError::Parse("git source needs a url or a path".into()));
            }
        };
        Ok(Self {
            source: SourceRef {
                id: cfg.id.clone(),
                source_type: SourceType::Git,
            },
            branch: cfg.branch.clone(),
            filter,
            blobs: BlobPool::new(
                match &repo {
                    Repo::Local { path } => Git::at_work_tree(path, LOCAL_TIMEOUT),
                    Repo::Mirror { mirror, .. } => Git::at_git_dir(mirror, LOCAL_TIMEOUT),
                },
                LOCAL_TIMEOUT,
            ),
            times: tokio::sync::Mutex::new(CommitTimes::default()),
            locator_base,
            update_lock: tokio::sync::Mutex::new(()),
            repo,
        })
    }

    /// The repository as named in logs and errors (credentials removed).
    fn repo_name(&self) -> String {
        match &self.repo {
            Repo::Local { path } => path.display().to_string(),
            Repo::Mirror { url, .. } => redact_url(url),
        }
    }

    fn git(&self, timeout: Duration) -> Git {
        match &self.repo {
            Repo::Local { path } => Git::at_work_tree(path, timeout),
            Repo::Mirror { mirror, .. } => Git::at_git_dir(mirror, timeout),
        }
    }

    /// Clones the mirror the first time, fetches afterwards.
    async fn update_mirror(&self) -> Result<(), GitError> {
        let Repo::Mirror { url, mirror } = &self.repo else {
            return Ok(());
        };
        let _guard = self.update_lock.lock().await;
        let io = |context: String| move |source| GitError::Io { context, source };
        if tokio::fs::try_exists(mirror.join("HEAD"))
            .await
            .map_err(io(format!("reading {}", mirror.display())))?
        {
            tracing::debug!(repo = %redact_url(url), "fetching mirror");
            Git::at_git_dir(mirror, NETWORK_TIMEOUT)
                .run(&["fetch", "--prune", "--quiet", "origin"])
                .await?;
            return Ok(());
        }
        let parent = mirror.parent().unwrap_or(mirror);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io(format!("creating {}", parent.display())))?;
        let tmp = mirror.with_extension(format!("tmp-{}", std::process::id()));
        match tokio::fs::remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("removing {}", tmp.display()))(e)),
        }
        tracing::info!(repo = %redact_url(url), mirror = %mirror.display(), "cloning mirror");
        let tmp_str = tmp.to_string_lossy().into_owned();
        let cloned = Git::global(NETWORK_TIMEOUT)
            .run(&["clone", "--mirror", "--quiet", "--", url, &tmp_str])
            .await;
        if let Err(e) = cloned {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, mirror)
            .await
            .map_err(io(format!("renaming {} into place", tmp.display())))
    }

    /// The commit the branch (or HEAD) points to.
    async fn resolve_commit(&self) -> Result<String, GitError> {
        let rev = self.branch.as_deref().unwrap_or("HEAD");
        let spec = format!("{rev}^{{commit}}");
        let out = self
            .git(LOCAL_TIMEOUT)
            .run(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .await;
        match out {
            Ok(stdout) => {
                let id = String::from_utf8_lossy(&stdout).trim().to_owned();
                if is_object_id(&id) {
                    Ok(id)
                } else {
                    Err(GitError::Parse(format!("rev-parse printed {id:?}")))
                }
            }
            // `--verify --quiet` fails with status 1 and no message when the ref is unknown.
            Err(GitError::Command { stderr, .. }) if stderr.is_empty() => {
                Err(GitError::BranchNotFound {
                    branch: rev.to_owned(),
                    repo: self.repo_name(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The branch name recorded in metadata.
    async fn branch_name(&self) -> String {
        if let Some(b) = &self.branch {
            return b.clone();
        }
        match self
            .git(LOCAL_TIMEOUT)
            .run(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .await
        {
            Ok(out) => String::from_utf8_lossy(&out).trim().to_owned(),
            Err(_) => "HEAD".to_owned(),
        }
    }
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One `ls-tree -l -z` record: `<mode> SP <type> SP <object> SP+ <size> TAB <path>`.
#[derive(Debug, PartialEq, Eq)]
struct TreeEntry {
    mode: String,
    kind: String,
    id: String,
    size: Option<u64>,
    path: String,
}

fn parse_ls_tree(out: &[u8]) -> Result<Vec<TreeEntry>, GitError> {
    let mut entries = Vec::new();
    for rec in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || GitError::Parse(format!("ls-tree record {:?}", String::from_utf8_lossy(rec)));
        let tab = rec.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
        let (head, path) = (&rec[..tab], &rec[tab + 1..]);
        let head = std::str::from_utf8(head).map_err(|_| bad())?;
        let mut fields = head.split_ascii_whitespace();
        let (Some(mode), Some(kind), Some(id), Some(size)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let Ok(path) = std::str::from_utf8(path) else {
            tracing::warn!(path = %String::from_utf8_lossy(path), "path is not utf-8, skipped");
            continue;
        };
        entries.push(TreeEntry {
            mode: mode.to_owned(),
            kind: kind.to_owned(),
            id: id.to_owned(),
            size: size.parse().ok(),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

#[async_trait]
impl Collector for GitCollector {
    fn source(&self) -> &SourceRef {
        &self.source
    }

    async fn check(&self) -> Result<(), CollectError> {
        match &self.repo {
            Repo::Local { .. } => {
                self.resolve_commit().await?;
            }
            Repo::Mirror { url, .. } => {
                let pattern = match &self.branch {
                    Some(b) => format!("refs/heads/{b}"),
                    None => "HEAD".to_owned(),
                };
                let out = Git::global(NETWORK_TIMEOUT)
                    .run(&["ls-remote", "--", url, &pattern])
                    .await?;
                if out.iter().all(u8::is_ascii_whitespace) {
                    return Err(GitError::BranchNotFound {
                        branch: self.branch.clone().unwrap_or_else(|| "HEAD".into()),
                        repo: self.repo_name(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        self.update_mirror().await?;
        let commit = self.resolve_commit().await?;
        let branch = self.branch_name().await;
        let out = self
            .git(LOCAL_TIMEOUT)
            .run(&["ls-tree", "-r", "-l", "-z", "--full-tree", &commit])
            .await?;
        let mut list = Vec::new();
        for e in parse_ls_tree(&out)? {
            // Regular files only: no submodules (commit), no symlinks (120000).
            if e.kind != "blob" || e.mode == "120000" || !self.filter.admits(&e.path) {
                continue;
            }
            let mut a = ArtifactRef::new(
                e.path.clone(),
                format!("{}#{}", self.locator_base, e.path),
                e.id,
            );
            a.size = e.size;
            a.extra
                .insert("commit".into(), Value::String(commit.clone()));
            a.extra
                .insert("branch".into(), Value::String(branch.clone()));
            list.push(a);
        }
        tracing::debug!(repo = %self.repo_name(), commit = %commit, files = list.len(), "listed tree");
        self.times.lock().await.relist(&commit, &list);
        Ok(list)
    }

    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        if !is_object_id(&artifact.version) {
            return Err(CollectError::permanent(format!(
                "not a git object id: {:?}",
                artifact.version
            )));
        }
        let reader = self.blobs.open(&artifact.version).await?;
        Ok(Box::new(reader))
    }

    async fn fetch_metadata(&self, artifact: &ArtifactRef) -> Result<FetchMetadata, CollectError> {
        let Some(commit) = artifact.extra.get("commit").and_then(Value::as_str) else {
            return Ok(FetchMetadata::default());
        };
        if !is_object_id(commit) {
            return Ok(FetchMetadata::default());
        }
        let git = self.git(LOCAL_TIMEOUT);
        let mut times = self.times.lock().await;
        let secs = if commit == times.commit {
            let paths = times.batch_for(&artifact.path);
            if !paths.is_empty() {
                tracing::debug!(commit, paths = paths.len(), "reading last-commit times");
                let found =
                    history::last_commit_times(&git, commit, &paths, NETWORK_TIMEOUT).await?;
                times.times.extend(paths.into_iter().zip(found));
            }
            times.times.get(&artifact.path).copied().flatten()
        } else {
            // An artifact of an older listing: answered alone, not cached.
            drop(times);
            let one = [artifact.path.clone()];
            history::last_commit_times(&git, commit, &one, NETWORK_TIMEOUT)
                .await?
                .into_iter()
                .next()
                .flatten()
        };
        Ok(FetchMetadata {
            artifact_time: secs.and_then(Timestamp::from_unix_secs),
            extra: serde_json::Map::new(),
        })
    }
}

impl CommitTimes {
    /// A new listing: keeps the answers if the commit did not change, else notes which paths
    /// changed blob since the previous listing.
    fn relist(&mut self, commit: &str, list: &[ArtifactRef]) {
        if commit == self.commit {
            return;
        }
        let listed: HashMap<String, String> = list
            .iter()
            .map(|a| (a.path.clone(), a.version.clone()))
            .collect();
        self.changed = listed
            .iter()
            .filter(|(p, v)| self.listed.get(*p) != Some(*v))
            .map(|(p, _)| p.clone())
            .collect();
        self.changed.sort();
        self.listed = listed;
        self.commit = commit.to_owned();
        self.changed_done = false;
        self.times.clear();
    }

    /// The paths to compute so that `path` of the latest listing is answered (empty when it
    /// already is): the changed paths first, then every listed path not yet answered.
    fn batch_for(&mut self, path: &str) -> Vec<String> {
        if self.times.contains_key(path) {
            return Vec::new();
        }
        let mut batch = if self.changed_done {
            self.listed
                .keys()
                .filter(|p| !self.times.contains_key(*p))
                .cloned()
                .collect()
        } else {
            self.changed_done = true;
            std::mem::take(&mut self.changed)
        };
        if !batch.iter().any(|p| p == path) {
            batch.push(path.to_owned());
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ls_tree() {
        let out = b"100644 blob 4b825dc642cb6eb9a060e54bf8d69288fbee4904      12\tsystems/a b.md\0\
160000 commit 4b825dc642cb6eb9a060e54bf8d69288fbee4905       -\tsub\0\
120000 blob 4b825dc642cb6eb9a060e54bf8d69288fbee4906       5\tlink\0";
        let e = parse_ls_tree(out).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].path, "systems/a b.md");
        assert_eq!(e[0].size, Some(12));
        assert_eq!(e[1].size, None);
        assert!(parse_ls_tree(b"garbage\0").is_err());
    }

    #[test]
    fn object_ids() {
        assert!(is_object_id("4b825dc642cb6eb9a060e54bf8d69288fbee4904"));
        assert!(!is_object_id("--output=/etc/passwd"));
    }
}
