//! Batched replay: redo records applied through the one apply path
//! ([`crate::apply::apply`], the same call live writes make), with many records
//! per SQLite transaction.
//!
//! A live write commits each record on its own because it is acknowledged right
//! after. A replay (`zmplayredo`, a restore's redo phase, crash recovery) reads
//! records that are already durable in redo logs, so it keeps one transaction per
//! mailbox open across up to [`COMMIT_EVERY`] records; each record still runs in
//! its own savepoint, so a record that fails is rolled back alone. Idempotence is
//! unchanged: a record's changes and the mailbox's `applied_change` commit
//! together, so after a crash a mailbox is at the end of its last committed batch
//! and re-running the same replay applies exactly the records above it.
//!
//! Nothing here is fsynced per commit: [`Replayer::finish`] commits every open
//! transaction and the caller makes the result durable once
//! ([`crate::Store::checkpoint`], a `syncfs`) before it reports the replay done.

use crate::StoreError;
use crate::apply::Staged;
use crate::store::{ReplayReport, Store};
use mv_redo::{Op, Record};
use mv_types::{Digest, MailboxId};
use std::collections::{BTreeSet, HashMap};

/// Records applied in one mailbox transaction before it is committed: bounds the
/// write-ahead log of a long replay and the work a crash makes the re-run redo.
pub const COMMIT_EVERY: u32 = 5000;

/// A replay in progress. One replayer per thread; a mailbox must be replayed by
/// one replayer only (the records of one mailbox apply in order), which is how
/// `zmplayredo` distributes them. Open transactions are committed by
/// [`Replayer::finish`] (or, failing that, when the replayer is dropped).
pub struct Replayer<'s> {
    store: &'s Store,
    /// Mailboxes with an open batch transaction.
    open: HashMap<MailboxId, OpenBatch>,
    touched: BTreeSet<u32>,
    report: ReplayReport,
    /// Sweep the touched mailboxes' deferred blob deletions at the end.
    pub(crate) sweep: bool,
    /// Records per mailbox transaction ([`COMMIT_EVERY`] unless set).
    commit_every: u32,
    /// Batches begun so far: orders the open ones by age.
    begun: u64,
}

/// A mailbox's open batch transaction.
struct OpenBatch {
    /// Records applied in it.
    records: u32,
    /// The mailbox's applied change number, read when the transaction began and
    /// then moved by each record applied in it: nothing else writes the mailbox
    /// while its transaction is open (`BEGIN IMMEDIATE` holds SQLite's write lock
    /// and the replay owns the mailbox), so reading it back per record, a
    /// statement each, is not needed.
    applied: u64,
    /// When it began (see [`Replayer::begun`]).
    seq: u64,
}

impl Store {
    /// Starts a batched replay (see the module documentation of `replay`).
    pub fn replayer(&self) -> Replayer<'_> {
        Replayer {
            store: self,
            open: HashMap::new(),
            touched: BTreeSet::new(),
            report: ReplayReport::default(),
            sweep: true,
            commit_every: COMMIT_EVERY,
            begun: 0,
        }
    }
}

impl Replayer<'_> {
    /// Commits each mailbox's transaction after `n` records (at least 1) instead
    /// of [`COMMIT_EVERY`]: smaller batches bound what a crash makes a re-run
    /// apply again, at the cost of more commits.
    pub fn set_commit_every(&mut self, n: u32) {
        self.commit_every = n.max(1);
    }

    /// Writes a content record (`PutBlob`) to the staging area, once per digest,
    /// after checking its bytes against its digest. Other mailbox-0 records are
    /// ignored. The caller removes the staged files when the replay is over.
    pub fn stage(&self, rec: &Record, staged: &mut Staged) -> Result<(), StoreError> {
        let Op::PutBlob(p) = &rec.op else {
            return Ok(());
        };
        let digest = Digest(p.digest);
        if staged.contains(&digest) {
            return Ok(());
        }
        let (found, path) = self.store.blobs().stage_for_replay(&p.data)?;
        if found != digest {
            let _ = self.store.blobs().remove(&path);
            return Err(StoreError::CorruptContent {
                lsn: rec.lsn.0,
                digest,
            });
        }
        staged.insert(digest, path);
        Ok(())
    }

    /// Whether [`Replayer::apply`] would apply the record (its change is above the
    /// mailbox's applied change), so that its content is worth staging first.
    pub fn will_apply(&mut self, rec: &Record) -> Result<bool, StoreError> {
        let g = self.store.mailbox(rec.mailbox);
        let g = g.lock_unopened()?;
        Ok(rec.change.0 > g.applied_change()?)
    }

    /// Applies one mailbox record iff its change is the mailbox's next one
    /// (skipped when already applied; an error when changes are missing before it).
    pub fn apply(&mut self, rec: &Record, staged: &Staged) -> Result<(), StoreError> {
        let id = rec.mailbox;
        if !self.open.contains_key(&id) && self.open.len() >= self.store.open_capacity() {
            // A connection with a transaction open cannot be closed: a replay
            // across more mailboxes than the store keeps open commits its oldest
            // batch first, so that the handle cache can close that mailbox.
            self.commit_oldest()?;
        }
        let mbox = self.store.mailbox(id);
        if !self.open.contains_key(&id) && matches!(rec.op, Op::CreateMailbox(_)) {
            // A creation applies to a mailbox without a database as it does
            // live: it waits for the mailbox's first use (see `created`).
            let mut g = mbox.lock_unopened()?;
            if !g.has_conn() {
                if rec.change.0 <= g.applied_change()? {
                    self.report.skipped_already_applied += 1;
                    return Ok(());
                }
                self.store
                    .apply_one(&mut g, rec.change, rec.timestamp, &rec.op, staged)?;
                self.report.applied += 1;
                return Ok(());
            }
        }
        let mut g = mbox.lock()?;
        let batch = match self.open.entry(id) {
            std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                begin_batch(g.conn()).map_err(|e| StoreError::sql(mbox.db_path(), e))?;
                let applied = match g.applied_change() {
                    Ok(applied) => applied,
                    Err(e) => {
                        let _ = g.conn().execute_batch("ROLLBACK");
                        let _ = end_batch(g.conn());
                        return Err(e);
                    }
                };
                self.begun += 1;
                slot.insert(OpenBatch {
                    records: 0,
                    applied,
                    seq: self.begun,
                })
            }
        };
        if rec.change.0 <= batch.applied {
            self.report.skipped_already_applied += 1;
            return Ok(());
        }
        if rec.change.0 != batch.applied + 1 && !matches!(rec.op, Op::CreateMailbox(_)) {
            return Err(StoreError::ChangeGap {
                mailbox: id,
                expected: batch.applied + 1,
                found: rec.change.0,
                lsn: rec.lsn.0,
            });
        }
        if let Err(e) = self
            .store
            .apply_one(&mut g, rec.change, rec.timestamp, &rec.op, staged)
        {
            // Some SQLite errors end the whole transaction: the batch is gone with
            // it (a re-run applies it again), and the next record begins a new one
            // that reads the applied change again.
            if g.conn().is_autocommit() {
                self.open.remove(&id);
                let _ = end_batch(g.conn());
            }
            return Err(e);
        }
        // A record that applied leaves its change as the mailbox's applied one
        // (`apply::apply` ends with that update).
        batch.applied = rec.change.0;
        batch.records += 1;
        self.report.applied += 1;
        self.touched.insert(id.0);
        if batch.records >= self.commit_every {
            self.open.remove(&id);
            // A long replay of one mailbox: its log is copied into the database
            // (synced) every batch, as SQLite's own checkpoints would have.
            // (The usual settings come back whether the commit worked or not.)
            let committed = g.conn().execute_batch("COMMIT");
            g.mark_written();
            let ended = end_batch(g.conn());
            committed
                .and(ended)
                .and_then(|()| {
                    g.conn()
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                })
                .map_err(|e| StoreError::sql(mbox.db_path(), e))?;
        }
        Ok(())
    }

    /// Commits every open batch transaction.
    fn commit_all(&mut self) -> Result<(), StoreError> {
        let mut first_err = None;
        for (id, _) in std::mem::take(&mut self.open) {
            if let Err(e) = self.commit_batch(id) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Commits the batch that began first.
    fn commit_oldest(&mut self) -> Result<(), StoreError> {
        let Some(id) = self
            .open
            .iter()
            .min_by_key(|(_, b)| b.seq)
            .map(|(id, _)| *id)
        else {
            return Ok(());
        };
        self.open.remove(&id);
        self.commit_batch(id)
    }

    /// Commits one mailbox's batch (already taken out of `open`).
    fn commit_batch(&self, id: MailboxId) -> Result<(), StoreError> {
        let mbox = self.store.mailbox(id);
        let g = mbox.lock()?;
        let committed = if g.conn().is_autocommit() {
            Ok(())
        } else {
            g.conn().execute_batch("COMMIT")
        };
        g.mark_written();
        committed
            .and_then(|()| end_batch(g.conn()))
            .map_err(|e| StoreError::sql(mbox.db_path(), e))
    }

    /// Commits what was applied, sweeps the touched mailboxes and returns the
    /// counts. Not yet durable: the caller checkpoints.
    pub fn finish(mut self) -> Result<ReplayReport, StoreError> {
        self.commit_all()?;
        if self.sweep {
            for id in &self.touched {
                let mbox = self.store.mailbox(MailboxId(*id));
                let mut g = mbox.lock()?;
                self.store.sweep(&mut g)?;
            }
        }
        let mut report = std::mem::take(&mut self.report);
        report.mailboxes = std::mem::take(&mut self.touched).into_iter().collect();
        Ok(report)
    }
}

/// Begins a mailbox's batch transaction. Its commits write the mailbox's
/// write-ahead log without a sync (`synchronous=OFF`): the replay is made durable
/// as a whole when it ends (the caller's checkpoint), and a crash before that
/// leaves each database at a whole earlier commit (the log's frames carry
/// checksums; recovery stops at the first torn one), from which a re-run goes
/// on. With `synchronous=NORMAL` the first commit into a new log synced the log's
/// header and its directory: two fsyncs per mailbox, a tenth of a replay of
/// small changes across many mailboxes. SQLite's automatic checkpoints are off
/// meanwhile: a checkpoint must sync the log before it copies it into the
/// database, and one at `synchronous=OFF` would not.
fn begin_batch(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let begun = conn
        .pragma_update(None, "synchronous", "OFF")
        .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", 0))
        .and_then(|()| conn.execute_batch("BEGIN IMMEDIATE"));
    if begun.is_err() {
        // No batch: the connection must not stay at `OFF` for later writes.
        let _ = end_batch(conn);
    }
    begun
}

/// After a batch's commit (or rollback): the connection's usual settings, with
/// which any later checkpoint syncs the log first.
fn end_batch(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", crate::schema::SYNCHRONOUS)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)
}

/// SQLite's default automatic checkpoint threshold, in log pages.
const WAL_AUTOCHECKPOINT: u32 = 1000;

impl Drop for Replayer<'_> {
    fn drop(&mut self) {
        // An unwinding or early-returning caller: what was applied is kept (each
        // record is whole), so the counts it may already have reported stay true.
        if !self.open.is_empty()
            && let Err(e) = self.commit_all()
        {
            tracing::error!("replay: committing the applied records failed: {e}");
        }
    }
}
