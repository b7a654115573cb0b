//! Blob contents from long-lived `git cat-file --batch` processes instead of one `git` process
//! per file.
//!
//! A [`BlobPool`] keeps idle `cat-file --batch` processes. [`BlobPool::open`] takes one (or
//! starts one), writes the blob id, reads the `<id> blob <size>` header and hands out a
//! [`BlobReader`] that owns the process while the body is read: exactly `size` bytes, then the
//! trailing newline, after which the process goes back to the pool. Concurrent fetches each get
//! their own process (never waiting on a reader another task may still hold); the engine fetches
//! `FETCH_CONCURRENCY` (4) artifacts at a time, so a poll runs that many processes, and at most
//! [`MAX_IDLE`] stay around between polls.
//!
//! Keeping the request/answer stream in step:
//! - a reader dropped before the end records how many bytes the process still owes; the next
//!   user discards them first (up to [`MAX_DRAIN`]; a process owing more is killed instead, so an
//!   abandoned 2 GiB blob is never read through);
//! - a read error, a short body or a malformed header discards the process (killed on drop);
//! - a process that died while idle fails its next request, which is retried once on a fresh one.
//!
//! Memory is bounded by the 64 KiB read buffer per process, whatever the blob size.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::command::{Git, GitError};

/// Idle processes kept for reuse.
pub const MAX_IDLE: usize = 4;
/// Bytes an abandoned read may still owe for the process to be reused (drained) rather than
/// killed.
pub const MAX_DRAIN: u64 = 1024 * 1024;
/// Read buffer per process.
const BUFFER: usize = 64 * 1024;
/// Longest header line accepted (`<id> <type> <size>` or `<name> missing`).
const MAX_HEADER: u64 = 256;

/// One `git cat-file --batch` process.
#[derive(Debug)]
struct Batch {
    /// Kept so the process is killed when the batch is dropped (`kill_on_drop`).
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Bytes of an abandoned answer still to discard before the next request.
    owed: u64,
}

/// What `cat-file --batch` said about a requested object.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    Blob { size: u64 },
    Other { kind: String, size: u64 },
    Missing,
}

impl Batch {
    fn spawn(git: &Git) -> Result<Self, GitError> {
        let mut child = git.spawn_coprocess(&["cat-file", "--batch"])?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(GitError::Parse("git cat-file started without pipes".into()));
        };
        Ok(Self {
            _child: child,
            stdin,
            stdout: BufReader::with_capacity(BUFFER, stdout),
            owed: 0,
        })
    }

    /// Discards what an abandoned reader left unread.
    async fn drain(&mut self) -> std::io::Result<()> {
        if self.owed == 0 {
            return Ok(());
        }
        let want = self.owed;
        let got =
            tokio::io::copy(&mut (&mut self.stdout).take(want), &mut tokio::io::sink()).await?;
        if got != want {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.owed = 0;
        Ok(())
    }

    /// Sends one object id and reads the header of the answer.
    async fn request(&mut self, id: &str) -> std::io::Result<Header> {
        self.drain().await?;
        self.stdin.write_all(format!("{id}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let mut line = Vec::new();
        (&mut self.stdout)
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)
            .await?;
        if line.pop() != Some(b'\n') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "git cat-file --batch ended or sent an overlong header",
            ));
        }
        parse_header(&line).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "git cat-file --batch header {:?}",
                    String::from_utf8_lossy(&line)
                ),
            )
        })
    }
}

fn parse_header(line: &[u8]) -> Option<Header> {
    let line = std::str::from_utf8(line).ok()?;
    let mut f = line.split(' ');
    let _name = f.next()?;
    let kind = f.next()?;
    match (kind, f.next(), f.next()) {
        ("missing" | "ambiguous", None, None) => Some(Header::Missing),
        ("blob", Some(size), None) => Some(Header::Blob {
            size: size.parse().ok()?,
        }),
        (kind, Some(size), None) => Some(Header::Other {
            kind: kind.to_owned(),
            size: size.parse().ok()?,
        }),
        _ => None,
    }
}

/// Long-lived `cat-file --batch` processes of one repository, shared by every fetch.
#[derive(Debug)]
pub struct BlobPool {
    git: Git,
    timeout: Duration,
    idle: Mutex<Vec<Batch>>,
}

impl BlobPool {
    /// A pool running `git` as `git` is set up (repository, environment); `timeout` bounds the
    /// wait for each answer's header. No process starts until the first [`BlobPool::open`].
    pub fn new(git: Git, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            git,
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<Batch> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put(&self, batch: Batch) {
        if batch.owed > MAX_DRAIN {
            return; // cheaper to start a new process than to read that much for nothing
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(batch);
        }
    }

    /// Processes idle in the pool (for tests and diagnostics).
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Starts reading blob `id` (a full hex object id).
    pub async fn open(self: &Arc<Self>, id: &str) -> Result<BlobReader, GitError> {
        let mut reused = self.take_idle();
        loop {
            let fresh = reused.is_none();
            let mut batch = match reused.take() {
                Some(b) => b,
                None => Batch::spawn(&self.git)?,
            };
            let header = match tokio::time::timeout(self.timeout, batch.request(id)).await {
                Ok(Ok(h)) => h,
                // An idle process may have died since its last use: one more try on a new one.
                Ok(Err(_)) if !fresh => continue,
                Ok(Err(e)) => {
                    return Err(GitError::Io {
                        context: format!("reading blob {id} from git cat-file --batch"),
                        source: e,
                    });
                }
                Err(_) => {
                    return Err(GitError::Timeout {
                        args: format!("cat-file --batch ({id})"),
                        secs: self.timeout.as_secs(),
                    });
                }
            };
            return match header {
                Header::Blob { size } => Ok(BlobReader {
                    batch: Some(batch),
                    pool: Arc::clone(self),
                    remaining: size,
                }),
                Header::Missing => {
                    self.put(batch);
                    Err(GitError::ObjectMissing { id: id.to_owned() })
                }
                Header::Other { kind, size } => {
                    batch.owed = size + 1;
                    self.put(batch);
                    Err(GitError::Parse(format!(
                        "object {id} is a {kind}, not a blob"
                    )))
                }
            };
        }
    }
}

/// The body of one blob: exactly its size, then EOF. Dropping it early leaves the process in a
/// state the pool knows how to resume (or kills it).
#[derive(Debug)]
pub struct BlobReader {
    batch: Option<Batch>,
    pool: Arc<BlobPool>,
    /// Body bytes not yet handed out.
    remaining: u64,
}

impl BlobReader {
    /// Reads and checks the newline that ends every answer, then returns the process.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(batch) = self.batch.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let buf = match Pin::new(&mut batch.stdout).poll_fill_buf(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                self.batch = None;
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(buf)) => buf,
        };
        if buf.first() != Some(&b'\n') {
            self.batch = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "git cat-file --batch: answer not terminated by a newline",
            )));
        }
        Pin::new(&mut batch.stdout).consume(1);
        if let Some(b) = self.batch.take() {
            self.pool.put(b);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for BlobReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return this.poll_finish(cx);
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Some(batch) = this.batch.as_mut() else {
            return Poll::Ready(Err(std::io::Error::other("blob reader already failed")));
        };
        let buf = match Pin::new(&mut batch.stdout).poll_fill_buf(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.batch = None;
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(buf)) => buf,
        };
        if buf.is_empty() {
            this.batch = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "git cat-file --batch ended with {} bytes of the blob unread",
                    this.remaining
                ),
            )));
        }
        let n = buf
            .len()
            .min(out.remaining())
            .min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
        out.put_slice(&buf[..n]);
        Pin::new(&mut batch.stdout).consume(n);
        this.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        if let Some(mut batch) = self.batch.take() {
            // The rest of the body and its newline are still in the pipe.
            batch.owed = self.remaining + 1;
            self.pool.put(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers() {
        assert_eq!(
            parse_header(b"4b825dc642cb6eb9a060e54bf8d69288fbee4904 blob 12"),
            Some(Header::Blob { size: 12 })
        );
        assert_eq!(
            parse_header(b"4b825dc642cb6eb9a060e54bf8d69288fbee4904 missing"),
            Some(Header::Missing)
        );
        assert_eq!(
            parse_header(b"4b825dc642cb6eb9a060e54bf8d69288fbee4904 tree 0"),
            Some(Header::Other {
                kind: "tree".into(),
                size: 0
            })
        );
        assert_eq!(parse_header(b"x blob -1"), None);
        assert_eq!(parse_header(b""), None);
    }

    async fn read(pool: &Arc<BlobPool>, id: &str) -> Vec<u8> {
        let mut r = pool.open(id).await.unwrap();
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut out)
            .await
            .unwrap();
        out
    }

    /// A `cat-file --batch` process that died while idle is replaced on the next request.
    #[tokio::test]
    async fn a_dead_process_is_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .current_dir(dir.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("f"), b"hello\n").unwrap();
        let id = git(&["hash-object", "-w", "f"]);
        let pool = BlobPool::new(
            Git::at_work_tree(dir.path(), Duration::from_secs(30)),
            Duration::from_secs(30),
        );
        assert_eq!(read(&pool, &id).await, b"hello\n");
        assert_eq!(pool.idle_count(), 1, "the process went back to the pool");
        let mut batch = pool.take_idle().unwrap();
        batch._child.kill().await.unwrap();
        pool.put(batch);
        assert_eq!(read(&pool, &id).await, b"hello\n");
        assert_eq!(pool.idle_count(), 1);
        let missing = pool.open(&"0".repeat(40)).await.unwrap_err();
        assert!(
            matches!(missing, GitError::ObjectMissing { .. }),
            "{missing}"
        );
        assert_eq!(read(&pool, &id).await, b"hello\n");
    }
}
