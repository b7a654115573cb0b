//! The cursor: what a source's last completed poll saw, keyed by locator.
//!
//! The engine diffs a listing against it to fetch only what changed and to notice what vanished.
//! It is a small versioned JSON document (`{"v":1,"entries":{…}}`).
//!
//! Durability: [`Cursor::save`] writes a temp file in the same directory, fsyncs it, renames it
//! over the target and fsyncs the directory, so a crash leaves either the old or the new cursor,
//! never a torn one. A missing file is an empty cursor (first run). A file that exists but does
//! not parse is a [`CursorError::Corrupt`]: silently resetting would re-emit every artifact and,
//! worse, forget which artifacts should be reported `gone`, so an operator decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aims_model::ContentHash;
use serde::{Deserialize, Serialize};

/// The cursor format version this crate writes and reads.
pub const CURSOR_VERSION: u32 = 1;

/// What was last seen of one artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorEntry {
    /// The listing's change token.
    pub version: String,
    /// SHA-256 of the bytes last read.
    pub sha256: ContentHash,
    /// Bytes last read.
    pub size: u64,
    /// Kind it was classified as.
    pub kind: String,
    /// System it was assigned to.
    pub system: String,
    /// Source-relative path.
    pub path: String,
}

/// Per-source poll state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Format version, [`CURSOR_VERSION`].
    pub v: u32,
    /// Entries by locator.
    pub entries: BTreeMap<String, CursorEntry>,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            v: CURSOR_VERSION,
            entries: BTreeMap::new(),
        }
    }
}

/// Loading or saving a cursor failed.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Reading or writing the file failed.
    #[error("cursor {path}: {source}")]
    Io {
        /// The cursor file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a cursor.
    #[error("cursor {path} is corrupt: {reason}")]
    Corrupt {
        /// The cursor file.
        path: PathBuf,
        /// Why it does not parse.
        reason: String,
    },
    /// The file was written by a newer or older, incompatible format.
    #[error("cursor {path} has unsupported version {v}, expected {CURSOR_VERSION}")]
    UnsupportedVersion {
        /// The cursor file.
        path: PathBuf,
        /// Its version.
        v: u32,
    },
    /// The cursor could not be serialised.
    #[error("cursor cannot be encoded: {0}")]
    Encode(String),
}

impl Cursor {
    /// An empty cursor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a cursor document.
    pub fn from_slice(path: &Path, bytes: &[u8]) -> Result<Self, CursorError> {
        #[derive(Deserialize)]
        struct Probe {
            v: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| CursorError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if probe.v != CURSOR_VERSION {
            return Err(CursorError::UnsupportedVersion {
                path: path.to_owned(),
                v: probe.v,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| CursorError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Loads the cursor at `path`; a missing file is an empty cursor. Blocking IO: from async
    /// code use [`Cursor::load_async`].
    pub fn load(path: &Path) -> Result<Self, CursorError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_slice(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(source) => Err(CursorError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Atomically replaces the cursor at `path` (temp file, fsync, rename, fsync dir). Creates
    /// the parent directory if needed. Blocking IO: from async code use [`Cursor::save_async`].
    pub fn save(&self, path: &Path) -> Result<(), CursorError> {
        let io = |source| CursorError::Io {
            path: path.to_owned(),
            source,
        };
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|e| CursorError::Encode(e.to_string()))?;
        aims_fsutil::write_atomic(path, &bytes).map_err(io)
    }

    /// [`Cursor::load`] on the blocking pool.
    pub async fn load_async(path: PathBuf) -> Result<Self, CursorError> {
        let p = path.clone();
        tokio::task::spawn_blocking(move || Self::load(&p))
            .await
            .map_err(|e| CursorError::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// [`Cursor::save`] on the blocking pool.
    pub async fn save_async(&self, path: PathBuf) -> Result<(), CursorError> {
        let me = self.clone();
        let p = path.clone();
        tokio::task::spawn_blocking(move || me.save(&p))
            .await
            .map_err(|e| CursorError::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CursorEntry {
        CursorEntry {
            version: "v1".into(),
            sha256: ContentHash::of(b"x"),
            size: 1,
            kind: "model_card".into(),
            system: "fraud".into(),
            path: "a.md".into(),
        }
    }

    #[test]
    fn missing_is_empty_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/c.json");
        assert_eq!(Cursor::load(&p).unwrap(), Cursor::new());
        let mut c = Cursor::new();
        c.entries.insert("file:///a.md".into(), entry());
        c.save(&p).unwrap();
        assert_eq!(Cursor::load(&p).unwrap(), c);
        // Overwrite leaves no temp files behind.
        c.entries.clear();
        c.save(&p).unwrap();
        assert_eq!(Cursor::load(&p).unwrap(), c);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
    }

    #[test]
    fn corrupt_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, b"{\"v\":1,\"entries\":").unwrap();
        assert!(matches!(Cursor::load(&p), Err(CursorError::Corrupt { .. })));
        std::fs::write(&p, b"{\"v\":9,\"entries\":{}}").unwrap();
        assert!(matches!(
            Cursor::load(&p),
            Err(CursorError::UnsupportedVersion { v: 9, .. })
        ));
    }
}
