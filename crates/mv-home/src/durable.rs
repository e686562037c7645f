//! Durable file writes. Nothing is ever left half-written under a final name: a file
//! is written to a temporary name in the same directory, fsynced, renamed over the
//! final name, and the directory is fsynced so the rename itself survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably. `mode` sets Unix permissions on
/// the new file before any byte is written (0o600 for secrets).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically and durably, readable by the owner only
/// ([`FILE_MODE`]): what mailvault writes holds mail, hashes or secrets.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, FILE_MODE)
}

/// The mode of every file mailvault creates in a home or a local backup target.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory mailvault creates in a home or a local target.
pub const DIR_MODE: u32 = 0o700;

/// Makes every file and directory this process creates from now on private to
/// its owner, whatever umask it was started with (as Postfix and Dovecot do for
/// their queues and mail): SQLite, tantivy and `File::create` take their modes
/// from the umask. Call first thing in every entry point; affects the whole
/// process (the umask is per process, not per thread).
pub fn private_umask() {
    // SAFETY: umask only sets the calling process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates one directory with [`DIR_MODE`] (the umask can only narrow it).
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(DIR_MODE).create(dir)
}

/// `create_dir_all` with [`DIR_MODE`] for each directory made (no fsyncs).
pub fn create_dir_all_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(DIR_MODE)
        .recursive(true)
        .create(dir)
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to` and fsyncs both parent directories.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let (a, b) = (parent_dir(from), parent_dir(to));
    fsync_dir(b)?;
    if a != b {
        fsync_dir(a)?;
    }
    Ok(())
}

/// Creates a directory and its missing parents (mode [`DIR_MODE`]), fsyncing each
/// parent that gained an entry, so a crash cannot lose a directory a later
/// durable write relies on.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all_durable(parent)?;
    }
    match create_dir_private(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    fsync_dir(parent_dir(dir))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Asks the kernel to start reading the first `len` bytes of `path` (0: all of it)
/// into the page cache, without waiting for them. A hint for work about to read
/// many small files in an order the disk cannot guess: issued ahead, the reads
/// overlap instead of each waiting in turn. A missing file is no error (nothing to
/// read), and neither is anything else: the later real read reports problems.
pub fn will_need(path: &Path, len: u64) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).unwrap_or(0);
        // SAFETY: a valid descriptor for the call's duration; no memory is passed.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, len, libc::POSIX_FADV_WILLNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.xml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn secret_mode_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        write_atomic_mode(&p, b"s3cret", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn nested_dirs_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c");
        create_dir_all_durable(&p).unwrap();
        assert!(p.is_dir());
        create_dir_all_durable(&p).unwrap();
    }
}
