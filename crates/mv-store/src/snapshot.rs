//! A mailbox's complete observable state, for comparing two stores: the live one
//! and one rebuilt by replay or restore. Blobs are included by digest, each checked
//! against the bytes on disk.

use crate::{Folder, Item, MailboxInfo, Store, StoreError, Tag, Tombstone};
use mv_types::MailboxId;
use rusqlite::OptionalExtension;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    pub info: MailboxInfoState,
    pub folders: Vec<Folder>,
    pub tags: Vec<Tag>,
    pub items: Vec<Item>,
    pub tombstones: Vec<Tombstone>,
    pub subscriptions: Vec<String>,
}

/// [`MailboxInfo`] without what is not part of the mailbox's content (the
/// number of messages is derived from the items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfoState {
    pub mailbox_id: u32,
    pub account_id: String,
    pub email: String,
    pub applied_change: u64,
    pub next_item_id: u32,
    pub size_used: u64,
    pub created_ms: i64,
    pub deleted: bool,
}

impl From<MailboxInfo> for MailboxInfoState {
    fn from(i: MailboxInfo) -> Self {
        MailboxInfoState {
            mailbox_id: i.mailbox_id,
            account_id: i.account_id,
            email: i.email,
            applied_change: i.applied_change,
            next_item_id: i.next_item_id,
            size_used: i.size_used,
            created_ms: i.created_ms,
            deleted: i.deleted,
        }
    }
}

impl Store {
    /// The complete state of a mailbox; every blob is read and checked against its
    /// digest (an error if one is missing or damaged).
    pub fn mailbox_state(&self, id: MailboxId) -> Result<Option<MailboxState>, StoreError> {
        let mbox = self.mailbox(id);
        let Some(info) = mbox.info()? else {
            return Ok(None);
        };
        let items = mbox.items(None, None)?;
        for item in &items {
            if item.digest.is_some() {
                self.read_blob(id, item)?;
            }
        }
        Ok(Some(MailboxState {
            info: info.into(),
            folders: mbox.folders()?,
            tags: mbox.tags()?,
            items,
            tombstones: mbox.tombstones_since(0)?,
            subscriptions: mbox.subscriptions()?,
        }))
    }
}

/// Where a mailbox snapshot stands: every op of the mailbox with a change number
/// above `change` is in the redo log from `redo.sequence` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPoint {
    pub mailbox: MailboxId,
    pub change: u64,
    pub redo: mv_redo::RedoPosition,
    pub taken_at: mv_types::UtcMillis,
}

impl Store {
    /// Where a snapshot of the mailbox taken now would stand, without copying
    /// anything: the change number and the redo position, read together under the
    /// mailbox's lock. A backup compares it with its previous snapshot of the
    /// mailbox: the same change number means the same content (every change to a
    /// mailbox goes through an op that raises it), so that snapshot can be reused
    /// with this (newer) redo position.
    /// `None` when the mailbox does not exist or is deleted.
    pub fn mailbox_point(&self, id: MailboxId) -> Result<Option<SnapshotPoint>, StoreError> {
        // The redo position is read while the lock is held: no op of the mailbox
        // is then logged but not applied.
        self.mailbox(id).peek(|c| {
            let live_change = c
                .query_row("SELECT applied_change, deleted FROM meta", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?
                .filter(|(_, deleted)| *deleted == 0);
            Ok(live_change.map(|(change, _)| SnapshotPoint {
                mailbox: id,
                change: change as u64,
                redo: self.redo().position(),
                taken_at: mv_types::UtcMillis::now(),
            }))
        })
    }
}

impl Store {
    /// Copies a mailbox's database to `dest` as a consistent snapshot while the
    /// mailbox keeps serving. The mailbox's write lock is held only while a read
    /// transaction starts (no op of the mailbox is then logged but unapplied) and
    /// the redo position is read; the copy itself runs inside that read
    /// transaction. Hold a [`crate::blob::BlobHold`] from before this call until
    /// the snapshot's blobs are copied. `dest` is written without fsync: the
    /// caller makes it durable (or throws it away).
    pub fn snapshot_mailbox(
        &self,
        id: MailboxId,
        dest: &std::path::Path,
    ) -> Result<SnapshotPoint, StoreError> {
        let mbox = self.mailbox(id);
        if mbox.is_exclusive() {
            return Err(StoreError::Invalid(format!(
                "mailbox {id}: a snapshot needs a second connection to its database, and this store holds each database exclusively (an offline replay); take backups through the server"
            )));
        }
        if let Some(point) = self.snapshot_unopened(&mbox, dest)? {
            return Ok(point);
        }
        let path = mbox.db_path().to_path_buf();
        let sql = |e| StoreError::sql(&path, e);
        let src = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(sql)?;
        src.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        let (change, redo, taken_at) = {
            let _guard = mbox.lock()?;
            src.execute_batch("BEGIN").map_err(sql)?;
            let change: i64 = src
                .query_row("SELECT applied_change FROM meta", [], |r| r.get(0))
                .map_err(|_| StoreError::NoMailbox(id))?;
            (
                change as u64,
                self.redo().position(),
                mv_types::UtcMillis::now(),
            )
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        let _ = std::fs::remove_file(dest);
        // The copy is a scratch file the caller makes durable its own way (a backup
        // syncs its whole session once): no fsyncs of its own, which cost a dozen
        // per snapshot.
        let dsql = |e| StoreError::sql(dest, e);
        let mut dst = rusqlite::Connection::open(dest).map_err(dsql)?;
        dst.pragma_update(None, "synchronous", "OFF")
            .map_err(dsql)?;
        // All pages in one step: the read transaction keeps the source still.
        let step = rusqlite::backup::Backup::new(&src, &mut dst)
            .and_then(|b| b.step(-1))
            .map_err(sql)?;
        if step != rusqlite::backup::StepResult::Done {
            return Err(StoreError::Invalid(format!(
                "snapshot of mailbox {id} into {}: the copy did not finish ({step:?})",
                dest.display()
            )));
        }
        drop(dst);
        src.execute_batch("COMMIT").map_err(sql)?;
        Ok(SnapshotPoint {
            mailbox: id,
            change,
            redo,
            taken_at,
        })
    }

    /// The snapshot of a mailbox created and not used yet: the database its
    /// first use will make, written to `dest`. `None` when it has a database
    /// (or is no mailbox).
    fn snapshot_unopened(
        &self,
        mbox: &crate::Mailbox,
        dest: &std::path::Path,
    ) -> Result<Option<SnapshotPoint>, StoreError> {
        let g = mbox.lock_unopened()?;
        if g.has_conn() || mbox.has_database() {
            return Ok(None);
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        let Some(p) = self.created().write_to(mbox.id(), dest)? else {
            return Ok(None);
        };
        Ok(Some(SnapshotPoint {
            mailbox: mbox.id(),
            change: p.change,
            redo: self.redo().position(),
            taken_at: mv_types::UtcMillis::now(),
        }))
    }
}
