//! The durable spool: a directory of batch files waiting to be acknowledged by the server.
//!
//! Layout (under `spool_dir/spool/`):
//! - `<seq:020>-<source>.json`: one batch, `{"v":1,"records":[…]}`, at most `batch_size` records
//!   (and never more than [`MAX_BATCH_RECORDS`]). `seq` increases monotonically across restarts,
//!   so sorting the names gives the order in which batches were written.
//! - `.<name>.tmp-<pid>` (and `.tmp-…` from older versions): a batch being written. Leftovers of
//!   a crash are incomplete by definition and are removed when the spool is opened; their records
//!   were never acknowledged to the caller, so the cursor did not advance and the next poll
//!   produces them again.
//! - `rejected/<name>` + `rejected/<name>.reason`: batches aims-server refused with a typed
//!   error, or that could not be parsed. They are kept for an operator, never deleted by the
//!   agent; [`Spool::retry_rejected`] (`aims-agent spool retry`) moves them back to the pending
//!   spool.
//!
//! Files are written 0600 and the spool directories are 0700 (records name what a source holds).
//!
//! **Bound.** With a maximum ([`Spool::open_with_limit`], the config's `spool_max_bytes`), an
//! append that would take the pending batches past it writes nothing and fails with
//! [`SpoolError::Full`]: the oldest evidence is kept, the caller's cursor does not move, so the
//! refused records are produced again by a later poll once the server drained the spool.
//! [`Spool::is_full`] tells whether the last append was refused (the `aims_agent_spool_full`
//! gauge).
//!
//! Durability contract:
//! - [`Spool::append`] returns only after every batch file is written to a temp file, fsynced,
//!   renamed into place and the directory fsynced ([`aims_fsutil::write_atomic`]).
//!   Callers advance their cursor *after* it returns: a crash in between re-sends records (the
//!   server dedups by record id) and never loses them.
//! - [`Spool::ack`] deletes a batch; call it only after the server acknowledged every record.
//! - A file that cannot be parsed is moved to `rejected/` with an ERROR log, never deleted.
//!
//! All methods do blocking filesystem IO; async callers run them in `spawn_blocking`. A `Spool`
//! is cheap to clone and safe to share between threads (sequence numbers come from one mutex).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aims_fsutil as fsutil;

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
    /// The batches would take the spool past its maximum; nothing was written.
    #[error(
        "spool full: {pending} bytes pending + {needed} new would exceed spool_max_bytes ({max}); \
         nothing written, the records are collected again once the server drains the spool"
    )]
    Full {
        /// Bytes of the pending batch files.
        pending: u64,
        /// Bytes the refused batches would have taken.
        needed: u64,
        /// The maximum.
        max: u64,
    },
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
    /// Most bytes of pending batch files, if bounded.
    max_bytes: Option<u64>,
    /// Whether the last append was refused for lack of room (cleared by a successful append
    /// or an acknowledgement).
    full: AtomicBool,
    /// The next sequence number to hand out.
    next_seq: Mutex<u64>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` (normally `spool_dir/spool`), removes temp
    /// files left by a crash and continues the sequence after the highest existing file.
    /// `batch_size` is clamped to `1..=MAX_BATCH_RECORDS`. Unbounded; see
    /// [`Spool::open_with_limit`].
    pub fn open(dir: impl Into<PathBuf>, batch_size: usize) -> Result<Self, SpoolError> {
        Self::open_with_limit(dir, batch_size, None)
    }

    /// [`Spool::open`] with a maximum of `max_bytes` of pending batch files (see the module
    /// docs). The directories are created 0700 (and made 0700 if an older version created them
    /// otherwise).
    pub fn open_with_limit(
        dir: impl Into<PathBuf>,
        batch_size: usize,
        max_bytes: Option<u64>,
    ) -> Result<Self, SpoolError> {
        Self::open_inner(dir.into(), batch_size, max_bytes, true)
    }

    /// Opens an existing spool to inspect it or move rejected batches back (`aims-agent spool`),
    /// possibly while an agent is running on it: creates nothing and leaves temp files alone
    /// (they may be a running agent's writes in progress). Not for appending.
    pub fn open_existing(dir: impl Into<PathBuf>) -> Result<Self, SpoolError> {
        let dir = dir.into();
        for d in [dir.clone(), dir.join(REJECTED_DIR)] {
            if let Err(e) = fs::metadata(&d) {
                return Err(SpoolError::io(&d, e));
            }
        }
        Self::open_inner(dir, MAX_BATCH_RECORDS, None, false)
    }

    fn open_inner(
        dir: PathBuf,
        batch_size: usize,
        max_bytes: Option<u64>,
        owner: bool,
    ) -> Result<Self, SpoolError> {
        let rejected = dir.join(REJECTED_DIR);
        if !owner {
            return Ok(Self {
                inner: Arc::new(Inner {
                    dir,
                    rejected,
                    batch_size,
                    max_bytes,
                    full: AtomicBool::new(false),
                    next_seq: Mutex::new(u64::MAX),
                }),
            });
        }
        fsutil::create_private_dir_all(&rejected).map_err(|e| SpoolError::io(&rejected, e))?;
        for d in [&dir, &rejected] {
            fsutil::make_private_dir(d).map_err(|e| SpoolError::io(d, e))?;
        }
        let mut max_seq = 0u64;
        for d in [&dir, &rejected] {
            for entry in fs::read_dir(d).map_err(|e| SpoolError::io(d, e))? {
                let entry = entry.map_err(|e| SpoolError::io(d, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(TMP_PREFIX) || fsutil::is_temp_name(name) {
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
                max_bytes,
                full: AtomicBool::new(false),
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
    /// their paths in order. Nothing is written for an empty slice. With a maximum, either every
    /// batch fits and all are written, or none is ([`SpoolError::Full`]).
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
        let bodies = byte_bounded_chunks(records, self.inner.batch_size, MAX_BATCH_BYTES)
            .into_iter()
            .map(|chunk| {
                serde_json::to_vec(&BatchRef {
                    v: SPOOL_FORMAT_VERSION,
                    records: chunk,
                })
                .map(|body| (chunk.len(), body))
                .map_err(SpoolError::Encode)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(max) = self.inner.max_bytes {
            let needed: u64 = bodies.iter().map(|(_, b)| b.len() as u64).sum();
            let pending = self.pending_bytes()?;
            if pending.saturating_add(needed) > max {
                self.inner.full.store(true, Ordering::Relaxed);
                return Err(SpoolError::Full {
                    pending,
                    needed,
                    max,
                });
            }
        }
        for (count, body) in bodies {
            // Never replace an existing batch, even one placed by hand after `open`.
            let path = loop {
                let seq = self.next_seq();
                let path = self
                    .inner
                    .dir
                    .join(format!("{seq:0SEQ_DIGITS$}-{tag}.json"));
                if fs::symlink_metadata(&path).is_err() {
                    break path;
                }
            };
            fsutil::write_atomic(&path, &body).map_err(|e| SpoolError::io(&path, e))?;
            tracing::debug!(path = %path.display(), records = count, "spooled batch");
            paths.push(path);
        }
        self.inner.full.store(false, Ordering::Relaxed);
        Ok(paths)
    }

    /// Whether the last append was refused because the spool was full (and nothing was
    /// acknowledged since).
    pub fn is_full(&self) -> bool {
        self.inner.full.load(Ordering::Relaxed)
    }

    /// The maximum of pending bytes, if bounded.
    pub fn max_bytes(&self) -> Option<u64> {
        self.inner.max_bytes
    }

    /// Total size of the pending batch files.
    pub fn pending_bytes(&self) -> Result<u64, SpoolError> {
        let mut total = 0u64;
        for p in self.pending()? {
            match fs::metadata(&p) {
                Ok(md) => total = total.saturating_add(md.len()),
                // Acknowledged meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io(&p, e)),
            }
        }
        Ok(total)
    }

    /// Moves every rejected batch back to the pending spool (its `.reason` file is removed), so
    /// the next shipping pass offers it to the server again; returns the batches moved. Their
    /// names keep their sequence numbers, so they ship in the order they were first written.
    pub fn retry_rejected(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut moved = Vec::new();
        for p in self.rejected()? {
            let Some(name) = p.file_name() else { continue };
            let target = self.inner.dir.join(name);
            if fs::symlink_metadata(&target).is_ok() {
                tracing::warn!(path = %target.display(), "a pending batch has the rejected batch's name, left in rejected");
                continue;
            }
            fs::rename(&p, &target).map_err(|e| SpoolError::io(&p, e))?;
            let mut reason = p.clone().into_os_string();
            reason.push(".reason");
            match fs::remove_file(&reason) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io(Path::new(&reason), e)),
            }
            moved.push(target);
        }
        if !moved.is_empty() {
            sync_dir(&self.inner.dir)?;
            sync_dir(&self.inner.rejected)?;
        }
        Ok(moved)
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
        self.inner.full.store(false, Ordering::Relaxed);
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
        let reason_path = rej.join(format!("{name}.reason"));
        fsutil::write_atomic(&reason_path, &body).map_err(|e| SpoolError::io(&reason_path, e))?;
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

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    fsutil::sync_dir(dir).map_err(|e| SpoolError::io(dir, e))
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
