//! File and directory chores of a filesystem target: private writes, removal
//! that tolerates what is already gone, walks, and fsyncs of a whole tree.

use super::super::ObjectInfo;
use crate::error::{BackupError, Result};
use mv_home::durable::{FILE_MODE, fsync_dir};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Every object below `dir` (named relative to the target as `rel/...`); temp
/// files (names starting with a dot) are not objects.
pub(super) fn walk(dir: &Path, rel: &str, out: &mut Vec<ObjectInfo>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackupError::io(dir.display())(e)),
    };
    for entry in entries {
        let entry = entry.map_err(BackupError::io(dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // temp files are not objects
        }
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry
            .file_type()
            .map_err(BackupError::io(entry.path().display()))?;
        if ft.is_dir() {
            walk(&entry.path(), &child_rel, out)?;
        } else if ft.is_file() {
            let size = entry
                .metadata()
                .map_err(BackupError::io(entry.path().display()))?
                .len();
            out.push(ObjectInfo {
                path: child_rel,
                size,
            });
        }
    }
    Ok(())
}

pub(super) fn dir_names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(BackupError::io(dir.display())(e)),
    };
    for entry in entries {
        let entry = entry.map_err(BackupError::io(dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes stray temp files (`.<name>.tmp-*`) a crash left in `dir`, recursively.
pub(super) fn remove_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_temp_files(&path)?;
        } else if name.starts_with('.') && name.contains(".tmp-") {
            remove_file(&path)?;
        }
    }
    Ok(())
}

/// Writes a new file readable by the owner only (a target holds mail, hashes and
/// the home's secrets).
pub(super) fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?
        .write_all(data)
}

pub(super) fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io(path.display())(e)),
    }
}

pub(super) fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io(path.display())(e)),
        Ok(md) if md.is_dir() => match fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackupError::io(path.display())(e)),
        },
        Ok(_) => remove_file(path),
    }
}

/// Fsyncs every file and directory below `dir` (and `dir`), files first.
pub(super) fn fsync_tree(dir: &Path) -> Result<()> {
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let d = dirs[i].clone();
        for e in fs::read_dir(&d).map_err(BackupError::io(d.display()))? {
            let e = e.map_err(BackupError::io(d.display()))?;
            let p = e.path();
            if e.file_type()
                .map_err(BackupError::io(p.display()))?
                .is_dir()
            {
                dirs.push(p);
            } else {
                File::open(&p)
                    .and_then(|f| f.sync_all())
                    .map_err(BackupError::io(p.display()))?;
            }
        }
        i += 1;
    }
    for d in dirs.iter().rev() {
        fsync_dir(d).map_err(BackupError::io(d.display()))?;
    }
    Ok(())
}

/// Removes every empty directory below `dir` (not `dir` itself), deepest
/// first, so a directory that held only empty ones goes too; each directory
/// that lost an entry is fsynced so the removals survive a crash. Returns how
/// many went. A directory that gains an entry meanwhile (`ENOTEMPTY`) stays.
pub(super) fn remove_empty_subdirs(dir: &Path) -> Result<u64> {
    fn sweep(dir: &Path, removed: &mut u64) -> Result<bool> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(BackupError::io(dir.display())(e)),
        };
        let mut left = 0usize;
        let mut lost = false;
        for e in entries {
            let e = e.map_err(BackupError::io(dir.display()))?;
            let p = e.path();
            let is_dir = e
                .file_type()
                .map_err(BackupError::io(p.display()))?
                .is_dir();
            if !is_dir || !sweep(&p, removed)? {
                left += 1;
                continue;
            }
            match fs::remove_dir(&p) {
                Ok(()) => {
                    *removed += 1;
                    lost = true;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => lost = true,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                    left += 1;
                }
                Err(e) => return Err(BackupError::io(p.display())(e)),
            }
        }
        if lost {
            fsync_dir(dir).map_err(BackupError::io(dir.display()))?;
        }
        Ok(left == 0)
    }
    let mut removed = 0;
    sweep(dir, &mut removed)?;
    Ok(removed)
}
