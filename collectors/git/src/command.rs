//! Running the `git` CLI: one function for commands whose output fits in memory, one streaming
//! reader for blobs, and the error type that keeps git's own words (stderr, trimmed).
//!
//! Every invocation runs with a clean git environment (`GIT_DIR` and friends removed so the
//! agent's own environment cannot redirect it), `GIT_TERMINAL_PROMPT=0` (never wait for a
//! password), `LC_ALL=C` (stable messages to classify), stdin closed, and `kill_on_drop`, so a
//! cancelled poll or a timeout never leaves a git process behind.

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use aims_collect::{CollectError, CollectErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{ChildStdout, Command};

/// Environment variables that would make git operate on another repository.
const GIT_ENV_OVERRIDES: [&str; 8] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
];

/// Longest stderr excerpt kept in an error.
const MAX_STDERR: usize = 2000;

/// A git failure.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started (not installed, not on PATH).
    #[error("cannot run git: {source}")]
    Spawn {
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// git ran and failed.
    #[error("git {args} failed ({status}): {stderr}")]
    Command {
        /// The sub-command and its arguments (credentials redacted).
        args: String,
        /// Exit status.
        status: String,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// git did not finish in time (and was killed).
    #[error("git {args} timed out after {secs} s")]
    Timeout {
        /// The sub-command.
        args: String,
        /// The limit.
        secs: u64,
    },
    /// The configured branch (or HEAD) does not name a commit.
    #[error("branch {branch:?} not found in {repo}")]
    BranchNotFound {
        /// The branch as configured (`HEAD` when none).
        branch: String,
        /// The repository (credentials redacted).
        repo: String,
    },
    /// The repository has no object with this id.
    #[error("object {id} not found in the repository")]
    ObjectMissing {
        /// The object id asked for.
        id: String,
    },
    /// git printed something this crate does not understand.
    #[error("unexpected git output: {0}")]
    Parse(String),
    /// Local file system work around git failed (cache directory).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    /// Retry class, from git's stderr where that is all there is to go on.
    pub fn kind(&self) -> CollectErrorKind {
        match self {
            Self::Spawn { .. } | Self::Parse(_) => CollectErrorKind::Permanent,
            Self::Timeout { .. } | Self::Io { .. } => CollectErrorKind::Transient,
            Self::BranchNotFound { .. } | Self::ObjectMissing { .. } => CollectErrorKind::NotFound,
            Self::Command { stderr, .. } => classify_stderr(stderr),
        }
    }
}

impl From<GitError> for CollectError {
    fn from(e: GitError) -> Self {
        CollectError::source(e.kind(), e)
    }
}

fn classify_stderr(stderr: &str) -> CollectErrorKind {
    let s = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if any(&[
        "unknown revision",
        "bad revision",
        "not a valid object name",
        "does not exist",
        "repository not found",
        "couldn't find remote ref",
        "not a valid object",
    ]) {
        CollectErrorKind::NotFound
    } else if any(&[
        "not a git repository",
        "authentication failed",
        "permission denied",
        "could not read username",
        "dubious ownership",
    ]) {
        CollectErrorKind::Permanent
    } else {
        CollectErrorKind::Transient
    }
}

/// Removes `user:password@` from URLs so credentials never reach logs, errors or locators.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn trim_stderr(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let t = s.trim();
    let mut end = t.len().min(MAX_STDERR);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    t[..end].to_owned()
}

/// A prepared git invocation.
#[derive(Clone, Debug)]
pub struct Git {
    base: Vec<OsString>,
    timeout: Duration,
}

impl Git {
    /// git operating on the repository at `git_dir` (`--git-dir`, bare or `.git`).
    pub fn at_git_dir(git_dir: &Path, timeout: Duration) -> Self {
        Self {
            base: vec!["--git-dir".into(), git_dir.as_os_str().to_owned()],
            timeout,
        }
    }

    /// git operating on the working repository at `path` (`-C`).
    pub fn at_work_tree(path: &Path, timeout: Duration) -> Self {
        Self {
            base: vec!["-C".into(), path.as_os_str().to_owned()],
            timeout,
        }
    }

    /// git not tied to a repository (clone, ls-remote).
    pub fn global(timeout: Duration) -> Self {
        Self {
            base: Vec::new(),
            timeout,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        for k in GIT_ENV_OVERRIDES {
            cmd.env_remove(k);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .args(&self.base)
            .args(["-c", "core.quotePath=false"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `git <args>` to completion and returns stdout.
    pub async fn run(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let shown = redact_url(&args.join(" "));
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|source| GitError::Spawn { source })?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|source| GitError::Spawn { source })?,
            Err(_) => {
                return Err(GitError::Timeout {
                    args: shown,
                    secs: self.timeout.as_secs(),
                });
            }
        };
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(GitError::Command {
                args: shown,
                status: out.status.to_string(),
                stderr: trim_stderr(&out.stderr),
            })
        }
    }

    /// Starts a long-lived `git <args>` that reads requests on stdin and answers on stdout
    /// (`cat-file --batch`, `diff-tree --stdin`). stderr is discarded: the answers say what
    /// failed, and an unread stderr pipe could stall the process.
    pub fn spawn_coprocess(&self, args: &[&str]) -> Result<tokio::process::Child, GitError> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.spawn().map_err(|source| GitError::Spawn { source })
    }

    /// Runs `git <args>` and returns its stdout as a stream; a non-zero exit becomes an IO error
    /// at the end of the stream (never a silent short read).
    pub fn stream(&self, args: &[&str]) -> Result<StreamReader, GitError> {
        let shown = redact_url(&args.join(" "));
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn { source })?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(GitError::Parse("git started without pipes".into()));
        };
        let finish = async move {
            let mut err = Vec::new();
            // stderr of cat-file is tiny; read it to the end, then reap the child.
            let _ = stderr.read_to_end(&mut err).await;
            let status = child.wait().await?;
            if status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "git {shown} failed ({status}): {}",
                    trim_stderr(&err)
                )))
            }
        };
        Ok(StreamReader {
            stdout,
            finish: Some(Box::pin(finish)),
        })
    }
}

type Finish = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// A child's stdout that, at EOF, waits for the exit status and fails if git failed. Dropping
/// it kills the child.
pub struct StreamReader {
    stdout: ChildStdout,
    finish: Option<Finish>,
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if asked && buf.filled().len() == before => {
                // EOF on stdout: the stream is only complete if git exited successfully.
                let Some(fut) = self.finish.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                match fut.as_mut().poll(cx) {
                    Poll::Ready(r) => {
                        self.finish = None;
                        Poll::Ready(r)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("https://user:tok@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(redact_url("file:///tmp/x@y"), "file:///tmp/x@y");
    }

    #[test]
    fn classifies_stderr() {
        assert_eq!(
            classify_stderr("fatal: ambiguous argument 'nope': unknown revision"),
            CollectErrorKind::NotFound
        );
        assert_eq!(
            classify_stderr("fatal: not a git repository (or any of the parent directories)"),
            CollectErrorKind::Permanent
        );
        assert_eq!(
            classify_stderr("fatal: unable to access 'https://x/': Could not resolve host: x"),
            CollectErrorKind::Transient
        );
    }
}
