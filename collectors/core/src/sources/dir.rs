//! The `dir` source: every regular file under a root directory.
//!
//! - Locator `file://<absolute path>`; `path` is relative to the root with `/` separators.
//! - Version token `"{size}-{mtime_ns}"`: any write changes it; a touch without a content change
//!   makes the engine re-hash the file and emit nothing.
//! - `artifact_time` is the file's modification time (a parsed date inside the file wins).
//! - Directory symlinks are never followed (no loops, no escaping the root). File symlinks are
//!   read through when their target resolves inside the root; one that resolves outside it is
//!   skipped with a debug log (issue 18: a link planted in the tree must not make the agent read
//!   and report `/etc/shadow`) unless the source sets `follow_symlinks: true`. Symlinks that do
//!   not resolve (dangling, looping) are skipped. `.git` is skipped, as are names that are not
//!   valid UTF-8 (logged).
//! - `fetch` checks again: without `follow_symlinks` it resolves the file and refuses one whose
//!   real path left the root since the listing (a file swapped for a link, a directory swapped
//!   for a link to elsewhere), and opens the resolved path.
//! - Any error reading a directory fails the whole listing: a partial listing would make the
//!   engine report everything under the unreadable folder as `gone`.
//!
//! The walk uses blocking std IO on the blocking pool. `fetch` resolves, opens and reads a file
//! of up to 256 KiB in one blocking call (one hop per file, no per-file 1 MiB buffer); larger
//! files are streamed with `tokio::fs` after that first read.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use aims_model::{SourceRef, SourceType, Timestamp};
use async_trait::async_trait;

use crate::collector::{ArtifactReader, ArtifactRef, CollectError, Collector};
use crate::config::{DirSource, PathFilter};

/// A collector over a local directory tree.
#[derive(Debug)]
pub struct DirCollector {
    source: SourceRef,
    root: PathBuf,
    filter: PathFilter,
    follow_symlinks: bool,
}

impl DirCollector {
    /// Builds the collector from validated configuration (no IO beyond reading the current
    /// directory to make a relative root absolute).
    pub fn new(cfg: &DirSource) -> Result<Self, CollectError> {
        let filter = PathFilter::new(&cfg.include, &cfg.exclude)
            .map_err(|(field, reason)| CollectError::permanent(format!("{field}: {reason}")))?;
        let root = std::path::absolute(&cfg.path)
            .map_err(|e| CollectError::io(format!("resolving {}", cfg.path.display()), e))?;
        Ok(Self {
            source: SourceRef {
                id: cfg.id.clone(),
                source_type: SourceType::Dir,
            },
            root,
            filter,
            follow_symlinks: cfg.follow_symlinks,
        })
    }

    /// The absolute root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn locator(&self, rel: &str) -> String {
        format!("file://{}", self.root.join(rel).display())
    }
}

/// Bytes read from disk per blocking call.
const READ_BUFFER: usize = 1024 * 1024;

#[async_trait]
impl Collector for DirCollector {
    fn source(&self) -> &SourceRef {
        &self.source
    }

    async fn check(&self) -> Result<(), CollectError> {
        let md = tokio::fs::metadata(&self.root)
            .await
            .map_err(|e| CollectError::io(format!("reading {}", self.root.display()), e))?;
        if md.is_dir() {
            Ok(())
        } else {
            Err(CollectError::permanent(format!(
                "{} is not a directory",
                self.root.display()
            )))
        }
    }

    async fn list(&self) -> Result<Vec<ArtifactRef>, CollectError> {
        let root = self.root.clone();
        let follow = self.follow_symlinks;
        let files = tokio::task::spawn_blocking(move || walk(&root, follow))
            .await
            .map_err(|e| CollectError::transient(format!("directory walk aborted: {e}")))??;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            if !self.filter.admits(&f.rel) {
                continue;
            }
            let mut a = ArtifactRef::new(
                f.rel.clone(),
                self.locator(&f.rel),
                format!("{}-{}", f.size, f.mtime_ns),
            );
            a.size = Some(f.size);
            a.artifact_time = f.mtime;
            out.push(a);
        }
        Ok(out)
    }

    async fn fetch(&self, artifact: &ArtifactRef) -> Result<ArtifactReader, CollectError> {
        if artifact.path.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(CollectError::permanent(format!(
                "refusing path outside the root: {}",
                artifact.path
            )));
        }
        let full = self.root.join(&artifact.path);
        let root = self.root.clone();
        let follow = self.follow_symlinks;
        // One hop to the blocking pool per file: resolve, open and read a small file whole
        // (most evidence files are); only a larger one is streamed through `tokio::fs`.
        let opened = tokio::task::spawn_blocking(move || open_small(&root, full, follow))
            .await
            .map_err(|e| CollectError::transient(format!("opening a file aborted: {e}")))??;
        Ok(match opened {
            Opened::Whole(bytes) => Box::new(std::io::Cursor::new(bytes)),
            Opened::Large { head, file } => Box::new(tokio::io::AsyncReadExt::chain(
                std::io::Cursor::new(head),
                // tokio's File hands every read to the blocking pool; reading 1 MiB per hop
                // instead of the engine's 64 KiB chunk keeps that overhead small next to the
                // hashing.
                tokio::io::BufReader::with_capacity(READ_BUFFER, tokio::fs::File::from_std(file)),
            )),
        })
    }
}

/// Files up to this size are read in the same blocking call that opens them.
const SMALL_FILE: usize = 256 * 1024;

/// A file opened for `fetch`.
enum Opened {
    /// The whole content (at most [`SMALL_FILE`] bytes).
    Whole(Vec<u8>),
    /// The first bytes read, and the file positioned after them.
    Large { head: Vec<u8>, file: std::fs::File },
}

/// Opens `full` (refusing, without `follow_symlinks`, a path whose real location is outside the
/// root) and reads up to [`SMALL_FILE`] + 1 bytes of it.
fn open_small(root: &Path, full: PathBuf, follow_symlinks: bool) -> Result<Opened, CollectError> {
    use std::io::Read as _;
    let full = if follow_symlinks {
        full
    } else {
        let real = std::fs::canonicalize(&full)
            .map_err(|e| CollectError::io(format!("resolving {}", full.display()), e))?;
        let root = std::fs::canonicalize(root)
            .map_err(|e| CollectError::io(format!("resolving {}", root.display()), e))?;
        if !real.starts_with(&root) {
            return Err(CollectError::permanent(format!(
                "{} resolves outside the source root (set follow_symlinks to read it)",
                full.display()
            )));
        }
        real
    };
    let mut file = std::fs::File::open(&full)
        .map_err(|e| CollectError::io(format!("opening {}", full.display()), e))?;
    let mut head = Vec::new();
    (&mut file)
        .take(SMALL_FILE as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|e| CollectError::io(format!("reading {}", full.display()), e))?;
    if head.len() <= SMALL_FILE {
        Ok(Opened::Whole(head))
    } else {
        Ok(Opened::Large { head, file })
    }
}

struct FileInfo {
    rel: String,
    size: u64,
    mtime_ns: u128,
    mtime: Option<Timestamp>,
}

/// Depth-first walk without following directory symlinks; sorted by relative path. File
/// symlinks resolving outside the root are skipped unless `follow_symlinks`.
fn walk(root: &Path, follow_symlinks: bool) -> Result<Vec<FileInfo>, CollectError> {
    let mut out = Vec::new();
    // The root as the kernel resolves it (it may itself be a symlink); resolved lazily, only
    // when a symlink is met.
    let mut real_root: Option<PathBuf> = None;
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| CollectError::io(format!("reading {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| CollectError::io(format!("reading {}", dir.display()), e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(dir = %dir.display(), "file name is not utf-8, skipped");
                continue;
            };
            if name == ".git" {
                continue;
            }
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let ft = match entry.file_type() {
                Ok(ft) => ft,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CollectError::io(format!("reading {}", path.display()), e)),
            };
            if ft.is_dir() {
                stack.push((path, rel));
                continue;
            }
            // Regular files, and symlinks that resolve to regular files.
            let md = match std::fs::metadata(&path) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(path = %rel, "dangling symlink or vanished file, skipped");
                    continue;
                }
                // A symlink that does not resolve (a loop such as `a -> a`, a target we may not
                // read) is not a regular file: skip it rather than fail the whole listing.
                Err(e) if ft.is_symlink() => {
                    tracing::warn!(path = %rel, error = %e, "symlink does not resolve, skipped");
                    continue;
                }
                Err(e) => return Err(CollectError::io(format!("reading {}", path.display()), e)),
            };
            if !md.is_file() {
                if ft.is_symlink() && md.is_dir() {
                    tracing::debug!(path = %rel, "directory symlink not followed");
                }
                continue;
            }
            if ft.is_symlink() && !follow_symlinks {
                let root_real = match &real_root {
                    Some(r) => r.clone(),
                    None => {
                        let r = std::fs::canonicalize(root).map_err(|e| {
                            CollectError::io(format!("resolving {}", root.display()), e)
                        })?;
                        real_root = Some(r.clone());
                        r
                    }
                };
                match std::fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(&root_real) => {}
                    Ok(target) => {
                        tracing::debug!(
                            path = %rel,
                            target = %target.display(),
                            "symlink resolves outside the source root, skipped (follow_symlinks is off)"
                        );
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(path = %rel, error = %e, "symlink does not resolve, skipped");
                        continue;
                    }
                }
            }
            let modified = md.modified().ok();
            let mtime_ns = modified
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let mtime = modified
                .map(|m| Timestamp::from_datetime(chrono::DateTime::<chrono::Utc>::from(m)));
            out.push(FileInfo {
                rel,
                size: md.len(),
                mtime_ns,
                mtime,
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(root: &Path) -> DirCollector {
        DirCollector::new(&DirSource {
            id: "d".into(),
            path: root.to_owned(),
            system: Some("s".into()),
            system_from_path: None,
            interval_secs: 60,
            include: vec![],
            exclude: vec!["**/*.tmp".into()],
            follow_symlinks: false,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn lists_files_skips_git_and_dir_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/HEAD"), b"ref").unwrap();
        std::fs::write(root.join("a/b/c.json"), b"{}").unwrap();
        std::fs::write(root.join("top.md"), b"# x").unwrap();
        std::fs::write(root.join("x.tmp"), b"tmp").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
            std::os::unix::fs::symlink(root.join("top.md"), root.join("link.md")).unwrap();
        }
        let c = collector(root);
        c.check().await.unwrap();
        let list = c.list().await.unwrap();
        let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(paths, ["a/b/c.json", "link.md", "top.md"]);
        let a = &list[0];
        assert!(a.locator.starts_with("file:///") && a.locator.ends_with("/a/b/c.json"));
        assert!(a.version.starts_with("2-"));
        assert_eq!(a.size, Some(2));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn looping_file_symlinks_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ok.md"), b"# ok").unwrap();
        std::os::unix::fs::symlink("self", root.join("self")).unwrap();
        std::os::unix::fs::symlink("y", root.join("x")).unwrap();
        std::os::unix::fs::symlink("x", root.join("y")).unwrap();
        let list = collector(root).list().await.unwrap();
        let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["ok.md"]);
    }

    /// Issue 18 (L, symlinks): a link planted in the tree pointing outside the root made the
    /// agent read and report the file it points to. Skipped by default, read with
    /// `follow_symlinks: true`; a file swapped for such a link after the listing is refused at
    /// fetch time.
    #[cfg(unix)]
    #[tokio::test]
    async fn issue_18_l_symlinks_outside_the_root_are_skipped() {
        use tokio::io::AsyncReadExt as _;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("ok.md"), b"# ok").unwrap();
        std::fs::write(root.join("sub/victim.md"), b"# victim").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("leak.txt"))
            .unwrap();
        // Inside the root, also through `..` components: still read.
        std::os::unix::fs::symlink("../ok.md", root.join("sub/inner.md")).unwrap();

        let c = collector(&root);
        let list = c.list().await.unwrap();
        let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["ok.md", "sub/inner.md", "sub/victim.md"]);

        // Swapped for an outside link between list and fetch: refused, not read.
        let victim = list.iter().find(|a| a.path == "sub/victim.md").unwrap();
        std::fs::remove_file(root.join("sub/victim.md")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            root.join("sub/victim.md"),
        )
        .unwrap();
        let err = match c.fetch(victim).await {
            Ok(_) => panic!("a link out of the root was opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("outside the source root"), "{err}");

        // Opt in: the outside file is listed and read.
        let open = DirCollector::new(&DirSource {
            id: "d".into(),
            path: root.clone(),
            system: Some("s".into()),
            system_from_path: None,
            interval_secs: 60,
            include: vec![],
            exclude: vec![],
            follow_symlinks: true,
        })
        .unwrap();
        let list = open.list().await.unwrap();
        let leak = list.iter().find(|a| a.path == "leak.txt").expect("listed");
        let mut body = Vec::new();
        open.fetch(leak)
            .await
            .unwrap()
            .read_to_end(&mut body)
            .await
            .unwrap();
        assert_eq!(body, b"outside");
    }

    #[tokio::test]
    async fn missing_root_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let c = collector(&dir.path().join("nope"));
        assert_eq!(
            c.list().await.unwrap_err().kind(),
            crate::CollectErrorKind::NotFound
        );
        assert!(c.check().await.is_err());
    }

    #[tokio::test]
    async fn compliance() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        std::fs::create_dir_all(root.join("systems/fraud")).unwrap();
        std::fs::write(
            root.join("systems/fraud/val.json"),
            br#"{"kind":"validation_report","model":{"name":"m","version":"1"}}"#,
        )
        .unwrap();
        std::fs::write(
            root.join("systems/fraud/card.md"),
            b"---\nbase_model: x\n---\n",
        )
        .unwrap();
        std::fs::write(root.join("systems/fraud/notes.txt"), b"hello").unwrap();
        let mut fixture = DirFixture { root: root.clone() };
        let cfg = DirSource {
            id: "reports".into(),
            path: root.clone(),
            system: None,
            system_from_path: Some("systems/{system}/**".into()),
            interval_secs: 60,
            include: vec![],
            exclude: vec![],
            follow_symlinks: false,
        };
        let rule = crate::SourceConfig::Dir(cfg.clone()).system_rule().unwrap();
        crate::testkit::assert_collector_compliance(
            move || Box::new(DirCollector::new(&cfg).unwrap()) as Box<dyn Collector>,
            &mut fixture,
            &rule,
        )
        .await;
    }

    struct DirFixture {
        root: PathBuf,
    }

    #[async_trait]
    impl crate::testkit::SourceFixture for DirFixture {
        async fn change_one(&mut self) -> String {
            let p = "systems/fraud/notes.txt";
            // Different size, so the version token changes even on coarse-mtime filesystems.
            std::fs::write(self.root.join(p), b"hello, changed").unwrap();
            p.into()
        }
        async fn remove_one(&mut self) -> String {
            let p = "systems/fraud/card.md";
            std::fs::remove_file(self.root.join(p)).unwrap();
            p.into()
        }
        async fn bytes(&self, path: &str) -> Option<Vec<u8>> {
            std::fs::read(self.root.join(path)).ok()
        }
    }
}
