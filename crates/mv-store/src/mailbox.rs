//! A mailbox: its metadata database behind the mailbox's write lock, and the
//! read queries the tools and protocols use. Writes go through [`crate::Store`],
//! which logs them and then applies them with [`crate::apply::apply`].

use crate::ItemKind;
use crate::StoreError;
use crate::apply::parse_tags;
use crate::created::Created;
use crate::handles::OpenHandles;
use crate::schema;
use mv_types::{ItemId, MailboxId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

mod dumpster;

pub use dumpster::DumpsterItem;

/// One mailbox. The mutex is the mailbox's write lock (design invariant 1: a
/// change number is assigned, logged, made durable and applied under it).
pub struct Mailbox {
    pub(crate) id: MailboxId,
    pub(crate) db_path: PathBuf,
    pub(crate) conn: Mutex<Option<Connection>>,
    /// Whether this process opened the database for writing or replaced it:
    /// only then can blob removals have been queued in it since the start-up
    /// sweep (a mailbox only [`Mailbox::peek`]ed needs no sweep at close).
    written: AtomicBool,
    /// Opened in SQLite's exclusive locking mode (see
    /// [`crate::StoreOptions::exclusive_databases`]).
    exclusive: bool,
    /// The database may hold writes no checkpoint has fsynced yet (see
    /// [`Mailbox::sync_if_written`]). Set after each write, before the write's
    /// redo ticket is released ([`MailboxGuard::mark_written`]): a checkpoint
    /// that claims the write's record reads its position after that release,
    /// so it finds the flag set or a checkpoint that took it after the write is
    /// still syncing. Set when the lock is taken and released too.
    unsynced: AtomicBool,
    /// Live [`crate::MailboxPin`]s: while any, the handle cache leaves the
    /// connection open.
    pub(crate) pins: AtomicUsize,
    /// The store's bound on open connections.
    handles: Arc<OpenHandles>,
    /// Where a created mailbox waits for its first use (see `created`).
    created: Arc<Created>,
}

impl Mailbox {
    pub(crate) fn new(
        id: MailboxId,
        db_dir: &Path,
        exclusive: bool,
        handles: Arc<OpenHandles>,
        created: Arc<Created>,
    ) -> Mailbox {
        Mailbox {
            id,
            db_path: db_dir.join(format!("{}.sqlite", id.0)),
            conn: Mutex::new(None),
            written: AtomicBool::new(false),
            exclusive,
            unsynced: AtomicBool::new(false),
            pins: AtomicUsize::new(0),
            handles,
            created,
        }
    }

    /// Whether the database is opened in exclusive locking mode.
    pub(crate) fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    pub fn id(&self) -> MailboxId {
        self.id
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Takes the write lock, opening (and migrating) the database on first use.
    /// A created mailbox without a database yet gets it now (see `created`).
    pub(crate) fn lock(&self) -> Result<MailboxGuard<'_>, StoreError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.open_locked(guard, true)
    }

    /// Takes the write lock without making a database that does not exist yet:
    /// the guard then has no connection ([`MailboxGuard::has_conn`]). For the
    /// creation of a mailbox and for reads.
    pub(crate) fn lock_unopened(&self) -> Result<MailboxGuard<'_>, StoreError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.open_locked(guard, false)
    }

    /// Whether the mailbox's database file exists.
    pub(crate) fn has_database(&self) -> bool {
        std::fs::symlink_metadata(&self.db_path).is_ok()
    }

    /// Whether the mailbox was created and waits for its first use (no
    /// database yet).
    pub fn is_unopened(&self) -> Result<bool, StoreError> {
        let _guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(!self.has_database() && self.created.get(self.id)?.is_some())
    }

    fn open_locked<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Option<Connection>>,
        make: bool,
    ) -> Result<MailboxGuard<'a>, StoreError> {
        if guard.is_none() {
            if !self.has_database() {
                if !make {
                    return Ok(MailboxGuard {
                        id: self.id,
                        guard,
                        unsynced: &self.unsynced,
                        created: &self.created,
                    });
                }
                // Under the lock: two first uses (a delivery and an IMAP
                // APPEND) make it once.
                self.created.materialize(self.id, &self.db_path)?;
            }
            self.written.store(true, Ordering::Relaxed);
            let sql = |e| StoreError::sql(&self.db_path, e);
            let mut conn = Connection::open(&self.db_path).map_err(sql)?;
            if self.exclusive {
                // Before the first read: only then does SQLite keep the log's
                // index in memory rather than in a `-shm` file.
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                    .map_err(sql)?;
            }
            schema::prepare(&mut conn, &self.db_path.to_string_lossy())?;
            *guard = Some(conn);
        }
        self.unsynced.store(true, Ordering::Release);
        self.handles.used(self.id);
        Ok(MailboxGuard {
            id: self.id,
            guard,
            unsynced: &self.unsynced,
            created: &self.created,
        })
    }

    /// For a checkpoint that fsyncs file by file: if the database was locked
    /// since the last one, fsyncs its write-ahead log and its file (the log
    /// holds the commits SQLite's `synchronous=NORMAL` and a replay's `OFF` did
    /// not sync; the file, pages copied into it). Returns whether it did.
    pub(crate) fn sync_if_written(&self) -> std::io::Result<bool> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let mut wal = self.db_path.clone().into_os_string();
        wal.push("-wal");
        let res = mv_home::syncmode::fsync_path(Path::new(&wal))
            .and_then(|()| mv_home::syncmode::fsync_path(&self.db_path));
        if res.is_err() {
            self.unsynced.store(true, Ordering::Release);
        }
        res.map(|()| true)
    }

    /// Runs a read query under the mailbox lock. A created mailbox without a
    /// database yet is read as its first use will make it (built in memory,
    /// nothing written).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let g = self.lock_unopened()?;
        if !g.has_conn() {
            if let Some(conn) = self.created.in_memory(self.id)? {
                return f(&conn).map_err(|e| StoreError::sql(&self.db_path, e));
            }
            drop(g);
            let g = self.lock()?;
            return f(g.conn()).map_err(|e| StoreError::sql(&self.db_path, e));
        }
        f(g.conn()).map_err(|e| StoreError::sql(&self.db_path, e))
    }

    /// See [`Mailbox::written`].
    pub(crate) fn was_written(&self) -> bool {
        self.written.load(Ordering::Relaxed)
    }

    /// Runs a read query under the mailbox lock without opening the database for
    /// writing when this process has not opened it yet. Opening a WAL database
    /// for writing creates its `-wal` and `-shm` files, and the last close
    /// checkpoints and deletes them again (freeing the blocks, with a discard on
    /// some disks): for a look at each of a server's mailboxes that nothing
    /// writes to, as an unchanged full backup takes, that was a fifth of its time.
    ///
    /// Without a `-wal` file the database file alone holds every committed
    /// transaction (the last close checkpointed it), and nothing can write to it
    /// meanwhile: writes go through this lock, in the one process that holds the
    /// home. So it is read as an immutable file: no lock, no side file. With a
    /// `-wal` (a crash left one, or a query this peek cannot run on an old
    /// schema), the database is opened the normal way.
    pub fn peek<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = guard.as_ref() {
            return f(conn).map_err(|e| StoreError::sql(&self.db_path, e));
        }
        if !self.has_database() {
            // Created and not used yet, or not a mailbox: `read` knows.
            drop(guard);
            return self.read(f);
        }
        let mut wal = self.db_path.clone().into_os_string();
        wal.push("-wal");
        let no_wal = matches!(
            std::fs::symlink_metadata(&wal),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        if no_wal && let Some(v) = schema::open_immutable(&self.db_path).and_then(|c| f(&c).ok()) {
            return Ok(v);
        }
        drop(guard);
        self.read(f)
    }

    /// Copies the open connection's write-ahead log into the database file
    /// without syncing either, and leaves the connection at `synchronous=OFF`,
    /// so that closing it syncs nothing. Only for a store that is closing, with
    /// its filesystem synced after this and before the close (see
    /// `Store::backfill_before_close`). A connection inside a transaction is
    /// left as it is.
    pub(crate) fn backfill_unsynced(&self) -> rusqlite::Result<()> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let Some(conn) = guard.as_ref() else {
            return Ok(());
        };
        if !conn.is_autocommit() {
            return Ok(());
        }
        conn.pragma_update(None, "synchronous", "OFF")?;
        let (busy, frames, copied): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        drop(guard);
        // Pages copied into the database file unsynced: the next checkpoint's.
        self.unsynced.store(true, Ordering::Release);
        if busy != 0 || copied != frames {
            // Not all copied (another connection reads an old snapshot): the
            // close copies the rest after the syncfs, so it must sync it itself.
            self.sync_at_close();
        }
        Ok(())
    }

    /// Undoes [`Mailbox::backfill_unsynced`]'s `synchronous=OFF`: the close
    /// then syncs the database before it deletes the log.
    pub(crate) fn sync_at_close(&self) {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = guard.as_ref() {
            let _ = conn.pragma_update(None, "synchronous", schema::SYNCHRONOUS);
        }
    }

    /// Closes the database (a restore is about to replace the file).
    pub fn close(&self) {
        self.written.store(true, Ordering::Relaxed);
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.handles.closed(self.id);
    }

    /// Whether the database is open in this process now.
    pub fn is_open(&self) -> bool {
        match self.conn.try_lock() {
            Ok(g) => g.is_some(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().is_some(),
            Err(TryLockError::WouldBlock) => true,
        }
    }

    /// For the handle cache: closes the connection if nobody uses it (its lock
    /// is free, no pin, no open transaction). Returns whether it is closed.
    /// The close runs at the usual `synchronous` level (not a replay's or a
    /// closing store's `OFF`), so SQLite's checkpoint at close syncs the log
    /// before it copies it into the database and syncs the database before it
    /// deletes the log.
    pub(crate) fn close_idle(&self) -> bool {
        if self.pins.load(Ordering::Acquire) > 0 {
            return false;
        }
        let mut guard = match self.conn.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        if self.pins.load(Ordering::Acquire) > 0 {
            return false;
        }
        if let Some(conn) = guard.as_ref() {
            if !conn.is_autocommit() {
                return false;
            }
            if let Err(e) = conn.pragma_update(None, "synchronous", schema::SYNCHRONOUS) {
                tracing::warn!("{}: not closed: {e}", self.db_path.display());
                return false;
            }
        }
        *guard = None;
        self.handles.closed(self.id);
        true
    }

    pub fn info(&self) -> Result<Option<MailboxInfo>, StoreError> {
        self.read(query_info)
    }

    /// [`Mailbox::info`] through [`Mailbox::peek`]: a look at a mailbox that
    /// leaves it closed if it was (a background walk over many mailboxes).
    pub fn peek_info(&self) -> Result<Option<MailboxInfo>, StoreError> {
        self.peek(query_info)
    }

    pub fn folders(&self) -> Result<Vec<Folder>, StoreError> {
        self.read(|c| folder_rows(c, true))
    }

    /// Finds a folder by path (`/Inbox/sub`, case-insensitive, leading slash optional).
    /// Counts the items of that folder only: counting every folder's reads
    /// every item of the mailbox, which a lookup by path need not pay.
    pub fn folder_by_path(&self, path: &str) -> Result<Option<Folder>, StoreError> {
        let want = normalize_path(path);
        self.read(|c| {
            let Some(mut f) = folder_rows(c, false)?
                .into_iter()
                .find(|f| f.path.eq_ignore_ascii_case(&want))
            else {
                return Ok(None);
            };
            let (items, unread): (i64, i64) = c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(type = 5 AND (flags & 1) = 0), 0) \
                 FROM item WHERE folder_id = ?1",
                [f.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            f.item_count = items as u64;
            f.unread_count = unread as u64;
            Ok(Some(f))
        })
    }

    pub fn tags(&self) -> Result<Vec<Tag>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, name, color, change FROM tag ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(Tag {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    color: r.get(2)?,
                    change: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    /// IMAP subscriptions, sorted by name.
    pub fn subscriptions(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT name FROM subscription ORDER BY name")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Items, optionally of one folder and/or one type, ordered by id.
    pub fn items(
        &self,
        folder: Option<u32>,
        kind: Option<ItemKind>,
    ) -> Result<Vec<Item>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM item WHERE (?1 IS NULL OR folder_id = ?1) AND (?2 IS NULL OR type = ?2) \
                 ORDER BY id"
            ))?;
            let rows = st.query_map(params![folder, kind], item_from_row)?;
            rows.collect()
        })
    }

    pub fn messages(&self, folder: u32) -> Result<Vec<Item>, StoreError> {
        self.items(Some(folder), Some(ItemKind::Message))
    }

    pub fn contacts(&self) -> Result<Vec<Item>, StoreError> {
        self.items(None, Some(ItemKind::Contact))
    }

    pub fn appointments(&self) -> Result<Vec<Item>, StoreError> {
        self.items(None, Some(ItemKind::Appointment))
    }

    pub fn item(&self, id: ItemId) -> Result<Option<Item>, StoreError> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM item WHERE id = ?1"),
                [id.0],
                item_from_row,
            )
            .optional()
        })
    }

    /// Whether a message with this content digest was received at or after
    /// `since`: LMTP asks before delivering a list's message to a member again
    /// (a retry after some members could not take it), so a member gets one copy.
    pub fn holds_message_since(
        &self,
        digest: &mv_types::Digest,
        since: mv_types::UtcMillis,
    ) -> Result<bool, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT 1 FROM item WHERE digest = ?1 AND type = ?2 AND received_ms >= ?3 LIMIT 1",
                params![&digest.0[..], ItemKind::Message, since.0],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }

    /// The mailbox's change number: it moves with every applied change, so a
    /// protocol session polls it to notice other sessions' writes.
    pub fn change_number(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(c.query_row("SELECT applied_change FROM meta", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .unwrap_or(0) as u64)
        })
    }

    /// A folder's messages in IMAP UID order (the IMAP sequence order).
    pub fn messages_by_uid(&self, folder: u32) -> Result<Vec<Item>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM item WHERE folder_id = ?1 AND type = ?2 ORDER BY imap_uid"
            ))?;
            let rows = st.query_map(params![folder, ItemKind::Message], item_from_row)?;
            rows.collect()
        })
    }

    /// The messages of a folder with UIDs in `first..=last`, in UID order (one
    /// query for a batch of IMAP FETCH).
    pub fn messages_by_uid_range(
        &self,
        folder: u32,
        first: u32,
        last: u32,
    ) -> Result<Vec<Item>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM item WHERE folder_id = ?1 AND type = ?2 \
                 AND imap_uid BETWEEN ?3 AND ?4 ORDER BY imap_uid"
            ))?;
            let rows = st.query_map(
                params![folder, ItemKind::Message, first, last],
                item_from_row,
            )?;
            rows.collect()
        })
    }

    /// The message with IMAP UID `uid` in a folder.
    pub fn message_by_uid(&self, folder: u32, uid: u32) -> Result<Option<Item>, StoreError> {
        self.read(|c| {
            c.query_row(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM item WHERE folder_id = ?1 AND imap_uid = ?2 AND type = ?3"
                ),
                params![folder, uid, ItemKind::Message],
                item_from_row,
            )
            .optional()
        })
    }

    /// Everything changed after `since`, read under one lock so the three agree: the
    /// applied change number, items whose change is later, and later tombstones.
    /// (The search indexer's incremental update.)
    pub fn changes_since(&self, since: u64) -> Result<Changes, StoreError> {
        self.read(|c| {
            let applied = c
                .query_row("SELECT applied_change FROM meta", [], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .unwrap_or(0) as u64;
            let mut st = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM item WHERE change > ?1 ORDER BY id"
            ))?;
            let items = st
                .query_map([since as i64], item_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut st =
                c.prepare("SELECT DISTINCT id FROM tombstone WHERE change > ?1 ORDER BY id")?;
            let deleted = st
                .query_map([since as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<u32>>>()?;
            Ok(Changes {
                applied_change: applied,
                items,
                deleted,
            })
        })
    }

    /// Tombstones recorded after `since` (IMAP QRESYNC / sync clients).
    pub fn tombstones_since(&self, since: u64) -> Result<Vec<Tombstone>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT change, id, type, folder_id, imap_uid FROM tombstone WHERE change > ?1 ORDER BY change, id",
            )?;
            let rows = st.query_map([since as i64], |r| {
                Ok(Tombstone {
                    change: r.get::<_, i64>(0)? as u64,
                    id: r.get(1)?,
                    kind: r.get(2)?,
                    folder_id: r.get(3)?,
                    imap_uid: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

/// The `meta` row and message count ([`Mailbox::info`], [`Mailbox::peek_info`]).
fn query_info(c: &Connection) -> rusqlite::Result<Option<MailboxInfo>> {
    c.query_row(
        "SELECT mailbox_id, account_id, email, applied_change, next_item_id, size_used, created_ms, \
         deleted, (SELECT COUNT(*) FROM item WHERE type = 5) FROM meta",
        [],
        |r| {
            Ok(MailboxInfo {
                mailbox_id: r.get(0)?,
                account_id: r.get(1)?,
                email: r.get(2)?,
                applied_change: r.get::<_, i64>(3)? as u64,
                next_item_id: r.get(4)?,
                size_used: r.get::<_, i64>(5)? as u64,
                created_ms: r.get(6)?,
                deleted: r.get::<_, i64>(7)? != 0,
                message_count: r.get::<_, i64>(8)? as u64,
            })
        },
    )
    .optional()
}

/// The write lock of one mailbox with its open database.
pub(crate) struct MailboxGuard<'a> {
    pub(crate) id: MailboxId,
    guard: MutexGuard<'a, Option<Connection>>,
    unsynced: &'a AtomicBool,
    created: &'a Created,
}

impl Drop for MailboxGuard<'_> {
    fn drop(&mut self) {
        // After the last write under this lock: see `Mailbox::unsynced`.
        if self.guard.is_some() {
            self.unsynced.store(true, Ordering::Release);
        }
    }
}

impl MailboxGuard<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        self.guard.as_ref().expect("opened by lock()")
    }

    /// False for a guard of [`Mailbox::lock_unopened`] on a mailbox without a
    /// database.
    pub(crate) fn has_conn(&self) -> bool {
        self.guard.is_some()
    }

    /// Where a mailbox without a database keeps its creation.
    pub(crate) fn created(&self) -> &Created {
        self.created
    }

    /// After a write into the database, before its redo ticket is released:
    /// the next checkpoint must fsync it. Marking only when the lock was taken
    /// and released was not enough: a rollover's checkpoint run by the writer's
    /// own append (the lock held, nothing written yet) took the mark, and a
    /// checkpoint between the write and the release of the lock (a backup's
    /// rollover) then skipped the database while it claimed the write's record.
    pub(crate) fn mark_written(&self) {
        self.unsynced.store(true, Ordering::Release);
    }
    /// The mailbox's applied change number, 0 before CreateMailbox.
    pub(crate) fn applied_change(&self) -> Result<u64, StoreError> {
        match self.guard.as_ref() {
            Some(conn) => Ok(crate::apply::applied_change(conn)
                .map_err(|e| StoreError::sql_msg(self.id, e))?
                .unwrap_or(0)),
            None => Ok(self.created.get(self.id)?.map_or(0, |p| p.change)),
        }
    }
}

/// What [`Mailbox::changes_since`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub applied_change: u64,
    /// Items added or modified (flags, tags, folder, content), ordered by id.
    pub items: Vec<Item>,
    /// Ids of removed items (an id may also be in `items` when it was moved).
    pub deleted: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxInfo {
    pub mailbox_id: u32,
    pub account_id: String,
    pub email: String,
    pub applied_change: u64,
    pub next_item_id: u32,
    pub size_used: u64,
    pub created_ms: i64,
    pub deleted: bool,
    pub message_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Folder {
    pub id: u32,
    pub parent_id: u32,
    pub name: String,
    pub view: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub modseq: u64,
    pub change: u64,
    pub item_count: u64,
    pub unread_count: u64,
    /// Absolute path, `/` for the root, `/Inbox/sub` below it.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    pub id: u32,
    pub name: String,
    pub color: u32,
    pub change: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub id: u32,
    pub kind: ItemKind,
    pub folder_id: u32,
    pub imap_uid: u32,
    pub digest: Option<String>,
    pub size: u64,
    pub received_ms: i64,
    pub flags: u32,
    pub tags: Vec<u32>,
    pub subject: String,
    pub sender: String,
    pub recipients: String,
    pub cc: String,
    pub message_id: String,
    pub date_ms: i64,
    /// vCard or iCalendar text for contacts and appointments.
    pub content: Option<String>,
    pub cal_uid: Option<String>,
    pub sequence: i64,
    pub dtstamp_ms: i64,
    pub volume_id: u16,
    pub mod_content: u64,
    pub change: u64,
    /// Header lines stored in the database before the blob's bytes (the trace
    /// headers of a delivery, per recipient): the message is `prefix` followed
    /// by the blob, and `size` counts both. Empty for most messages.
    #[serde(skip)]
    pub prefix: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tombstone {
    pub change: u64,
    pub id: u32,
    pub kind: ItemKind,
    pub folder_id: u32,
    pub imap_uid: u32,
}

const ITEM_COLUMNS: &str = "id, type, folder_id, imap_uid, digest, size, received_ms, flags, tags, subject, sender, \
    recipients, cc, message_id, date_ms, content, cal_uid, sequence, dtstamp_ms, volume_id, mod_content, change, prefix";

fn item_from_row(r: &rusqlite::Row) -> rusqlite::Result<Item> {
    let digest: Option<Vec<u8>> = r.get(4)?;
    Ok(Item {
        id: r.get(0)?,
        kind: r.get(1)?,
        folder_id: r.get(2)?,
        imap_uid: r.get(3)?,
        digest: digest
            .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
            .map(|d| mv_types::Digest(d).to_hex()),
        size: r.get::<_, i64>(5)? as u64,
        received_ms: r.get(6)?,
        flags: r.get(7)?,
        tags: parse_tags(&r.get::<_, String>(8)?),
        subject: r.get(9)?,
        sender: r.get(10)?,
        recipients: r.get(11)?,
        cc: r.get(12)?,
        message_id: r.get(13)?,
        date_ms: r.get(14)?,
        content: r.get(15)?,
        cal_uid: r.get(16)?,
        sequence: r.get(17)?,
        dtstamp_ms: r.get(18)?,
        volume_id: r.get(19)?,
        mod_content: r.get::<_, i64>(20)? as u64,
        change: r.get::<_, i64>(21)? as u64,
        prefix: r.get::<_, Option<Vec<u8>>>(22)?.unwrap_or_default(),
    })
}

fn folder_path(folders: &[Folder], id: u32) -> String {
    let mut parts = Vec::new();
    let mut cur = id;
    for _ in 0..256 {
        let Some(f) = folders.iter().find(|f| f.id == cur) else {
            break;
        };
        if f.id == mv_redo::ops::folders::ROOT {
            break;
        }
        parts.push(f.name.clone());
        cur = f.parent_id;
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// A folder path in its one spelling: a leading `/`, no empty or trailing parts.
pub fn normalize_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// Every folder with its path; with `counts`, its items and unread messages
/// (else 0: counting reads every item of the mailbox).
fn folder_rows(c: &rusqlite::Connection, counts: bool) -> rusqlite::Result<Vec<Folder>> {
    let counted = if counts {
        "(SELECT COUNT(*) FROM item i WHERE i.folder_id = f.id), \
         (SELECT COUNT(*) FROM item i WHERE i.folder_id = f.id AND i.type = 5 AND (i.flags & 1) = 0)"
    } else {
        "0, 0"
    };
    let mut st = c.prepare(&format!(
        "SELECT f.id, f.parent_id, f.name, f.view, f.uid_validity, f.uid_next, f.modseq, f.change, \
         {counted} FROM folder f ORDER BY f.id"
    ))?;
    let rows = st.query_map([], |r| {
        Ok(Folder {
            id: r.get(0)?,
            parent_id: r.get(1)?,
            name: r.get(2)?,
            view: r.get(3)?,
            uid_validity: r.get(4)?,
            uid_next: r.get(5)?,
            modseq: r.get::<_, i64>(6)? as u64,
            change: r.get::<_, i64>(7)? as u64,
            item_count: r.get::<_, i64>(8)? as u64,
            unread_count: r.get::<_, i64>(9)? as u64,
            path: String::new(),
        })
    })?;
    let mut folders: Vec<Folder> = rows.collect::<Result<_, _>>()?;
    let paths: Vec<String> = folders
        .iter()
        .map(|f| folder_path(&folders, f.id))
        .collect();
    for (f, p) in folders.iter_mut().zip(paths) {
        f.path = p;
    }
    Ok(folders)
}
