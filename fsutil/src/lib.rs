//! aims-fsutil: the one durable file replacement of the workspace, for everything that replaces
//! a file it may need after a crash (the agent's spool batches, cursors, confirmation and witness
//! state, the GitHub ETag cache; the server's newest signed checkpoint, `export` bundles and
//! uploaded blobs): write a temp file in the same directory, fsync it, rename it over the target,
//! fsync the directory. A crash leaves the old file or the new one, never a torn one.
//!
//! [`write_atomic`] does all of it for bytes in memory; [`persist`] does the last three steps for
//! a file that was streamed to its temporary path. Files [`write_atomic`] creates have mode 0600
//! on Unix (they describe what a source holds), and the directories the agent creates for its
//! state 0700 ([`create_private_dir_all`]).

use std::io::Write;
use std::path::Path;

/// Atomically replaces `path` with `bytes`, creating the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_dir(path);
    create_private_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!("{}{}", temp_prefix(&file_name), std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        rename_durably(&tmp, path, dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Durably moves the complete file `tmp` over `target` (both on one filesystem, usually in one
/// directory): fsyncs `tmp`, renames it, fsyncs `target`'s directory. For files streamed to a
/// temporary path (an export bundle, an upload); on error `tmp` is left for the caller.
pub fn persist(tmp: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    rename_durably(tmp, target, parent_dir(target))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Renames `tmp` (already fsynced) over `target`, then makes the rename itself durable.
fn rename_durably(tmp: &Path, target: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, target)?;
    sync_dir(dir)
}

/// Fsyncs the directory `dir`, so that the entries created, renamed or removed in it survive a
/// power cut (a no-op where directories cannot be opened, off Unix).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The prefix of [`write_atomic`]'s temporary file for `name` (`.{name}.tmp-`): what a crash
/// can leave behind next to the target.
pub fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Whether `name` is a temporary file [`write_atomic`] left behind (a crash mid-write).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Creates `dir` and its missing parents with mode 0700 on Unix (existing directories keep their
/// mode: a state directory given by the operator, such as `/var/lib/aims-agent`, is theirs).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Sets `dir`'s mode to 0700 on Unix (for directories the agent owns outright, such as its spool,
/// created with a looser mode by an older version).
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path().join("a")).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = std::fs::metadata(dir.path().join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700, "directories it creates are private");
        }
        assert!(is_temp_name(&format!("{}42", temp_prefix("b.json"))));
        assert!(!is_temp_name("b.json"));
    }

    #[test]
    fn persist_moves_a_streamed_file_over_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle.tar.gz");
        let tmp = dir.path().join("bundle.tmp");
        std::fs::write(&target, b"old").unwrap();
        std::fs::write(&tmp, b"new").unwrap();
        persist(&tmp, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!tmp.exists());
        assert!(
            persist(&tmp, &target).is_err(),
            "a missing temp file is an error"
        );
    }
}
