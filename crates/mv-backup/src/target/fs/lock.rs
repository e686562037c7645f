//! The target's lock file, `backup.lock`: an flock held by the one backup,
//! delete or restore running, whose text names what runs (for the next one's
//! "... is still in progress").

use super::super::{LockHandle, TargetLock};
use super::{FsTarget, LOCK_FILE};
use crate::error::{BackupError, Result};
use mv_home::durable::FILE_MODE;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

impl FsTarget {
    /// [`crate::target::Target::lock`]: waits up to `wait`, then names the holder.
    pub(super) fn take_lock(&self, what: &str, wait: Duration) -> Result<TargetLock> {
        let path = self.root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(BackupError::io(path.display()))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        let mut holder = String::new();
                        let _ = file.read_to_string(&mut holder);
                        let holder = holder.lines().next().unwrap_or("").trim().to_string();
                        return Err(BackupError::InProgress(if holder.is_empty() {
                            "Another backup, restore or delete operation".into()
                        } else {
                            holder
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(e)) => return Err(BackupError::io(path.display())(e)),
            }
        }
        write_holder(&mut file, what).map_err(BackupError::io(path.display()))?;
        Ok(TargetLock::new(Box::new(LockFile(std::sync::Mutex::new(
            file,
        )))))
    }

    /// [`crate::target::Target::lock_holder`]: what holds the lock, if anything does.
    pub(super) fn read_lock_holder(&self) -> Result<Option<String>> {
        let path = self.root.join(LOCK_FILE);
        let mut file = match OpenOptions::new().read(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackupError::io(path.display())(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Ok(Some(holder.lines().next().unwrap_or("").trim().to_string()))
            }
            Err(TryLockError::Error(e)) => Err(BackupError::io(path.display())(e)),
        }
    }
}

struct LockFile(std::sync::Mutex<File>);

impl LockHandle for LockFile {
    fn describe(&self, what: &str) -> Result<()> {
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        write_holder(&mut file, what).map_err(BackupError::io(LOCK_FILE))
    }
}

fn write_holder(file: &mut File, what: &str) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    let text = format!("{what}\npid {}\n", std::process::id());
    file.write_all(text.as_bytes())?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn lock_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        assert_eq!(t.lock_holder().unwrap(), None);
        let held = t
            .lock("Backup full-20140605.080023.296", Duration::ZERO)
            .unwrap();
        assert_eq!(
            t.lock_holder().unwrap().as_deref(),
            Some("Backup full-20140605.080023.296")
        );
        let e = t
            .lock("Backup other", Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Backup full-20140605.080023.296 is still in progress"
        );
        drop(held);
        assert_eq!(t.lock_holder().unwrap(), None);
        t.lock("x", Duration::ZERO).unwrap();
    }
}
