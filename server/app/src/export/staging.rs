//! Where a bundle is assembled before it is archived: every file goes to a private temporary
//! directory as it is produced (entries page by page, never the whole log in memory) and is
//! hashed on the way for `SHA256SUMS`; the archive is then streamed from those files, in path
//! order, to any writer (a file for the CLI, a bounded channel for the HTTP response).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// The bundle's files on disk, with the SHA-256 and size of each, by bundle path.
pub struct Staging {
    dir: tempfile::TempDir,
    files: BTreeMap<String, (String, u64)>,
}

/// One file being written: bytes go to disk and into its hash; [`Staging::commit`] adds it.
pub struct StagedFile {
    path: String,
    out: BufWriter<File>,
    hash: Sha256,
    len: u64,
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Staging {
    /// A new, empty staging directory (removed when dropped, also on error or cancellation).
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new().prefix("aims-export-").tempdir()?,
            files: BTreeMap::new(),
        })
    }

    fn disk_path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Starts the file at bundle path `path` (`log/entries.jsonl`); replaces an earlier one.
    pub fn create(&self, path: &str) -> io::Result<StagedFile> {
        let disk = self.disk_path(path);
        if let Some(parent) = disk.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let out = BufWriter::with_capacity(1 << 16, File::create(&disk)?);
        Ok(StagedFile {
            path: path.to_owned(),
            out,
            hash: Sha256::new(),
            len: 0,
        })
    }

    /// Flushes `file` and records its hash and size.
    pub fn commit(&mut self, file: StagedFile) -> io::Result<()> {
        let StagedFile {
            path,
            mut out,
            hash,
            len,
        } = file;
        out.flush()?;
        self.files.insert(path, (hex::encode(hash.finalize()), len));
        Ok(())
    }

    /// Writes a whole small file.
    pub fn put(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut f = self.create(path)?;
        f.write_all(data)?;
        self.commit(f)
    }

    /// Whether `path` is staged.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The hex SHA-256 of a staged file.
    pub fn digest(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(|(d, _)| d.as_str())
    }

    /// Every staged path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// `sha256sum` lines over every staged file, in path order.
    pub fn sums(&self) -> String {
        self.files
            .iter()
            .map(|(path, (digest, _))| format!("{digest}  {path}\n"))
            .collect()
    }

    /// Writes the staged files as a gzip-compressed tar to `out`, in path order: regular files,
    /// mode 0644, owner 0:0, the given mtime, GNU headers; the gzip header carries no name and no
    /// time, so the same files always give the same bytes. Returns `out`.
    pub fn write_tar_gz<W: Write>(&self, out: W, mtime: u64) -> io::Result<W> {
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(out, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        for (path, (_, len)) in &self.files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(*len);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_uid(0);
            h.set_gid(0);
            let file = File::open(self.disk_path(path))?;
            tar.append_data(&mut h, path, io::Read::take(file, *len))?;
        }
        let gz = tar.into_inner()?;
        let mut out = gz.finish()?;
        out.flush()?;
        Ok(out)
    }

    /// The staging directory (for tests and diagnostics).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A writer that sends what it is given, in chunks, over a bounded channel: the HTTP body of a
/// streamed export. When the receiver is gone (the client left), writes fail with
/// `BrokenPipe`, which stops the export.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

/// Bytes sent per chunk.
const CHUNK: usize = 1 << 16;

impl ChannelWriter {
    /// A writer into `tx`. Call from a blocking thread: a full channel blocks the writer.
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_archive_in_path_order_with_their_sums() -> io::Result<()> {
        let mut s = Staging::new()?;
        s.put("b/two.txt", b"two\n")?;
        let mut f = s.create("a.txt")?;
        f.write_all(b"one\n")?;
        s.commit(f)?;
        assert_eq!(s.paths().collect::<Vec<_>>(), ["a.txt", "b/two.txt"]);
        assert!(s.sums().contains(&format!(
            "{}  a.txt\n",
            hex::encode(Sha256::digest(b"one\n"))
        )));
        let bytes = s.write_tar_gz(Vec::new(), 7)?;
        let again = s.write_tar_gz(Vec::new(), 7)?;
        assert_eq!(bytes, again, "deterministic");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let names: Vec<String> = archive
            .entries()?
            .map(|e| e.and_then(|e| Ok(e.path()?.to_string_lossy().into_owned())))
            .collect::<io::Result<_>>()?;
        assert_eq!(names, ["a.txt", "b/two.txt"]);
        Ok(())
    }

    #[test]
    fn a_closed_channel_stops_the_writer() -> io::Result<()> {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut w = ChannelWriter::new(tx);
        let err = w.write_all(&vec![0u8; CHUNK + 1]).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::BrokenPipe));
        Ok(())
    }
}
