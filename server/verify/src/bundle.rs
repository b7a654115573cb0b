//! Reading a `bundle.tar.gz` into memory: regular files only, relative paths without `..`, no
//! duplicates, and bounded sizes so a hostile archive cannot exhaust memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

/// Largest total of uncompressed file bytes accepted (4 GiB).
pub const MAX_TOTAL_BYTES: u64 = 4 << 30;
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
    #[error("archive exceeds the limits ({MAX_FILES} files, {MAX_TOTAL_BYTES} bytes)")]
    TooLarge,
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

    /// Reads a gzip-compressed tar archive.
    pub fn read_tar_gz(bytes: &[u8]) -> Result<Self, BundleError> {
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
            if total > MAX_TOTAL_BYTES || files.len() >= MAX_FILES {
                return Err(BundleError::TooLarge);
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
