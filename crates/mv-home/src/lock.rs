//! One process owns a home at a time: the server, or an offline tool such as
//! `playredo` or `restoreoffline`. Ownership is an exclusive `flock` on
//! `<home>/mailvault.lock`, released by the kernel when the process dies, so a
//! crashed server never leaves a stale lock behind. The file also records the pid of
//! the holder so that other tools can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the home {home} is in use by another mailvault process (pid {pid}); stop it first (zmcontrol stop)"
    )]
    Held { home: PathBuf, pid: String },
    #[error("cannot open lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
    path: PathBuf,
}

impl HomeLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock or reports who holds it. Never waits.
    pub fn acquire(home: &Path) -> Result<HomeLock, LockError> {
        let path = home.join("mailvault.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // The lock lives in the home: a home that does not exist yet is created.
        crate::durable::create_dir_all_durable(home).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Held {
                    home: home.to_path_buf(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(HomeLock { _file: file, path })
    }

    /// Like [`HomeLock::acquire`], but retries for up to `patience` while the lock
    /// is held. For a caller that released the lock itself a moment ago: a child
    /// process forked by another thread in that moment holds a copy of the lock's
    /// descriptor (and so the `flock`) until it calls exec.
    pub fn acquire_waiting(
        home: &Path,
        patience: std::time::Duration,
    ) -> Result<HomeLock, LockError> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match HomeLock::acquire(home) {
                Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// The pid of the process holding the home's lock, if any.
    pub fn holder(home: &Path) -> Option<u32> {
        let path = home.join("mailvault.lock");
        let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(_) => {
                let mut pid = String::new();
                file.read_to_string(&mut pid).ok()?;
                pid.trim().parse().ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_same_home_is_refused_and_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = HomeLock::acquire(dir.path()).unwrap();
        let err = HomeLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        assert_eq!(HomeLock::holder(dir.path()), Some(std::process::id()));
        drop(first);
        assert_eq!(HomeLock::holder(dir.path()), None);
        HomeLock::acquire(dir.path()).unwrap();
    }
}
