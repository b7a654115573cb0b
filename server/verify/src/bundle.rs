//! Reading a `bundle.tar.gz` into memory: regular files only, relative paths without `..`, no
//! duplicates, and bounded sizes so a hostile archive cannot exhaust memory.
//!
//! Decompressing is one core's work. While a large `log/entries.jsonl` is being decompressed, a
//! second thread hashes what has arrived (the file's SHA-256, and the leaf hash of each line
//! while it keeps up), so `verify` need not hash those bytes again ([`EntriesHashes`]). That is
//! work verification does anyway, moved to the core that would otherwise wait.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::layout;

/// Largest total of uncompressed file bytes accepted (4 GiB), whatever the archive's size.
pub const MAX_TOTAL_BYTES: u64 = 4 << 30;
/// Uncompressed bytes allowed per compressed byte. Real bundles expand about 5–15× (JSON lines,
/// receipts); a decompression bomb expands 1000×.
pub const MAX_EXPANSION: u64 = 100;
/// Below this the expansion ratio is not applied (tiny bundles compress very well).
pub const MIN_LIMIT_BYTES: u64 = 256 << 20;

/// The uncompressed size allowed for an archive of `compressed` bytes.
pub fn default_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MAX_EXPANSION)
        .clamp(MIN_LIMIT_BYTES, MAX_TOTAL_BYTES)
}
/// Most files accepted in one bundle.
pub const MAX_FILES: usize = 2_000_000;

/// Why a bundle could not be read at all (an IO or format problem, exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The archive is not a readable gzip-compressed tar.
    #[error("not a readable tar.gz archive: {0}")]
    Archive(#[source] std::io::Error),
    /// A member is not a regular file or directory (links, devices, …).
    #[error("archive member {0:?} is not a regular file")]
    NotAFile(String),
    /// A member path is absolute, climbs with `..` or is not UTF-8.
    #[error("archive member {0:?} has an unsafe or non-UTF-8 path")]
    BadPath(String),
    /// The same path appears twice.
    #[error("archive member {0:?} appears twice")]
    Duplicate(String),
    /// Too many files or bytes.
    #[error(
        "archive exceeds the limits ({MAX_FILES} files, {0} uncompressed bytes; raise with --max-uncompressed-bytes)"
    )]
    TooLarge(u64),
}

/// The files of a bundle by relative path (`log/entries.jsonl`, …), in path order.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
    /// Hashes of `log/entries.jsonl` computed while it was read (not part of the bundle's
    /// identity: equality compares the files).
    entries_hashes: Option<EntriesHashes>,
}

impl PartialEq for Bundle {
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files
    }
}

impl Eq for Bundle {}

/// Hashes of the entries file computed while the archive was decompressed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntriesHashes {
    /// SHA-256 of the whole file.
    pub(crate) file: [u8; 32],
    /// `merkle::leaf_hash` of the file's first lines, in order (all of them when the hashing
    /// thread kept up with decompression).
    pub(crate) leaves: Vec<[u8; 32]>,
}

/// Entries files from this size on are hashed while they are read (below, a thread costs more
/// than it saves).
const HASH_WHILE_READING: u64 = 1 << 20;
/// Bytes decompressed before they are handed to the hashing thread.
const PIECE: usize = 256 << 10;

/// Reads `len` bytes into a new buffer while a second thread hashes them: the SHA-256 of the
/// whole, and the leaf hash of every line of each piece that ends on a line boundary, for as
/// long as it keeps up with the reading (after that, the rest of the lines are left to
/// `verify`, which hashes them on every core).
fn read_hashing_lines(r: &mut impl Read, len: usize) -> std::io::Result<(Vec<u8>, EntriesHashes)> {
    let mut data = vec![0u8; len];
    let done = AtomicBool::new(false);
    let (buf, done_ref) = (data.as_mut_slice(), &done);
    let hashes = std::thread::scope(move |s| {
        let (tx, rx) = mpsc::channel::<(&[u8], bool)>();
        let hasher = s.spawn(move || {
            let mut file = Sha256::new();
            let mut leaves = Vec::new();
            // Leaves are hashed for a prefix of the lines only: once a piece is skipped, all are.
            let mut lines = true;
            for (piece, whole_lines) in rx {
                file.update(piece);
                lines = lines && whole_lines && !done_ref.load(Ordering::Relaxed);
                if let Some(body) = piece.strip_suffix(b"\n").filter(|_| lines) {
                    leaves.extend(
                        body.split(|b| *b == b'\n')
                            .map(aims_ledger::merkle::leaf_hash),
                    );
                }
            }
            EntriesHashes {
                file: file.finalize().into(),
                leaves,
            }
        });
        // `rest` is the part of the buffer not handed over; its first `filled` bytes are read.
        let mut rest: &mut [u8] = buf;
        let mut filled = 0;
        let read = loop {
            if filled == rest.len() {
                break Ok(());
            }
            let n = PIECE.min(rest.len() - filled);
            if let Err(e) = r.read_exact(&mut rest[filled..filled + n]) {
                break Err(e);
            }
            filled += n;
            if let Some(k) = rest[..filled].iter().rposition(|b| *b == b'\n') {
                let (piece, tail) = std::mem::take(&mut rest).split_at_mut(k + 1);
                // A send fails only if the hasher is gone (it panicked): joined below.
                let _ = tx.send((&*piece, true));
                rest = tail;
                filled -= k + 1;
            }
        };
        done_ref.store(true, Ordering::Relaxed);
        // The end of a file without a final newline: hashed, but no lines.
        let _ = tx.send((&*std::mem::take(&mut rest), false));
        drop(tx);
        let hashes = match hasher.join() {
            Ok(h) => h,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        read.map(|()| hashes)
    })?;
    Ok((data, hashes))
}

fn normalise(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

impl Bundle {
    /// A bundle from files already in memory (tests, extracted directories).
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        Self {
            files,
            entries_hashes: None,
        }
    }

    /// Reads a gzip-compressed tar archive, expanding it at most to [`default_limit`] bytes.
    pub fn read_tar_gz(bytes: &[u8]) -> Result<Self, BundleError> {
        Self::read_tar_gz_limited(bytes, default_limit(bytes.len() as u64))
    }

    /// Reads a gzip-compressed tar archive whose files total at most `limit` bytes: the limit is
    /// checked against each header before its data is read and against the bytes actually read,
    /// so a decompression bomb stops at the limit.
    pub fn read_tar_gz_limited(bytes: &[u8], limit: u64) -> Result<Self, BundleError> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut files = BTreeMap::new();
        let mut entries_hashes = None;
        let mut total: u64 = 0;
        for entry in archive.entries().map_err(BundleError::Archive)? {
            let mut entry = entry.map_err(BundleError::Archive)?;
            let raw_path = entry.path().map_err(BundleError::Archive)?.into_owned();
            let shown = raw_path.to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() {
                return Err(BundleError::NotAFile(shown));
            }
            let path = normalise(&raw_path).ok_or_else(|| BundleError::BadPath(shown.clone()))?;
            let size = entry.header().size().map_err(BundleError::Archive)?;
            total = total.saturating_add(size);
            if total > limit || files.len() >= MAX_FILES {
                return Err(BundleError::TooLarge(limit));
            }
            // The declared size is within the limit: read it into a buffer of that size (at
            // most MIN_LIMIT_BYTES up front, which any archive may expand to anyway), so a
            // large file is written once, not grown and copied; a larger one grows from there.
            let first = size.min(MIN_LIMIT_BYTES);
            let first_len = usize::try_from(first).unwrap_or(0);
            let mut data = if path == layout::ENTRIES && first == size && size >= HASH_WHILE_READING
            {
                let (data, hashes) =
                    read_hashing_lines(&mut entry, first_len).map_err(BundleError::Archive)?;
                entries_hashes = Some(hashes);
                data
            } else {
                let mut data = vec![0u8; first_len];
                entry.read_exact(&mut data).map_err(BundleError::Archive)?;
                data
            };
            if size > first {
                entry
                    .by_ref()
                    .take(size - first)
                    .read_to_end(&mut data)
                    .map_err(BundleError::Archive)?;
            }
            if files.insert(path, data).is_some() {
                return Err(BundleError::Duplicate(shown));
            }
        }
        Ok(Self {
            files,
            entries_hashes,
        })
    }

    /// Hashes of `log/entries.jsonl` made while it was read, if any.
    pub(crate) fn entries_hashes(&self) -> Option<&EntriesHashes> {
        self.entries_hashes.as_ref()
    }

    /// One file's bytes.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Whether the bundle has this file.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// All paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The files under a directory prefix such as `proofs/`, sorted by path.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.files
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// All files.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    /// A large entries file is hashed while it is read: the file's SHA-256, and the leaf hashes
    /// of (a prefix of) its lines, exactly as hashing the bytes afterwards gives them; other
    /// files and small entries files are not.
    #[test]
    fn entries_are_hashed_while_read() {
        let line = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300));
        let many: String = (0..20_000).map(line).collect();
        let one_long = format!("{}\n", "y".repeat(5 * PIECE + 17));
        for text in [
            many.clone(),
            format!("{many}no newline at the end"),
            one_long,
            format!("{many}{}", "z".repeat(PIECE)),
        ] {
            let data = text.into_bytes();
            let b = Bundle::read_tar_gz(&tar_gz(&[
                ("README.md", b"hello".to_vec()),
                (layout::ENTRIES, data.clone()),
            ]))
            .unwrap();
            assert_eq!(b.get(layout::ENTRIES), Some(data.as_slice()));
            let h = b.entries_hashes().unwrap();
            assert_eq!(h.file, <[u8; 32]>::from(Sha256::digest(&data)));
            // The complete lines (a file without a final newline has a partial last one).
            let end = data.iter().rposition(|b| *b == b'\n').unwrap();
            let all: Vec<[u8; 32]> = data[..end]
                .split(|b| *b == b'\n')
                .map(aims_ledger::merkle::leaf_hash)
                .collect();
            assert!(h.leaves.len() <= all.len() && h.leaves[..] == all[..h.leaves.len()]);
            assert_eq!(b, Bundle::from_files(b.files().clone()));
        }
        let small = Bundle::read_tar_gz(&tar_gz(&[(layout::ENTRIES, b"{}\n".to_vec())])).unwrap();
        assert!(small.entries_hashes().is_none());
    }

    /// Issue 18 (L): a small archive that expands enormously is refused at the limit, before its
    /// data is read.
    #[test]
    fn issue_18_decompression_is_bounded() {
        let bomb = tar_gz(&[("a", vec![0u8; 8 << 20]), ("b", vec![0u8; 8 << 20])]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert!(matches!(
            Bundle::read_tar_gz_limited(&bomb, 10 << 20),
            Err(BundleError::TooLarge(_))
        ));
        assert!(Bundle::read_tar_gz_limited(&bomb, 20 << 20).is_ok());
        assert_eq!(default_limit(1_000), MIN_LIMIT_BYTES);
        assert_eq!(default_limit(10 << 20), 1000 << 20);
        assert_eq!(default_limit(1 << 40), MAX_TOTAL_BYTES);
    }
}
