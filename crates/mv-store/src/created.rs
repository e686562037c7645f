//! Mailboxes created and not used yet: their database is made on first use.
//!
//! Creating an account must not cost a SQLite database of its own (a file, its
//! schema, its fsyncs): 10,000 `zmprov ca` lines spent nearly all their time
//! there, and most accounts of a server stay idle. So applying a
//! `CreateMailbox` record to a mailbox without a database writes one row here
//! (`db/mbox/created.db`, one small database for all of them) holding what
//! the record carries. The record is the mailbox's history as before; the row
//! is where its apply waits.
//!
//! The mailbox's database is made from the row when the mailbox is first locked
//! for a write ([`Created::materialize`]: the same [`apply::apply`] of the same
//! record, change number and time, into a file under a temporary name, fsynced
//! and renamed into place, its directory fsynced), so it is the database an
//! eager creation would have made. Reads of a mailbox that has only its row
//! ([`Created::in_memory`]) run against that same database built in memory:
//! an empty mailbox with the default folders, nothing written.
//!
//! Crash rules: the row is written like a mailbox database, unsynced
//! (`synchronous=NORMAL`), and a checkpoint syncs it before it claims the
//! record; a lost row is rebuilt by replaying the record (its change is above
//! the mailbox's applied change, 0 without row or database). A database file,
//! once renamed into place, wins over a row: the row is removed after the
//! rename without a sync, and a row left by a crash then is never read again
//! (mailbox databases are never removed). A crash before the rename leaves
//! the temporary file, which the next first use removes.

use crate::apply::{self, ApplyCtx, Staged};
use crate::blob::BlobStore;
use crate::{StoreError, schema};
use mv_redo::ops::{self, Op};
use mv_types::{ChangeNumber, MailboxId, UtcMillis};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The file, in the mailbox database directory (not `<id>.sqlite`: nothing
/// that lists mailbox databases takes it for one).
pub const CREATED_FILE: &str = "created.db";

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS created (
        mailbox_id   INTEGER PRIMARY KEY,
        account_id   TEXT    NOT NULL,
        email        TEXT    NOT NULL,
        uid_validity INTEGER NOT NULL,
        change       INTEGER NOT NULL,
        created_ms   INTEGER NOT NULL
    );
";

/// One created mailbox's `CreateMailbox` record, waiting for first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) op: ops::CreateMailbox,
    pub(crate) change: u64,
    pub(crate) created_ms: i64,
}

/// The created-not-used mailboxes of a store.
pub(crate) struct Created {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Written since the last checkpoint (see [`Created::sync_if_written`]).
    unsynced: AtomicBool,
    /// For the apply context (a `CreateMailbox` touches no blob).
    blobs: Arc<BlobStore>,
}

impl Created {
    /// Opens (or makes) the file; `exclusive` as the store's mailbox
    /// databases (see `StoreOptions::exclusive_databases`).
    pub(crate) fn open(
        db_dir: &Path,
        blobs: Arc<BlobStore>,
        exclusive: bool,
    ) -> Result<Created, StoreError> {
        let path = db_dir.join(CREATED_FILE);
        let sql = |e| StoreError::sql(&path, e);
        let conn = Connection::open(&path).map_err(sql)?;
        if exclusive {
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .map_err(sql)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", schema::SYNCHRONOUS)
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Created {
            path,
            conn: Mutex::new(conn),
            unsynced: AtomicBool::new(true),
            blobs,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sql(&self.path, e)
    }

    /// The waiting record of a mailbox, if it has one.
    pub(crate) fn get(&self, id: MailboxId) -> Result<Option<Pending>, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT account_id, email, uid_validity, change, created_ms FROM created WHERE mailbox_id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([id.0], |r| {
                Ok(Pending {
                    op: ops::CreateMailbox {
                        account_id: r.get(0)?,
                        email: r.get(1)?,
                        uid_validity: r.get(2)?,
                    },
                    change: r.get::<_, i64>(3)? as u64,
                    created_ms: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(|e| self.sql(e))
    }

    /// How many mailboxes wait for their first use.
    pub(crate) fn count(&self) -> Result<u64, StoreError> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM created", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// The apply of a `CreateMailbox` record to a mailbox without a database
    /// (the caller holds its lock and found no database file).
    pub(crate) fn insert(
        &self,
        id: MailboxId,
        change: ChangeNumber,
        timestamp: UtcMillis,
        op: &ops::CreateMailbox,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let inserted = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO created (mailbox_id, account_id, email, uid_validity, change, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id.0,
                    op.account_id,
                    op.email,
                    op.uid_validity,
                    change.0 as i64,
                    timestamp.0
                ])
            })
            .map_err(|e| self.sql(e))?;
        self.unsynced.store(true, Ordering::Release);
        if inserted == 0 {
            return Err(apply::ApplyError::Inconsistent {
                op: "CreateMailbox",
                change: change.0,
                mailbox: id.0,
                reason: "the mailbox already exists".into(),
            }
            .into());
        }
        Ok(())
    }

    /// Forgets a mailbox's row once its database is in place (not synced: the
    /// database wins over a row a crash brings back).
    pub(crate) fn remove(&self, id: MailboxId) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM created WHERE mailbox_id = ?1")
            .and_then(|mut st| st.execute([id.0]))
            .map_err(|e| self.sql(e))?;
        self.unsynced.store(true, Ordering::Release);
        Ok(())
    }

    /// Applies the waiting record to `conn` (a new, empty database) through the
    /// one apply path.
    fn build(&self, conn: &mut Connection, id: MailboxId, p: &Pending) -> Result<(), StoreError> {
        let name = format!("new mailbox {id}");
        schema::prepare(conn, &name)?;
        let sql = |e| StoreError::sql_msg(id, e);
        let tx = conn.transaction().map_err(sql)?;
        let staged = Staged::default();
        let ctx = ApplyCtx {
            mailbox: id,
            change: ChangeNumber(p.change),
            timestamp: UtcMillis(p.created_ms),
            blobs: &self.blobs,
            staged: &staged,
        };
        apply::apply(&tx, &ctx, &Op::CreateMailbox(p.op.clone()))?;
        tx.commit().map_err(sql)
    }

    /// The mailbox's database as its first use will make it, in memory: what a
    /// read of a created-not-used mailbox runs against. `None` without a row.
    pub(crate) fn in_memory(&self, id: MailboxId) -> Result<Option<Connection>, StoreError> {
        let Some(p) = self.get(id)? else {
            return Ok(None);
        };
        let mut conn = Connection::open_in_memory().map_err(|e| StoreError::sql_msg(id, e))?;
        self.build(&mut conn, id, &p)?;
        Ok(Some(conn))
    }

    /// First use: makes the mailbox's database at `db_path` from its row.
    /// Returns false (nothing done) without a row. The caller holds the
    /// mailbox's lock, and no database file exists.
    pub(crate) fn materialize(&self, id: MailboxId, db_path: &Path) -> Result<bool, StoreError> {
        let Some(p) = self.get(id)? else {
            return Ok(false);
        };
        let mut tmp = db_path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut f = tmp.as_os_str().to_owned();
            f.push(suffix);
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(Path::new(&f), e)),
            }
        }
        {
            let sql = |e| StoreError::sql(&tmp, e);
            let mut conn = Connection::open(&tmp).map_err(sql)?;
            self.build(&mut conn, id, &p)?;
            // The close copies the log into the file and deletes it; the one
            // fsync below makes the file durable, before the rename.
            conn.pragma_update(None, "synchronous", "OFF")
                .map_err(sql)?;
            conn.close().map_err(|(_, e)| sql(e))?;
        }
        let io = |e| StoreError::io(&tmp, e);
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, db_path).map_err(|e| StoreError::io(db_path, e))?;
        if let Some(dir) = db_path.parent() {
            mv_home::fsync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        self.remove(id)?;
        Ok(true)
    }

    /// For a checkpoint that fsyncs file by file: the log and the file, if
    /// written since the last one. Returns whether it did.
    pub(crate) fn sync_if_written(&self) -> std::io::Result<bool> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let res = mv_home::syncmode::fsync_path(Path::new(&wal))
            .and_then(|()| mv_home::syncmode::fsync_path(&self.path));
        if res.is_err() {
            self.unsynced.store(true, Ordering::Release);
        }
        res.map(|()| true)
    }

    /// Writes the database file of a created-not-used mailbox to `dest` (a
    /// backup's snapshot of it): the database its first use would make.
    pub(crate) fn write_to(
        &self,
        id: MailboxId,
        dest: &Path,
    ) -> Result<Option<Pending>, StoreError> {
        let Some(p) = self.get(id)? else {
            return Ok(None);
        };
        let _ = std::fs::remove_file(dest);
        let sql = |e| StoreError::sql(dest, e);
        let mut conn = Connection::open(dest).map_err(sql)?;
        self.build(&mut conn, id, &p)?;
        // A snapshot is one file, made durable by its caller: the close copies
        // the log back into it, unsynced.
        conn.pragma_update(None, "synchronous", "OFF")
            .map_err(sql)?;
        conn.close().map_err(|(_, e)| sql(e))?;
        Ok(Some(p))
    }
}
