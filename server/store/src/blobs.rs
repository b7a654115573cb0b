//! Issue 14 item 3 (DESIGN §12.3): the bytes of uploaded evidence, kept by SHA-256 and served at
//! `GET /v1/blobs/{sha256}`; the ledger record of the upload names the digest and size.
//!
//! - **SQLite** deployments keep them as files in `aims-blobs/` beside the database
//!   (`aims-blobs/ab/abcdef…`), written to a staging directory in the same place while the
//!   upload arrives, then fsynced and renamed: a file under its digest is always whole.
//! - **PostgreSQL** keeps them in a `blobs` table (`bytea`): replicas share the database and
//!   nothing else, an upload is at most `max_upload_bytes` (50 MiB by default, far below
//!   PostgreSQL's 1 GB value limit), and backups of the database then hold the evidence too. An
//!   S3 bucket would suit very large files; it is not needed for documents of this size.
//!
//! Blobs are content-addressed, so storing the same bytes twice keeps one copy.

use std::path::{Path, PathBuf};

use aims_model::ContentHash;
use async_trait::async_trait;

use crate::StoreError;

/// Where a blob's bytes are.
#[derive(Debug)]
pub enum BlobData {
    /// A file (SQLite deployments).
    File(PathBuf),
    /// In memory (read from the database).
    Bytes(Vec<u8>),
}

/// A stored blob.
#[derive(Debug)]
pub struct Blob {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    pub data: BlobData,
}

/// Content-addressed storage of uploaded bytes.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A directory on the same filesystem as the blobs, for an upload while it arrives.
    fn blob_staging_dir(&self) -> PathBuf;

    /// Keeps the file at `staged` (whose bytes hash to `sha256` and number `size`) under its
    /// digest, consuming it; returns whether the blob is new.
    async fn put_blob(
        &self,
        sha256: &ContentHash,
        size: u64,
        staged: &Path,
    ) -> Result<bool, StoreError>;

    /// The blob with this digest, if held.
    async fn blob(&self, sha256: &ContentHash) -> Result<Option<Blob>, StoreError>;

    /// Removes a blob (an upload whose record could not be written).
    async fn delete_blob(&self, sha256: &ContentHash) -> Result<(), StoreError>;
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Encoding(format!("blob store: {e}"))
}

/// The SQLite side: files under a directory.
pub(crate) mod dir {
    use super::*;

    /// The file of `sha256` under `root`.
    pub(crate) fn path_of(root: &Path, sha256: &ContentHash) -> PathBuf {
        let hex = sha256.as_str();
        root.join(&hex[..2]).join(hex)
    }

    pub(crate) fn staging(root: &Path) -> PathBuf {
        root.join("staging")
    }

    pub(crate) async fn put(
        root: &Path,
        sha256: &ContentHash,
        staged: &Path,
    ) -> Result<bool, StoreError> {
        let target = path_of(root, sha256);
        let staged = staged.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<bool, StoreError> {
            if target.exists() {
                std::fs::remove_file(&staged).map_err(io)?;
                return Ok(false);
            }
            let parent = target
                .parent()
                .ok_or_else(|| StoreError::Encoding("blob path without a parent".into()))?;
            std::fs::create_dir_all(parent).map_err(io)?;
            aims_fsutil::persist(&staged, &target).map_err(io)?;
            Ok(true)
        })
        .await
        .map_err(|e| StoreError::Encoding(format!("blob task: {e}")))?
    }

    pub(crate) async fn get(root: &Path, sha256: &ContentHash) -> Result<Option<Blob>, StoreError> {
        let path = path_of(root, sha256);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(Blob {
                size: m.len(),
                data: BlobData::File(path),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    pub(crate) async fn delete(root: &Path, sha256: &ContentHash) -> Result<(), StoreError> {
        match tokio::fs::remove_file(path_of(root, sha256)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

/// The PostgreSQL side: a table.
pub(crate) mod postgres {
    use super::*;
    use crate::PgStore;

    pub(crate) async fn put(
        s: &PgStore,
        sha256: &ContentHash,
        size: u64,
        staged: &Path,
    ) -> Result<bool, StoreError> {
        let bytes = tokio::fs::read(staged).await.map_err(io)?;
        let _ = tokio::fs::remove_file(staged).await;
        if bytes.len() as u64 != size {
            return Err(StoreError::Encoding(format!(
                "the staged upload has {} bytes, not {size}",
                bytes.len()
            )));
        }
        let size = i64::try_from(size)
            .map_err(|_| StoreError::Encoding(format!("blob size {size} out of range")))?;
        let n = sqlx::query(
            "INSERT INTO blobs (sha256, size, bytes) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.as_str())
        .bind(size)
        .bind(&bytes)
        .execute(&*s.writer().await)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(crate) async fn get(s: &PgStore, sha256: &ContentHash) -> Result<Option<Blob>, StoreError> {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT size, bytes FROM blobs WHERE sha256 = $1")
                .bind(sha256.as_str())
                .fetch_optional(s.reader())
                .await?;
        row.map(|(size, bytes)| {
            Ok(Blob {
                size: u64::try_from(size)
                    .map_err(|_| StoreError::Encoding(format!("negative blob size {size}")))?,
                data: BlobData::Bytes(bytes),
            })
        })
        .transpose()
    }

    pub(crate) async fn delete(s: &PgStore, sha256: &ContentHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
            .bind(sha256.as_str())
            .execute(&*s.writer().await)
            .await?;
        Ok(())
    }
}
