//! How a checkpoint makes a filesystem's writes durable.
//!
//! `syncfs(2)` writes back every dirty page of one filesystem in one call, but not
//! every filesystem honours it: FUSE passes it on only when both the kernel and the
//! filesystem support `FUSE_SYNCFS` (LazyFS, sshfs and most FUSE filesystems do
//! not), network filesystems differ, and an ignored `syncfs` still returns 0.
//! Durability cannot rest on a call the filesystem may ignore, so only the local
//! filesystems known to honour it get [`SyncMode::Syncfs`]; every other one gets
//! [`SyncMode::PerFile`]: each file and directory a checkpoint covers is fsynced by
//! name, which every POSIX filesystem must honour.

use std::io;
use std::path::Path;

/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// One `syncfs` per filesystem at each checkpoint.
    Syncfs,
    /// An fsync of every file and directory written since the last checkpoint.
    PerFile,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Syncfs => "syncfs",
            SyncMode::PerFile => "per-file fsync",
        }
    }
}

/// A filesystem as `statfs(2)` names it, and the mode a checkpoint uses on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsKind {
    /// `f_type`.
    pub magic: u64,
    /// A readable name ("ext4", "fuse", ...; "unknown" for others).
    pub name: &'static str,
    pub mode: SyncMode,
}

/// Local filesystems whose `syncfs` writes back every dirty page and returns an
/// error when it cannot (Linux's `sync_filesystem` with their own `sync_fs`).
/// tmpfs keeps nothing across a power cut anyway; its `syncfs` is exact.
const SYNCFS_RELIABLE: &[(u64, &str)] = &[
    (0xEF53, "ext4"), // ext2, ext3 and ext4 share the magic
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0x0102_1994, "tmpfs"),
    (0xF2F5_2010, "f2fs"),
];

/// Known names for the others, for messages only.
const OTHERS: &[(u64, &str)] = &[
    (0x6573_5546, "fuse"),
    (0x6969, "nfs"),
    (0xFF53_4D42, "cifs"),
    (0x794C_7630, "overlayfs"),
    (0x2FC1_2FC1, "zfs"),
    (0x0102_1997, "9p"),
];

/// The filesystem holding `path` and the checkpoint mode it gets.
pub fn fs_kind(path: &Path) -> io::Result<FsKind> {
    let magic = statfs_type(path)?;
    if let Some((_, name)) = SYNCFS_RELIABLE.iter().find(|(m, _)| *m == magic) {
        return Ok(FsKind {
            magic,
            name,
            mode: SyncMode::Syncfs,
        });
    }
    let name = OTHERS
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or("unknown", |(_, n)| n);
    Ok(FsKind {
        magic,
        name,
        mode: SyncMode::PerFile,
    })
}

fn statfs_type(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a valid C string and `st` a buffer of the right type.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    // f_type's integer type differs between libc targets.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok(st.f_type as u64)
}

/// Fsyncs a file by name; a file gone meanwhile (removed or renamed after it was
/// written) has nothing left to make durable.
pub fn fsync_path(path: &Path) -> io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `syncfs(2)` of the filesystem holding `path`: every dirty page of that
/// filesystem reaches the disk (where [`SyncMode::Syncfs`] says it can be trusted).
pub fn syncfs(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: syncfs takes a valid open descriptor and has no memory effects.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_directory_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        let k = fs_kind(dir.path()).unwrap();
        assert_ne!(k.magic, 0);
        // Whatever it is, an unknown filesystem never gets syncfs.
        if k.name == "unknown" || k.name == "fuse" {
            assert_eq!(k.mode, SyncMode::PerFile);
        }
        assert!(fs_kind(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn fuse_and_network_filesystems_fall_back_to_per_file_fsync() {
        for (magic, _) in OTHERS {
            assert!(!SYNCFS_RELIABLE.iter().any(|(m, _)| m == magic));
        }
    }
}
