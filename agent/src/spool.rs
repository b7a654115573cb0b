//! The durable spool: a directory of batch files waiting to be acknowledged by the server.
//!
//! Layout (under `spool_dir/spool/`):
//! - `<seq:020>-<source>.json`: one batch, `{"v":1,"records":[…]}`, at most `batch_size` records
//!   (and never more than [`MAX_BATCH_RECORDS`]). `seq` increases monotonically across restarts,
//!   so sorting the names gives the order in which batches were written.
//! - `.tmp-…`: a batch being written. Leftovers of a crash are incomplete by definition and are
//!   removed when the spool is opened; their records were never acknowledged to the caller, so the
//!   cursor did not advance and the next poll produces them again.
//! - `rejected/<name>` + `rejected/<name>.reason`: batches the server refused (4xx) or that could
//!   not be parsed. They are kept for an operator, never deleted by the agent.
//!
//! Durability contract:
//! - [`Spool::append`] returns only after every batch file is written to a temp file, fsynced,
//!   renamed into place and the directory fsynced. Callers advance their cursor *after* it
//!   returns: a crash in between re-sends records (the server dedups by record id) and never
//!   loses them.
//! - [`Spool::ack`] deletes a batch; call it only after the server acknowledged every record.
//! - A file that cannot be parsed is moved to `rejected/` with an ERROR log, never deleted.
//!
//! All methods do blocking filesystem IO; async callers run them in `spawn_blocking`. A `Spool`
//! is cheap to clone and safe to share between threads (sequence numbers come from one mutex).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aims_model::EvidenceRecord;
use aims_model::wire::MAX_BATCH_RECORDS;
use serde::{Deserialize, Serialize};

/// The spool file format version this crate writes and reads.
pub const SPOOL_FORMAT_VERSION: u32 = 1;

/// Name of the rejected sub-directory.
pub const REJECTED_DIR: &str = "rejected";

const TMP_PREFIX: &str = ".tmp-";
const SEQ_DIGITS: usize = 20;

/// One spool file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolBatch {
    /// Format version, always [`SPOOL_FORMAT_VERSION`].
    pub v: u32,
    /// The records, in the order the poll produced them.
    pub records: Vec<EvidenceRecord>,
}

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A filesystem operation failed.
    #[error("spool io on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A spool file exists but is not a valid batch.
    #[error("corrupt spool file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Records could not be encoded.
    #[error("cannot encode spool batch: {0}")]
    Encode(#[source] serde_json::Error),
}

impl SpoolError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A directory of pending batch files. See the module docs for the contract.
#[derive(Clone, Debug)]
pub struct Spool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    rejected: PathBuf,
    batch_size: usize,
    /// The next sequence number to hand out.
    next_seq: Mutex<u64>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` (normally `spool_dir/spool`), removes temp
    /// files left by a crash and continues the sequence after the highest existing file.
    /// `batch_size` is clamped to `1..=MAX_BATCH_RECORDS`.
    pub fn open(dir: impl Into<PathBuf>, batch_size: usize) -> Result<Self, SpoolError> {
        let dir = dir.into();
        let rejected = dir.join(REJECTED_DIR);
        fs::create_dir_all(&rejected).map_err(|e| SpoolError::io(&rejected, e))?;
        let mut max_seq = 0u64;
        for d in [&dir, &rejected] {
            for entry in fs::read_dir(d).map_err(|e| SpoolError::io(d, e))? {
                let entry = entry.map_err(|e| SpoolError::io(d, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(TMP_PREFIX) {
                    let p = entry.path();
                    tracing::warn!(path = %p.display(), "removing incomplete spool temp file left by a crash");
                    fs::remove_file(&p).map_err(|e| SpoolError::io(&p, e))?;
                    continue;
                }
                if let Some(seq) = parse_seq(name) {
                    max_seq = max_seq.max(seq);
                }
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                rejected,
                batch_size: batch_size.clamp(1, MAX_BATCH_RECORDS),
                next_seq: Mutex::new(max_seq.saturating_add(1)),
            }),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The rejected directory.
    pub fn rejected_dir(&self) -> &Path {
        &self.inner.rejected
    }

    /// Writes `records` as one or more durable batch files (see the module docs) and returns
    /// their paths in order. Nothing is written for an empty slice.
    pub fn append(
        &self,
        source: &str,
        records: &[EvidenceRecord],
    ) -> Result<Vec<PathBuf>, SpoolError> {
        let mut paths = Vec::new();
        if records.is_empty() {
            return Ok(paths);
        }
        let tag = file_tag(source);
        for chunk in byte_bounded_chunks(records, self.inner.batch_size, MAX_BATCH_BYTES) {
            let body = serde_json::to_vec(&BatchRef {
                v: SPOOL_FORMAT_VERSION,
                records: chunk,
            })
            .map_err(SpoolError::Encode)?;
            // Never replace an existing batch, even one placed by hand after `open`.
            let (name, path) = loop {
                let seq = self.next_seq();
                let name = format!("{seq:0SEQ_DIGITS$}-{tag}.json");
                let path = self.inner.dir.join(&name);
                if fs::symlink_metadata(&path).is_err() {
                    break (name, path);
                }
            };
            write_atomic(&self.inner.dir, &name, &body)?;
            tracing::debug!(path = %path.display(), records = chunk.len(), "spooled batch");
            paths.push(path);
        }
        Ok(paths)
    }

    /// Pending batch files, oldest first.
    pub fn pending(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let d = &self.inner.dir;
        let mut out = Vec::new();
        for entry in fs::read_dir(d).map_err(|e| SpoolError::io(d, e))? {
            let entry = entry.map_err(|e| SpoolError::io(d, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if parse_seq(name).is_some() && name.ends_with(".json") {
                let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                if is_file {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads and parses one batch file. A file that is not a valid v1 batch gives
    /// [`SpoolError::Corrupt`]; the caller should [`Spool::quarantine`] it.
    pub fn read(&self, path: &Path) -> Result<SpoolBatch, SpoolError> {
        let bytes = fs::read(path).map_err(|e| SpoolError::io(path, e))?;
        let batch: SpoolBatch =
            serde_json::from_slice(&bytes).map_err(|e| SpoolError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if batch.v != SPOOL_FORMAT_VERSION {
            return Err(SpoolError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "unsupported spool format version {}, expected {SPOOL_FORMAT_VERSION}",
                    batch.v
                ),
            });
        }
        Ok(batch)
    }

    /// Reads a batch; a corrupt file is moved to `rejected/` with an ERROR log and `Ok(None)`
    /// is returned.
    pub fn read_or_quarantine(&self, path: &Path) -> Result<Option<SpoolBatch>, SpoolError> {
        match self.read(path) {
            Ok(b) => Ok(Some(b)),
            Err(SpoolError::Corrupt { reason, .. }) => {
                tracing::error!(path = %path.display(), reason = %reason, "corrupt spool file, moving it to rejected");
                self.reject(path, &format!("corrupt spool file: {reason}"))?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes an acknowledged batch and fsyncs the directory. A file that is already gone is
    /// not an error.
    pub fn ack(&self, path: &Path) -> Result<(), SpoolError> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "acknowledged spool file was already gone");
                return Ok(());
            }
            Err(e) => return Err(SpoolError::io(path, e)),
        }
        sync_dir(&self.inner.dir)
    }

    /// Moves a batch to `rejected/` next to a `.reason` file saying why. The reason file is
    /// written first: a crash in between leaves the batch pending (it is sent again), never lost.
    pub fn reject(&self, path: &Path, reason: &str) -> Result<PathBuf, SpoolError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| SpoolError::Corrupt {
                path: path.to_path_buf(),
                reason: "spool file has no usable name".into(),
            })?;
        let rej = &self.inner.rejected;
        let mut body = reason.as_bytes().to_vec();
        body.push(b'\n');
        write_atomic(rej, &format!("{name}.reason"), &body)?;
        let target = rej.join(&name);
        fs::rename(path, &target).map_err(|e| SpoolError::io(path, e))?;
        sync_dir(rej)?;
        sync_dir(&self.inner.dir)?;
        Ok(target)
    }

    /// Rejected batch files (not the `.reason` files), oldest first.
    pub fn rejected(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let d = &self.inner.rejected;
        let mut out = Vec::new();
        for entry in fs::read_dir(d).map_err(|e| SpoolError::io(d, e))? {
            let entry = entry.map_err(|e| SpoolError::io(d, e))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    fn next_seq(&self) -> u64 {
        // A poisoned lock only means another thread panicked while holding a plain counter.
        let mut g = match self.inner.next_seq.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let s = *g;
        *g = s.saturating_add(1);
        s
    }
}

/// Runs a blocking spool operation on tokio's blocking pool. The operation runs to completion
/// even if the awaiting task is cancelled, so a shutdown never leaves a half-done write behind.
pub async fn blocking<T, F>(spool: &Spool, f: F) -> Result<T, SpoolError>
where
    T: Send + 'static,
    F: FnOnce(&Spool) -> Result<T, SpoolError> + Send + 'static,
{
    let s = spool.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(r) => r,
        Err(e) => Err(SpoolError::io(spool.dir(), io::Error::other(e.to_string()))),
    }
}

#[derive(Serialize)]
struct BatchRef<'a> {
    v: u32,
    records: &'a [EvidenceRecord],
}

/// `<seq>-…` → seq, when the name starts with exactly [`SEQ_DIGITS`] digits and a dash.
fn parse_seq(name: &str) -> Option<u64> {
    let digits = name.get(..SEQ_DIGITS)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || name.as_bytes().get(SEQ_DIGITS) != Some(&b'-')
    {
        return None;
    }
    digits.parse().ok()
}

/// The source id made safe for a file name (ids may contain `/`, `:` and `@`).
fn file_tag(source: &str) -> String {
    let t: String = source
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "source".into() } else { t }
}

/// Writes `dir/name` atomically: temp file in the same directory, fsync, rename, fsync dir.
pub(crate) fn write_atomic(dir: &Path, name: &str, body: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let target = dir.join(name);
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(SpoolError::io(&target, e));
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SpoolError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Largest spooled batch in bytes: well under the server's default 4 MiB body limit, so a batch
/// of large records (metadata up to 32 KiB each) is never refused as too large.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Splits `records` into consecutive chunks of at most `max_count` records and (unless a single
/// record is larger) at most `max_bytes` of JSON.
fn byte_bounded_chunks(
    records: &[EvidenceRecord],
    max_count: usize,
    max_bytes: usize,
) -> Vec<&[EvidenceRecord]> {
    let max_count = max_count.max(1);
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, r) in records.iter().enumerate() {
        let size = serde_json::to_vec(r).map_or(0, |v| v.len()) + 1;
        if i > start && (i - start >= max_count || bytes + size > max_bytes) {
            out.push(&records[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_parsing() {
        assert_eq!(parse_seq("00000000000000000042-repo.json"), Some(42));
        assert_eq!(parse_seq(".tmp-00000000000000000042-repo.json"), None);
        assert_eq!(parse_seq("0000000000000000004-repo.json"), None);
    }

    #[test]
    fn tags_are_file_safe() {
        assert_eq!(file_tag("team/a:b@c"), "team_a_b_c");
        assert_eq!(file_tag(""), "source");
    }
}
