//! Opening a store and what keeps it recoverable: crash recovery at open (the
//! torn redo tail, records logged but not applied, blobs lost with unsynced
//! data), the sweep of queued blob removals at open and the clean-close marker,
//! checkpoints (the pending-work list and `created.db` rows made durable with
//! the blobs and the databases) and the close.

use super::{Store, StoreOptions};
use crate::StoreError;
use crate::blob::BlobStore;
use crate::created::Created;
use crate::handles::{MailboxMap, OpenHandles};
use crate::mailbox::Mailbox;
use crate::pending::{Pending, PendingWork};
use mv_home::Home;
use mv_redo::RedoLog;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What opening the store found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OpenReport {
    /// Bytes of a torn redo tail that were cut off (0 when the log was clean).
    pub truncated_bytes: u64,
    /// Records of the current redo log re-applied because the crash came before
    /// their database commit was durable.
    pub reapplied: u64,
    /// Blob files rewritten from the redo log because a crash lost them.
    pub blobs_repaired: u64,
}

/// In the mailbox database directory: no mailbox had a blob removal queued when
/// the store last closed cleanly (see `Store::sweep_at_open`).
pub const GC_CLEAN: &str = ".gc-clean";

impl Store {
    /// Opens the store of a home (initializing the home if needed) and recovers
    /// from a crash: truncates a torn redo tail, re-applies logged-but-unapplied
    /// records and repairs blobs lost with unsynced data.
    pub fn open(home: &Home, options: StoreOptions) -> Result<(Store, OpenReport), StoreError> {
        home.init()?;
        // The mailbox databases may sit on another filesystem than the blobs
        // (a home whose store/ is a mount of its own): checkpoints sync both.
        let blobs =
            Arc::new(BlobStore::open(&home.store_dir())?.sync_with(&home.mailbox_db_dir())?);
        blobs.log_durability();
        let pending = Arc::new(PendingWork::load(&home.mailbox_db_dir())?);
        let created = Arc::new(Created::open(
            &home.mailbox_db_dir(),
            blobs.clone(),
            options.exclusive_databases,
        )?);
        let mailboxes: Arc<MailboxMap> = Arc::new(Mutex::new(HashMap::new()));
        let handles = Arc::new(OpenHandles::new(
            options.open_mailboxes,
            Arc::downgrade(&mailboxes),
        ));
        handles.start_closer();
        let exclusive_databases = options.exclusive_databases;
        let (redo, recovery) = RedoLog::open(options.redo)?;
        let redo = Arc::new(redo);
        redo.set_checkpoint_hook(Box::new({
            let (blobs, mailboxes, created, pending) = (
                blobs.clone(),
                mailboxes.clone(),
                created.clone(),
                pending.clone(),
            );
            let db_dir = home.mailbox_db_dir();
            move || {
                sync_store(&blobs, &mailboxes, &created, &pending, &db_dir)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
        }));
        let store = Store {
            home: home.clone(),
            redo,
            blobs,
            mailboxes,
            handles,
            created,
            pending,
            change_hook: std::sync::OnceLock::new(),
            dumpster: std::sync::OnceLock::new(),
            exclusive_databases,
            recovered: std::sync::atomic::AtomicBool::new(false),
            read_only: std::sync::atomic::AtomicBool::new(false),
        };
        store.blobs.clear_staging()?;
        store.sweep_scratch()?;
        let mut report = OpenReport {
            truncated_bytes: recovery.truncated_bytes,
            ..Default::default()
        };
        let replay = store.replay_records(recovery.records.iter(), &|_| true, true)?;
        report.reapplied = replay.applied;
        report.blobs_repaired = store.repair_blobs(&recovery.records)?;
        store.sweep_at_open(report.reapplied > 0)?;
        store
            .recovered
            .store(true, std::sync::atomic::Ordering::Release);
        if report.reapplied > 0 || report.truncated_bytes > 0 || report.blobs_repaired > 0 {
            tracing::warn!(
                truncated_bytes = report.truncated_bytes,
                reapplied = report.reapplied,
                blobs_repaired = report.blobs_repaired,
                "crash recovery finished"
            );
        }
        Ok((store, report))
    }

    /// Takes the list of mailboxes changed since it was last taken (by the one
    /// background consumer, the search indexer): [`Pending::All`] when unknown
    /// (the first take after a crash). What the consumer does not finish it
    /// gives back ([`Store::give_back_pending`]).
    pub fn take_pending(&self) -> Pending {
        self.pending.take()
    }

    /// Returns work taken with [`Store::take_pending`] and not done.
    pub fn give_back_pending(&self, pending: Pending) {
        self.pending.give_back(pending)
    }

    /// Makes everything written so far durable (blobs and metadata), as before a
    /// redo log is archived, and, when no write was in flight as it began, records
    /// the redo position it covers (crash recovery starts there). Called at
    /// shutdown too.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let covered = self
            .recovered
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| self.redo.applied_position())
            .flatten();
        sync_store(
            &self.blobs,
            &self.mailboxes,
            &self.created,
            &self.pending,
            &self.home.mailbox_db_dir(),
        )?;
        if let Some(pos) = covered {
            self.redo.record_checkpoint(pos)?;
        }
        Ok(())
    }

    /// The start-up sweep: every mailbox, unless the last close left none with
    /// blob removals queued ([`GC_CLEAN`]) and recovery applied nothing (records it
    /// applies queue removals it does not sweep). Skipping it spares opening every
    /// mailbox database at every start. The marker is removed durably first: from
    /// now on removals may be queued, and only a clean close says they are not.
    fn sweep_at_open(&self, recovered: bool) -> Result<(), StoreError> {
        let dir = self.home.mailbox_db_dir();
        let marker = dir.join(GC_CLEAN);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker).map_err(|e| StoreError::io(&marker, e))?;
            mv_home::fsync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        if recovered || !clean {
            self.sweep_all()?;
        }
        Ok(())
    }

    /// At a clean close: sweeps the mailboxes this process wrote to or replaced
    /// (the others are as the start-up found them: swept) and, if none has a
    /// removal left queued, leaves [`GC_CLEAN`] for the next start. Nothing is
    /// lost without it: the next start sweeps every mailbox.
    fn mark_clean_at_close(&self) -> Result<(), StoreError> {
        if self.blobs.oldest_hold().is_some() {
            return Ok(());
        }
        for mbox in self.handles() {
            if !mbox.was_written() || !mbox.db_path().exists() {
                continue;
            }
            // A look first: most have nothing queued, and one the handle cache
            // closed is not reopened for it. (Inside a transaction the count
            // is at least the committed one: only a sweep removes rows, never
            // inside one.)
            let queued: i64 =
                mbox.peek(|c| c.query_row("SELECT COUNT(*) FROM blob_gc", [], |r| r.get(0)))?;
            if queued == 0 {
                continue;
            }
            let mut g = mbox.lock()?;
            if !g.conn().is_autocommit() {
                // Not swept (see `sweep`): the next start sweeps every mailbox.
                return Ok(());
            }
            self.sweep(&mut g)?;
            let left: i64 = g
                .conn()
                .query_row("SELECT COUNT(*) FROM blob_gc", [], |r| r.get(0))
                .map_err(|e| StoreError::sql(mbox.db_path(), e))?;
            if left > 0 {
                return Ok(());
            }
        }
        let dir = self.home.mailbox_db_dir();
        let marker = dir.join(GC_CLEAN);
        std::fs::write(&marker, b"").map_err(|e| StoreError::io(&marker, e))?;
        self.blobs.note_written(&marker);
        Ok(())
    }

    /// Between the close's two checkpoints: copies each open mailbox's
    /// write-ahead log into its database without a sync of its own. Closing a
    /// connection checkpoints its log and deletes it, and with
    /// `synchronous=NORMAL` that checkpoint syncs the log and the database, one
    /// journal commit of the filesystem each: after a replay into 200 mailboxes,
    /// 800 fsyncs that took longer than the replay's writes. Here the logs are
    /// already durable (the first `syncfs`: a database page may only be
    /// overwritten once the log frames that rebuild it survive a crash), the pages
    /// are copied unsynced (the logs stay whole), the second `syncfs` makes the
    /// copies durable at once, and the connections, closed after it, find nothing
    /// left to copy and delete their logs without a sync. Only at close: nothing
    /// else writes then, so no writer can restart a log whose pages are not yet
    /// durable in the database.
    fn backfill_before_close(&self) {
        for mbox in self.handles() {
            if let Err(e) = mbox.backfill_unsynced() {
                // Harmless: its close checkpoints with syncs as before.
                tracing::debug!("{}: {e}", mbox.db_path().display());
            }
        }
    }

    /// Sweeps every mailbox (at start-up and when a backup releases its hold).
    /// Each is first looked at without opening it ([`Mailbox::peek`]): only one
    /// with removals queued is opened (through the handle cache), so the walk
    /// neither keeps databases open nor creates their `-wal`/`-shm` files.
    pub fn sweep_all(&self) -> Result<(), StoreError> {
        for id in self.mailbox_ids()? {
            let mbox = self.mailbox(id);
            let queued: i64 =
                mbox.peek(|c| c.query_row("SELECT COUNT(*) FROM blob_gc", [], |r| r.get(0)))?;
            if queued == 0 {
                continue;
            }
            let mut g = mbox.lock()?;
            self.sweep(&mut g)?;
        }
        Ok(())
    }
}

/// A checkpoint's syncs: the blob store's (`syncfs`, or each file written), and
/// where the store fsyncs file by file, each mailbox database locked since the
/// last checkpoint and the directory holding them. One at a time (the blob
/// store's sync lock, held until the syncs return): the rollover's checkpoint
/// and [`Store::checkpoint`] (shutdown, replays) run on different threads, and
/// one that found the unsynced notes already taken by the other returned at
/// once, so a checkpoint was recorded while the fsyncs it relied on were still
/// running.
fn sync_store(
    blobs: &BlobStore,
    mailboxes: &MailboxMap,
    created: &Created,
    pending: &PendingWork,
    db_dir: &Path,
) -> Result<(), StoreError> {
    let held = blobs.sync_lock();
    // The pending list as of now covers every record up to the position this
    // checkpoint will claim (read before the syncs; see `pending`).
    pending
        .save()
        .map_err(|e| StoreError::io(&db_dir.join(crate::PENDING_FILE), e))?;
    if blobs.per_file() {
        let handles: Vec<Arc<Mailbox>> = mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut any = created
            .sync_if_written()
            .map_err(|e| StoreError::io(&db_dir.join(crate::created::CREATED_FILE), e))?;
        for m in handles {
            any |= m
                .sync_if_written()
                .map_err(|e| StoreError::io(m.db_path(), e))?;
        }
        if any {
            mv_home::fsync_dir(db_dir).map_err(|e| StoreError::io(db_dir, e))?;
        }
    }
    Ok(blobs.checkpoint_holding(&held)?)
}

impl Drop for Store {
    fn drop(&mut self) {
        self.handles.stop_closer();
        if !self.recovered.load(std::sync::atomic::Ordering::Acquire) {
            // Crash recovery failed: nothing is claimed clean or checkpointed;
            // the connections close with their own syncs.
            return;
        }
        if let Err(e) = self.mark_clean_at_close() {
            tracing::warn!("the next start will sweep every mailbox: {e}");
        }
        // The logs first (see `backfill_before_close`), then the copies of their
        // pages and the marker: one syncfs of the home's filesystem each.
        if let Err(e) = self.checkpoint() {
            tracing::error!("checkpoint at close failed: {e}");
            return; // the connections close with their own syncs
        }
        self.backfill_before_close();
        if let Err(e) = self.checkpoint() {
            tracing::error!("checkpoint at close failed: {e}");
            // The copies may not be durable: each close must sync its own
            // before it deletes the log.
            for mbox in self.handles() {
                mbox.sync_at_close();
            }
        }
    }
}
