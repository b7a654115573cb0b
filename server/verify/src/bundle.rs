//! Reading a `bundle.tar.gz` into memory: regular files only, relative paths without `..`, no
//! duplicates, and bounded sizes so a hostile archive cannot exhaust memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
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
        Self { files }
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
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 24));
            entry
                .by_ref()
                .take(size)
                .read_to_end(&mut data)
                .map_err(BundleError::Archive)?;
            if files.insert(path, data).is_some() {
                return Err(BundleError::Duplicate(shown));
            }
        }
        Ok(Self { files })
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
