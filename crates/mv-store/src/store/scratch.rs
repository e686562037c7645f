//! Scratch mailboxes: databases built for a while under a mailbox id no account
//! points at (a backup's state at a restore point, read by item-level recovery)
//! and then removed. Each is marked before its first file is written (an empty
//! file named by its id in `db/scratch/`, made durable) and unmarked after its
//! files are gone, so that a process killed in between leaves a mark: the next
//! open of the store (the server's start, or the next tool that opens the home)
//! removes every marked mailbox's files before anything else reads them. The
//! home's lock keeps a second process from opening the store meanwhile, so a
//! mark found at open belongs to no running build.

use super::Store;
use crate::StoreError;
use mv_types::{ItemId, MailboxId};
use std::path::{Path, PathBuf};

impl Store {
    fn scratch_dir(&self) -> PathBuf {
        self.home.db_dir().join("scratch")
    }

    /// Marks mailbox `id` as scratch, durably, before anything of it is written.
    pub fn mark_scratch(&self, id: MailboxId) -> Result<(), StoreError> {
        let dir = self.scratch_dir();
        mv_home::durable::create_dir_all_durable(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let mark = dir.join(id.0.to_string());
        mv_home::durable::write_atomic(&mark, b"").map_err(|e| StoreError::io(&mark, e))?;
        Ok(())
    }

    /// Removes a scratch mailbox's files (its database under any name it had,
    /// its blobs on every volume, its search index), then its mark. Removing
    /// what is already gone is not an error.
    pub fn remove_scratch(&self, id: MailboxId) -> Result<(), StoreError> {
        let mbox = self.mailbox(id);
        mbox.close();
        let db = mbox.db_path().to_path_buf();
        let mut files = vec![db.clone(), db.with_extension("sqlite.restoring")];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            files.push(PathBuf::from(side));
        }
        for f in files {
            remove(&f, std::fs::remove_file(&f))?;
        }
        // A mailbox's blobs are in a directory of its own on each volume.
        for v in self.blobs.volumes() {
            let one = self.blobs.blob_path(v.id, id, ItemId(0), 0);
            if let Some(mailbox_dir) = one.ancestors().nth(3) {
                remove(mailbox_dir, std::fs::remove_dir_all(mailbox_dir))?;
            }
        }
        let index = self.home.mailbox_index_dir(id.0);
        remove(&index, std::fs::remove_dir_all(&index))?;
        let dir = self.scratch_dir();
        let mark = dir.join(id.0.to_string());
        match std::fs::remove_file(&mark) {
            Ok(()) => mv_home::durable::fsync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&mark, e)),
        }
        Ok(())
    }

    /// At open: removes the scratch mailboxes a killed process left behind.
    /// Returns their ids.
    pub(super) fn sweep_scratch(&self) -> Result<Vec<MailboxId>, StoreError> {
        let dir = self.scratch_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut swept = Vec::new();
        for e in entries {
            let e = e.map_err(|e| StoreError::io(&dir, e))?;
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                // Not a mark (a write_atomic temporary of one cut short).
                remove(&e.path(), std::fs::remove_file(e.path()))?;
                continue;
            };
            self.remove_scratch(MailboxId(id))?;
            swept.push(MailboxId(id));
        }
        if !swept.is_empty() {
            tracing::warn!(
                mailboxes = ?swept.iter().map(|m| m.0).collect::<Vec<_>>(),
                "removed scratch mailboxes an interrupted backup search or item restore left"
            );
        }
        Ok(swept)
    }
}

/// A removal's result: what was already gone is fine.
fn remove(path: &Path, r: std::io::Result<()>) -> Result<(), StoreError> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(path, e)),
        _ => Ok(()),
    }
}
