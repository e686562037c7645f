//! The store: the redo log, the blob store and the mailboxes of one home, and the
//! write path every change takes (plan under the mailbox lock → log → durable →
//! apply → release). Opening with crash recovery, checkpoints and the close are
//! in `store/recovery.rs`.

mod recovery;
mod scratch;

pub use recovery::{GC_CLEAN, OpenReport};

use crate::StoreError;
use crate::apply::{self, ApplyCtx, Staged};
use crate::blob::BlobStore;
use crate::created::Created;
use crate::handles::{MailboxMap, MailboxPin, OpenHandles};
use crate::mailbox::{Mailbox, MailboxGuard};
use crate::pending::PendingWork;
use mv_home::Home;
use mv_redo::{NewRecord, Op, Record, RedoConfig, RedoLog};
use mv_types::{ChangeNumber, Digest, ItemId, MailboxId, UtcMillis};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub redo: RedoConfig,
    /// Each mailbox database is opened in SQLite's exclusive locking mode: its
    /// one connection keeps the database's file lock from first use to close and
    /// holds the log's index in its own memory, so no `-shm` file is created,
    /// mapped and deleted per mailbox and no lock is taken per transaction. For an
    /// offline tool that reads and writes mailboxes only through the store
    /// (`playredo`): a replay of small changes into 200 mailboxes spent about a
    /// tenth of its time on those files and locks. A second connection to a database (a backup's
    /// snapshot) cannot read it meanwhile, so the server never sets this.
    pub exclusive_databases: bool,
    /// Mailbox databases kept open at once (see `handles`): past it, the least
    /// recently used idle ones are closed.
    pub open_mailboxes: usize,
}

impl StoreOptions {
    pub fn for_home(home: &Home) -> StoreOptions {
        StoreOptions {
            redo: RedoConfig::for_dir(&home.redolog_dir()),
            exclusive_databases: false,
            open_mailboxes: crate::handles::DEFAULT_OPEN_MAILBOXES,
        }
    }

    /// [`StoreOptions::for_home`] with what the home's local config sets
    /// (`mailbox_open_handles`), checked.
    pub fn from_home(home: &Home) -> Result<StoreOptions, StoreError> {
        let cfg = home.open()?;
        let mut options = StoreOptions::for_home(home);
        if let Some(v) = cfg.get(OPEN_HANDLES_KEY) {
            options.open_mailboxes = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "local config {OPEN_HANDLES_KEY} = {v:?}: expected a whole number from 1 to 1000000"
                    ))
                })?;
        }
        Ok(options)
    }
}

/// The local config key of [`StoreOptions::open_mailboxes`].
const OPEN_HANDLES_KEY: &str = "mailbox_open_handles";

/// Counts from a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub applied: u64,
    pub skipped_already_applied: u64,
    pub skipped_filtered: u64,
    /// Messages whose content was staged from the log (only those of records
    /// applied need it).
    pub staged: u64,
    pub mailboxes: Vec<u32>,
}

/// A mail store opened on a home.
/// Called with the id of each mailbox changed ([`Store::on_change`]).
pub type ChangeHook = Box<dyn Fn(MailboxId) + Send + Sync>;

pub struct Store {
    home: Home,
    redo: Arc<RedoLog>,
    blobs: Arc<BlobStore>,
    mailboxes: Arc<MailboxMap>,
    /// The bound on open mailbox databases.
    handles: Arc<OpenHandles>,
    /// Mailboxes created and not used yet (see `created`).
    created: Arc<Created>,
    /// Mailboxes changed since the search indexer last looked (see `pending`).
    pending: Arc<PendingWork>,
    /// Told of every change applied, after it is applied (see
    /// [`Store::on_change`]).
    change_hook: std::sync::OnceLock<ChangeHook>,
    /// How long each mailbox's deleted messages stay in its dumpster (see
    /// [`Store::set_dumpster_policy`]); unset: deletes remove at once.
    pub(crate) dumpster: std::sync::OnceLock<crate::write::DumpsterPolicy>,
    /// See [`StoreOptions::exclusive_databases`].
    exclusive_databases: bool,
    /// Crash recovery finished: until then no checkpoint is recorded. A
    /// recovery that failed (a change gap) drops the store, and a checkpoint
    /// recorded at that close would claim the records it could not apply, so
    /// that the next start skipped them (and hid which checkpoint recovery had
    /// started from).
    recovered: std::sync::atomic::AtomicBool,
    /// A warm standby's store: replay applies, live writes are refused.
    read_only: std::sync::atomic::AtomicBool,
}

impl Store {
    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn redo(&self) -> &Arc<RedoLog> {
        &self.redo
    }

    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// Mailboxes created and not used yet.
    pub(crate) fn created(&self) -> &Created {
        &self.created
    }

    /// The mailbox handles made so far (opened or not), outside the map's lock.
    fn handles(&self) -> Vec<Arc<Mailbox>> {
        self.mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// How many mailboxes were created and wait for their first use (no
    /// database yet).
    pub fn unopened_mailbox_count(&self) -> Result<u64, StoreError> {
        self.created.count()
    }

    /// How many mailbox handles this store holds (`mailvault_mailbox_handles`).
    pub fn handle_count(&self) -> usize {
        self.mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Mailbox databases open now (`mailvault_mailbox_open`), at most about
    /// [`Store::open_capacity`] (pinned and busy ones may exceed it for a while).
    pub fn open_mailbox_count(&self) -> usize {
        self.handles.open_count()
    }

    /// The configured bound on open mailbox databases.
    pub fn open_capacity(&self) -> usize {
        self.handles.capacity()
    }

    /// Mailbox databases closed to stay within the bound since the store opened.
    pub fn mailbox_evictions(&self) -> u64 {
        self.handles.evictions()
    }

    /// The handle of a mailbox (its database is opened on first use, and closed
    /// again by the handle cache when it has been idle the longest).
    pub fn mailbox(&self, id: MailboxId) -> Arc<Mailbox> {
        let mut map = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| {
                Arc::new(Mailbox::new(
                    id,
                    &self.home.mailbox_db_dir(),
                    self.exclusive_databases,
                    self.handles.clone(),
                    self.created.clone(),
                ))
            })
            .clone()
    }

    /// Sets the one observer of changes: `hook` is called with a mailbox's id
    /// after each record applied to it (live or replayed: it is the apply
    /// path's, so nothing that changes a mailbox bypasses it) and after a
    /// restored database replaces it. It runs under the mailbox's write lock,
    /// so it must only signal (an IMAP IDLE session waits on it instead of
    /// polling); a reader it wakes sees the change once the lock is released.
    /// A second call is refused: the hook belongs to whoever serves the store.
    pub fn on_change(&self, hook: ChangeHook) -> Result<(), StoreError> {
        self.change_hook
            .set(hook)
            .map_err(|_| StoreError::Invalid("the store's change hook is already set".into()))
    }

    /// A mailbox changed: the indexer's list and the change hook hear of it.
    fn changed(&self, id: MailboxId) {
        self.pending.note(id);
        if let Some(hook) = self.change_hook.get() {
            hook(id);
        }
    }

    /// Keeps a mailbox's database open while the pin lives (an IMAP session's
    /// account): the handle cache closes only unpinned ones.
    pub fn pin(&self, id: MailboxId) -> MailboxPin {
        MailboxPin::new(self.mailbox(id))
    }

    /// Replaces a mailbox's database with `new_db` (a restore built it beside the
    /// store): under the mailbox's write lock, the open connection is closed, the old
    /// database's `-wal`/`-shm` files are removed, `new_db` is renamed over it and
    /// the directory is synced. The next use reopens it. `new_db` must be closed
    /// (no `-wal` of its own left) and on the same file system.
    ///
    /// The caller owns the redo consequences: the log still holds the replaced
    /// history of this mailbox id.
    pub fn swap_in_mailbox(&self, id: MailboxId, new_db: &Path) -> Result<(), StoreError> {
        let side = |p: &Path, suffix: &str| {
            let mut s = p.as_os_str().to_owned();
            s.push(suffix);
            std::path::PathBuf::from(s)
        };
        let new_wal = side(new_db, "-wal");
        if std::fs::metadata(&new_wal).is_ok_and(|m| m.len() > 0) {
            return Err(StoreError::Invalid(format!(
                "{}: still open (it has a write-ahead log {})",
                new_db.display(),
                new_wal.display()
            )));
        }
        if !new_db.is_file() {
            return Err(StoreError::io(
                new_db,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let mbox = self.mailbox(id);
        let mut guard = mbox.conn.lock().unwrap_or_else(|p| p.into_inner());
        *guard = None; // closes (and checkpoints) the old database
        self.handles.closed(id);
        let path = mbox.db_path.clone();
        for f in [
            side(&path, "-wal"),
            side(&path, "-shm"),
            new_wal,
            side(new_db, "-shm"),
        ] {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&f, e)),
            }
        }
        if self.blobs.per_file() {
            // Its writer relied on a checkpoint of the whole filesystem.
            mv_home::syncmode::fsync_path(new_db).map_err(|e| StoreError::io(new_db, e))?;
        }
        std::fs::rename(new_db, &path).map_err(|e| StoreError::io(&path, e))?;
        if let Some(dir) = path.parent() {
            mv_home::fsync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        // The database wins over a creation still waiting for first use.
        self.created.remove(id)?;
        self.changed(id);
        // The mailbox's search index described the replaced history: dropped here,
        // under the lock, so that it is rebuilt from the new database.
        let index = self.home.mailbox_index_dir(id.0);
        if let Err(e) = std::fs::remove_dir_all(&index)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("{}: stale search index not removed: {e}", index.display());
        }
        drop(guard);
        Ok(())
    }

    /// Mailbox ids with a database in this home (deleted ones included).
    pub fn mailbox_ids(&self) -> Result<Vec<MailboxId>, StoreError> {
        let dir = self.home.mailbox_db_dir();
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".sqlite").and_then(|n| n.parse().ok()) {
                ids.push(MailboxId(id));
            }
        }
        ids.sort();
        Ok(ids)
    }

    // ---- the write path ----------------------------------------------------

    /// Refuses every live write from now on (a warm standby: only replay
    /// changes its mailboxes, and nothing goes into its own redo log), or
    /// allows them again.
    pub fn set_read_only(&self, on: bool) {
        self.read_only
            .store(on, std::sync::atomic::Ordering::Release);
    }

    /// Logs and applies ops. `shared` are content records (mailbox 0); `ops` are
    /// per-mailbox ops, each mailbox's in order, for mailboxes whose write locks the
    /// caller holds in `guards`. Returns once every op is durable and applied.
    pub(crate) fn commit(
        &self,
        guards: &mut [MailboxGuard<'_>],
        shared: Vec<Op>,
        ops: Vec<(MailboxId, Op)>,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        if self.read_only.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::ReadOnly);
        }
        let now = UtcMillis::now();
        let txn = self.redo.next_txn_id();
        let mut next_change: HashMap<MailboxId, u64> = HashMap::new();
        for g in guards.iter() {
            next_change.insert(g.id, g.applied_change()? + 1);
        }
        let mut records = Vec::with_capacity(shared.len() + ops.len());
        for op in shared {
            records.push(NewRecord {
                txn,
                timestamp: now,
                mailbox: MailboxId(0),
                change: ChangeNumber(0),
                op,
            });
        }
        let mut planned = Vec::with_capacity(ops.len());
        for (mbox, op) in ops {
            let slot = next_change
                .get_mut(&mbox)
                .ok_or(StoreError::NotLocked(mbox))?;
            let change = ChangeNumber(*slot);
            *slot += 1;
            planned.push((mbox, change, op.clone()));
            records.push(NewRecord {
                txn,
                timestamp: now,
                mailbox: mbox,
                change,
                op,
            });
        }
        let ticket = self.redo.append(records)?;
        self.redo.wait_durable(&ticket)?;
        let mut swept = false;
        for (mbox, change, op) in &planned {
            let g = guards
                .iter_mut()
                .find(|g| g.id == *mbox)
                .ok_or(StoreError::NotLocked(*mbox))?;
            self.apply_one(g, *change, now, op, staged)?;
            if matches!(
                op,
                Op::DeleteItems(_)
                    | Op::DeleteFolder(_)
                    | Op::DeleteMailbox(_)
                    | Op::SetCalendarItem(_)
                    | Op::PurgeDumpster(_)
            ) {
                swept = true;
            }
        }
        // Released only after every record is applied (rollover waits for this).
        drop(ticket);
        if swept {
            for g in guards.iter_mut() {
                self.sweep(g)?;
            }
        }
        Ok(())
    }

    /// Applies one record in its own savepoint: alone (a live write) that is the
    /// record's transaction; inside a replay's open batch transaction it nests, so
    /// a record that fails leaves no trace while the batch goes on.
    pub(crate) fn apply_one(
        &self,
        g: &mut MailboxGuard<'_>,
        change: ChangeNumber,
        timestamp: UtcMillis,
        op: &Op,
        staged: &Staged,
    ) -> Result<(), StoreError> {
        let id = g.id;
        if !g.has_conn() {
            // A mailbox without a database: only its creation can apply, and
            // it waits for the first use (see `created`). Nothing to index yet.
            return match op {
                Op::CreateMailbox(c) => g.created().insert(id, change, timestamp, c),
                _ => Err(StoreError::NoMailbox(id)),
            };
        }
        let sql = |e| StoreError::sql(&self.mailbox(id).db_path, e);
        let sp = RecordSavepoint::begin(g.conn()).map_err(sql)?;
        let ctx = ApplyCtx {
            mailbox: id,
            change,
            timestamp,
            blobs: &self.blobs,
            staged,
        };
        apply::apply(sp.conn, &ctx, op)?;
        sp.release().map_err(sql)?;
        g.mark_written();
        self.changed(id);
        Ok(())
    }

    /// Removes queued blob files no running backup can still need.
    /// Not inside an open transaction: the rows it queued may yet be rolled back
    /// (a batch replay that never finished), and their blobs are then still
    /// referenced; they wait for a sweep after the commit.
    pub(crate) fn sweep(&self, g: &mut MailboxGuard<'_>) -> Result<(), StoreError> {
        if !g.conn().is_autocommit() {
            return Ok(());
        }
        let db = self.mailbox(g.id).db_path.clone();
        let rows: Vec<(String, i64)> = {
            let mut st = g
                .conn()
                .prepare("SELECT path, deleted_ms FROM blob_gc")
                .map_err(|e| StoreError::sql(&db, e))?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| StoreError::sql(&db, e))?
        };
        let removable: Vec<String> = rows
            .into_iter()
            .filter(|(_, deleted_ms)| self.blobs.may_remove(UtcMillis(*deleted_ms)))
            .map(|(path, _)| path)
            .collect();
        if removable.is_empty() {
            return Ok(());
        }
        // One transaction for the rows (one commit each was one write-ahead log
        // append each). The files go first: a crash in between leaves rows whose
        // files are gone, which the next sweep removes without complaint.
        for path in &removable {
            self.blobs.remove(std::path::Path::new(path))?;
        }
        let sql = |e| StoreError::sql(&db, e);
        let tx = g.conn().unchecked_transaction().map_err(sql)?;
        {
            let mut st = tx
                .prepare_cached("DELETE FROM blob_gc WHERE path = ?1")
                .map_err(sql)?;
            for path in &removable {
                st.execute([path]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        Ok(())
    }

    // ---- replay --------------------------------------------------------------

    /// Replays redo records through the one apply path: content records are staged,
    /// mailbox records applied iff their change is above the mailbox's applied
    /// change. `filter` selects mailboxes (restore of some accounts).
    pub fn replay<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Record>,
        filter: &dyn Fn(MailboxId) -> bool,
    ) -> Result<ReplayReport, StoreError> {
        self.replay_records(records.into_iter(), filter, false)
    }

    fn replay_records<'a>(
        &self,
        records: impl Iterator<Item = &'a Record>,
        filter: &dyn Fn(MailboxId) -> bool,
        recovering: bool,
    ) -> Result<ReplayReport, StoreError> {
        let mut staged = Staged::default();
        let mut replayer = self.replayer();
        // Crash recovery runs before the start-up sweep of every mailbox.
        replayer.sweep = !recovering;
        let mut skipped_filtered = 0;
        // Content records are staged only when a record that will be applied uses
        // them: after a clean stop, the current log's records are all applied
        // already, and staging their messages would write them all again.
        let mut content: HashMap<[u8; 32], &Record> = HashMap::new();
        let result = (|| -> Result<(), StoreError> {
            for rec in records {
                if rec.mailbox.0 == 0 {
                    if let Op::PutBlob(p) = &rec.op {
                        content.insert(p.digest, rec);
                    }
                    continue;
                }
                if !filter(rec.mailbox) {
                    skipped_filtered += 1;
                    continue;
                }
                if recovering {
                    // Changed after the recorded checkpoint, applied again
                    // or not: the pending list the checkpoint wrote may not
                    // have it (see `pending`).
                    self.pending.note(rec.mailbox);
                }
                if let Some(d) = rec.op.referenced_digest()
                    && !staged.contains(&Digest(d))
                    && let Some(c) = content.get(&d)
                    && replayer.will_apply(rec)?
                {
                    replayer.stage(c, &mut staged)?;
                }
                replayer.apply(rec, &staged)?;
            }
            Ok(())
        })();
        // What was applied is committed whether or not a later record failed.
        let finished = replayer.finish();
        let mut staged_count = 0;
        for p in staged.paths() {
            staged_count += 1;
            let _ = self.blobs.remove(p);
        }
        result?;
        let mut report = finished?;
        report.skipped_filtered = skipped_filtered;
        report.staged = staged_count;
        Ok(report)
    }

    /// Reads a message's bytes: its prefix (see [`crate::Item::prefix`]) and
    /// then its blob, verified against its digest.
    pub fn read_blob(&self, mailbox: MailboxId, item: &crate::Item) -> Result<Vec<u8>, StoreError> {
        let digest: Digest =
            item.digest
                .as_deref()
                .and_then(|d| d.parse().ok())
                .ok_or(StoreError::NoContent {
                    mailbox,
                    item: item.id,
                })?;
        let path = self
            .blobs
            .blob_path(item.volume_id, mailbox, ItemId(item.id), item.mod_content);
        let body = self.blobs.read_verified(&path, &digest)?;
        Ok(crate::prefix::join(&item.prefix, body))
    }

    /// A message's header section (up to and including the empty line; the whole
    /// message if it has none), read from the start of its blob. Not verified
    /// against the digest, which covers the whole message: for reads that need
    /// the header only (IMAP ENVELOPE), where reading a large message whole would
    /// cost more than the answer is worth. Whole-message reads stay verified.
    pub fn read_blob_header(
        &self,
        mailbox: MailboxId,
        item: &crate::Item,
    ) -> Result<Vec<u8>, StoreError> {
        if item.digest.is_none() {
            return Err(StoreError::NoContent {
                mailbox,
                item: item.id,
            });
        }
        let path = self
            .blobs
            .blob_path(item.volume_id, mailbox, ItemId(item.id), item.mod_content);
        // The prefix is header lines: the header section starts with it.
        Ok(crate::prefix::join(
            &item.prefix,
            self.blobs.read_header(&path)?,
        ))
    }

    /// The searchable text of a message ([`crate::mime::message_text`]). A message
    /// whose blob cannot be read is searched by its metadata only (logged): search
    /// never fails on one damaged message.
    pub fn message_text(&self, mailbox: MailboxId, item: &crate::Item) -> crate::mime::MessageText {
        match self.read_blob(mailbox, item) {
            Ok(raw) => crate::mime::message_text(&raw),
            Err(e) => {
                tracing::warn!(
                    "mailbox {mailbox} item {}: text not searchable: {e}",
                    item.id
                );
                crate::mime::MessageText::default()
            }
        }
    }

    /// Messages matching a `zmmailbox s` query, newest first, by scanning every
    /// message (the reference path; `mv-index` gives the same answer faster).
    pub fn search(&self, mailbox: MailboxId, query: &str) -> Result<Vec<crate::Item>, StoreError> {
        let terms = crate::search::parse(query).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.mailbox(mailbox)
            .search_with(&terms, None, &mut |i| self.message_text(mailbox, i))
    }

    /// Where a message's blob lives.
    pub fn blob_path(&self, mailbox: MailboxId, item: &crate::Item) -> PathBuf {
        self.blobs
            .blob_path(item.volume_id, mailbox, ItemId(item.id), item.mod_content)
    }
}

/// The savepoint of one record, through statements prepared once per connection
/// (rusqlite's `Savepoint` parses its `SAVEPOINT`/`RELEASE` on every record).
/// Dropped without [`RecordSavepoint::release`] (an error or a panic in apply),
/// it rolls the record back.
struct RecordSavepoint<'c> {
    conn: &'c rusqlite::Connection,
    released: bool,
}

impl<'c> RecordSavepoint<'c> {
    fn run(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    fn begin(conn: &'c rusqlite::Connection) -> rusqlite::Result<Self> {
        Self::run(conn, "SAVEPOINT apply_record")?;
        Ok(RecordSavepoint {
            conn,
            released: false,
        })
    }

    fn release(mut self) -> rusqlite::Result<()> {
        self.released = true;
        Self::run(self.conn, "RELEASE apply_record")
    }
}

impl Drop for RecordSavepoint<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = Self::run(self.conn, "ROLLBACK TO apply_record");
            let _ = Self::run(self.conn, "RELEASE apply_record");
        }
    }
}
