//! A mailbox database copied out of the store ([`crate::Store::snapshot_mailbox`])
//! and handled as a file: what a backup keeps of a mailbox and what a restore
//! puts back. The mailbox database's format has one owner, this crate: callers
//! (mv-backup) ask a [`SnapshotFile`] what it holds and how to adjust it, and
//! never read its tables themselves.

use crate::{ItemKind, StoreError, schema};
use mv_types::{Digest, ItemId, MailboxId};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// An item's blob, as a mailbox database references it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub item: ItemId,
    pub digest: Digest,
    /// The volume the blob file is on, and its revision (`mod_content`): with
    /// the mailbox and the item they name the file
    /// ([`crate::BlobStore::blob_path`]).
    pub volume: u16,
    pub revision: u64,
    /// The message's size as the database records it (the blob's length, plus
    /// any stored header prefix).
    pub size: u64,
}

/// The blobs a mailbox database references, ordered by item id: every item with
/// content and every message in the dumpster (whose files are kept for
/// recovery), or the items of one folder. The one reading of this that exists:
/// deleting a folder or mailbox (the apply path), a backup (which blobs to
/// copy) and a restore (which blob files to write) all use it, so a full
/// backup holds the dumpster's contents and a restore writes them back.
pub(crate) fn blob_refs(conn: &Connection, folder: Option<u32>) -> rusqlite::Result<Vec<BlobRef>> {
    // A snapshot taken before the dumpster existed (schema 3) has no table.
    let dumpster: bool = conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dumpster'")?
        .exists([])?;
    let mut st = conn.prepare_cached(if dumpster {
        "SELECT id, digest, volume_id, mod_content, size FROM item \
         WHERE digest IS NOT NULL AND (?1 IS NULL OR folder_id = ?1) \
         UNION ALL SELECT id, digest, volume_id, mod_content, size FROM dumpster \
         WHERE digest IS NOT NULL AND ?1 IS NULL ORDER BY id"
    } else {
        "SELECT id, digest, volume_id, mod_content, size FROM item \
         WHERE digest IS NOT NULL AND (?1 IS NULL OR folder_id = ?1) ORDER BY id"
    })?;
    let rows = st.query_map([folder], |r| {
        let id: u32 = r.get(0)?;
        let digest: Vec<u8> = r.get(1)?;
        let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Blob,
                format!("item {id}: a digest of {} bytes", digest.len()).into(),
            )
        })?;
        Ok(BlobRef {
            item: ItemId(id),
            digest: Digest(digest),
            volume: r.get(2)?,
            revision: r.get::<_, i64>(3)?.max(0) as u64,
            size: r.get::<_, i64>(4)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// What a snapshot holds, in numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Every item (messages, contacts, appointments).
    pub items: u64,
    pub messages: u64,
    /// The change number the snapshot's mailbox had applied.
    pub applied_change: u64,
}

/// A mailbox database file outside the store (a backup's copy, or a restore's
/// file before it becomes a mailbox), open for reading and adjusting.
///
/// It is a scratch file: nothing here fsyncs (the caller makes the file durable
/// its own way, or throws it away), and an adjustment that fails half-way
/// leaves it unusable.
pub struct SnapshotFile {
    path: PathBuf,
    conn: Connection,
}

impl SnapshotFile {
    /// Opens a snapshot file for reading and adjusting.
    pub fn open(path: &Path) -> Result<SnapshotFile, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::sql(path, e))?;
        let file = SnapshotFile {
            path: path.to_path_buf(),
            conn,
        };
        file.conn
            .pragma_update(None, "synchronous", "OFF")
            .map_err(file.sql())?;
        Ok(file)
    }

    fn sql(&self) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        |e| StoreError::sql(&self.path, e)
    }

    /// Makes the file self-contained: a rollback journal instead of the live
    /// database's write-ahead log, so the file alone is the whole database
    /// (no `-wal` beside it to copy or lose).
    pub fn make_self_contained(&self) -> Result<(), StoreError> {
        let _: String = self
            .conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .map_err(self.sql())?;
        Ok(())
    }

    /// What it holds.
    pub fn summary(&self) -> Result<SnapshotSummary, StoreError> {
        let (items, messages, applied): (i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM item), \
                 (SELECT COUNT(*) FROM item WHERE type = ?1), \
                 (SELECT applied_change FROM meta)",
                [ItemKind::Message],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    ))
                },
            )
            .map_err(self.sql())?;
        Ok(SnapshotSummary {
            items: items.max(0) as u64,
            messages: messages.max(0) as u64,
            applied_change: applied.max(0) as u64,
        })
    }

    /// Every blob it references, ordered by item id (an item sharing its
    /// content with another is listed too).
    pub fn blob_refs(&self) -> Result<Vec<BlobRef>, StoreError> {
        blob_refs(&self.conn, None).map_err(self.sql())
    }

    /// Makes the file the database of mailbox `to` of account `account_id`
    /// (`email`): a restore gives the restored mailbox a new id, and maybe a new
    /// account. Runs without a journal: on a failure, throw the file away.
    pub fn rebind(&self, to: MailboxId, account_id: &str, email: &str) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA journal_mode = OFF;")
            .map_err(self.sql())?;
        self.conn
            .execute(
                "UPDATE meta SET mailbox_id = ?1, account_id = ?2, email = ?3",
                rusqlite::params![to.0, account_id, email],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Checks a snapshot file that nothing writes to (`verify`): it opens
    /// read-only, passes SQLite's `integrity_check` and has a mailbox. Returns
    /// its applied change number, or why it is not a sound snapshot.
    pub fn check(path: &Path) -> Result<u64, SnapshotProblem> {
        let conn = schema::try_open_immutable(path).map_err(SnapshotProblem::Open)?;
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(SnapshotProblem::NotADatabase)?;
        if verdict != "ok" {
            return Err(SnapshotProblem::Integrity(verdict));
        }
        let applied: i64 = conn
            .query_row("SELECT applied_change FROM meta", [], |r| r.get(0))
            .map_err(SnapshotProblem::NoMailbox)?;
        Ok(applied.max(0) as u64)
    }
}

/// Why [`SnapshotFile::check`] found a snapshot unsound.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotProblem {
    #[error("the snapshot does not open: {0}")]
    Open(rusqlite::Error),
    #[error("the snapshot is not a sound database: {0}")]
    NotADatabase(rusqlite::Error),
    #[error("integrity_check: {0}")]
    Integrity(String),
    #[error("the snapshot has no mailbox: {0}")]
    NoMailbox(rusqlite::Error),
}
